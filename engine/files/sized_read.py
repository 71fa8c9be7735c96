"""Read a whole file only after checking its size: one reader for every loader."""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import FileFormatError, GradscapeError


def _size_text(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def read_limited(path: str | os.PathLike[str], limit: int, kind: str,
                 error: type[GradscapeError] = FileFormatError) -> tuple[str, bytes]:
    """(file name, bytes) of a file no larger than `limit`, or `error` with a sentence.

    `kind` names such files in the sentence ("graph files are at most 16 MiB").
    """
    p = Path(path)
    name = p.name or str(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise error(f"Cannot open {name}: {exc.strerror or exc}.") from None
    if size > limit:
        raise error(f"{name} is {_size_text(size)}; {kind} are at most {_size_text(limit)}.")
    try:
        return name, p.read_bytes()
    except OSError as exc:
        raise error(f"Cannot read {name}: {exc.strerror or exc}.") from None
