"""Strict JSON for every file Gradscape reads: graphs, model members, safetensors headers.

One parser so every loader refuses the same things with the same kind of sentence:
text that is not UTF-8, duplicate keys, the non-standard literals NaN/Infinity, and
nesting deeper than any real file needs (which would otherwise end in a RecursionError
inside the parser or in whatever walks the result later).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from engine.errors import FileFormatError

MAX_DEPTH = 64  # graphs nest about 5 deep; anything near Python's recursion limit is hostile


class _Refused(Exception):
    """A rule of the strict parser was broken; the text says which."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"the key {key!r} appears twice")
            seen.add(key)
    return out


def _no_constants(name: str) -> Any:
    raise _Refused(f"the number {name} is not allowed (JSON has no NaN or Infinity)")


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def nesting_depth(raw: bytes) -> int:
    """How deep brackets nest in JSON text, without parsing it (strings are skipped).

    Vectorised, so a 16 MiB file takes a few tens of milliseconds and no recursion.
    """
    codes = np.frombuffer(_STRING.sub(b'""', raw), dtype=np.uint8)
    steps = np.zeros(len(codes), dtype=np.int32)
    steps[(codes == ord("[")) | (codes == ord("{"))] = 1
    steps[(codes == ord("]")) | (codes == ord("}"))] = -1
    return int(steps.cumsum().max(initial=0))


def parse_json(data: bytes | str, source: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse strict JSON, raising FileFormatError("<source> is damaged: …") on any problem.

    The nesting is measured before parsing, so hostile depth never reaches the parser.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if nesting_depth(raw) > max_depth:
        raise FileFormatError(f"{source} is damaged or hostile: its JSON nests more than "
                              f"{max_depth} levels deep.")
    try:
        text = data if isinstance(data, str) else raw.decode("utf-8")
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except _Refused as exc:
        raise FileFormatError(f"{source} is damaged: {exc}.") from None
    except UnicodeDecodeError:
        raise FileFormatError(f"{source} is damaged: its text is not UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise FileFormatError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}).") from None
    except RecursionError:  # not expected after the depth check; kept as a last guard
        raise FileFormatError(f"{source} is damaged or hostile: its JSON nests too deeply.") \
            from None
