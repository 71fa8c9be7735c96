"""Embedding's weight gradient takes one of three paths (one-hot product, grouped sums,
scatter); each gives the sums np.add.at gives."""

import numpy as np
import pytest

from engine.ops import sequence
from engine.ops.sequence import EmbeddingKernel


@pytest.mark.parametrize("one_hot_max", [sequence.ONE_HOT_MAX, 0], ids=["one-hot", "sums"])
@pytest.mark.parametrize("vocab,positions", [(5, 400), (300, 40)], ids=["few ids", "many ids"])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_embedding_gradient_is_the_sum_over_positions_of_each_id(
        one_hot_max, vocab, positions, dtype, rtol, monkeypatch):
    monkeypatch.setattr(sequence, "ONE_HOT_MAX", one_hot_max)
    rng = np.random.default_rng(4)
    kernel = EmbeddingKernel(vocab)
    kernel.w = {"weight": rng.normal(size=(vocab, 6)).astype(dtype)}
    kernel.g = {"weight": np.full((vocab, 6), np.nan, dtype)}  # every row must be assigned
    ids = rng.integers(0, vocab, size=(4, positions // 4)).astype(dtype)
    y = kernel.forward(ids)
    gy = rng.normal(size=y.shape).astype(dtype)
    assert kernel.backward(gy) == (None,)
    want = np.zeros((vocab, 6))
    np.add.at(want, ids.reshape(-1).astype(int), gy.reshape(-1, 6).astype(np.float64))
    got = kernel.g["weight"]
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 10)
