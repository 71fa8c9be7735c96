"""Open an ONNX model as a Gradscape graph with its weights: ``import_onnx(path)``.

Steps: read the file and check it before building any tensor (sizes from the protobuf
dims, external data only inside the model's folder, one input, no cycles); fold the
constant parts with onnx's reference evaluator; fuse multi-node patterns that one of our
ops expresses (SiLU, GELU, Softplus with beta, Embedding, causal Softmax, GlobalAvgPool2D,
MatMul with transposes, MultiHeadAttention as our exporter writes it); convert node by
node with the table in `onnx_ops`; lay the graph out. Every node that cannot be expressed
is listed in one message, by op type with counts and ONNX node names, and nothing is
imported.

The result is a `LoadedModel` that predicts but has no loss: the user picks a loss and a
Target to train it (`engine.training.loss_head.add_loss`, the CLI's ``--loss``, the
designer's Train → Add Loss…).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.layout import layered_layout, wrap_rows
from engine.core.spec import GraphSpec
from engine.errors import FileFormatError
from engine.files.model_file import LoadedModel
from engine.files.onnx_ops import (
    BATCH,
    CONVERTERS,
    FUSED_ATTENTION,
    FUSED_CAUSAL_SOFTMAX,
    FUSED_EMBEDDING,
    FUSED_GELU,
    FUSED_GLOBAL_AVG_POOL,
    FUSED_MATMUL,
    FUSED_SILU,
    FUSED_SOFTPLUS,
    USES_BATCH,
    Builder,
    Unsupported,
    attributes,
    check_input_shape,
    input_params,
)
from engine.files.sized_read import read_limited

MAX_FILE_BYTES = 2 * 1024**3
MAX_NODES = 50_000
MAX_TENSOR_BYTES = 2 * 1024**3
MAX_TOTAL_BYTES = 4 * 1024**3
MAX_FOLDED_ELEMENTS = 16 * 1024**2  # one constant computed while importing
LAYERS_PER_ROW = 6  # a deeper chain is laid out in rows (engine.core.layout.wrap_rows)
FLOAT_INPUTS = {1, 10, 11, 16}  # float, float16, double, bfloat16
# Never computed at import time: random, or with subgraphs (those are refused anyway).
NOT_FOLDED = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
              "Multinomial", "Bernoulli", "Dropout", "If", "Loop", "Scan"}
# Ops whose output may be far larger than their inputs: folded only with a known size.
GROWING = {"ConstantOfShape", "Expand", "Tile", "Range", "Pad", "Resize", "Upsample",
           "OneHot", "EyeLike", "ConvTranspose", "MatMul", "Gemm", "Einsum"}
# Folded even when an input holds the dynamic batch size: they only move shape entries.
SHAPE_PLUMBING = {"Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Identity"}
TITLES_NOT_SHOWN = {"", "gradscape", "main_graph", "torch_jit", "torch-jit-export"}
HINTS = {
    "Shape": "the model computes sizes from its input at run time that the file does not "
             "record; export it with a fixed input size (PyTorch: no dynamic_axes)",
}


def import_onnx(path: str | os.PathLike[str]) -> LoadedModel:
    """Read a .onnx file as a graph with its weights (no loss yet).

    Raises:
        FileFormatError: a sentence naming the file and the nodes that cannot be imported.
    """
    name, data = read_limited(path, MAX_FILE_BYTES, "ONNX models opened by Gradscape")
    return loads_onnx(data, name, Path(path).parent)


def loads_onnx(data: bytes, name: str = "the model",
               folder: str | os.PathLike[str] | None = None) -> LoadedModel:
    """Import the bytes of a .onnx file; external data is read from `folder` only."""
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency
        raise FileFormatError("Opening ONNX models needs the 'onnx' package: "
                              "pip install onnx") from None
    try:
        model = onnx.load_model_from_string(bytes(data))
    except Exception:  # noqa: BLE001  (protobuf raises its own DecodeError types)
        raise FileFormatError(f"{name} is not an ONNX model (its contents could not be "
                              "decoded).") from None
    if not model.HasField("graph"):
        raise FileFormatError(f"{name} is not an ONNX model (it holds no graph).")
    try:
        return _Importer(model, name, Path(folder) if folder is not None else None).run()
    except FileFormatError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            RecursionError, UnicodeError, onnx.checker.ValidationError) as exc:
        # a damaged field (a name that is not text, a wrong attribute type) deep inside
        raise FileFormatError(f"{name} is damaged: {type(exc).__name__}: {exc}.") from None


class _Importer:
    def __init__(self, model: Any, name: str, folder: Path | None):
        self.model, self.name, self.folder = model, name, folder
        self.graph = model.graph
        self.batch_values: set[str] = set()  # folded shape values holding BATCH
        self.opset = next((int(o.version) for o in model.opset_import
                           if o.domain in ("", "ai.onnx")), 13)

    def fail(self, text: str) -> FileFormatError:
        return FileFormatError(f"{self.name}: {text}")

    def run(self) -> LoadedModel:
        self.check_sizes()
        self.order = self.topological_order()
        self.static = self.inferred_shapes()
        self.load_external()
        consts, nodes = self.fold_constants()
        nodes = _Fusion(nodes, consts, self.graph_output_names()).run()
        self.refuse_unknown_ops(nodes)
        return self.convert(consts, nodes)

    # -- checks before anything is allocated -----------------------------------------
    def tensors(self):
        """Every tensor in the file with a name saying where it is."""
        for t in self.graph.initializer:
            yield t, f"the weight '{t.name}'"
        for node in self.graph.node:
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t, f"the constant of node '{node.name or node.output[0]}'"
                for t in a.tensors:
                    yield t, f"a constant of node '{node.name or node.output[0]}'"

    def check_sizes(self) -> None:
        g = self.graph
        if len(g.node) > MAX_NODES:
            raise self.fail(f"the model has {len(g.node):,} nodes; Gradscape opens models "
                            f"of up to {MAX_NODES:,}.")
        if len(g.sparse_initializer):
            raise self.fail("the model stores sparse weights, which Gradscape does not read.")
        total = 0
        for t, where in self.tensors():
            total += self.tensor_bytes(t, where)
            if total > MAX_TOTAL_BYTES:
                raise self.fail(f"its weights add up to more than "
                                f"{MAX_TOTAL_BYTES // 2**30} GiB, more than Gradscape opens.")

    def tensor_bytes(self, t: Any, where: str) -> int:
        from onnx import TensorProto, helper

        dims = [int(d) for d in t.dims]
        if any(d < 0 for d in dims):
            raise self.fail(f"{where} has the impossible shape {dims}.")
        try:
            itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
        except (KeyError, TypeError, ValueError):
            raise self.fail(f"{where} has an unknown element type ({t.data_type}).") from None
        if t.data_type == TensorProto.STRING:
            raise self.fail(f"{where} holds text, which Gradscape does not use.")
        nbytes = math.prod(dims) * itemsize
        if nbytes > MAX_TENSOR_BYTES:
            raise self.fail(f"{where} has shape {dims} ({nbytes / 2**30:.1f} GiB), larger "
                            f"than the {MAX_TENSOR_BYTES // 2**30} GiB Gradscape reads.")
        if t.data_location == TensorProto.EXTERNAL:
            self.check_external(t, where, nbytes)
        return nbytes

    def check_external(self, t: Any, where: str, nbytes: int) -> None:
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        if self.folder is None:
            raise self.fail(f"{where} is stored in another file ('{location}'), and the "
                            "model was not opened from a folder.")
        base = self.folder.resolve()
        if not location or "\x00" in location or os.path.isabs(location) or \
                Path(location).drive:
            raise self.fail(f"{where} is stored at '{location}', which is not a file name "
                            "inside the model's folder; it is refused.")
        target = (base / location).resolve()
        if base not in target.parents:
            raise self.fail(f"{where} is stored at '{location}', outside the model's folder; "
                            "it is refused.")
        try:
            size = target.stat().st_size
        except OSError:
            raise self.fail(f"{where} is stored in '{location}', which is missing from the "
                            "model's folder.") from None
        try:
            offset = int(info.get("offset", 0))
            length = int(info.get("length", size - offset))
        except ValueError:
            raise self.fail(f"{where} has a damaged external-data entry.") from None
        if offset < 0 or length != nbytes or offset + length > size:
            raise self.fail(f"{where} needs {nbytes:,} bytes of '{location}' from offset "
                            f"{offset:,}, which the file ({size:,} bytes) does not hold.")

    def load_external(self) -> None:
        from onnx import TensorProto
        from onnx.external_data_helper import load_external_data_for_tensor

        for t, _where in self.tensors():
            if t.data_location == TensorProto.EXTERNAL:
                load_external_data_for_tensor(t, str(self.folder))
                t.data_location = TensorProto.DEFAULT
                del t.external_data[:]

    def graph_output_names(self) -> set[str]:
        return {o.name for o in self.graph.output}

    def topological_order(self) -> list[Any]:
        """The nodes in an order where each input is computed first; refuses cycles."""
        g = self.graph
        known = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
        producer: dict[str, int] = {}
        for k, node in enumerate(g.node):
            if node.op_type in ("If", "Loop", "Scan"):
                continue  # refused later as unsupported ops; their subgraphs are not read
            for out in node.output:
                if out in producer or out in known and out:
                    raise self.fail(f"the value '{out}' is computed twice (node "
                                    f"'{node.name or out}').")
                if out:
                    producer[out] = k
        waiting = [0] * len(g.node)
        users: dict[int, list[int]] = {}
        for k, node in enumerate(g.node):
            for inp in node.input:
                if inp in known:
                    continue
                if inp not in producer:
                    raise self.fail(f"node '{node.name or node.output[0]}' reads '{inp}', "
                                    "which nothing computes.")
                waiting[k] += 1
                users.setdefault(producer[inp], []).append(k)
        ready = [k for k in range(len(g.node)) if waiting[k] == 0]
        order: list[int] = []
        while ready:
            k = ready.pop(0)
            order.append(k)
            for u in users.get(k, []):
                waiting[u] -= 1
                if waiting[u] == 0:
                    ready.append(u)
        if len(order) != len(g.node):
            stuck = [g.node[k].name or g.node[k].output[0] for k in range(len(g.node))
                     if waiting[k] > 0][:5]
            raise self.fail("its nodes form a cycle (" + ", ".join(f"'{s}'" for s in stuck)
                            + "); an ONNX graph must run from inputs to outputs.")
        for out in self.graph.output:
            if out.name not in producer and out.name not in known:
                raise self.fail(f"the output '{out.name}' is computed by no node.")
        return [g.node[k] for k in order]

    def inferred_shapes(self) -> dict[str, list[int | None]]:
        """Static shapes onnx's shape inference finds (empty where it gives up)."""
        import onnx

        try:
            inferred = onnx.shape_inference.infer_shapes(self.model, data_prop=True)
        except Exception:  # noqa: BLE001  (inference is a help, not a requirement)
            return {}
        out: dict[str, list[int | None]] = {}
        g = inferred.graph
        for vi in list(g.value_info) + list(g.input) + list(g.output):
            tt = vi.type.tensor_type
            if tt.HasField("shape"):
                out[vi.name] = [int(d.dim_value) if d.HasField("dim_value") else None
                                for d in tt.shape.dim]
        return out

    # -- constants ---------------------------------------------------------------------
    def to_array(self, t: Any, where: str) -> np.ndarray:
        from onnx import numpy_helper

        try:
            return numpy_helper.to_array(t)
        except Exception as exc:  # noqa: BLE001
            raise self.fail(f"{where} is damaged ({exc}).") from None

    def fold_constants(self) -> tuple[dict[str, np.ndarray], list[Any]]:
        """Compute every node whose inputs are all constants; return the rest."""
        consts = {t.name: self.to_array(t, f"the weight '{t.name}'")
                  for t in self.graph.initializer}
        graph_inputs = {i.name for i in self.graph.input} - set(consts)
        self.input_names = [n for n in (i.name for i in self.graph.input) if n in graph_inputs]
        rest: list[Any] = []
        for node in self.order:
            label = node.name or node.output[0]
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                consts[node.output[0]] = self.constant_value(node, label)
                continue
            if node.op_type == "Shape" and self.static_shape(node.input[0]) is not None:
                dims = self.static_shape(node.input[0])
                a = attributes(node)
                start, end = a.get("start", 0), a.get("end", len(dims))
                self.keep(consts, node.output[0], np.asarray(dims[start:end], dtype=np.int64))
                continue
            uses_batch = any(i in self.batch_values for i in node.input)
            if (node.op_type in NOT_FOLDED or node.domain not in ("", "ai.onnx")
                    or not all(i == "" or i in consts for i in node.input)
                    or (uses_batch and node.op_type not in SHAPE_PLUMBING)
                    or not self.small_enough(node, consts)):
                rest.append(node)
                continue
            for out, value in zip(node.output, self.evaluate(node, consts, label)):
                if value.size > MAX_FOLDED_ELEMENTS:
                    raise self.fail(f"node '{label}' computes a constant of shape "
                                    f"{list(value.shape)}, larger than Gradscape takes.")
                self.keep(consts, out, value)
        return consts, rest

    def keep(self, consts: dict[str, np.ndarray], name: str, value: np.ndarray) -> None:
        consts[name] = value
        if value.dtype == np.int64 and (value == BATCH).any():
            self.batch_values.add(name)

    def static_shape(self, name: str) -> list[int] | None:
        """The shape of a value as numbers; a dynamic batch size (first axis) is BATCH."""
        dims = self.static.get(name)
        if not dims or None in dims[1:]:
            return None
        return [BATCH if d is None else int(d) for d in dims]

    def constant_value(self, node: Any, label: str) -> np.ndarray:
        a = {x.name: x for x in node.attribute}
        if "value" in a:
            return self.to_array(a["value"].t, f"the constant of node '{label}'")
        vals = attributes(node)
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                           ("value_int", np.int64), ("value_ints", np.int64)):
            if key in vals:
                return np.asarray(vals[key], dtype=dtype)
        raise self.fail(f"the constant node '{label}' holds no number.")

    def small_enough(self, node: Any, consts: dict[str, np.ndarray]) -> bool:
        """Whether computing the node cannot allocate more than MAX_FOLDED_ELEMENTS."""
        if node.op_type not in GROWING:
            return True
        dims = self.static.get(node.output[0])
        if dims and None not in dims:
            return math.prod(dims) <= MAX_FOLDED_ELEMENTS
        ins = [consts.get(i) for i in node.input]
        if node.op_type == "ConstantOfShape" and ins and ins[0] is not None:
            return ins[0].size <= 8 and math.prod(int(v) for v in ins[0].ravel()) \
                <= MAX_FOLDED_ELEMENTS
        return False

    def evaluate(self, node: Any, consts: dict[str, np.ndarray], label: str) -> list[Any]:
        from onnx import TypeProto, helper
        from onnx.reference import ReferenceEvaluator

        names = [i for i in node.input if i]
        inputs = [helper.make_tensor_value_info(
            i, helper.np_dtype_to_tensor_dtype(consts[i].dtype), list(consts[i].shape))
            for i in names]
        outputs = [helper.make_value_info(o, TypeProto()) for o in node.output if o]
        graph = helper.make_graph([node], "fold", inputs, outputs)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        try:
            values = ReferenceEvaluator(model).run(None, {i: consts[i] for i in names})
        except Exception as exc:  # noqa: BLE001  (any failure is a damaged node)
            raise self.fail(f"node '{label}' ({node.op_type}) could not be computed from its "
                            f"constants: {exc}") from None
        return [np.asarray(v) for v in values]

    # -- conversion --------------------------------------------------------------------
    def refuse_unknown_ops(self, nodes: list[Any]) -> None:
        """List the nodes no converter takes, and those computing with the batch size."""
        found: dict[str, list[tuple[str, str]]] = {}
        batch = set(self.batch_values)
        for node in nodes:
            key = op_key(node)
            uses = [k for k, i in enumerate(node.input) if i in batch]
            if uses and not (node.op_type == "Reshape" and uses == [1]):  # a new shape may
                batch.update(node.output)                                # hold the batch size
                found.setdefault(key, []).append((node.name or node.output[0], USES_BATCH))
                continue
            if key not in CONVERTERS:
                found.setdefault(key, []).append((node.name or node.output[0], ""))
        if found:
            raise self.fail(_unsupported_message(found))

    def model_input(self, b: Builder) -> str:
        if len(self.input_names) != 1:
            raise self.fail(f"the model has {len(self.input_names)} inputs "
                            f"({', '.join(self.input_names) or 'none'}); Gradscape models "
                            "take one input tensor.")
        name = self.input_names[0]
        vi = next(i for i in self.graph.input if i.name == name)
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or tt.elem_type not in FLOAT_INPUTS:
            raise self.fail(f"the input '{name}' does not hold real numbers (element type "
                            f"{tt.elem_type}); Gradscape feeds float tensors.")
        dims = [int(d.dim_value) if d.HasField("dim_value") else None for d in tt.shape.dim]
        try:
            shape = check_input_shape(dims, name)
        except Unsupported as exc:
            raise self.fail(str(exc) + ".") from None
        b.fixed_batch = dims[0]
        nid = b.ids.make(name)
        b.values[name] = b.add(nid, "Input", input_params(shape), [])
        return nid

    def convert(self, consts: dict[str, np.ndarray], nodes: list[Any]) -> LoadedModel:
        outputs = [o.name for o in self.graph.output]
        consumers = Counter(i for n in nodes for i in n.input if i)
        consumers.update(outputs)
        b = Builder(consts, {t.name for t in self.graph.initializer}, dict(consumers),
                    set(outputs), None, self.batch_values)
        nid = self.model_input(b)
        if any(n.op_type == FUSED_EMBEDDING and n.input[1] == self.input_names[0]
               for n in nodes):  # a sequence of ids: the Input says "shape", not "features"
            b.nodes[nid] = ("Input", {"shape": [int(d) for d in b.shapes[nid][1:]]})
        refused: dict[str, list[tuple[str, str]]] = {}
        for node in nodes:
            label = node.name or node.output[0]
            if not all(i == "" or i in b.values or i in consts for i in node.input):
                continue  # downstream of a refused node: only that one is reported
            try:
                if any(consumers.get(o) for o in node.output[1:] if o):
                    raise Unsupported("it has more than one output in use")
                nid = b.ids.make(label, node.op_type)
                b.values[node.output[0]] = CONVERTERS[op_key(node)](b, node, nid)
            except Unsupported as exc:
                refused.setdefault(op_key(node), []).append((label, str(exc)))
        if refused:
            raise self.fail(_unsupported_message(refused))
        out_ids = []
        for name in outputs:
            t = b.values.get(name)
            if t is None or b.nodes[t.node][0] in ("Input", "Constant", "Parameter"):
                raise self.fail(f"the output '{name}' is not computed from the input.")
            out_ids.append(t.node)
        return self.loaded_model(b, _needed(b, out_ids))

    def loaded_model(self, b: Builder, keep: set[str]) -> LoadedModel:
        nodes = [n for n in b.spec_nodes() if n.id in keep]
        edges = [e for e in b.edges if e.dst in keep]
        positions = wrap_rows(layered_layout([n.id for n in nodes], edges), LAYERS_PER_ROW)
        layout = {k: [float(x), float(y)] for k, (x, y) in positions.items()}
        training: dict[str, Any] = {}
        title = self.graph.name.strip()
        if title not in TITLES_NOT_SHOWN:
            training["title"] = title
        spec = GraphSpec(tuple(nodes), tuple(edges), layout, training)
        state = {k: v for k, v in b.state.items() if k.split(".", 1)[0] in keep}
        return LoadedModel(spec, "float32", 0, state, preprocessing=self.preprocessing(),
                           source=self.name)

    def preprocessing(self) -> dict[str, Any]:
        """Class names and input preprocessing that Gradscape's exporter wrote, if any."""
        props = {p.key: p.value for p in self.model.metadata_props}
        out: dict[str, Any] = {}
        try:
            names = json.loads(props.get("gradscape.class_names", "[]"))
            pre = json.loads(props.get("gradscape.preprocessing", "{}"))
        except ValueError:
            return out
        if isinstance(names, list) and names:
            out.update(class_names=[str(n) for n in names], task="classification")
        if isinstance(pre, dict) and pre:
            out["preprocessing"] = pre
        return out


def op_key(node: Any) -> str:
    """The CONVERTERS key of a node: its op type, prefixed by a non-standard domain."""
    if node.domain in ("", "ai.onnx"):
        return node.op_type
    return f"{node.domain}.{node.op_type}"


def _needed(b: Builder, outputs: list[str]) -> set[str]:
    """Our nodes on the way to the outputs (dead branches are left out)."""
    srcs: dict[str, list[str]] = {}
    for e in b.edges:
        srcs.setdefault(e.dst, []).append(e.src)
    keep: set[str] = set()
    stack = list(outputs)
    while stack:
        n = stack.pop()
        if n not in keep:
            keep.add(n)
            stack.extend(srcs.get(n, []))
    return keep


def _unsupported_message(found: dict[str, list[tuple[str, str]]]) -> str:
    total = sum(len(v) for v in found.values())
    parts = []
    for key, items in sorted(found.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        shown = []
        for name, reason in items[:4]:
            shown.append(f"'{name}'" + (f": {reason}" if reason else ""))
        more = f", and {len(items) - 4} more" if len(items) > 4 else ""
        hint = f" — {HINTS[key]}" if key in HINTS else ""
        parts.append(f"{key} ×{len(items)} ({'; '.join(shown)}{more}){hint}")
    noun = "node" if total == 1 else "nodes"
    return (f"Gradscape cannot express {total} {noun} of this model: " + "; ".join(parts)
            + ". Nothing was imported.")


class _Fusion:
    """Replace multi-node patterns by one node that one of our ops expresses exactly."""

    def __init__(self, nodes: list[Any], consts: dict[str, np.ndarray], outputs: set[str]):
        self.nodes, self.consts = list(nodes), consts
        self.producer = {o: n for n in self.nodes for o in n.output if o}
        self.users: dict[str, list[Any]] = {}
        for n in self.nodes:
            for i in n.input:
                self.users.setdefault(i, []).append(n)
        self.outputs = outputs

    def run(self) -> list[Any]:
        replaced: dict[int, Any] = {}
        removed: set[int] = set()
        for node in self.nodes:
            if id(node) in removed:
                continue
            for match in (self.attention, self.silu, self.gelu, self.gelu_tanh, self.softplus,
                          self.causal_softmax, self.embedding, self.global_avg_pool,
                          self.transposed_matmul):
                found = match(node)
                if found is not None and not any(id(n) in removed for n in found[0]):
                    parts, fused = found
                    removed.update(id(n) for n in parts)
                    replaced[id(parts[-1])] = fused
                    break
        out = []
        for node in self.nodes:
            if id(node) in replaced:
                out.append(replaced[id(node)])
            elif id(node) not in removed:
                out.append(node)
        return out

    # helpers
    def only_user(self, value: str, op_type: str) -> Any | None:
        users = self.users.get(value, [])
        if len(users) == 1 and value not in self.outputs and users[0].op_type == op_type:
            return users[0]
        return None

    def made_by(self, value: str, op_type: str) -> Any | None:
        n = self.producer.get(value)
        return n if n is not None and n.op_type == op_type else None

    def scalar(self, value: str) -> float | None:
        c = self.consts.get(value)
        return float(c.ravel()[0]) if c is not None and c.size == 1 else None

    def other(self, node: Any, value: str) -> str | None:
        ins = list(node.input)
        if len(ins) != 2 or value not in ins:
            return None
        return ins[1] if ins[0] == value else ins[0]

    def is_const(self, value: str | None, target: float) -> bool:
        v = None if value is None else self.scalar(value)
        return v is not None and abs(v - target) <= 1e-6 * max(1.0, abs(target))

    @staticmethod
    def make(op_type: str, x: str, last: Any, **attrs: Any) -> Any:
        from onnx import helper

        return helper.make_node(op_type, [x], [last.output[0]], name=last.name or
                                last.output[0], **attrs)

    @staticmethod
    def make_n(op_type: str, inputs: list[str], last: Any, **attrs: Any) -> Any:
        from onnx import helper

        return helper.make_node(op_type, inputs, [last.output[0]], name=last.name or
                                last.output[0], **attrs)

    def perm(self, node: Any | None) -> list[int] | None:
        if node is None or node.op_type != "Transpose":
            return None
        return [int(p) for p in attributes(node).get("perm", [])]

    def ints(self, value: str) -> list[int] | None:
        c = self.consts.get(value)
        return None if c is None or c.dtype.kind not in "iu" else [int(v) for v in c.ravel()]

    # patterns (each keyed on its first node; returns (nodes in order, fused node))
    def silu(self, sig: Any):
        if sig.op_type != "Sigmoid":
            return None
        x, s = sig.input[0], sig.output[0]
        mul = self.only_user(s, "Mul")
        if mul is None or self.other(mul, s) != x:
            return None
        return [sig, mul], self.make(FUSED_SILU, x, mul)

    def gelu(self, first: Any):
        """x·½(1 + erf(x/√2)), written as PyTorch or Gradscape's exporter write it."""
        if first.op_type not in ("Div", "Mul") or len(first.input) != 2:
            return None
        x, c = first.input
        if first.op_type == "Mul" and self.scalar(x) is not None:
            x, c = c, x
        want = math.sqrt(2.0) if first.op_type == "Div" else math.sqrt(0.5)
        if not self.is_const(c, want):
            return None
        erf = self.only_user(first.output[0], "Erf")
        add = erf and self.only_user(erf.output[0], "Add")
        if add is None or not self.is_const(self.other(add, erf.output[0]), 1.0):
            return None
        m1 = self.only_user(add.output[0], "Mul")
        if m1 is None:
            return None
        m2 = self.only_user(m1.output[0], "Mul")
        if m2 is None:
            return None
        half_then_x = self.is_const(self.other(m1, add.output[0]), 0.5) and \
            self.other(m2, m1.output[0]) == x
        x_then_half = self.other(m1, add.output[0]) == x and \
            self.is_const(self.other(m2, m1.output[0]), 0.5)
        if not (half_then_x or x_then_half):
            return None
        return [first, erf, add, m1, m2], self.make(FUSED_GELU, x, m2, approximate="none")

    def softplus(self, bx: Any):
        """Softplus with beta and threshold, as Gradscape's exporter writes it."""
        if bx.op_type != "Mul" or len(bx.input) != 2:
            return None
        x, beta = bx.input
        if self.scalar(beta) is None:
            return None
        users = self.users.get(bx.output[0], [])
        if len(users) != 2 or bx.output[0] in self.outputs:
            return None
        sp = next((u for u in users if u.op_type == "Softplus"), None)
        gt = next((u for u in users if u.op_type == "Greater"), None)
        if sp is None or gt is None or gt.input[0] != bx.output[0]:
            return None
        div = self.only_user(sp.output[0], "Div")
        where = self.only_user(gt.output[0], "Where")
        threshold = self.scalar(gt.input[1])
        if div is None or where is None or threshold is None or \
                not self.is_const(div.input[1], self.scalar(beta)):
            return None
        if list(where.input) != [gt.output[0], x, div.output[0]]:
            return None
        return [bx, sp, div, gt, where], self.make(
            FUSED_SOFTPLUS, x, where, beta=self.scalar(beta), threshold=threshold)

    def gelu_tanh(self, x2: Any):
        """x·½(1 + tanh(√(2/π)(x + 0.044715x³))), as Gradscape's exporter writes it."""
        if x2.op_type != "Mul" or len(x2.input) != 2 or x2.input[0] != x2.input[1]:
            return None
        x = x2.input[0]
        x3 = self.only_user(x2.output[0], "Mul")
        if x3 is None or self.other(x3, x2.output[0]) != x:
            return None
        kx3 = self.only_user(x3.output[0], "Mul")
        inner = kx3 and self.only_user(kx3.output[0], "Add")
        if inner is None or not self.is_const(self.other(kx3, x3.output[0]), 0.044715) or \
                self.other(inner, kx3.output[0]) != x:
            return None
        scaled = self.only_user(inner.output[0], "Mul")
        if scaled is None or not self.is_const(self.other(scaled, inner.output[0]),
                                               math.sqrt(2.0 / math.pi)):
            return None
        t = self.only_user(scaled.output[0], "Tanh")
        t1 = t and self.only_user(t.output[0], "Add")
        if t1 is None or not self.is_const(self.other(t1, t.output[0]), 1.0):
            return None
        cdf = self.only_user(t1.output[0], "Mul")
        out = cdf and self.only_user(cdf.output[0], "Mul")
        if out is None or not self.is_const(self.other(cdf, t1.output[0]), 0.5) or \
                self.other(out, cdf.output[0]) != x:
            return None
        return ([x2, x3, kx3, inner, scaled, t, t1, cdf, out],
                self.make(FUSED_GELU, x, out, approximate="tanh"))

    def masked(self, where: Any) -> str | None:
        """The scores a causal Where(mask, −∞, scores) hides; None when it is another Where."""
        if where is None or where.op_type != "Where" or len(where.input) != 3:
            return None
        mask, fill, scores = where.input
        m, f = self.consts.get(mask), self.scalar(fill)
        if m is None or m.ndim != 2 or m.shape[0] != m.shape[1] or f != -math.inf:
            return None
        from engine.ops.sequence import causal_mask

        if not np.array_equal(m.astype(bool), causal_mask(*m.shape)):
            return None
        return scores

    def causal_softmax(self, where: Any):
        scores = self.masked(where)
        sm = scores and self.only_user(where.output[0], "Softmax")
        if sm is None:
            return None
        return [where, sm], self.make(FUSED_CAUSAL_SOFTMAX, scores, sm,
                                      axis=int(attributes(sm).get("axis", -1)))

    def embedding(self, cast: Any):
        """Cast of float ids to integers, then Gather of rows of a table."""
        if cast.op_type != "Cast" or int(attributes(cast).get("to", 0)) not in (6, 7):
            return None
        gather = self.only_user(cast.output[0], "Gather")
        if gather is None or gather.input[1] != cast.output[0]:
            return None
        return [cast, gather], self.make_n(FUSED_EMBEDDING, [gather.input[0], cast.input[0]],
                                           gather, axis=int(attributes(gather).get("axis", 0)))

    def global_avg_pool(self, pool: Any):
        if pool.op_type != "GlobalAveragePool":
            return None
        flat = self.only_user(pool.output[0], "Flatten")
        if flat is None or int(attributes(flat).get("axis", 1)) != 1:
            return None
        return [pool, flat], self.make(FUSED_GLOBAL_AVG_POOL, pool.input[0], flat)

    def transposed_matmul(self, matmul: Any):
        """MatMul of a swap of the last two axes: our MatMul's transpose_a / transpose_b.

        A Transpose that is a node of its own in Gradscape's export ("<id>.out") stays one."""
        if matmul.op_type != "MatMul" or len(matmul.input) != 2:
            return None
        parts, ins, flags = [], list(matmul.input), {}
        for i, flag in ((0, "transA"), (1, "transB")):
            t = self.producer.get(ins[i])
            perm = self.perm(t)
            if perm is None or len(perm) < 3 or t.name.endswith(".out") or \
                    perm != [*range(len(perm) - 2), len(perm) - 1, len(perm) - 2] or \
                    self.only_user(ins[i], "MatMul") is not matmul:
                continue
            parts.append(t)
            ins[i] = t.input[0]
            flags[flag] = 1
        if not parts:
            return None
        return [*parts, matmul], self.make_n(FUSED_MATMUL, ins, matmul, **flags)

    def linear(self, out: str) -> tuple[list[Any], str, str, str] | None:
        """x·W (+ b) written by _linear: (nodes, x, Wᵀ name, bias name or "")."""
        node = self.producer.get(out)
        bias = ""
        parts = []
        if node is not None and node.op_type == "Add":
            for i in (0, 1):
                mm = self.made_by(node.input[i], "MatMul")
                c = self.consts.get(node.input[1 - i])
                if mm is not None and c is not None and c.ndim == 1 and \
                        self.only_user(mm.output[0], "Add") is node:
                    bias, parts, node = node.input[1 - i], [node], mm
                    break
        if node is None or node.op_type != "MatMul":
            return None
        w = self.consts.get(node.input[1])
        if w is None or w.ndim != 2 or node.input[0] in self.consts:
            return None
        return [node, *parts], node.input[0], node.input[1], bias

    def attention(self, heads: Any):
        """Multi-head self-attention as Gradscape's exporter writes it (opset 17 has no node)."""
        if self.perm(heads) != [2, 0, 3, 1, 4]:
            return None
        split = self.made_by(heads.input[0], "Reshape")
        shape = split and self.ints(split.input[1])
        if shape is None or len(shape) != 5 or shape[2] != 3:
            return None
        t, h, dh = shape[1], shape[3], shape[4]
        inner = self.linear(split.input[0])
        if inner is None or self.only_user(split.input[0], "Reshape") is not split:
            return None
        in_parts, x, w_in, b_in = inner
        qkv = self.users.get(heads.output[0], [])
        if len(qkv) != 3 or any(g.op_type != "Gather" for g in qkv):
            return None
        by_index = {tuple(self.ints(g.input[1]) or ()): g for g in qkv}
        if set(by_index) != {(0,), (1,), (2,)}:
            return None
        gq, gk, gv = by_index[(0,)], by_index[(1,)], by_index[(2,)]
        kt = self.only_user(gk.output[0], "Transpose")
        if self.perm(kt) != [0, 1, 3, 2]:
            return None
        qk = self.only_user(kt.output[0], "MatMul")
        if qk is None or list(qk.input) != [gq.output[0], kt.output[0]] or \
                self.only_user(gq.output[0], "MatMul") is not qk:
            return None
        sc = self.only_user(qk.output[0], "Mul")
        if sc is None or not self.is_const(self.other(sc, qk.output[0]), 1.0 / math.sqrt(dh)):
            return None
        parts = [*in_parts, split, heads, gq, gk, gv, kt, qk, sc]
        nxt = (self.users.get(sc.output[0]) or [None])[0]
        causal = self.masked(nxt) == sc.output[0] and \
            self.only_user(sc.output[0], "Where") is not None
        if causal:
            parts.append(nxt)
        sm = self.only_user(parts[-1].output[0], "Softmax")
        if sm is None or int(attributes(sm).get("axis", -1)) not in (-1, 3):
            return None
        av = self.only_user(sm.output[0], "MatMul")
        if av is None or list(av.input) != [sm.output[0], gv.output[0]] or \
                self.only_user(gv.output[0], "MatMul") is not av:
            return None
        avt = self.only_user(av.output[0], "Transpose")
        if self.perm(avt) != [0, 2, 1, 3]:
            return None
        o = self.only_user(avt.output[0], "Reshape")
        if o is None or self.ints(o.input[1]) != [0, t, h * dh]:
            return None
        mm = self.only_user(o.output[0], "MatMul")
        if mm is None or mm.input[0] != o.output[0]:
            return None
        end = self.users.get(mm.output[0], [])
        out_parts, b_out = [mm], ""
        if len(end) == 1 and end[0].op_type == "Add" and mm.output[0] not in self.outputs:
            c = self.other(end[0], mm.output[0])
            if c is not None and c in self.consts and self.consts[c].ndim == 1:
                out_parts, b_out = [mm, end[0]], c
        if mm.input[1] not in self.consts or (b_in == "") != (b_out == ""):
            return None
        parts += [sm, av, avt, o, *out_parts]
        return parts, self.make_n(FUSED_ATTENTION, [x, w_in, b_in, mm.input[1], b_out],
                                  parts[-1], heads=h, causal=int(causal))
