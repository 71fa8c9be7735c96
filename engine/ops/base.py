"""The op definition contract: ports, a param schema, shape inference, init and a kernel.

Shapes are tuples; a batched tensor has ``None`` as its first entry (the batch size is
not known until data arrives), an unbatched one (a Parameter, a loss) has no ``None``.
Every op has exactly one output port, named ``out``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from engine.errors import ShapeError

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class Port:
    """An input port. `optional` ports may stay unconnected."""

    name: str
    help: str = ""
    optional: bool = False


@dataclass(frozen=True)
class Param:
    """One entry of an op's param schema; the inspector builds its widget from this.

    kind is one of "int", "float", "bool", "choice", "shape" (list of ints), "floats"
    (a number or a list of numbers).
    """

    name: str
    kind: str
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    step: float | None = None

    def check(self, value: Any) -> str | None:
        """Return None if `value` is acceptable, else a sentence saying why not."""
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return f"'{self.name}' must be a whole number, not {value!r}"
        elif self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"'{self.name}' must be a number, not {value!r}"
            if value != value:
                return f"'{self.name}' must be a number, not NaN"
        elif self.kind == "bool":
            if not isinstance(value, bool):
                return f"'{self.name}' must be true or false, not {value!r}"
        elif self.kind == "choice":
            if value not in self.choices:
                return f"'{self.name}' must be one of {', '.join(self.choices)}, not {value!r}"
        elif self.kind == "shape":
            if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
            ):
                return f"'{self.name}' must be a list of positive whole numbers, not {value!r}"
            if len(value) > 4:
                return f"'{self.name}' may have at most 4 dimensions"
        elif self.kind == "floats":
            vals = value if isinstance(value, (list, tuple)) else [value]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                return f"'{self.name}' must be a number or a list of numbers, not {value!r}"
        if self.kind in ("int", "float"):
            if self.min is not None and value < self.min:
                return f"'{self.name}' must be at least {self.min:g}, not {value!r}"
            if self.max is not None and value > self.max:
                return f"'{self.name}' must be at most {self.max:g}, not {value!r}"
        return None


class Kernel:
    """One compiled node: forward saves what backward needs.

    The compiler sets `training` (Dropout, BatchNorm) and `needs_input_grad` (one bool
    per input port in declaration order; backward may return None where it is False).
    Learnable tensors are bound as views into the program's flat parameter buffer
    (`w[name]`), their gradients as views into the flat gradient buffer (`g[name]`);
    backward *assigns* parameter gradients (each tensor belongs to one node).
    """

    training: bool = True
    needs_input_grad: tuple[bool, ...] = ()
    # Floating-point operations per sample of the products the kernel splits over threads
    # itself when they are large (Conv2D); while a batch makes them large enough, the
    # program runs all its products on one BLAS thread (chunked.blas_on_one_thread)
    split_flops_per_sample: int = 0
    # Set by the compiler for a network with at least jit.MIN_WORK parameters: its small
    # tensors may take compiled paths too (engine.ops.cross_entropy_jit). Loading numba
    # (~0.7 s, once) is small beside training such a network, and each numpy call it saves
    # costs most right after the large matrix products have emptied the caches.
    large_network: bool = False
    w: dict[str, np.ndarray]
    g: dict[str, np.ndarray]

    def forward(self, *xs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, gy: np.ndarray) -> tuple[np.ndarray | None, ...]:
        raise NotImplementedError


class OpDef:
    """Definition of one op. Subclasses set the class attributes and override methods."""

    id: ClassVar[str]
    category: ClassVar[str]  # Inputs, Layers, Activations, Element-wise/Merge, Losses
    description: ClassVar[str]  # one line, used as tooltip
    formula: ClassVar[str] = ""  # forward and backward formulas, for docs and teaching
    inputs: ClassVar[tuple[Port, ...]] = (Port("in"),)
    params: ClassVar[tuple[Param, ...]] = ()
    replaces: ClassVar[tuple[str, ...]] = ()  # old op ids this op replaces
    role: ClassVar[str | None] = None  # "input", "target", "parameter", "constant" or None
    is_loss: ClassVar[bool] = False
    learnable: ClassVar[bool] = False  # has learnable tensors
    # Learnable 2-D tensors kept transposed in theta (Program.entries: ParamEntry.view)
    stored_transposed: ClassVar[tuple[str, ...]] = ()
    # What the op is, for health checks: outputs of exactly 0 pass no gradient back (ReLU),
    # or outputs near these bounds have a slope near 0 (Sigmoid, Tanh).
    dies_at_zero: ClassVar[bool] = False
    saturates_at: ClassVar[tuple[float, float] | None] = None

    # -- schema helpers -------------------------------------------------------------
    @classmethod
    def param(cls, name: str) -> Param:
        for p in cls.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @classmethod
    def resolve_params(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with the given values (unknown keys are kept for diagnostics)."""
        out = {p.name: p.default for p in cls.params}
        out.update(given)
        return out

    @classmethod
    def summary(cls, params: dict[str, Any]) -> str:
        """Short text shown on the node, e.g. "Dense 16"."""
        return cls.id

    @classmethod
    def formula_for(cls, params: dict[str, Any]) -> str:
        """The formula as these params make it (ops whose maths depends on a param, like a
        loss's reduction, override this)."""
        return cls.formula

    # -- compile-time behaviour --------------------------------------------------------
    def infer_shape(self, params: dict[str, Any], ins: dict[str, Shape]) -> Shape:
        """Output shape from input shapes; raise ShapeError with a clear sentence."""
        raise NotImplementedError

    def param_shapes(self, params: dict[str, Any], ins: dict[str, Shape]) -> dict[str, Shape]:
        """Shapes of learnable tensors, in a stable order (PyTorch layouts)."""
        return {}

    def buffer_shapes(self, params: dict[str, Any], ins: dict[str, Shape]) -> dict[str, Shape]:
        """Shapes of non-learnable state such as BatchNorm running statistics."""
        return {}

    def init_param(
        self, name: str, shape: Shape, params: dict[str, Any], ins: dict[str, Shape],
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Initial value of a learnable tensor or buffer (float64; the caller casts)."""
        return np.zeros(shape)

    def make_kernel(
        self, params: dict[str, Any], ins: dict[str, Shape], out: Shape, dtype: np.dtype
    ) -> Kernel:
        """Build the node's kernel; `dtype` is the program's float type."""
        raise NotImplementedError


# -- helpers shared by ops --------------------------------------------------------------

def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `g` over the axes that broadcasting added or stretched, to get back `shape`."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def broadcast_shapes(a: Shape, b: Shape, what: str = "inputs") -> Shape:
    """NumPy broadcasting of symbolic shapes, where None (the batch) matches None or 1."""
    n = max(len(a), len(b))
    a2 = (1,) * (n - len(a)) + tuple(a)
    b2 = (1,) * (n - len(b)) + tuple(b)
    out: list[int | None] = []
    for x, y in zip(a2, b2):
        if x == y:
            out.append(x)
        elif x == 1:
            out.append(y)
        elif y == 1:
            out.append(x)
        else:
            raise ShapeError(
                f"the {what} have shapes {fmt_shape(a)} and {fmt_shape(b)}, which do not "
                "broadcast together (each dimension must match or be 1)"
            )
    return tuple(out)


def fmt_shape(shape: Shape) -> str:
    """Human text of a shape: (batch, 2) for (None, 2); scalar for ()."""
    if len(shape) == 0:
        return "scalar"
    return "(" + ", ".join("batch" if d is None else str(d) for d in shape) + ")"


def numel(shape: Shape) -> int:
    """Number of values in one sample of `shape` (the batch axis, None, counts as 1)."""
    n = 1
    for d in shape:
        n *= 1 if d is None else int(d)
    return n
