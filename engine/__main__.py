"""`python -m engine …`: train, trace, gradcheck, export and predict from the command line."""

import sys

from engine.cli.main import main

sys.exit(main())
