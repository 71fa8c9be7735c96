"""Training end to end: accuracy targets, every optimizer and batch mode, divergence."""

import json
from pathlib import Path

import numpy as np
import pytest

from engine.core.compiler import compile_graph
from engine.core.spec import GraphSpec, load_graph
from engine.data import make_dataset
from engine.errors import DataError, GradscapeError, TrainingDiverged
from engine.training import trainer as trainer_module
from engine.training.trainer import TrainConfig, Trainer, load_data

EXAMPLES = Path(__file__).resolve().parents[1] / "resources" / "examples"


def trainer_for(name: str, **overrides) -> Trainer:
    spec = load_graph(EXAMPLES / name)
    cfg = TrainConfig.from_block(spec.training, **overrides)
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed)
    return Trainer(program, load_data(cfg), cfg)


def test_xor_reaches_98_percent():
    t = trainer_for("xor_mlp.json")
    reports = t.run()
    assert reports[-1].accuracy >= 0.98
    assert reports[-1].loss < reports[0].loss / 5


def test_spirals_reaches_98_percent():
    t = trainer_for("spirals_classifier.json", validation_split=0.0)
    reports = t.run()
    assert reports[-1].accuracy >= 0.98, reports[-1]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "rmsprop", "adam", "adamw"])
def test_each_optimizer_lowers_the_loss(optimizer):
    lr = {"sgd": 0.5, "momentum": 0.1}.get(optimizer, 0.01)
    t = trainer_for("xor_mlp.json", optimizer=optimizer, lr=lr, epochs=30)
    first = t.run_epoch().loss
    last = t.run(29)[-1].loss
    assert last < 0.8 * first


@pytest.mark.parametrize("batch_size, steps_per_epoch", [(0, 1), (1, 200), (16, 13)])
def test_each_batch_mode_lowers_the_loss(batch_size, steps_per_epoch):
    t = trainer_for("xor_mlp.json", batch_size=batch_size, epochs=40,
                    dataset_params={"samples": 200})
    first = t.run_epoch()
    assert t.step_count == steps_per_epoch
    last = t.run(39)[-1]
    assert last.loss < first.loss


def test_training_is_deterministic_for_a_seed():
    a = trainer_for("xor_mlp.json", epochs=5)
    b = trainer_for("xor_mlp.json", epochs=5)
    assert [r.loss for r in a.run()] == [r.loss for r in b.run()]
    c = trainer_for("xor_mlp.json", epochs=5, seed=1)
    assert [r.loss for r in c.run()] != [r.loss for r in a.run(5)]


def test_validation_split_reports_val_metrics():
    spec = load_graph(EXAMPLES / "spirals_classifier.json")
    cfg = TrainConfig.from_block(spec.training, epochs=3)
    data = make_dataset(cfg.dataset, seed=0, **cfg.dataset_params)
    train, val = data.split(0.25, seed=0)
    t = Trainer(compile_graph(spec), train, cfg, val)
    report = t.run_epoch()
    assert report.val_loss is not None and report.val_accuracy is not None


def test_divergence_names_the_node_and_keeps_last_good_weights(monkeypatch):
    # The NaN/Inf path: with the runaway checks off, the loss goes all the way to overflow.
    monkeypatch.setattr(trainer_module, "RUNAWAY_RATIO", float("inf"))
    monkeypatch.setattr(trainer_module, "WEIGHT_LIMIT", float("inf"))
    t = trainer_for("sine_regression.json", optimizer="sgd", lr=1e6, batch_size=0)
    seen = []
    with pytest.raises(TrainingDiverged) as info:
        for _ in range(100):
            seen.append(t.program.theta.copy())
            t.step()
    assert "lower learning rate" in str(info.value)
    assert info.value.node in {n.id for n in t.program.spec.nodes}
    assert np.all(np.isfinite(t.program.theta))
    # The failing step started from seen[-1]; the kept weights are the last ones whose
    # forward pass gave a finite loss: those the step before started from.
    assert np.array_equal(t.program.theta, seen[-2])


def test_dataset_that_does_not_fit_the_input_is_refused():
    spec = load_graph(EXAMPLES / "xor_mlp.json")
    cfg = TrainConfig.from_block(spec.training)
    with pytest.raises(DataError, match="node 'x' expects 2"):
        Trainer(compile_graph(spec), make_dataset("sine"), cfg)


@pytest.mark.parametrize("block, words", [
    ({"dtype": "float16"}, "dtype"),
    ({"validation_split": "x"}, "validation split"),
    ({"seed": "abc"}, "seed"),
    ({"seed": -1}, "seed"),
    ({"clip_norm": -1}, "clipping"),
    ({"l2": float("nan")}, "L2"),
    ({"optimizer": 3}, "optimizer"),
    ({"optimizer_params": [1]}, "optimizer_params"),
    ({"lr": True}, "learning rate"),
])
def test_bad_training_block_gives_a_sentence(block, words):
    # A graph file's training block may hold anything; each must be refused up front with
    # a GradscapeError, not fail later inside numpy with a TypeError or ValueError.
    with pytest.raises(GradscapeError, match=words):
        TrainConfig.from_block(block)


def test_config_round_trips_through_training_block():
    cfg = TrainConfig.from_block({"dataset": "moons", "lr": 0.3, "batch_size": 0, "title": "t"})
    assert cfg.dataset == "moons" and cfg.batch_size == 0
    assert TrainConfig.from_block(cfg.to_block()) == cfg
    json.dumps(cfg.to_block())


def test_edge_summaries_match_numpy():
    t = trainer_for("xor_mlp.json")
    t.step()
    values, grads = t.edge_summaries()
    p = t.program
    for k in range(len(p.edges)):
        v = p.edge_value(k)
        assert values[k].mean == pytest.approx(float(np.mean(v, dtype=np.float64)), rel=1e-6)
        assert values[k].max == pytest.approx(float(v.max()))
        g = p.edge_grads[k]
        if g is None:
            assert grads[k] is None
        else:
            assert grads[k].l2 == pytest.approx(float(np.linalg.norm(g.astype(np.float64))),
                                                rel=1e-6)


def test_every_example_compiles_and_trains_a_few_steps():
    files = sorted(EXAMPLES.glob("*.json"))
    assert len(files) >= 6
    for f in files:
        t = trainer_for(f.name)
        losses = [t.step().loss for _ in range(5)]
        assert all(np.isfinite(losses)), f.name


def test_fan_out_gradients_sum_on_node_and_split_on_edges():
    spec = GraphSpec.from_dict({
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": "x", "op": "Input", "params": {"features": 1}},
                  {"id": "a", "op": "Parameter", "params": {"value": 3.0}},
                  {"id": "m", "op": "Multiply"}, {"id": "s", "op": "Add"},
                  {"id": "y", "op": "Target", "params": {"features": 1}},
                  {"id": "loss", "op": "MSELoss"}],
        "edges": [{"from": "x.out", "to": "m.a"}, {"from": "a.out", "to": "m.b"},
                  {"from": "m.out", "to": "s.a"}, {"from": "a.out", "to": "s.b"},
                  {"from": "s.out", "to": "loss.prediction"},
                  {"from": "y.out", "to": "loss.target"}]})
    p = compile_graph(spec, dtype="float64")
    p.forward(np.array([[2.0]]), np.array([[1.0]]))
    p.backward()
    # ŷ = a·x + a = 9, L = (ŷ − 1)² → dL/dŷ = 16; via m: 16·x = 32, via s: 16.
    grads = {p.edges[k].key: float(np.sum(g)) for k, g in enumerate(p.edge_grads) if g is not None}
    assert grads["a.out->m.b"] == pytest.approx(32.0)
    assert grads["a.out->s.b"] == pytest.approx(16.0)
    assert float(p.node_grad("a")) == pytest.approx(48.0)
    assert float(p.grad[0]) == pytest.approx(48.0)


def test_trace_keeps_the_parameter_value_the_step_used():
    # The optimizer updates theta in place; the edge leaving a Parameter must still carry
    # the value the forward pass used, or the trace no longer adds up (y ≠ a·x).
    t = trainer_for("chain_rule.json", optimizer="sgd", lr=0.1)
    p = t.program
    t.step()
    before = t.weights_before_step
    for k, edge in enumerate(p.edges):
        if p.op_ids[p.index[edge.src]] != "Parameter":
            continue
        entry = next(e for e in p.entries if e.node == edge.src)
        used = before[entry.offset:entry.offset + entry.size].reshape(entry.shape)
        assert np.array_equal(p.edge_value(k), used), edge.key
        assert not np.array_equal(p.param_value(entry), used), "the step changed nothing"


def test_epoch_end_evaluation_keeps_the_trace_of_the_training_step():
    # Full batch: every step ends an epoch and evaluates on the validation set, which must
    # not replace the step's values (gradients come from the training batch).
    spec = load_graph(EXAMPLES / "xor_mlp.json")
    cfg = TrainConfig.from_block(spec.training, batch_size=0, validation_split=0.25)
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed)
    data = make_dataset(cfg.dataset, seed=cfg.seed, **cfg.dataset_params)
    train, val = data.split(cfg.validation_split, cfg.seed)
    t = Trainer(program, train, cfg, val)
    report = t.step()
    assert report.epoch_done is not None and report.epoch_done.val_loss is not None
    assert program.loss_value == pytest.approx(report.loss)
    assert program.training
    for k in range(len(program.edges)):
        value, grad = program.edge_value(k), program.edge_grads[k]
        if grad is not None:
            assert value.shape == grad.shape
    x = program.node_value(program.order[program.input_nodes[0]])
    assert len(x) == len(train)

