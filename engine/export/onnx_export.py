"""ONNX export of the inference graph (no loss, Dropout off, BatchNorm in inference mode).

The model has one input named ``input`` of shape (batch, *per-sample shape) with a
dynamic batch dimension, and one output per prediction: ``output`` when there is one,
else ``output_<node id>``. Weights are float32 initializers named like the state dict
(``h1.weight``); each node's value is named ``<node id>.out``. Needs the `onnx` package,
imported only when exporting.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from engine.core.program import Program
from engine.core.spec import atomic_write_bytes
from engine.export._graph import (
    INFERENCE_OPS,
    ExportError,
    InferenceGraph,
    INode,
    batched,
    inference_graph,
)
from engine.ops.sources import value_array

DEFAULT_OPSET = 17
# The ONNX IR version that came with each opset (set explicitly so runtimes load the file).
IR_FOR_OPSET = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}
INPUT_NAME = "input"



def output_names(graph: InferenceGraph) -> list[str]:
    """The ONNX output names, one per prediction node."""
    if len(graph.outputs) == 1:
        return ["output"]
    return [f"output_{o}" for o in graph.outputs]


class _Builder:
    def __init__(self, graph: InferenceGraph, opset: int):
        from onnx import helper, numpy_helper

        self.h, self.nh = helper, numpy_helper
        self.graph, self.opset = graph, opset
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.names: dict[str, str] = {}

    def const(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        self.inits.append(self.nh.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def add(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(self.h.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def emit(self, n: INode) -> None:
        out = f"{n.id}.out"
        ins = [self.names[s] for s in n.inputs]
        p, op, w = n.params, n.op, self.graph.weights
        c = f"{n.id}/"  # prefix of helper values and constants of this node
        if op == "Input":
            self.names[n.id] = INPUT_NAME
            return
        if op == "Parameter":
            self.names[n.id] = self.const(f"{n.id}.value", w[f"{n.id}.value"])
            return
        if op == "Constant":  # a Constant node, so an import tells it from a weight
            shape = tuple(int(d) for d in (p.get("shape") or []))
            value = self.nh.from_array(value_array(p, shape).astype(np.float32), out)
            self.names[n.id] = self.add("Constant", [], out, value=value)
            return
        if op == "Dense" and len(n.in_shapes[0]) == 3:  # a sequence: Linear on the last axis
            self._linear(ins[0], f"{n.id}.weight", f"{n.id}.bias" if p["bias"] else None,
                         out, c)
        elif op == "Dense":
            args = [ins[0], self.const(f"{n.id}.weight", w[f"{n.id}.weight"])]
            if p["bias"]:
                args.append(self.const(f"{n.id}.bias", w[f"{n.id}.bias"]))
            self.add("Gemm", args, out, transB=1)
        elif op == "Embedding":
            ids = self.add("Cast", ins, c + "ids", to=7)  # TensorProto.INT64
            self.add("Gather", [self.const(f"{n.id}.weight", w[f"{n.id}.weight"]), ids], out,
                     axis=0)
        elif op == "LayerNorm":
            d = int(n.shape[-1])
            if p["affine"]:
                scale = self.const(f"{n.id}.weight", w[f"{n.id}.weight"])
                shift = self.const(f"{n.id}.bias", w[f"{n.id}.bias"])
            else:
                scale, shift = self.const(c + "one", np.ones(d)), self.const(c + "zero",
                                                                              np.zeros(d))
            self.add("LayerNormalization", [ins[0], scale, shift], out, axis=-1,
                     epsilon=float(p["eps"]))
        elif op == "MultiHeadAttention":
            self._attention(n, ins[0], out, c)
        elif op == "MatMul":
            a, b = ins
            if p["transpose_a"]:
                a = self.add("Transpose", [a], c + "a_t", perm=_swap_last(len(n.in_shapes[0])))
            if p["transpose_b"]:
                b = self.add("Transpose", [b], c + "b_t", perm=_swap_last(len(n.in_shapes[1])))
            self.add("MatMul", [a, b], out)
        elif op == "Transpose":
            from engine.ops.sequence import transpose_perm

            self.add("Transpose", ins, out, perm=list(transpose_perm(p, n.in_shapes[0])))
        elif op == "Abs" or op == "Sqrt":
            self.add(op, ins, out)
        elif op == "Clamp":
            self.add("Clip", [ins[0], self.const(c + "min", float(p["min"])),
                              self.const(c + "max", float(p["max"]))], out)
        elif op == "GlobalAvgPool2D":
            pooled = self.add("GlobalAveragePool", ins, c + "pooled")
            self.add("Flatten", [pooled], out, axis=1)
        elif op == "Conv2D":
            from engine.ops.conv import Conv2D

            _, _, (top, bottom, left, right) = Conv2D()._geometry(p, n.in_shapes[0])
            k, s = int(p["kernel"]), int(p["stride"])
            args = [ins[0], self.const(f"{n.id}.weight", w[f"{n.id}.weight"])]
            if p["bias"]:
                args.append(self.const(f"{n.id}.bias", w[f"{n.id}.bias"]))
            dil = int(p.get("dilation", 1))
            self.add("Conv", args, out, kernel_shape=[k, k], strides=[s, s],
                     pads=[top, left, bottom, right], dilations=[dil, dil],
                     group=int(p.get("groups", 1)))
        elif op in ("MaxPool2D", "AvgPool2D"):
            k = int(p["size"])
            s = int(p["stride"]) or k
            pad = int(p.get("padding", 0))
            extra = {"count_include_pad": 1} if op == "AvgPool2D" and pad else {}
            self.add("MaxPool" if op == "MaxPool2D" else "AveragePool", ins, out,
                     kernel_shape=[k, k], strides=[s, s], pads=[pad] * 4, **extra)
        elif op == "BatchNorm":
            args = [ins[0]] + [self.const(f"{n.id}.{k}", w[f"{n.id}.{k}"])
                               for k in ("weight", "bias", "running_mean", "running_var")]
            self.add("BatchNormalization", args, out, epsilon=float(p["eps"]),
                     momentum=1.0 - float(p["momentum"]))
        elif op == "Flatten":
            self.add("Flatten", ins, out, axis=1)
        elif op == "Reshape":
            target = [int(d) for d in (n.shape[1:] if batched(n.shape) else n.shape)]
            shape = [0, *target] if batched(n.shape) else target
            self.add("Reshape", [ins[0], self.const(c + "shape", shape, np.int64)], out)
        elif op in ("Dropout", "Identity"):
            self.add("Identity", ins, out)
        elif op in ("Tanh", "Sigmoid", "Exp", "Log"):
            self.add(op, ins, out)
        elif op == "ReLU":
            self.add("Relu", ins, out)
        elif op == "LeakyReLU":
            self.add("LeakyRelu", ins, out, alpha=float(p["slope"]))
        elif op == "ELU":
            self.add("Elu", ins, out, alpha=float(p["alpha"]))
        elif op in ("Softmax", "LogSoftmax"):
            from engine.ops.activations import softmax_axis

            x = ins[0]
            if p.get("causal"):
                x = self._causal(x, int(n.shape[-1]), c)
            self.add(op, [x], out, axis=softmax_axis(p, n.in_shapes[0]))
        elif op == "SiLU":
            sig = self.add("Sigmoid", ins, c + "sigmoid")
            self.add("Mul", [ins[0], sig], out)
        elif op == "GELU":
            self._gelu(n, ins[0], out, c)
        elif op == "Softplus":
            beta, thr = float(p["beta"]), float(p["threshold"])
            bx = self.add("Mul", [ins[0], self.const(c + "beta", beta)], c + "bx")
            sp = self.add("Softplus", [bx], c + "softplus")
            soft = self.add("Div", [sp, self.const(c + "beta_div", beta)], c + "soft")
            big = self.add("Greater", [bx, self.const(c + "threshold", thr)], c + "linear")
            self.add("Where", [big, ins[0], soft], out)
        elif op in ("Add", "Subtract", "Multiply", "Divide"):
            onnx_op = {"Add": "Add", "Subtract": "Sub", "Multiply": "Mul", "Divide": "Div"}[op]
            self.add(onnx_op, ins, out)
        elif op == "Power":
            self.add("Pow", [ins[0], self.const(c + "exponent", float(p["exponent"]))], out)
        elif op == "Square":
            self.add("Mul", [ins[0], ins[0]], out)
        elif op == "Concat":
            self.add("Concat", ins, out, axis=int(p["axis"]) % len(n.shape))
        elif op in ("Sum", "Mean"):
            self._reduce(n, ins[0], out, c)
        else:  # pragma: no cover - INFERENCE_OPS and this chain must agree
            raise ExportError(f"Node '{n.id}' ({op}) cannot be exported to ONNX.")
        self.names[n.id] = out

    def _linear(self, x: str, weight: str, bias: str | None, out: str, c: str) -> str:
        """x·Wᵀ + b on the last axis of any rank (Gemm takes matrices only)."""
        w = self.graph.weights
        wt = self.add("Transpose", [self.const(weight, w[weight])], c + weight + "_t",
                      perm=[1, 0])
        if bias is None:
            return self.add("MatMul", [x, wt], out)
        y = self.add("MatMul", [x, wt], c + weight + "_xw")
        return self.add("Add", [y, self.const(bias, w[bias])], out)

    def _causal(self, scores: str, t: int, c: str) -> str:
        """−∞ above the diagonal of the last two axes (later positions are hidden)."""
        from engine.ops.sequence import causal_mask

        mask = self.const(c + "causal_mask", causal_mask(t, t), np.bool_)
        return self.add("Where", [mask, self.const(c + "minus_inf", -np.inf), scores],
                        c + "masked")

    def _attention(self, n: INode, x: str, out: str, c: str) -> None:
        """Multi-head self-attention written out in ONNX primitives (opset 17 has no node)."""
        p, k = n.params, n.id
        t, d = int(n.shape[1]), int(n.shape[2])
        h = int(p["heads"])
        bias = bool(p["bias"])
        qkv = self._linear(x, f"{k}.in_proj_weight", f"{k}.in_proj_bias" if bias else None,
                           c + "qkv", c)
        split = self.add("Reshape", [qkv, self.const(c + "qkv_shape", [0, t, 3, h, d // h],
                                                     np.int64)], c + "qkv_split")
        heads = self.add("Transpose", [split], c + "qkv_heads", perm=[2, 0, 3, 1, 4])
        q, kk, v = (self.add("Gather", [heads, self.const(c + f"i{j}", j, np.int64)],
                             c + name, axis=0) for j, name in enumerate(("q", "k", "v")))
        kt = self.add("Transpose", [kk], c + "k_t", perm=[0, 1, 3, 2])
        s = self.add("MatMul", [q, kt], c + "qk")
        s = self.add("Mul", [s, self.const(c + "scale", 1.0 / math.sqrt(d // h))], c + "scores")
        if p["causal"]:
            s = self._causal(s, t, c)
        a = self.add("Softmax", [s], c + "attention", axis=-1)
        o = self.add("MatMul", [a, v], c + "av")
        o = self.add("Transpose", [o], c + "av_t", perm=[0, 2, 1, 3])
        o = self.add("Reshape", [o, self.const(c + "o_shape", [0, t, d], np.int64)], c + "o")
        self._linear(o, f"{k}.out_proj_weight", f"{k}.out_proj_bias" if bias else None, out, c)

    def _gelu(self, n: INode, x: str, out: str, c: str) -> None:
        half = self.const(c + "half", 0.5)
        one = self.const(c + "one", 1.0)
        if n.params["approximate"] == "tanh":
            cube = self.add("Mul", [self.add("Mul", [x, x], c + "x2"), x], c + "x3")
            inner = self.add("Add", [x, self.add("Mul", [cube, self.const(c + "k", 0.044715)],
                                                 c + "kx3")], c + "inner")
            scaled = self.add("Mul", [inner, self.const(c + "s", math.sqrt(2.0 / math.pi))],
                              c + "scaled")
            t = self.add("Tanh", [scaled], c + "t")
        else:
            t = self.add("Erf", [self.add("Mul", [x, self.const(c + "s", math.sqrt(0.5))],
                                          c + "scaled")], c + "t")
        cdf = self.add("Mul", [self.add("Add", [t, one], c + "t1"), half], c + "cdf")
        self.add("Mul", [x, cdf], out)

    def _reduce(self, n: INode, x: str, out: str, c: str) -> None:
        from engine.ops.elementwise import reduce_axis

        axes = list(reduce_axis(n.params, n.in_shapes[0]))
        keep = int(bool(n.params["keepdims"]))
        op = "ReduceSum" if n.op == "Sum" else "ReduceMean"
        if not axes:  # reducing a scalar: nothing to do
            self.add("Identity", [x], out)
        elif op == "ReduceMean" and self.opset < 18:
            self.add(op, [x], out, axes=axes, keepdims=keep)
        else:
            self.add(op, [x, self.const(c + "axes", axes, np.int64)], out, keepdims=keep)


def _swap_last(rank: int) -> list[int]:
    perm = list(range(rank))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return perm


def _value_info(helper: Any, name: str, shape: tuple, elem: int) -> Any:
    dims = ["batch" if d is None else int(d) for d in shape]
    return helper.make_tensor_value_info(name, elem, dims)


def build_onnx(program: Program, opset: int = DEFAULT_OPSET,
               metadata: dict[str, str] | None = None) -> Any:
    """The checked onnx.ModelProto of the program's inference graph."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise ExportError("ONNX export needs the 'onnx' package: pip install onnx") from None
    if opset not in IR_FOR_OPSET:
        raise ExportError(f"Opset {opset} is not supported; choose one of "
                          f"{min(IR_FOR_OPSET)}–{max(IR_FOR_OPSET)} (default {DEFAULT_OPSET}).")
    graph = inference_graph(program, "ONNX", INFERENCE_OPS)
    b = _Builder(graph, opset)
    for n in graph.nodes:
        b.emit(n)
    f32 = TensorProto.FLOAT
    outs = []
    for node_id, name in zip(graph.outputs, output_names(graph)):
        b.add("Identity", [b.names[node_id]], name)
        outs.append(_value_info(helper, name, program.shapes[node_id], f32))
    g = helper.make_graph(b.nodes, graph.title or "gradscape",
                          [_value_info(helper, INPUT_NAME, graph.input_shape, f32)], outs,
                          initializer=b.inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="Gradscape", producer_version=_version())
    model.ir_version = IR_FOR_OPSET[opset]
    model.doc_string = ("Inference graph exported by Gradscape. Input 'input': "
                        f"{_dims(graph.input_shape)}; outputs: " + ", ".join(
                            f"'{nm}' {_dims(program.shapes[o])} (node {o})"
                            for o, nm in zip(graph.outputs, output_names(graph))))
    meta = {"gradscape.outputs": ",".join(graph.outputs), **(metadata or {})}
    helper.set_model_props(model, meta)
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"The exported ONNX model does not pass onnx's checker: {exc}") from None
    return model


def _dims(shape: tuple) -> str:
    return "(" + ", ".join("batch" if d is None else str(d) for d in shape) + ")"


def _version() -> str:
    from engine import __version__

    return __version__


def export_onnx(program: Program, out: str | os.PathLike[str], opset: int = DEFAULT_OPSET,
                metadata: dict[str, str] | None = None) -> None:
    """Write the inference graph as a .onnx file (atomically)."""
    model = build_onnx(program, opset, metadata)
    atomic_write_bytes(out, model.SerializeToString())
