"""Compiled loops of Conv2D and MaxPool2D (numba, see engine.core.jit) for large images.

The numpy paths in `engine.ops.conv` copy the image once per window offset (k² strided
passes, plus a padded copy); these loops read each pixel once, handle the zero (or −∞)
border without padding, and split the (sample, channel) planes over the cores for large
tensors. They do the numpy paths' operations in the same order (no fast-math), so the
results are bit-identical, except that MaxPool2D routes a window's gradient to its first
NaN where the numpy path drops it.

Each public function returns False (nothing done) when the caller must take its numpy path.
"""

from __future__ import annotations

import numpy as np

from engine.core import jit

# Each loop below computes, for a shift t, the outputs o in [lo, hi) whose input o·s + t
# falls inside [0, size) (written out inline: numba's disk cache cannot find a jitted helper
# built at run time again in the next process).


def _build_im2col(numba):
    @numba.njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def im2col(x, cols, k, s, d, top, left, ho, wo):  # pragma: no cover - compiled
        n_, c_, h, w = x.shape
        for nc in numba.prange(n_ * c_):
            n = nc // c_
            c = nc - n * c_
            for i in range(k):
                t = i * d - top
                ylo = 0 if t >= 0 else (-t + s - 1) // s
                yhi = max(ylo, min(ho, (h - 1 - t) // s + 1)) if h - 1 - t >= 0 else ylo
                for j in range(k):
                    row = (c * k + i) * k + j
                    t = j * d - left
                    xlo = 0 if t >= 0 else (-t + s - 1) // s
                    xhi = max(xlo, min(wo, (w - 1 - t) // s + 1)) if w - 1 - t >= 0 else xlo
                    for oy in range(ho):
                        base = oy * wo
                        if oy < ylo or oy >= yhi:
                            for ox in range(wo):
                                cols[n, row, base + ox] = 0
                            continue
                        iy = oy * s + i * d - top
                        for ox in range(xlo):
                            cols[n, row, base + ox] = 0
                        for ox in range(xlo, xhi):
                            cols[n, row, base + ox] = x[n, c, iy, ox * s + j * d - left]
                        for ox in range(xhi, wo):
                            cols[n, row, base + ox] = 0

    return im2col


def _build_col2im(numba):
    @numba.njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def col2im(dcols, dx, k, s, d, top, left, ho, wo):  # pragma: no cover - compiled
        n_, c_, h, w = dx.shape
        for nc in numba.prange(n_ * c_):
            n = nc // c_
            c = nc - n * c_
            for iy in range(h):
                for ix in range(w):
                    dx[n, c, iy, ix] = 0
            for i in range(k):  # offsets in the numpy path's order: bit-identical sums
                t = i * d - top
                ylo = 0 if t >= 0 else (-t + s - 1) // s
                yhi = max(ylo, min(ho, (h - 1 - t) // s + 1)) if h - 1 - t >= 0 else ylo
                for j in range(k):
                    row = (c * k + i) * k + j
                    t = j * d - left
                    xlo = 0 if t >= 0 else (-t + s - 1) // s
                    xhi = max(xlo, min(wo, (w - 1 - t) // s + 1)) if w - 1 - t >= 0 else xlo
                    for oy in range(ylo, yhi):
                        iy = oy * s + i * d - top
                        base = oy * wo
                        for ox in range(xlo, xhi):
                            dx[n, c, iy, ox * s + j * d - left] += dcols[n, row, base + ox]

    return col2im


def _build_maxpool(numba):
    @numba.njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def maxpool(x, y, arg, k, s, pad):  # pragma: no cover - compiled
        n_, c_, h, w = x.shape
        ho, wo = y.shape[2], y.shape[3]
        for nc in numba.prange(n_ * c_):
            n = nc // c_
            c = nc - n * c_
            for oy in range(ho):
                t = oy * s - pad  # window rows i in [ilo, ihi) are inside the image
                ilo, ihi = max(0, -t), min(k, h - t)
                for ox in range(wo):
                    t = ox * s - pad
                    jlo, jhi = max(0, -t), min(k, w - t)
                    at = -1
                    best = x[n, c, 0, 0]
                    for i in range(ilo, ihi):
                        iy = oy * s + i - pad
                        for j in range(jlo, jhi):
                            ix = ox * s + j - pad
                            v = x[n, c, iy, ix]
                            # the first maximum wins; a NaN wins and stays (np.maximum)
                            if at < 0 or v > best or (v != v and best == best):
                                best = v
                                at = iy * w + ix
                    y[n, c, oy, ox] = best
                    arg[n, c, oy, ox] = at

    return maxpool


def _build_maxpool_grad(numba):
    @numba.njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def maxpool_grad(gy, arg, dx):  # pragma: no cover - compiled
        n_, c_, h, w = dx.shape
        ho, wo = gy.shape[2], gy.shape[3]
        for nc in numba.prange(n_ * c_):
            n = nc // c_
            c = nc - n * c_
            for iy in range(h):
                for ix in range(w):
                    dx[n, c, iy, ix] = 0
            for oy in range(ho):
                for ox in range(wo):
                    at = arg[n, c, oy, ox]
                    dx[n, c, at // w, at % w] += gy[n, c, oy, ox]

    return maxpool_grad


def _run(build, work: int, *args, always: bool = False) -> bool:
    fn = jit.kernel(build) if always or jit.worth_it(work) else None
    if fn is None:
        return False
    with jit.LOCK:
        jit.use_threads(work)
        fn(*args)
    return True


def im2col(x: np.ndarray, cols: np.ndarray, k: int, s: int, d: int, top: int, left: int,
           ho: int, wo: int) -> bool:
    """cols[n, (c·k + i)·k + j, oy·wo + ox] = x[n, c, oy·s + i·d − top, ox·s + j·d − left]
    (0 outside the image); False when the numpy path must run."""
    return _run(_build_im2col, cols.size, np.ascontiguousarray(x), cols, k, s, d, top, left,
                ho, wo)


def col2im(dcols: np.ndarray, dx: np.ndarray, k: int, s: int, d: int, top: int, left: int,
           ho: int, wo: int) -> bool:
    """The adjoint of `im2col`: dx = Σ over offsets of dcols added back to the pixels."""
    return _run(_build_col2im, dcols.size, np.ascontiguousarray(dcols), dx, k, s, d, top,
                left, ho, wo)


def maxpool(x: np.ndarray, y: np.ndarray, arg: np.ndarray, k: int, s: int, pad: int) -> bool:
    """y = each window's maximum, arg = the plane index (row·W + column) of its first maximum
    (the border of `pad` pixels counts as −∞)."""
    return _run(_build_maxpool, x.size, np.ascontiguousarray(x), y, arg, k, s, pad)


def maxpool_grad(gy: np.ndarray, arg: np.ndarray, dx: np.ndarray) -> bool:
    """dx = gy added at each window's `arg` pixel, 0 elsewhere (whatever the size: `arg`
    comes from `maxpool`, so this runs wherever that did)."""
    return _run(_build_maxpool_grad, dx.size, np.ascontiguousarray(gy), arg, dx, always=True)
