"""Strict JSON for every file Gradscape reads: graphs, model members, safetensors headers.

One parser so every loader refuses the same things with the same kind of sentence:
text that is not UTF-8, duplicate keys, the non-standard literals NaN/Infinity, and
nesting deeper than any real file needs (which would otherwise end in a RecursionError
inside the parser or in whatever walks the result later).
"""

from __future__ import annotations

import json
from typing import Any

from engine.errors import FileFormatError

MAX_DEPTH = 64  # graphs nest about 5 deep; anything near Python's recursion limit is hostile


class _Refused(Exception):
    """A rule of the strict parser was broken; the text says which."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"the key {key!r} appears twice")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise _Refused(f"the number {name} is not allowed (JSON has no NaN or Infinity)")


def _depth_exceeds(obj: Any, limit: int) -> bool:
    """True if containers nest deeper than `limit` (iterative: no recursion to overflow)."""
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def parse_json(data: bytes | str, source: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse strict JSON, raising FileFormatError("<source> is damaged: …") on any problem."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except _Refused as exc:
        raise FileFormatError(f"{source} is damaged: {exc}.") from None
    except UnicodeDecodeError:
        raise FileFormatError(f"{source} is damaged: its text is not UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise FileFormatError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}).") from None
    except RecursionError:
        obj = None
        too_deep = True
    else:
        too_deep = _depth_exceeds(obj, max_depth)
    if too_deep:
        raise FileFormatError(f"{source} is damaged or hostile: its JSON nests more than "
                              f"{max_depth} levels deep.")
    return obj
