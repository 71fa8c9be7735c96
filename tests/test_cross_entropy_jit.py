"""The compiled cross-entropy of large networks (engine.ops.cross_entropy_jit) against the
numpy path: the same loss and gradients (float64 to 1e-12, backward bit for bit given the
same softmax), the same errors, and the switch-over rule."""

import numpy as np
import pytest

from engine.core import jit
from engine.core.compiler import compile_graph
from engine.errors import DataError
from tests.graphs import make_spec

pytest.importorskip("numba")


@pytest.fixture(autouse=True)
def numba_on(monkeypatch):
    monkeypatch.delenv("GRADSCAPE_NUMBA", raising=False)


def classifier(features=5, classes=4, sequence=False):
    x = ({"shape": [3, features]} if sequence else {"features": features})
    y = {"features": 3 if sequence else 1}
    return make_spec(
        [("x", "Input", x), ("out", "Dense", {"units": classes}),
         ("y", "Target", y), ("loss", "CrossEntropyLoss", {})],
        ["x>out", "out>loss.prediction", "y>loss.target"])


def both_paths(spec, x, y, dtype):
    """(loss, dL/dlogits, dL/dW) from the compiled path and from the numpy path."""
    out = []
    for large in (True, False):
        program = compile_graph(spec, dtype=dtype)
        program.kernels[program.index["loss"]].large_network = large
        loss = program.forward(x, y)
        program.backward()
        out.append((loss, program.node_grad("out").copy(), program.grad.copy()))
    return out


@pytest.mark.parametrize("sequence", [False, True], ids=["rows", "sequence"])
def test_compiled_cross_entropy_matches_numpy_in_float64(sequence):
    rng = np.random.default_rng(0)
    shape = (6, 3, 5) if sequence else (6, 5)
    x = rng.normal(size=shape) * 4
    y = rng.integers(0, 4, size=shape[:-1] if sequence else (6, 1)).astype(float)
    (l1, gz1, g1), (l0, gz0, g0) = both_paths(classifier(sequence=sequence), x, y, np.float64)
    assert l1 == pytest.approx(l0, rel=1e-13, abs=1e-13)
    np.testing.assert_allclose(gz1, gz0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(g1, g0, rtol=0, atol=1e-12)


def test_compiled_cross_entropy_gradient_is_finite_differences():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 5)), np.array([[0.0], [3.0], [2.0], [0.0]])
    program = compile_graph(classifier(), dtype=np.float64)
    program.kernels[program.index["loss"]].large_network = True
    program.forward(x, y)
    program.backward()
    analytic = program.grad.copy()
    numeric = np.empty_like(analytic)
    for i in range(analytic.size):
        keep = program.theta[i]
        program.theta[i] = keep + 1e-6
        up = program.forward(x, y)
        program.theta[i] = keep - 1e-6
        down = program.forward(x, y)
        program.theta[i] = keep
        numeric[i] = (up - down) / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_compiled_backward_is_numpys_bit_for_bit_on_the_same_softmax():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(7, 5)).astype(np.float32)
    y = rng.integers(0, 4, size=(7, 1)).astype(np.float32)
    program = compile_graph(classifier())
    kernel = program.kernels[program.index["loss"]]
    kernel.large_network = True
    program.forward(x, y)
    gy = np.ones((), np.float32)
    compiled = kernel.backward(gy)[0]
    kernel.large_network = False
    np.testing.assert_array_equal(compiled, kernel.backward(gy)[0])


@pytest.mark.parametrize("bad,shown", [(3.0, "class index 3"), (1.5, "class index 1.5"),
                                       (-1.0, "class index -1"), (np.nan, "class index nan")])
def test_compiled_path_names_the_bad_class_index(bad, shown):
    program = compile_graph(classifier(classes=3))
    program.kernels[program.index["loss"]].large_network = True
    with pytest.raises(DataError, match=shown):
        program.forward(np.zeros((3, 5)), np.array([[0.0], [bad], [1.0]]))


def test_nan_logits_give_a_nan_loss_on_both_paths():
    x = np.ones((2, 5))
    x[1, 2] = np.nan
    (l1, gz1, _), (l0, gz0, _) = both_paths(classifier(), x, np.array([[0.0], [1.0]]),
                                            np.float32)
    assert np.isnan(l1) and np.isnan(l0)
    np.testing.assert_array_equal(np.isnan(gz1), np.isnan(gz0))


def test_networks_from_min_work_parameters_take_the_compiled_path(monkeypatch):
    monkeypatch.setattr(jit, "MIN_WORK", 24)  # the classifier has 5·4 + 4 = 24 parameters
    assert compile_graph(classifier()).kernels[-1].large_network
    assert not compile_graph(classifier(features=4)).kernels[-1].large_network


def test_the_compiled_path_runs_when_set_and_numba_is_on(monkeypatch):
    from engine.ops import cross_entropy_jit

    calls = []
    for name in ("forward", "backward"):
        real = getattr(cross_entropy_jit, name)
        monkeypatch.setattr(cross_entropy_jit, name,
                            lambda *a, real=real, name=name: calls.append(name) or real(*a))
    program = compile_graph(classifier())
    x, y = np.ones((2, 5)), np.array([[0.0], [1.0]])
    program.forward(x, y)
    program.backward()
    assert calls == []
    program.kernels[program.index["loss"]].large_network = True
    compiled_loss = program.forward(x, y)
    program.backward()
    assert calls == ["forward", "backward"]
    monkeypatch.setenv("GRADSCAPE_NUMBA", "0")  # numba off: the numpy path, same loss
    assert program.forward(x, y) == pytest.approx(compiled_loss, rel=1e-6)
    assert calls == ["forward", "backward", "forward"]  # asked, and told no
