"""Explain, with the actual numbers, how backpropagation made a gradient.

Call these after ``program.forward(x, y)`` and ``program.backward()``; they only read
the program (the parameter gradients are restored after probing, see below).

How local derivatives are found (one generic rule, no per-op code): every kernel's
``backward(gy)`` is linear in ``gy`` and returns the vector-Jacobian product
``Jᵀ·gy`` for each connected input, using the state saved by the last forward. Calling
it again with a one-hot upstream gradient for output element ``o`` therefore returns
row ``o`` of the Jacobian ``J[o, i] = ∂out_o/∂in_i``. For a scalar graph that is a
single call with ``gy = 1`` and gives the local derivative exactly (the same floating
point operations backward did with the real upstream gradient). Large tensors are not
expanded: the kernel is probed with ``gy = ones`` (column sums of J) and with a random
``gy`` to tell an element-wise (diagonal) Jacobian from a general one.

Probing calls ``backward`` on the live kernels, which also assigns their parameter
gradients; ``program.grad`` is saved and restored around every probe, so after an
explanation the program is exactly as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from engine.core import chunked
from engine.core.program import Program
from engine.core.stats import TensorView, tensor_view
from engine.errors import GradscapeError

MAX_JACOBIAN_ROWS = 256  # outputs probed one by one (one backward call each)
MAX_JACOBIAN_NUMBERS = 65_536
MAX_PATHS = 64


class ExplainError(GradscapeError):
    """The requested gradient cannot be explained (no gradient flows there, too big, …)."""


@dataclass(frozen=True)
class EdgeExplanation:
    """dL/d(src) on one edge src → dst.port as upstream gradient × local derivative.

    local_kind is "scalar" (all three are single numbers), "elementwise" (local has the
    input's shape and product = upstream ⊙ local), "jacobian" (local is the full
    (dst outputs × input numbers) matrix and product = Jᵀ·upstream) or "summed" (too big
    to expand: local is Σ_o ∂out_o/∂in, product is the recomputed Jᵀ·upstream).
    """

    edge_index: int
    edge_key: str
    src: str
    dst: str
    port: str
    op: str
    upstream: TensorView  # dL/d(dst output), the dst node's gradient
    local: TensorView  # ∂(dst output)/∂(this input)
    local_kind: str
    product: TensorView  # upstream combined with local
    edge_grad: TensorView  # what backward stored on the edge
    error: float  # max |product − edge_grad|
    rule: str  # the op's derivative rule for this input, e.g. "∂y/∂x = 2x" ("" if unknown)
    formula: str


@dataclass(frozen=True)
class EdgeShare:
    """The gradient one out-edge of a node carries back into it."""

    edge_index: int
    edge_key: str
    dst: str
    port: str
    grad: TensorView


@dataclass(frozen=True)
class NodeExplanation:
    """A node's gradient as the sum of what its out-edges carry back (fan-out)."""

    node: str
    shares: tuple[EdgeShare, ...]  # in the order backward added them
    total: TensorView  # the sum of the shares
    node_grad: TensorView  # program.node_grad(node)
    error: float
    formula: str


@dataclass(frozen=True)
class PathFactor:
    """One local derivative ∂dst/∂src on a path (a number or a Jacobian)."""

    edge_index: int
    dst: str
    src: str
    label: str  # e.g. "∂h/∂g"
    jacobian: TensorView  # shape (dst numbers, src numbers)
    value: float | None  # the number when the Jacobian is 1×1
    name: str = ""  # what the factor is, in the graph's names: "2f", "c"; the op for a constant


@dataclass(frozen=True)
class PathTerm:
    """One path from the parameter to a loss and the product of its local derivatives."""

    nodes: tuple[str, ...]  # parameter first, loss last
    factors: tuple[PathFactor, ...]  # from the loss back to the parameter
    product: float
    formula: str


@dataclass(frozen=True)
class ParameterPathExplanation:
    """∂L/∂θ for a scalar parameter node as a sum over paths of chain-rule products."""

    node: str
    paths: tuple[PathTerm, ...]
    total: float  # Σ of the path products
    param_grad: float  # program's gradient of the parameter
    error: float  # |total − param_grad|
    truncated: bool  # more than MAX_PATHS paths: only the first were listed (total is nan)
    formula: str
    fan_out: str = ""  # where the paths split and join: "∂g/∂f = 2f + b = …" ("" if one path)


# -- public API -------------------------------------------------------------------------

def explain_edge(program: Program, edge_index: int, digits: int = 6) -> EdgeExplanation:
    """Explain the gradient on edge `edge_index` as upstream × local derivative."""
    p = program
    if not 0 <= edge_index < len(p.edges):
        raise ExplainError(f"There is no edge number {edge_index}.")
    edge = p.edges[edge_index]
    g_edge = p.edge_grads[edge_index]
    i = p.index[edge.dst]
    up = p.node_grads[i]
    if g_edge is None or up is None:
        raise ExplainError(
            f"No gradient flows along {edge.key}: run forward and backward first, or the "
            f"wire does not lead from a learnable node to the loss.")
    j = p.input_ports[i].index(edge.dst_port)
    x_in = p.values[p.srcs[i][j]]
    in_shape = np.shape(x_in)
    out_shape = np.shape(p.values[i])
    in_size, out_size = int(np.prod(in_shape)), int(np.prod(out_shape))
    up = np.asarray(up)

    if out_size <= MAX_JACOBIAN_ROWS and out_size * in_size <= MAX_JACOBIAN_NUMBERS:
        jac = local_jacobian(p, i, j)
        if out_size == 1 and in_size == 1:
            kind = "scalar"
            local = jac.reshape(in_shape)
            product = up.reshape(()) * local
        elif out_size == in_size and _is_diagonal(jac):
            kind = "elementwise"
            local = np.diagonal(jac).reshape(in_shape)
            product = up.reshape(in_shape) * local
        else:
            kind = "jacobian"
            local = jac
            product = (up.reshape(-1) @ jac).reshape(in_shape)
    else:
        ones = _probe(p, i, j, np.ones(out_shape, dtype=p.dtype))
        rnd = np.random.default_rng(0).standard_normal(out_shape).astype(p.dtype)
        local = ones.reshape(in_shape)
        if in_shape == out_shape and _close(_probe(p, i, j, rnd), rnd * local, p.dtype):
            kind = "elementwise"
            product = up * local
        else:
            kind = "summed"
            product = _probe(p, i, j, up).reshape(in_shape)
    g_arr = np.asarray(g_edge)
    err = float(np.max(np.abs(product.reshape(g_arr.shape) - g_arr))) if g_arr.size else 0.0
    rule = _rule(op_formula(p, i), edge.dst_port)
    rule = f"{p.op_ids[i]}: {rule}" if rule else ""
    fan_out = sum(1 for e in p.edges if e.src == edge.src) > 1
    views = [tensor_view(a) for a in (up, local, product, g_arr)]
    formula = _edge_formula(p, edge.src, edge.dst, kind, rule, views, fan_out, digits)
    return EdgeExplanation(edge_index, edge.key, edge.src, edge.dst, edge.dst_port,
                           p.op_ids[i], views[0], views[1], kind, views[2], views[3], err,
                           rule, formula)


def explain_node(program: Program, node_id: str, digits: int = 6) -> NodeExplanation:
    """Explain a node's gradient as the sum of the gradients on its out-edges.

    The shares are added in the order backward added them (consumers from last to first
    in execution order), so the total equals ``program.node_grad(node_id)`` exactly.
    """
    p = program
    if node_id not in p.index:
        raise ExplainError(f"There is no node '{node_id}'.")
    s = p.index[node_id]
    grad = p.node_grads[s]
    if grad is None:
        raise ExplainError(f"Node '{node_id}' has no gradient: run forward and backward "
                           "first, or it does not lead from a learnable node to the loss.")
    shares: list[EdgeShare] = []
    total = None
    for i in range(len(p.order) - 1, -1, -1):
        for src, e, port in zip(p.srcs[i], p.src_edges[i], p.input_ports[i]):
            g = p.edge_grads[e]
            if src != s or g is None:
                continue
            shares.append(EdgeShare(e, p.edges[e].key, p.order[i], port, tensor_view(g)))
            total = g if total is None else total + g
    total_arr = np.asarray(total)
    grad = np.asarray(grad)
    err = float(np.max(np.abs(total_arr - grad))) if grad.size else 0.0
    tv, gv = tensor_view(total_arr), tensor_view(grad)
    if all(sh.grad.scalar is not None for sh in shares):
        terms = [_num(sh.grad.scalar, digits) for sh in shares]  # type: ignore[arg-type]
        body = terms[0] + "".join(
            (" − " + t[1:]) if t.startswith("−") else (" + " + t) for t in terms[1:])
        formula = f"∂L/∂{node_id} = {body} = {_num(tv.scalar, digits)}"  # type: ignore
        if len(shares) == 1:
            formula = f"∂L/∂{node_id} = {body} (one out-edge)"
    else:
        formula = (f"∂L/∂{node_id} = Σ of {len(shares)} edge gradients, each "
                   f"{_shape_text(gv.shape)}: ‖·‖₂ = {_num(tv.summary.l2, digits)}")
    return NodeExplanation(node_id, tuple(shares), tv, gv, err, formula)


def explain_parameter_path(program: Program, param_node: str,
                           digits: int = 6) -> ParameterPathExplanation:
    """∂L/∂θ of a scalar parameter node as Σ over paths of Π local derivatives.

    Each path runs from the parameter to a loss along edges that carry a gradient; each
    factor is the local Jacobian of one node (a number in a scalar graph). With one path
    the formula reads ``∂L/∂a = ∂L/∂h · ∂h/∂g · ∂g/∂f · ∂f/∂a = … = …``.
    """
    p = program
    if param_node not in p.index:
        raise ExplainError(f"There is no node '{param_node}'.")
    s = p.index[param_node]
    entries = [e for e in p.entries if e.node == param_node]
    if not entries or p.values[s] is None or np.size(p.values[s]) != 1:
        raise ExplainError(f"'{param_node}' is not a scalar parameter; pick a Parameter "
                           "node holding one number.")
    if p.node_grads[s] is None:
        raise ExplainError(f"'{param_node}' has no gradient yet: run forward and backward.")
    outs: dict[int, list[tuple[int, int, int]]] = {}
    for i in range(len(p.order)):
        for j, (src, e) in enumerate(zip(p.srcs[i], p.src_edges[i])):
            if p.edge_grads[e] is not None:
                outs.setdefault(src, []).append((e, i, j))
    paths, truncated = _enumerate_paths(p, s, outs)
    single_loss = len(p.loss_nodes) == 1
    name = {k: ("L" if single_loss and k in p.loss_nodes else p.order[k])
            for k in range(len(p.order))}
    cache: dict[tuple[int, int], np.ndarray] = {}
    terms: list[PathTerm] = []
    for path in paths:  # path: list of (edge, dst, port) from the parameter outwards
        factors: list[PathFactor] = []
        chain = np.ones((1, 1), dtype=p.dtype)
        prod_scalar = np.asarray(1.0, dtype=p.dtype)
        all_scalar = True
        for e, i, j in reversed(path):
            if (i, j) not in cache:
                _check_size(p, i, j)
                cache[(i, j)] = local_jacobian(p, i, j)
            jac = cache[(i, j)]
            src = p.order[p.srcs[i][j]]
            value = float(jac.reshape(())) if jac.size == 1 else None
            all_scalar = all_scalar and value is not None
            if value is not None:
                prod_scalar = prod_scalar * jac.reshape(())
            chain = chain @ jac
            factors.append(PathFactor(e, p.order[i], src, f"∂{name[i]}/∂{name[p.srcs[i][j]]}",
                                      tensor_view(jac), value, _factor_name(p, i, j)))
        product = float(prod_scalar) if all_scalar else float(chain.reshape(()))
        nodes = (param_node,) + tuple(p.order[i] for _, i, _ in path)
        labels = " · ".join(f.label for f in factors)
        if all_scalar:
            nums = " · ".join(f"{_num(f.value, digits)} [{f.name}]"  # type: ignore[arg-type]
                              for f in factors)
            text = f"{labels} = {nums} = {_num(product, digits)}"
        else:
            text = f"{labels} (Jacobian product) = {_num(product, digits)}"
        terms.append(PathTerm(nodes, tuple(factors), product, text))
    grad = float(np.asarray(p.node_grads[s]).reshape(()))
    total = float("nan") if truncated else _sum_in_dtype([t.product for t in terms], p.dtype)
    err = abs(total - grad) if not truncated else float("nan")
    head = f"∂L/∂{param_node}"
    if len(terms) == 1:
        formula = f"{head} = {terms[0].formula}"
    else:
        lines = [f"path {k + 1} ({' → '.join(t.nodes)}): {t.formula}"
                 for k, t in enumerate(terms)]
        sums = " + ".join(_num(t.product, digits) for t in terms).replace("+ −", "− ")
        more = f" (only the first {len(terms)} paths)" if truncated else ""
        lines.append(f"{head} = Σ over {len(terms)} paths{more} = {sums} = "
                     f"{_num(total if not truncated else grad, digits)}")
        formula = "\n".join(lines)
    fan_out = _fan_out_text(terms, name, p, digits) if len(terms) > 1 else ""
    if fan_out:
        formula += "\n" + fan_out
    return ParameterPathExplanation(param_node, tuple(terms), total, grad, err, truncated,
                                    formula, fan_out)


def _factor_name(p: Program, node: int, port: int) -> str:
    """A local derivative in the graph's names ("2f", "c", "2(h − y)/N"); the op's name when
    the derivative is a constant (Add's 1), "J" when the op documents no rule."""
    rule = _rule(op_formula(p, node), p.input_ports[node][port])
    if not rule:
        return p.op_ids[node]
    expr = rule_in_node_names(rule.split(" = ", 1)[1].strip(), p, node)
    return p.op_ids[node] if _is_number(expr) else expr


def _is_number(text: str) -> bool:
    try:
        float(text.replace("−", "-"))
    except ValueError:
        return False
    return True


def _fan_out_text(terms: list[PathTerm], name: dict[int, str], p: Program,
                  digits: int) -> str:
    """The combined local derivative where the paths split and join again.

    For the seed chain (f feeds both Square and Multiply, which Add joins into g) this is
    "∂g/∂f = 2f + b = … = …": the sum over the sub-paths between the split and the join.
    """
    node_lists = [t.nodes for t in terms]
    first = node_lists[0]
    split = 0  # last node shared by every path before they part
    while all(len(n) > split + 1 and n[split + 1] == first[split + 1] for n in node_lists):
        split += 1
    if not all(len(n) > split + 1 for n in node_lists):
        return ""
    later = [set(n[split + 1:]) for n in node_lists]
    join = next((v for v in first[split + 1:] if all(v in s for s in later)), None)
    if join is None:
        return ""
    src, dst = first[split], join
    distinct: dict[str, float] = {}  # paths past the join repeat a sub-path: keep it once
    for t in terms:  # the factors run from the loss back; pick those between split and join
        k0, k1 = t.nodes.index(src), t.nodes.index(dst)
        segment = t.factors[len(t.factors) - k1: len(t.factors) - k0]
        if any(f.value is None for f in segment):
            return ""
        words = [f.name for f in reversed(segment) if f.name not in (
            p.op_ids[p.index[f.dst]],)] or ["1"]
        distinct.setdefault("·".join(words), float(np.prod([f.value for f in segment])))
    sym = " + ".join(distinct)
    nums = " + ".join(_num(v, digits) for v in distinct.values()).replace("+ −", "− ")
    total = _sum_in_dtype(list(distinct.values()), p.dtype)
    d_dst = name[p.index[dst]]
    return (f"{src} fans out, and its paths join at {dst}: combined local derivative "
            f"∂{d_dst}/∂{src} = {sym} = {nums} = {_num(total, digits)}")


def local_jacobian(program: Program, node: int, port: int) -> np.ndarray:
    """J[o, i] = ∂out_o/∂in_i of node number `node` for its `port`-th connected input.

    One backward call per output number with a one-hot upstream gradient, on the state
    of the last forward. Shape (output numbers, input numbers).
    """
    p = program
    _check_size(p, node, port)
    out_shape = np.shape(p.values[node])
    n_out = int(np.prod(out_shape))
    rows = []
    with _grads_kept(p):
        for o in range(n_out):
            gy = np.zeros(n_out, dtype=p.dtype)
            gy[o] = 1.0
            rows.append(_backward_port(p, node, port, gy.reshape(out_shape)).reshape(-1))
    return np.stack(rows).astype(p.dtype, copy=False)


# -- helpers ----------------------------------------------------------------------------

@contextmanager
def _grads_kept(p: Program) -> Iterator[None]:
    saved = p.grad.copy()
    try:
        yield
    finally:
        np.copyto(p.grad, saved)


def _backward_port(p: Program, node: int, port: int, gy: np.ndarray) -> np.ndarray:
    if p.values[node] is None:
        raise ExplainError(f"Node '{p.order[node]}' has not run forward yet.")
    with chunked.blas_on_one_thread(p.holds_blas):  # the products as backward() ran them
        g = p.kernels[node].backward(gy)[port]
    if g is None:
        raise ExplainError(f"Node '{p.order[node]}' computes no gradient for that input.")
    src_shape = np.shape(p.values[p.srcs[node][port]])
    return np.asarray(g, dtype=p.dtype).reshape(src_shape)


def _probe(p: Program, node: int, port: int, gy: np.ndarray) -> np.ndarray:
    with _grads_kept(p):
        return _backward_port(p, node, port, gy)


def _check_size(p: Program, node: int, port: int) -> None:
    n_out = int(np.size(p.values[node]))
    n_in = int(np.size(p.values[p.srcs[node][port]]))
    if n_out > MAX_JACOBIAN_ROWS or n_out * n_in > MAX_JACOBIAN_NUMBERS:
        raise ExplainError(
            f"Node '{p.order[node]}' has {n_out} outputs; its Jacobian is too large to list "
            "(use a smaller batch, or explain single edges).")


def _is_diagonal(jac: np.ndarray) -> bool:
    off = jac - np.diag(np.diagonal(jac))
    return not np.any(off)


def _close(a: np.ndarray, b: np.ndarray, dtype: np.dtype) -> bool:
    tol = 1e-10 if np.dtype(dtype) == np.float64 else 1e-4
    return bool(np.allclose(a, b, rtol=tol, atol=tol * float(np.max(np.abs(b)) or 1.0)))


def _enumerate_paths(p: Program, start: int, outs: dict[int, list[tuple[int, int, int]]]
                     ) -> tuple[list[list[tuple[int, int, int]]], bool]:
    """Every path (list of (edge, dst, port)) from `start` to a loss node, depth first."""
    paths: list[list[tuple[int, int, int]]] = []
    stack: list[tuple[int, list[tuple[int, int, int]]]] = [(start, [])]
    losses = set(p.loss_nodes)
    while stack:
        node, path = stack.pop()
        if node in losses and path:
            paths.append(path)
            if len(paths) > MAX_PATHS:
                return paths[:MAX_PATHS], True
            continue
        for step in reversed(outs.get(node, [])):
            stack.append((step[1], path + [step]))
    return paths, False


def _sum_in_dtype(values: list[float], dtype: np.dtype) -> float:
    total = np.asarray(0.0, dtype=dtype)
    for v in values:
        total = total + np.asarray(v, dtype=dtype)
    return float(total)


_RULE = re.compile(r"∂([A-Za-z])/∂([A-Za-z])ᵢ?\s*=\s*([^,;]+)")
_LETTER = re.compile(r"(?<![A-Za-z])([A-Za-z])(?![A-Za-z])")


def op_formula(p: Program, node: int) -> str:
    """The formula of node number `node` as its params make it (e.g. Σ for reduction sum)."""
    return p.ops[node].formula_for(p.params[p.order[node]])


def _port_letter(port: str) -> str:
    """The letter an op's formula uses for an input port: a, b, x for "in", p, t, …"""
    return "x" if port == "in" else port[:1]


def _rule(op_formula: str, port: str) -> str:
    """The op's documented local derivative for `port`, e.g. "∂y/∂x = 2x", or ""."""
    for m in _RULE.finditer(op_formula):
        expr = m.group(3).strip()
        if m.group(2) in (port, _port_letter(port)) and "∂" not in expr:
            return f"∂{m.group(1)}/∂{m.group(2)} = {expr}"
    return ""


def rule_in_node_names(expr: str, p: Program, node: int) -> str:
    """Rewrite an op rule's letters in the graph's node names (y → the node, a → its
    a-input, …); other letters (N, p of Power, …) stay."""
    names = {"y": p.order[node]}
    for port, src in zip(p.input_ports[node], p.srcs[node]):
        names[_port_letter(port)] = p.order[src]
    return _LETTER.sub(lambda m: names.get(m.group(1), m.group(1)), expr)


def _num(v: float, digits: int) -> str:
    text = f"{v:.{digits}g}"
    return text.replace("-", "−") if text.startswith("-") else text


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape) or "scalar"


def _edge_formula(p: Program, src: str, dst: str, kind: str, rule: str,
                  views: list[TensorView], fan_out: bool, digits: int) -> str:
    up, local, product, _ = views
    d_name = "L" if p.index[dst] in p.loss_nodes and len(p.loss_nodes) == 1 else dst
    lhs = f"∂L/∂{src}" + (f" (via {dst})" if fan_out else "")
    sym = rule_in_node_names(rule.split(" = ", 1)[1].strip(), p, p.index[dst]) if rule else ""
    if kind == "scalar" and d_name == "L":  # the loss itself: ∂L/∂L = 1
        parts = [lhs] + ([sym] if sym else []) + [_num(product.scalar, digits)]  # type: ignore
        return " = ".join(parts)
    if d_name == "L":  # the loss's own derivative: no upstream factor to multiply by
        rule_text = f" = {sym}" if sym else ""
        return (f"{lhs}{rule_text} (the loss's own derivative): "
                f"{_shape_text(product.shape)}, mean {_num(product.summary.mean, digits)}, "
                f"‖·‖₂ {_num(product.summary.l2, digits)}")
    chain = f"∂L/∂{d_name} · ∂{d_name}/∂{src}"
    if kind == "scalar":
        u, loc, pr = (_num(v.scalar, digits) for v in (up, local, product))  # type: ignore
        parts = [lhs, chain]
        if sym and sym != loc:
            parts.append(f"{u} · ({sym})")
        parts += [f"{u} · {loc}", pr]
        return " = ".join(parts)
    how = {"elementwise": f"element-wise ∂L/∂{d_name} ⊙ ∂{d_name}/∂{src}",
           "jacobian": f"(∂{d_name}/∂{src})ᵀ · ∂L/∂{d_name}, Jacobian "
                       f"{_shape_text(local.shape)}",
           "summed": f"(∂{d_name}/∂{src})ᵀ · ∂L/∂{d_name}"}[kind]
    rule_text = f" [{rule}]" if rule else ""
    return (f"{lhs} = {how}{rule_text}: {_shape_text(product.shape)}, "
            f"mean {_num(product.summary.mean, digits)}, ‖·‖₂ {_num(product.summary.l2, digits)}")
