"""Give a graph that only predicts (an imported ONNX model) a Target and a loss to train it.

An imported model says nothing about how it was trained, so the importer adds no loss;
the user picks one (the CLI's ``--loss``, the designer's Train → Add Loss…) and this
module wires it: the prediction port to the output node, the target port to a new Target
sized for the loss (one class index for cross-entropy, one value per output otherwise).
"""

from __future__ import annotations

from engine.core import registry
from engine.core.compiler import analyze
from engine.core.layout import X_SPACING, Y_SPACING
from engine.core.spec import EdgeSpec, GraphSpec, NodeSpec
from engine.errors import GradscapeError
from engine.ops.base import fmt_shape, numel

LOSSES = ("CrossEntropyLoss", "MSELoss", "MAELoss", "HuberLoss", "BCELoss")


def prediction_nodes(spec: GraphSpec) -> list[str]:
    """The nodes nothing reads (what the graph predicts), in file order."""
    read = {e.src for e in spec.edges}
    return [n.id for n in spec.nodes
            if n.id not in read and registry.get(n.op) is not None
            and registry.get(n.op).role is None and not registry.get(n.op).is_loss]


def has_loss(spec: GraphSpec) -> bool:
    return any((op := registry.get(n.op)) is not None and op.is_loss for n in spec.nodes)


def add_loss(spec: GraphSpec, loss: str = "CrossEntropyLoss",
             output: str | None = None) -> GraphSpec:
    """A copy of `spec` with `loss` comparing node `output` (default: the only prediction
    node) with a new Target.

    Raises:
        GradscapeError: a sentence naming the loss or node that does not fit.
    """
    if loss not in LOSSES:
        raise GradscapeError(f"'{loss}' is not a loss; choose one of {', '.join(LOSSES)}.")
    if output is None:
        heads = prediction_nodes(spec)
        if len(heads) != 1:
            raise GradscapeError(
                "The graph predicts with " + (", ".join(f"'{h}'" for h in heads) or "no node")
                + "; name the node the loss should judge.")
        output = heads[0]
    ids = {n.id for n in spec.nodes}
    if output not in ids:
        raise GradscapeError(f"The graph has no node '{output}' for the loss to judge.")
    op = registry.get(spec.node(output).op)
    if op is None or op.role is not None or op.is_loss:
        raise GradscapeError(f"'{output}' is a {spec.node(output).op} node; a loss judges "
                             "what the network computes, so pick one of its layers.")
    shape = analyze(spec, require_loss=False).shapes.get(output)
    if shape is None:
        raise GradscapeError(f"The shape of '{output}' is not known, so no loss can be sized "
                             "for it; fix the graph's problems first.")
    if loss == "CrossEntropyLoss":
        if len(shape) != 2 or shape[0] is not None:
            raise GradscapeError(
                f"Cross-entropy needs one score per class, shape (batch, classes), but "
                f"'{output}' gives {fmt_shape(shape)}; pick another loss or node.")
        features = 1
    else:
        features = numel(shape[1:] if shape and shape[0] is None else shape)
    target_id, loss_id = _free(ids, "target"), _free(ids | {"target"}, "loss")
    nodes = spec.nodes + (NodeSpec(target_id, "Target", {"features": features}),
                          NodeSpec(loss_id, loss, {}))
    edges = spec.edges + (EdgeSpec(output, "out", loss_id, "prediction"),
                          EdgeSpec(target_id, "out", loss_id, "target"))
    layout = dict(spec.layout)
    if output in layout:
        x, y = layout[output]
        layout[loss_id] = [x + X_SPACING, y]
        layout[target_id] = [x, y + Y_SPACING]
    return GraphSpec(nodes, edges, layout, dict(spec.training))


def _free(ids: set[str], base: str) -> str:
    name, k = base, 2
    while name in ids:
        name = f"{base}_{k}"
        k += 1
    return name
