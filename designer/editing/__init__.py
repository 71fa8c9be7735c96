"""Editing widgets generated from the op registry: palette, quick-add, inspector, param editors."""
