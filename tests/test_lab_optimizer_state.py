"""Learning lab: per-parameter optimizer state (gradient, m, v, momentum, Δθ) over time."""

from pathlib import Path

import numpy as np
import pytest

from engine.core.compiler import compile_graph
from engine.core.spec import load_graph
from engine.errors import GradscapeError
from engine.lab.optimizer_state import StateRecorder, parameter_state
from engine.training.optim import make_optimizer
from engine.training.trainer import TrainConfig, Trainer, load_data

EXAMPLES = Path(__file__).resolve().parents[1] / "resources" / "examples"


def trainer_for(name: str, **overrides) -> Trainer:
    spec = load_graph(EXAMPLES / name)
    cfg = TrainConfig.from_block(spec.training, **overrides)
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed)
    return Trainer(program, load_data(cfg), cfg)


def test_adam_m_v_match_a_manual_recomputation_for_a_scalar():
    t = trainer_for("chain_rule.json", optimizer="adam", lr=0.05)
    p = t.program
    rec = StateRecorder(p, ["a.value", "c.value"])
    before = parameter_state(t, p, "a.value")
    assert before["delta"] is None and before["step"] == 0
    assert set(before["state"]) == {"m", "v"} and before["state"]["m"] == 0.0
    thetas = [before["value"].item()]
    for _ in range(5):
        t.step()
        rec.record(t)
        thetas.append(parameter_state(t, p, "a.value")["value"].item())
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.05
    steps, grads = rec.series("a.value", "grad")
    assert steps.tolist() == [1, 2, 3, 4, 5] and grads.shape == (5, 1)
    m = v = 0.0
    for k, sample in enumerate(rec.samples("a.value")):
        g = sample.values["grad"][0]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        step = k + 1
        assert sample.values["m"][0] == pytest.approx(m, rel=1e-14, abs=0)
        assert sample.values["v"][0] == pytest.approx(v, rel=1e-14, abs=0)
        # Δθ = θ_after − θ_before, and it is Adam's bias-corrected step
        delta = sample.values["delta"][0]
        assert thetas[step] - thetas[step - 1] == pytest.approx(delta, rel=1e-12, abs=1e-17)
        want = -lr / (1 - b1 ** step) * m / (np.sqrt(v) / np.sqrt(1 - b2 ** step) + eps)
        assert delta == pytest.approx(want, rel=1e-12)
        assert sample.values["value"][0] == thetas[step]
    assert rec.series("c.value", "v", stat="max")[1].shape == (5,)


def test_sgd_momentum_state_and_a_bare_optimizer():
    t = trainer_for("xor_mlp.json", optimizer="momentum", lr=0.1, dtype="float64")
    p = t.program
    t.step()
    st = parameter_state(t, p, "h1.weight")
    assert st["shape"] == (8, 2) and st["optimizer"] == "momentum"
    assert np.array_equal(st["state"]["momentum"], st["grad"])  # first step: b = g
    np.testing.assert_allclose(st["delta"], -0.1 * st["grad"], rtol=1e-15)
    e = next(e for e in p.entries if e.key == "h1.weight")
    assert np.array_equal(st["value"], p.param_value(e))

    opt = make_optimizer("sgd", p.theta, p.grad, 0.5)
    assert parameter_state(opt, p, "out.bias")["state"] == {}
    assert parameter_state(opt, p, "out.bias")["delta"] is None
    opt.step()
    assert parameter_state(opt, p, "out.bias")["delta"].shape == (1,)


def test_large_tensors_are_summarised():
    t = trainer_for("xor_mlp.json")
    rec = StateRecorder(t.program, "h1.weight", full_limit=4, max_samples=3)
    for _ in range(5):
        t.step()
        rec.record(t)
    samples = rec.samples("h1.weight")
    assert len(samples) == 3 and samples[0].step == 3 and samples[0].values is None
    steps, l2 = rec.series("h1.weight", "m", stat="l2")
    assert steps.tolist() == [3, 4, 5] and np.all(l2 > 0)
    with pytest.raises(GradscapeError, match="too large"):
        rec.series("h1.weight", "m")
    with pytest.raises(GradscapeError, match="no learnable tensor"):
        StateRecorder(t.program, "nope.weight")
