"""Validate a GraphSpec, infer shapes, order the steps and build a Program.

Every problem is collected (not just the first) into a CompileError whose diagnostics
each name the offending node or edge and say what to do. No recursion anywhere: the
order is an iterative Kahn sort, so very deep graphs compile.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.core import registry
from engine.core.spec import EdgeSpec, GraphSpec, NodeSpec
from engine.errors import CompileError, Diagnostic, ShapeError
from engine.ops.base import OpDef, Shape, fmt_shape, numel

if TYPE_CHECKING:
    from engine.core.program import Program

# Refuse graphs that would exhaust memory before anything is allocated.
MAX_TENSOR_NUMBERS = 50_000_000  # one learnable tensor (200 MB as float32)
MAX_TOTAL_PARAMS = 200_000_000
MAX_SAMPLE_NUMBERS = 20_000_000  # one node's output for one sample


@dataclass
class Analysis:
    """What the compiler learned about a graph, even when it has errors.

    The designer uses it to badge nodes and show shapes while the graph is incomplete.
    """

    order: list[str]  # topological order of the nodes that could be ordered
    shapes: dict[str, Shape]  # inferred output shape per node (where it could be inferred)
    params: dict[str, dict[str, Any]]  # resolved params per node (defaults filled in)
    inputs: dict[str, dict[str, EdgeSpec]]  # node -> input port -> incoming edge
    diagnostics: list[Diagnostic]

    @property
    def ok(self) -> bool:
        """True when nothing is wrong: the graph compiles."""
        return not self.diagnostics


def analyze(spec: GraphSpec, require_loss: bool = True) -> Analysis:
    """Check everything that can be checked without allocating; never raises."""
    diags: list[Diagnostic] = []
    ops: dict[str, OpDef] = {}
    params: dict[str, dict[str, Any]] = {}
    for node in spec.nodes:
        op = registry.get(node.op)
        if op is None:
            diags.append(Diagnostic(
                f"Node '{node.id}' uses the unknown op '{node.op}'; pick an op from the palette.",
                node=node.id))
            continue
        ops[node.id] = op
        params[node.id] = op.resolve_params(node.params)
        _check_params(node, op, diags)

    inputs = _check_edges(spec, ops, diags)
    order, unordered = _kahn_order(spec)
    on_cycle = _nodes_on_cycles(spec, unordered)
    for node_id in unordered:
        if node_id in on_cycle:
            diags.append(Diagnostic(
                f"Node '{node_id}' is part of a cycle: its output flows back into its own "
                "input. Remove one of the wires in the loop.", node=node_id))
        else:
            diags.append(Diagnostic(
                f"Node '{node_id}' cannot be computed: one of its inputs comes from a cycle "
                "upstream. Remove one of the wires in that loop.", node=node_id))

    bad_nodes = {d.node for d in diags if d.node}
    shapes: dict[str, Shape] = {}
    total_params = 0
    for node_id in order:
        op = ops.get(node_id)
        if op is None or node_id in bad_nodes:
            continue
        ins: dict[str, Shape] = {}
        ready = True
        for port, edge in inputs.get(node_id, {}).items():
            if edge.src not in shapes:
                ready = False
                break
            ins[port] = shapes[edge.src]
        if not ready:
            continue
        try:
            shape = op.infer_shape(params[node_id], ins)
        except ShapeError as exc:
            diags.append(Diagnostic(f"Node '{node_id}' ({op.id}): {exc}.", node=node_id))
            continue
        except (ValueError, TypeError, KeyError) as exc:
            diags.append(Diagnostic(
                f"Node '{node_id}' ({op.id}) cannot work out its output shape: {exc}.",
                node=node_id))
            continue
        shapes[node_id] = shape
        total_params += _check_size(node_id, op, params[node_id], ins, shape, diags)
    if total_params > MAX_TOTAL_PARAMS:
        diags.append(Diagnostic(
            f"The graph would have {total_params:,} learnable numbers in all, more than the "
            f"{MAX_TOTAL_PARAMS:,} Gradscape can hold in memory; make its layers smaller."))

    if require_loss and not [d for d in diags if "unknown op" in d.message]:
        _check_loss_reachable(spec, ops, inputs, diags)
    return Analysis(order, shapes, params, inputs, diags)


def compile_graph(spec: GraphSpec, dtype: str | np.dtype = "float32", seed: int = 0,
                  require_loss: bool = True, input_grads: bool = False) -> Program:
    """Compile to a Program, or raise CompileError with every diagnostic.

    Args:
        spec: the graph.
        dtype: "float32" (default) or "float64" (gradient checks, exact teaching numbers).
        seed: seeds the weight initialisation (per node, so editing one node keeps the others).
        require_loss: training graphs need a loss reachable from a learnable tensor.
        input_grads: also compute dL/dx on the edges leaving Input nodes.
    """
    from engine.core.program import Program

    analysis = analyze(spec, require_loss=require_loss)
    if analysis.diagnostics:
        raise CompileError(analysis.diagnostics)
    return Program(spec, analysis, np.dtype(dtype), seed, input_grads)


# -- checks ------------------------------------------------------------------------------

def _check_params(node: NodeSpec, op: OpDef, diags: list[Diagnostic]) -> None:
    known = {p.name for p in op.params}
    for name in node.params:
        if name not in known:
            hint = f" It has: {', '.join(sorted(known))}." if known else ""
            diags.append(Diagnostic(
                f"Node '{node.id}' ({op.id}) has no param '{name}'.{hint}", node=node.id))
    for p in op.params:
        if p.name in node.params:
            problem = p.check(node.params[p.name])
            if problem:
                diags.append(Diagnostic(f"Node '{node.id}' ({op.id}): {problem}.", node=node.id))


def _check_edges(spec: GraphSpec, ops: dict[str, OpDef],
                 diags: list[Diagnostic]) -> dict[str, dict[str, EdgeSpec]]:
    ids = {n.id for n in spec.nodes}
    inputs: dict[str, dict[str, EdgeSpec]] = {n.id: {} for n in spec.nodes}
    for edge in spec.edges:
        bad = False
        for end in (edge.src, edge.dst):
            if end not in ids:
                diags.append(Diagnostic(
                    f"The wire {edge.key} refers to a node '{end}' that does not exist.",
                    edge=edge.key))
                bad = True
        if bad:
            continue
        if edge.src_port != "out":
            diags.append(Diagnostic(
                f"The wire {edge.key} starts at port '{edge.src_port}' of '{edge.src}', "
                "but outputs are always named 'out'.", node=edge.src, edge=edge.key))
            continue
        op = ops.get(edge.dst)
        if op is None:
            continue
        port_names = [p.name for p in op.inputs]
        if edge.dst_port not in port_names:
            where = f"its inputs are {', '.join(port_names)}" if port_names else "it has no inputs"
            diags.append(Diagnostic(
                f"The wire {edge.key} goes into port '{edge.dst_port}' of '{edge.dst}' "
                f"({op.id}), which has no such input; {where}.", node=edge.dst, edge=edge.key))
            continue
        if edge.dst_port in inputs[edge.dst]:
            diags.append(Diagnostic(
                f"Input '{edge.dst_port}' of node '{edge.dst}' has two wires; an input takes "
                "exactly one. Remove one of them.", node=edge.dst, edge=edge.key))
            continue
        inputs[edge.dst][edge.dst_port] = edge
    for node in spec.nodes:
        op = ops.get(node.id)
        if op is None:
            continue
        for port in op.inputs:
            if not port.optional and port.name not in inputs[node.id]:
                diags.append(Diagnostic(
                    f"Input '{port.name}' of node '{node.id}' ({op.id}) is not connected; "
                    "wire an output into it.", node=node.id))
    return inputs


def _kahn_order(spec: GraphSpec) -> tuple[list[str], list[str]]:
    """Topological order (stable: file order among ready nodes) and nodes left in cycles."""
    ids = [n.id for n in spec.nodes]
    known = set(ids)
    indegree = {i: 0 for i in ids}
    out_edges: dict[str, list[str]] = {i: [] for i in ids}
    for e in spec.edges:
        if e.src in known and e.dst in known:
            indegree[e.dst] += 1
            out_edges[e.src].append(e.dst)
    ready = deque(i for i in ids if indegree[i] == 0)
    order: list[str] = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for dst in out_edges[node]:
            indegree[dst] -= 1
            if indegree[dst] == 0:
                ready.append(dst)
    placed = set(order)
    return order, [i for i in ids if i not in placed]


def _nodes_on_cycles(spec: GraphSpec, candidates: list[str]) -> set[str]:
    """The candidates that lie on a cycle (Tarjan's strongly connected components, without
    recursion); the others merely sit downstream of one."""
    if not candidates:
        return set()
    members = set(candidates)
    succ: dict[str, list[str]] = {i: [] for i in candidates}
    self_loop: set[str] = set()
    for e in spec.edges:
        if e.src in members and e.dst in members:
            succ[e.src].append(e.dst)
            if e.src == e.dst:
                self_loop.add(e.src)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[str] = set()
    for root in candidates:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(succ[node]):
                work.append((node, i + 1))
                nxt = succ[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1 or node in self_loop:
                    found.update(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def _check_size(node_id: str, op: OpDef, params: dict[str, Any], ins: dict[str, Shape],
                shape: Shape, diags: list[Diagnostic]) -> int:
    """Diagnose tensors too large to allocate; return the node's learnable numbers."""
    try:
        tensors = op.param_shapes(params, ins)
    except (ShapeError, ValueError, KeyError):
        tensors = {}
    for name, tshape in tensors.items():
        n = numel(tshape)
        if n > MAX_TENSOR_NUMBERS:
            diags.append(Diagnostic(
                f"Node '{node_id}' ({op.id}) would need a {name} of {n:,} numbers "
                f"({n * 4 / 2**30:.1f} GiB); make the layer smaller.", node=node_id))
    if numel(shape) > MAX_SAMPLE_NUMBERS:
        diags.append(Diagnostic(
            f"Node '{node_id}' ({op.id}) would output {numel(shape):,} numbers per sample "
            f"{fmt_shape(shape)}, too many to fit in memory; make it smaller.", node=node_id))
    return sum(numel(t) for t in tensors.values())


def _check_loss_reachable(spec: GraphSpec, ops: dict[str, OpDef],
                          inputs: dict[str, dict[str, EdgeSpec]],
                          diags: list[Diagnostic]) -> None:
    losses = [n.id for n in spec.nodes if n.id in ops and ops[n.id].is_loss]
    if not losses:
        diags.append(Diagnostic(
            "The graph has no loss, so there is nothing to minimise. Add a loss node "
            "(e.g. MSELoss) and wire the prediction and the Target into it."))
        return
    upstream: set[str] = set()
    stack = list(losses)
    while stack:
        node = stack.pop()
        if node in upstream:
            continue
        upstream.add(node)
        stack.extend(e.src for e in inputs.get(node, {}).values())
    learnable = [n.id for n in spec.nodes if n.id in ops and ops[n.id].learnable]
    if not any(n in upstream for n in learnable):
        diags.append(Diagnostic(
            "No loss is reachable from any learnable node (Dense, Conv2D, Parameter, …), so "
            "training cannot change anything. Wire a learnable node's output towards "
            f"'{losses[0]}'.",
            node=losses[0]))
