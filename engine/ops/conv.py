"""Convolution and pooling over images laid out (batch, channels, height, width)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.core import chunked, jit
from engine.core.registry import register
from engine.errors import ShapeError
from engine.ops import conv_jit
from engine.ops.base import Kernel, OpDef, Param, fmt_shape, numel
from engine.ops.layers import INITS, init_weight

# Images whose columns are built and multiplied in one pass of the compiled path: 8 images
# of the 3×32×32 CNN's second convolution are 1.2 MB of columns, within a core's L2 cache
# (its step: 1 image 13.3 ms, 2: 11.7, 4: 10.9, 8: 10.7, 16: 10.9; measured while the
# columns were still kept for backward, and again after, with the same order).
IMAGES_PER_PASS = 8


def _by_images(outputs: int, inner: int) -> bool:
    """Whether a product of `outputs` values, each a sum of `inner` terms, is large enough
    for the image-by-image compiled path: on smaller ones its per-pass calls cost more than
    the cache saves (case (d)'s step: 2.7 ms batch-wide, 2.9–3.2 ms image by image)."""
    return 2 * outputs * inner >= chunked.MIN_SPLIT_FLOPS


def _check_image(op: str, x) -> None:
    if len(x) != 4 or x[0] is not None or None in x[1:]:
        raise ShapeError(
            f"{op} takes images of shape (batch, channels, height, width), but gets "
            f"{fmt_shape(x)}; use an Input with a shape such as [1, 28, 28] or a Reshape"
        )


def same_padding(size: int, k: int, stride: int) -> tuple[int, int, int]:
    """Output size ceil(size/stride) and the (before, after) padding that gives it (as TF).

    For stride 1 and an odd kernel this is k//2 on each side, like PyTorch padding='same';
    an odd total puts the extra row/column after (bottom/right).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return out, total // 2, total - total // 2


def _offset_slices(k: int, s: int, ho: int, wo: int, d: int = 1):
    """(i·k + j, slice of the rows, slice of the columns) of each window offset (i, j);
    `d` is the dilation (the gap between the taps of the window)."""
    for i in range(k):
        for j in range(k):
            yield (i * k + j, slice(i * d, i * d + s * (ho - 1) + 1, s),
                   slice(j * d, j * d + s * (wo - 1) + 1, s))


class Conv2DKernel(Kernel):
    """Convolution as one matrix product per sample over the image's columns (im2col).

    The columns are laid out (N, C·k·k, Ho·Wo), so W·cols gives the output (N, F, Ho·Wo)
    in place, with no transposes; large images build and scatter them with compiled loops
    (`engine.ops.conv_jit`), small ones with k² strided numpy copies.

    Without groups the bias rides in the same products: the columns carry one more row of
    ones and the weights one more column (the bias), so W·cols adds it and cols·dyᵀ sums
    its gradient, saving a pass over the output and one over its gradient each step.
    Large convolutions on the compiled path go a few images at a time, split over the
    chunk threads (`_forward_by_images`).
    """

    def __init__(self, k: int, stride: int, pads: tuple[int, int, int, int], bias: bool,
                 dilation: int = 1, groups: int = 1, flops_per_sample: int = 0):
        self.k, self.stride, self.pads, self.bias = k, stride, pads, bias
        self.dilation, self.groups = dilation, groups
        self.fused_bias = bias and groups == 1
        self.split_flops_per_sample = flops_per_sample

    def _geometry(self, h: int, w: int) -> tuple[int, int]:
        top, bottom, left, right = self.pads
        span = self.dilation * (self.k - 1) + 1
        return ((h + top + bottom - span) // self.stride + 1,
                (w + left + right - span) // self.stride + 1)

    def goes_by_images(self, x_shape: tuple[int, ...]) -> bool:
        """Whether `forward` takes inputs of this shape image by image (compiled)."""
        if not self.fused_bias:
            return False
        weight = self.w["weight"]
        rows = weight[0].size + 1  # C·k·k and the bias
        pixels = x_shape[0] * math.prod(self._geometry(*x_shape[2:]))
        return (_by_images(pixels * weight.shape[0], rows) and jit.worth_it(pixels * rows)
                and conv_jit.raw_kernels() is not None)

    def _im2col(self, x, extra: int = 0):
        """The columns (N, C·k·k + extra, Ho·Wo); the `extra` last rows are left unset."""
        n, c, h, w = x.shape
        k, s, d = self.k, self.stride, self.dilation
        top, bottom, left, right = self.pads
        ho, wo = self._geometry(h, w)
        kk = c * k * k
        cols = np.empty((n, kk + extra, ho * wo), dtype=x.dtype)
        if conv_jit.im2col(x, cols, k, s, d, top, left, ho, wo):
            return cols
        if top or bottom or left or right:
            xp = np.zeros((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
            xp[:, :, top:top + h, left:left + w] = x
            x = xp
        view = cols[:, :kk].reshape(n, c, k, k, ho, wo)
        for o, rows, cs in _offset_slices(k, s, ho, wo, d):  # one strided copy per offset
            view[:, :, o // k, o % k] = x[:, :, rows, cs]
        return cols

    def _col2im(self, dcols, x_shape):
        n, c, h, w = x_shape
        k, s, d = self.k, self.stride, self.dilation
        top, bottom, left, right = self.pads
        ho, wo = self._geometry(h, w)
        dx = np.empty(x_shape, dtype=dcols.dtype)
        if conv_jit.col2im(dcols, dx, k, s, d, top, left, ho, wo):
            return dx
        hp, wp = h + top + bottom, w + left + right
        dxp = np.zeros((n, c, hp, wp), dtype=dcols.dtype) if hp != h or wp != w else dx
        if dxp is dx:
            dx.fill(0.0)
        view = dcols.reshape(n, c, k, k, ho, wo)
        for o, rows, cs in _offset_slices(k, s, ho, wo, d):  # one strided add per offset
            dxp[:, :, rows, cs] += view[:, :, o // k, o % k]
        return dxp[:, :, top:hp - bottom, left:wp - right]

    def forward(self, x, after=None):
        """The convolution of `x`. When it goes image by image (then `self.images` is set
        afterwards), `after(y, a, b)` runs on each pass's images a…b of the output
        y (N, F, Ho·Wo) in the thread that wrote them, while they are in its cache."""
        self.x_shape = x.shape
        weight = self.w["weight"]
        f, g = weight.shape[0], self.groups
        kk = weight[0].size * g  # C·k·k
        if self.fused_bias:
            wb = np.empty((f, kk + 1), dtype=weight.dtype)
            wb[:, :kk] = weight.reshape(f, kk)
            wb[:, kk] = self.w["bias"]
            ho, wo = self._geometry(*x.shape[2:])
            if self.goes_by_images(x.shape):
                return self._forward_by_images(x, wb, conv_jit.raw_kernels()[0],
                                               after).reshape(x.shape[0], f, ho, wo)
            self.images = None
            self.cols = cols = self._im2col(x, extra=1)  # (N, C·k·k + 1, Ho·Wo)
            cols[:, kk] = 1.0
            y = chunked.matmul(wb, cols, np.empty((len(cols), f, cols.shape[2]), cols.dtype))
            return y.reshape(x.shape[0], f, ho, wo)
        self.images = None
        self.cols = cols = self._im2col(x)  # (N, C·k·k, Ho·Wo)
        n, p = cols.shape[0], cols.shape[2]
        y = np.empty((n, f, p), dtype=cols.dtype)
        if g == 1:
            chunked.matmul(weight.reshape(f, kk), cols, y)
        else:  # each group of filters sees its own group of channels
            chunked.matmul(weight.reshape(g, f // g, -1), cols.reshape(n, g, kk // g, p),
                           y.reshape(n, g, f // g, p))
        if self.bias:
            y += self.w["bias"][:, None]
        return y.reshape(n, f, *self._geometry(*x.shape[2:]))

    # dW = Σ_n dy_n·cols_nᵀ,  db = Σ dy,  dx = col2im(Wᵀ·dy) (the full correlation with W)
    def backward(self, gy, before=None):
        """(dL/dx,) from dL/dy. `before(a, b)`, only for a forward that went image by
        image on the compiled path, runs first on each pass's images a…b: it may write
        those images' gy (the caller's fused passes, see engine.ops.conv_chain)."""
        n, f = gy.shape[:2]
        if self.images is not None:  # the forward went image by image
            compiled = conv_jit.raw_kernels()
            if compiled is not None:
                return self._backward_by_images(gy.reshape(n, f, -1), *compiled, before)
            # numba switched off since the forward: build the columns the numpy way
            cols = self._im2col(self.images, extra=1)
            cols[:, self.w["weight"][0].size] = 1.0
            self.cols, self.images = cols, None
        if before is not None:
            raise RuntimeError("a pass hook needs the image-by-image compiled backward")
        g, cols = self.groups, self.cols
        weight = self.w["weight"]
        kk = weight[0].size * g
        p = cols.shape[2]
        gy = gy.reshape(n, f, p)
        # (C·k·k, Ho·Wo)·(Ho·Wo, F) per sample is the faster order for BLAS (a short
        # output, the long Ho·Wo axis contiguous in both operands), summed over the batch
        if self.fused_bias:
            dwb = chunked.matmul(cols, gy.transpose(0, 2, 1),
                                 np.empty((n, kk + 1, f), cols.dtype)).sum(axis=0)  # (C·k·k+1, F)
            self.g["weight"].reshape(f, kk)[...] = dwb[:kk].T
            self.g["bias"][...] = dwb[kk]
        else:
            gy_g = gy.reshape(n, g, f // g, p)
            cols_g = cols.reshape(n, g, kk // g, p)
            dw = chunked.matmul(cols_g, gy_g.transpose(0, 1, 3, 2),
                                np.empty((n, g, kk // g, f // g), cols.dtype)).sum(axis=0)
            self.g["weight"].reshape(g, f // g, -1)[...] = dw.transpose(0, 2, 1)
            if self.bias:
                gy.sum(axis=(0, 2), out=self.g["bias"])
        if not self.needs_input_grad[0]:
            return (None,)
        wg = weight.reshape(g, f // g, -1)
        dcols = chunked.matmul(wg.transpose(0, 2, 1), gy.reshape(n, g, f // g, p),
                               np.empty((n, g, kk // g, p), gy.dtype))
        return (self._col2im(dcols.reshape(n, kk, p), self.x_shape),)

    # The compiled path, a few images at a time: each image's columns are built (again in
    # backward, rather than kept) and at once multiplied, and its column gradients
    # multiplied and scattered back, while they are still in the core's L2 cache; the batch
    # is split over the chunk threads (engine.core.chunked). Same products and loops per
    # image as the batch-wide path, so the same bits.

    def _forward_by_images(self, x, wb, im2col, after=None):
        n = x.shape[0]
        f, kk = wb.shape[0], wb.shape[1] - 1
        ho, wo = self._geometry(*x.shape[2:])
        # the columns are not kept: backward builds them again, a few images at a time,
        # which costs less than writing them all to memory and reading them back
        self.cols, self.images = None, np.ascontiguousarray(x)
        y = np.empty((n, f, ho * wo), dtype=x.dtype)

        columns = self._columns_of_images(im2col)

        def images(start: int, stop: int) -> None:
            cols = np.empty((min(IMAGES_PER_PASS, stop - start), kk + 1, ho * wo), x.dtype)
            cols[:, kk] = 1.0
            for a in range(start, stop, IMAGES_PER_PASS):
                b = min(stop, a + IMAGES_PER_PASS)
                columns(a, b, cols)
                np.matmul(wb, cols[:b - a], out=y[a:b])
                if after is not None:
                    after(y, a, b)

        with jit.LOCK:
            chunked.split(images, n, blas=True)
        return y

    def _columns_of_images(self, im2col):
        """columns(a, b, cols): the columns of the saved images a…b into cols[:b − a]."""
        x, k, s, d = self.images, self.k, self.stride, self.dilation
        top, _, left, _ = self.pads
        ho, wo = self._geometry(*x.shape[2:])

        def columns(a: int, b: int, cols) -> None:
            im2col(x[a:b], cols[:b - a], k, s, d, top, left, ho, wo)

        return columns

    def _backward_by_images(self, gy, im2col, col2im, before=None):
        weight = self.w["weight"]
        n, f, p = gy.shape
        kk = weight[0].size
        k, s, d = self.k, self.stride, self.dilation
        top, _, left, _ = self.pads
        ho, wo = self._geometry(*self.x_shape[2:])
        if before is None:
            gy = np.ascontiguousarray(gy)
        elif not gy.flags.c_contiguous:
            raise ValueError("a pass hook writes gy: it must be C-contiguous")
        gyt = gy.transpose(0, 2, 1)
        parts = np.empty((n, kk + 1, f), dtype=gy.dtype)
        wt = weight.reshape(f, kk).T
        dx = np.empty(self.x_shape, dtype=gy.dtype) if self.needs_input_grad[0] else None
        columns = self._columns_of_images(im2col)

        def images(start: int, stop: int) -> None:
            most = min(IMAGES_PER_PASS, stop - start)
            cols = np.empty((most, kk + 1, p), dtype=gy.dtype)
            cols[:, kk] = 1.0
            dcols = None if dx is None else np.empty((most, kk, p), dtype=gy.dtype)
            for a in range(start, stop, IMAGES_PER_PASS):
                b = min(stop, a + IMAGES_PER_PASS)
                if before is not None:
                    before(a, b)
                columns(a, b, cols)
                np.matmul(cols[:b - a], gyt[a:b], out=parts[a:b])
                if dx is not None:
                    np.matmul(wt, gy[a:b], out=dcols[:b - a])
                    col2im(dcols[:b - a], dx[a:b], k, s, d, top, left, ho, wo)

        with jit.LOCK:
            chunked.split(images, n, blas=True)
        dwb = parts.sum(axis=0)  # (C·k·k + 1, F)
        self.g["weight"].reshape(f, kk)[...] = dwb[:kk].T
        self.g["bias"][...] = dwb[kk]
        return (dx,)


@register
class Conv2D(OpDef):
    id = "Conv2D"
    category = "Layers"
    description = "2-D convolution: slides small learnable filters over an image."
    formula = ("y[f] = Σ_c W[f, c] ⋆ x[c] + b[f];  ∂L/∂W = ∂L/∂y ⋆ x,  ∂L/∂b = Σ ∂L/∂y,  "
               "∂L/∂x = ∂L/∂y ∗ W (full convolution)")
    learnable = True
    params = (
        Param("filters", "int", 8, "Number of filters (output channels).", min=1, max=4096),
        Param("kernel", "int", 3, "Filter size k (k×k pixels).", min=1, max=31),
        Param("stride", "int", 1, "Step between filter positions.", min=1, max=16),
        Param("padding", "choice", "same", "'same' pads the border so the output is "
              "ceil(size/stride); 'valid' does not pad; 'number' adds 'pad' rows and columns "
              "of zeros on every side.", choices=("same", "valid", "number")),
        Param("pad", "int", 1, "Rows and columns of zeros added on each side when padding is "
              "'number' (PyTorch's padding=pad).", min=0, max=64),
        Param("dilation", "int", 1, "Gap between the filter's taps: 2 spreads a 3×3 filter "
              "over 5×5 pixels (PyTorch's dilation).", min=1, max=16),
        Param("groups", "int", 1, "Split the channels and the filters into this many groups; "
              "each filter sees only its group's channels (PyTorch's groups; = channels "
              "and filters for a depthwise convolution).", min=1, max=4096),
        Param("bias", "bool", True, "Add a learnable bias to each filter."),
        Param("init", "choice", "he", "How the weights start (see Dense).", choices=INITS),
    )

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        k = params.get("kernel", 3)
        text = f"Conv {params.get('filters', 8)}@{k}×{k}"
        if params.get("stride", 1) != 1:
            text += f"/{params['stride']}"
        return text

    def _geometry(self, params, x) -> tuple[int, int, tuple[int, int, int, int]]:
        _check_image("Conv2D", x)
        s = int(params["stride"])
        k = int(params.get("dilation", 1)) * (int(params["kernel"]) - 1) + 1  # dilated span
        h, w = x[2], x[3]
        if params["padding"] == "same":
            ho, top, bottom = same_padding(h, k, s)
            wo, left, right = same_padding(w, k, s)
            return ho, wo, (top, bottom, left, right)
        p = int(params["pad"]) if params["padding"] == "number" else 0
        h, w = h + 2 * p, w + 2 * p
        if h < k or w < k:
            raise ShapeError(
                f"the filter spans {k}×{k} pixels, more than the {h}×{w} (padded) image of "
                f"input shape {fmt_shape(x)}; use a smaller kernel or padding 'same'"
            )
        return (h - k) // s + 1, (w - k) // s + 1, (p, p, p, p)

    def infer_shape(self, params, ins):
        ho, wo, _ = self._geometry(params, ins["in"])
        c, f, g = ins["in"][1], int(params["filters"]), int(params["groups"])
        if c % g or f % g:
            raise ShapeError(f"{g} groups need the channels ({c}) and the filters ({f}) to "
                             f"divide by {g}")
        return (None, f, ho, wo)

    def param_shapes(self, params, ins):
        self.infer_shape(params, ins)
        k, f = int(params["kernel"]), int(params["filters"])
        shapes = {"weight": (f, int(ins["in"][1]) // int(params["groups"]), k, k)}
        if params["bias"]:
            shapes["bias"] = (f,)
        return shapes

    def init_param(self, name, shape, params, ins, rng):
        if name == "bias":
            return np.zeros(shape)
        f, c, kh, kw = shape
        return init_weight(params["init"], shape, c * kh * kw, f * kh * kw, rng)

    def make_kernel(self, params, ins, out, dtype):
        _, _, pads = self._geometry(params, ins["in"])
        k, groups = int(params["kernel"]), int(params["groups"])
        # the forward product: each output value sums C/groups·k·k (+ bias) terms
        terms = ins["in"][1] // groups * k * k + 1
        return Conv2DKernel(k, int(params["stride"]), pads, bool(params["bias"]),
                            int(params["dilation"]), groups,
                            flops_per_sample=2 * numel(out[1:]) * terms)


class _Pool(OpDef):
    category = "Layers"
    params = (
        Param("size", "int", 2, "Window size k (k×k pixels).", min=1, max=32),
        Param("stride", "int", 0, "Step between windows; 0 means the same as the size "
              "(windows do not overlap).", min=0, max=32),
        Param("padding", "int", 0, "Rows and columns added on each side first (at most half "
              "the size, as PyTorch); max pooling pads with −∞, average pooling with zeros "
              "that count in the average.", min=0, max=16),
    )
    label: str = ""
    kernel_class: type[Kernel]

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        k = params.get("size", 2)
        s = params.get("stride", 0) or k
        return f"{cls.label} {k}×{k}" + (f"/{s}" if s != k else "")

    @staticmethod
    def geometry(params) -> tuple[int, int]:
        k = int(params["size"])
        return k, int(params["stride"]) or k

    def infer_shape(self, params, ins):
        x = ins["in"]
        _check_image(self.id, x)
        k, s = self.geometry(params)
        p = int(params.get("padding", 0))
        if 2 * p > k:
            raise ShapeError(f"the padding {p} is more than half the window size {k}")
        h, w = x[2] + 2 * p, x[3] + 2 * p
        if h < k or w < k:
            raise ShapeError(
                f"the {k}×{k} window is larger than the {x[2]}×{x[3]} image of input shape "
                f"{fmt_shape(x)}; use a smaller size"
            )
        return (None, x[1], (h - k) // s + 1, (w - k) // s + 1)

    def make_kernel(self, params, ins, out, dtype):
        return self.kernel_class(*self.geometry(params), int(params.get("padding", 0)))


class _PaddedPoolKernel(Kernel):
    """Pads the image with `fill` before pooling; backward crops the padding off again."""

    fill = 0.0

    def __init__(self, k: int, s: int, pad: int = 0):
        self.k, self.s, self.pad = k, s, pad

    def padded(self, x):
        p = self.pad
        if not p:
            return x
        return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.fill)

    def cropped(self, dx):
        p = self.pad
        return dx[:, :, p:dx.shape[2] - p, p:dx.shape[3] - p] if p else dx


class MaxPoolKernel(_PaddedPoolKernel):
    """Forward keeps, per window, which offset held the maximum (`arg`, the first one in
    row-major order, as PyTorch); backward routes the gradient there in one scatter."""

    fill = -np.inf

    def forward(self, x):
        x = self.padded(x)
        self.xp_shape = x.shape
        k, s = self.k, self.s
        ho, wo = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
        if k == s == 2:  # the common window: one compiled pass when it pays
            y = np.empty((*x.shape[:2], ho, wo), dtype=x.dtype)
            arg = np.empty(y.shape, dtype=np.uint8)
            if conv_jit.maxpool22(x, y, arg):
                self.arg = arg
                return y
        slices = [x[:, :, rows, cols] for _, rows, cols in _offset_slices(k, s, ho, wo)]
        y = slices[0].copy()
        kind = np.uint8 if k * k <= 256 else np.uint16
        arg, larger = np.zeros(y.shape, dtype=kind), np.empty(y.shape, dtype=bool)
        hit = np.empty(y.shape, dtype=kind)
        for o, xs in enumerate(slices[1:], 1):  # a few vectorised passes per window offset
            np.greater(xs, y, out=larger)  # strictly: ties stay with the first maximum
            # arg < o so far, so max(arg, o·larger) sets o where larger (no masked copy: slow)
            np.multiply(larger, kind(o), out=hit)
            np.maximum(arg, hit, out=arg)
            np.maximum(y, xs, out=y)  # NaN wins, as np.maximum
        self.arg = arg
        return y

    # dx = dy routed to the first position (row-major, like PyTorch) of each window's maximum
    def backward(self, gy):
        k, s, arg = self.k, self.s, self.arg
        n, c, hp, wp = self.xp_shape
        dx = np.empty(self.xp_shape, dtype=gy.dtype)
        if conv_jit.maxpool_grad(gy, arg, dx, k, s):
            return (self.cropped(dx),)
        ho, wo = arg.shape[2:]
        if s < k or ho * s != hp or wo * s != wp:  # some pixels in no window or in several
            dx.fill(0.0)
        for o, rows, cols in _offset_slices(k, s, ho, wo):
            routed = gy * (arg == o)
            if s < k:
                dx[:, :, rows, cols] += routed
            else:  # each input pixel belongs to one window: write, don't accumulate
                dx[:, :, rows, cols] = routed
        return (self.cropped(dx),)


@register
class MaxPool2D(_Pool):
    id = "MaxPool2D"
    label = "MaxPool"
    description = "Keeps the largest value of each window, shrinking the image."
    formula = "y = max over each k×k window;  ∂L/∂x = ∂L/∂y at the window's maximum, 0 elsewhere"

    kernel_class = MaxPoolKernel


class AvgPoolKernel(_PaddedPoolKernel):
    def forward(self, x):
        x = self.padded(x)
        self.shape = x.shape
        k, s = self.k, self.s
        ho, wo = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
        slices = [x[:, :, rows, cols] for _, rows, cols in _offset_slices(k, s, ho, wo)]
        y = slices[0].copy()
        for xs in slices[1:]:  # one vectorised add per window offset
            y += xs
        y *= 1.0 / (k * k)
        return y

    # dx = dy / k² spread over each window
    def backward(self, gy):
        k, s = self.k, self.s
        g = gy * (1.0 / (k * k))
        if s == k and self.shape[2] % k == 0 and self.shape[3] % k == 0:
            n, c, ho, wo = g.shape
            dx = np.broadcast_to(g[:, :, :, None, :, None], (n, c, ho, k, wo, k))
            return (self.cropped(dx.reshape(self.shape)),)
        dx = np.zeros(self.shape, dtype=gy.dtype)
        for _, rows, cols in _offset_slices(k, s, *gy.shape[2:]):
            dx[:, :, rows, cols] += g
        return (self.cropped(dx),)


@register
class AvgPool2D(_Pool):
    id = "AvgPool2D"
    label = "AvgPool"
    description = "Averages each window, shrinking the image."
    formula = "y = mean over each k×k window;  ∂L/∂x = ∂L/∂y / k² for every pixel of the window"

    kernel_class = AvgPoolKernel



class GlobalAvgPoolKernel(Kernel):
    def forward(self, x):
        self.shape = x.shape
        return x.mean(axis=(2, 3))

    # dx = dy / (H·W) for every pixel of the channel
    def backward(self, gy):
        n, c, h, w = self.shape
        g = gy * (1.0 / (h * w))
        return (np.broadcast_to(g[:, :, None, None], self.shape),)


@register
class GlobalAvgPool2D(OpDef):
    id = "GlobalAvgPool2D"
    category = "Layers"
    description = "Averages each channel over the whole image: (batch, C, H, W) → (batch, C)."
    formula = "y[c] = mean over all pixels of x[c];  ∂L/∂x[c, i, j] = ∂L/∂y[c] / (H·W)"

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        return "GlobalAvgPool"

    def infer_shape(self, params, ins):
        x = ins["in"]
        _check_image(self.id, x)
        return (None, x[1])

    def make_kernel(self, params, ins, out, dtype):
        return GlobalAvgPoolKernel()
