"""engine.core.reductions: the fast row maxima are numpy's exactly, the BLAS sums numpy's up
to rounding, for every shape and dtype the ops pass them."""

import numpy as np
import pytest

from engine.core import reductions

SHAPES = [(7,), (3, 1), (5, 4), (130, 10), (4096, 32), (8, 4, 32, 32), (32, 32, 48), (64, 65),
          (3, 200), (2, 0), (0, 5)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_maxima_equal_numpys_bit_for_bit_with_nan_and_infinities(shape, dtype):
    a = np.random.default_rng(0).normal(size=shape).astype(dtype)
    if a.size > 8:
        flat = a.reshape(-1)
        flat[[1, 5]] = -np.inf  # a causal mask's entries
        flat[3] = np.nan  # NaN wins, as in numpy
        flat[7] = np.inf
    if shape[-1] == 0:
        with pytest.raises(ValueError):
            reductions.last_axis_max(a)
        return
    want = a.max(axis=-1, keepdims=True)
    got = reductions.last_axis_max(a)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-5), (np.float64, 1e-13)])
def test_blas_sums_equal_numpys_to_rounding(shape, dtype, rtol):
    a = np.random.default_rng(1).normal(size=shape).astype(dtype)
    d = shape[-1]
    for got, want in ((reductions.last_axis_sums(a), a.sum(axis=-1, keepdims=True)),
                      (reductions.last_axis_means(a) if d else None,
                       a.mean(axis=-1, keepdims=True) if d else None),
                      (reductions.sums_over_rows(a), a.sum(axis=tuple(range(a.ndim - 1))))):
        if want is None:
            continue
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(a).sum() + 1e-30)


def test_other_axes_and_dtypes_take_numpys_own_reductions():
    a = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    np.testing.assert_array_equal(reductions.sums_over(a, -1), a.sum(axis=-1, keepdims=True))
    np.testing.assert_array_equal(reductions.sums_over_rows(a), a.reshape(-1, 4).sum(axis=0))
    f = a.astype(np.float32)
    for axis in (0, 1, 2, -1):
        np.testing.assert_array_equal(reductions.max_over(f, axis), f.max(axis=axis, keepdims=True))
        np.testing.assert_allclose(reductions.sums_over(f, axis), f.sum(axis=axis, keepdims=True))


def test_the_shared_ones_are_not_changed_by_use():
    a = np.ones((10, 5000), np.float32)
    reductions.sums_over_rows(a)
    reductions.last_axis_sums(a)
    assert (reductions.ones(6000, np.float32) == 1).all()
