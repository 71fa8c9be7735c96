"""Pure dict -> dict migrations of the graph format, one per older version."""

from __future__ import annotations

from typing import Any

from engine.errors import FileFormatError

CURRENT = 2


def migrate(data: Any, source: str = "the graph") -> dict[str, Any]:
    """Check the header and bring an older document up to the current version.

    Raises:
        FileFormatError: not a graph document, or written by a newer Gradscape.
    """
    from engine.core.spec import FORMAT_NAME

    if not isinstance(data, dict):
        raise FileFormatError(f"{source} is not a Gradscape graph (expected a JSON object).")
    if data.get("format") != FORMAT_NAME:
        raise FileFormatError(
            f"{source} is not a Gradscape graph: its 'format' is {data.get('format')!r}, "
            f"expected {FORMAT_NAME!r}."
        )
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FileFormatError(f"{source} has no valid 'version' number.")
    if version > CURRENT:
        raise FileFormatError(
            f"{source} was written by a newer Gradscape (format version {version}); "
            f"this one reads up to version {CURRENT}. Please update Gradscape to open it."
        )
    data = dict(data)
    while data["version"] < CURRENT:
        step = _STEPS[data["version"]]
        data = step(data)
    return data


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 adds groups, notes and wire waypoints; a version-1 graph has none of them.

    Version 1 readers tolerated (and dropped) unknown top-level keys, so any stray
    'groups'/'notes'/'waypoints' in a version-1 file carried no meaning: they are removed
    rather than interpreted.
    """
    out = {k: v for k, v in data.items() if k not in ("groups", "notes", "waypoints")}
    out.update(version=2, groups=[], notes=[], waypoints={})
    return out


# version -> function taking a document of that version and returning the next version.
_STEPS: dict[int, Any] = {1: _v1_to_v2}
