"""The Chain Rule panel's answer is worked out in the training process and is small: the
window no longer unpickles and probes the replayed program (0.25–0.9 s a refresh on a
100,000-unit layer)."""

import pickle

import pytest

from designer.lab.chain_rule_answer import explain_target
from designer.resources import resource_path
from engine.core.compiler import compile_graph
from engine.core.spec import load_graph
from engine.lab.chain_rule import ExplainError, explain_edge
from engine.training.trainer import TrainConfig, Trainer, load_data


def _trained(units: int):
    spec = load_graph(resource_path("examples", "spirals_classifier.json"))
    for node in spec.nodes:
        if node.id == "h1":
            node.params["units"] = units
    cfg = TrainConfig.from_block(spec.training)
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed, input_grads=True)
    data, val = load_data(cfg).split(float(cfg.validation_split), cfg.seed)
    trainer = Trainer(program, data, cfg, val)
    trainer.step()
    return program, trainer


def test_the_answer_for_a_wide_layer_is_kilobytes_and_matches_the_engine():
    program, trainer = _trained(20_000)
    edge = next(e for e in program.edges if e.src == "h1")
    answer = explain_target(("edge", edge))(program, trainer)
    size = len(pickle.dumps(answer))
    assert size < 50_000, size  # the replayed program itself pickles to ~18 MB here
    assert answer.step == 1 and answer.after_step and answer.target == ("edge", edge)
    assert answer.x is not None and len(answer.x) == answer.batch
    # the same numbers as the engine on the live program before its step moved the weights
    assert answer.edge.ex.edge_key == explain_edge(program, program.edges.index(edge)).edge_key
    assert answer.edge.ex.error <= 1e-6 * max(1.0, abs(answer.edge.ex.edge_grad.summary.max))


def test_node_answers_cover_the_loss_a_fan_out_and_the_parameters():
    program, trainer = _trained(8)
    loss = program.order[program.loss_nodes[0]]
    assert explain_target(("node", loss))(program, trainer).node.is_loss
    h1 = explain_target(("node", "h1"))(program, trainer).node
    assert not h1.is_loss and h1.single is not None and h1.path is None
    assert [key for key, _, _ in h1.params] == ["h1.weight", "h1.bias"]
    assert all(l2 > 0 for _, _, l2 in h1.params) and h1.formula
    with pytest.raises(ExplainError):
        explain_target(("node", "nowhere"))(program, trainer)
