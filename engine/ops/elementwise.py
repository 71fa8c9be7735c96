"""Element-wise maths and merges: Add, Subtract, Multiply, Divide, Power, Square, Exp, Log,
Abs, Sqrt, Clamp, Concat, Sum and Mean.

Binary ops broadcast like NumPy (a batched (batch, 8) with a scalar Parameter, or
(batch, 1) with (batch, 8)); their gradients are summed back to each input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.core.registry import register
from engine.errors import ShapeError
from engine.ops.base import (
    Kernel,
    OpDef,
    Param,
    Port,
    Shape,
    broadcast_shapes,
    fmt_shape,
    unbroadcast,
)

CATEGORY = "Element-wise/Merge"


def _check_batch_first(shape: Shape, a: Shape, b: Shape) -> Shape:
    if None in shape[1:]:
        raise ShapeError(
            f"the inputs have shapes {fmt_shape(a)} and {fmt_shape(b)}; broadcasting them would "
            "move the batch away from the first axis. Give the unbatched input fewer axes"
        )
    return shape


class _Binary(OpDef):
    category = CATEGORY
    inputs = (Port("a", "Left operand."), Port("b", "Right operand."))

    def infer_shape(self, params, ins):
        a, b = ins["a"], ins["b"]
        return _check_batch_first(broadcast_shapes(a, b), a, b)


class _BinaryKernel(Kernel):
    def grads(self, ga, gb):
        na, nb = self.needs_input_grad
        return (unbroadcast(ga(), self.sa) if na else None,
                unbroadcast(gb(), self.sb) if nb else None)


class AddKernel(_BinaryKernel):
    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        return a + b

    # da = dy,  db = dy  (summed over broadcast axes)
    def backward(self, gy):
        return self.grads(lambda: gy, lambda: gy)


@register
class Add(_Binary):
    id = "Add"
    description = "Adds two tensors element by element (e.g. a residual connection)."
    formula = "y = a + b;  ∂y/∂a = 1,  ∂y/∂b = 1"

    def make_kernel(self, params, ins, out, dtype):
        return AddKernel()


class SubtractKernel(_BinaryKernel):
    def forward(self, a, b):
        self.sa, self.sb = a.shape, b.shape
        return a - b

    # da = dy,  db = −dy
    def backward(self, gy):
        return self.grads(lambda: gy, lambda: -gy)


@register
class Subtract(_Binary):
    id = "Subtract"
    description = "Subtracts b from a element by element."
    formula = "y = a − b;  ∂y/∂a = 1,  ∂y/∂b = −1"

    def make_kernel(self, params, ins, out, dtype):
        return SubtractKernel()


class MultiplyKernel(_BinaryKernel):
    def forward(self, a, b):
        self.a, self.b = a, b
        self.sa, self.sb = a.shape, b.shape
        return a * b

    # da = dy · b,  db = dy · a
    def backward(self, gy):
        return self.grads(lambda: gy * self.b, lambda: gy * self.a)


@register
class Multiply(_Binary):
    id = "Multiply"
    description = "Multiplies two tensors element by element (e.g. gating or scaling)."
    formula = "y = a·b;  ∂y/∂a = b,  ∂y/∂b = a"

    def make_kernel(self, params, ins, out, dtype):
        return MultiplyKernel()


class DivideKernel(_BinaryKernel):
    def forward(self, a, b):
        self.b = b
        self.sa, self.sb = a.shape, b.shape
        self.y = a / b
        return self.y

    # da = dy / b,  db = −dy · y / b
    def backward(self, gy):
        return self.grads(lambda: gy / self.b, lambda: -(gy * self.y) / self.b)


@register
class Divide(_Binary):
    id = "Divide"
    description = "Divides a by b element by element (b must not be zero)."
    formula = "y = a / b;  ∂y/∂a = 1/b,  ∂y/∂b = −a/b² = −y/b"

    def make_kernel(self, params, ins, out, dtype):
        return DivideKernel()


class _Unary(OpDef):
    category = CATEGORY

    def infer_shape(self, params, ins):
        return ins["in"]


class PowerKernel(Kernel):
    def __init__(self, p: float):
        self.p = float(p)

    def forward(self, x):
        self.x = x
        return np.power(x, self.p)

    # dx = dy · p · x^(p − 1);  p = 0: y = 1 everywhere, so dx = 0 (also at x = 0, as torch)
    def backward(self, gy):
        if self.p == 0.0:
            return (np.zeros_like(gy),)
        return (gy * (np.power(self.x, self.p - 1.0) * self.p),)


@register
class Power(_Unary):
    id = "Power"
    description = "Raises every value to a fixed power (negative values need a whole exponent)."
    formula = "y = xᵖ;  ∂y/∂x = p·xᵖ⁻¹ (0 when p = 0)"
    params = (Param("exponent", "float", 2.0, "The power p.", min=-100.0, max=100.0, step=0.5),)

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        return f"x^{params.get('exponent', 2.0):g}"

    def make_kernel(self, params, ins, out, dtype):
        return PowerKernel(params["exponent"])


class SquareKernel(Kernel):
    def forward(self, x):
        self.x = x
        return x * x

    # dx = 2x · dy
    def backward(self, gy):
        return (gy * (2.0 * self.x),)


@register
class Square(_Unary):
    id = "Square"
    description = "Squares every value."
    formula = "y = x²;  ∂y/∂x = 2x"

    def make_kernel(self, params, ins, out, dtype):
        return SquareKernel()


class ExpKernel(Kernel):
    def forward(self, x):
        self.y = np.exp(x)
        return self.y

    # dx = dy · y
    def backward(self, gy):
        return (gy * self.y,)


@register
class Exp(_Unary):
    id = "Exp"
    description = "The exponential eˣ of every value."
    formula = "y = eˣ;  ∂y/∂x = eˣ = y"

    def make_kernel(self, params, ins, out, dtype):
        return ExpKernel()


class LogKernel(Kernel):
    def forward(self, x):
        self.x = x
        return np.log(x)

    # dx = dy / x
    def backward(self, gy):
        return (gy / self.x,)


@register
class Log(_Unary):
    id = "Log"
    description = "The natural logarithm of every value (values must be positive)."
    formula = "y = ln x;  ∂y/∂x = 1/x"

    def make_kernel(self, params, ins, out, dtype):
        return LogKernel()


class AbsKernel(Kernel):
    def forward(self, x):
        self.x = x
        return np.abs(x)

    # dx = dy · sign(x)  (0 at x = 0, as torch)
    def backward(self, gy):
        return (gy * np.sign(self.x),)


@register
class Abs(_Unary):
    id = "Abs"
    description = "The absolute value |x| of every value."
    formula = "y = |x|;  ∂y/∂x = sign(x) (0 at x = 0)"

    def make_kernel(self, params, ins, out, dtype):
        return AbsKernel()


class SqrtKernel(Kernel):
    def forward(self, x):
        self.y = np.sqrt(x)
        return self.y

    # dx = dy / (2·y)
    def backward(self, gy):
        return (gy / (2.0 * self.y),)


@register
class Sqrt(_Unary):
    id = "Sqrt"
    description = "The square root of every value (values must not be negative)."
    formula = "y = √x;  ∂y/∂x = 1/(2√x)"

    def make_kernel(self, params, ins, out, dtype):
        return SqrtKernel()


class ClampKernel(Kernel):
    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = float(lo), float(hi)

    def forward(self, x):
        self.inside = (x >= self.lo) & (x <= self.hi)
        return np.clip(x, self.lo, self.hi)

    # dx = dy where min ≤ x ≤ max, 0 where the value was clamped (as torch)
    def backward(self, gy):
        return (gy * self.inside,)


@register
class Clamp(_Unary):
    id = "Clamp"
    description = "Limits every value to the range [min, max]."
    formula = "y = min(max(x, a), b);  ∂y/∂x = 1 if a ≤ x ≤ b else 0"
    params = (Param("min", "float", -1.0, "Smallest value let through (a).", min=-1e9, max=1e9,
                    step=0.1),
              Param("max", "float", 1.0, "Largest value let through (b).", min=-1e9, max=1e9,
                    step=0.1))

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        return f"Clamp [{params.get('min', -1.0):g}, {params.get('max', 1.0):g}]"

    def infer_shape(self, params, ins):
        if params["min"] > params["max"]:
            raise ShapeError(f"min ({params['min']:g}) must not be larger than max "
                             f"({params['max']:g})")
        return ins["in"]

    def make_kernel(self, params, ins, out, dtype):
        return ClampKernel(params["min"], params["max"])


class ConcatKernel(Kernel):
    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, *xs):
        self.splits = np.cumsum([x.shape[self.axis] for x in xs])[:-1]
        return np.concatenate(xs, axis=self.axis)

    # dxₖ = the slice of dy that xₖ filled
    def backward(self, gy):
        parts = np.split(gy, self.splits, axis=self.axis)
        return tuple(p if need else None for p, need in zip(parts, self.needs_input_grad))


@register
class Concat(OpDef):
    id = "Concat"
    category = CATEGORY
    description = "Joins two to four tensors side by side along one axis."
    formula = "y = [a, b, c, d] along the axis;  ∂L/∂a = the part of ∂L/∂y that a filled"
    inputs = (Port("a", "First tensor."), Port("b", "Second tensor."),
              Port("c", "Optional third tensor.", optional=True),
              Port("d", "Optional fourth tensor.", optional=True))
    params = (Param("axis", "int", -1, "Axis to join along, counting the batch as axis 0; "
                    "−1 is the last axis (features).", min=-4, max=4),)

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        axis = params.get("axis", -1)
        return "Concat" if axis == -1 else f"Concat axis {axis}"

    def infer_shape(self, params, ins):
        shapes = [ins[p.name] for p in self.inputs if p.name in ins]
        first = shapes[0]
        ndim = len(first)
        axis = int(params["axis"])
        if ndim == 0 or not -ndim <= axis < ndim:
            raise ShapeError(f"axis {axis} does not exist for an input of shape {fmt_shape(first)}")
        axis %= ndim
        if first[axis] is None:
            raise ShapeError(
                "Concat cannot join along the batch axis (axis 0); pick a feature axis"
            )
        total = 0
        for s in shapes:
            if len(s) != ndim or any(s[i] != first[i] for i in range(ndim) if i != axis):
                raise ShapeError(
                    f"the inputs have shapes {fmt_shape(first)} and {fmt_shape(s)}; they must "
                    f"match on every axis except axis {axis}"
                )
            total += s[axis]
        return first[:axis] + (total,) + first[axis + 1:]

    def make_kernel(self, params, ins, out, dtype):
        return ConcatKernel(int(params["axis"]) % len(out))


AXES = ("all", "features", "batch")


def reduce_axis(params: dict[str, Any], x: Shape) -> tuple[int, ...]:
    """The numpy axes a Sum/Mean reduces over (also used by the exporters), or ShapeError."""
    which = params["axis"]
    if which == "all":
        return tuple(range(len(x)))
    if which == "features":
        if len(x) == 0 or x == (None,):
            raise ShapeError(
                f"the input has shape {fmt_shape(x)}, which has no feature axis to reduce"
            )
        return (len(x) - 1,)
    if len(x) == 0 or x[0] is not None:
        raise ShapeError(f"the input has shape {fmt_shape(x)}, which has no batch axis to reduce")
    return (0,)


class _Reduce(OpDef):
    category = CATEGORY
    params = (
        Param("axis", "choice", "all", "What to reduce: every value (a single number), the "
              "features of each sample (last axis), or the batch (one value per feature).",
              choices=AXES),
        Param("keepdims", "bool", False, "Keep the reduced axes with size 1 (handy for "
              "broadcasting the result back)."),
    )

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        return f"{cls.id} {params.get('axis', 'all')}"

    def infer_shape(self, params, ins):
        x = ins["in"]
        axes = reduce_axis(params, x)
        if params["keepdims"]:
            return tuple(1 if i in axes else d for i, d in enumerate(x))
        return tuple(d for i, d in enumerate(x) if i not in axes)


class ReduceKernel(Kernel):
    def __init__(self, axes: tuple[int, ...], keepdims: bool, mean: bool):
        self.axes, self.keepdims, self.mean = axes, keepdims, mean

    def forward(self, x):
        self.shape = x.shape
        self.count = 1
        for a in self.axes:
            self.count *= x.shape[a]
        if self.mean:
            return np.asarray(x.mean(axis=self.axes, keepdims=self.keepdims))
        return np.asarray(x.sum(axis=self.axes, keepdims=self.keepdims))

    # Sum: dx = dy broadcast back;  Mean: dx = dy / n broadcast back
    def backward(self, gy):
        if not self.keepdims:
            gy = np.expand_dims(gy, self.axes)
        if self.mean:
            gy = gy / self.count
        return (np.broadcast_to(gy, self.shape),)


@register
class Sum(_Reduce):
    id = "Sum"
    description = "Adds values up: all of them, each sample's features, or over the batch."
    formula = "y = Σᵢ xᵢ;  ∂y/∂xᵢ = 1"

    def make_kernel(self, params, ins, out, dtype):
        return ReduceKernel(reduce_axis(params, ins["in"]), bool(params["keepdims"]), False)


@register
class Mean(_Reduce):
    id = "Mean"
    description = "Averages values: all of them, each sample's features, or over the batch."
    formula = "y = (1/n) Σᵢ xᵢ;  ∂y/∂xᵢ = 1/n"

    def make_kernel(self, params, ins, out, dtype):
        return ReduceKernel(reduce_axis(params, ins["in"]), bool(params["keepdims"]), True)
