"""Learning lab: the learning-rate sweep finds slow, good and diverging regions on XOR."""

from pathlib import Path

import numpy as np
import pytest

from engine.core.spec import load_graph
from engine.data import make_dataset
from engine.errors import GradscapeError
from engine.lab.lr_sweep import (
    GOOD,
    NOT_RUN,
    TOO_LARGE,
    TOO_LARGE_SLOW,
    TOO_SMALL,
    classify,
    lr_sweep,
)
from engine.training.trainer import TrainConfig

SPEC = load_graph(Path(__file__).resolve().parents[1] / "resources" / "examples" / "xor_mlp.json")
DATA = make_dataset("xor", seed=0)
CONFIG = TrainConfig.from_block(SPEC.training)  # Adam, batch 32


def test_xor_sweep_has_three_regions_in_order():
    r = lr_sweep(SPEC, DATA, CONFIG, steps=100)
    assert r.completed == 16 and not r.cancelled
    assert r.lrs[0] == pytest.approx(1e-4) and r.lrs[-1] == pytest.approx(10.0)
    assert r.regions[0] == TOO_SMALL and not r.diverged[0]
    assert r.regions[-1] == TOO_LARGE and r.diverged[-1]
    assert r.best_lr is not None and r.regions[r.lrs.index(r.best_lr)] == GOOD
    assert 1e-2 < r.best_lr < 1.0
    assert r.final_losses[r.lrs.index(r.best_lr)] < 0.1 * r.initial_loss
    # regions run small → good → large, never back
    order = {TOO_SMALL: 0, GOOD: 1, TOO_LARGE_SLOW: 2, TOO_LARGE: 2}
    ranks = [order[g] for g in r.regions]
    assert ranks == sorted(ranks)
    assert all(len(c) == 100 for c, d in zip(r.curves, r.diverged) if not d)


def test_every_run_starts_from_the_same_weights():
    r = lr_sweep(SPEC, DATA, CONFIG, lrs=[0.05, 0.05], steps=20)
    assert r.curves[0] == r.curves[1] and r.final_losses[0] == r.final_losses[1]


def test_sweep_can_be_cancelled():
    calls = []

    def keep_going(done, total):
        calls.append(done)
        return done < 2

    r = lr_sweep(SPEC, DATA, CONFIG, lrs=np.logspace(-3, 0, 5), steps=10,
                 should_continue=keep_going)
    assert r.cancelled and r.completed == 2
    assert r.regions[2:] == (NOT_RUN,) * 3 and np.isnan(r.final_losses[3])
    assert len(r.curves[2]) == 0


def test_classification_rule():
    lrs = [0.001, 0.01, 0.1, 1.0, 10.0]
    initial = 1.0
    finals = [0.95, 0.2, 0.05, 0.5, float("inf")]
    diverged = [False, False, False, False, True]
    regions, best = classify(lrs, initial, finals, diverged)
    # best ln(1/0.05) = 3.0; 0.2 gives 1.6 ≥ 1.5 (good), 0.5 gives 0.69: its loss fell, so
    # it learns less than the best but is not diverging
    assert best == 0.1
    assert regions == [TOO_SMALL, GOOD, GOOD, TOO_LARGE_SLOW, TOO_LARGE]
    regions, best = classify(lrs[:2], 1.0, [1.0, 1.2], [False, True])
    assert best is None and regions == [TOO_SMALL, TOO_LARGE]


def test_bad_arguments():
    with pytest.raises(GradscapeError):
        lr_sweep(SPEC, DATA, CONFIG, lrs=[0.1, -1.0])
    with pytest.raises(GradscapeError):
        lr_sweep(SPEC, DATA, CONFIG, steps=0)


def test_diverging_only_when_the_loss_rose_or_blew_up():
    """A rate whose loss fell 0.25 → 0.055 is never "diverging"."""
    lrs = [0.01, 0.1, 1.0, 3.0, 10.0]
    finals = [0.2, 0.001, 0.055, 0.26, float("inf")]
    diverged = [False, False, False, True, True]  # 0.26 > 0.25: rose; inf: blew up
    regions, best = classify(lrs, 0.25, finals, diverged)
    assert best == 0.1
    assert regions[2] == TOO_LARGE_SLOW
    assert regions[3:] == [TOO_LARGE, TOO_LARGE]
    for k, region in enumerate(regions):
        if region == TOO_LARGE:
            assert finals[k] > 0.25 or not np.isfinite(finals[k])
