"""A Dense weight is kept transposed in theta (Dense.stored_transposed): every view, file and
direction still speaks of it in its own (units, inputs) shape, row by row."""

import json
import zipfile

import numpy as np
import pytest

from engine.core.compiler import compile_graph
from engine.core.spec import GraphSpec
from engine.data import make_dataset
from engine.files import model_file as mf
from engine.files import safetensors_io as st
from engine.lab.landscape import parameter_direction
from engine.training.trainer import TrainConfig, Trainer
from tests.graphs import make_spec


def net():
    return make_spec(
        [("x", "Input", {"features": 3}), ("d", "Dense", {"units": 4}), ("a", "Tanh", {}),
         ("out", "Dense", {"units": 2}), ("y", "Target", {"features": 2}),
         ("loss", "MSELoss", {})],
        ["x>d", "d>a", "a>out", "out>loss.prediction", "y>loss.target"])


def weight(program, node="d"):
    return next(e for e in program.entries if e.key == f"{node}.weight")


def test_the_weight_is_stored_transposed_and_seen_in_its_own_shape():
    p = compile_graph(net(), dtype="float64")
    e = weight(p)
    assert e.transposed and e.shape == (4, 3)
    w = p.param_value(e)
    assert w.shape == (4, 3) and np.shares_memory(w, p.theta)
    stored = p.theta[e.offset:e.offset + e.size].reshape(3, 4)
    np.testing.assert_array_equal(stored, w.T)
    assert p.kernels[p.index["d"]].w["weight"].T.flags.c_contiguous
    np.testing.assert_array_equal(p.state_dict()["d.weight"], w)
    for i in range(e.size):  # number i, row by row in (4, 3), and where it sits in theta
        assert p.theta[e.position(i)] == w.reshape(-1)[i]


def test_row_major_round_trips_and_orders_each_tensor_row_by_row():
    p = compile_graph(net(), dtype="float64")
    flat = p.row_major(p.theta)
    expected = np.concatenate([p.param_value(e).reshape(-1) for e in p.entries])
    np.testing.assert_array_equal(flat, expected)
    np.testing.assert_array_equal(p.from_row_major(flat), p.theta)


def test_a_seed_gives_the_weights_it_gave_before_the_transposed_layout():
    """Initial values are drawn in each tensor's own shape, so seeds keep their weights
    (the numbers below came from the row-major layout)."""
    p = compile_graph(net(), dtype="float64", seed=11)
    np.testing.assert_allclose(
        p.state_dict()["d.weight"][:2],
        [[0.111198446961, -0.83429382581, -0.02587601472],
         [0.318269371292, -0.240513106306, -1.875603961876]], rtol=0, atol=1e-12)


def test_the_weight_gradient_lands_in_its_own_shape():
    rng = np.random.default_rng(0)
    p = compile_graph(net(), dtype="float64")
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    p.forward(x, y)
    p.backward()
    w1, w2 = p.param_value(weight(p)), p.param_value(weight(p, "out"))
    h = np.tanh(x @ w1.T + p.state_dict()["d.bias"])
    gout = 2 * (h @ w2.T + p.state_dict()["out.bias"] - y) / y.size
    np.testing.assert_allclose(p.param_grad(weight(p, "out")), gout.T @ h, atol=1e-12)
    gh = (gout @ w2) * (1 - h ** 2)
    np.testing.assert_allclose(p.param_grad(weight(p)), gh.T @ x, atol=1e-12)


def test_a_landscape_direction_moves_the_number_it_names():
    p = compile_graph(net(), dtype="float64")
    d = parameter_direction(p, ("d.weight", 5))  # row 1, column 2 of the (4, 3) weight
    moved = np.zeros((4, 3))
    moved[1, 2] = 1.0
    np.testing.assert_array_equal(weight(p).view(d), moved)


def test_a_model_file_keeps_optimizer_state_row_by_row_and_resumes(tmp_path):
    graph = json.loads(net().to_json())
    graph["training"] = {"dataset": "moons", "dataset_params": {"samples": 40},
                         "batch_size": 8, "optimizer": "adam", "lr": 0.05, "epochs": 2}
    for n in graph["nodes"]:
        if n["id"] == "x":
            n["params"] = {"features": 2}
        if n["id"] == "y":
            n["params"] = {"features": 1}
        if n["id"] == "out":
            n["params"] = {"units": 1}
    spec = GraphSpec.from_dict(graph)
    cfg = TrainConfig.from_block(spec.training)
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed)
    data = make_dataset(cfg.dataset, seed=cfg.seed, **cfg.dataset_params)
    train, val = data.split(cfg.validation_split, cfg.seed)
    trainer = Trainer(program, train, cfg, val)
    for _ in range(3):
        trainer.step()
    path = tmp_path / "m.gsmodel"
    mf.save_model(path, spec, program, trainer, data)
    with zipfile.ZipFile(path) as z:
        saved_m = st.loads(z.read("optimizer.safetensors"))[0]["m"]
    e = weight(program)
    m_in_theta = trainer.optimizer.state_arrays()["m"]
    np.testing.assert_array_equal(saved_m[e.offset:e.offset + e.size].reshape(e.shape),
                                  e.view(m_in_theta))
    program2, trainer2 = mf.resume(path)
    np.testing.assert_array_equal(trainer2.optimizer.state_arrays()["m"], m_in_theta)
    for _ in range(4):
        trainer.step()
        trainer2.step()
    assert trainer2.step_losses == trainer.step_losses


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_load_state_dict_writes_through_the_transposed_view(dtype):
    p = compile_graph(net(), dtype=dtype)
    state = {k: np.arange(v.size, dtype=float).reshape(v.shape) for k, v in p.state_dict().items()}
    p.load_state_dict(state)
    np.testing.assert_array_equal(p.param_value(weight(p)), state["d.weight"])
    x = np.ones((1, 3))
    h = np.tanh(x @ state["d.weight"].T + state["d.bias"])
    np.testing.assert_allclose(p.predict(x), h @ state["out.weight"].T + state["out.bias"],
                               rtol=1e-6)
