"""Per-wire summaries: the compiled one-pass loop and the numpy path agree with float64."""

import numpy as np
import pytest

from engine.core import jit, stats
from engine.core.stats import summarize, summarize_many


def arrays(rng):
    big = rng.normal(size=(32, 32, 48)).astype(np.float32) * 3 + 1
    return [big, None, rng.normal(size=5000), np.zeros((0, 3), np.float32), big,
            rng.normal(size=(4, 3)).astype(np.float32), np.arange(6).reshape(2, 3)]


def use_path(compiled: bool, monkeypatch) -> None:
    """Take the compiled one-pass loop or the numpy path."""
    if compiled and not jit.enabled():
        pytest.skip("numba is not available in this process")
    if not compiled:
        monkeypatch.setattr(jit, "worth_it", lambda work: False)


@pytest.mark.parametrize("compiled", [True, False])
def test_summaries_match_float64_reference(compiled, monkeypatch):
    use_path(compiled, monkeypatch)
    rng = np.random.default_rng(0)
    items = arrays(rng)
    got = summarize_many(items)
    assert got[1] is None and got[3] is None
    assert got[4] is got[0]  # one array on two wires: summarised once
    for a, s in zip(items, got):
        if s is None:
            continue
        ref = summarize(a)  # float64 accumulation
        assert s.size == ref.size and s.min == ref.min and s.max == ref.max
        for field in ("mean", "mean_abs", "l2"):
            assert getattr(s, field) == pytest.approx(getattr(ref, field), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("compiled", [True, False])
def test_summaries_of_exploding_values_say_so(compiled, monkeypatch):
    use_path(compiled, monkeypatch)
    monkeypatch.setattr(stats, "KERNEL_MIN", 1)
    big = np.ones(70_000, np.float32)
    with_inf, with_nan = big.copy(), big.copy()
    with_inf[7] = np.inf
    with_nan[9] = np.nan
    inf_s, nan_s = summarize_many([with_inf, with_nan])
    assert inf_s.max == np.inf and inf_s.mean == np.inf and inf_s.min == 1.0
    assert np.isnan(nan_s.mean) and np.isnan(nan_s.min) and np.isnan(nan_s.max)
