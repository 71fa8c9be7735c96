"""``python -m designer [FILE]`` starts the editor."""

import sys

from designer.app import main

if __name__ == "__main__":
    sys.exit(main())
