"""Gradscape designer: the PySide6 node editor on top of the engine."""

from designer import pyside_refcount_fix  # noqa: F401  (must run before PySide6 is used)
