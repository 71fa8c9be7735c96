"""Compiled loops of Conv2D and MaxPool2D (numba, see engine.core.jit) for large images.

The numpy paths in `engine.ops.conv` copy the image once per window offset (k² strided
passes, plus a padded copy of the whole batch) and scatter gradients back the same way;
these loops work one image plane at a time (large batches split over the chunk threads,
see `_run`; large convolutions call them a few images at a time from those threads): at
stride 1
through a small zero-bordered copy of the plane (plain contiguous row copies and adds), at
other strides pixel by pixel with the border computed. Indices are unsigned wherever numba
could not otherwise prove them non-negative: its negative-index wraparound test keeps LLVM
from vectorising a loop.
They add in the numpy paths' order (no fast-math), so results are bit-identical, except for
overlapping max-pool windows, whose gradients reach a shared pixel in another order (equal
to rounding).

Max-pool's forward stays in numpy for most windows: its k² vectorised passes beat a general
compiled loop, whose data-dependent branches (which pixel is the largest) mispredict on real
data. The common 2×2 stride-2 window is the exception: written out as straight-line
compare-and-select code with a constant stride, LLVM vectorises it (≈9× the numpy passes
on the 3×32×32 CNN's first pool).

Each public function returns False (nothing done) when the caller must take its numpy path.
"""

from __future__ import annotations

import numpy as np

from engine.core import chunked, jit


def _by_stride(stride1, strided):
    """One entry point over a kernel's stride-1 and general loops.

    The choice is made here in Python, not inside a compiled function: numba cannot cache
    a compiled function that calls another one held in a closure, so such a caller was
    compiled afresh (1–3 s) in every new process."""
    def run(a, b, k, s, d, top, left, ho, wo):
        if s == 1:
            stride1(a, b, k, d, top, left, ho, wo)
        else:
            strided(a, b, k, s, d, top, left, ho, wo)
    run.dispatchers = (stride1, strided)
    return run


def _build_im2col(numba):
    @numba.njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def _stride1(x, cols, k, d, top, left, ho, wo):  # pragma: no cover - compiled
        # each plane goes once into a zero-bordered copy, so every window row is then a
        # plain contiguous copy, with no bounds tests (20–35% faster than the loop below)
        n_, c_, h, w = x.shape
        rows = cols.shape[1]
        hp, wp = ho + d * (k - 1), wo + d * (k - 1)  # the part of the padded image in use
        xf = x.reshape(n_ * c_, h * w)
        cf = cols.reshape(n_ * rows, ho * wo)
        for nc in numba.prange(n_ * c_):
            n = nc // c_
            c = nc - n * c_
            src = xf[nc]
            padded = np.zeros(hp * wp, dtype=x.dtype)
            for iy in range(max(0, -top), min(h, hp - top)):
                at, py = iy * w, (iy + top) * wp + left
                for ix in range(max(0, -left), min(w, wp - left)):
                    padded[np.uint64(py + ix)] = src[np.uint64(at + ix)]
            for i in range(k):
                for j in range(k):
                    out = cf[n * rows + (c * k + i) * k + j]
                    for oy in range(ho):
                        at, base = (oy + i * d) * wp + j * d, oy * wo
                        for ox in range(wo):  # unsigned: no wraparound test, vectorised
                            out[np.uint64(base + ox)] = padded[np.uint64(at + ox)]

    @numba.njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def _strided(x, cols, k, s, d, top, left, ho, wo):  # pragma: no cover - compiled
        n_, c_, h, w = x.shape
        for nc in numba.prange(n_ * c_):
            n = nc // c_
            c = nc - n * c_
            for i in range(k):
                for j in range(k):
                    row = (c * k + i) * k + j
                    for oy in range(ho):
                        iy = oy * s + i * d - top
                        base = oy * wo
                        if iy < 0 or iy >= h:
                            for ox in range(wo):
                                cols[n, row, base + ox] = 0
                            continue
                        # (a per-pixel bounds test measured faster than split loops)
                        for ox in range(wo):
                            ix = ox * s + j * d - left
                            if ix >= 0 and ix < w:
                                cols[n, row, base + ox] = x[n, c, iy, ix]
                            else:
                                cols[n, row, base + ox] = 0

    return _by_stride(_stride1, _strided)


def _build_col2im(numba):
    @numba.njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def _stride1(dcols, dx, k, d, top, left, ho, wo):  # pragma: no cover - compiled
        # the adjoint of im2col's stride-1 path: whole window rows added into a
        # zero-bordered plane (no bounds tests), whose inside is then dx
        n_, c_, h, w = dx.shape
        hp, wp = ho + d * (k - 1), wo + d * (k - 1)
        dxf = dx.reshape(n_ * c_, h * w)
        rows = dcols.reshape(n_ * c_ * k * k, ho * wo)
        for nc in numba.prange(n_ * c_):
            padded = np.zeros(hp * wp, dtype=dx.dtype)
            for i in range(k):  # offsets in the numpy path's order: bit-identical sums
                for j in range(k):
                    src = rows[(nc * k + i) * k + j]
                    for oy in range(ho):
                        at, base = (oy + i * d) * wp + j * d, oy * wo
                        for ox in range(wo):
                            padded[np.uint64(at + ox)] += src[np.uint64(base + ox)]
            plane = dxf[nc]
            plane[:] = 0  # pixels no window reaches ('valid' leftovers) get no gradient
            for iy in range(max(0, -top), min(h, hp - top)):
                at, py = iy * w, (iy + top) * wp + left
                for ix in range(max(0, -left), min(w, wp - left)):
                    plane[np.uint64(at + ix)] = padded[np.uint64(py + ix)]

    @numba.njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def _strided(dcols, dx, k, s, d, top, left, ho, wo):  # pragma: no cover - compiled
        n_, c_, h, w = dx.shape
        dxf = dx.reshape(n_ * c_, h * w)
        rows = dcols.reshape(n_ * c_ * k * k, ho * wo)
        for nc in numba.prange(n_ * c_):
            plane = dxf[nc]
            plane[:] = 0
            for i in range(k):  # offsets in the numpy path's order: bit-identical sums
                for j in range(k):
                    src = rows[(nc * k + i) * k + j]
                    jo = j * d - left
                    # the window columns whose pixel ox·s + jo lies inside the image, so
                    # the inner loop has no test; unsigned indices spare it numba's
                    # negative-index wraparound, which kept it from vectorising (2× slower)
                    ox0 = min(wo, max(0, (s - 1 - jo) // s))
                    ox1 = max(ox0, min(wo, (w - 1 - jo) // s + 1))
                    for oy in range(ho):
                        iy = oy * s + i * d - top
                        if iy < 0 or iy >= h:
                            continue
                        at = iy * w + jo
                        base = oy * wo
                        for ox in range(ox0, ox1):
                            plane[np.uint64(at + ox * s)] += src[np.uint64(base + ox)]

    return _by_stride(_stride1, _strided)


def _build_maxpool_grad(numba):
    @numba.njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def maxpool_grad(gy, arg, dx, offsets, s):  # pragma: no cover - compiled
        n_, c_, h, w = dx.shape
        ho, wo = gy.shape[2], gy.shape[3]
        planes = n_ * c_
        dxf = dx.reshape(planes, h * w)
        gyf = gy.reshape(planes, ho * wo)
        argf = arg.reshape(planes, ho * wo)
        for p in numba.prange(planes):
            dxp = dxf[p]
            dxp[:] = 0
            for oy in range(ho):
                for ox in range(wo):
                    q = oy * wo + ox
                    dxp[oy * s * w + ox * s + offsets[argf[p, q]]] += gyf[p, q]

    return maxpool_grad


def _build_maxpool22(numba):
    @numba.njit(parallel=True, cache=True, fastmath=False, nogil=True)
    def maxpool22(x, y, arg):  # pragma: no cover - compiled
        n_, c_, h, w = x.shape
        ho, wo = y.shape[2], y.shape[3]
        planes = n_ * c_
        xf = x.reshape(planes, h * w)
        yf = y.reshape(planes, ho * wo)
        af = arg.reshape(planes, ho * wo)
        for p in numba.prange(planes):
            src, dst, at = xf[p], yf[p], af[p]
            for oy in range(ho):
                r0 = 2 * oy * w
                r1 = r0 + w
                row = oy * wo
                for ox in range(wo):  # unsigned indices: no wraparound test, vectorised
                    a = src[np.uint64(r0 + 2 * ox)]
                    b = src[np.uint64(r0 + 2 * ox + 1)]
                    c = src[np.uint64(r1 + 2 * ox)]
                    d = src[np.uint64(r1 + 2 * ox + 1)]
                    # the numpy path's passes: the offset moves on a strictly larger value
                    # (the first maximum keeps ties); a NaN takes the value, not the offset
                    m, g = a, np.uint8(0)
                    big = b > m
                    g = np.uint8(1) if big else g
                    m = b if big | (b != b) else m
                    big = c > m
                    g = np.uint8(2) if big else g
                    m = c if big | (c != c) else m
                    big = d > m
                    g = np.uint8(3) if big else g
                    m = d if big | (d != d) else m
                    dst[np.uint64(row + ox)] = m
                    at[np.uint64(row + ox)] = g

    return maxpool22


def _run(build, work: int, images: tuple, *rest) -> bool:
    """`build`'s kernel on the batch-first arrays `images` and the arguments `rest`, split
    over the batch on the chunk threads when it is large (`chunked.run`); False when the
    numpy path must run."""
    fn = jit.kernel(build) if jit.worth_it(work) else None
    if fn is None:
        return False
    with jit.LOCK:
        # numba's own threads stay unused (the 3×32×32 CNN step took 29 ms instead of 16
        # with two, see jit.PARALLEL_WORK); the chunk threads sleep between calls
        chunked.run(fn, images, rest, rows=True)
    return True


def raw_kernels():
    """(im2col, col2im) compiled, taking `im2col`'s and `col2im`'s arguments, for a caller
    that splits the batch itself inside `jit.LOCK` (x and dcols C-contiguous) and has
    checked `jit.worth_it`; None when the numpy path must run."""
    scatter = jit.kernel(_build_col2im)
    return None if scatter is None else (jit.kernel(_build_im2col), scatter)


def raw_pool_kernels():
    """(maxpool22, maxpool_grad) compiled, taking the arguments of `_build_maxpool22`'s and
    `_build_maxpool_grad`'s loops (offsets, not k), for a caller that runs them a few
    images at a time inside `jit.LOCK` and has checked `jit.worth_it`."""
    return jit.kernel(_build_maxpool22), jit.kernel(_build_maxpool_grad)


def im2col(x: np.ndarray, cols: np.ndarray, k: int, s: int, d: int, top: int, left: int,
           ho: int, wo: int) -> bool:
    """cols[n, (c·k + i)·k + j, oy·wo + ox] = x[n, c, oy·s + i·d − top, ox·s + j·d − left]
    (0 outside the image); False when the numpy path must run."""
    return _run(_build_im2col, cols.size, (np.ascontiguousarray(x), cols), k, s, d, top,
                left, ho, wo)


def col2im(dcols: np.ndarray, dx: np.ndarray, k: int, s: int, d: int, top: int, left: int,
           ho: int, wo: int) -> bool:
    """The adjoint of `im2col`: dx = Σ over offsets of dcols added back to the pixels."""
    return _run(_build_col2im, dcols.size, (np.ascontiguousarray(dcols), dx), k, s, d, top,
                left, ho, wo)


def maxpool22(x: np.ndarray, y: np.ndarray, arg: np.ndarray) -> bool:
    """2×2 max pooling with stride 2: y = each window's maximum (NaN if it holds one), arg =
    the offset i·2 + j of its first maximum (uint8), as MaxPoolKernel's numpy path."""
    return _run(_build_maxpool22, x.size, (np.ascontiguousarray(x), y, arg))


def maxpool_grad(gy: np.ndarray, arg: np.ndarray, dx: np.ndarray, k: int, s: int) -> bool:
    """dx = gy added at each window's maximum, 0 elsewhere: window (oy, ox) with offset
    arg = i·k + j sends its gradient to pixel (oy·s + i, ox·s + j) of the (padded) dx."""
    w = dx.shape[3]
    offsets = np.array([i * w + j for i in range(k) for j in range(k)], dtype=np.int64)
    return _run(_build_maxpool_grad, dx.size, (np.ascontiguousarray(gy), arg, dx), offsets, s)
