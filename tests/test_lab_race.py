"""Learning lab: optimizer races share initial weights and data order; divergence is contained."""

from pathlib import Path

import numpy as np

from engine.core.spec import GraphSpec, load_graph
from engine.data import make_dataset
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
