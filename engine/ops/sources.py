"""Source ops: Input and Target (fed by data), Parameter (learnable), Constant."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.core.registry import register
from engine.errors import ShapeError
from engine.ops.base import Kernel, OpDef, Param, Shape, numel


class FedKernel(Kernel):
    """Input and Target: the program writes the fed batch straight into the value slot."""

    def forward(self, *xs: np.ndarray) -> np.ndarray:  # pragma: no cover - never called
        raise RuntimeError("fed nodes are filled by the program")

    def backward(self, gy: np.ndarray) -> tuple[np.ndarray | None, ...]:
        return ()


def _fed_shape(params: dict[str, Any]) -> Shape:
    shape = params.get("shape") or []
    if shape:
        return (None, *(int(d) for d in shape))
    return (None, int(params["features"]))


@register
class Input(OpDef):
    id = "Input"
    category = "Inputs"
    description = "The features of a batch of samples from the dataset."
    formula = "out = x (one row per sample)"
    inputs = ()
    role = "input"
    params = (
        Param("features", "int", 2, "Number of input features per sample.", min=1, max=1_000_000),
        Param("shape", "shape", [], "Per-sample shape such as [1, 28, 28] for images; "
              "when set it replaces 'features'."),
    )

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        shape = params.get("shape") or [params.get("features", 2)]
        return "Input " + "×".join(str(d) for d in shape)

    def infer_shape(self, params, ins):
        return _fed_shape(params)

    def make_kernel(self, params, ins, out, dtype):
        return FedKernel()


@register
class Target(OpDef):
    id = "Target"
    category = "Inputs"
    description = "The targets (labels or values) of the same batch, for a loss to compare with."
    formula = "out = y (class index or target values per sample)"
    inputs = ()
    role = "target"
    params = (
        Param("features", "int", 1, "Number of target values per sample (1 for a class index).",
              min=1, max=1_000_000),
    )

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        return f"Target {params.get('features', 1)}"

    def infer_shape(self, params, ins):
        return (None, int(params["features"]))

    def make_kernel(self, params, ins, out, dtype):
        return FedKernel()


def value_array(params: dict[str, Any], shape: tuple[int, ...]) -> np.ndarray:
    """The float64 tensor a Parameter or Constant's 'value' param describes for `shape`."""
    value = params.get("value", 0.0)
    if isinstance(value, (list, tuple)):
        arr = np.asarray(value, dtype=np.float64)
        if arr.size == 1:
            return np.full(shape, float(arr.ravel()[0]))
        if arr.size != numel(shape):
            raise ShapeError(
                f"'value' has {arr.size} numbers but the shape {list(shape)} holds {numel(shape)}"
            )
        return arr.reshape(shape)
    return np.full(shape, float(value))


class ParameterKernel(Kernel):
    # dL/dθ = sum of the gradients arriving on the out-edges (already reduced to θ's shape)
    def forward(self) -> np.ndarray:
        # A copy, not the view into theta: the optimizer updates theta in place, and the
        # trace (and the inputs consumers saved for backward) must keep this step's value.
        return self.w["value"].copy()

    def backward(self, gy: np.ndarray) -> tuple[np.ndarray | None, ...]:
        self.g["value"][...] = gy
        return ()


@register
class Parameter(OpDef):
    id = "Parameter"
    category = "Inputs"
    description = "A learnable tensor (a scalar by default) that gradient descent adjusts."
    formula = "out = θ;  θ ← θ − α·∂L/∂θ"
    inputs = ()
    role = "parameter"
    learnable = True
    params = (
        Param("shape", "shape", [], "Shape of the tensor; empty for a single number."),
        Param("value", "floats", 0.5,
              "Initial value: one number for all entries, or one per entry."),
    )

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        shape = params.get("shape") or []
        value = params.get("value", 0.5)
        if not shape and not isinstance(value, list):
            return f"θ = {value:g}"
        return "Parameter " + ("×".join(str(d) for d in shape) or "scalar")

    def infer_shape(self, params, ins):
        shape = tuple(int(d) for d in (params.get("shape") or []))
        value_array(params, shape)  # raises ShapeError on a mismatch
        return shape

    def param_shapes(self, params, ins):
        return {"value": self.infer_shape(params, ins)}

    def init_param(self, name, shape, params, ins, rng):
        return value_array(params, tuple(shape))

    def make_kernel(self, params, ins, out, dtype):
        return ParameterKernel()


class ConstantKernel(Kernel):
    def __init__(self, value: np.ndarray):
        self.value = value

    def forward(self) -> np.ndarray:
        return self.value

    def backward(self, gy: np.ndarray) -> tuple[np.ndarray | None, ...]:
        return ()


@register
class Constant(OpDef):
    id = "Constant"
    category = "Inputs"
    description = "A fixed tensor that never changes during training."
    formula = "out = c"
    inputs = ()
    role = "constant"
    params = (
        Param("shape", "shape", [], "Shape of the tensor; empty for a single number."),
        Param("value", "floats", 1.0, "Value: one number for all entries, or one per entry."),
    )

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        value = params.get("value", 1.0)
        if not params.get("shape") and not isinstance(value, list):
            return f"c = {value:g}"
        return "Constant"

    def infer_shape(self, params, ins):
        shape = tuple(int(d) for d in (params.get("shape") or []))
        value_array(params, shape)
        return shape

    def make_kernel(self, params, ins, out, dtype):
        shape = tuple(int(d) for d in (params.get("shape") or []))
        return ConstantKernel(value_array(params, shape).astype(dtype))
