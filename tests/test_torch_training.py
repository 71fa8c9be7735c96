"""The exported train.py trains like Gradscape: same gradients, same weights, same checkpoints.

For a graph of each example family, train.py (imported in this process, one process) gives
the engine's first-step gradients in float64 and the engine's weights after 20 steps of SGD
and of Adam in float32; torchrun with two CPU processes trains two epochs and its checkpoint
opens as a Gradscape model with the expected step count and the engine's weights.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.core.compiler import compile_graph
from engine.core.spec import GraphSpec, load_graph
from engine.export import export
from engine.export.torch_training import import_train_script
from engine.files.model_file import load_model
from engine.training.trainer import TrainConfig, Trainer, load_data

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "resources" / "examples"

torch = pytest.importorskip("torch")
# Tiny tensors: with the cores busy (GUI threads, other processes) torch's thread pool stalls
# each op, and one thread is several times faster here. Numbers only change by rounding.
torch.set_num_threads(1)

FAMILIES = ["xor_mlp", "spirals_classifier", "residual_block", "sine_regression",
            "digits_cnn", "chain_rule"]


def graph(name: str, **training) -> GraphSpec:
    spec = load_graph(EXAMPLES_DIR / f"{name}.json")
    block = dict(spec.training)
    block.update(training)
    return GraphSpec.from_dict({**json.loads(spec.to_json()), "training": block})


def export_folder(spec: GraphSpec, folder: Path) -> Path:
    export(spec, "torch", folder)
    return folder


def torch_run(folder: Path, *argv: str):
    train = import_train_script(folder)
    return train, train.Run(train.parse_args(list(argv)))


def engine_trainer(spec: GraphSpec) -> Trainer:
    cfg = TrainConfig.from_block(spec.training)
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed)
    data = load_data(cfg)
    train, val = data.split(cfg.validation_split, cfg.seed) if cfg.validation_split \
        else (data, None)
    return Trainer(program, train, cfg, val)


@pytest.mark.parametrize("name", FAMILIES)
def test_first_step_gradients_equal_the_engine_in_float64(name, tmp_path):
    spec = graph(name, dtype="float64")
    folder = export_folder(spec, tmp_path / "run")
    _train, run = torch_run(folder)
    trainer = engine_trainer(spec)
    ours = trainer.step().loss
    theirs = run.step()
    assert theirs == pytest.approx(ours, rel=1e-10, abs=1e-12)
    program = trainer.program
    for entry, p in zip(program.entries, run.params, strict=True):
        got = p.grad.detach().numpy()
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, program.param_grad(entry), rtol=1e-8, atol=1e-8,
                                   err_msg=entry.key)


# The bias of a convolution feeding BatchNorm has a gradient of exactly zero in exact
# arithmetic (BatchNorm subtracts the batch mean); both sides compute rounding noise of ~1e-9,
# which Adam divides by its own size into full steps, so the bias (and the running mean that
# includes it) drifts at random. It cannot change any output: the predictions are compared.
DRIFTING = ("conv1.bias", "bn1.running_mean")


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.05), ("adam", 0.01)])
@pytest.mark.parametrize("name", FAMILIES)
def test_twenty_steps_give_the_engine_weights_in_float32(name, optimizer, lr, tmp_path):
    spec = graph(name, dtype="float32", optimizer=optimizer, lr=lr)
    folder = export_folder(spec, tmp_path / "run")
    _train, run = torch_run(folder)
    trainer = engine_trainer(spec)
    for _ in range(20):
        trainer.step()
        run.step()
    assert run.step_count == trainer.step_count == 20
    assert run.epoch == trainer.epoch
    got = run.engine_state()
    for key, value in trainer.program.state_dict().items():
        assert got[key].dtype == np.float32
        if (name, optimizer) == ("digits_cnn", "adam") and key in DRIFTING:
            continue
        np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-5, err_msg=key)
    # Training-mode outputs (BatchNorm on batch statistics, where that bias cancels).
    program, x, y = trainer.program, trainer.x[:64], trainer.y[:64]
    program.forward(x, y)
    with torch.no_grad():
        theirs = run.model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(theirs, program.values[program.output_nodes[0]], rtol=1e-5,
                               atol=1e-5)


def test_training_settings_reach_torch(tmp_path):
    """Schedule, L1/L2, clipping, momentum with Nesterov and a validation split, together."""
    spec = graph("xor_mlp", dtype="float64", optimizer="sgd", lr=0.2, batch_size=16,
                 optimizer_params={"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
                 schedule="step", schedule_params={"step_size": 1, "gamma": 0.5},
                 l1=1e-3, l2=1e-2, clip_norm=0.05, validation_split=0.25,
                 dataset_params={"samples": 64})
    folder = export_folder(spec, tmp_path / "run")
    _train, run = torch_run(folder)
    trainer = engine_trainer(spec)
    for _ in range(9):  # three epochs of three batches: the schedule halves the rate twice
        ours, theirs = trainer.step(), run.step()
        assert theirs == pytest.approx(ours.loss, rel=1e-10)
        assert run.lr == ours.lr
    assert run.lr == pytest.approx(0.05)
    got = run.engine_state()
    for key, value in trainer.program.state_dict().items():
        np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-12, err_msg=key)
    for ours, theirs in zip(trainer.history, run.history, strict=True):
        for k, v in ours.to_dict().items():
            assert theirs[k] == pytest.approx(v, rel=1e-9), k


def test_checkpoint_resumes_in_gradscape_and_in_train_py(tmp_path):
    """A checkpoint written mid-epoch continues identically in the engine and in train.py,
    and a .gsmodel saved by Gradscape continues in train.py."""
    from engine.files.model_file import save_model

    spec = graph("spirals_classifier", dtype="float64", epochs=2)
    folder = export_folder(spec, tmp_path / "run")
    train, run = torch_run(folder)
    per_epoch = run.order.steps_per_epoch()
    stop = per_epoch + 2  # inside the second epoch
    for _ in range(stop):
        run.step()
    run.save(str(tmp_path / "mid.gsmodel"))
    loaded = load_model(tmp_path / "mid.gsmodel")
    assert loaded.metrics["steps"] == stop and loaded.history[0]["epoch"] == 1
    trainer = loaded.build_trainer()
    assert (trainer.step_count, trainer.epoch) == (stop, 1)
    resumed = train.Run(train.parse_args([]))
    resumed.resume(str(tmp_path / "mid.gsmodel"))
    for _ in range(per_epoch - 2):
        ours, theirs = trainer.step(), resumed.step()
        assert theirs == pytest.approx(ours.loss, rel=1e-10)
        assert theirs == pytest.approx(run.step(), rel=1e-12)
    assert trainer.epoch == resumed.epoch == 2
    # The other way round: the engine saves, train.py continues.
    save_model(tmp_path / "engine.gsmodel", spec, trainer.program, trainer, load_data(
        trainer.config))
    again = train.Run(train.parse_args([]))
    again.resume(str(tmp_path / "engine.gsmodel"))
    assert again.step_count == 2 * per_epoch
    assert again.step() == pytest.approx(trainer.step().loss, rel=1e-10)


def test_export_without_a_loss_writes_the_model_and_says_why(tmp_path):
    spec = GraphSpec.from_dict({
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": "x", "op": "Input", "params": {"features": 2}},
                  {"id": "h", "op": "Dense", "params": {"units": 3}}],
        "edges": [{"from": "x.out", "to": "h.in"}]})
    notes: list[str] = []
    files = export(spec, "torch", tmp_path / "out", notes=notes)
    assert {f.name for f in files} == {"model.py", "weights.safetensors"}
    assert notes and "no loss node" in notes[0]


def test_export_without_torch_still_writes_the_folder(tmp_path, monkeypatch):
    import engine.export.torch_training as tt

    monkeypatch.setattr(tt, "torch_installed", lambda: False)
    notes: list[str] = []
    files = export(graph("xor_mlp"), "torch", tmp_path / "out", notes=notes)
    assert {f.name for f in files} == {"model.py", "weights.safetensors", "train.py",
                                      "gradscape.json", "data.npz", "README.md"}
    assert any("train.py needs torch" in n for n in notes)


def test_bigger_csv_with_the_same_columns(tmp_path):
    """--csv reads a file with the training file's columns and the stored preprocessing."""
    rng = np.random.default_rng(0)

    def write(path, n):
        x = rng.normal(size=(n, 2))
        label = np.where(x[:, 0] * x[:, 1] > 0, "same", "other")
        lines = ["a,b,kind"] + [f"{float(u)!r},{float(v)!r},{k}" for (u, v), k in zip(x, label)]
        path.write_text("\n".join(lines) + "\n")

    write(tmp_path / "small.csv", 40)
    write(tmp_path / "big.csv", 90)
    spec = graph("residual_block", csv=str(tmp_path / "small.csv"), target_columns=["kind"],
                 dataset_params={})
    spec = GraphSpec.from_dict({**json.loads(spec.to_json())})
    block = dict(spec.training)
    nodes = json.loads(spec.to_json())
    for n in nodes["nodes"]:
        if n["id"] == "logits":
            n["params"]["units"] = 2
    spec = GraphSpec.from_dict({**nodes, "training": block})
    folder = export_folder(spec, tmp_path / "run")
    train, run = torch_run(folder)
    small = load_data(TrainConfig.from_block(spec.training))
    np.testing.assert_array_equal(run.x.numpy(), small.x.astype(np.float32))
    _, big = torch_run(folder, "--csv", str(tmp_path / "big.csv"))
    assert len(big.x) == 90
    pp = small.preprocessing
    raw = np.loadtxt(tmp_path / "big.csv", delimiter=",", skiprows=1, usecols=(0, 1))
    expect = (raw - np.asarray(pp["mean"])) / np.asarray(pp["std"])
    np.testing.assert_allclose(big.x.numpy(), expect.astype(np.float32), rtol=1e-6)
    labels = np.genfromtxt(tmp_path / "big.csv", delimiter=",", skip_header=1, usecols=2,
                           dtype=str)
    np.testing.assert_array_equal(big.y.numpy()[:, 0],
                                  [small.class_names.index(s) for s in labels])


@pytest.mark.skipif(shutil.which("torchrun") is None and importlib.util.find_spec(
    "torch.distributed.run") is None, reason="torchrun is not available")
def test_torchrun_two_cpu_processes_train_two_epochs(tmp_path):
    """`torchrun --nproc-per-node 2 train.py --epochs 2`: the checkpoint opens in Gradscape
    with 2 epochs of steps, and its weights equal a one-process engine run's."""
    from engine.cli.main import main

    spec = graph("xor_mlp", dataset_params={"samples": 128})
    (tmp_path / "xor.json").write_text(spec.to_json())
    # The commands of docs/export.md ("From the app to a GPU or a cluster").
    assert main(["export", str(tmp_path / "xor.json"), "--format", "torch",
                 "--out", str(tmp_path / "xor_torch")]) == 0
    folder = tmp_path / "xor_torch"
    out = folder / "trained.gsmodel"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE"))}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",  # = torchrun
           "--nproc-per-node", "2", "train.py", "--epochs", "2", "--json"]
    result = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    epochs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2]
    model = load_model(out)
    assert model.metrics["steps"] == 8 and model.metrics["epochs"] == 2  # 128 rows / 32
    assert "2 processes" in model.metrics["trained_with"]
    trainer = model.build_trainer()
    assert (trainer.step_count, trainer.epoch) == (8, 2)
    engine = engine_trainer(graph("xor_mlp", dataset_params={"samples": 128}, epochs=2))
    engine.run(2)
    for key, value in engine.program.state_dict().items():
        np.testing.assert_allclose(model.state_dict[key], value, rtol=1e-5, atol=1e-5,
                                   err_msg=key)
    for ours, theirs in zip(engine.history, model.history, strict=True):
        assert theirs["loss"] == pytest.approx(ours.loss, rel=1e-5)
    trainer.step()  # and training continues in Gradscape
    assert trainer.step_count == 9


def test_torch_sampler_trains_resumes_and_opens_in_gradscape(tmp_path):
    """--sampler torch: torch's DistributedSampler order; epochs, resuming mid-epoch and the
    checkpoint work as with Gradscape's order."""
    spec = graph("xor_mlp", dataset_params={"samples": 100}, batch_size=16)
    folder = export_folder(spec, tmp_path / "run")
    train, run = torch_run(folder, "--sampler", "torch")
    assert run.order.steps_per_epoch() == 7
    for _ in range(10):
        run.step()
    assert (run.step_count, run.epoch) == (10, 1)
    path = tmp_path / "torch.gsmodel"
    run.save(str(path))
    trainer = load_model(path).build_trainer()
    assert (trainer.step_count, trainer.epoch) == (10, 1)
    trainer.step()  # Gradscape continues with an epoch of its own order
    resumed = train.Run(train.parse_args(["--sampler", "torch"]))
    resumed.resume(str(path))
    for _ in range(4):
        assert resumed.step() == pytest.approx(run.step(), rel=1e-6)
    assert resumed.epoch == run.epoch == 2
    for key, value in run.engine_state().items():
        np.testing.assert_allclose(resumed.engine_state()[key], value, rtol=1e-6, atol=1e-7)


def _two_loss_graph(first: dict, second: dict) -> GraphSpec:
    """x → Dense(4) → Tanh → Dense(1) = p, with two losses on p against the same Target."""
    return GraphSpec.from_dict({
        "format": "gradscape-graph", "version": 1,
        "nodes": [{"id": "x", "op": "Input", "params": {"features": 2}},
                  {"id": "h", "op": "Dense", "params": {"units": 4}}, {"id": "a", "op": "Tanh"},
                  {"id": "p", "op": "Dense", "params": {"units": 1}},
                  {"id": "y", "op": "Target", "params": {"features": 1}},
                  {"id": "l1", **first}, {"id": "l2", **second}],
        "edges": [{"from": "x.out", "to": "h.in"}, {"from": "h.out", "to": "a.in"},
                  {"from": "a.out", "to": "p.in"},
                  {"from": "p.out", "to": "l1.prediction"}, {"from": "y.out", "to": "l1.target"},
                  {"from": "p.out", "to": "l2.prediction"}, {"from": "y.out", "to": "l2.target"}],
        "training": {"dataset": "moons", "dataset_params": {"samples": 60}, "batch_size": 16,
                     "optimizer": "rmsprop", "lr": 0.01, "dtype": "float64",
                     "optimizer_params": {"momentum": 0.5, "centered": True}}})


@pytest.mark.parametrize("first, second", [
    ({"op": "BCELoss", "params": {"from_logits": True}},
     {"op": "HuberLoss", "params": {"reduction": "sum", "delta": 0.5}}),
    ({"op": "MAELoss"}, {"op": "MSELoss", "params": {"reduction": "sum"}}),
])
def test_other_losses_and_rmsprop_follow_the_engine(first, second, tmp_path):
    spec = _two_loss_graph(first, second)
    folder = export_folder(spec, tmp_path / "run")
    _train, run = torch_run(folder)
    trainer = engine_trainer(spec)
    for _ in range(8):
        assert run.step() == pytest.approx(trainer.step().loss, rel=1e-10)
    got = run.engine_state()
    for key, value in trainer.program.state_dict().items():
        np.testing.assert_allclose(got[key], value, rtol=1e-9, atol=1e-12, err_msg=key)
    for ours, theirs in zip(trainer.history, run.history, strict=True):
        assert theirs["accuracy"] == ours.accuracy


def test_data_that_does_not_fit_is_not_embedded_and_the_export_says_so(tmp_path):
    spec = graph("digits_cnn", dataset="xor", dataset_params={})  # 2 features, not 1×8×8
    notes: list[str] = []
    files = export(spec, "torch", tmp_path / "out", notes=notes)
    assert "data.npz" not in {f.name for f in files} and "train.py" in {f.name for f in files}
    assert any("not embedded" in n and "node 'x' expects" in n for n in notes), notes
    train = import_train_script(tmp_path / "out")
    with pytest.raises(train.SetupError, match="--csv"):
        train.Run(train.parse_args([]))


def test_cli_export_says_how_to_train_and_what_is_missing(tmp_path, capsys, monkeypatch):
    import engine.export.torch_training as tt
    from engine.cli.main import main

    monkeypatch.setattr(tt, "torch_installed", lambda: False)
    (tmp_path / "g.json").write_text(graph("sine_regression").to_json())
    assert main(["export", str(tmp_path / "g.json"), "--format", "torch",
                 "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "wrote " + str(tmp_path / "out" / "train.py") in err
    assert "python train.py" in err
    assert "note: PyTorch is not installed here; train.py needs torch>=2.1 and numpy" in err


def test_divergence_keeps_the_last_good_weights(tmp_path):
    spec = graph("sine_regression", optimizer="sgd", lr=1e6, dtype="float32")
    folder = export_folder(spec, tmp_path / "run")
    train = import_train_script(folder)
    out = tmp_path / "kept.gsmodel"
    assert train.main(["--out", str(out), "--epochs", "5"]) == 2
    kept = load_model(out)
    steps = kept.metrics["steps"]
    trainer = engine_trainer(spec)
    for _ in range(steps):
        trainer.step()
    for key, value in trainer.program.state_dict().items():
        np.testing.assert_allclose(kept.state_dict[key], value, rtol=1e-4, err_msg=key)
    assert np.isfinite(kept.step_losses).all()
    from engine.errors import TrainingDiverged

    with pytest.raises(TrainingDiverged):  # Gradscape diverges at the same step
        trainer.step()
