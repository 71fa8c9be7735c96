"""A compiled graph: a flat list of steps with forward, backward and a per-edge trace.

All learnable tensors are views into one flat parameter vector `theta`, and their
gradients views into one flat vector `grad`, so optimizers update every parameter with
a handful of numpy calls whatever the number of layers.
"""

from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.core import allocator, chunked, jit, registry
from engine.core.compiler import Analysis
from engine.core.spec import EdgeSpec, GraphSpec
from engine.errors import DataError, MemoryLimitError
from engine.ops import conv_chain
from engine.ops.base import Kernel, Shape, fmt_shape, numel


@functools.cache  # asked on every forward: two system calls, 6 µs inside a training step
def memory_budget() -> int:
    """Bytes one batch may use: half the computer's memory (8 GiB where it is unknown)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = 16 * 2**30
    return max(total // 2, 2**30)


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


@dataclass(frozen=True)
class ParamEntry:
    """Where one learnable tensor lives in the flat vectors."""

    node: str
    name: str
    shape: tuple[int, ...]
    offset: int
    size: int
    # Stored as the transpose of `shape` (a Dense weight: (in, out) in memory, so that
    # both of its large matrix products write and read contiguous operands)
    transposed: bool = False

    @property
    def key(self) -> str:
        """State-dict key, e.g. ``"h1.weight"`` (the same key PyTorch export uses)."""
        return f"{self.node}.{self.name}"

    def view(self, flat: np.ndarray) -> np.ndarray:
        """This tensor's part of a vector laid out as theta (theta, grad, Adam's m…), as
        a view of shape `shape`."""
        part = flat[self.offset:self.offset + self.size]
        return part.reshape(self.shape[::-1]).T if self.transposed else part.reshape(self.shape)

    def position(self, index: int) -> int:
        """Where number `index` of the tensor (counted row by row in `shape`) sits in theta."""
        if not self.transposed:
            return self.offset + index
        row, col = divmod(index, self.shape[1])
        return self.offset + col * self.shape[0] + row


class Program:
    """Flat, ordered program compiled from a GraphSpec. Build it with `compile_graph`."""

    def __init__(self, spec: GraphSpec, analysis: Analysis, dtype: np.dtype, seed: int,
                 input_grads: bool):
        allocator.keep_freed_memory()  # a step's arrays reuse the last step's memory
        self.spec = spec
        self.dtype = dtype
        self.seed = seed
        self.order: list[str] = list(analysis.order)
        self.index = {node_id: i for i, node_id in enumerate(self.order)}
        self.shapes: dict[str, Shape] = dict(analysis.shapes)
        self.params: dict[str, dict[str, Any]] = analysis.params
        nodes = {n.id: n for n in spec.nodes}
        self.ops = [registry.get(nodes[i].op) for i in self.order]
        self.op_ids = [op.id for op in self.ops]

        # Edges in file order; each input slot of each node knows its edge index.
        self.edges: list[EdgeSpec] = list(spec.edges)
        edge_index = {(e.dst, e.dst_port): k for k, e in enumerate(self.edges)}
        self.srcs: list[tuple[int, ...]] = []
        self.src_edges: list[tuple[int, ...]] = []
        for node_id, op in zip(self.order, self.ops):
            connected = [p.name for p in op.inputs if p.name in analysis.inputs[node_id]]
            self.srcs.append(tuple(self.index[analysis.inputs[node_id][p].src] for p in connected))
            self.src_edges.append(tuple(edge_index[(node_id, p)] for p in connected))
        self.input_ports = [
            tuple(p.name for p in op.inputs if p.name in analysis.inputs[nid])
            for nid, op in zip(self.order, self.ops)
        ]

        n = len(self.order)
        self.input_nodes = [i for i, op in enumerate(self.ops) if op.role == "input"]
        self.target_nodes = [i for i, op in enumerate(self.ops) if op.role == "target"]
        self.loss_nodes = [i for i, op in enumerate(self.ops) if op.is_loss]

        # Which nodes depend on a Target (skipped when predicting without targets).
        on_target = [False] * n
        for i in range(n):
            on_target[i] = self.ops[i].role == "target" or any(on_target[s] for s in self.srcs[i])
        self.on_target = on_target

        # Which nodes need a gradient: downstream of a learnable tensor (or of an input).
        needs = [False] * n
        for i in range(n):
            op = self.ops[i]
            needs[i] = op.learnable or (input_grads and op.role == "input") or any(
                needs[s] for s in self.srcs[i])
        self.needs_grad = needs

        # Outputs: what feeds the losses' prediction ports; without a loss, the sinks.
        outputs: list[int] = []
        for i in self.loss_nodes:
            ports = self.input_ports[i]
            if "prediction" in ports:
                src = self.srcs[i][ports.index("prediction")]
                if src not in outputs:
                    outputs.append(src)
        if not outputs:
            consumed = {s for srcs in self.srcs for s in srcs}
            outputs = [i for i in range(n) if i not in consumed and not self.on_target[i]]
        self.output_nodes = outputs

        self._build_params(input_grads)
        # Numbers every sample adds to the values and gradients of all nodes: a batch's
        # memory is checked against it before anything is allocated (see `_feed`).
        self.sample_numbers = [numel(self.shapes[i][1:]) for i in self.order]
        self.values: list[np.ndarray | None] = [None] * n
        self.node_grads: list[np.ndarray | None] = [None] * n
        self.edge_grads: list[np.ndarray | None] = [None] * len(self.edges)
        self.loss_value: float = float("nan")
        self._one = np.ones((), dtype=dtype)
        self._training = True

    # -- parameters --------------------------------------------------------------------
    def _build_params(self, input_grads: bool) -> None:
        entries: list[ParamEntry] = []
        buffers: list[tuple[int, str, tuple[int, ...]]] = []
        offset = 0
        ins_of: list[dict[str, Shape]] = []
        for i, node_id in enumerate(self.order):
            ins = {p: self.shapes[self.order[s]] for p, s in zip(self.input_ports[i], self.srcs[i])}
            ins_of.append(ins)
            op = self.ops[i]
            for name, shape in op.param_shapes(self.params[node_id], ins).items():
                size = numel(shape)
                entries.append(ParamEntry(node_id, name, tuple(shape), offset, size,
                                          transposed=name in op.stored_transposed))
                offset += size
            for name, shape in op.buffer_shapes(self.params[node_id], ins).items():
                buffers.append((i, name, tuple(shape)))
        self.entries = entries
        self.theta = np.zeros(offset, dtype=self.dtype)
        self.grad = np.zeros(offset, dtype=self.dtype)
        self.buffers: dict[str, np.ndarray] = {}

        self.kernels: list[Kernel] = []
        for i, node_id in enumerate(self.order):
            op = self.ops[i]
            k = op.make_kernel(self.params[node_id], ins_of[i], self.shapes[node_id], self.dtype)
            k.w, k.g, k.buf = {}, {}, {}
            k.needs_input_grad = tuple(self.needs_grad[s] for s in self.srcs[i])
            self.kernels.append(k)
        for k in self.kernels:
            k.large_network = offset >= jit.MIN_WORK
        self._split_flops_per_sample = max(k.split_flops_per_sample for k in self.kernels)
        # Conv2D → ReLU (→ MaxPool) runs as one chain of passes (engine.ops.conv_chain): by
        # its first node's index, and by its last node's for backward
        always_run = [op.role not in ("input", "target") and not op.is_loss
                      and not self.on_target[i] and self.needs_grad[i]
                      for i, op in enumerate(self.ops)]
        self._chains = conv_chain.find_chains(self.kernels, self.srcs, always_run)
        self._chain_ends = {i + c.size - 1: c for i, c in self._chains.items()}
        self.holds_blas = False  # whether the last forward ran its products on one BLAS thread
        # Per node, its span of the gradient buffer (a node's tensors are adjacent), for
        # backward to zero when the node's backward does not run.
        spans: dict[int, list[int]] = {}
        for e in entries:
            i = self.index[e.node]
            k = self.kernels[i]
            k.w[e.name] = e.view(self.theta)
            k.g[e.name] = e.view(self.grad)
            span = spans.setdefault(i, [e.offset, e.offset])
            span[1] = e.offset + e.size
        self._grad_spans: list[np.ndarray | None] = [
            self.grad[spans[i][0]:spans[i][1]] if i in spans else None
            for i in range(len(self.order))]
        for i, name, shape in buffers:
            arr = np.zeros(shape, dtype=self.dtype)
            self.kernels[i].buf[name] = arr
            self.buffers[f"{self.order[i]}.{name}"] = arr
        self._ins_of = ins_of
        self.reset_parameters(self.seed)

    def reset_parameters(self, seed: int | None = None) -> None:
        """Re-initialise every learnable tensor and buffer from the seed (per node)."""
        seed = self.seed if seed is None else seed
        for i, node_id in enumerate(self.order):
            k = self.kernels[i]
            reseed = getattr(k, "reseed", None)  # random kernels (Dropout): own stream per node
            if reseed is not None:
                reseed([seed, zlib.crc32(node_id.encode("utf-8")), 1])
            if not k.w and not k.buf:
                continue
            rng = np.random.default_rng([seed, zlib.crc32(node_id.encode("utf-8"))])
            op = self.ops[i]
            for name, arr in list(k.w.items()) + list(k.buf.items()):
                arr[...] = op.init_param(name, arr.shape, self.params[node_id],
                                         self._ins_of[i], rng)

    @property
    def num_parameters(self) -> int:
        """Learnable numbers in all (the length of `theta`)."""
        return int(self.theta.size)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every learnable tensor and buffer, keyed ``node.name``."""
        out = {e.key: e.view(self.theta).copy() for e in self.entries}
        out.update({k: v.copy() for k, v in self.buffers.items()})
        return out

    def load_state_dict(self, state: dict[str, np.ndarray], strict: bool = True) -> list[str]:
        """Copy tensors in by key. Returns the keys loaded.

        With strict=False, keys that are missing or whose shape no longer fits are skipped
        (used to keep the weights of unchanged nodes after an edit).
        """
        targets = {e.key: e.view(self.theta)
                   for e in self.entries}
        targets.update(self.buffers)
        loaded: list[str] = []
        problems: list[str] = []
        for key, dst in targets.items():
            src = state.get(key)
            if src is None:
                problems.append(f"'{key}' is missing")
                continue
            src = np.asarray(src)
            if src.shape != dst.shape:
                problems.append(f"'{key}' has shape {src.shape}, the graph needs {dst.shape}")
                continue
            if strict:
                continue
            dst[...] = src
            loaded.append(key)
        if strict:
            extra = [k for k in state if k not in targets]
            problems += [f"'{k}' does not belong to any node of the graph" for k in extra]
            if problems:
                raise DataError("The weights do not fit the graph: " + "; ".join(problems) + ".")
            for key, dst in targets.items():
                dst[...] = np.asarray(state[key])
                loaded.append(key)
        return loaded

    # -- running -----------------------------------------------------------------------
    @property
    def training(self) -> bool:
        """True in training mode (Dropout active, BatchNorm batch statistics)."""
        return self._training

    def set_training(self, training: bool) -> None:
        """Training mode (Dropout active, BatchNorm batch stats) or evaluation mode."""
        if training != self._training:
            self._training = training
            for k in self.kernels:
                k.training = training

    def batch_bytes(self, n: int) -> int:
        """Rough memory of one forward and backward pass on `n` samples (values + gradients)."""
        return 2 * n * sum(self.sample_numbers) * self.dtype.itemsize

    def rows_within(self, limit_bytes: int) -> int:
        """The most samples (at least 1) whose forward and backward pass fit in `limit_bytes`:
        how many rows an evaluation may feed at once."""
        return max(1, limit_bytes // max(self.batch_bytes(1), 1))

    def check_batch_fits(self, n: int) -> None:
        """Raise MemoryLimitError if a batch of `n` samples cannot fit in memory."""
        need = self.batch_bytes(n)
        limit = memory_budget()
        if need <= limit:
            return
        big = max(range(len(self.order)), key=lambda i: self.sample_numbers[i])
        node_bytes = 2 * n * self.sample_numbers[big] * self.dtype.itemsize
        raise MemoryLimitError(
            f"A batch of {n:,} samples needs about {_gib(need)} for the values and gradients "
            f"flowing through the network (node '{self.order[big]}' alone {_gib(node_bytes)}), "
            f"more than the {_gib(limit)} Gradscape may use on this computer. Use a smaller "
            "batch size, or fewer units or channels.")

    def _feed(self, x: np.ndarray, nodes: list[int], what: str) -> np.ndarray:
        if nodes and what == "inputs":
            self.check_batch_fits(len(x) if np.ndim(x) else 1)
        x = np.asarray(x, dtype=self.dtype)
        for i in nodes:
            want = self.shapes[self.order[i]]
            if x.ndim != len(want) or x.shape[1:] != tuple(want[1:]):
                have = (None, *x.shape[1:]) if x.ndim else ()
                raise DataError(
                    f"The {what} have shape {fmt_shape(have)} per batch, but node "
                    f"'{self.order[i]}' expects {fmt_shape(want)}. Check its "
                    f"{'features/shape' if what == 'inputs' else 'features'} setting.")
            self.values[i] = x
        return x

    def forward(self, x: np.ndarray, y: np.ndarray | None = None) -> float:
        """Run every step on one batch and return the total loss (nan without targets).

        Every Input node receives `x`, every Target node `y`.
        """
        self._feed(x, self.input_nodes, "inputs")
        has_targets = y is not None
        if has_targets:
            self._feed(y, self.target_nodes, "targets")
        vals = self.values
        on_target = self.on_target
        # a network that splits large convolution products itself runs them all on one
        # BLAS thread meanwhile (see engine.core.chunked); the backward follows its forward
        batch = len(x) if np.ndim(x) else 1
        self.holds_blas = self._split_flops_per_sample * batch >= chunked.MIN_SPLIT_FLOPS
        chains, done = self._chains, -1
        with chunked.blas_on_one_thread(self.holds_blas):
            for i, k in enumerate(self.kernels):
                op_role = self.ops[i].role
                if op_role == "input" or op_role == "target" or i <= done:
                    continue
                if on_target[i] and not has_targets:
                    continue
                chain = chains.get(i)
                if chain is not None:  # this node and the next one or two, in one go
                    outputs = chain.forward(vals[self.srcs[i][0]])
                    vals[i:i + len(outputs)] = outputs
                    done = i + len(outputs) - 1
                    continue
                vals[i] = k.forward(*[vals[s] for s in self.srcs[i]])
        if has_targets and self.loss_nodes:
            total = 0.0
            for i in self.loss_nodes:
                total += float(vals[i])
            self.loss_value = total
        else:
            self.loss_value = float("nan")
        return self.loss_value

    def backward(self) -> None:
        """Gradients of the total loss: every learnable tensor, every node and every edge.

        The gradient of a node's output is the sum over its out-edges (fan-out); each
        edge keeps its own share.
        """
        # Kernels assign their parameters' gradients (see `Kernel`), so only the nodes whose
        # backward does not run are zeroed: filling the whole buffer first cost 3% of a
        # 235k-parameter MLP's step and 6% of a 5.8M one's.
        grads = self.node_grads
        for i in range(len(grads)):
            grads[i] = None
        edge_grads = self.edge_grads
        for k in range(len(edge_grads)):
            edge_grads[k] = None
        for i in self.loss_nodes:
            grads[i] = self._one
        with chunked.blas_on_one_thread(self.holds_blas):
            self._backward_nodes(grads, edge_grads)

    def _backward_nodes(self, grads: list, edge_grads: list) -> None:
        needs = self.needs_grad
        spans = self._grad_spans
        chain_ends = self._chain_ends
        i = len(self.kernels) - 1
        while i >= 0:
            gy = grads[i]
            if gy is None or not needs[i]:
                if spans[i] is not None:
                    spans[i].fill(0.0)
                i -= 1
                continue
            chain = chain_ends.get(i)
            if chain is None:
                self._send_back(i, self.kernels[i].backward(gy), grads, edge_grads)
                i -= 1
                continue
            # a chain's nodes in one go: each one's gradient goes to the node before it
            for g in chain.backward(gy):
                self._send_back(i, (g,), grads, edge_grads)
                i -= 1

    def _send_back(self, i: int, gins: tuple, grads: list, edge_grads: list) -> None:
        """Store node i's input gradients on its in-edges and add them to its sources'."""
        needs = self.needs_grad
        for s, e, g in zip(self.srcs[i], self.src_edges[i], gins):
            if g is None or not needs[s]:
                continue
            edge_grads[e] = g
            prev = grads[s]
            # Never add in place: the same array may also be stored on another edge.
            grads[s] = g if prev is None else prev + g

    @contextmanager
    def keep_trace(self) -> Iterator[None]:
        """Run extra forward passes (evaluation, prediction) without losing the trace.

        On exit the per-edge values, gradients, the loss, the mode and every kernel's saved
        forward state are those from before, so the trace still describes the last
        training step and a later `backward()` or Jacobian probe matches its forward.
        Kernels rebind their saved arrays on each forward rather than writing into them,
        so keeping references is enough.
        """
        values, node_grads = list(self.values), list(self.node_grads)
        edge_grads, loss, was = list(self.edge_grads), self.loss_value, self._training
        holds_blas = self.holds_blas
        kernel_states = [dict(vars(k)) for k in self.kernels]
        try:
            yield
        finally:
            self.set_training(was)
            self.holds_blas = holds_blas
            for k, state in zip(self.kernels, kernel_states):
                vars(k).clear()
                vars(k).update(state)
            self.values[:], self.node_grads[:], self.edge_grads[:] = values, node_grads, edge_grads
            self.loss_value = loss

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The first output for a batch, in evaluation mode (restores the previous mode).

        The values of every node (other outputs included) are then those of `x`; wrap the
        call in `keep_trace()` to keep the last training step's trace instead.
        """
        was = self._training
        self.set_training(False)
        try:
            self.forward(x)
        finally:
            self.set_training(was)
        return self.values[self.output_nodes[0]]

    # -- inspection --------------------------------------------------------------------
    def edge_value(self, k: int) -> np.ndarray | None:
        """Forward value carried by edge k (its source node's output)."""
        return self.values[self.index[self.edges[k].src]]

    def node_value(self, node_id: str) -> np.ndarray | None:
        """Output of a node in the last forward pass (None if it did not run)."""
        return self.values[self.index[node_id]]

    def node_grad(self, node_id: str) -> np.ndarray | None:
        """dL/d(node output): the sum of the gradients on its out-edges."""
        return self.node_grads[self.index[node_id]]

    def param_value(self, e: ParamEntry) -> np.ndarray:
        """The live tensor of `e`: a view into `theta` (copy it to keep a value)."""
        return e.view(self.theta)

    def param_grad(self, e: ParamEntry) -> np.ndarray:
        """The gradient of `e` from the last backward: a view into `grad`."""
        return e.view(self.grad)

    def row_major(self, flat: np.ndarray) -> np.ndarray:
        """A copy of a vector laid out as theta with each tensor's numbers row by row in its
        shape, as files and PyTorch keep them (`from_row_major` is the inverse)."""
        out = np.empty_like(flat)
        for e in self.entries:
            out[e.offset:e.offset + e.size] = e.view(flat).reshape(-1)
        return out

    def from_row_major(self, flat: np.ndarray) -> np.ndarray:
        """A copy of a vector with each tensor row by row in its shape, laid out as theta."""
        out = np.empty_like(flat)
        for e in self.entries:
            e.view(out)[...] = flat[e.offset:e.offset + e.size].reshape(e.shape)
        return out

    def first_nonfinite_node(self) -> str | None:
        """The first node (in execution order) whose output holds NaN or Inf, if any."""
        for i, v in enumerate(self.values):
            if v is not None and not np.all(np.isfinite(v)):
                return self.order[i]
        return None

    def first_nonfinite_grad(self) -> str | None:
        """The first node, walking backward from the loss, whose gradient is NaN or Inf."""
        for i in range(len(self.order) - 1, -1, -1):
            g = self.node_grads[i]
            if g is not None and not np.all(np.isfinite(g)):
                return self.order[i]
        for e in self.entries:
            if not np.all(np.isfinite(self.param_grad(e))):
                return e.node
        return None

    def topological_edges(self) -> list[int]:
        """Edge indices in the order forward computes their values."""
        return sorted(range(len(self.edges)), key=lambda k: (
            self.index[self.edges[k].src], self.index[self.edges[k].dst]))
