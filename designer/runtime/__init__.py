"""Training at run time: the worker thread and the GUI-side session."""
