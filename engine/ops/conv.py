"""Convolution and pooling over images laid out (batch, channels, height, width)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine.errors import ShapeError
from engine.ops.base import Kernel, OpDef, Param, fmt_shape
from engine.ops.layers import INITS, init_weight
from engine.registry import register


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


def _windows(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """View (N, C, Ho, Wo, k, k) of every k×k window at stride s (no copy)."""
    w = sliding_window_view(x, (k, k), axis=(2, 3))
    return w[:, :, ::s, ::s] if s > 1 else w


def _scatter_windows(dwin: np.ndarray, shape: tuple[int, ...], s: int) -> np.ndarray:
    """Adjoint of _windows: add each window's gradient (N, C, Ho, Wo, k, k) back into an
    array of `shape` (N, C, H, W). One vectorised slice-add per kernel offset."""
    dx = np.zeros(shape, dtype=dwin.dtype)
    ho, wo, kh, kw = dwin.shape[2:]
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s] += dwin[:, :, :, :, i, j]
    return dx


class Conv2DKernel(Kernel):
    def __init__(self, k: int, stride: int, pads: tuple[int, int, int, int], bias: bool):
        self.k, self.stride, self.pads, self.bias = k, stride, pads, bias

    def forward(self, x):
        n = x.shape[0]
        top, bottom, left, right = self.pads
        if top or bottom or left or right:
            x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
        self.xp_shape = x.shape
        win = _windows(x, self.k, self.stride)  # (N, C, Ho, Wo, k, k)
        ho, wo = win.shape[2:4]
        # im2col: one row per output position, C·k·k columns
        self.cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, -1)
        weight = self.w["weight"]
        y = self.cols @ weight.reshape(weight.shape[0], -1).T  # (N·Ho·Wo, F)
        if self.bias:
            y += self.w["bias"]
        return np.ascontiguousarray(y.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2))

    # dW = Σ dy ⋆ x (dyᵀ·cols),  db = Σ dy,  dx = col2im(dy·W) (full correlation with W)
    def backward(self, gy):
        n, f, ho, wo = gy.shape
        gmat = gy.transpose(0, 2, 3, 1).reshape(-1, f)  # (N·Ho·Wo, F)
        np.matmul(gmat.T, self.cols, out=self.g["weight"].reshape(f, -1))
        if self.bias:
            gmat.sum(axis=0, out=self.g["bias"])
        if not self.needs_input_grad[0]:
            return (None,)
        weight = self.w["weight"]
        c, k = weight.shape[1], self.k
        dcols = (gmat @ weight.reshape(f, -1)).reshape(n, ho, wo, c, k, k)
        dxp = _scatter_windows(dcols.transpose(0, 3, 1, 2, 4, 5), self.xp_shape, self.stride)
        top, bottom, left, right = self.pads
        hp, wp = self.xp_shape[2:]
        return (dxp[:, :, top:hp - bottom, left:wp - right],)


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
              "ceil(size/stride); 'valid' does not pad.", choices=("same", "valid")),
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
        k, s = int(params["kernel"]), int(params["stride"])
        h, w = x[2], x[3]
        if params["padding"] == "same":
            ho, top, bottom = same_padding(h, k, s)
            wo, left, right = same_padding(w, k, s)
            return ho, wo, (top, bottom, left, right)
        if h < k or w < k:
            raise ShapeError(
                f"the {k}×{k} filter is larger than the {h}×{w} image of input shape "
                f"{fmt_shape(x)}; use a smaller kernel or padding 'same'"
            )
        return (h - k) // s + 1, (w - k) // s + 1, (0, 0, 0, 0)

    def infer_shape(self, params, ins):
        ho, wo, _ = self._geometry(params, ins["in"])
        return (None, int(params["filters"]), ho, wo)

    def param_shapes(self, params, ins):
        _check_image("Conv2D", ins["in"])
        k, f = int(params["kernel"]), int(params["filters"])
        shapes = {"weight": (f, int(ins["in"][1]), k, k)}
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
        return Conv2DKernel(int(params["kernel"]), int(params["stride"]), pads,
                            bool(params["bias"]))


class _Pool(OpDef):
    category = "Layers"
    params = (
        Param("size", "int", 2, "Window size k (k×k pixels).", min=1, max=32),
        Param("stride", "int", 0, "Step between windows; 0 means the same as the size "
              "(windows do not overlap).", min=0, max=32),
    )
    label: str = ""

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
        if x[2] < k or x[3] < k:
            raise ShapeError(
                f"the {k}×{k} window is larger than the {x[2]}×{x[3]} image of input shape "
                f"{fmt_shape(x)}; use a smaller size"
            )
        return (None, x[1], (x[2] - k) // s + 1, (x[3] - k) // s + 1)


class MaxPoolKernel(Kernel):
    def __init__(self, k: int, s: int):
        self.k, self.s = k, s

    def forward(self, x):
        self.shape = x.shape
        win = _windows(x, self.k, self.s)
        n, c, ho, wo = win.shape[:4]
        flat = win.reshape(n, c, ho, wo, self.k * self.k)
        self.arg = flat.argmax(axis=-1)  # first maximum on ties, like PyTorch
        return np.take_along_axis(flat, self.arg[..., None], axis=-1)[..., 0]

    # dx = dy routed to the position of each window's maximum
    def backward(self, gy):
        k, s = self.k, self.s
        dx = np.zeros(self.shape, dtype=gy.dtype)
        ho, wo = gy.shape[2:]
        for i in range(k):
            for j in range(k):
                hit = self.arg == i * k + j
                if hit.any():
                    dx[:, :, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s] += gy * hit
        return (dx,)


@register
class MaxPool2D(_Pool):
    id = "MaxPool2D"
    label = "MaxPool"
    description = "Keeps the largest value of each window, shrinking the image."
    formula = "y = max over each k×k window;  ∂L/∂x = ∂L/∂y at the window's maximum, 0 elsewhere"

    def make_kernel(self, params, ins, out, dtype):
        return MaxPoolKernel(*self.geometry(params))


class AvgPoolKernel(Kernel):
    def __init__(self, k: int, s: int):
        self.k, self.s = k, s

    def forward(self, x):
        self.shape = x.shape
        return _windows(x, self.k, self.s).mean(axis=(-2, -1))

    # dx = dy / k² spread over each window
    def backward(self, gy):
        k, s = self.k, self.s
        g = gy * (1.0 / (k * k))
        if s == k and self.shape[2] % k == 0 and self.shape[3] % k == 0:
            n, c, ho, wo = g.shape
            dx = np.broadcast_to(g[:, :, :, None, :, None], (n, c, ho, k, wo, k))
            return (dx.reshape(self.shape),)
        dx = np.zeros(self.shape, dtype=gy.dtype)
        ho, wo = gy.shape[2:]
        for i in range(k):
            for j in range(k):
                dx[:, :, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s] += g
        return (dx,)


@register
class AvgPool2D(_Pool):
    id = "AvgPool2D"
    label = "AvgPool"
    description = "Averages each window, shrinking the image."
    formula = "y = mean over each k×k window;  ∂L/∂x = ∂L/∂y / k² for every pixel of the window"

    def make_kernel(self, params, ins, out, dtype):
        return AvgPoolKernel(*self.geometry(params))

