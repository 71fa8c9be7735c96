"""Activations: element-wise non-linearities, and Softmax/LogSoftmax over one axis."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.core import reductions
from engine.core.registry import register
from engine.errors import ShapeError
from engine.ops import elementwise_jit
from engine.ops._special import erf, sigmoid
from engine.ops.base import Kernel, OpDef, Param, fmt_shape


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
    saturates_at = (-1.0, 1.0)
    id = "Tanh"
    description = "Hyperbolic tangent: squashes values into (−1, 1)."
    formula = "y = tanh(x);  ∂y/∂x = 1 − y²"

    def make_kernel(self, params, ins, out, dtype):
        return TanhKernel()


class ReLUKernel(Kernel):
    def forward(self, x):
        fused = elementwise_jit.relu(x)  # one compiled pass on large tensors
        if fused is not None:
            y, self.mask = fused
            return y
        self.mask = x > 0
        return x * self.mask

    # dx = dy · (x > 0)
    def backward(self, gy):
        dx = elementwise_jit.relu_grad(gy, self.mask)
        return (gy * self.mask if dx is None else dx,)


@register
class ReLU(_Activation):
    dies_at_zero = True
    id = "ReLU"
    description = "Rectified linear unit: keeps positive values, zeroes negative ones."
    formula = "y = max(0, x);  ∂y/∂x = 1 if x > 0 else 0"

    def make_kernel(self, params, ins, out, dtype):
        return ReLUKernel()


class SigmoidKernel(Kernel):
    def forward(self, x):
        self.y = sigmoid(x)
        return self.y

    # dx = dy · y · (1 − y)
    def backward(self, gy):
        return (gy * self.y * (1.0 - self.y),)


@register
class Sigmoid(_Activation):
    saturates_at = (0.0, 1.0)
    id = "Sigmoid"
    description = "Logistic sigmoid: squashes values into (0, 1), e.g. a probability."
    formula = "y = 1 / (1 + e^(−x));  ∂y/∂x = y·(1 − y)"

    def make_kernel(self, params, ins, out, dtype):
        return SigmoidKernel()


class LeakyReLUKernel(Kernel):
    def __init__(self, slope: float):
        self.slope = float(slope)

    def forward(self, x):
        self.pos = x > 0
        return np.where(self.pos, x, x * self.slope)

    # dx = dy · (1 if x > 0 else slope)
    def backward(self, gy):
        return (np.where(self.pos, gy, gy * self.slope),)


@register
class LeakyReLU(_Activation):
    id = "LeakyReLU"
    description = "Like ReLU, but negative values keep a small slope so they still learn."
    formula = "y = x if x > 0 else a·x;  ∂y/∂x = 1 if x > 0 else a"
    params = (Param("slope", "float", 0.01, "Slope a for negative inputs.", min=0.0, max=1.0,
                    step=0.01),)

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        return f"LeakyReLU {params.get('slope', 0.01):g}"

    def make_kernel(self, params, ins, out, dtype):
        return LeakyReLUKernel(params["slope"])


class ELUKernel(Kernel):
    def __init__(self, alpha: float):
        self.alpha = float(alpha)

    def forward(self, x):
        self.pos = x > 0
        self.neg = np.expm1(np.minimum(x, 0)) * self.alpha  # α(eˣ − 1) for x ≤ 0
        return np.where(self.pos, x, self.neg)

    # dx = dy · (1 if x > 0 else y + α)
    def backward(self, gy):
        return (np.where(self.pos, gy, gy * (self.neg + self.alpha)),)


@register
class ELU(_Activation):
    id = "ELU"
    description = "Exponential linear unit: smooth curve towards −α for negative values."
    formula = "y = x if x > 0 else α(eˣ − 1);  ∂y/∂x = 1 if x > 0 else y + α"
    params = (Param("alpha", "float", 1.0, "Value α that very negative inputs approach (−α).",
                    min=0.0, max=100.0, step=0.1),)

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        return f"ELU {params.get('alpha', 1.0):g}"

    def make_kernel(self, params, ins, out, dtype):
        return ELUKernel(params["alpha"])


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class GELUKernel(Kernel):
    def forward(self, x):
        self.x = x
        self.cdf = 0.5 * (1.0 + erf(x * _SQRT_HALF))  # Φ(x)
        return x * self.cdf

    # dx = dy · (Φ(x) + x·φ(x))
    def backward(self, gy):
        x = self.x
        pdf = np.exp(-0.5 * x * x) * _INV_SQRT_2PI
        return (gy * (self.cdf + x * pdf),)


class GELUTanhKernel(Kernel):
    # In place on two buffers (fresh temporaries of this size cost more than the arithmetic),
    # in the same order of operations as the plain formula, so results are bit-identical.
    def forward(self, x):
        self.x = x
        t = 0.044715 * x
        t *= x
        t *= x
        t += x
        t *= _SQRT_2_OVER_PI
        self.t = np.tanh(t, out=t)
        y = t + 1.0
        y *= x
        y *= 0.5
        return y

    # dx = dy · (½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)),  t = tanh(√(2/π)(x + 0.044715x³))
    def backward(self, gy):
        x, t = self.x, self.t
        inner = (3 * 0.044715) * x
        inner *= x
        inner += 1.0
        inner *= _SQRT_2_OVER_PI
        slope = t * t
        np.subtract(1.0, slope, out=slope)
        slope *= x
        slope *= 0.5
        slope *= inner
        np.add(t, 1.0, out=inner)
        inner *= 0.5
        inner += slope
        inner *= gy
        return (inner,)


@register
class GELU(_Activation):
    id = "GELU"
    description = "Gaussian error linear unit: x weighted by the chance a normal value is below it."
    formula = "y = x·Φ(x);  ∂y/∂x = Φ(x) + x·φ(x)  (Φ, φ: normal CDF and density)"
    params = (Param("approximate", "choice", "none", "'none' uses the exact error function, "
                    "'tanh' the faster tanh approximation.", choices=("none", "tanh")),)

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        return "GELU (tanh)" if params.get("approximate") == "tanh" else "GELU"

    def make_kernel(self, params, ins, out, dtype):
        return GELUTanhKernel() if params["approximate"] == "tanh" else GELUKernel()


class SiLUKernel(Kernel):
    def forward(self, x):
        self.x = x
        self.s = sigmoid(x)
        return x * self.s

    # dx = dy · σ(x)·(1 + x·(1 − σ(x)))
    def backward(self, gy):
        s = self.s
        return (gy * (s * (1.0 + self.x * (1.0 - s))),)


@register
class SiLU(_Activation):
    id = "SiLU"
    description = "Sigmoid linear unit (swish): x times its own sigmoid."
    formula = "y = x·σ(x);  ∂y/∂x = σ(x)·(1 + x·(1 − σ(x)))"

    def make_kernel(self, params, ins, out, dtype):
        return SiLUKernel()


def softmax_axis(params: dict[str, Any], x) -> int:
    """The (non-negative) axis a Softmax/LogSoftmax node works over, or ShapeError."""
    axis = int(params["axis"])
    if len(x) == 0 or x == (None,):
        raise ShapeError(
            f"this op works over a feature axis of each sample, but its input has shape "
            f"{fmt_shape(x)}, which has none"
        )
    if not -len(x) <= axis < len(x):
        raise ShapeError(f"axis {axis} does not exist for an input of shape {fmt_shape(x)}")
    axis %= len(x)
    if x[axis] is None:
        raise ShapeError("the softmax cannot run over the batch axis (axis 0); pick a "
                         "feature axis")
    if params.get("causal") and (axis != len(x) - 1 or len(x) < 3):
        raise ShapeError(
            f"a causal mask needs scores (batch, …, T, T) and the softmax over the last axis, "
            f"but the input is {fmt_shape(x)} with axis {axis}")
    return axis


class SoftmaxKernel(Kernel):
    def __init__(self, axis: int, causal: bool):
        self.axis, self.causal = axis, causal

    def forward(self, x):
        if self.causal:  # position i may not look at later positions j > i
            from engine.ops.sequence import causal_mask

            x = x.copy()
            x[..., causal_mask(*x.shape[-2:])] = -np.inf
        e = np.subtract(x, reductions.max_over(x, self.axis))
        np.exp(e, out=e)
        e /= reductions.sums_over(e, self.axis)
        self.y = e
        return e

    # dx = y · (dy − Σⱼ dyⱼ·yⱼ)  (masked entries have y = 0, so no gradient)
    def backward(self, gy):
        y = self.y
        return (y * (gy - reductions.sums_over(gy * y, self.axis)),)


_AXIS_HELP = ("Axis to normalise over, counting the batch as axis 0; −1 is the last axis "
              "(the features, or the keys of attention scores).")


@register
class Softmax(_Activation):
    id = "Softmax"
    description = "Turns one axis (the last by default) into probabilities that add up to 1."
    formula = ("yᵢ = e^(xᵢ) / Σⱼ e^(xⱼ);  causal: xᵢⱼ = −∞ for j > i;  "
               "∂L/∂xᵢ = yᵢ·(∂L/∂yᵢ − Σⱼ yⱼ·∂L/∂yⱼ)")
    params = (
        Param("axis", "int", -1, _AXIS_HELP, min=-5, max=5),
        Param("causal", "bool", False, "Hide the entries above the diagonal of the last two "
              "axes (scores of position i for later positions j > i), as in a GPT."),
    )

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        text = "Softmax" if params.get("axis", -1) == -1 else f"Softmax axis {params['axis']}"
        return text + (" causal" if params.get("causal") else "")

    def infer_shape(self, params, ins):
        softmax_axis(params, ins["in"])
        return ins["in"]

    def make_kernel(self, params, ins, out, dtype):
        return SoftmaxKernel(softmax_axis(params, ins["in"]), bool(params["causal"]))


class LogSoftmaxKernel(Kernel):
    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        shifted = x - reductions.max_over(x, self.axis)
        e = np.exp(shifted)
        se = reductions.sums_over(e, self.axis)
        self.p = e / se
        return shifted - np.log(se)

    # dx = dy − softmax(x)·Σⱼ dyⱼ
    def backward(self, gy):
        return (gy - self.p * reductions.sums_over(gy, self.axis),)


@register
class LogSoftmax(_Activation):
    id = "LogSoftmax"
    description = "The logarithm of the softmax, computed stably (log-probabilities)."
    formula = "yᵢ = xᵢ − log Σⱼ e^(xⱼ);  ∂L/∂xᵢ = ∂L/∂yᵢ − softmax(x)ᵢ·Σⱼ ∂L/∂yⱼ"
    params = (Param("axis", "int", -1, _AXIS_HELP, min=-5, max=5),)

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        axis = params.get("axis", -1)
        return "LogSoftmax" if axis == -1 else f"LogSoftmax axis {axis}"

    def infer_shape(self, params, ins):
        softmax_axis(params, ins["in"])
        return ins["in"]

    def make_kernel(self, params, ins, out, dtype):
        return LogSoftmaxKernel(softmax_axis(params, ins["in"]))


class SoftplusKernel(Kernel):
    def __init__(self, beta: float, threshold: float):
        self.beta = float(beta)
        self.threshold = float(threshold)

    def forward(self, x):
        bx = x * self.beta
        self.bx = bx
        self.linear = bx > self.threshold
        return np.where(self.linear, x, np.logaddexp(0, bx) * (1.0 / self.beta))

    # dx = dy · σ(βx)  (dy where βx > threshold, the linear part)
    def backward(self, gy):
        return (np.where(self.linear, gy, gy * sigmoid(self.bx)),)


@register
class Softplus(_Activation):
    id = "Softplus"
    description = "A smooth ReLU: log(1 + eˣ), always positive."
    formula = "y = log(1 + e^(βx))/β  (y = x where βx > threshold);  ∂y/∂x = σ(βx)"
    params = (
        Param("beta", "float", 1.0, "Sharpness β: larger values bend closer to a ReLU.",
              min=1e-3, max=1000.0, step=0.1),
        Param("threshold", "float", 20.0, "Above this value of βx the output is just x "
              "(avoids overflow).", min=0.0, max=1000.0),
    )

    def make_kernel(self, params, ins, out, dtype):
        return SoftplusKernel(params["beta"], params["threshold"])


class IdentityKernel(Kernel):
    def forward(self, x):
        return x

    # dx = dy
    def backward(self, gy):
        return (gy,)


@register
class Identity(_Activation):
    id = "Identity"
    description = "Passes its input through unchanged (a placeholder or a named tap)."
    formula = "y = x;  ∂y/∂x = 1"

    def make_kernel(self, params, ins, out, dtype):
        return IdentityKernel()
