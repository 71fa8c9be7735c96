"""Cross-entropy with class-index targets as one compiled pass forward and one backward
(numba, see engine.core.jit), for networks large enough to take compiled paths.

numpy's version makes about fifteen calls on a (batch, classes) matrix. Each is only a
few µs, but in a training step they run right after the large matrix products have
pushed numpy's and Python's working set out of the core's caches: on the 784-256-128-10
MLP at batch 128 they took 0.08 ms of a 1.6 ms step (0.03 ms when warm).

The backward is bit-identical to numpy's. The forward's softmax rows are equal to
rounding (the exponential is LLVM's, numpy's is its own SIMD one), and its loss is summed
in float64.
"""

from __future__ import annotations

import numpy as np

from engine.core import jit


def _build_forward(numba):
    @numba.njit(cache=True, fastmath=False, nogil=True)
    def forward(z, t, prob, cls):  # pragma: no cover - compiled; checked against numpy
        """Σ over rows of −log softmax(z)[class], with softmax in `prob` and the classes
        in `cls`; and −1, or the first row whose target is no class index."""
        n, c = z.shape
        total = 0.0
        for r in range(n):
            k = t[r]
            if not (k >= 0 and k < c) or k != np.floor(k):  # NaN fails the first test
                return total, r
            ci = int(k)
            cls[r] = ci
            top = z[r, 0]
            for j in range(1, c):
                v = z[r, j]
                if v > top or v != v:  # NaN wins, as in numpy's max
                    top = v
            e = np.exp(z[r, 0] - top)
            prob[r, 0] = e
            s = e
            for j in range(1, c):
                e = np.exp(z[r, j] - top)
                prob[r, j] = e
                s += e
            total += np.log(s) - (z[r, ci] - top)
            for j in range(c):
                prob[r, j] /= s
        return total, -1

    return forward


def _build_backward(numba):
    @numba.njit(cache=True, fastmath=False, nogil=True)
    def backward(prob, cls, scale, one, gz):  # pragma: no cover - compiled
        """gz ← (softmax − onehot(class))·scale, in numpy's order: (p − 1)·scale at the
        class."""
        n, c = prob.shape
        for r in range(n):
            for j in range(c):
                gz[r, j] = prob[r, j] * scale
            k = cls[r]
            gz[r, k] = (prob[r, k] - one) * scale

    return backward


def forward(z: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, int] | None:
    """(Σ −log softmax(z)[t] over rows, softmax(z), the classes, −1 or the first row whose
    target is not a class index) for z (n, c) and t (n,), or None for the numpy path."""
    fn = jit.kernel(_build_forward)
    if fn is None or not z.flags.c_contiguous:
        return None
    prob = np.empty_like(z)
    cls = np.empty(len(z), dtype=np.int64)
    total, bad = fn(z, t, prob, cls)
    return float(total), prob, cls, int(bad)


def backward(prob: np.ndarray, cls: np.ndarray, scale) -> np.ndarray | None:
    """(softmax − onehot(class))·scale, or None for the numpy path."""
    fn = jit.kernel(_build_backward)
    if fn is None:
        return None
    f = prob.dtype.type
    gz = np.empty_like(prob)
    fn(prob, cls, f(scale), f(1.0), gz)
    return gz
