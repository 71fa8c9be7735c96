"""`python -m engine …`: the command-line interface."""
