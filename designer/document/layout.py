"""The layered layout lives in the engine (importers lay graphs out too); re-exported here."""

from engine.core.layout import X_SPACING, Y_SPACING, layered_layout

__all__ = ["X_SPACING", "Y_SPACING", "layered_layout"]
