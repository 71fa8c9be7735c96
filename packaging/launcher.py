"""The frozen app's entry script (packaging/gradscape.spec): the same as the `gradscape` command."""

import multiprocessing
import sys

from designer.app import main

if __name__ == "__main__":
    # Training runs in a child process; in a frozen app that child starts as this same
    # executable, and freeze_support() turns it into the worker instead of a second window.
    multiprocessing.freeze_support()
    sys.exit(main())
