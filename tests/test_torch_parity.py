"""Same weights, same batch: forward, loss and every gradient equal PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.core.compiler import compile_graph
from engine.ops.conv import same_padding
from tests.graphs import make_spec

TOL = {"float64": {"rtol": 1e-9, "atol": 1e-10}, "float32": {"rtol": 1e-4, "atol": 1e-5}}
DTYPES = ("float64", "float32")




def run_both(spec, x, y, torch_loss, dtype, y_long=False, seed=0):
    """Run our program and `torch_loss(params, x, y) -> (loss, outputs dict)`; compare the
    loss, every parameter gradient and the returned node values. Returns (program, P)."""
    program = compile_graph(spec, dtype=dtype, seed=seed)
    state = program.state_dict()  # before forward, which updates BatchNorm running stats
    loss = program.forward(x, y)
    program.backward()
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    buffers = ("running_mean", "running_var")
    P = {k: torch.tensor(v, requires_grad=not k.endswith(buffers)) for k, v in state.items()}
    xt = torch.tensor(x, dtype=tdtype)
    yt = torch.tensor(y).long().reshape(-1) if y_long else torch.tensor(y, dtype=tdtype)
    tloss, outs = torch_loss(P, xt, yt)
    tloss.backward()
    tol = TOL[dtype]
    np.testing.assert_allclose(loss, tloss.item(), **tol)
    for node, value in outs.items():
        np.testing.assert_allclose(program.node_value(node), value.detach().numpy(), **tol,
                                   err_msg=node)
    assert program.entries
    for e in program.entries:
        ours = program.param_grad(e)
        assert ours.dtype == np.dtype(dtype)
        np.testing.assert_allclose(ours, P[e.key].grad.numpy(), **tol, err_msg=e.key)
    return program, P


def batch(shape, n=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape))


def classes(n, c, seed=1):
    return np.random.default_rng(seed).integers(0, c, size=(n, 1)).astype(float)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mlp_dense_relu_cross_entropy(dtype):
    spec = make_spec(
        [("x", "Input", {"features": 4}), ("h1", "Dense", {"units": 16}), ("a1", "ReLU", {}),
         ("h2", "Dense", {"units": 16, "init": "xavier"}), ("a2", "ReLU", {}),
         ("out", "Dense", {"units": 3}), ("y", "Target", {}), ("loss", "CrossEntropyLoss", {})],
        ["x>h1", "h1>a1", "a1>h2", "h2>a2", "a2>out", "out>loss.prediction", "y>loss.target"])

    def torch_loss(P, x, y):
        h = F.relu(F.linear(x, P["h1.weight"], P["h1.bias"]))
        h = F.relu(F.linear(h, P["h2.weight"], P["h2.bias"]))
        out = F.linear(h, P["out.weight"], P["out.bias"])
        return F.cross_entropy(out, y), {"out": out}

    run_both(spec, batch((4,), 16), classes(16, 3), torch_loss, dtype, y_long=True)


CNN = make_spec(
    [("x", "Input", {"shape": [2, 8, 8]}), ("c1", "Conv2D", {"filters": 4}),
     ("bn", "BatchNorm", {}), ("r1", "ReLU", {}), ("mp", "MaxPool2D", {}),
     ("c2", "Conv2D", {"filters": 6, "kernel": 3, "stride": 2}), ("r2", "ReLU", {}),
     ("ap", "AvgPool2D", {}), ("f", "Flatten", {}), ("out", "Dense", {"units": 3}),
     ("y", "Target", {}), ("loss", "CrossEntropyLoss", {})],
    ["x>c1", "c1>bn", "bn>r1", "r1>mp", "mp>c2", "c2>r2", "r2>ap", "ap>f", "f>out",
     "out>loss.prediction", "y>loss.target"])


def cnn_torch(P, x, training=True):
    h = F.conv2d(x, P["c1.weight"], P["c1.bias"], padding="same")
    h = F.batch_norm(h, P["bn.running_mean"], P["bn.running_var"], P["bn.weight"], P["bn.bias"],
                     training=training, momentum=0.1, eps=1e-5)
    h = F.max_pool2d(F.relu(h), 2)
    _, top, bottom = same_padding(4, 3, 2)
    h = F.conv2d(F.pad(h, (top, bottom, top, bottom)), P["c2.weight"], P["c2.bias"], stride=2)
    h = F.avg_pool2d(F.relu(h), 2)
    return F.linear(h.flatten(1), P["out.weight"], P["out.bias"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_cnn_conv_batchnorm_pools(dtype):
    x, y = batch((2, 8, 8), 6), classes(6, 3)

    def torch_loss(P, xt, yt):
        out = cnn_torch(P, xt)
        return F.cross_entropy(out, yt), {"out": out}

    program, P = run_both(CNN, x, y, torch_loss, dtype, y_long=True)
    tol = TOL[dtype]
    # running statistics after one training step (unbiased variance), then evaluation mode
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(program.buffers[f"bn.{name}"], P[f"bn.{name}"].numpy(), **tol)
    assert not np.allclose(program.buffers["bn.running_var"], 1.0)
    with torch.no_grad():
        expected = cnn_torch(P, torch.tensor(x, dtype=P["out.weight"].dtype), training=False)
    np.testing.assert_allclose(program.predict(x), expected.numpy(), **tol)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("k,stride,padding,hw", [
    (3, 1, "same", (6, 6)), (2, 1, "same", (6, 5)), (4, 1, "same", (7, 7)),
    (3, 2, "same", (7, 5)), (4, 3, "same", (9, 8)), (3, 2, "valid", (7, 7)),
    (1, 1, "valid", (4, 4)),
])
def test_conv2d_geometries(k, stride, padding, hw):
    spec = make_spec(
        [("x", "Input", {"shape": [3, *hw]}),
         ("c", "Conv2D", {"filters": 2, "kernel": k, "stride": stride, "padding": padding}),
         ("f", "Flatten", {}), ("out", "Dense", {"units": 1}), ("y", "Target", {}),
         ("loss", "MSELoss", {})],
        ["x>c", "c>f", "f>out", "out>loss.prediction", "y>loss.target"])

    def torch_loss(P, x, y):
        if padding == "same" and stride == 1:
            c = F.conv2d(x, P["c.weight"], P["c.bias"], padding="same")
        elif padding == "same":
            _, t, b = same_padding(hw[0], k, stride)
            _, left, right = same_padding(hw[1], k, stride)
            c = F.conv2d(F.pad(x, (left, right, t, b)), P["c.weight"], P["c.bias"], stride=stride)
        else:
            c = F.conv2d(x, P["c.weight"], P["c.bias"], stride=stride)
        out = F.linear(c.flatten(1), P["out.weight"], P["out.bias"])
        return F.mse_loss(out, y), {"c": c}

    run_both(spec, batch((3, *hw), 4), batch((1,), 4, seed=3), torch_loss, "float64")


@pytest.mark.parametrize("op,params,torch_pool", [
    ("MaxPool2D", {"size": 3, "stride": 2}, lambda h: F.max_pool2d(h, 3, 2)),
    ("MaxPool2D", {"size": 2, "stride": 1}, lambda h: F.max_pool2d(h, 2, 1)),
    ("AvgPool2D", {"size": 3, "stride": 2}, lambda h: F.avg_pool2d(h, 3, 2)),
    ("AvgPool2D", {"size": 2}, lambda h: F.avg_pool2d(h, 2)),
])
def test_pooling_overlapping_and_odd_sizes(op, params, torch_pool):
    spec = make_spec(
        [("x", "Input", {"shape": [2, 7, 7]}), ("c", "Conv2D", {"filters": 2}),
         ("p", op, params), ("f", "Flatten", {}), ("out", "Dense", {"units": 1}),
         ("y", "Target", {}), ("loss", "MSELoss", {})],
        ["x>c", "c>p", "p>f", "f>out", "out>loss.prediction", "y>loss.target"])

    def torch_loss(P, x, y):
        p = torch_pool(F.conv2d(x, P["c.weight"], P["c.bias"], padding="same"))
        out = F.linear(p.flatten(1), P["out.weight"], P["out.bias"])
        return F.mse_loss(out, y), {"p": p}

    run_both(spec, batch((2, 7, 7), 4), batch((1,), 4, seed=3), torch_loss, "float64")


def test_maxpool_ties_go_to_first_maximum():
    spec = make_spec(
        [("x", "Input", {"shape": [1, 4, 4]}), ("th", "Parameter", {"value": 1.0}),
         ("m", "Multiply", {}), ("p", "MaxPool2D", {}), ("f", "Flatten", {}),
         ("y", "Target", {"features": 4}), ("loss", "MSELoss", {})],
        ["x>m.a", "th>m.b", "m>p", "p>f", "f>loss.prediction", "y>loss.target"])
    program = compile_graph(spec, dtype="float64", input_grads=True)
    x = np.ones((1, 1, 4, 4))
    program.forward(x, np.zeros((1, 4)))
    program.backward()
    xt = torch.ones((1, 1, 4, 4), dtype=torch.float64, requires_grad=True)
    F.mse_loss(F.max_pool2d(xt, 2).flatten(1), torch.zeros((1, 4), dtype=torch.float64)).backward()
    np.testing.assert_array_equal(program.node_grad("x"), xt.grad.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_residual_add(dtype):
    spec = make_spec(
        [("x", "Input", {"features": 5}), ("h", "Dense", {"units": 8}), ("t", "Tanh", {}),
         ("h2", "Dense", {"units": 8}), ("res", "Add", {}), ("r", "ReLU", {}),
         ("out", "Dense", {"units": 2}), ("y", "Target", {"features": 2}), ("loss", "MSELoss", {})],
        ["x>h", "h>t", "t>h2", "h>res.a", "h2>res.b", "res>r", "r>out", "out>loss.prediction",
         "y>loss.target"])

    def torch_loss(P, x, y):
        h = F.linear(x, P["h.weight"], P["h.bias"])
        h2 = F.linear(torch.tanh(h), P["h2.weight"], P["h2.bias"])
        out = F.linear(F.relu(h + h2), P["out.weight"], P["out.bias"])
        return F.mse_loss(out, y), {"out": out}

    run_both(spec, batch((5,)), batch((2,), seed=5), torch_loss, dtype)


ACTIVATIONS = [
    ("Tanh", {}, torch.tanh),
    ("ReLU", {}, F.relu),
    ("Sigmoid", {}, torch.sigmoid),
    ("LeakyReLU", {}, F.leaky_relu),
    ("LeakyReLU", {"slope": 0.2}, lambda h: F.leaky_relu(h, 0.2)),
    ("ELU", {}, F.elu),
    ("ELU", {"alpha": 0.6}, lambda h: F.elu(h, 0.6)),
    ("GELU", {}, F.gelu),
    ("GELU", {"approximate": "tanh"}, lambda h: F.gelu(h, approximate="tanh")),
    ("SiLU", {}, F.silu),
    ("Softmax", {}, lambda h: F.softmax(h, dim=-1)),
    ("Softplus", {}, F.softplus),
    ("Softplus", {"beta": 2.0, "threshold": 1.0}, lambda h: F.softplus(h, 2.0, 1.0)),
    ("Identity", {}, lambda h: h),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op,params,fn", ACTIVATIONS, ids=lambda v: str(v)[:20])
def test_activation(op, params, fn, dtype):
    spec = make_spec(
        [("x", "Input", {"features": 4}), ("h", "Dense", {"units": 6}), ("a", op, params),
         ("out", "Dense", {"units": 2}), ("y", "Target", {"features": 2}), ("loss", "MSELoss", {})],
        ["x>h", "h>a", "a>out", "out>loss.prediction", "y>loss.target"])
    x = batch((4,), 16) * 2.0  # wide enough to reach every branch (threshold, negatives)

    def torch_loss(P, xt, yt):
        a = fn(F.linear(xt, P["h.weight"], P["h.bias"]))
        out = F.linear(a, P["out.weight"], P["out.bias"])
        return F.mse_loss(out, yt), {"a": a}

    run_both(spec, x, batch((2,), 16, seed=4), torch_loss, dtype)


def _probs(n, c, seed=7):
    p = np.random.default_rng(seed).uniform(0.05, 1, size=(n, c))
    return p / p.sum(axis=1, keepdims=True)


LOSSES = [
    ("MSELoss", {}, None, lambda p, t: F.mse_loss(p, t)),
    ("MSELoss", {"reduction": "sum"}, None, lambda p, t: F.mse_loss(p, t, reduction="sum")),
    ("MAELoss", {}, None, lambda p, t: F.l1_loss(p, t)),
    ("MAELoss", {"reduction": "sum"}, None, lambda p, t: F.l1_loss(p, t, reduction="sum")),
    ("HuberLoss", {}, None, lambda p, t: F.huber_loss(p, t)),
    ("HuberLoss", {"delta": 0.4}, None, lambda p, t: F.huber_loss(p, t, delta=0.4)),
    ("BCELoss", {}, "Sigmoid", lambda p, t: F.binary_cross_entropy(p, t)),
    ("BCELoss", {"reduction": "sum"}, "Sigmoid",
     lambda p, t: F.binary_cross_entropy(p, t, reduction="sum")),
    ("BCELoss", {"from_logits": True}, None, lambda p, t: F.binary_cross_entropy_with_logits(p, t)),
    ("CrossEntropyLoss", {}, "index", lambda p, t: F.cross_entropy(p, t)),
    ("CrossEntropyLoss", {"reduction": "sum"}, "index",
     lambda p, t: F.cross_entropy(p, t, reduction="sum")),
    ("CrossEntropyLoss", {}, "probs", lambda p, t: F.cross_entropy(p, t)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op,params,kind,fn", LOSSES, ids=lambda v: str(v)[:24])
def test_loss(op, params, kind, fn, dtype):
    n, c = 12, 3
    rng = np.random.default_rng(9)
    if kind == "index":
        y, features = classes(n, c), 1
    elif kind == "probs":
        y, features = _probs(n, c), c
    elif op == "BCELoss":
        y, features = rng.uniform(size=(n, c)), c
    else:
        y, features = rng.normal(size=(n, c)), c
    nodes = [("x", "Input", {"features": 4}), ("h", "Dense", {"units": c})]
    edges = ["x>h"]
    pred = "h"
    if kind == "Sigmoid":
        nodes.append(("s", "Sigmoid", {}))
        edges.append("h>s")
        pred = "s"
    nodes += [("y", "Target", {"features": features}), ("loss", op, params)]
    edges += [f"{pred}>loss.prediction", "y>loss.target"]

    def torch_loss(P, xt, yt):
        h = F.linear(xt, P["h.weight"], P["h.bias"])
        if kind == "Sigmoid":
            h = torch.sigmoid(h)
        return fn(h, yt), {}

    run_both(make_spec(nodes, edges), batch((4,), n) * 2, y, torch_loss, dtype,
             y_long=kind == "index")


def test_bce_clamps_log_like_torch():
    p = np.array([[0.0, 1.0, 0.5]])
    t = np.array([[1.0, 0.0, 0.5]])
    from engine.ops.losses import BCEKernel

    k = BCEKernel("mean")
    k.needs_input_grad = (True, False)
    ours = float(k.forward(p, t))
    theirs = F.binary_cross_entropy(torch.tensor(p), torch.tensor(t)).item()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
