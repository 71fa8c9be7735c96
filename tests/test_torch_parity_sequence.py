"""The sequence and attention ops, and the small new element-wise ops, equal PyTorch's maths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.graphs import make_spec
from tests.test_torch_parity import DTYPES, batch, run_both

T, V, D = 6, 9, 8


def ids(n, t=T, v=V, seed=2):
    return np.random.default_rng(seed).integers(0, v, size=(n, t)).astype(float)


def torch_attention(P, x, name, heads, causal, bias=True):
    n, t, d = x.shape
    qkv = F.linear(x, P[f"{name}.in_proj_weight"], P[f"{name}.in_proj_bias"] if bias else None)
    q, k, v = (z.reshape(n, t, heads, d // heads).transpose(1, 2) for z in qkv.split(d, dim=-1))
    o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    o = o.transpose(1, 2).reshape(n, t, d)
    return F.linear(o, P[f"{name}.out_proj_weight"], P[f"{name}.out_proj_bias"] if bias else None)


def gpt_block_spec(heads=2, causal=True, bias=True):
    return make_spec(
        [("x", "Input", {"shape": [T]}), ("emb", "Embedding", {"size": V, "dim": D}),
         ("pos", "Parameter", {"shape": [T, D], "value": 0.05}), ("xp", "Add", {}),
         ("ln1", "LayerNorm", {}), ("att", "MultiHeadAttention",
                                    {"heads": heads, "causal": causal, "bias": bias}),
         ("r1", "Add", {}), ("ln2", "LayerNorm", {"eps": 1e-6}),
         ("fc", "Dense", {"units": 16}), ("act", "GELU", {}), ("proj", "Dense", {"units": D}),
         ("r2", "Add", {}), ("lnf", "LayerNorm", {}), ("head", "Dense", {"units": V}),
         ("y", "Target", {"features": T}), ("loss", "CrossEntropyLoss", {})],
        ["x>emb", "emb>xp.a", "pos>xp.b", "xp>ln1", "ln1>att", "xp>r1.a", "att>r1.b", "r1>ln2",
         "ln2>fc", "fc>act", "act>proj", "r1>r2.a", "proj>r2.b", "r2>lnf", "lnf>head",
         "head>loss.prediction", "y>loss.target"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("heads,causal,bias", [(2, True, True), (4, False, True), (1, True, False)])
def test_gpt_block(dtype, heads, causal, bias):
    spec = gpt_block_spec(heads, causal, bias)

    def torch_loss(P, x, y):
        def ln(z, name, eps=1e-5):
            return F.layer_norm(z, (D,), P[f"{name}.weight"], P[f"{name}.bias"], eps)

        h = F.embedding(x.long(), P["emb.weight"]) + P["pos.value"]
        att = torch_attention(P, ln(h, "ln1"), "att", heads, causal, bias)
        r1 = h + att
        m = F.linear(F.gelu(F.linear(ln(r1, "ln2", 1e-6), P["fc.weight"], P["fc.bias"])),
                     P["proj.weight"], P["proj.bias"])
        logits = F.linear(ln(r1 + m, "lnf"), P["head.weight"], P["head.bias"])
        loss = F.cross_entropy(logits.reshape(-1, V), y.long().reshape(-1))
        return loss, {"att": att, "head": logits}

    run_both(spec, ids(5), ids(5, seed=3), torch_loss, dtype)


def test_attention_weights_are_kept_and_causal():
    from engine.core.compiler import compile_graph

    program = compile_graph(gpt_block_spec(), dtype="float64")
    program.forward(ids(3), ids(3, seed=3))
    program.backward()
    kernel = program.kernels[program.index["att"]]
    a = kernel.attn
    assert a.shape == (3, 2, T, T)
    np.testing.assert_allclose(a.sum(axis=-1), 1.0)
    assert np.all(a[..., np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] == 0)
    assert kernel.attn_grad.shape == a.shape


def _chain_spec(x_shape, body, edges, out_features):
    nodes = [("x", "Input", {"shape": list(x_shape)}), *body,
             ("f", "Flatten", {}), ("o", "Dense", {"units": 2}),
             ("y", "Target", {"features": 2}), ("loss", "MSELoss", {})]
    return make_spec(nodes, [*edges, f"{body[-1][0]}>f", "f>o", "o>loss.prediction",
                             "y>loss.target"])


def _run_chain(spec, x, fn, dtype, keep):
    def torch_loss(P, xt, yt):
        z = fn(P, xt)
        out = F.linear(z.flatten(1), P["o.weight"], P["o.bias"])
        return F.mse_loss(out, yt), {keep: z}

    run_both(spec, x, batch((2,), len(x), seed=4), torch_loss, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_from_primitives(dtype):
    """Q·Kᵀ with MatMul(transpose_b), a causal Softmax, then ·V: the same as SDPA."""
    spec = _chain_spec((5, 3), [
        ("q", "Dense", {"units": 4}), ("k", "Dense", {"units": 4}), ("v", "Dense", {"units": 4}),
        ("s", "MatMul", {"transpose_b": True}), ("a", "Softmax", {"causal": True}),
        ("av", "MatMul", {})],
        ["x>q", "x>k", "x>v", "q>s.a", "k>s.b", "s>a", "a>av.a", "v>av.b"], 2)

    def fn(P, x):
        q, k, v = (F.linear(x, P[f"{n}.weight"], P[f"{n}.bias"]) for n in "qkv")
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0)

    _run_chain(spec, batch((5, 3), 6), fn, dtype, "av")


UNARY = [
    ("Abs", {}, torch.abs),
    ("Sqrt", {}, lambda h: torch.sqrt(h * h + 0.1)),
    ("Clamp", {"min": -0.3, "max": 0.4}, lambda h: torch.clamp(h, -0.3, 0.4)),
    ("LogSoftmax", {}, lambda h: F.log_softmax(h, dim=-1)),
    ("LogSoftmax", {"axis": 1}, lambda h: F.log_softmax(h, dim=1)),
    ("Softmax", {"axis": 1}, lambda h: F.softmax(h, dim=1)),
    ("Softmax", {"causal": True}, lambda h: F.softmax(
        h.masked_fill(torch.ones(4, 4, dtype=torch.bool).triu(1), -math.inf), dim=-1)),
    ("Transpose", {}, lambda h: h.transpose(1, 2)),
    ("Power", {"exponent": 0.0}, lambda h: torch.pow(torch.relu(h), 0.0)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op,params,fn", UNARY, ids=lambda v: str(v)[:24])
def test_unary_on_a_sequence(op, params, fn, dtype):
    """x (batch, 4, 3) → Dense 4 on the last axis → op → Flatten → Dense 2 → MSE."""
    body = [("h", "Dense", {"units": 4})]
    edges = ["x>h"]
    src = "h"
    if op == "Sqrt":  # keep the input positive: h² + 0.1
        body += [("sq", "Square", {}), ("c", "Constant", {"value": 0.1}), ("p", "Add", {})]
        edges += ["h>sq", "sq>p.a", "c>p.b"]
        src = "p"
    if op == "Power":  # exact zeros reach the power: the gradient must stay 0, not NaN
        body.append(("r", "ReLU", {}))
        edges.append("h>r")
        src = "r"
    body.append(("a", op, params))
    edges.append(f"{src}>a")
    spec = _chain_spec((4, 3), body, edges, 2)

    def run(P, x):
        return fn(F.linear(x, P["h.weight"], P["h.bias"]))

    _run_chain(spec, batch((4, 3), 7) * 1.5, run, dtype, "a")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_with_a_parameter_and_transposes(dtype, ta, tb):
    w_shape = [2, 4] if tb else [4, 2]
    spec = _chain_spec((3, 4) if not ta else (4, 3), [
        ("w", "Parameter", {"shape": w_shape, "value": list(np.linspace(-1, 1, 8))}),
        ("m", "MatMul", {"transpose_a": ta, "transpose_b": tb})], ["x>m.a", "w>m.b"], 2)

    def fn(P, x):
        a = x.transpose(1, 2) if ta else x
        b = P["w.value"].T if tb else P["w.value"]
        return a @ b

    _run_chain(spec, batch((4, 3) if ta else (3, 4), 5), fn, dtype, "m")


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_average_pool(dtype):
    spec = _chain_spec((2, 5, 4), [("c", "Conv2D", {"filters": 3}),
                                   ("g", "GlobalAvgPool2D", {})], ["x>c", "c>g"], 2)

    def fn(P, x):
        return F.adaptive_avg_pool2d(F.conv2d(x, P["c.weight"], P["c.bias"], padding=1),
                                     1).flatten(1)

    _run_chain(spec, batch((2, 5, 4), 4), fn, dtype, "g")


@pytest.mark.parametrize("pad,stride,dilation", [(2, 1, 1), (1, 2, 1), (0, 1, 1), (2, 1, 2),
                                                 (1, 2, 2)])
def test_conv2d_padding_by_number_and_dilation(pad, stride, dilation):
    spec = _chain_spec((2, 5, 6), [("c", "Conv2D", {
        "filters": 3, "kernel": 3, "stride": stride, "padding": "number", "pad": pad,
        "dilation": dilation})], ["x>c"], 2)

    def fn(P, x):
        return F.conv2d(x, P["c.weight"], P["c.bias"], stride=stride, padding=pad,
                        dilation=dilation)

    _run_chain(spec, batch((2, 5, 6), 4), fn, "float64", "c")


def test_conv2d_same_padding_with_dilation():
    spec = _chain_spec((2, 6, 6), [("c", "Conv2D", {"filters": 2, "kernel": 3, "dilation": 2})],
                       ["x>c"], 2)

    def fn(P, x):
        return F.conv2d(x, P["c.weight"], P["c.bias"], padding="same", dilation=2)

    _run_chain(spec, batch((2, 6, 6), 3), fn, "float64", "c")


@pytest.mark.parametrize("groups,filters", [(2, 4), (4, 4), (4, 8)])
def test_conv2d_groups(groups, filters):
    spec = _chain_spec((4, 5, 5), [("c", "Conv2D", {"filters": filters, "kernel": 3,
                                                    "groups": groups})], ["x>c"], 2)

    def fn(P, x):
        return F.conv2d(x, P["c.weight"], P["c.bias"], padding=1, groups=groups)

    _run_chain(spec, batch((4, 5, 5), 3), fn, "float64", "c")


@pytest.mark.parametrize("op,k,s,p", [("MaxPool2D", 3, 2, 1), ("AvgPool2D", 3, 2, 1),
                                      ("AvgPool2D", 2, 2, 1), ("MaxPool2D", 2, 1, 1)])
def test_pool_padding(op, k, s, p):
    spec = _chain_spec((2, 5, 6), [("h", "Conv2D", {"filters": 2}),
                                   ("pl", op, {"size": k, "stride": s, "padding": p})],
                       ["x>h", "h>pl"], 2)
    pool = F.max_pool2d if op == "MaxPool2D" else F.avg_pool2d

    def fn(P, x):
        return pool(F.conv2d(x, P["h.weight"], P["h.bias"], padding=1), k, s, p)

    _run_chain(spec, batch((2, 5, 6), 3), fn, "float64", "pl")
