"""Op definitions, one module per family; each op registers itself in engine.core.registry."""
