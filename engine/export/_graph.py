"""The inference part of a compiled graph, shared by every exporter.

Starting from the program's outputs (what feeds the losses' prediction ports, or the
sinks of a graph without a loss) it walks upstream and keeps the nodes needed to
predict: no Target, no loss. Ops an exporter does not know are refused by node name.
"""

from __future__ import annotations

import keyword
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.program import Program
from engine.errors import GradscapeError
from engine.ops.base import Shape


class ExportError(GradscapeError):
    """The graph (or one of its nodes) cannot be written in the requested format."""


@dataclass
class INode:
    """One node of the inference graph."""

    id: str
    op: str
    params: dict[str, Any]
    inputs: list[str]  # source node ids, in the op's port order
    ports: tuple[str, ...]
    shape: Shape
    in_shapes: list[Shape]


@dataclass
class InferenceGraph:
    """Nodes in execution order, the Input and output node ids and the weights."""

    nodes: list[INode]
    inputs: list[str]
    outputs: list[str]
    input_shape: Shape
    weights: dict[str, np.ndarray]  # "node.name" -> array (parameters and buffers)
    program: Program
    title: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def node(self, node_id: str) -> INode:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)


# Ops every exporter (ONNX, PyTorch, NumPy) can write; losses and Targets never are.
INFERENCE_OPS = frozenset({
    "Input", "Parameter", "Constant", "Dense", "Flatten", "Reshape", "Dropout", "Conv2D",
    "MaxPool2D", "AvgPool2D", "BatchNorm", "Tanh", "ReLU", "Sigmoid", "LeakyReLU", "ELU",
    "GELU", "SiLU", "Softmax", "Softplus", "Identity", "Add", "Subtract", "Multiply",
    "Divide", "Power", "Square", "Exp", "Log", "Concat", "Sum", "Mean",
    "Embedding", "LayerNorm", "MultiHeadAttention", "MatMul", "Transpose", "LogSoftmax",
    "Abs", "Sqrt", "Clamp", "GlobalAvgPool2D",
})


def inference_graph(program: Program, fmt: str, supported: frozenset[str]) -> InferenceGraph:
    """The nodes needed to predict, or ExportError naming the first node that cannot go."""
    order = program.order
    needed: set[int] = set()
    stack = list(program.output_nodes)
    while stack:
        i = stack.pop()
        if i in needed:
            continue
        needed.add(i)
        stack.extend(program.srcs[i])
    nodes: list[INode] = []
    for i in sorted(needed):
        node_id, op_id = order[i], program.op_ids[i]
        op = program.ops[i]
        if op.role == "target" or op.is_loss:
            raise ExportError(
                f"Node '{node_id}' ({op_id}) feeds the prediction, but it needs the targets, "
                f"which do not exist when predicting; {fmt} export takes the path from the "
                "Input to the prediction only.")
        if op_id not in supported:
            raise ExportError(
                f"Node '{node_id}' ({op_id}) cannot be exported to {fmt}: the exporter has no "
                f"translation for {op_id}. Replace it or remove it from the prediction path.")
        srcs = program.srcs[i]
        nodes.append(INode(
            node_id, op_id, dict(program.params[node_id]), [order[s] for s in srcs],
            program.input_ports[i], program.shapes[node_id],
            [program.shapes[order[s]] for s in srcs]))
    inputs = [n.id for n in nodes if n.op == "Input"]
    if not inputs:
        raise ExportError(
            f"The graph has no Input node on the way to its output, so there is nothing to "
            f"feed the {fmt} model; wire an Input into the network.")
    shapes = {program.shapes[i] for i in inputs}
    if len(shapes) > 1:
        raise ExportError("The Input nodes of the graph have different shapes; an exported "
                          "model takes one input tensor.")
    keep = {n.id for n in nodes}
    weights = {k: v for k, v in program.state_dict().items() if k.split(".", 1)[0] in keep}
    return InferenceGraph(nodes, inputs, [order[i] for i in program.output_nodes],
                          program.shapes[inputs[0]], weights, program,
                          str(program.spec.training.get("title", "")))


# -- Python identifiers for generated code ---------------------------------------------

def python_names(ids: list[str], reserved: set[str]) -> dict[str, str]:
    """A distinct ASCII identifier per node id; ids that already are valid stay unchanged."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for node_id in ids:
        name = re.sub(r"\W", "_", node_id, flags=re.ASCII)
        if not name or name[0].isdigit() or name.startswith("_"):
            name = "n_" + name.lstrip("_")
        if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in reserved:
            name += "_"
        base, k = name, 2
        while name in used or name in reserved:
            name = f"{base}_{k}"
            k += 1
        used.add(name)
        out[node_id] = name
    return out


def fmt_float(v: float) -> str:
    """A float literal that reads back exactly."""
    v = float(v)
    if not math.isfinite(v):
        return f"float('{v}')"
    return repr(v)


def batched(shape: Shape) -> bool:
    return len(shape) > 0 and shape[0] is None


def code_export_paths(out: str | os.PathLike[str], weights_name: str) -> tuple[Path, Path]:
    """(script, weights file) for OUT: a folder gets model.py + WEIGHTS_NAME, a path ending
    in .py gets the weights beside it with WEIGHTS_NAME's suffix. Creates the folder."""
    path = Path(out)
    if path.suffix == ".py":
        suffix = Path(weights_name).suffix
        folder, script, weights = path.parent, path, path.with_suffix(suffix)
    else:
        folder, script, weights = path, path / "model.py", path / weights_name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"Cannot create the folder {folder}: {exc.strerror}.") from None
    return script, weights
