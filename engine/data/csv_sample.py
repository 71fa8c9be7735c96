"""What a view shows of a CSV training file: its size, its first rows and an even subsample.

`sample_csv` reads the file exactly as training does (same columns, same checks) and keeps
only a few thousand rows, so a window can show a file of a million rows without holding or
drawing all of them. `sample_to` runs it in a process of its own and sends the answer back
through a pipe (parsing a big file would otherwise hold a window's interpreter lock for
seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import GradscapeError

HEAD_ROWS = 1000  # rows shown as a table (the first ones)
POINTS = 10_000  # rows drawn in a plot (evenly spaced)


def even_rows(n: int, limit: int) -> slice | np.ndarray:
    """Rows to show out of n: all of them, or `limit` evenly spaced ones (deterministic, so a
    picture does not flicker between updates)."""
    if n <= limit:
        return slice(None)
    return np.linspace(0, n - 1, limit).astype(np.int64)


@dataclass
class CsvSample:
    """The part of a CSV file a view shows (plain data)."""

    name: str
    columns: list[str]  # the features, then the targets
    targets: int  # how many of the last columns are targets
    rows: int  # data rows in the file
    task: str
    class_names: list[str]
    head: np.ndarray  # (≤ HEAD_ROWS, columns): features as read, targets as class or value
    points: np.ndarray  # (≤ POINTS, columns): evenly spaced rows, same layout

    def is_target(self, column: int) -> bool:
        return column >= len(self.columns) - self.targets

    def text(self, value: float, column: int) -> str:
        """A value as a person reads it: the class name in a class target, numbers short."""
        if self.class_names and self.is_target(column):
            return self.class_names[int(value)]
        return f"{value:.6g}"


def sample_csv(path: str, target: Any = None, features: Any = None,
               head_rows: int = HEAD_ROWS, points: int = POINTS) -> CsvSample:
    """Read `path` with the training block's target and feature columns; keep its first
    `head_rows` rows and `points` evenly spaced ones."""
    from engine.data.csv_import import load_csv

    if isinstance(target, list) and len(target) == 1:
        target = target[0]
    ds = load_csv(path, target=target, features=features, standardize=False)
    values = np.concatenate([ds.x.reshape(len(ds), -1), ds.y], axis=1)
    return CsvSample(
        name=Path(path).name, columns=list(ds.feature_names) + list(ds.target_names),
        targets=len(ds.target_names), rows=len(ds), task=ds.task,
        class_names=list(ds.class_names), head=values[:head_rows].copy(),
        points=values[even_rows(len(ds), points)].copy())


def sample_to(conn, path: str, *args: Any) -> None:
    """Run sample_csv(path, *args) and send (True, sample) or (False, sentence) through
    `conn` (the body of a reader process)."""
    try:
        answer: tuple[bool, Any] = (True, sample_csv(path, *args))
    except GradscapeError as exc:
        answer = (False, str(exc))
    except (MemoryError, OSError, ValueError) as exc:
        answer = (False, f"Could not read '{Path(path).name}': {exc}")
    conn.send(answer)
    conn.close()
