"""The layered layout of the canvas (the code lives in engine.core.layout, shared with the
importers)."""

from engine.core.layout import NODE_WIDTH, ROW_GAP, X_SPACING, Y_SPACING, layered_layout

__all__ = ["NODE_WIDTH", "ROW_GAP", "X_SPACING", "Y_SPACING", "layered_layout"]
