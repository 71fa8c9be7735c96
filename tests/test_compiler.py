"""Every compile error names its node; deep graphs compile and run without recursion."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.compiler import analyze, compile_graph
from engine.errors import CompileError, DataError
from tests.graphs import make_spec


def mlp(hidden=("h1", "Dense", {"units": 4}), features=2, extra_nodes=(), extra_edges=()):
    """x → hidden → out (Dense 1) → MSELoss ← y."""
    return make_spec(
        [("x", "Input", {"features": features}), hidden, ("out", "Dense", {"units": 1}),
         ("y", "Target", {"features": 1}), ("loss", "MSELoss", {}), *extra_nodes],
        [f"x>{hidden[0]}", f"{hidden[0]}>out", "out>loss.prediction", "y>loss.target",
         *extra_edges])


def errors(spec) -> list[str]:
    with pytest.raises(CompileError) as info:
        compile_graph(spec)
    assert info.value.diagnostics
    return [d.message for d in info.value.diagnostics]


def single(spec, node: str, *needles: str) -> str:
    """The one diagnostic mentioning `node`, which must contain every needle."""
    messages = [m for m in errors(spec) if f"'{node}'" in m]
    assert messages, errors(spec)
    for needle in needles:
        assert any(needle in m for m in messages), (needle, messages)
    return messages[0]


def test_valid_graph_compiles():
    program = compile_graph(mlp())
    assert np.isfinite(program.forward(np.zeros((3, 2)), np.zeros((3, 1))))


def test_unknown_op():
    single(mlp(hidden=("h1", "Dense3D", {})), "h1", "unknown op", "Dense3D")


def test_missing_input():
    spec = mlp(extra_nodes=[("add", "Add", {})], extra_edges=["h1>add.a"])
    single(spec, "add", "'b'", "not connected")


def test_doubly_connected_input():
    spec = mlp(extra_nodes=[("h2", "Dense", {"units": 3})], extra_edges=["h1>h2", "x>h2"])
    single(spec, "h2", "two wires")


def test_cycle():
    spec = make_spec(
        [("x", "Input", {}), ("a", "Add", {}), ("t", "Tanh", {}), ("out", "Dense", {"units": 1}),
         ("y", "Target", {}), ("loss", "MSELoss", {})],
        ["x>a.a", "t>a.b", "a>t", "t>out", "out>loss.prediction", "y>loss.target"])
    messages = errors(spec)
    assert any("'a'" in m and "cycle" in m for m in messages)
    assert any("'t'" in m and "cycle" in m for m in messages)


def test_no_loss():
    spec = make_spec([("x", "Input", {}), ("h", "Dense", {"units": 1})], ["x>h"])
    assert any("no loss" in m for m in errors(spec))
    assert analyze(spec, require_loss=False).ok


def test_no_loss_reachable_from_a_learnable_node():
    spec = make_spec(
        [("x", "Input", {"features": 1}), ("t", "Tanh", {}), ("y", "Target", {}),
         ("loss", "MSELoss", {}), ("h", "Dense", {"units": 1})],
        ["x>t", "t>loss.prediction", "y>loss.target", "x>h"])
    single(spec, "loss", "No loss is reachable")


def test_shape_mismatch_names_both_shapes():
    spec = make_spec(
        [("x", "Input", {"features": 3}), ("a", "Dense", {"units": 4}),
         ("b", "Dense", {"units": 5}), ("add", "Add", {}), ("out", "Dense", {"units": 1}),
         ("y", "Target", {}), ("loss", "MSELoss", {})],
        ["x>a", "x>b", "a>add.a", "b>add.b", "add>out", "out>loss.prediction", "y>loss.target"])
    single(spec, "add", "(batch, 4)", "(batch, 5)")


def test_loss_shape_mismatch_names_both_shapes():
    spec = make_spec(
        [("x", "Input", {"features": 3}), ("out", "Dense", {"units": 2}),
         ("y", "Target", {"features": 3}), ("loss", "MSELoss", {})],
        ["x>out", "out>loss.prediction", "y>loss.target"])
    single(spec, "loss", "(batch, 2)", "(batch, 3)")


@pytest.mark.parametrize("nodes,edges,node,needles", [
    ([("x", "Input", {"shape": [1, 8, 8]}), ("h1", "Dense", {"units": 2})], ["x>h1"], "h1",
     ("(batch, 1, 8, 8)", "Flatten")),
    ([("x", "Input", {"features": 8}), ("h1", "Conv2D", {})], ["x>h1"], "h1", ("(batch, 8)",)),
    ([("x", "Input", {"shape": [1, 2, 2]}), ("h1", "Conv2D", {"padding": "valid"})], ["x>h1"],
     "h1", ("3×3", "2×2")),
    ([("x", "Input", {"shape": [1, 2, 2]}), ("h1", "MaxPool2D", {"size": 3})], ["x>h1"], "h1",
     ("(batch, 1, 2, 2)",)),
    ([("x", "Input", {"features": 10}), ("h1", "Reshape", {"shape": [3, 3]})], ["x>h1"], "h1",
     ("(batch, 10)", "[3, 3]")),
    ([("x", "Input", {"features": 10}), ("h1", "Reshape", {"shape": [-1, 3]})], ["x>h1"], "h1",
     ("(batch, 10)",)),
    ([("x", "Input", {"features": 3}), ("h1", "Concat", {"axis": 0})], ["x>h1.a", "x>h1.b"],
     "h1", ("batch axis",)),
    ([("x", "Input", {"features": 3}), ("c", "Input", {"shape": [2, 3]}), ("h1", "Concat", {})],
     ["x>h1.a", "c>h1.b"], "h1", ("(batch, 3)", "(batch, 2, 3)")),
    ([("x", "Input", {"features": 3}), ("p", "Parameter", {"shape": [2, 3]}),
      ("h1", "Add", {})], ["x>h1.a", "p>h1.b"], "h1", ("(batch, 3)", "(2, 3)")),
    ([("x", "Input", {"features": 1}), ("h1", "Sum", {"axis": "batch"}),
      ("h2", "Sum", {"axis": "batch"})], ["x>h1", "h1>h2"], "h2", ("(1)", "batch")),
    ([("x", "Input", {"shape": [2, 3, 4, 5]}), ("h1", "BatchNorm", {})], ["x>h1"], "h1",
     ("(batch, 2, 3, 4, 5)",)),
])
def test_layer_shape_errors(nodes, edges, node, needles):
    spec = make_spec(nodes + [("out", "Dense", {"units": 1}), ("y", "Target", {}),
                              ("loss", "MSELoss", {})],
                     edges + [f"{nodes[-1][0]}>out", "out>loss.prediction", "y>loss.target"])
    single(spec, node, *needles)


@pytest.mark.parametrize("pred,target,needles", [
    ((None, 3), (None, 2), ("(batch, 3)", "(batch, 2)")),
    ((None, 1), (None, 1), ("at least 2 classes",)),
])
def test_cross_entropy_shape_errors(pred, target, needles):
    spec = make_spec(
        [("x", "Input", {"features": 2}), ("out", "Dense", {"units": pred[1]}),
         ("y", "Target", {"features": target[1]}), ("loss", "CrossEntropyLoss", {})],
        ["x>out", "out>loss.prediction", "y>loss.target"])
    single(spec, "loss", *needles)


def test_cross_entropy_bad_class_index_is_a_data_error():
    spec = make_spec(
        [("x", "Input", {"features": 2}), ("out", "Dense", {"units": 3}),
         ("y", "Target", {"features": 1}), ("loss", "CrossEntropyLoss", {})],
        ["x>out", "out>loss.prediction", "y>loss.target"])
    program = compile_graph(spec)
    x = np.zeros((2, 2))
    with pytest.raises(DataError, match="class index 3"):
        program.forward(x, np.array([[0.0], [3.0]]))
    with pytest.raises(DataError, match="class index 1.5"):
        program.forward(x, np.array([[0.0], [1.5]]))
    with pytest.raises(DataError, match="class index -1"):
        program.forward(x, np.array([[-1.0], [1.0]]))


def test_batchnorm_batch_of_one_is_a_data_error():
    program = compile_graph(mlp(hidden=("h1", "BatchNorm", {})))
    with pytest.raises(DataError, match="batch size"):
        program.forward(np.zeros((1, 2)), np.zeros((1, 1)))
    assert program.predict(np.zeros((1, 2))).shape == (1, 1)  # evaluation mode is fine


@pytest.mark.parametrize("params,needles", [
    ({"units": 0}, ("'units'", "at least 1")),
    ({"units": 2.5}, ("'units'", "whole number")),
    ({"units": 4, "init": "magic"}, ("'init'", "he")),
])
def test_param_out_of_range(params, needles):
    single(mlp(hidden=("h1", "Dense", params)), "h1", *needles)


@pytest.mark.parametrize("op,params,needle", [
    ("Dropout", {"p": 1.0}, "'p'"),
    ("Dropout", {"p": -0.1}, "'p'"),
    ("LeakyReLU", {"slope": -1.0}, "'slope'"),
    ("BatchNorm", {"momentum": 2.0}, "'momentum'"),
    ("GELU", {"approximate": "fast"}, "'approximate'"),
    ("Reshape", {"shape": [-1, -1]}, "once"),
    ("Reshape", {"shape": [0, 2]}, "'shape'"),
])
def test_param_out_of_range_for_new_ops(op, params, needle):
    single(mlp(hidden=("h1", op, params)), "h1", needle)


def test_unknown_param():
    single(mlp(hidden=("h1", "Dense", {"units": 4, "neurons": 3})), "h1", "no param 'neurons'",
           "units")


def test_layer_too_big_for_memory():
    spec = mlp(hidden=("h1", "Dense", {"units": 1_000_000}), features=1_000)
    single(spec, "h1", "weight", "GiB")


def test_graph_too_big_in_total_is_refused_before_allocating():
    # Five layers of 40M weights each: every tensor is under the per-tensor cap, the sum is
    # above the total cap, so compiling must refuse rather than allocate 800 MB.
    nodes = [("x", "Input", {"features": 4_000})]
    edges = []
    prev = "x"
    for i in range(5):
        nodes.append((f"h{i}", "Dense", {"units": 10_000 if i % 2 == 0 else 4_000}))
        edges.append(f"{prev}>h{i}")
        prev = f"h{i}"
    nodes += [("out", "Dense", {"units": 1}), ("y", "Target", {"features": 1}),
              ("loss", "MSELoss", {})]
    edges += [f"{prev}>out", "out>loss.prediction", "y>loss.target"]
    messages = errors(make_spec(nodes, edges))
    assert any("learnable numbers in all" in m for m in messages), messages
    assert not any("GiB" in m for m in messages), messages


def test_5000_node_chain_compiles_and_runs():
    n = 5000
    nodes = [("x", "Input", {"features": 3}), ("th", "Parameter", {"value": 0.5}),
             ("m", "Multiply", {})]
    edges = ["x>m.a", "th>m.b"]
    prev = "m"
    for i in range(n):
        nodes.append((f"i{i}", "Identity", {}))
        edges.append(f"{prev}>i{i}")
        prev = f"i{i}"
    nodes += [("y", "Target", {"features": 3}), ("loss", "MSELoss", {})]
    edges += [f"{prev}>loss.prediction", "y>loss.target"]
    program = compile_graph(make_spec(nodes, edges), dtype="float64")
    x = np.ones((2, 3))
    loss = program.forward(x, np.zeros((2, 3)))
    assert loss == pytest.approx(0.25)
    program.backward()
    # L = mean((θx)²) → dL/dθ = 2θ·mean(x²) = 1
    assert program.grad[0] == pytest.approx(1.0)
