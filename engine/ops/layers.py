"""Layers: Dense, Flatten, Reshape, Dropout."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.errors import ShapeError
from engine.ops.base import Kernel, OpDef, Param, fmt_shape
from engine.registry import register

INITS = ("he", "xavier", "normal", "zeros")


def init_weight(kind: str, shape: tuple[int, ...], fan_in: int, fan_out: int,
                rng: np.random.Generator) -> np.ndarray:
    """He (Kaiming) normal, Xavier (Glorot) uniform, N(0, 0.01²) or zeros."""
    if kind == "he":
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)
    if kind == "xavier":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape)
    if kind == "normal":
        return rng.normal(0.0, 0.01, size=shape)
    return np.zeros(shape)


class DenseKernel(Kernel):
    def __init__(self, bias: bool):
        self.bias = bias

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        y = x @ self.w["weight"].T
        if self.bias:
            y += self.w["bias"]
        return y

    # dW = dyᵀ·x,  db = Σ_batch dy,  dx = dy·W
    def backward(self, gy: np.ndarray) -> tuple[np.ndarray | None, ...]:
        np.matmul(gy.T, self.x, out=self.g["weight"])
        if self.bias:
            gy.sum(axis=0, out=self.g["bias"])
        if self.needs_input_grad[0]:
            return (gy @ self.w["weight"],)
        return (None,)


@register
class Dense(OpDef):
    id = "Dense"
    category = "Layers"
    description = "Fully connected layer: every output is a weighted sum of all inputs plus a bias."
    formula = "y = x·Wᵀ + b;  ∂L/∂W = (∂L/∂y)ᵀ·x,  ∂L/∂b = Σ ∂L/∂y,  ∂L/∂x = ∂L/∂y·W"
    learnable = True
    params = (
        Param("units", "int", 8, "Number of outputs (neurons).", min=1, max=1_000_000),
        Param("bias", "bool", True, "Add a learnable bias to each output."),
        Param("init", "choice", "he", "How the weights start: He (good before ReLU), Xavier "
              "(good before tanh/sigmoid), small normal, or zeros.", choices=INITS),
    )

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        return f"Dense {params.get('units', 8)}"

    def infer_shape(self, params, ins):
        x = ins["in"]
        if len(x) != 2 or x[0] is not None:
            raise ShapeError(
                f"Dense takes one row of features per sample, shape (batch, features), but gets "
                f"{fmt_shape(x)}; put a Flatten before it"
            )
        return (None, int(params["units"]))

    def param_shapes(self, params, ins):
        shapes = {"weight": (int(params["units"]), int(ins["in"][1]))}
        if params["bias"]:
            shapes["bias"] = (int(params["units"]),)
        return shapes

    def init_param(self, name, shape, params, ins, rng):
        if name == "bias":
            return np.zeros(shape)
        fan_out, fan_in = shape
        return init_weight(params["init"], shape, fan_in, fan_out, rng)

    def make_kernel(self, params, ins, out, dtype):
        return DenseKernel(bool(params["bias"]))
