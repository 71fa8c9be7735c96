"""Activations: element-wise non-linearities (and Softmax over the last axis)."""

from __future__ import annotations

import numpy as np

from engine.ops.base import Kernel, OpDef
from engine.registry import register


class _Activation(OpDef):
    category = "Activations"

    def infer_shape(self, params, ins):
        return ins["in"]


class TanhKernel(Kernel):
    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    # dx = dy · (1 − y²)
    def backward(self, gy):
        return (gy * (1.0 - self.y * self.y),)


@register
class Tanh(_Activation):
    id = "Tanh"
    description = "Hyperbolic tangent: squashes values into (−1, 1)."
    formula = "y = tanh(x);  ∂y/∂x = 1 − y²"

    def make_kernel(self, params, ins, out, dtype):
        return TanhKernel()


class ReLUKernel(Kernel):
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    # dx = dy · (x > 0)
    def backward(self, gy):
        return (gy * self.mask,)


@register
class ReLU(_Activation):
    id = "ReLU"
    description = "Rectified linear unit: keeps positive values, zeroes negative ones."
    formula = "y = max(0, x);  ∂y/∂x = 1 if x > 0 else 0"

    def make_kernel(self, params, ins, out, dtype):
        return ReLUKernel()


class SigmoidKernel(Kernel):
    def forward(self, x):
        # Split by sign so exp never overflows.
        e = np.exp(-np.abs(x))
        self.y = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
        return self.y

    # dx = dy · y · (1 − y)
    def backward(self, gy):
        return (gy * self.y * (1.0 - self.y),)


@register
class Sigmoid(_Activation):
    id = "Sigmoid"
    description = "Logistic sigmoid: squashes values into (0, 1), e.g. a probability."
    formula = "y = 1 / (1 + e^(−x));  ∂y/∂x = y·(1 − y)"

    def make_kernel(self, params, ins, out, dtype):
        return SigmoidKernel()
