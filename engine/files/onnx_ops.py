"""How each ONNX op becomes Gradscape nodes: one entry per ONNX op type in `CONVERTERS`.

A converter gets the `Builder` and one ONNX node (already constant-folded and fused by
`onnx_import`) and returns the `Tensor` that stands for the node's first output. When the
node asks for something our op cannot do (a stride per axis, padding that differs between sides) it
raises `Unsupported` with a short reason; the importer lists every such node in one
message and imports nothing. Supporting a new op is one function and one table entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.core import registry
from engine.core.spec import EdgeSpec, NodeSpec
from engine.errors import ShapeError
from engine.ops.base import Shape, fmt_shape, numel

# Custom op types the importer's fusion pass writes for multi-node patterns.
FUSED_SILU = "gradscape.SiLU"
FUSED_GELU = "gradscape.GELU"
FUSED_SOFTPLUS = "gradscape.Softplus"
FUSED_CAUSAL_SOFTMAX = "gradscape.CausalSoftmax"
FUSED_EMBEDDING = "gradscape.Embedding"
FUSED_GLOBAL_AVG_POOL = "gradscape.GlobalAvgPool2D"
FUSED_ATTENTION = "gradscape.MultiHeadAttention"
FUSED_MATMUL = "gradscape.MatMul"  # with transA / transB: a swap of the last two axes first


# Stands for the batch size in shape values folded from a dynamic batch (x.view(x.size(0), -1)).
BATCH = -(2**40) - 7


class Unsupported(Exception):
    """This node cannot be expressed with our ops (the message says why, in a few words)."""


@dataclass
class Tensor:
    """A value of the imported graph: the output of one of our nodes, with its shape."""

    node: str
    shape: Shape


def short_float(v: float) -> float:
    """The shortest decimal that is the same float32 (1e-05, not 9.99999974e-06)."""
    return float(str(np.float32(v)))


def attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


_OP_NAME = re.compile(r"[A-Z][A-Za-z0-9]*(_\d+)?")  # "Gemm", "Relu_3": an ONNX op type


_OUR_LINEAR = re.compile(r"(.+)/\1\.weight_xw")

_SHORT = {"BatchNormalization": "batchnorm", "AveragePool": "avgpool",
          "GlobalAveragePool": "avgpool", "LayerNormalization": "layernorm"}


class NodeIds:
    """Readable, unique node ids recovered from ONNX names.

    ``h1.out`` (our exporter) gives ``h1``; ``/features/features.0/Conv`` (PyTorch's scope
    path) gives ``features_0``; a name that is only the op type gives ``relu``, ``relu_2``.
    """

    def __init__(self) -> None:
        self.used: set[str] = set()

    def make(self, name: str, op_type: str = "") -> str:
        ours = _OUR_LINEAR.fullmatch(name)  # "<id>/<id>.weight_xw": our exporter's Dense
        if ours:
            name = ours.group(1) + ".out"
        if name.endswith(".out") and "/" in name and not name.startswith("/"):
            # our exporter's "<id>.out", the id naming a node in a group ("residual/in")
            text = re.sub(r"[^\w/-]+", "_", name[:-4]).strip("_/")
            if text:
                return self.unique(text)
        base = name
        for suffix in (".out", ".value", ".weight"):
            if base.endswith(suffix) and len(base) > len(suffix):
                base = base[: -len(suffix)]
                break
        parts = [p for p in base.strip("/").split("/") if p]
        kind = (op_type or "node").split(".")[-1]
        kind = _SHORT.get(kind, kind.lower())
        if parts and _OP_NAME.fullmatch(parts[-1]) and (len(parts) > 1 or "/" in base):
            parts.pop()  # PyTorch's "/scope/Gemm": the scope names the node
        text = re.sub(r"[^\w-]+", "_", (parts[-1] if parts else "").replace("->", "_"))
        text = text.strip("_")
        if not text:
            text = kind
        elif text.isdigit():  # an nn.Sequential index: "gemm_0" reads better than "0"
            text = f"{kind}_{text}"
        return self.unique(text)

    def unique(self, text: str) -> str:
        out, k = text, 2
        while out in self.used:
            out = f"{text}_{k}"
            k += 1
        self.used.add(out)
        return out


@dataclass
class Builder:
    """The graph being built: our nodes, wires and weights, and the ONNX values they hold.

    Attributes:
        consts: ONNX value name -> array, for initializers and folded constants.
        learnable: names of initializers (a constant used as a tensor becomes a Parameter).
        consumers: ONNX value name -> number of nodes reading it (fusions need 1).
        graph_outputs: ONNX names of the model's outputs.
        fixed_batch: the model input's first dimension when it is a number.
    """

    consts: dict[str, np.ndarray]
    learnable: set[str]
    consumers: dict[str, int]
    graph_outputs: set[str]
    fixed_batch: int | None
    batch_values: set[str] = field(default_factory=set)  # constants holding BATCH
    ids: NodeIds = field(default_factory=NodeIds)
    nodes: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    edges: list[EdgeSpec] = field(default_factory=list)
    state: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, Tensor] = field(default_factory=dict)
    shapes: dict[str, Shape] = field(default_factory=dict)
    made_by: dict[str, str] = field(default_factory=dict)  # our node id -> ONNX op type

    # -- inputs of a node -------------------------------------------------------------
    def const(self, node: Any, i: int, batch_ok: bool = False) -> np.ndarray | None:
        """The constant value of input i, or None when it is computed (or absent).

        A shape value holding the (dynamic) batch size is refused unless `batch_ok`."""
        if i >= len(node.input) or not node.input[i]:
            return None
        if node.input[i] in self.batch_values and not batch_ok:
            raise Unsupported(USES_BATCH)
        return self.consts.get(node.input[i])

    def need_const(self, node: Any, i: int, what: str, batch_ok: bool = False) -> np.ndarray:
        value = self.const(node, i, batch_ok)
        if value is None:
            raise Unsupported(f"its {what} is computed, not a constant")
        return value

    def input(self, node: Any, i: int) -> Tensor:
        """The tensor on input i; a constant becomes a Parameter (initializer) or Constant."""
        name = node.input[i]
        if name in self.values:
            return self.values[name]
        if name in self.batch_values:
            raise Unsupported(USES_BATCH)
        if name not in self.consts:  # pragma: no cover - the importer checks every input
            raise Unsupported(f"its input '{name}' is missing")
        value = np.asarray(self.consts[name], dtype=np.float64)
        if value.ndim > 4 or 0 in value.shape:
            raise Unsupported(f"the constant '{name}' has shape {list(value.shape)}")
        shape = [int(d) for d in value.shape]
        nid = self.ids.make(name)
        if name in self.learnable:
            params: dict[str, Any] = {"shape": shape}
            if value.size <= 16:
                params["value"] = _floats(value)
            tensor = self.add(nid, "Parameter", params, [],
                              {"value": np.asarray(self.consts[name], dtype=np.float32)})
        else:
            tensor = self.add(nid, "Constant", {"shape": shape, "value": _floats(value)}, [])
        self.values[name] = tensor
        return tensor

    # -- our nodes --------------------------------------------------------------------
    def add(self, nid: str, op_id: str, params: dict[str, Any], inputs: list[Tensor],
            weights: dict[str, np.ndarray] | None = None) -> Tensor:
        """Add one of our nodes; its shape is inferred now, so problems show here."""
        op = registry.get(op_id)
        assert op is not None, op_id
        full = op.resolve_params(params)
        for p in op.params:
            problem = p.check(full[p.name])
            if problem:
                raise Unsupported(problem)
        ports = {port.name: t.shape for port, t in zip(op.inputs, inputs)}
        try:
            shape = op.infer_shape(full, ports)
            wanted = {**op.param_shapes(full, ports), **op.buffer_shapes(full, ports)}
        except ShapeError as exc:
            raise Unsupported(str(exc)) from None
        weights = weights or {}
        for name, want in wanted.items():
            have = weights.get(name)
            if have is None or tuple(have.shape) != tuple(want):
                got = "none" if have is None else list(have.shape)
                raise Unsupported(f"its {name} has shape {got}, {op_id} needs {list(want)}")
        self.nodes[nid] = (op_id, dict(params))
        for port, t in zip(op.inputs, inputs):
            self.edges.append(EdgeSpec(t.node, "out", nid, port.name))
        for name, arr in weights.items():
            self.state[f"{nid}.{name}"] = np.asarray(arr, dtype=np.float32)
        self.shapes[nid] = shape
        return Tensor(nid, shape)

    def set_params(self, nid: str, **params: Any) -> None:
        op_id, old = self.nodes[nid]
        self.nodes[nid] = (op_id, {**old, **params})

    def spec_nodes(self) -> list[NodeSpec]:
        return [NodeSpec(nid, op, params) for nid, (op, params) in self.nodes.items()]


USES_BATCH = "it computes with the batch size, which is only known when data arrives"


def _floats(value: np.ndarray) -> float | list[float]:
    flat = [short_float(v) for v in np.asarray(value, dtype=np.float32).ravel()]
    return flat[0] if value.ndim == 0 else flat


# -- converters ------------------------------------------------------------------------

Converter = Callable[[Builder, Any, str], Tensor]


def _unary(op_id: str, **fixed: Any) -> Converter:
    def convert(b: Builder, node: Any, nid: str) -> Tensor:
        return b.add(nid, op_id, dict(fixed), [b.input(node, 0)])

    return convert


def _identity(b: Builder, node: Any, nid: str) -> Tensor:
    x = b.input(node, 0)
    if node.output[0] in b.graph_outputs:  # only names the output: no node of its own
        b.ids.used.discard(nid)
        return x
    return b.add(nid, "Identity", {}, [x])


def _leaky_relu(b: Builder, node: Any, nid: str) -> Tensor:
    slope = short_float(attributes(node).get("alpha", 0.01))
    return b.add(nid, "LeakyReLU", {"slope": slope}, [b.input(node, 0)])


def _elu(b: Builder, node: Any, nid: str) -> Tensor:
    alpha = short_float(attributes(node).get("alpha", 1.0))
    return b.add(nid, "ELU", {"alpha": alpha}, [b.input(node, 0)])


def _gelu(b: Builder, node: Any, nid: str) -> Tensor:
    approximate = attributes(node).get("approximate", b"none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
    return b.add(nid, "GELU", {"approximate": approximate}, [b.input(node, 0)])


def _softplus_fused(b: Builder, node: Any, nid: str) -> Tensor:
    a = attributes(node)
    return b.add(nid, "Softplus", {"beta": short_float(a["beta"]),
                                   "threshold": short_float(a["threshold"])},
                 [b.input(node, 0)])


def _axis_param(axis: int, shape: Shape) -> int:
    """Our axis parameter for an ONNX axis: -1 for the last axis, else counted from 0."""
    axis %= max(len(shape), 1)
    return -1 if axis == len(shape) - 1 else axis


def _softmax(b: Builder, node: Any, nid: str) -> Tensor:
    x = b.input(node, 0)
    axis = _axis_param(int(attributes(node).get("axis", -1)), x.shape)
    params: dict[str, Any] = {"axis": axis}
    if node.op_type == FUSED_CAUSAL_SOFTMAX:
        params["causal"] = True
        op_id = "Softmax"
    else:
        op_id = node.op_type
    return b.add(nid, op_id, params, [x])


def _gemm(b: Builder, node: Any, nid: str) -> Tensor:
    a = attributes(node)
    if a.get("transA", 0):
        raise Unsupported("it transposes its input (transA)")
    x = b.input(node, 0)
    w = b.need_const(node, 1, "weight matrix").astype(np.float64) * float(a.get("alpha", 1.0))
    if w.ndim != 2:
        raise Unsupported(f"its weight has shape {list(w.shape)}")
    weight = w if a.get("transB", 0) else w.T
    weights = {"weight": weight}
    c = b.const(node, 2)
    if c is None and len(node.input) > 2 and node.input[2]:
        raise Unsupported("its bias is computed, not a constant")
    if c is not None:
        units = weight.shape[0]
        if c.size not in (1, units) or (c.ndim == 2 and c.shape[0] != 1):
            raise Unsupported(f"its bias has shape {list(c.shape)}")
        weights["bias"] = np.broadcast_to(c.reshape(-1) * float(a.get("beta", 1.0)), (units,))
    return b.add(nid, "Dense", {"units": int(weight.shape[0]), "bias": c is not None},
                 [x], weights)


def _matmul(b: Builder, node: Any, nid: str) -> Tensor:
    w = b.const(node, 1)
    if w is not None and w.ndim == 2 and node.input[0] in b.values:
        tensor = b.add(nid, "Dense", {"units": int(w.shape[1]), "bias": False},
                       [b.input(node, 0)], {"weight": w.T})
        b.made_by[nid] = "MatMul"
        return tensor
    a = attributes(node)
    params = {"transpose_a": bool(a.get("transA", 0)), "transpose_b": bool(a.get("transB", 0))}
    return b.add(nid, "MatMul", params, [b.input(node, 0), b.input(node, 1)])


def _transpose(b: Builder, node: Any, nid: str) -> Tensor:
    x = b.input(node, 0)
    perm = [int(p) for p in attributes(node).get("perm", range(len(x.shape))[::-1])]
    if not perm or perm[0] != 0:
        raise Unsupported(f"it moves the batch axis (perm {perm})")
    swap_last = list(range(len(perm)))
    swap_last[-2:] = swap_last[-2:][::-1]
    axes = [] if perm == swap_last and len(perm) >= 3 else perm[1:]
    return b.add(nid, "Transpose", {"axes": axes}, [x])


def _layer_norm(b: Builder, node: Any, nid: str) -> Tensor:
    a = attributes(node)
    x = b.input(node, 0)
    if int(a.get("axis", -1)) % max(len(x.shape), 1) != len(x.shape) - 1:
        raise Unsupported(f"it normalises from axis {a['axis']}; ours normalises the last axis")
    scale = b.need_const(node, 1, "scale")
    shift = b.const(node, 2)
    if shift is None and len(node.input) > 2 and node.input[2]:
        raise Unsupported("its shift is computed, not a constant")
    if shift is None:
        shift = np.zeros_like(scale)
    params = {"eps": short_float(a.get("epsilon", 1e-5))}
    # Gradscape's exporter writes a LayerNorm without γ, β with constants named <id>/one, /zero
    plain = node.input[1].endswith("/one") and (len(node.input) < 3 or
                                               node.input[2].endswith("/zero"))
    if plain and np.all(scale == 1) and np.all(shift == 0):
        return b.add(nid, "LayerNorm", {**params, "affine": False}, [x])
    d = x.shape[-1] if x.shape else 0
    weights = {"weight": np.broadcast_to(scale, (d,)), "bias": np.broadcast_to(shift, (d,))}
    return b.add(nid, "LayerNorm", params, [x], weights)


def _embedding(b: Builder, node: Any, nid: str) -> Tensor:
    """Gather rows of a constant table by computed ids (after a Cast, fused)."""
    a = attributes(node)
    table = b.const(node, 0)
    if table is None or table.ndim != 2 or int(a.get("axis", 0)) != 0:
        raise Unsupported("only picking rows of a constant table (an embedding) is supported")
    return b.add(nid, "Embedding", {"size": int(table.shape[0]), "dim": int(table.shape[1])},
                 [b.input(node, 1)], {"weight": table})


def _clip(b: Builder, node: Any, nid: str) -> Tensor:
    a = attributes(node)
    low = b.const(node, 1)
    high = b.const(node, 2)
    low = low.ravel()[0] if low is not None else a.get("min")
    high = high.ravel()[0] if high is not None else a.get("max")
    if low is None or high is None:
        raise Unsupported("it has only one bound; ours clamps between a lowest and a highest "
                          "value")
    return b.add(nid, "Clamp", {"min": short_float(low), "max": short_float(high)},
                 [b.input(node, 0)])


def _square_geometry(node: Any, name: str, default: int) -> int:
    values = attributes(node).get(name)
    if values is None:
        return default
    values = [int(v) for v in values]
    if len(values) != 2 or values[0] != values[1]:
        raise Unsupported(f"its {name} {values} differs between height and width")
    return values[0]


def _auto_pad(node: Any) -> str:
    auto_pad = attributes(node).get("auto_pad", b"NOTSET")
    return auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad


def _conv(b: Builder, node: Any, nid: str) -> Tensor:
    from engine.ops.conv import same_padding

    a = attributes(node)
    x = b.input(node, 0)
    w = b.need_const(node, 1, "filter tensor")
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise Unsupported(f"its filters have shape {list(w.shape)}; ours are square 2-D")
    k = int(w.shape[2])
    s = _square_geometry(node, "strides", 1)
    dil = _square_geometry(node, "dilations", 1)
    if len(x.shape) != 4 or None in x.shape[1:]:
        raise Unsupported(f"its input has shape {fmt_shape(x.shape)}")
    span = dil * (k - 1) + 1
    h, wd = int(x.shape[2]), int(x.shape[3])
    _, top, bottom = same_padding(h, span, s)
    _, left, right = same_padding(wd, span, s)
    auto_pad = _auto_pad(node)
    pads = [int(p) for p in a.get("pads", [0, 0, 0, 0])]
    params: dict[str, Any] = {}
    if auto_pad == "SAME_UPPER" or (auto_pad == "NOTSET" and pads == [top, left, bottom, right]
                                    and any(pads)):
        params["padding"] = "same"
        if len(set(pads)) == 1:  # also the number, should the user switch to 'number'
            params["pad"] = pads[0]
    elif auto_pad == "VALID" or (auto_pad == "NOTSET" and not any(pads)):
        params["padding"] = "valid"
    elif auto_pad == "NOTSET" and len(set(pads)) == 1:
        params.update(padding="number", pad=pads[0])
    else:
        raise Unsupported(f"its padding {pads} differs between the sides")
    weights = {"weight": w}
    bias = b.const(node, 2)
    if bias is None and len(node.input) > 2 and node.input[2]:
        raise Unsupported("its bias is computed, not a constant")
    if bias is not None:
        weights["bias"] = bias
    params.update(filters=int(w.shape[0]), kernel=k, stride=s, bias=bias is not None)
    if dil != 1:
        params["dilation"] = dil
    if int(a.get("group", 1)) != 1:
        params["groups"] = int(a["group"])
    return b.add(nid, "Conv2D", params, [x], weights)


def _pool(op_id: str) -> Converter:
    def convert(b: Builder, node: Any, nid: str) -> Tensor:
        a = attributes(node)
        if len(node.output) > 1 and node.output[1]:
            raise Unsupported("its indices output is used")
        if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
            raise Unsupported(f"it is dilated ({list(a['dilations'])})")
        if a.get("ceil_mode", 0):
            raise Unsupported("it rounds the output size up (ceil_mode)")
        pads = [int(p) for p in a.get("pads", [0, 0, 0, 0])]
        if _auto_pad(node) not in ("NOTSET", "VALID") or len(set(pads)) > 1:
            raise Unsupported(f"its padding {pads} differs between the sides")
        pad = pads[0] if pads and _auto_pad(node) == "NOTSET" else 0
        if pad and op_id == "AvgPool2D" and not a.get("count_include_pad", 0):
            raise Unsupported("it leaves the padding out of the average; ours counts it")
        k = _square_geometry(node, "kernel_shape", 0)
        s = _square_geometry(node, "strides", 1)
        params = {"size": k, "stride": 0 if s == k else s}
        if pad:
            params["padding"] = pad
        return b.add(nid, op_id, params, [b.input(node, 0)])

    return convert


def _global_avg_pool(b: Builder, node: Any, nid: str) -> Tensor:
    x = b.input(node, 0)
    if len(x.shape) != 4 or x.shape[2] != x.shape[3] or x.shape[2] is None:
        raise Unsupported(f"its input {fmt_shape(x.shape)} is not a square image")
    return b.add(nid, "AvgPool2D", {"size": int(x.shape[2]), "stride": 0}, [x])


def _attention(b: Builder, node: Any, nid: str) -> Tensor:
    """Self-attention the importer's fusion pass found: inputs x, W_inᵀ, b_in, W_outᵀ, b_out."""
    a = attributes(node)
    names = ("in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias")
    arrays = [b.const(node, i + 1) for i in range(4)]
    arrays[0], arrays[2] = arrays[0].T, arrays[2].T
    bias = arrays[1] is not None
    weights = {n: v for n, v in zip(names, arrays) if v is not None}
    params = {"heads": int(a["heads"]), "causal": bool(a["causal"]), "bias": bias}
    return b.add(nid, "MultiHeadAttention", params, [b.input(node, 0)], weights)


def _batch_norm(b: Builder, node: Any, nid: str) -> Tensor:
    a = attributes(node)
    if a.get("training_mode", 0) or any(o for o in node.output[1:]):
        raise Unsupported("it is in training mode")
    names = ("weight", "bias", "running_mean", "running_var")
    weights = {n: b.need_const(node, i + 1, n.replace("_", " ")) for i, n in enumerate(names)}
    momentum = short_float(1.0 - short_float(a.get("momentum", 0.9)))
    params = {"eps": short_float(a.get("epsilon", 1e-5)), "momentum": momentum}
    return b.add(nid, "BatchNorm", params, [b.input(node, 0)], weights)


def _flatten(b: Builder, node: Any, nid: str) -> Tensor:
    axis = int(attributes(node).get("axis", 1))
    x = b.input(node, 0)
    if axis % max(len(x.shape), 1) != 1:
        raise Unsupported(f"it flattens from axis {axis}; ours keeps the batch axis only")
    return b.add(nid, "Flatten", {}, [x])


def _reshape(b: Builder, node: Any, nid: str) -> Tensor:
    x = b.input(node, 0)
    target = [int(d) for d in b.need_const(node, 1, "new shape", batch_ok=True).reshape(-1)]
    if attributes(node).get("allowzero", 0) and 0 in target:
        raise Unsupported("it uses allowzero")
    if not x.shape or x.shape[0] is not None:
        raise Unsupported(f"its input {fmt_shape(x.shape)} has no batch axis")
    if BATCH in target[1:]:
        raise Unsupported("the new shape moves the batch size away from the first axis")
    if not target or target[0] not in (0, -1, BATCH, b.fixed_batch):
        raise Unsupported(f"the new shape {target} does not keep the batch axis first")
    rest = [int(x.shape[i + 1]) if d == 0 and i + 1 < len(x.shape) else d
            for i, d in enumerate(target[1:])]
    if target[0] == -1 and -1 in rest:
        raise Unsupported(f"the new shape {target} leaves two sizes open")
    if 0 in rest:
        raise Unsupported(f"the new shape {target} has a zero size")
    return b.add(nid, "Reshape", {"shape": rest or [1]}, [x])


def _concat(b: Builder, node: Any, nid: str) -> Tensor:
    if not 2 <= len(node.input) <= 4:
        raise Unsupported(f"it joins {len(node.input)} tensors; ours joins 2 to 4")
    ins = [b.input(node, i) for i in range(len(node.input))]
    ndim = len(ins[0].shape)
    axis = int(attributes(node).get("axis", 0)) % max(ndim, 1)
    return b.add(nid, "Concat", {"axis": -1 if axis == ndim - 1 else axis}, ins)


_BINARY = {"Add": "Add", "Sub": "Subtract", "Mul": "Multiply", "Div": "Divide"}


def _binary(b: Builder, node: Any, nid: str) -> Tensor:
    if node.op_type == "Add":
        fused = _dense_bias(b, node)
        if fused is not None:
            b.ids.used.discard(nid)
            return fused
    if node.op_type == "Mul" and node.input[0] == node.input[1]:
        return b.add(nid, "Square", {}, [b.input(node, 0)])
    return b.add(nid, _BINARY[node.op_type], {}, [b.input(node, 0), b.input(node, 1)])


def _dense_bias(b: Builder, node: Any) -> Tensor | None:
    """MatMul then Add of a constant vector: the Add is the Dense layer's bias."""
    for i in (0, 1):
        x, c = node.input[i], node.input[1 - i]
        t = b.values.get(x)
        bias = b.consts.get(c)
        if t is None or bias is None or b.made_by.get(t.node) != "MatMul":
            continue
        op_id, params = b.nodes[t.node]
        units = int(params["units"])
        if params["bias"] or b.consumers.get(x, 0) != 1 or bias.size != units or (
                bias.ndim == 2 and bias.shape[0] != 1) or bias.ndim > 2:
            continue
        b.set_params(t.node, bias=True)
        b.state[f"{t.node}.bias"] = bias.reshape(-1).astype(np.float32)
        b.made_by[t.node] = "Gemm"
        return t
    return None


def _pow(b: Builder, node: Any, nid: str) -> Tensor:
    exponent = b.need_const(node, 1, "exponent")
    if exponent.size != 1:
        raise Unsupported(f"its exponent has shape {list(exponent.shape)}; ours is one number")
    return b.add(nid, "Power", {"exponent": short_float(exponent.ravel()[0])},
                 [b.input(node, 0)])


def _reduce(op_id: str) -> Converter:
    def convert(b: Builder, node: Any, nid: str) -> Tensor:
        a = attributes(node)
        x = b.input(node, 0)
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = b.need_const(node, 1, "axes").reshape(-1).tolist()
        ndim = len(x.shape)
        axes = sorted({int(v) % max(ndim, 1) for v in (axes or [])})
        if not axes:
            if a.get("noop_with_empty_axes", 0):
                raise Unsupported("it reduces nothing (noop_with_empty_axes)")
            which = "all"
        elif axes == list(range(ndim)):
            which = "all"
        elif axes == [ndim - 1]:
            which = "features"
        elif axes == [0]:
            which = "batch"
        else:
            raise Unsupported(f"it reduces axes {axes}; ours reduces all, the last or the batch")
        keep = bool(a.get("keepdims", 1))
        return b.add(nid, op_id, {"axis": which, "keepdims": keep}, [x])

    return convert


def _dropout(b: Builder, node: Any, nid: str) -> Tensor:
    if len(node.output) > 1 and node.output[1]:
        raise Unsupported("its mask output is used")
    ratio = b.const(node, 1)
    p = float(ratio.ravel()[0]) if ratio is not None else float(
        attributes(node).get("ratio", 0.5))
    return b.add(nid, "Dropout", {"p": short_float(p)}, [b.input(node, 0)])


# ONNX op type -> converter. A node whose type is missing here is listed as unsupported.
CONVERTERS: dict[str, Converter] = {
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Conv": _conv,
    "MaxPool": _pool("MaxPool2D"),
    "AveragePool": _pool("AvgPool2D"),
    "GlobalAveragePool": _global_avg_pool,
    "BatchNormalization": _batch_norm,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Concat": _concat,
    "Dropout": _dropout,
    "Identity": _identity,
    "Relu": _unary("ReLU"),
    "Sigmoid": _unary("Sigmoid"),
    "Tanh": _unary("Tanh"),
    "Exp": _unary("Exp"),
    "Log": _unary("Log"),
    "Softplus": _unary("Softplus"),
    "LeakyRelu": _leaky_relu,
    "Elu": _elu,
    "Gelu": _gelu,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "LayerNormalization": _layer_norm,
    "Gather": _embedding,
    "Transpose": _transpose,
    "Abs": _unary("Abs"),
    "Sqrt": _unary("Sqrt"),
    "Clip": _clip,
    "Add": _binary,
    "Sub": _binary,
    "Mul": _binary,
    "Div": _binary,
    "Pow": _pow,
    "ReduceSum": _reduce("Sum"),
    "ReduceMean": _reduce("Mean"),
    FUSED_SILU: _unary("SiLU"),
    FUSED_GELU: _gelu,
    FUSED_SOFTPLUS: _softplus_fused,
    FUSED_CAUSAL_SOFTMAX: _softmax,
    FUSED_EMBEDDING: _embedding,
    FUSED_GLOBAL_AVG_POOL: _unary("GlobalAvgPool2D"),
    FUSED_ATTENTION: _attention,
    FUSED_MATMUL: _matmul,
}


def check_input_shape(dims: list[int | None], name: str) -> Shape:
    """Our Input shape (batch, *per-sample) from the model input's dims, or Unsupported."""
    if len(dims) < 2:
        raise Unsupported(f"the input '{name}' has {len(dims)} axes; a batch axis and at "
                          "least one feature axis are needed")
    rest = dims[1:]
    if any(d is None or d < 1 for d in rest):
        raise Unsupported(f"the input '{name}' has sizes {dims} that are not all known")
    if len(rest) > 4 or numel(tuple(rest)) > 100_000_000 or max(rest) > 1_000_000:
        raise Unsupported(f"the input '{name}' has the shape {dims}, larger than Gradscape "
                          "takes (at most 4 axes per sample, 1,000,000 per axis)")
    return (None, *(int(d) for d in rest))


def input_params(shape: Shape) -> dict[str, Any]:
    rest = [int(d) for d in shape[1:]]
    return {"features": rest[0]} if len(rest) == 1 else {"shape": rest}

