"""Overlays drawn on the canvas from training reports (restyle only, no re-layout)."""
