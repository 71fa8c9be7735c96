"""Small facts about a graph for the status bar and the training dock."""

from __future__ import annotations

from collections.abc import Iterable

from engine.core import registry
from engine.core.compiler import Analysis
from engine.core.spec import NodeSpec
from engine.errors import ShapeError
from engine.ops.base import numel


def node_parameter_count(node: NodeSpec, analysis: Analysis) -> int:
    """Learnable numbers of one node, or 0 while its input shapes are unknown."""
    op = registry.get(node.op)
    if op is None or not op.learnable or node.id not in analysis.shapes:
        return 0
    ins = {}
    for port, edge in analysis.inputs.get(node.id, {}).items():
        if edge.src not in analysis.shapes:
            return 0
        ins[port] = analysis.shapes[edge.src]
    try:
        shapes = op.param_shapes(analysis.params[node.id], ins)
    except (ShapeError, ValueError, KeyError, TypeError):
        return 0
    return sum(numel(s) for s in shapes.values())


def parameter_count(nodes: Iterable[NodeSpec], analysis: Analysis) -> int:
    """Learnable numbers in the whole graph (nodes with unknown shapes count 0)."""
    return sum(node_parameter_count(n, analysis) for n in nodes)
