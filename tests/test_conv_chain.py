"""Conv2D → ReLU (→ 2×2 max-pool) run as one chain of passes (engine.ops.conv_chain): found
only where each node alone reads the one before, and bit-identical to node by node."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core import chunked, jit
from engine.core.compiler import compile_graph
from engine.core.spec import GraphSpec
from engine.ops import conv, conv_jit


def _graph(layers, extra_edges=(), chain_edges=True):
    nodes = [{"id": i, "op": op, "params": p} for i, op, p in layers]
    edges = [{"from": f"{a[0]}.out", "to": f"{b[0]}.in"}
             for a, b in zip(layers, layers[1:])] if chain_edges else []
    nodes += [{"id": "y", "op": "Target", "params": {"features": 1}},
              {"id": "loss", "op": "CrossEntropyLoss"}]
    edges += list(extra_edges) + [{"from": f"{layers[-1][0]}.out", "to": "loss.prediction"},
                                  {"from": "y.out", "to": "loss.target"}]
    return GraphSpec.from_dict({"format": "gradscape-graph", "version": 1,
                                "nodes": nodes, "edges": edges})


def _cnn(image=(2, 8, 8), pool2=None):
    return [("x", "Input", {"shape": list(image)}),
            ("c1", "Conv2D", {"filters": 3, "padding": "same"}), ("r1", "ReLU", {}),
            ("p1", "MaxPool2D", {"size": 2}),
            ("c2", "Conv2D", {"filters": 4, "padding": "same"}), ("r2", "ReLU", {}),
            ("p2", "MaxPool2D", pool2 or {"size": 2}),
            ("f", "Flatten", {}), ("d", "Dense", {"units": 3})]


def _chains(spec):
    program = compile_graph(spec, seed=0)
    return {program.order[i]: c.size for i, c in program._chains.items()}


def test_chains_are_found_where_each_node_alone_reads_the_one_before(monkeypatch):
    assert _chains(_graph(_cnn())) == {"c1": 3, "c2": 3}
    with monkeypatch.context() as m:
        m.setenv("GRADSCAPE_CHAINS", "0")  # the switch bench/cnn_step.py compares with
        assert _chains(_graph(_cnn())) == {}
    # a pool other than 2×2 stride 2 stays a node of its own; the ReLU still joins
    assert _chains(_graph(_cnn(pool2={"size": 3}))) == {"c1": 3, "c2": 2}
    assert _chains(_graph(_cnn(pool2={"size": 2, "stride": 1}))) == {"c1": 3, "c2": 2}
    # no bias row in the products: the convolution never goes image by image
    layers = _cnn()
    layers[1] = ("c1", "Conv2D", {"filters": 3, "padding": "same", "bias": False})
    assert _chains(_graph(layers)) == {"c2": 3}
    # a pool right after the convolution: no ReLU to join
    layers = _cnn()
    layers[2], layers[3] = layers[3], layers[2]
    assert _chains(_graph(layers)) == {"c2": 3}


def _branching(nodes, wires):
    """x → `nodes` wired as `wires` says ("source destination.port"), then the node "add"
    → Flatten → Dense into the loss."""
    layers = [("x", "Input", {"shape": [2, 8, 8]}), *nodes, ("f", "Flatten", {}),
              ("d", "Dense", {"units": 3})]
    edges = [{"from": f"{a}.out", "to": b} for a, b in (w.split() for w in wires)]
    edges += [{"from": "add.out", "to": "f.in"}, {"from": "f.out", "to": "d.in"}]
    return _graph(layers, extra_edges=edges, chain_edges=False)


def test_no_chain_through_an_output_that_two_nodes_read():
    c, r, add = ("c", "Conv2D", {"filters": 3}), ("r", "ReLU", {}), ("add", "Add", {})
    # the convolution's output has two readers
    spec = _branching([c, r, ("r2", "ReLU", {}), add],
                      ["x c.in", "c r.in", "c r2.in", "r add.a", "r2 add.b"])
    assert _chains(spec) == {}
    # the ReLU's output has two readers: the pool stays out
    pools = [("p", "MaxPool2D", {"size": 2}), ("p2", "MaxPool2D", {"size": 2})]
    spec = _branching([c, r, *pools, add],
                      ["x c.in", "c r.in", "r p.in", "r p2.in", "p add.a", "p2 add.b"])
    assert _chains(spec) == {"c": 2}


@pytest.fixture
def by_images(monkeypatch):
    """Every convolution taken image by image, one image per pass, split over 3 threads."""
    monkeypatch.delenv("GRADSCAPE_NUMBA", raising=False)
    monkeypatch.setattr(jit, "MIN_WORK", 0)
    conv_jit.im2col(np.ones((1, 1, 2, 2)), np.empty((1, 1, 4)), 1, 1, 1, 0, 0, 2, 2)
    monkeypatch.setitem(chunked._settings, "ways", 3)
    monkeypatch.setattr(conv, "IMAGES_PER_PASS", 1)
    monkeypatch.setattr(chunked, "MIN_SPLIT_FLOPS", 0)


def _step(spec, dtype, chained: bool, steps: int = 2):
    from engine.training.optim import make_optimizer

    program = compile_graph(spec, seed=0, dtype=dtype)
    if not chained:
        program._chains, program._chain_ends = {}, {}
    opt = make_optimizer("adam", program.theta, program.grad, 1e-2)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, *program.shapes["x"][1:])).astype(dtype)
    y = rng.integers(0, 3, size=(5, 1)).astype(dtype)
    for _ in range(steps):
        program.forward(x, y)
        program.backward()
        opt.step()
    return program


def _assert_same_trace(a, b):
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.grad, b.grad)
    for name, xs, ys in (("value", a.values, b.values), ("node grad", a.node_grads,
                                                          b.node_grads),
                         ("edge grad", a.edge_grads, b.edge_grads)):
        for k, (u, v) in enumerate(zip(xs, ys)):
            assert (u is None) == (v is None), (name, k)
            if u is not None:  # bits, not numbers: −0 and 0 differ, NaN equals NaN
                assert u.dtype == v.dtype and u.shape == v.shape, (name, k)
                assert np.asarray(u).tobytes() == np.asarray(v).tobytes(), (name, k)


def _relu_forwards_of_chained_step(spec, dtype, monkeypatch) -> int:
    """Checks a chained step against one node by node, bit for bit; returns how often the
    ReLU kernels' own forward ran in the chained one (0: inside the convolution's passes)."""
    from engine.ops.activations import ReLUKernel

    reference = _step(spec, dtype, chained=False)
    calls = []
    forward = ReLUKernel.forward
    monkeypatch.setattr(ReLUKernel, "forward", lambda k, x: (calls.append(1), forward(k, x))[1])
    chained = _step(spec, dtype, chained=True)
    _assert_same_trace(chained, reference)
    return len(calls)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("image", [(2, 8, 8), (1, 7, 9)], ids=["even", "odd-sized"])
def test_a_chained_step_is_bit_identical_to_node_by_node(dtype, image, by_images,
                                                         monkeypatch):
    """Every value, node gradient, wire gradient and parameter, with the chains' ReLU and
    pool loops really run inside the convolution's passes (their own forward never runs)."""
    assert _relu_forwards_of_chained_step(_graph(_cnn(image)), dtype, monkeypatch) == 0


def test_a_batch_too_small_to_go_image_by_image_runs_node_by_node(monkeypatch):
    """Small convolutions stay batch-wide (case (d)); the chain then calls each kernel."""
    monkeypatch.setattr(jit, "MIN_WORK", 0)
    # two ReLUs, two steps
    assert _relu_forwards_of_chained_step(_graph(_cnn()), np.float64, monkeypatch) == 4


def test_a_chain_whose_relu_alone_would_take_numpy_runs_node_by_node(by_images, monkeypatch):
    """A large convolution with a small output (one filter): its ReLU and pool on their own
    take the numpy paths, which write −0 where the compiled pool gradient writes 0."""
    layers = _cnn((8, 8, 8))
    layers[1] = ("c1", "Conv2D", {"filters": 1, "padding": "same"})
    # the first convolution's work, 5 images × 64 pixels × 73 rows, is over the bar; its
    # output, 5 × 64 numbers, is not
    monkeypatch.setattr(jit, "MIN_WORK", 1000)
    program = _step(_graph(layers), np.float64, chained=True, steps=1)
    assert program.kernels[program.index["c1"]].images is not None  # went image by image
    assert _relu_forwards_of_chained_step(_graph(layers), np.float64, monkeypatch) == 4


def test_without_helper_threads_a_chain_runs_node_by_node(by_images, monkeypatch):
    """On one thread the whole-batch loops are faster: the GUI's training process on two
    cores keeps one core for the window and so runs its chains node by node."""
    monkeypatch.setitem(chunked._settings, "ways", 1)
    assert _relu_forwards_of_chained_step(_graph(_cnn()), np.float64, monkeypatch) == 4


def test_each_kernel_keeps_what_its_own_backward_needs(by_images):
    """A probe (the Chain Rule panel) calls one kernel's backward alone after a chained
    step: the pool and the ReLU give what the chain put on their wires."""
    program = _step(_graph(_cnn()), np.float64, chained=True, steps=1)
    edge = {(e.src, e.dst): k for k, e in enumerate(program.edges)}
    for c, r, p in (("c1", "r1", "p1"), ("c2", "r2", "p2")):
        pool, relu = program.kernels[program.index[p]], program.kernels[program.index[r]]
        (g_relu_out,) = pool.backward(program.node_grads[program.index[p]])
        np.testing.assert_array_equal(g_relu_out, program.edge_grads[edge[(r, p)]])
        (g_conv_out,) = relu.backward(g_relu_out)
        np.testing.assert_array_equal(g_conv_out, program.edge_grads[edge[(c, r)]])


def test_a_chained_backward_steps_aside_when_numba_is_switched_off(by_images, monkeypatch):
    spec = _graph(_cnn())
    reference = _step(spec, np.float64, chained=True, steps=1)
    program = compile_graph(spec, seed=0, dtype=np.float64)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 2, 8, 8))
    y = rng.integers(0, 3, size=(5, 1)).astype(np.float64)
    program.forward(x, y)
    monkeypatch.setenv("GRADSCAPE_NUMBA", "0")
    program.backward()
    np.testing.assert_array_equal(program.grad, reference.grad)
    for u, v in zip(program.edge_grads, reference.edge_grads):
        np.testing.assert_array_equal(u, v)

