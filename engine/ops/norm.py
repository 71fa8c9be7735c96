"""Normalisation: BatchNorm over (batch, C) features or (batch, C, H, W) image channels."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.core.registry import register
from engine.errors import DataError, ShapeError
from engine.ops.base import Kernel, OpDef, Param, fmt_shape


class BatchNormKernel(Kernel):
    def __init__(self, ndim: int, momentum: float, eps: float):
        self.axes = (0,) + tuple(range(2, ndim))  # every axis but the channels
        self.bshape = (-1,) + (1,) * (ndim - 2)  # per-channel vector → broadcastable
        self.momentum = float(momentum)
        self.eps = float(eps)

    def forward(self, x):
        bs = self.bshape
        if self.training:
            n = x.size // x.shape[1]
            if n < 2:
                raise DataError(
                    "BatchNorm needs more than one value per channel while training; use a "
                    "batch size of at least 2."
                )
            mean = x.mean(axis=self.axes)
            xc = x - mean.reshape(bs)
            var = (xc * xc).mean(axis=self.axes)  # biased, used for normalising
            m = self.momentum
            rm, rv = self.buf["running_mean"], self.buf["running_var"]
            rm[...] = rm * (1.0 - m) + mean * m
            rv[...] = rv * (1.0 - m) + var * (m * n / (n - 1))  # unbiased, like PyTorch
            self.n = n
        else:
            self.n = 0  # evaluation: running statistics are constants
            var = self.buf["running_var"]
            xc = x - self.buf["running_mean"].reshape(bs)
        self.invstd = 1.0 / np.sqrt(var + self.eps)
        self.xhat = xc * self.invstd.reshape(bs)
        return self.xhat * self.w["weight"].reshape(bs) + self.w["bias"].reshape(bs)

    # dγ = Σ dy·x̂,  dβ = Σ dy;  training: dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂));
    # evaluation: dx = dy·γ/σ_running
    def backward(self, gy):
        bs, axes, xhat = self.bshape, self.axes, self.xhat
        db = gy.sum(axis=axes)
        dw = (gy * xhat).sum(axis=axes)
        self.g["weight"][...] = dw
        self.g["bias"][...] = db
        if not self.needs_input_grad[0]:
            return (None,)
        scale = (self.w["weight"] * self.invstd).reshape(bs)
        if not self.n:
            return (gy * scale,)
        inv_n = 1.0 / self.n
        return ((gy - (db * inv_n).reshape(bs) - xhat * (dw * inv_n).reshape(bs)) * scale,)


@register
class BatchNorm(OpDef):
    id = "BatchNorm"
    category = "Layers"
    description = "Normalises each channel to mean 0 and variance 1 over the batch, then rescales."
    formula = ("x̂ = (x − μ_B)/√(σ²_B + ε),  y = γ·x̂ + β;  ∂L/∂x = γ/σ·(∂L/∂y − mean(∂L/∂y) "
               "− x̂·mean(∂L/∂y·x̂)),  ∂L/∂γ = Σ ∂L/∂y·x̂,  ∂L/∂β = Σ ∂L/∂y")
    learnable = True
    params = (
        Param("momentum", "float", 0.1, "How fast the running mean and variance (used for "
              "evaluation) follow the batches: new = (1 − m)·old + m·batch.", min=0.0, max=1.0,
              step=0.01),
        Param("eps", "float", 1e-5, "Small number added to the variance to avoid dividing by 0.",
              min=1e-12, max=1.0),
    )

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        return "BatchNorm"

    def infer_shape(self, params, ins):
        x = ins["in"]
        if len(x) not in (2, 3, 4) or x[0] is not None or None in x[1:]:
            raise ShapeError(
                f"BatchNorm takes (batch, features) or (batch, channels, height, width), but "
                f"gets {fmt_shape(x)}"
            )
        return x

    def param_shapes(self, params, ins):
        c = int(self.infer_shape(params, ins)[1])
        return {"weight": (c,), "bias": (c,)}

    def buffer_shapes(self, params, ins):
        c = int(self.infer_shape(params, ins)[1])
        return {"running_mean": (c,), "running_var": (c,)}

    def init_param(self, name, shape, params, ins, rng):
        if name in ("weight", "running_var"):
            return np.ones(shape)
        return np.zeros(shape)

    def make_kernel(self, params, ins, out, dtype):
        return BatchNormKernel(len(out), params["momentum"], params["eps"])
