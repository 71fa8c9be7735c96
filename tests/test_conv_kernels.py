"""Conv2D, MaxPool2D and ReLU: the compiled loops (engine.ops.conv_jit, elementwise_jit)
against the numpy paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from engine.core import chunked, jit
from engine.ops import conv, conv_jit
from engine.ops.activations import ReLU
from engine.ops.conv import Conv2D, MaxPool2D, same_padding

numba = pytest.importorskip("numba")

CONVS = [  # (channels, h, w, params)
    (2, 6, 6, {"kernel": 3}),
    (2, 7, 5, {"kernel": 3, "stride": 2}),
    (2, 6, 6, {"kernel": 2}),
    (2, 7, 7, {"kernel": 3, "stride": 2, "padding": "valid"}),
    (3, 6, 6, {"kernel": 1, "bias": False}),
    (2, 9, 8, {"kernel": 4, "stride": 3}),
    (2, 5, 4, {"kernel": 3, "padding": "number", "pad": 2}),
    (2, 6, 5, {"kernel": 3, "stride": 2, "padding": "number", "pad": 1}),
    (2, 7, 6, {"kernel": 3, "dilation": 2}),
    (4, 5, 5, {"filters": 6, "groups": 2}),
    (3, 5, 4, {"filters": 3, "groups": 3, "dilation": 2}),
    (2, 7, 6, {"kernel": 2, "dilation": 2, "stride": 2, "padding": "valid"}),
    (3, 4, 4, {"kernel": 5, "padding": "same"}),
    (2, 2, 3, {"kernel": 3, "padding": "number", "pad": 3}),  # taps wholly in the border
    (3, 9, 7, {"kernel": 5, "stride": 3, "padding": "number", "pad": 2, "dilation": 2}),
    (2, 8, 9, {"kernel": 4, "stride": 2, "padding": "same"}),  # uneven 'same' padding
]
POOLS = [(2, 6, 6, {}), (2, 7, 7, {"size": 3, "stride": 2}), (1, 5, 4, {"size": 2, "stride": 1}),
         (2, 5, 6, {"size": 3, "stride": 2, "padding": 1}), (2, 7, 5, {"size": 2}),
         (1, 4, 4, {"size": 4, "padding": 2}), (2, 5, 5, {"size": 2, "padding": 1}),
         (1, 9, 3, {"size": 2, "stride": 2})]


def _run(op, params, shape, compiled, monkeypatch, dtype=np.float64, x=None, fused=None):
    """Forward and backward of one kernel on the numpy path or the compiled one (`fused`
    False: Conv2D adds its bias in a pass of its own, as before the bias row)."""
    monkeypatch.delenv("GRADSCAPE_NUMBA", raising=False)
    monkeypatch.setattr(jit, "MIN_WORK", 0 if compiled else 10**12)
    rng = np.random.default_rng(1)
    ins = {"in": (None, *shape[1:])}
    params = op.resolve_params(params)
    kernel = op.make_kernel(params, ins, op.infer_shape(params, ins), dtype)
    kernel.needs_input_grad = (True,)
    if fused is not None:
        kernel.fused_bias = fused
    kernel.w, kernel.g = {}, {}
    for name, s in op.param_shapes(params, ins).items():
        kernel.w[name] = rng.normal(size=s).astype(dtype)
        kernel.g[name] = np.full(s, np.nan, dtype=dtype)
    x = rng.normal(size=shape).astype(dtype) if x is None else x
    y = kernel.forward(x)
    gy = rng.normal(size=y.shape).astype(dtype)
    (dx,) = kernel.backward(gy)
    return y, dx, {k: v.copy() for k, v in kernel.g.items()}


@pytest.mark.parametrize("c,h,w,params", CONVS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_conv_is_bit_identical_to_numpy(c, h, w, params, dtype, monkeypatch):
    params = {"filters": 3, **params}
    ref = _run(Conv2D(), params, (3, c, h, w), False, monkeypatch, dtype)
    got = _run(Conv2D(), params, (3, c, h, w), True, monkeypatch, dtype)
    for a, b in zip(ref[:2], got[:2]):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    for name in ref[2]:
        np.testing.assert_array_equal(ref[2][name], got[2][name])


@pytest.fixture
def split_everything(monkeypatch):
    """Every convolution taken image by image and every compiled loop split over 3 threads,
    however small; notes for each split whether it had more than one chunk (which thread
    takes which is up to the scheduler: tests/test_optim.py checks that helpers run)."""
    monkeypatch.delenv("GRADSCAPE_NUMBA", raising=False)
    monkeypatch.setattr(jit, "MIN_WORK", 0)
    conv_jit.im2col(np.ones((1, 1, 2, 2)), np.empty((1, 1, 4)), 1, 1, 1, 0, 0, 2, 2)
    if not chunked._threadsafe_layer():
        pytest.skip("numba's threading layer does not allow launches from several threads")
    monkeypatch.setitem(chunked._settings, "ways", 3)
    monkeypatch.setattr(conv, "IMAGES_PER_PASS", 1)  # several passes per thread's chunk
    monkeypatch.setattr(chunked, "MIN_SPLIT_FLOPS", 0)
    monkeypatch.setattr(chunked, "MIN_SPLIT", 0)
    splits = []
    take = chunked._Job.take_chunks

    def take_and_note(job):
        splits.append(job.chunk < job.size)
        take(job)

    monkeypatch.setattr(chunked._Job, "take_chunks", take_and_note)
    return splits


@pytest.mark.parametrize("c,h,w,params", CONVS[:4] + CONVS[9:10])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_image_by_image_on_threads_is_bit_identical_to_numpy(c, h, w, params, dtype,
                                                                  monkeypatch,
                                                                  split_everything):
    """Batches of 5 over 3 threads: uneven chunks of whole images, one image per pass, and
    matrix products on one BLAS thread each."""
    params = {"filters": 3, **params}
    with monkeypatch.context() as m:
        m.setitem(chunked._settings, "ways", 1)
        ref = _run(Conv2D(), params, (5, c, h, w), False, m, dtype)
    got = _run(Conv2D(), params, (5, c, h, w), True, monkeypatch, dtype)
    for a, b in zip(ref[:2], got[:2]):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)
    for name in ref[2]:
        np.testing.assert_array_equal(ref[2][name], got[2][name])
    assert any(split_everything)


@pytest.mark.parametrize("op,params", [(MaxPool2D(), {}), (MaxPool2D(), {"size": 3}),
                                       (ReLU(), {})], ids=["pool-2x2", "pool-3x3", "relu"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_split_pool_and_relu_loops_are_bit_identical_to_numpy(op, params, dtype, monkeypatch,
                                                              split_everything):
    """Batches of 5 images over 3 threads (ReLU: its elements in cache-line chunks)."""
    with monkeypatch.context() as m:
        m.setitem(chunked._settings, "ways", 1)
        ref = _run(op, params, (5, 2, 7, 6), False, m, dtype)
    got = _run(op, params, (5, 2, 7, 6), True, monkeypatch, dtype)
    for a, b in zip(ref[:2], got[:2]):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)
    assert any(split_everything)


TORCH_CONVS = [  # (batch, channels, h, w, params): odd sizes, strides, paddings, batch 1
    (1, 3, 7, 5, {"kernel": 3, "padding": "same"}),
    (2, 2, 9, 7, {"kernel": 3, "stride": 2, "padding": "same"}),
    (3, 3, 8, 6, {"kernel": 3, "padding": "valid"}),
    (2, 2, 7, 9, {"kernel": 3, "stride": 2, "padding": "valid"}),
    (1, 2, 6, 7, {"kernel": 5, "padding": "number", "pad": 2, "dilation": 2}),
    (2, 4, 5, 5, {"kernel": 2, "stride": 3, "padding": "number", "pad": 1}),
    (2, 4, 6, 6, {"kernel": 3, "padding": "same", "bias": False}),
]


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("n,c,h,w,params", TORCH_CONVS)
def test_conv_float64_matches_torch_and_the_separate_bias_pass(n, c, h, w, params, compiled,
                                                               monkeypatch):
    """The bias row of the im2col products (and the compiled col2im) give torch's float64
    forward and gradients, and the separate bias pass's to 1e-12."""
    import torch
    import torch.nn.functional as F

    params = {"filters": 5, **params}
    got = _run(Conv2D(), params, (n, c, h, w), compiled, monkeypatch)
    ref = _run(Conv2D(), params, (n, c, h, w), compiled, monkeypatch, fused=False)
    for a, b in zip(got[:2], ref[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for name in ref[2]:
        np.testing.assert_allclose(got[2][name], ref[2][name], rtol=1e-12, atol=1e-12)
    # the same random draws as _run: weights, bias, x, then dy
    rng = np.random.default_rng(1)
    op = Conv2D()
    resolved = op.resolve_params(params)
    shapes = op.param_shapes(resolved, {"in": (None, c, h, w)})
    tw = {k: torch.tensor(rng.normal(size=s), requires_grad=True) for k, s in shapes.items()}
    tx = torch.tensor(rng.normal(size=(n, c, h, w)), requires_grad=True)
    k, s, d = resolved["kernel"], resolved["stride"], resolved["dilation"]
    if resolved["padding"] == "same":
        span = d * (k - 1) + 1
        _, top, bottom = same_padding(h, span, s)
        _, left, right = same_padding(w, span, s)
        xin = F.pad(tx, (left, right, top, bottom))
        pad = 0
    else:
        xin, pad = tx, resolved["pad"] if resolved["padding"] == "number" else 0
    ty = F.conv2d(xin, tw["weight"], tw.get("bias"), stride=s, padding=pad, dilation=d)
    gy = torch.tensor(rng.normal(size=tuple(ty.shape)))
    ty.backward(gy)
    np.testing.assert_allclose(got[0], ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    for name, t in tw.items():
        np.testing.assert_allclose(got[2][name], t.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("c,h,w,params", POOLS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_maxpool_matches_numpy(c, h, w, params, dtype, monkeypatch):
    x = np.random.default_rng(2).normal(size=(2, c, h, w)).astype(dtype)
    x[0, 0, :2, :2] = 1.5  # a tie: the first maximum (row-major) takes the gradient
    ref = _run(MaxPool2D(), params, x.shape, False, monkeypatch, dtype, x)
    got = _run(MaxPool2D(), params, x.shape, True, monkeypatch, dtype, x)
    np.testing.assert_array_equal(ref[0], got[0])
    # overlapping windows add their gradients in another order: equal to rounding
    np.testing.assert_allclose(ref[1], got[1], rtol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_2x2_maxpool_keeps_ties_and_nans_like_numpy(dtype, monkeypatch):
    """The 2×2 stride-2 loop: the same maxima and the same first-maximum offsets as the
    numpy passes, with ties, NaNs and −∞ at every window position, odd sizes, batch 1."""
    rng = np.random.default_rng(4)
    for shape in ((3, 4, 9, 8), (1, 2, 6, 7)):
        x = rng.integers(-2, 3, size=shape).astype(dtype)  # small integers: many ties
        flat = x.reshape(-1)
        flat[rng.choice(x.size, x.size // 10, replace=False)] = np.nan
        flat[rng.choice(x.size, x.size // 20, replace=False)] = -np.inf
        found = []
        for compiled in (False, True):
            monkeypatch.setattr(jit, "MIN_WORK", 0 if compiled else 10**12)
            kernel = MaxPool2D().make_kernel(MaxPool2D().resolve_params({}), {}, None, dtype)
            found.append((kernel.forward(x), kernel.arg))
        (y0, a0), (y1, a1) = found
        assert y1.dtype == dtype and a1.dtype == np.uint8
        np.testing.assert_array_equal(y0, y1)  # NaNs in the same places
        np.testing.assert_array_equal(a0, a1)
        # the offset is the first maximum in row-major order of the window's values
        # before its first NaN (none: the first value when the window starts with NaN)
        n, c, ho, wo = y1.shape
        windows = x[:, :, :2 * ho, :2 * wo].reshape(n, c, ho, 2, wo, 2)
        windows = windows.transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4)
        for win, got in zip(windows, a1.reshape(-1)):
            seen = win[:np.argmax(np.isnan(win))] if np.isnan(win).any() else win
            assert got == (np.argmax(seen) if len(seen) else 0)


def test_maxpool_propagates_nan(monkeypatch):
    x = np.random.default_rng(3).normal(size=(1, 1, 4, 4))
    x[0, 0, 1, 1] = np.nan
    for compiled in (False, True):
        y, dx, _ = _run(MaxPool2D(), {}, x.shape, compiled, monkeypatch, x=x)
        assert np.isnan(y[0, 0, 0, 0]) and not np.isnan(y[0, 0, 1:, 1:]).any()
        assert (dx[0, 0, :2, :2] != 0).sum() == 1  # the window's gradient goes somewhere


def test_compiled_paths_step_aside_when_numba_is_off(monkeypatch):
    from engine.ops import conv_jit

    monkeypatch.setattr(jit, "MIN_WORK", 0)
    monkeypatch.setenv("GRADSCAPE_NUMBA", "0")
    x, arg = np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2), dtype=np.uint16)
    assert not conv_jit.im2col(x, np.zeros((1, 9, 4)), 3, 1, 1, 0, 0, 2, 2)
    assert not conv_jit.col2im(np.zeros((1, 9, 4)), x, 3, 1, 1, 0, 0, 2, 2)
    assert not conv_jit.maxpool_grad(np.zeros((1, 1, 2, 2)), arg, x, 2, 2)
    assert not conv_jit.maxpool22(x, np.zeros((1, 1, 2, 2)), arg.astype(np.uint8))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_relu_is_bit_identical_to_numpy(dtype, monkeypatch):
    x = np.random.default_rng(5).normal(size=(3, 2, 4, 5)).astype(dtype)
    x[0, 0, 0, :3] = [np.nan, -0.0, 0.0]
    ref = _run(ReLU(), {}, x.shape, False, monkeypatch, dtype, x)
    got = _run(ReLU(), {}, x.shape, True, monkeypatch, dtype, x)
    for a, b in zip(ref[:2], got[:2]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))  # −0 for negatives too


_LOAD_EVERY_CONV_KERNEL = """
import json, numpy as np
from engine.core import jit
from engine.ops import conv_jit
x = np.random.default_rng(0).random((64, 8, 16, 16), dtype=np.float32)
y = np.empty((64, 8, 8, 8), np.float32)
arg = np.empty((64, 8, 8, 8), np.uint8)
assert conv_jit.maxpool22(x, y, arg) and conv_jit.maxpool_grad(y, arg, np.empty_like(x), 2, 2)
for s, o in ((1, 16), (2, 8)):
    cols = np.empty((64, 8 * 9, o * o), np.float32)
    assert conv_jit.im2col(x, cols, 3, s, 1, 1, 1, o, o)
    assert conv_jit.col2im(cols, np.empty_like(x), 3, s, 1, 1, 1, o, o)
misses = {}
for fn in jit._kernels.values():
    for d in getattr(fn, "dispatchers", (fn,)):
        misses[d.py_func.__qualname__] = sum(d.stats.cache_misses.values())
print(json.dumps(misses))
"""


def test_a_new_process_loads_every_conv_kernel_from_the_disk_cache(tmp_path):
    # A compiled function that calls another compiled function held in a closure is never
    # found in numba's cache: each new training process compiled it again (1–3 s per kernel
    # before a CNN's first step).
    pytest.importorskip("numba")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "GRADSCAPE_NUMBA": "1"}

    def run() -> dict[str, int]:
        out = subprocess.run([sys.executable, "-c", _LOAD_EVERY_CONV_KERNEL], env=env,
                             capture_output=True, text=True, check=True, timeout=300)
        return json.loads(out.stdout.strip().splitlines()[-1])

    first = run()
    assert len(first) == 6 and sum(first.values()) >= 6  # compiled and saved
    assert run() == dict.fromkeys(first, 0)  # every one loaded, none compiled again


def _program(layers):
    from engine.core.compiler import compile_graph
    from engine.core.spec import GraphSpec

    nodes = [{"id": i, "op": op, "params": p} for i, op, p in layers]
    edges = [{"from": f"{a[0]}.out", "to": f"{b[0]}.in"} for a, b in zip(layers, layers[1:])]
    nodes += [{"id": "y", "op": "Target", "params": {"features": 1}},
              {"id": "loss", "op": "CrossEntropyLoss"}]
    edges += [{"from": f"{layers[-1][0]}.out", "to": "loss.prediction"},
              {"from": "y.out", "to": "loss.target"}]
    return compile_graph(GraphSpec.from_dict({"format": "gradscape-graph", "version": 1,
                                              "nodes": nodes, "edges": edges}), seed=0)


@pytest.mark.parametrize("conv", [True, False], ids=["conv-net", "mlp"])
def test_a_conv_net_runs_its_products_on_one_blas_thread_while_it_splits(conv, monkeypatch):
    """After a product on two BLAS threads OpenBLAS's second thread spins, and split
    convolution products then share a core with it: a conv network whose batch makes its
    products large enough to split holds BLAS to one thread during forward and backward
    (and gives the threads back after); other networks and smaller batches do not."""
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    monkeypatch.setitem(chunked._settings, "ways", 2)
    # 2 filters × 36 pixels × (9 taps + bias) × 2 flops a sample: a batch of 4 splits, 3 not
    monkeypatch.setattr(chunked, "MIN_SPLIT_FLOPS", 4 * 2 * 36 * 10 * 2)
    layers = [("x", "Input", {"shape": [1, 6, 6]})]
    layers += [("c", "Conv2D", {"filters": 2}), ("f", "Flatten", {})] if conv else \
        [("f", "Flatten", {})]
    program = _program(layers + [("d", "Dense", {"units": 3})])
    before = blas_threads()
    seen = []
    dense = program.kernels[[op.id for op in program.ops].index("Dense")]
    forward, backward = dense.forward, dense.backward
    monkeypatch.setattr(dense, "forward", lambda x: (seen.append(blas_threads()), forward(x))[1])
    monkeypatch.setattr(dense, "backward", lambda g: (seen.append(blas_threads()), backward(g))[1])
    rng = np.random.default_rng(0)
    program.forward(rng.normal(size=(4, 1, 6, 6)), np.array([[0.0], [1.0], [2.0], [1.0]]))
    program.backward()
    assert program.holds_blas is conv
    assert seen == ([{1}, {1}] if conv else [before, before])
    assert blas_threads() == before
    if conv:  # a batch of 3 is too small to split: the products keep their threads
        seen.clear()
        program.forward(rng.normal(size=(3, 1, 6, 6)), np.array([[0.0], [1.0], [2.0]]))
        assert not program.holds_blas and seen == [before]


def test_blas_hold_is_released_by_the_last_of_overlapping_holders(monkeypatch):
    """Two threads' conv networks may step at once: whichever order they leave in, the
    BLAS thread count comes back to what it was, and not before the last one leaves."""
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    monkeypatch.setitem(chunked._settings, "ways", 2)
    before = blas_threads()
    first, second = chunked.blas_on_one_thread(), chunked.blas_on_one_thread()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # left out of order, as two threads may
    assert blas_threads() == {1}
    second.__exit__(None, None, None)
    assert blas_threads() == before


def test_a_child_forked_during_a_hold_gets_its_blas_threads_back(monkeypatch):
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    monkeypatch.setitem(chunked._settings, "ways", 2)
    before = blas_threads()
    hold = chunked.blas_on_one_thread()
    hold.__enter__()
    assert blas_threads() == {1}
    chunked._reset_after_fork()  # what os.fork runs in the child
    assert blas_threads() == before and chunked._blas_hold["depth"] == 0
    with chunked.blas_on_one_thread():  # holds work again afterwards
        assert blas_threads() == {1}
    assert blas_threads() == before


def test_image_by_image_conv_survives_numba_switched_off_before_backward(monkeypatch,
                                                                        split_everything):
    """The forward kept no columns; a backward without numba builds them the numpy way."""
    params = Conv2D.resolve_params({"filters": 3})
    ins = {"in": (None, 2, 6, 6)}
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 2, 6, 6))
    weights = {"weight": rng.normal(size=(3, 2, 3, 3)), "bias": rng.normal(size=3)}
    results = []
    for switch_off in (False, True):
        kernel = Conv2D().make_kernel(params, ins, Conv2D().infer_shape(params, ins),
                                      np.float64)
        kernel.needs_input_grad = (True,)
        kernel.w = weights
        kernel.g = {"weight": np.zeros((3, 2, 3, 3)), "bias": np.zeros(3)}
        y = kernel.forward(x)
        assert kernel.images is not None  # went image by image
        if switch_off:
            monkeypatch.setenv("GRADSCAPE_NUMBA", "0")
        (dx,) = kernel.backward(np.ones_like(y))
        results.append((dx, {k: v.copy() for k, v in kernel.g.items()}))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    for name in ("weight", "bias"):
        np.testing.assert_array_equal(results[0][1][name], results[1][1][name])


def test_keep_trace_keeps_the_blas_hold_of_the_step_it_keeps(monkeypatch):
    monkeypatch.setitem(chunked._settings, "ways", 2)
    monkeypatch.setattr(chunked, "MIN_SPLIT_FLOPS", 4 * 2 * 36 * 10 * 2)
    program = _program([("x", "Input", {"shape": [1, 6, 6]}), ("c", "Conv2D", {"filters": 2}),
                        ("f", "Flatten", {}), ("d", "Dense", {"units": 3})])
    rng = np.random.default_rng(0)
    program.forward(rng.normal(size=(4, 1, 6, 6)), np.array([[0.0], [1.0], [2.0], [1.0]]))
    assert program.holds_blas
    with program.keep_trace():
        program.predict(rng.normal(size=(2, 1, 6, 6)))  # too small a batch to hold
        assert not program.holds_blas
    assert program.holds_blas  # the kept step's backward runs as its forward did
