"""The one registry of ops. The palette, the inspector, the compiler and the docs read it."""

from __future__ import annotations

from engine.ops.base import OpDef

CATEGORIES = ("Inputs", "Layers", "Activations", "Element-wise/Merge", "Losses")

_OPS: dict[str, OpDef] = {}
_ALIASES: dict[str, str] = {}


def register(cls: type[OpDef]) -> type[OpDef]:
    """Class decorator: add an op. A duplicate id (or alias) is an error."""
    if cls.id in _OPS or cls.id in _ALIASES:
        raise ValueError(f"op id {cls.id!r} is registered twice")
    if cls.category not in CATEGORIES:
        raise ValueError(f"op {cls.id!r} has unknown category {cls.category!r}")
    _OPS[cls.id] = cls()
    for old in cls.replaces:
        if old in _OPS or old in _ALIASES:
            raise ValueError(f"op alias {old!r} is registered twice")
        _ALIASES[old] = cls.id
    return cls


# The op modules, in the order their ops are listed (palette, docs). Registration order alone
# depended on which module a program imported first (a test importing engine.ops.sequence
# before the registry reordered docs/ops.md).
MODULE_ORDER = ("activations", "layers", "conv", "elementwise", "losses", "norm", "sequence",
                "sources")

_loaded = False


def _load() -> None:
    # Importing the modules runs their @register decorators. `get` runs for every node
    # an editor draws, so the import statement is skipped once it has run.
    global _loaded
    if _loaded:
        return
    _loaded = True
    # A plain import statement, not a loop over MODULE_ORDER: PyInstaller (packaging/) finds
    # the modules by reading it. Their order here does not matter (see all_ops).
    from engine.ops import (  # noqa: F401
        activations,
        conv,
        elementwise,
        layers,
        losses,
        norm,
        sequence,
        sources,
    )


def get(op_id: str) -> OpDef | None:
    """The op with this id (or an old id it replaces), or None."""
    _load()
    op_id = _ALIASES.get(op_id, op_id)
    return _OPS.get(op_id)


def canonical_id(op_id: str) -> str:
    """The current id of an op, following `replaces` aliases of renamed ops."""
    _load()
    return _ALIASES.get(op_id, op_id)


def all_ops() -> list[OpDef]:
    """Every op, grouped by category in CATEGORIES order, then by module (MODULE_ORDER), then
    in the order its module defines them."""
    _load()
    order = {c: i for i, c in enumerate(CATEGORIES)}
    modules = {f"engine.ops.{m}": i for i, m in enumerate(MODULE_ORDER)}
    rank = {op_id: i for i, op_id in enumerate(_OPS)}
    return sorted(_OPS.values(), key=lambda op: (
        order[op.category], modules.get(type(op).__module__, len(modules)), rank[op.id]))
