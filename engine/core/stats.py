"""Reduce tensors to a few floats for display; only these summaries cross to the GUI."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core import jit, reductions

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


MAX_VIEW_VALUES = 64  # a TensorView of a tensor up to this size carries its values


@dataclass(frozen=True)
class TensorView:
    """A tensor reduced for display: shape, summary and, when small, its values (flat)."""

    shape: tuple[int, ...]
    size: int
    summary: Summary
    values: tuple[float, ...] | None

    @property
    def scalar(self) -> float | None:
        """The number itself when the tensor holds exactly one."""
        return self.values[0] if self.size == 1 and self.values else None


def tensor_view(a: np.ndarray) -> TensorView:
    """`TensorView` of an array; values as exact Python floats up to MAX_VIEW_VALUES."""
    arr = np.asarray(a)
    vals = tuple(float(v) for v in arr.reshape(-1)) if arr.size <= MAX_VIEW_VALUES else None
    return TensorView(tuple(int(d) for d in arr.shape), int(arr.size), summarize(arr), vals)


def summarize_many(arrays: list[np.ndarray | None]) -> list[Summary | None]:
    """Summaries of many tensors (None stays None).

    The same array passed twice (a value on two wires, a gradient an Add hands to both
    inputs) is summarised once. When the call has enough work and numba is there, each
    tensor is read once by a compiled loop (float64 sums); otherwise sums are dot products
    with a vector of ones (BLAS sums float32 several times faster than numpy's reduction,
    with many partial sums) and |x| goes into one scratch buffer per call.
    """
    out: list[Summary | None] = []
    seen: dict[int, Summary | None] = {}
    scratch: dict[np.dtype, np.ndarray] = {}
    if jit.worth_it(sum(a.size for a in arrays if a is not None)):
        scratch["kernel"] = jit.kernel(_build_summary)
    # Exploding values overflow the float32 sums to inf: that is the honest summary.
    with np.errstate(over="ignore", invalid="ignore"):
        for a in arrays:
            if a is None or id(a) not in seen:
                _append_summary(out, a, scratch)
                if a is not None:
                    seen[id(a)] = out[-1]  # `arrays` keeps `a` alive: its id stays unique
            else:
                out.append(seen[id(a)])
    return out


KERNEL_MIN = 2048  # tensors from this size on take the compiled one-pass loop


def _build_summary(numba):
    # 'reassoc' lets LLVM vectorise the sums (several partial sums); inf and NaN keep their
    # meaning (no 'nnan'/'ninf'). min and max stay numpy's (vectorised, NaN wins).
    @numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
    def sums(f):  # pragma: no cover - compiled; checked against the numpy path
        total = 0.0
        abs_total = 0.0
        sq = 0.0
        for i in range(f.size):
            v = np.float64(f[i])
            total += v
            abs_total += abs(v)
            sq += v * v
        return total, abs_total, sq

    return sums


def _append_summary(out: list[Summary | None], a: np.ndarray | None,
                    scratch: dict[np.dtype, np.ndarray]) -> None:
    if a is None or a.size == 0:
        out.append(None)
        return
    f = a.reshape(-1)
    n = f.size
    kernel = scratch.get("kernel")
    if kernel is not None and f.dtype in (np.float32, np.float64) and n >= KERNEL_MIN:
        total, abs_total, sq = kernel(f)
        out.append(Summary(total / n, abs_total / n, sq ** 0.5, float(f.min()),
                           float(f.max()), n))
        return
    if f.dtype in (np.float32, np.float64):
        ones = reductions.ones(n, f.dtype)
        buf = scratch.get(f.dtype)
        if buf is None or buf.size < n:
            buf = scratch[f.dtype] = np.empty(n, f.dtype)
        total = float(np.dot(f, ones))
        abs_total = float(np.dot(np.abs(f, out=buf[:n]), ones))
    else:
        total, abs_total = float(f.sum()), float(np.abs(f).sum())
    out.append(Summary(total / n, abs_total / n, float(np.dot(f, f)) ** 0.5, float(f.min()),
                       float(f.max()), n))


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
