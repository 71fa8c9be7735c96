"""Backpropagation one stage at a time: forward, backward, then the optimizer update.

`preview_step(program, trainer)` runs the forward and backward pass on the batch the
trainer's next `step()` will use, without updating anything, and returns the value of
every edge in topological order and the gradient of every edge in reverse topological
order. It leaves the program as the real step will find it: BatchNorm running statistics
and Dropout random streams are restored, and the batch is not consumed, so the following
`trainer.step()` trains on the same batch with the same masks (the batch order stays the
one of normal training).

`snapshot(program)` before and `describe_update(program, trainer, before)` after that
`trainer.step()` give each parameter's change: old value, learning rate, gradient, new
value and Δθ = θ_new − θ_old (exactly, computed from the two copies).

For teaching, every backward stage also says how its gradient was made ("upstream ×
local = result", from `engine.lab.chain_rule.explain_edge`, for small wires), and a small
Dense layer's weight gradient is written out as ∂L/∂W = δᵀx with its numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.core.program import Program
from engine.core.spec import EdgeSpec
from engine.core.stats import TensorView, tensor_view
from engine.errors import DataError
from engine.lab.chain_rule import ExplainError, explain_edge
from engine.training.trainer import Trainer

Tensor = TensorView  # the name the designer's backprop views use


def tensor(a: np.ndarray | None) -> Tensor | None:
    """`TensorView` of an array (values as exact Python floats when small), None for None."""
    return None if a is None else tensor_view(a)


@dataclass(frozen=True)
class EdgeStage:
    """One edge in one pass: its index in `program.edges`, the edge and what it carries."""

    index: int
    edge: EdgeSpec
    data: Tensor | None  # forward value or gradient (None: no gradient flows here)
    why: str = ""  # backward: "upstream × local = result" for small wires, else ""


@dataclass(frozen=True)
class DenseGrad:
    """∂L/∂W = δᵀx of a small Dense layer: δ = ∂L/∂y (batch × units), x its input."""

    node: str
    delta: Tensor  # (batch, units)
    x: Tensor  # (batch, features)
    grad_w: Tensor  # (units, features) = δᵀ·x, what backward stored


@dataclass(frozen=True)
class ParamGrad:
    """A learnable tensor with its gradient after the preview's backward pass."""

    key: str
    node: str
    name: str
    value: Tensor
    grad: Tensor


@dataclass
class StepPreview:
    """What `preview_step` saw: the batch, the loss, both passes and the parameter grads."""

    program_id: int
    step: int  # the number the real step will have (trainer.step_count + 1)
    epoch: int
    batch: np.ndarray  # indices into the training set
    loss: float
    forward: list[EdgeStage] = field(default_factory=list)  # topological order
    backward: list[EdgeStage] = field(default_factory=list)  # reverse topological order
    params: list[ParamGrad] = field(default_factory=list)
    dense: list[DenseGrad] = field(default_factory=list)  # small Dense layers: δᵀx


@dataclass(frozen=True)
class ParamUpdate:
    """θ ← θ + Δθ for one learnable tensor (for plain SGD Δθ = −α·∂L/∂θ).

    `old`, `grad`, `new` and `delta` are exact for scalars (`.scalar`); for tensors they
    carry summaries (and values when small). `delta_norm` is ‖θ_new − θ_old‖₂.
    """

    key: str
    node: str
    name: str
    shape: tuple[int, ...]
    old: Tensor
    grad: Tensor
    new: Tensor
    delta: Tensor
    delta_norm: float
    grad_norm: float


@dataclass
class UpdateResult:
    """The update of one optimizer step: learning rate, optimizer and every parameter."""

    program_id: int
    step: int
    loss: float
    lr: float
    optimizer: str
    plain_sgd: bool  # θ_new = θ_old − α·g holds (up to rounding)
    params: list[ParamUpdate] = field(default_factory=list)


def next_batch(trainer: Trainer) -> np.ndarray:
    """The index array the trainer's next `step()` uses (starts an epoch if it must, as
    `step()` would, but does not consume the batch)."""
    return trainer.peek_next_batch()


def _random_states(program: Program) -> list[tuple[object, dict]]:
    out = []
    for k in program.kernels:
        rng = getattr(k, "rng", None)
        if isinstance(rng, np.random.Generator):
            out.append((rng, rng.bit_generator.state))
    return out


def preview_step(program: Program, trainer: Trainer) -> StepPreview:
    """Forward and backward on the trainer's next batch; nothing is updated.

    Returns:
        A StepPreview with every edge's value in `program.topological_edges()` order and
        every edge's gradient in the reverse of that order.
    """
    p = program
    idx = next_batch(trainer)
    buffers = {k: v.copy() for k, v in p.buffers.items()}
    randoms = _random_states(p)
    p.set_training(True)
    full = len(idx) == len(trainer.x)
    xb = trainer.x if full else trainer.x[idx]
    yb = trainer.y if full else trainer.y[idx]
    try:
        loss = p.forward(xb, yb)
        order = p.topological_edges()
        forward = [_stage(p, k, p.edge_value(k)) for k in order]
        params = []
        if math.isfinite(loss):
            p.backward()
            params = [ParamGrad(e.key, e.node, e.name, tensor(p.param_value(e)),
                                tensor(p.param_grad(e))) for e in p.entries]
        backward = [_stage(p, k, p.edge_grads[k] if math.isfinite(loss) else None,
                           _why(p, k) if math.isfinite(loss) else "")
                    for k in reversed(order)]
        dense = dense_grads(p) if math.isfinite(loss) else []
    finally:
        for key, saved in buffers.items():  # the real step updates the running stats
            p.buffers[key][...] = saved
        for rng, state in randoms:  # ... and draws the same Dropout masks
            rng.bit_generator.state = state
    return StepPreview(id(p), trainer.step_count + 1, trainer.epoch, np.array(idx),
                       float(loss), forward, backward, params, dense)


def _stage(p: Program, k: int, a: np.ndarray | None, why: str = "") -> EdgeStage:
    return EdgeStage(k, p.edges[k], tensor(a), why)


SMALL_WIRE = 16  # wires up to this many numbers get an "upstream × local" sentence
SMALL_DENSE = 16  # Dense layers whose δ, x and W each hold at most this many numbers


def _why(p: Program, k: int) -> str:
    """How backward made edge k's gradient, for wires of at most SMALL_WIRE numbers."""
    grad = p.edge_grads[k]
    dst = p.index[p.edges[k].dst]
    if grad is None or np.size(grad) > SMALL_WIRE or np.size(p.values[dst]) > SMALL_WIRE:
        return ""
    try:
        ex = explain_edge(p, k)
    except ExplainError:
        return ""
    if ex.local_kind == "scalar":
        u, loc, pr = (_plain(v.scalar) for v in (ex.upstream, ex.local, ex.product))
        if p.index[ex.dst] in p.loss_nodes:
            return f"local {loc} (the loss's own derivative) = {pr}"
        return f"upstream {u} × local {loc} = {pr}"
    return ex.formula


def dense_grads(p: Program) -> list[DenseGrad]:
    """δᵀx for every Dense layer small enough to write out (after forward and backward)."""
    out = []
    for i, op_id in enumerate(p.op_ids):
        if op_id != "Dense" or p.node_grads[i] is None or not p.srcs[i]:
            continue
        delta, x = np.asarray(p.node_grads[i]), np.asarray(p.values[p.srcs[i][0]])
        weight = next((e for e in p.entries if e.node == p.order[i] and e.name == "weight"),
                      None)
        if weight is None or max(delta.size, x.size, weight.size) > SMALL_DENSE:
            continue
        out.append(DenseGrad(p.order[i], tensor(delta), tensor(x), tensor(p.param_grad(weight))))
    return out


def _plain(v: float | None) -> str:
    return "—" if v is None else f"{v:.6g}".replace("-", "−")


def snapshot(program: Program) -> tuple[int, np.ndarray]:
    """A copy of θ to compare with after the step (tagged with the program's id)."""
    return id(program), program.theta.copy()


def describe_update(program: Program, trainer: Trainer, before: tuple[int, np.ndarray],
                    loss: float = float("nan")) -> UpdateResult:
    """Each parameter's change between `before` (from `snapshot`) and now.

    Call right after `trainer.step()`: `program.grad` then holds the gradient that step
    used (with regularization and clipping) and `trainer.optimizer.lr` its learning rate.
    """
    p = program
    pid, old_theta = before
    if pid != id(p) or old_theta.shape != p.theta.shape:
        raise DataError("The graph was recompiled between the two snapshots.")
    opt = trainer.optimizer
    hyper = getattr(opt, "hyper", {})
    plain = (opt.name == "sgd" and not hyper.get("momentum") and not hyper.get("weight_decay"))
    result = UpdateResult(id(p), trainer.step_count, loss, float(opt.lr), opt.name, plain)
    for e in p.entries:
        old = e.view(old_theta)
        new = p.param_value(e)
        grad = p.param_grad(e)
        delta = new - old
        result.params.append(ParamUpdate(
            e.key, e.node, e.name, tuple(e.shape), tensor(old), tensor(grad), tensor(new),
            tensor(delta), float(np.linalg.norm(delta.astype(np.float64).ravel())),
            float(np.linalg.norm(grad.astype(np.float64).ravel()))))
    return result
