"""The frozen app's entry script (packaging/gradscape.spec): the same as the `gradscape` command."""

import sys

from designer.app import main

if __name__ == "__main__":
    sys.exit(main())
