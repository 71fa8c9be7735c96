"""Gradscape engine: graph format, compiler, numpy forward/backward, optimizers and training.

Pure numpy; never imports Qt (a test enforces it).
"""

__version__ = "0.1.0"
