"""Learning lab: loss landscapes around the current weights, and paths projected on them."""

from pathlib import Path

import numpy as np
import pytest

from engine.core.compiler import compile_graph
from engine.core.spec import load_graph
from engine.data import make_dataset
from engine.lab.landscape import (
    LandscapeError,
    LandscapeScan,
    loss_landscape,
    project,
    random_directions,
)
from engine.training.trainer import TrainConfig, Trainer

EXAMPLES = Path(__file__).resolve().parents[1] / "resources" / "examples"


@pytest.fixture
def chain():
    p = compile_graph(load_graph(EXAMPLES / "chain_rule.json"), dtype="float64")
    data = make_dataset("linear", seed=0, features=1, samples=10)
    return p, data.x, data.y


def eval_loss(p, x, y):
    was = p._training
    p.set_training(False)
    try:
        return p.forward(x, y)
    finally:
        p.set_training(was)


def test_two_parameter_plane_matches_setting_them_by_hand(chain):
    p, x, y = chain
    theta = p.theta.copy()
    ls = loss_landscape(p, x, y, (("a.value", 0), ("c.value", 0)), span=0.5, resolution=11)
    assert ls.losses.shape == (11, 11) and ls.complete and not ls.cancelled
    assert ls.labels == ("a.value[0]", "c.value[0]")
    assert np.array_equal(p.theta, theta)
    assert ls.center_loss == eval_loss(p, x, y)
    assert ls.losses[5, 5] == ls.center_loss
    a0, c0 = p.theta[p.entries[0].offset], p.theta[p.entries[2].offset]
    assert [e.key for e in p.entries] == ["a.value", "b.value", "c.value"]
    for i, j in [(0, 0), (2, 9), (10, 3)]:
        q = compile_graph(p.spec, dtype="float64")
        q.theta[0] = a0 + ls.alphas[j]
        q.theta[2] = c0 + ls.betas[i]
        assert ls.losses[i, j] == eval_loss(q, x, y)
    assert project(p.theta, ls.center, ls.d1, ls.d2) == (0.0, 0.0)


def test_random_plane_on_xor_leaves_the_program_alone():
    spec = load_graph(EXAMPLES / "xor_mlp.json")
    cfg = TrainConfig.from_block(spec.training, epochs=3)
    p = compile_graph(spec, dtype="float32", seed=0)
    data = make_dataset("xor", seed=0)
    trainer = Trainer(p, data, cfg)
    path = [p.theta.copy()]
    for _ in range(3):
        trainer.run_epoch()
        path.append(p.theta.copy())
    theta, grad = p.theta.copy(), p.grad.copy()
    scan = LandscapeScan(p, data.x, data.y, "random", resolution=9, seed=3)
    seen = []
    ls = scan.run(lambda done, total: seen.append((done, total)) or True)
    assert seen[-1] == (9, 9) and ls.complete
    assert np.array_equal(p.theta, theta) and np.array_equal(p.grad, grad)
    assert p._training
    assert ls.center_loss == eval_loss(p, data.x, data.y)
    assert ls.losses[4, 4] == ls.center_loss
    assert np.all(np.isfinite(ls.losses))
    # the center is the lowest point on the line through it, more or less: edges are worse
    assert ls.losses[4, 0] > ls.center_loss and ls.losses[0, 4] > ls.center_loss

    a, b = ls.project(path)
    assert a.shape == (4,) and (a[-1], b[-1]) == (0.0, 0.0)
    # a point on the plane projects back to its own coordinates
    pa, pb = ls.project(ls.center + 0.3 * ls.d1 - 0.7 * ls.d2)
    assert pa[0] == pytest.approx(0.3, abs=1e-5) and pb[0] == pytest.approx(-0.7, abs=1e-5)


def test_random_directions_are_filter_normalised_and_seeded():
    p = compile_graph(load_graph(EXAMPLES / "xor_mlp.json"), dtype="float64")
    d1, d2 = random_directions(p, seed=5)
    e1, _ = random_directions(p, seed=5)
    assert np.array_equal(d1, e1) and not np.array_equal(d1, d2)
    for e in p.entries:
        d = e.view(d1)
        w = p.param_value(e)
        if len(e.shape) >= 2:
            np.testing.assert_allclose(np.linalg.norm(d, axis=1), np.linalg.norm(w, axis=1),
                                       rtol=1e-8)
        else:
            assert not np.any(d)  # biases zeroed
    bias = next(e for e in p.entries if e.name == "bias")
    p.param_value(bias)[...] = np.arange(bias.size) - 2.0
    n1, _ = random_directions(p, seed=5, bias_mode="normalise")
    nb = n1[bias.offset:bias.offset + bias.size]
    assert np.linalg.norm(nb) == pytest.approx(np.linalg.norm(p.param_value(bias)), rel=1e-8)
    # scalar-only graphs fall back to normalising the scalars instead of a zero direction
    q = compile_graph(load_graph(EXAMPLES / "chain_rule.json"), dtype="float64")
    s1, _ = random_directions(q, seed=0)
    np.testing.assert_allclose(np.abs(s1), np.abs(q.theta))
    assert n1.shape == d1.shape


def test_cancelling_stops_between_rows(chain):
    p, x, y = chain
    ls = loss_landscape(p, x, y, "random", resolution=7, should_continue=lambda d, t: d < 3)
    assert ls.cancelled and ls.rows_done == 3
    assert np.all(np.isfinite(ls.losses[:3])) and np.all(np.isnan(ls.losses[3:]))
    scan = LandscapeScan(p, x, y, (("a.value", 0), ("b.value", 0)), resolution=5)
    rows = scan.rows()
    assert next(rows) == 0 and scan.landscape.rows_done == 1


def test_bad_requests_raise(chain):
    p, x, y = chain
    with pytest.raises(LandscapeError, match="no learnable tensor 'zz.value'"):
        loss_landscape(p, x, y, (("zz.value", 0), ("a.value", 0)))
    with pytest.raises(LandscapeError, match="outside"):
        loss_landscape(p, x, y, (("a.value", 3), ("c.value", 0)))
