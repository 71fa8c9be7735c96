"""Named reliability bugs: each input ends in a documented error with a sentence, not a
traceback (or a silent wrong answer)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.cli.main import main
from engine.core.compiler import analyze, compile_graph
from engine.core.spec import GraphSpec, atomic_write_bytes, load_graph
from engine.data import load_csv, make_dataset
from engine.errors import (
    DataError,
    FileFormatError,
    GradscapeError,
    MemoryLimitError,
    TrainingDiverged,
)
from engine.files import model_file as mf
from engine.files import safetensors_io as st
from engine.training import trainer as trainer_module
from engine.training.trainer import TrainConfig, Trainer
from tests.hostile import csv_model, members, with_member

DEEP = "[" * 100_000 + "]" * 100_000
EXAMPLES = Path(__file__).resolve().parents[1] / "resources" / "examples"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return csv_model(tmp_path_factory.mktemp("model"))


def _predict(capsys, model_path, csv_path) -> tuple[int, str]:
    code = main(["predict", str(model_path), "--csv", str(csv_path)])
    captured = capsys.readouterr()
    _predict.out = captured.out
    return code, captured.err


# -- preprocessing.json: the seven sites the fuzzer found --------------------------------

@pytest.mark.parametrize("change", [
    {"preprocessing": {"mean": []}},
    {"preprocessing": {"mean": {}}},
    {"preprocessing": {"scale": None}},
    {"preprocessing": {"input_shape": 1}},
    {"preprocessing": {"input_shape": ":"}},
    {"class_names": True},
    {"task": None, "target_names": 1},
    {"preprocessing": {"std": [0, 1, 1]}},
    {"preprocessing": {"feature_indices": [0, 1, 99]}},
])
def test_altered_preprocessing_is_refused_with_a_sentence(model, tmp_path, capsys, change):
    model_path, csv_path = model
    pp = json.loads(members(model_path)["preprocessing.json"])
    for key, value in change.items():
        if key == "preprocessing":
            pp["preprocessing"].update(value)
        else:
            pp[key] = value
    bad = tmp_path / "bad.gsmodel"
    bad.write_bytes(with_member(model_path, "preprocessing.json", json.dumps(pp).encode()))
    with pytest.raises(FileFormatError, match="preprocessing.json is damaged"):
        mf.load_model(bad)
    code, err = _predict(capsys, bad, csv_path)
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err


def test_unaltered_model_still_predicts(model, capsys):
    code, _ = _predict(capsys, *model)
    assert code == 0
    out = _predict.out
    assert len(out.splitlines()) == 41 and out.splitlines()[0] == "class,label,prob_no,prob_yes"


# -- deep nesting ---------------------------------------------------------------------------

def test_deep_json_graph_is_a_sentence(tmp_path, capsys):
    path = tmp_path / "deep.json"
    path.write_text('{"format": "gradscape-graph", "version": 1, "training": ' + DEEP + "}")
    with pytest.raises(FileFormatError, match="nests more than 64 levels"):
        load_graph(path)
    assert main(["trace", str(path)]) == 2
    assert "nests more than" in capsys.readouterr().err


def test_deep_json_inside_a_model_names_the_nesting(model, tmp_path):
    bad = tmp_path / "deep.gsmodel"
    bad.write_bytes(with_member(model[0], "graph.json", DEEP.encode()))
    with pytest.raises(FileFormatError) as info:
        mf.load_model(bad)
    assert "RecursionError" not in str(info.value) and "nests more than" in str(info.value)


def test_nan_literals_in_a_graph_are_refused():
    with pytest.raises(FileFormatError, match="NaN"):
        GraphSpec.from_json('{"format": "gradscape-graph", "version": 1, '
                            '"layout": {"x": [NaN, 0]}}')


# -- CSV ------------------------------------------------------------------------------------

def test_wide_csv_line_is_read_not_a_csv_error(tmp_path):
    path = tmp_path / "wide.csv"
    row = ",".join(f"{i % 7}.125" for i in range(30_000))  # a line of 179,999 characters
    path.write_text(row + "\n" + row + "\n" + row.replace("0", "1") + "\n")
    data = load_csv(path, task="regression")
    assert data.x.shape == (3, 29_999)


def test_a_single_huge_cell_is_a_data_error(tmp_path):
    path = tmp_path / "cell.csv"
    path.write_text("a,b\n" + "1," + "9" * 200_000 + "\n")
    with pytest.raises(DataError, match="Line 2"):
        load_csv(path)


def test_header_only_csv_to_predict(model, tmp_path, capsys):
    csv_path = tmp_path / "header.csv"
    csv_path.write_text("a,b,c\n")
    code, err = _predict(capsys, model[0], csv_path)
    assert code == 2 and "no rows to predict" in err


def test_repeated_header_names_are_unique_and_in_order():
    from engine.data.csv_import import _unique_names

    assert _unique_names(["x", "x", "x_2", "", "x"]) == ["x", "x_2", "x_2_2", "column 4", "x_3"]
    names = _unique_names(["x"] * 3000)
    assert len(set(names)) == 3000 and names[-1] == "x_3000"


# -- sizes checked before allocating --------------------------------------------------------

def test_full_batch_needing_too_much_memory_is_refused(monkeypatch):
    spec = GraphSpec.from_dict({
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": "x", "op": "Input", "params": {"features": 2}},
                  {"id": "wide", "op": "Dense", "params": {"units": 1_000_000}},
                  {"id": "out", "op": "Dense", "params": {"units": 1}},
                  {"id": "t", "op": "Target", "params": {"features": 1}},
                  {"id": "loss", "op": "MSELoss"}],
        "edges": [{"from": "x.out", "to": "wide.in"}, {"from": "wide.out", "to": "out.in"},
                  {"from": "out.out", "to": "loss.prediction"},
                  {"from": "t.out", "to": "loss.target"}]})
    analysis = analyze(spec)
    assert analysis.ok
    from engine.core import program as program_module

    monkeypatch.setattr(program_module, "memory_budget", lambda: 2**30)
    program = compile_graph(spec)  # 12 MB of weights; a batch of 500 needs 4 GB
    data = make_dataset("linear", samples=500, features=2)
    with pytest.raises(MemoryLimitError, match="node 'wide'"):
        Trainer(program, data, TrainConfig(batch_size=0))
    with pytest.raises(MemoryLimitError, match="smaller batch"):
        program.predict(np.zeros((500, 2)))


def test_safetensors_with_a_huge_zero_sized_shape():
    header = json.dumps({"a": {"dtype": "F32", "shape": [2**62, 0],
                               "data_offsets": [0, 0]}}).encode()
    data = len(header).to_bytes(8, "little") + header
    with pytest.raises(FileFormatError, match="invalid shape"):
        st.loads(data)


def test_nan_weights_are_refused_not_predicted(model, tmp_path):
    weights, _ = st.loads(members(model[0])["weights.safetensors"])
    weights["d.weight"] = weights["d.weight"].copy()
    weights["d.weight"][0, 0] = np.nan
    bad = tmp_path / "nan.gsmodel"
    bad.write_bytes(with_member(model[0], "weights.safetensors", st.dumps(weights)))
    with pytest.raises(FileFormatError, match="'d.weight' holds 1 NaN"):
        mf.load_model(bad)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow the test provokes
def test_predict_refuses_non_finite_outputs(model, tmp_path, capsys):
    rows = tmp_path / "huge.csv"
    rows.write_text("a,b,c\n1e308,1e308,1e308\n")
    code, err = _predict(capsys, model[0], rows)
    assert code == 2 and "row 1" in err and "not a finite number" in err


# -- messages -------------------------------------------------------------------------------

def test_trace_on_a_model_says_what_the_file_is(model, capsys):
    assert main(["trace", str(model[0])]) == 2
    err = capsys.readouterr().err
    assert "zip archive, not a graph file" in err and "UTF-8" not in err


def test_cycle_message_names_only_the_loop():
    nodes = [{"id": i, "op": "ReLU"} for i in ("a", "b", "c", "after")]
    edges = [{"from": "a.out", "to": "b.in"}, {"from": "b.out", "to": "c.in"},
             {"from": "c.out", "to": "a.in"}, {"from": "c.out", "to": "after.in"}]
    spec = GraphSpec.from_dict({"format": "gradscape-graph", "version": 1,
                                "nodes": nodes, "edges": edges})
    by_node = {d.node: d.message for d in analyze(spec, require_loss=False).diagnostics}
    for node in "abc":
        assert "is part of a cycle" in by_node[node]
    assert "part of a cycle" not in by_node["after"]
    assert "comes from a cycle upstream" in by_node["after"]


# -- saves ----------------------------------------------------------------------------------

def test_temp_file_of_a_killed_save_is_removed_by_the_next_save(tmp_path):
    target = tmp_path / "g.json"
    code = ("import os, sys; from engine.core.spec import atomic_write_bytes as w\n"
            "import engine.core.spec as s\n"
            "os.fsync = lambda fd: os.kill(os.getpid(), 9)\n"  # die between write and rename
            f"w({str(target)!r}, b'new')\n")
    target.write_bytes(b"old")
    subprocess.run([sys.executable, "-c", code], cwd=os.getcwd(), check=False)
    left = list(tmp_path.glob(".g.json.*.tmp"))
    assert len(left) == 1 and target.read_bytes() == b"old"
    atomic_write_bytes(target, b"newer")
    assert target.read_bytes() == b"newer"
    assert list(tmp_path.glob(".g.json.*.tmp")) == []


# -- divergence -----------------------------------------------------------------------------

def _spirals_trainer(**overrides):
    spec = load_graph(EXAMPLES / "spirals_classifier.json")
    cfg = TrainConfig.from_block(spec.training, **overrides)
    data = make_dataset(cfg.dataset, seed=cfg.seed, **cfg.dataset_params)
    return Trainer(compile_graph(spec, seed=cfg.seed), data, cfg)


def test_runaway_loss_is_divergence_and_keeps_the_last_good_weights():
    t = _spirals_trainer(optimizer="sgd", lr=30.0, batch_size=0)
    seen = []
    with pytest.raises(TrainingDiverged, match="loss 'loss' jumped to .* 1,000 times its best"):
        for _ in range(200):
            seen.append(t.program.theta.copy())
            t.step()
    losses = t.step_losses
    assert all(np.isfinite(losses)) and max(losses) < 1e3 * min(losses)
    assert np.array_equal(t.program.theta, seen[-2])


def test_weights_beyond_a_sane_size_are_divergence():
    t = _spirals_trainer(optimizer="adam", lr=1e7)
    before = t.program.theta.copy()
    with pytest.raises(TrainingDiverged, match="reached .* beyond any sensible size"):
        t.step()
    assert np.array_equal(t.program.theta, before)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, "large negative"])
def test_a_weight_the_step_left_non_finite_or_too_large_is_divergence(monkeypatch, bad):
    # with no size limit at all, a non-finite weight is still caught
    monkeypatch.setattr(trainer_module, "WEIGHT_LIMIT",
                        1e6 if bad == "large negative" else float("inf"))
    t = _spirals_trainer()
    t.step()
    before = t.program.theta.copy()
    entry = t.program.entries[2]
    step = t.optimizer.step

    def step_that_breaks_a_weight():
        step()
        t.program.theta[entry.offset + 3] = -1e9 if bad == "large negative" else bad

    monkeypatch.setattr(t.optimizer, "step", step_that_breaks_a_weight)
    with pytest.raises(TrainingDiverged, match=f"a weight of node '{entry.node}'") as info:
        t.step()
    assert info.value.node == entry.node
    assert np.array_equal(t.program.theta, before)


def test_a_non_finite_gradient_stops_before_the_step(monkeypatch):
    t = _spirals_trainer()
    t.step()
    t.step()  # the finite check's buffer is reused from step to step
    before = t.program.theta.copy()
    moments = {k: v.copy() for k, v in t.optimizer.state_arrays().items()}
    backward = t.program.backward

    def backward_with_a_nan():
        backward()
        t.program.grad[t.program.entries[0].offset + 1] = np.nan

    monkeypatch.setattr(t.program, "backward", backward_with_a_nan)
    with pytest.raises(TrainingDiverged, match="the gradient became NaN or infinite") as info:
        t.step()
    assert info.value.node == t.program.entries[0].node
    assert np.array_equal(t.program.theta, before)
    assert t.optimizer.t == 2
    for k, v in t.optimizer.state_arrays().items():
        assert np.array_equal(v, moments[k])


def test_healthy_training_with_a_noisy_near_zero_loss_is_not_divergence():
    t = _spirals_trainer(epochs=60)
    t.run()  # CrossEntropy goes towards 0 and batches bounce; no false alarm
    assert t.history[-1].loss < 0.2


def test_mse_on_class_numbers_warns(tmp_path, capsys):
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps({
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": "x", "op": "Input", "params": {"features": 2}},
                  {"id": "d", "op": "Dense", "params": {"units": 1}},
                  {"id": "t", "op": "Target", "params": {"features": 1}},
                  {"id": "loss", "op": "MSELoss"}],
        "edges": [{"from": "x.out", "to": "d.in"}, {"from": "d.out", "to": "loss.prediction"},
                  {"from": "t.out", "to": "loss.target"}],
        "training": {"dataset": "blobs", "epochs": 1}}))
    assert main(["train", str(graph)]) == 0
    assert "warning: The loss 'loss' (MSELoss) compares the output with class numbers" in \
        capsys.readouterr().err


def test_errors_raised_are_documented_types():
    for cls in (FileFormatError, DataError, MemoryLimitError, TrainingDiverged):
        assert issubclass(cls, GradscapeError)
