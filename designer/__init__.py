"""Gradscape designer: the PySide6 node editor on top of the engine."""
