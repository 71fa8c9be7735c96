"""What the Chain Rule panel shows about one wire or node, worked out in the training process.

`explain_target(target)` is a job for `session.run_on_worker`: it replays the last step on a
private copy of the program (`designer.lab.replay`), runs `engine.lab.chain_rule` on it and
sends back only the explanation, a few kilobytes. Sending the replayed program itself (every
value and gradient of the step) cost the window 0.25–0.9 s per refresh on a 100,000-unit
layer: unpickling ~90 MB, summarising its tensors and probing local derivatives on the GUI
thread. No Qt here: this module runs in the training process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from designer.lab.replay import replay_last_step
from engine.core.program import Program
from engine.lab.chain_rule import (
    EdgeExplanation,
    ExplainError,
    NodeExplanation,
    ParameterPathExplanation,
    explain_edge,
    explain_node,
    explain_parameter_path,
    op_formula,
    rule_in_node_names,
)

# A batch up to this many numbers travels with the answer (the panel's hand-calculation check).
MAX_BATCH_NUMBERS = 4096


@dataclass
class EdgeBlock:
    """One wire's explanation and what the panel needs of the graph around it."""

    ex: EdgeExplanation
    into_loss: bool  # the wire feeds the graph's only loss: its gradient is ∂L/∂src itself
    fan_out: bool  # its source feeds more than one wire
    rule: str  # the consumer's rule in this graph's names, "∂f/∂a = x" ("" if unknown)


@dataclass
class NodeAnswer:
    """A node's gradient: the loss itself, a fan-out sum, or its one wire; its parameters."""

    is_loss: bool
    ex: NodeExplanation | None = None
    single: EdgeBlock | None = None  # the wire, when the node feeds exactly one
    path: ParameterPathExplanation | None = None  # a scalar Parameter's whole chain
    params: list[tuple[str, tuple[int, ...], float]] = field(default_factory=list)
    formula: str = ""  # the op's formula, for its parameters' note


@dataclass
class ChainRuleAnswer:
    """The explanation of `target` on the replayed step, with where its numbers come from."""

    target: tuple[str, object]  # ("edge", EdgeSpec) or ("node", node id)
    step: int  # optimizer steps the trainer had taken (0: before any step)
    after_step: bool  # True: the last step's weights and batch; False: the first batch
    batch: int  # samples in the batch
    dtype: str
    x: np.ndarray | None  # the batch, when it is small (MAX_BATCH_NUMBERS)
    y: np.ndarray | None
    edge: EdgeBlock | None = None
    node: NodeAnswer | None = None


def explain_target(target: tuple[str, object]) -> Callable[[Program, object], ChainRuleAnswer]:
    """A `run_on_worker` job explaining `target` on a replay of the last training step."""
    def job(program: Program | None, trainer) -> ChainRuleAnswer:
        replay = replay_last_step(program, trainer)
        p = replay.program
        small = replay.x.size + replay.y.size <= MAX_BATCH_NUMBERS
        answer = ChainRuleAnswer(target, replay.step, replay.after_step, len(replay.x),
                                 np.dtype(p.dtype).name, replay.x if small else None,
                                 replay.y if small else None)
        kind, what = target
        if kind == "edge":
            if what not in p.edges:
                raise ExplainError("This wire is not in the trained graph yet (train a step).")
            answer.edge = edge_block(p, p.edges.index(what))
        else:
            answer.node = node_answer(p, what)
        return answer

    return job


def edge_block(p: Program, edge_index: int) -> EdgeBlock:
    """`explain_edge` with the graph facts the panel's equation needs."""
    ex = explain_edge(p, edge_index)
    into_loss = len(p.loss_nodes) == 1 and p.index[ex.dst] in p.loss_nodes
    fan_out = sum(1 for e in p.edges if e.src == ex.src) > 1
    rule = ex.rule.split(": ", 1)[1] if ": " in ex.rule else ex.rule
    if rule:  # the op's rule in this graph's names: ∂y/∂b = a  →  ∂f/∂a = x
        _, rhs = rule.split(" = ", 1)
        rule = f"∂{ex.dst}/∂{ex.src} = {rule_in_node_names(rhs.strip(), p, p.index[ex.dst])}"
    return EdgeBlock(ex, into_loss, fan_out, rule)


def node_answer(p: Program, node_id: str) -> NodeAnswer:
    """The loss, or `explain_node` with the one wire, the parameter path and the parameters."""
    if node_id not in p.index:
        raise ExplainError(f"'{node_id}' is not in the trained graph yet.")
    i = p.index[node_id]
    if i in p.loss_nodes:
        return NodeAnswer(is_loss=True)
    ex = explain_node(p, node_id)
    answer = NodeAnswer(is_loss=False, ex=ex)
    entries = [e for e in p.entries if e.node == node_id]
    if len(entries) == 1 and entries[0].size == 1:
        answer.path = explain_parameter_path(p, node_id)
    if len(ex.shares) == 1:
        answer.single = edge_block(p, ex.shares[0].edge_index)
    if entries and answer.path is None:
        answer.params = [(e.key, tuple(e.shape), float((p.param_grad(e) ** 2).sum() ** 0.5))
                         for e in entries]
        answer.formula = op_formula(p, i)
    return answer
