"""Optimizers, schedules and gradient utilities agree with torch.optim step for step."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
import torch

from engine.core import chunked, jit
from engine.errors import GradscapeError
from engine.training import fused
from engine.training.optim import (
    OPTIMIZERS,
    SCHEDULES,
    SGD,
    Adam,
    AdamW,
    Optimizer,
    RMSProp,
    clip_grad_norm,
    make_optimizer,
    make_schedule,
    regularization,
)

N = 7
_RNG = np.random.default_rng(0)
_A = _RNG.normal(size=(N, N))
_A = _A @ _A.T / N + np.eye(N)  # symmetric positive definite
_B = _RNG.normal(size=N)
THETA0 = _RNG.normal(size=N)


def grad_fn(theta: np.ndarray) -> np.ndarray:
    """Gradient of a small fixed non-convex function, computed in float64."""
    t = theta.astype(np.float64)
    return _A @ t - _B + 0.5 * np.sin(3.0 * t) + 0.1 * np.roll(t, 1) ** 2


def quad_loss(theta: np.ndarray) -> float:
    t = theta.astype(np.float64)
    return float(0.5 * t @ _A @ t - _B @ t)


TORCH_CLS = {
    "SGD": torch.optim.SGD, "RMSProp": torch.optim.RMSprop, "Adam": torch.optim.Adam,
    "AdamW": torch.optim.AdamW,
}
OUR_CLS = {"SGD": SGD, "RMSProp": RMSProp, "Adam": Adam, "AdamW": AdamW}

# (class, lr, our hyper, torch hyper)
CASES = [
    ("SGD", 0.05, {}, {}),
    ("SGD", 0.05, {"momentum": 0.9}, {"momentum": 0.9}),
    ("SGD", 0.05, {"momentum": 0.9, "nesterov": True}, {"momentum": 0.9, "nesterov": True}),
    ("SGD", 0.05, {"momentum": 0.8, "dampening": 0.3}, {"momentum": 0.8, "dampening": 0.3}),
    ("SGD", 0.05, {"weight_decay": 0.1}, {"weight_decay": 0.1}),
    ("SGD", 0.05, {"momentum": 0.9, "weight_decay": 0.05, "nesterov": True},
     {"momentum": 0.9, "weight_decay": 0.05, "nesterov": True}),
    ("RMSProp", 0.01, {}, {}),
    ("RMSProp", 0.01, {"momentum": 0.9}, {"momentum": 0.9}),
    ("RMSProp", 0.01, {"centered": True}, {"centered": True}),
    ("RMSProp", 0.01, {"centered": True, "momentum": 0.5, "weight_decay": 0.1, "alpha": 0.9},
     {"centered": True, "momentum": 0.5, "weight_decay": 0.1, "alpha": 0.9}),
    ("Adam", 0.05, {}, {}),
    ("Adam", 0.05, {"weight_decay": 0.1}, {"weight_decay": 0.1}),
    ("Adam", 0.05, {"betas": (0.8, 0.99), "eps": 1e-6}, {"betas": (0.8, 0.99), "eps": 1e-6}),
    ("Adam", 0.05, {"amsgrad": True}, {"amsgrad": True}),
    ("AdamW", 0.05, {}, {}),
    ("AdamW", 0.05, {"weight_decay": 0.3, "beta1": 0.85}, {"weight_decay": 0.3,
                                                           "betas": (0.85, 0.999)}),
    ("AdamW", 0.05, {"weight_decay": 0.1, "amsgrad": True}, {"weight_decay": 0.1,
                                                             "amsgrad": True}),
]
IDS = [f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[2].items()) or 'plain'}" for c in CASES]


def ours_trajectory(cls: str, lr: float, hyper: dict, dtype, steps: int) -> list[np.ndarray]:
    theta = THETA0.astype(dtype)
    grad = np.zeros_like(theta)
    opt = OUR_CLS[cls](theta, grad, lr, **hyper)
    out = []
    for _ in range(steps):
        grad[...] = grad_fn(theta)
        opt.step()
        out.append(theta.copy())
    return out


def torch_trajectory(cls: str, lr: float, hyper: dict, dtype, steps: int) -> list[np.ndarray]:
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    p = torch.tensor(THETA0, dtype=tdtype, requires_grad=True)
    opt = TORCH_CLS[cls]([p], lr=lr, **hyper)
    out = []
    for _ in range(steps):
        p.grad = torch.from_numpy(grad_fn(p.detach().numpy()).astype(dtype))
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype,atol", [(np.float64, 1e-12), (np.float32, 2e-6)],
                         ids=["f64", "f32"])
def test_trajectory_matches_torch(case, dtype, atol):
    cls, lr, ours, theirs = case
    a = ours_trajectory(cls, lr, ours, dtype, 20)
    b = torch_trajectory(cls, lr, theirs, dtype, 20)
    for k, (x, y) in enumerate(zip(a, b)):
        assert x.dtype == dtype
        np.testing.assert_allclose(x, y, rtol=0, atol=atol, err_msg=f"step {k + 1}")
    assert np.abs(a[-1] - THETA0).max() > 1e-3  # it actually moved


ADAM_CASES = [c for c in CASES if c[0].startswith("Adam")]


@pytest.fixture
def fused_on(monkeypatch):
    """Route every Adam step, however small, through the numba kernel."""
    pytest.importorskip("numba")
    monkeypatch.delenv("GRADSCAPE_NUMBA", raising=False)
    monkeypatch.setattr(jit, "MIN_WORK", 0)
    assert jit.enabled()


@pytest.mark.parametrize("case", ADAM_CASES, ids=[i for c, i in zip(CASES, IDS) if c in ADAM_CASES])
@pytest.mark.parametrize("dtype,atol", [(np.float64, 1e-12), (np.float32, 2e-6)],
                         ids=["f64", "f32"])
def test_fused_adam_matches_torch(case, dtype, atol, fused_on):
    cls, lr, ours, theirs = case
    a = ours_trajectory(cls, lr, ours, dtype, 20)
    b = torch_trajectory(cls, lr, theirs, dtype, 20)
    for k, (x, y) in enumerate(zip(a, b)):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol, err_msg=f"step {k + 1}")


@pytest.mark.parametrize("name,hyper", [("adam", {}), ("adam", {"weight_decay": 0.1}),
                                        ("adam", {"amsgrad": True}),
                                        ("adamw", {"weight_decay": 0.3, "amsgrad": True})])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("parallel_work,ways", [(0, 1), (10**12, 1), (10**12, 3)],
                         ids=["numba-threads", "one-thread", "chunks-on-3-threads"])
def test_fused_adam_is_bit_identical_to_numpy(name, hyper, dtype, parallel_work, ways,
                                              monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.delenv("GRADSCAPE_NUMBA", raising=False)
    monkeypatch.setattr(jit, "PARALLEL_WORK", parallel_work)
    monkeypatch.setitem(chunked._settings, "ways", ways)
    monkeypatch.setattr(chunked, "MIN_SPLIT", 0)
    monkeypatch.setattr(chunked, "CHUNKS_PER_THREAD", 2)  # 5000 = 5 chunks of 896 and 520
    if ways > 1:
        _launch_once_in_parallel(monkeypatch)
    runs = []
    for min_size in (10**12, 0):  # numpy path, then the fused kernel
        monkeypatch.setattr(jit, "MIN_WORK", min_size)
        rng = np.random.default_rng(3)
        theta = rng.normal(size=5000).astype(dtype)
        grad = np.zeros_like(theta)
        opt = make_optimizer(name, theta, grad, 0.01, **hyper)
        for _ in range(8):
            grad[...] = np.sin(3 * theta) + rng.normal(size=theta.size)
            opt.step()
        grad[:7] = np.nan  # NaN must travel the same way (amsgrad's maximum too)
        opt.step()
        delta = opt.last_update
        runs.append([theta, delta, *opt.state_arrays().values()])
    for x, y in zip(*runs):
        assert x.dtype == dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_compiled_adam_update_read_later_is_that_steps(amsgrad, monkeypatch):
    """The compiled step leaves Δθ for `last_update` to recompute from m and v: read after
    the learning rate changed, or just before a saved state is loaded, it is still the
    update that step applied."""
    pytest.importorskip("numba")
    monkeypatch.delenv("GRADSCAPE_NUMBA", raising=False)
    monkeypatch.setattr(jit, "MIN_WORK", 0)
    rng = np.random.default_rng(5)
    theta = rng.normal(size=3000).astype(np.float32)
    grad = np.zeros_like(theta)
    opt = make_optimizer("adam", theta, grad, 0.01, amsgrad=amsgrad)
    saved = opt.state_dict()
    for _ in range(3):
        grad[...] = rng.normal(size=theta.size)
        before = theta.copy()
        opt.step()
        opt.lr = 0.5  # changed after the step: the update read below is still the step's
        np.testing.assert_allclose(opt.last_update, theta - before, rtol=0, atol=1e-6)
        opt.lr = 0.01
    grad[...] = 1.0
    before = theta.copy()
    opt.step()
    opt.load_state_dict(saved)  # replaces m and v; the last step's update stays
    np.testing.assert_allclose(opt.last_update, theta - before, rtol=0, atol=1e-6)


def _launch_once_in_parallel(monkeypatch):
    """Chunks go to helper threads only once numba has chosen a thread-safe layer."""
    monkeypatch.setattr(jit, "MIN_WORK", 0)
    opt = make_optimizer("adam", np.ones(8), np.ones(8), 0.1)
    with monkeypatch.context() as m:
        m.setattr(chunked, "MIN_SPLIT", 1 << 62)
        opt.step()
    if not chunked._threadsafe_layer():
        pytest.skip("numba's threading layer does not allow launches from several threads")


def test_chunks_run_on_helper_threads_and_raise_their_errors(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.delenv("GRADSCAPE_NUMBA", raising=False)
    _launch_once_in_parallel(monkeypatch)
    monkeypatch.setitem(chunked._settings, "ways", 2)
    monkeypatch.setattr(chunked, "MIN_SPLIT", 0)
    monkeypatch.setattr(chunked, "CHUNKS_PER_THREAD", 5)  # 10 chunks of 64
    seen, order = set(), []
    gate = threading.Event()

    def kernel(a, b, scale):
        seen.add(threading.get_ident())
        order.append(int(a[0]))
        if threading.get_ident() == threading.main_thread().ident:
            gate.wait(1.0)  # let the helper take chunks while this thread holds one
        else:
            gate.set()
        b[:] = a * scale

    a = np.arange(640.0)
    b = np.zeros_like(a)
    with jit.LOCK:
        chunked.run(kernel, (a, b), (2.0,))
    assert not chunked._POOL.locked()
    np.testing.assert_array_equal(b, 2 * a)
    assert len(seen) == 2 and sorted(order) == list(range(0, 640, 64))

    def failing(a, b, scale):
        if a[0] >= 300:
            raise ValueError("chunk failed")
        b[:] = a

    with jit.LOCK, pytest.raises(ValueError, match="chunk failed"):
        chunked.run(failing, (a, b), (1.0,))


def test_fused_kernel_steps_aside(monkeypatch):
    """Disabled by GRADSCAPE_NUMBA=0 and in a process forked after it ran."""
    monkeypatch.setattr(jit, "MIN_WORK", 0)
    monkeypatch.setenv("GRADSCAPE_NUMBA", "0")
    assert not jit.enabled()
    theta, grad = np.ones(4), np.ones(4)
    assert not fused.adam_step(theta, grad, *(np.zeros(4) for _ in range(4)), beta1=0.9,
                               beta2=0.999, eps=1e-8, step_size=0.1, bc2_sqrt=1.0, l2=0.0,
                               decay=0.0, amsgrad=False)
    assert (theta == 1).all()
    monkeypatch.delenv("GRADSCAPE_NUMBA")
    if jit.enabled():
        monkeypatch.setitem(jit._state, "pid", -1)  # as seen from a forked child
        assert not jit.enabled()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_make_optimizer_matches_class(name):
    info = OPTIMIZERS[name]
    theta = THETA0.copy()
    grad = np.zeros_like(theta)
    opt = make_optimizer(name, theta, grad, 0.01)
    assert isinstance(opt, info.cls) and opt.name == name
    for key, value in info.defaults.items():
        assert getattr(opt, key) == value
    assert {p.name for p in info.params} == set(info.defaults)
    for p in info.params:
        assert p.default == info.defaults[p.name] and p.check(p.default) is None
    assert make_optimizer("momentum", theta, grad, 0.01).momentum == 0.9
    assert make_optimizer("momentum", theta, grad, 0.01, momentum=0.5).momentum == 0.5
    assert make_optimizer("adamw", theta, grad, 0.01).weight_decay == 0.01


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_round_trip_is_exact(name, dtype):
    hyper = {"rmsprop": {"centered": True, "momentum": 0.5},
             "adam": {"amsgrad": True, "weight_decay": 0.01}}.get(name, {})

    def run(opt, theta, grad, n):
        for _ in range(n):
            grad[...] = grad_fn(theta)
            opt.step()

    theta = THETA0.astype(dtype)
    grad = np.zeros_like(theta)
    straight = make_optimizer(name, theta, grad, 0.02, **hyper)
    run(straight, theta, grad, 20)

    theta2 = THETA0.astype(dtype)
    grad2 = np.zeros_like(theta2)
    first = make_optimizer(name, theta2, grad2, 0.02, **hyper)
    run(first, theta2, grad2, 10)
    state = first.state_dict()
    # JSON-able apart from the arrays
    json.dumps({k: v for k, v in state.items() if k != "arrays"})
    assert all(isinstance(v, np.ndarray) for v in state["arrays"].values())
    saved_theta = theta2.copy()
    run(first, theta2, grad2, 3)  # the saved state must be a copy, not a view

    theta3 = saved_theta.copy()
    grad3 = np.zeros_like(theta3)
    resumed = make_optimizer(name, theta3, grad3, 0.5)  # other lr and hyper get restored
    resumed.load_state_dict(state)
    assert resumed.lr == 0.02 and resumed.t == 10
    run(resumed, theta3, grad3, 10)
    np.testing.assert_array_equal(theta3, theta)
    assert theta3.dtype == dtype


def test_load_state_dict_rejects_mismatch():
    theta = THETA0.copy()
    grad = np.zeros_like(theta)
    state = Adam(theta, grad, 0.01).state_dict()
    with pytest.raises(GradscapeError, match="Adam, not SGD"):
        SGD(theta, grad, 0.01).load_state_dict(state)
    small = np.zeros(3)
    with pytest.raises(GradscapeError, match="another network"):
        Adam(small, small.copy(), 0.01).load_state_dict(state)
    with pytest.raises(GradscapeError, match="damaged"):
        Adam(theta, grad, 0.01).load_state_dict({"class": "Adam"})


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_optimizer_lowers_a_convex_loss(name):
    theta = THETA0.copy()
    grad = np.zeros_like(theta)
    opt = make_optimizer(name, theta, grad, 0.05)
    start, best = quad_loss(theta), quad_loss(np.linalg.solve(_A, _B))
    for _ in range(300):
        grad[...] = _A @ theta - _B
        opt.step()
    assert quad_loss(theta) < best + 0.05 * (start - best)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_last_update_is_the_step_and_keeps_dtype(name, dtype):
    theta = THETA0.astype(dtype)
    grad = np.zeros_like(theta)
    opt = make_optimizer(name, theta, grad, 0.05, weight_decay=0.1)
    buffers = None
    for _ in range(5):
        grad[...] = grad_fn(theta)
        before = theta.copy()
        opt.step()
        delta = opt.last_update
        assert delta.dtype == dtype and theta.dtype == dtype and delta.shape == theta.shape
        tol = 1e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(delta, theta - before, rtol=0, atol=tol)
        for arr in opt.state_arrays().values():
            assert arr.dtype == dtype and arr.shape == theta.shape
        ids = [id(delta)] + [id(a) for a in opt.state_arrays().values()]
        if buffers is not None:
            assert ids == buffers  # buffers are reused, not reallocated
        buffers = ids
    assert opt.t == 5


def test_plain_sgd_is_theta_minus_lr_grad():
    theta = THETA0.copy()
    grad = grad_fn(theta)
    opt = SGD(theta, grad, 0.1)
    opt.step()
    delta = opt.last_update
    np.testing.assert_allclose(theta, THETA0 - 0.1 * grad, rtol=0, atol=1e-15)
    np.testing.assert_allclose(delta, -0.1 * grad, rtol=0, atol=1e-15)


def test_lr_can_change_between_steps():
    theta = np.ones(3)
    grad = np.ones(3)
    opt = SGD(theta, grad, 0.1)
    opt.step()
    opt.lr = 0.5
    opt.step()
    np.testing.assert_allclose(theta, 1 - 0.1 - 0.5)


def test_state_arrays():
    theta = THETA0.copy()
    grad = np.ones_like(theta)
    assert SGD(theta, grad, 0.1).state_arrays() == {}
    assert set(SGD(theta, grad, 0.1, momentum=0.9).state_arrays()) == {"momentum"}
    assert set(RMSProp(theta, grad, 0.1).state_arrays()) == {"square_avg"}
    assert set(RMSProp(theta, grad, 0.1, centered=True, momentum=0.1).state_arrays()) == {
        "square_avg", "grad_avg", "momentum"}
    adam = Adam(theta, grad, 0.1)
    assert set(adam.state_arrays()) == {"m", "v"}
    adam.step()
    np.testing.assert_allclose(adam.state_arrays()["m"], 0.1)  # live view


# -- errors ----------------------------------------------------------------------------
def test_unknown_optimizer_name_lists_choices():
    theta = THETA0.copy()
    with pytest.raises(GradscapeError) as info:
        make_optimizer("adagrad", theta, theta.copy(), 0.1)
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert "adagrad" in msg and all(name in msg for name in OPTIMIZERS)


@pytest.mark.parametrize("name,hyper,fragment", [
    ("sgd", {"momentum": -0.1}, "'momentum' must be at least 0"),
    ("sgd", {"momentum": "lots"}, "'momentum' must be a number"),
    ("sgd", {"nesterov": True}, "Nesterov"),
    ("sgd", {"betas": (0.9, 0.99)}, "no setting 'betas'"),
    ("sgd", {"gamma": 1}, "momentum, dampening, nesterov, weight_decay"),
    ("adam", {"beta1": 1.0}, "'beta1' must be at most"),
    ("adam", {"betas": 0.9}, "pair"),
    ("adam", {"weight_decay": float("nan")}, "NaN"),
    ("rmsprop", {"centered": 1}, "true or false"),
])
def test_bad_hyper_raises_clear_error(name, hyper, fragment):
    theta = THETA0.copy()
    with pytest.raises(ValueError, match=fragment) as info:
        make_optimizer(name, theta, theta.copy(), 0.1, **hyper)
    assert isinstance(info.value, GradscapeError)


@pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf"), "0.1", None])
def test_bad_lr(lr):
    theta = THETA0.copy()
    with pytest.raises(GradscapeError, match="learning rate"):
        make_optimizer("sgd", theta, theta.copy(), lr)


def test_bad_arrays():
    with pytest.raises(GradscapeError, match="same size"):
        SGD(np.zeros(3), np.zeros(4), 0.1)
    with pytest.raises(GradscapeError, match="float32"):
        SGD(np.zeros(3), np.zeros(3, dtype=np.float32), 0.1)
    with pytest.raises(GradscapeError, match="float32"):
        SGD(np.zeros(3, dtype=int), np.zeros(3, dtype=int), 0.1)


def test_int_hyper_is_accepted_as_float():
    theta = THETA0.copy()
    opt = make_optimizer("sgd", theta, theta.copy(), 1, momentum=0, weight_decay=1)
    assert isinstance(opt.weight_decay, float) and isinstance(opt.lr, float)


# -- schedules ---------------------------------------------------------------------------
SCHED_CASES = [
    ("constant", {}, lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1.0)),
    ("step", {"step_size": 7, "gamma": 0.5},
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
    ("step", {}, lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=10, gamma=0.1)),
    ("exponential", {"gamma": 0.9},
     lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9)),
    ("cosine", {"T_max": 12, "eta_min": 0.001},
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12, eta_min=0.001)),
    ("cosine", {"T_max": 30},
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=30)),
]


@pytest.mark.parametrize("name,params,make_torch", SCHED_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in SCHED_CASES])
def test_schedule_matches_torch(name, params, make_torch):
    base = 0.1
    sched = make_schedule(name, base, **params)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    ts = make_torch(opt)
    for epoch in range(30):
        expected = opt.param_groups[0]["lr"]
        for step in (epoch * 5, epoch * 5 + 4):
            assert sched.lr_at(step, epoch) == pytest.approx(expected, rel=1e-12, abs=1e-15)
        opt.step()
        ts.step()


def test_schedule_registry_and_errors():
    for name, info in SCHEDULES.items():
        sched = make_schedule(name, 0.1)
        assert isinstance(sched, info.cls) and sched.lr_at(0, 0) == 0.1
        assert {p.name for p in info.params} == set(info.defaults)
    with pytest.raises(GradscapeError, match="constant, step, exponential, cosine"):
        make_schedule("linear", 0.1)
    with pytest.raises(ValueError, match="'step_size' must be at least 1"):
        make_schedule("step", 0.1, step_size=0)
    with pytest.raises(ValueError, match="whole number"):
        make_schedule("cosine", 0.1, T_max=2.5)
    with pytest.raises(ValueError, match="no setting 'T_max'"):
        make_schedule("exponential", 0.1, T_max=3)
    with pytest.raises(ValueError, match="learning rate"):
        make_schedule("constant", -1.0)


# -- gradient utilities --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_clip_grad_norm_matches_torch(dtype, max_norm):
    g = (np.random.default_rng(1).normal(size=50) * 2).astype(dtype)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    # torch sees the same numbers split across two parameters
    ps = [torch.zeros(20, dtype=tdtype, requires_grad=True),
          torch.zeros(30, dtype=tdtype, requires_grad=True)]
    ps[0].grad = torch.tensor(g[:20])
    ps[1].grad = torch.tensor(g[20:])
    expected_norm = float(torch.nn.utils.clip_grad_norm_(ps, max_norm))
    ours = g.copy()
    norm = clip_grad_norm(ours, max_norm)
    assert ours.dtype == dtype and isinstance(norm, float)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert norm == pytest.approx(expected_norm, rel=tol)
    expected = np.concatenate([p.grad.numpy() for p in ps])
    np.testing.assert_allclose(ours, expected, rtol=tol, atol=0)
    assert np.linalg.norm(ours) <= max_norm * (1 + tol)


def test_clip_grad_norm_edge_cases():
    g = np.array([np.nan, 1.0])
    assert math.isnan(clip_grad_norm(g, 1.0))
    assert g[1] == 1.0
    with pytest.raises(GradscapeError, match="above 0"):
        clip_grad_norm(np.ones(2), 0.0)
    z = np.zeros(3)
    assert clip_grad_norm(z, 1.0) == 0.0


def test_regularization_value_and_gradient():
    rng = np.random.default_rng(2)
    theta = rng.normal(size=12)
    grad = rng.normal(size=12)
    g0 = grad.copy()
    penalty = regularization(theta, grad, l1=0.1, l2=0.3)
    assert penalty == pytest.approx(0.1 * np.abs(theta).sum() + 0.3 * (theta ** 2).sum())
    np.testing.assert_allclose(grad - g0, 0.1 * np.sign(theta) + 0.6 * theta)

    # gradient of the returned penalty, checked by finite differences
    eps = 1e-6
    for i in range(3):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += eps
        tm[i] -= eps
        num = (regularization(tp, np.zeros(12), 0.1, 0.3)
               - regularization(tm, np.zeros(12), 0.1, 0.3)) / (2 * eps)
        assert num == pytest.approx((grad - g0)[i], rel=1e-6)

    # matches torch: l2 = wd / 2 is SGD weight decay
    t = torch.tensor(theta, requires_grad=True)
    (0.1 * t.abs().sum() + 0.3 * (t ** 2).sum()).backward()
    np.testing.assert_allclose(grad - g0, t.grad.numpy(), rtol=1e-14)


def test_regularization_mask_and_dtype():
    theta = np.array([1.0, -2.0, 3.0, -4.0], dtype=np.float32)
    grad = np.zeros(4, dtype=np.float32)
    mask = np.array([True, False, True, False])
    penalty = regularization(theta, grad, l1=1.0, l2=0.5, mask=mask)
    assert penalty == pytest.approx(1.0 * 4 + 0.5 * 10)
    np.testing.assert_allclose(grad, [1 + 1.0, 0, 1 + 3.0, 0])
    assert grad.dtype == np.float32
    assert regularization(theta, grad, 0.0, 0.0) == 0.0
    with pytest.raises(GradscapeError, match="L2"):
        regularization(theta, grad, 0.0, -1.0)
    with pytest.raises(GradscapeError, match="mask"):
        regularization(theta, grad, 0.1, 0.0, mask=np.ones(3, dtype=bool))


def test_optimizer_base_is_abstract():
    with pytest.raises(NotImplementedError):
        Optimizer(np.zeros(2), np.zeros(2), 0.1).step()
