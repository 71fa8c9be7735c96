"""Reduce tensors to a few floats for display; only these summaries cross to the GUI."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUMMARY_FIELDS = ("mean", "mean_abs", "l2", "min", "max")


@dataclass(frozen=True)
class Summary:
    """mean, mean |x|, L2 norm, min and max of a tensor, plus its size."""

    mean: float
    mean_abs: float
    l2: float
    min: float
    max: float
    size: int

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "mean_abs": self.mean_abs, "l2": self.l2,
                "min": self.min, "max": self.max}


def summarize(a: np.ndarray) -> Summary:
    """Summary of one tensor (accumulated in float64 so float32 sums stay accurate)."""
    flat = np.asarray(a).reshape(-1)
    n = flat.size
    if n == 0:
        return Summary(0.0, 0.0, 0.0, 0.0, 0.0, 0)
    total = float(flat.sum(dtype=np.float64))
    abs_total = float(np.abs(flat).sum(dtype=np.float64))
    sq = float(np.dot(flat.astype(np.float64, copy=False), flat.astype(np.float64, copy=False)))
    return Summary(total / n, abs_total / n, sq ** 0.5, float(flat.min()), float(flat.max()), n)


def summarize_many(arrays: list[np.ndarray | None]) -> list[Summary | None]:
    """Summaries of many tensors with a fixed number of numpy calls (fast path for the GUI).

    The arrays are packed into one buffer and reduced per segment with `reduceat`, so the
    cost does not grow with the number of edges, only with the number of values.
    """
    present = [(i, np.asarray(a).reshape(-1)) for i, a in enumerate(arrays)
               if a is not None and np.size(a) > 0]
    out: list[Summary | None] = [None] * len(arrays)
    if not present:
        return out
    sizes = np.fromiter((f.size for _, f in present), dtype=np.int64, count=len(present))
    starts = np.zeros(len(present), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    packed = np.concatenate([f for _, f in present]).astype(np.float64, copy=False)
    sums = np.add.reduceat(packed, starts)
    mins = np.minimum.reduceat(packed, starts)
    maxs = np.maximum.reduceat(packed, starts)
    abs_sums = np.add.reduceat(np.abs(packed), starts)
    sq_sums = np.add.reduceat(packed * packed, starts)
    for j, (i, _) in enumerate(present):
        n = int(sizes[j])
        out[i] = Summary(float(sums[j]) / n, float(abs_sums[j]) / n, float(sq_sums[j]) ** 0.5,
                         float(mins[j]), float(maxs[j]), n)
    return out


def histogram(a: np.ndarray, bins: int = 16) -> tuple[list[int], list[float]]:
    """Counts and bin edges of the finite values (on demand for one selected edge)."""
    flat = np.asarray(a, dtype=np.float64).reshape(-1)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return [0] * bins, [0.0] * (bins + 1)
    lo, hi = float(flat.min()), float(flat.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(flat, bins=bins, range=(lo, hi))
    return counts.tolist(), edges.tolist()
