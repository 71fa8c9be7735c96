"""ReLU forward and backward as one compiled pass each (numba, see engine.core.jit).

numpy's ReLU makes two passes (the mask x > 0, then x·mask) and a temporary; these loops
make one, with the same values bit for bit (x·0 keeps numpy's −0 for negative inputs and
NaN for NaN). They are not numba-parallel: its threads halved the best times on the 2-core
bench machine but, when the cores were busy, stalled for whole scheduler slices
(bench/conv_kernels.py, docs/benchmarks.md). Large tensors are split over the engine's
sleeping chunk threads instead (`engine.core.chunked`).
"""

from __future__ import annotations

import numpy as np

from engine.core import chunked, jit


def _build_relu(numba):
    @numba.njit(cache=True, fastmath=False, nogil=True)
    def relu(x, y, mask):  # pragma: no cover - compiled; checked against the numpy path
        for i in range(x.size):
            v = x[i]
            m = v > 0
            mask[i] = m
            y[i] = v if m else v * 0

    return relu


def _build_relu_grad(numba):
    @numba.njit(cache=True, fastmath=False, nogil=True)
    def relu_grad(gy, mask, dx):  # pragma: no cover - compiled
        for i in range(gy.size):
            g = gy[i]
            dx[i] = g if mask[i] else g * 0

    return relu_grad


def raw_kernels():
    """(relu, relu_grad) compiled, taking flat contiguous arrays, for a caller that runs
    them on parts of a tensor inside `jit.LOCK` and has checked `jit.worth_it`."""
    return jit.kernel(_build_relu), jit.kernel(_build_relu_grad)


def _kernel(build, *arrays):
    if not jit.worth_it(arrays[0].size) or not all(a.flags.c_contiguous for a in arrays):
        return None
    return jit.kernel(build)


def relu(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(x·(x > 0), the mask x > 0) in one pass, or None when the numpy path must run."""
    fn = _kernel(_build_relu, x)
    if fn is None:
        return None
    y, mask = np.empty_like(x), np.empty(x.shape, dtype=bool)
    with jit.LOCK:
        chunked.run(fn, (x.reshape(-1), y.reshape(-1), mask.reshape(-1)))
    return y, mask


def relu_grad(gy: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """gy·mask in one pass, or None when the numpy path must run."""
    fn = _kernel(_build_relu_grad, gy, mask) if gy.shape == mask.shape else None
    if fn is None:
        return None
    dx = np.empty_like(gy)
    with jit.LOCK:
        chunked.run(fn, (gy.reshape(-1), mask.reshape(-1), dx.reshape(-1)))
    return dx
