"""Learning lab: optimizer races share initial weights and data order; divergence is contained."""

from pathlib import Path

import numpy as np
import pytest

from engine.core.compiler import compile_graph
from engine.core.spec import GraphSpec, load_graph
from engine.data import make_dataset
from engine.errors import GradscapeError
from engine.lab.race import OptimizerRace, RaceEntry

EXAMPLES = Path(__file__).resolve().parents[1] / "resources" / "examples"
XOR = load_graph(EXAMPLES / "xor_mlp.json")
DATA = make_dataset("xor", seed=0)

CONTENDERS = [
    RaceEntry("Adam", "adam", 0.05, 32),
    RaceEntry("SGD", "sgd", 0.5, 32),
    RaceEntry("Momentum", "momentum", 0.1, 32),
    RaceEntry("Full-batch Adam", "adam", 0.05, None),
]


def test_same_initial_weights_and_batch_order():
    race = OptimizerRace(XOR, CONTENDERS, DATA, seed=3, snapshot_every=5)
    thetas = [c.program.theta for c in race.contenders]
    assert all(np.array_equal(thetas[0], t) for t in thetas[1:])
    assert len({id(t) for t in thetas}) == len(thetas)  # separate copies
    theta0 = thetas[0].copy()
    race.step_all()
    batches = [c.trainer.epoch_batches() for c in race.contenders]
    for other in batches[1:3]:  # equal batch sizes: identical batches
        assert all(np.array_equal(a, b) for a, b in zip(batches[0], other))
    # different batch size: the same permutation, cut differently
    assert np.array_equal(np.concatenate(batches[0]), batches[3][0])
    assert [c.samples_seen for c in race.contenders] == [[32], [32], [32], [len(DATA)]]
    assert all(np.array_equal(c.snapshots[0], theta0) for c in race.contenders)


def test_every_optimizer_lowers_the_xor_loss():
    race = OptimizerRace(XOR, CONTENDERS, DATA, seed=0, snapshot_every=4)
    before = race.evaluate(DATA)
    assert len(set(before)) == 1
    rounds = []
    results = race.run(15, should_continue=lambda r: rounds.append(1) or True)
    after = race.evaluate(DATA)
    for res, b, a in zip(results, before, after):
        assert not res.diverged, res
        assert res.epochs == 15
        assert a < 0.9 * b, (res.label, b, a)
    assert [r.steps for r in results] == [150, 150, 150, 15]
    assert len(rounds) == 150
    full = race.contenders[3]
    assert full.snapshot_steps == [0, 4, 8, 12] and len(full.epoch_losses) == 15


def test_a_diverging_contender_stops_without_stopping_the_race():
    spec = GraphSpec.from_dict({"format": "gradscape-graph", "version": 1,
        "nodes": [{"id": "x", "op": "Input", "params": {"features": 2}},
                  {"id": "d", "op": "Dense", "params": {"units": 1}},
                  {"id": "y", "op": "Target", "params": {"features": 1}},
                  {"id": "loss", "op": "MSELoss"}],
        "edges": [{"from": "x.out", "to": "d.in"}, {"from": "d.out", "to": "loss.prediction"},
                  {"from": "y.out", "to": "loss.target"}]})
    race = OptimizerRace(spec, [RaceEntry("calm", "sgd", 0.05, 16),
                                RaceEntry("wild", "sgd", 50.0, 16),
                                RaceEntry("nan", "sgd", 1e200, 16)],
                         DATA, seed=0, config=None)
    results = race.run(3)
    calm, wild, nan = results
    assert not calm.diverged and calm.epochs == 3
    # The trainer's runaway rule stops it (1,000× its best) before the race's own (10,000×).
    assert wild.diverged and "jumped to" in wild.message and "lower learning rate" in wild.message
    assert nan.diverged and nan.message
    assert wild.steps < calm.steps
    assert race.running == [race.contenders[0]]
    assert race.step_all()[1:] == [None, None]
    assert np.isnan(race.evaluate(DATA)[1])


def test_summary_is_the_whole_training_set_loss_not_the_last_batch():
    entries = [RaceEntry("SGD (1 sample)", "sgd", 0.1, 1), RaceEntry("GD", "sgd", 2.0, None)]
    race = OptimizerRace(XOR, entries, DATA, seed=0)
    race.run(2)
    for c, r in zip(race.contenders, race.results()):
        fresh = compile_graph(XOR, seed=0)
        fresh.load_state_dict(c.program.state_dict())
        fresh.set_training(False)
        expected = float(fresh.forward(np.asarray(DATA.x, fresh.dtype),
                                       np.asarray(DATA.y, fresh.dtype)))
        assert r.train_loss == np.float64(expected) or abs(r.train_loss - expected) < 1e-12
        assert 0.0 <= r.train_accuracy <= 1.0
    sgd = race.results()[0]
    assert sgd.final_loss != sgd.train_loss  # one sample's loss is not the training loss


def test_a_contender_can_train_with_another_loss():
    entries = [RaceEntry("MSE", "sgd", 2.0, None), RaceEntry("BCE", "sgd", 2.0, None,
                                                             loss="BCELoss")]
    race = OptimizerRace(XOR, entries, DATA, seed=0)
    ops = [[n.op for n in c.program.spec.nodes if n.id == "loss"] for c in race.contenders]
    assert ops == [["MSELoss"], ["BCELoss"]]
    first = race.results()
    race.run(60)
    last = race.results()
    for before, after in zip(first, last):
        assert after.train_loss < 0.8 * before.train_loss  # both visibly learn
    with pytest.raises(GradscapeError, match="not a loss"):
        OptimizerRace(XOR, [RaceEntry("x", "sgd", 0.1, None, loss="ReLU")], DATA)
