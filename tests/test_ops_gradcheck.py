"""Every registered op is gradient-checked in float64 against central differences.

CASES maps op id → small graphs using that op; an op without cases fails
test_op_gradients, so a new op cannot land without a gradient check.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.compiler import analyze, compile_graph
from engine.core.registry import all_ops
from engine.lab.gradcheck import gradcheck
from tests.graphs import make_spec

BATCH = 3




def case(x_shape, nodes, edges, out="out", *, loss="MSELoss", loss_params=None, y=None,
         positive=False, seed=0, head=True, **check):
    """Input x of per-sample shape x_shape, the body, then (unless head=False) a Flatten if
    needed and a loss against a random Target. Returns (spec, x, y, gradcheck kwargs)."""
    rng = np.random.default_rng(seed)
    nodes = [("x", "Input", {"shape": list(x_shape)}), *nodes]
    edges = list(edges)
    if positive:
        x = rng.uniform(0.5, 2.0, size=(BATCH, *x_shape))
    else:
        x = rng.normal(size=(BATCH, *x_shape))
    if head:
        analysis = analyze(make_spec(nodes, edges), require_loss=False)
        assert analysis.ok, [d.message for d in analysis.diagnostics]
        shapes = analysis.shapes
        shape = shapes[out]
        if not shape or shape[0] is not None:  # unbatched: multiply with a batched Dense
            k = shape[-1] if shape else 1
            nodes += [("xf", "Flatten", {}), ("bd", "Dense", {"units": k}),
                      ("bm", "Multiply", {})]
            edges += ["x>xf", "xf>bd", f"{out}>bm.a", "bd>bm.b"]
            out, shape = "bm", (None, k)
        if len(shape) != 2:
            nodes.append(("flat", "Flatten", {}))
            edges.append(f"{out}>flat")
            out = "flat"
            shape = (None, int(np.prod([d for d in shape[1:]])))
        nodes += [("t", "Target", {"features": shape[1]}), ("loss", loss, loss_params or {})]
        edges += [f"{out}>loss.prediction", "t>loss.target"]
        if y is None:
            y = rng.normal(size=(BATCH, shape[1]))
    return make_spec(nodes, edges), x, y, check


def dense_then(op, params=None, units=5, features=4, **kw):
    """x (batch, features) → Dense(units) → op → head."""
    return case((features,), [("d", "Dense", {"units": units}), ("out", op, params or {})],
                ["x>d", "d>out"], **kw)


def scaled(op, params, x_shape, **kw):
    """x · θ (scalar Parameter) → op → head: keeps x's shape, adds a learnable."""
    return case(x_shape, [("th", "Parameter", {"value": 1.3}), ("s", "Multiply", {}),
                          ("out", op, params)],
                ["x>s.a", "th>s.b", "s>out"], **kw)


def binary(op):
    """Broadcasting variants of a binary op; b stays positive (Exp) so Divide is safe."""
    cases = []
    for name, b_nodes, b_edges in [
        ("same", [("bd", "Dense", {"units": 8}), ("b", "Exp", {})], ["x>bd", "bd>b"]),
        ("col", [("bd", "Dense", {"units": 1}), ("b", "Exp", {})], ["x>bd", "bd>b"]),
        ("scalar", [("b", "Parameter", {"value": 0.7})], []),
        ("vector", [("b", "Parameter", {"shape": [8], "value": [0.5, 1, 1.5, 2, .6, .7, .8, .9]})],
         []),
    ]:
        cases.append(case((3,), [("a", "Dense", {"units": 8}), *b_nodes, ("out", op, {})],
                          ["x>a", *b_edges, "a>out.a", "b>out.b"]))
        if name in ("col", "scalar"):  # the small side first
            cases.append(case((3,), [("a", "Dense", {"units": 8}), *b_nodes, ("out", op, {})],
                              ["x>a", *b_edges, "b>out.a", "a>out.b"],
                              seed=1) if op != "Divide" else
                         case((3,), [("a", "Dense", {"units": 8}), ("ea", "Exp", {}), *b_nodes,
                                     ("out", op, {})],
                              ["x>a", "a>ea", *b_edges, "b>out.a", "ea>out.b"], seed=1))
    # images (batch, 2, 3, 4) with a per-feature Parameter of shape (4,)
    cases.append(case((2, 3, 4), [("th", "Parameter", {"shape": [4], "value": [1.5, .5, 2, 1]}),
                                  ("out", op, {})], ["x>out.a", "th>out.b"]))
    return cases


def conv(params, hw=(6, 6), channels=2):
    return case((channels, *hw), [("out", "Conv2D", {"filters": 3, **params})], ["x>out"])


def loss_case(loss, params=None, pred="Dense", target_features=3, y=None, learn_target=False,
              seed=0):
    rng = np.random.default_rng(seed + 10)
    nodes = [("p", "Dense", {"units": 3})]
    edges = ["x>p"]
    src = "p"
    if pred != "Dense":
        nodes.append(("pa", pred, {}))
        edges.append("p>pa")
        src = "pa"
    if learn_target:  # the target is computed, so dL/dt is needed too
        nodes += [("td", "Dense", {"units": 3}), ("t", "Sigmoid", {})]
        edges += ["x>td", "td>t"]
        y = np.zeros((BATCH, 1))  # no Target node, but forward needs targets to run the loss
    else:
        nodes.append(("t", "Target", {"features": target_features}))
        if y is None:
            y = rng.normal(size=(BATCH, target_features))
    nodes.append(("loss", loss, params or {}))
    edges += [f"{src}>loss.prediction", "t>loss.target"]
    return case((4,), nodes, edges, head=False, y=y, seed=seed)


def ids_case(t, vocab, nodes, edges, seed=0, **kw):
    """Input of `t` whole-number ids per sample (no input gradient: ids are not differentiable)."""
    spec, _, y, check = case((t,), nodes, edges, seed=seed, inputs=False, **kw)
    x = np.random.default_rng(seed).integers(0, vocab, size=(BATCH, t)).astype(float)
    return spec, x, y, check


def seq(op, params=None, t=4, d=6, **kw):
    """x (batch, t, 3) → Dense(d) on the last axis → op → head."""
    return case((t, 3), [("d", "Dense", {"units": d}), ("out", op, params or {})],
                ["x>d", "d>out"], **kw)


def gpt_case(seed=0):
    """A one-block GPT: Embedding + positions → LayerNorm → attention → residual → MLP → head,
    with the (batch, T, vocab) cross-entropy against (batch, T) next ids."""
    t, v = 5, 7
    nodes = [("emb", "Embedding", {"size": v, "dim": 8}),
             ("pos", "Parameter", {"shape": [t, 8], "value": 0.1}), ("xp", "Add", {}),
             ("ln1", "LayerNorm", {}), ("att", "MultiHeadAttention", {"heads": 2}),
             ("r1", "Add", {}), ("ln2", "LayerNorm", {}), ("fc", "Dense", {"units": 12}),
             ("act", "GELU", {}), ("proj", "Dense", {"units": 8}), ("r2", "Add", {}),
             ("head", "Dense", {"units": v}), ("t", "Target", {"features": t}),
             ("loss", "CrossEntropyLoss", {})]
    edges = ["x>emb", "emb>xp.a", "pos>xp.b", "xp>ln1", "ln1>att", "xp>r1.a", "att>r1.b",
             "r1>ln2", "ln2>fc", "fc>act", "act>proj", "r1>r2.a", "proj>r2.b", "r2>head",
             "head>loss.prediction", "t>loss.target"]
    rng = np.random.default_rng(seed)
    y = rng.integers(0, v, size=(BATCH, t)).astype(float)
    return ids_case(t, v, nodes, edges, seed=seed, head=False, y=y)


def attention_by_hand(causal=True):
    """Single-head attention from the primitives: softmax(Q·Kᵀ) (causal) · V."""
    nodes = [("q", "Dense", {"units": 4}), ("k", "Dense", {"units": 4}),
             ("v", "Dense", {"units": 4}), ("s", "MatMul", {"transpose_b": True}),
             ("a", "Softmax", {"causal": causal}), ("out", "MatMul", {})]
    edges = ["x>q", "x>k", "x>v", "q>s.a", "k>s.b", "s>a", "a>out.a", "v>out.b"]
    return case((5, 3), nodes, edges)


def seq_ce_case(index):
    """(batch, 4, 5) logits against (batch, 4) class indices or (batch, 4, 5) probabilities."""
    rng = np.random.default_rng(5)
    if index:
        target, y = ("t", "Target", {"features": 4}), rng.integers(0, 5, (BATCH, 4)) * 1.0
        edges = ["t>loss.target"]
    else:
        target = ("t", "Target", {"features": 20})
        y = probs(rng, BATCH * 4, 5).reshape(BATCH, 20)
        edges = ["t>tr", "tr>loss.target"]
    nodes = [("p", "Dense", {"units": 5}), target, ("loss", "CrossEntropyLoss", {})]
    if not index:
        nodes.append(("tr", "Reshape", {"shape": [4, 5]}))
    return case((4, 3), nodes, ["x>p", "p>loss.prediction", *edges], head=False, y=y)


def probs(rng, n, c):
    p = rng.uniform(0.1, 1.0, size=(n, c))
    return p / p.sum(axis=1, keepdims=True)


_rng = np.random.default_rng(42)

CASES = {
    "Input": [
        dense_then("Tanh"),
        case((2, 3, 3), [("f", "Flatten", {}), ("out", "Dense", {"units": 2})], ["x>f", "f>out"]),
    ],
    "Target": [dense_then("Identity")],
    "Parameter": [
        case((4,), [("th", "Parameter", {"value": 0.3}), ("a", "Add", {}), ("out", "Tanh", {})],
             ["x>a.a", "th>a.b", "a>out"]),
        case((3, 4), [("th", "Parameter", {"shape": [4], "value": [1, 2, 3, 4]}),
                      ("out", "Multiply", {})], ["x>out.a", "th>out.b"]),
        case((2, 3), [("th", "Parameter", {"shape": [2, 3], "value": 0.5}),
                      ("out", "Multiply", {})], ["th>out.a", "x>out.b"]),
        case((2,), [("out", "Parameter", {"shape": [2], "value": [0.1, -0.2]})], []),
    ],
    "Constant": [
        case((4,), [("c", "Constant", {"shape": [4], "value": [1, -1, 2, 0.5]}),
                    ("a", "Multiply", {}), ("out", "Dense", {"units": 2})],
             ["x>a.a", "c>a.b", "a>out"]),
    ],
    "Dense": [
        dense_then("Identity", units=3),
        seq("Identity"),
        case((4, 3), [("out", "Dense", {"units": 2, "bias": False})], ["x>out"]),
        case((5,), [("out", "Dense", {"units": 2, "bias": False, "init": "xavier"})], ["x>out"]),
        case((1,), [("out", "Dense", {"units": 4, "init": "normal"})], ["x>out"]),
    ],
    "Flatten": [
        case((2, 3, 4), [("th", "Parameter", {"value": 1.5}), ("m", "Multiply", {}),
                         ("out", "Flatten", {})], ["x>m.a", "th>m.b", "m>out"]),
        dense_then("Flatten"),
    ],
    "Reshape": [
        case((12,), [("d", "Dense", {"units": 12}), ("r", "Reshape", {"shape": [3, 4]}),
                     ("out", "Softmax", {})], ["x>d", "d>r", "r>out"]),
        dense_then("Reshape", {"shape": [-1, 2]}, units=6),
        scaled("Reshape", {"shape": [12]}, (2, 2, 3)),
    ],
    "Dropout": [
        dense_then("Dropout", {"p": 0.5}, units=8),
        dense_then("Dropout", {"p": 0.0}),
        dense_then("Dropout", {"p": 0.3}, training=False),
    ],
    "Conv2D": [
        conv({"kernel": 3}),
        conv({"kernel": 3, "stride": 2}, hw=(7, 5)),
        conv({"kernel": 2}),
        conv({"kernel": 3, "stride": 2, "padding": "valid"}, hw=(7, 7)),
        conv({"kernel": 1, "bias": False}, channels=3),
        conv({"kernel": 4, "stride": 3, "init": "xavier"}, hw=(9, 8)),
        conv({"kernel": 3, "padding": "number", "pad": 2}, hw=(5, 4)),
        conv({"kernel": 3, "stride": 2, "padding": "number", "pad": 1}, hw=(6, 5)),
        conv({"kernel": 3, "dilation": 2}, hw=(7, 6)),
        case((4, 5, 5), [("out", "Conv2D", {"filters": 6, "groups": 2})], ["x>out"]),
        case((3, 5, 4), [("out", "Conv2D", {"filters": 3, "groups": 3, "dilation": 2})],
             ["x>out"]),
        conv({"kernel": 2, "dilation": 2, "stride": 2, "padding": "valid"}, hw=(7, 6)),
    ],
    "MaxPool2D": [
        scaled("MaxPool2D", {}, (2, 6, 6)),
        scaled("MaxPool2D", {"size": 3, "stride": 2}, (2, 7, 7)),
        scaled("MaxPool2D", {"size": 2, "stride": 1}, (1, 5, 4)),
        scaled("MaxPool2D", {"size": 3, "stride": 2, "padding": 1}, (2, 5, 6)),
    ],
    "AvgPool2D": [
        scaled("AvgPool2D", {}, (2, 6, 6)),
        scaled("AvgPool2D", {"size": 3, "stride": 2}, (2, 7, 7)),
        scaled("AvgPool2D", {"size": 2, "stride": 1}, (1, 5, 4)),
        scaled("AvgPool2D", {"size": 2}, (1, 5, 5)),
        scaled("AvgPool2D", {"size": 3, "stride": 2, "padding": 1}, (2, 5, 6)),
        scaled("AvgPool2D", {"size": 2, "padding": 1}, (1, 4, 4)),
    ],
    "BatchNorm": [
        dense_then("BatchNorm", units=4),
        case((2, 4, 4), [("c", "Conv2D", {"filters": 3}), ("out", "BatchNorm", {"momentum": 0.3})],
             ["x>c", "c>out"]),
        dense_then("BatchNorm", units=4, training=False),
        case((2, 4, 4), [("c", "Conv2D", {"filters": 3}), ("out", "BatchNorm", {})],
             ["x>c", "c>out"], training=False),
    ],
    "Tanh": [dense_then("Tanh")],
    "ReLU": [dense_then("ReLU")],
    "Sigmoid": [dense_then("Sigmoid")],
    "LeakyReLU": [dense_then("LeakyReLU"), dense_then("LeakyReLU", {"slope": 0.2})],
    "ELU": [dense_then("ELU"), dense_then("ELU", {"alpha": 0.5})],
    "GELU": [dense_then("GELU"), dense_then("GELU", {"approximate": "tanh"})],
    "SiLU": [dense_then("SiLU")],
    "Softmax": [
        dense_then("Softmax"),
        seq("Softmax", {"axis": 1}),
        attention_by_hand(causal=True),
        case((4, 4), [("d", "Dense", {"units": 4}), ("out", "Softmax", {"causal": True})],
             ["x>d", "d>out"]),
        case((6,), [("d", "Dense", {"units": 6}), ("r", "Reshape", {"shape": [2, 3]}),
                    ("out", "Softmax", {})], ["x>d", "d>r", "r>out"]),
    ],
    "Softplus": [dense_then("Softplus"), dense_then("Softplus", {"beta": 2.0, "threshold": 1.0})],
    "Identity": [dense_then("Identity")],
    "Add": binary("Add"),
    "Subtract": binary("Subtract"),
    "Multiply": binary("Multiply"),
    "Divide": binary("Divide"),
    "Power": [
        dense_then("Power", {"exponent": 3.0}),
        dense_then("Power", {"exponent": 2}),
        scaled("Power", {"exponent": 0.5}, (4,), positive=True),
        scaled("Power", {"exponent": -1.5}, (4,), positive=True),
        dense_then("Power", {"exponent": 0}),
    ],
    "Square": [dense_then("Square")],
    "Exp": [dense_then("Exp")],
    "Log": [scaled("Log", {}, (4,), positive=True),
            case((4,), [("d", "Dense", {"units": 3}), ("s", "Sigmoid", {}), ("out", "Log", {})],
                 ["x>d", "d>s", "s>out"])],
    "Concat": [
        case((4,), [("a", "Dense", {"units": 3}), ("b", "Dense", {"units": 2}),
                    ("out", "Concat", {})], ["x>a", "x>b", "a>out.a", "b>out.b"]),
        case((4,), [("a", "Dense", {"units": 3}), ("b", "Dense", {"units": 2}),
                    ("c", "Tanh", {}), ("out", "Concat", {})],
             ["x>a", "x>b", "a>c", "a>out.a", "b>out.b", "c>out.c", "x>out.d"]),
        case((2, 4, 4), [("c", "Conv2D", {"filters": 3}), ("out", "Concat", {"axis": 1})],
             ["x>c", "c>out.a", "x>out.b"]),
        case((4,), [("a", "Dense", {"units": 3}), ("out", "Concat", {})],
             ["x>a", "a>out.a", "a>out.b"]),  # the same tensor twice (fan-out)
    ],
    "Sum": [
        dense_then("Sum", {"axis": "all"}),
        dense_then("Sum", {"axis": "features"}),
        dense_then("Sum", {"axis": "features", "keepdims": True}),
        dense_then("Sum", {"axis": "batch"}),
        dense_then("Sum", {"axis": "batch", "keepdims": True}),
        case((2, 4), [("th", "Parameter", {"shape": [2, 3], "value": [1, 2, 3, 4, 5, 6]}),
                      ("s", "Sum", {"axis": "features", "keepdims": True}),
                      ("out", "Multiply", {})], ["th>s", "s>out.a", "x>out.b"]),
    ],
    "Mean": [
        dense_then("Mean", {"axis": "all"}),
        dense_then("Mean", {"axis": "all", "keepdims": True}),
        dense_then("Mean", {"axis": "features"}),
        dense_then("Mean", {"axis": "batch"}),
        scaled("Mean", {"axis": "features"}, (2, 3)),
    ],
    "Embedding": [
        ids_case(4, 6, [("out", "Embedding", {"size": 6, "dim": 3})], ["x>out"]),
        gpt_case(),
    ],
    "LayerNorm": [dense_then("LayerNorm", units=5), seq("LayerNorm"),
                  seq("LayerNorm", {"affine": False, "eps": 1e-3})],
    "MultiHeadAttention": [
        seq("MultiHeadAttention", {"heads": 2}),
        seq("MultiHeadAttention", {"heads": 3, "causal": False}),
        seq("MultiHeadAttention", {"heads": 1, "bias": False}, t=3, d=4),
        gpt_case(seed=1),
    ],
    "MatMul": [
        attention_by_hand(),
        case((3, 4), [("w", "Parameter", {"shape": [4, 2], "value": [1, 2, 3, 4, -1, .5, 2, 1]}),
                      ("out", "MatMul", {})], ["x>out.a", "w>out.b"]),
        case((4, 3), [("w", "Parameter", {"shape": [2, 4], "value": [1, 2, 3, 4, -1, .5, 2, 1]}),
                      ("out", "MatMul", {"transpose_a": True, "transpose_b": True})],
             ["x>out.a", "w>out.b"]),
        case((3, 4), [("d", "Dense", {"units": 4}), ("out", "MatMul", {"transpose_a": True})],
             ["x>d", "x>out.a", "d>out.b"]),
    ],
    "Transpose": [
        seq("Transpose"),
        case((2, 3, 4), [("th", "Parameter", {"value": 1.5}), ("m", "Multiply", {}),
                         ("out", "Transpose", {"axes": [3, 1, 2]})], ["x>m.a", "th>m.b", "m>out"]),
        case((2, 3), [("th", "Parameter", {"shape": [3, 2], "value": [1, 2, 3, 4, 5, 6]}),
                      ("tt", "Transpose", {}), ("out", "Multiply", {})],
             ["th>tt", "tt>out.a", "x>out.b"]),
    ],
    "LogSoftmax": [dense_then("LogSoftmax"), seq("LogSoftmax", {"axis": 1})],
    "Abs": [dense_then("Abs")],
    "Sqrt": [scaled("Sqrt", {}, (4,), positive=True)],
    "Clamp": [dense_then("Clamp", {"min": -0.5, "max": 0.7}), dense_then("Clamp")],
    "GlobalAvgPool2D": [scaled("GlobalAvgPool2D", {}, (2, 3, 4)),
                        case((2, 4, 4), [("c", "Conv2D", {"filters": 3}),
                                         ("out", "GlobalAvgPool2D", {})], ["x>c", "c>out"])],
    "MSELoss": [loss_case("MSELoss"), loss_case("MSELoss", {"reduction": "sum"}),
                loss_case("MSELoss", learn_target=True)],
    "MAELoss": [loss_case("MAELoss"), loss_case("MAELoss", {"reduction": "sum"}),
                loss_case("MAELoss", learn_target=True)],
    "HuberLoss": [loss_case("HuberLoss"), loss_case("HuberLoss", {"delta": 0.5}),
                  loss_case("HuberLoss", {"delta": 0.3, "reduction": "sum"}, learn_target=True)],
    "BCELoss": [
        loss_case("BCELoss", pred="Sigmoid", y=_rng.uniform(size=(BATCH, 3))),
        loss_case("BCELoss", {"from_logits": True}, y=_rng.uniform(size=(BATCH, 3))),
        loss_case("BCELoss", {"reduction": "sum"}, pred="Sigmoid", learn_target=True),
        loss_case("BCELoss", {"from_logits": True}, learn_target=True),
    ],
    "CrossEntropyLoss": [
        loss_case("CrossEntropyLoss", target_features=1, y=np.array([[0.0], [2.0], [1.0]])),
        loss_case("CrossEntropyLoss", {"reduction": "sum"}, target_features=1,
                  y=np.array([[2.0], [2.0], [0.0]])),
        loss_case("CrossEntropyLoss", y=probs(_rng, BATCH, 3)),
        loss_case("CrossEntropyLoss", y=np.eye(3)[[1, 0, 2]]),
        loss_case("CrossEntropyLoss", learn_target=True),
        seq_ce_case(index=True),
        seq_ce_case(index=False),
        case((4,), [("p", "Dense", {"units": 3}), ("t", "Target", {"features": 1}),
                    ("r", "Reshape", {"shape": []}), ("loss", "CrossEntropyLoss", {})],
             ["x>p", "t>r", "p>loss.prediction", "r>loss.target"], head=False,
             y=np.array([[1.0], [0.0], [2.0]])),
    ],
}


def _check(spec, x, y, kw):
    report = gradcheck(spec, x, y, **{"inputs": True, **kw})
    assert report.rows
    assert report.passed, "\n" + report.table()
    return report


@pytest.mark.parametrize("op_id", [op.id for op in all_ops()])
def test_op_gradients(op_id):
    cases = CASES.get(op_id)
    assert cases, f"op {op_id} has no gradient-check case in CASES"
    for spec, x, y, kw in cases:
        assert any(n.op == op_id for n in spec.nodes)
        _check(spec, x, y, kw)


@pytest.mark.parametrize("op_id", sorted(CASES))
def test_float32_kept_and_nothing_modified_in_place(op_id):
    """Kernels keep float32, and backward never writes into arrays forward stored."""
    for spec, x, y, kw in CASES[op_id]:
        program = compile_graph(spec, dtype="float32", input_grads=True)
        program.set_training(kw.get("training", True))
        program.forward(x, y)
        before = [None if v is None else v.copy() for v in program.values]
        program.backward()
        for node_id, v, b in zip(program.order, program.values, before):
            assert v is not None
            assert v.dtype == np.float32, (node_id, v.dtype)
            np.testing.assert_array_equal(v, b, err_msg=node_id)
        for node_id, g in zip(program.order, program.node_grads):
            if g is not None:
                assert g.dtype == np.float32, (node_id, g.dtype)
        for k, g in enumerate(program.edge_grads):
            if g is not None:
                assert g.dtype == np.float32, (program.edges[k].key, g.dtype)
        assert program.grad.dtype == np.float32
        assert np.isfinite(program.grad).all()


@pytest.mark.parametrize("op_id", sorted(CASES))
def test_backward_assigns_every_parameter_gradient(op_id):
    """Backward does not zero the gradient buffer first (kernels assign their parameters'
    gradients): whatever the buffer held before, the result is the same."""
    for spec, x, y, kw in CASES[op_id]:
        plain, poisoned = (compile_graph(spec, dtype="float64", input_grads=True)
                           for _ in range(2))
        for program in (plain, poisoned):  # the same random streams (Dropout) in both
            program.set_training(kw.get("training", True))
            program.forward(x, y)
            program.backward()
        poisoned.grad.fill(np.nan)
        for program in (plain, poisoned):
            program.forward(x, y)
            program.backward()
        np.testing.assert_array_equal(poisoned.grad, plain.grad)


def test_parameters_off_the_loss_path_get_zero_gradients():
    """A node whose backward does not run (it does not reach the loss) has zero gradients,
    even if the buffer held others."""
    spec, x, y, _ = case((4,), [("out", "Dense", {"units": 3}), ("side", "Dense", {"units": 2})],
                         ["x>out", "x>side"])
    program = compile_graph(spec, dtype="float64")
    program.grad.fill(7.0)
    program.forward(x, y)
    program.backward()
    side = [e for e in program.entries if e.node == "side"]
    assert side
    for e in side:
        assert not program.grad[e.offset:e.offset + e.size].any()
    assert program.grad[[e.offset for e in program.entries if e.node == "out"]].all()


def test_fan_out_into_several_inputs():
    spec, x, y, kw = case((4,), [
        ("h", "Dense", {"units": 5}), ("a1", "Tanh", {}), ("a2", "Sigmoid", {}),
        ("s", "Add", {}), ("m", "Multiply", {}), ("out", "Add", {}),
    ], ["x>h", "h>a1", "h>a2", "a1>s.a", "a2>s.b", "h>m.a", "h>m.b", "s>out.a", "m>out.b"])
    _check(spec, x, y, kw)


def test_parameter_used_twice_and_in_loss_target():
    spec, x, y, kw = case((4,), [
        ("th", "Parameter", {"value": 0.4}), ("a", "Multiply", {}), ("b", "Add", {}),
        ("out", "Tanh", {}),
    ], ["x>a.a", "th>a.b", "a>b.a", "th>b.b", "b>out"])
    _check(spec, x, y, kw)


def test_gradcheck_detects_a_wrong_gradient(monkeypatch):
    from engine.ops import activations

    monkeypatch.setattr(activations.TanhKernel, "backward", lambda self, gy: (gy * 1.1,))
    spec, x, y, _ = dense_then("Tanh")
    report = gradcheck(spec, x, y)
    assert not report.passed
    assert not report.worst.passed
    assert "FAIL" in report.table()


def test_gradcheck_subset_and_restores_state():
    spec, x, y, _ = case((2, 6, 6), [("c", "Conv2D", {"filters": 4}), ("bn", "BatchNorm", {}),
                                     ("out", "Dropout", {"p": 0.5})], ["x>c", "c>bn", "bn>out"])
    program = compile_graph(spec, dtype="float64", input_grads=True)
    theta = program.theta.copy()
    buffers = {k: v.copy() for k, v in program.buffers.items()}
    report = gradcheck(program, x, y, inputs=True, max_entries=10)
    assert report.passed, report.table()
    assert all(r.checked <= 10 for r in report.rows)
    assert any(r.checked < r.size for r in report.rows)
    np.testing.assert_array_equal(program.theta, theta)
    for k, v in buffers.items():
        np.testing.assert_array_equal(program.buffers[k], v)
