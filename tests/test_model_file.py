"""The .gsmodel file: exact resume, restored graph/weights/history, hostile files refused."""

import io
import json
import zipfile

import numpy as np
import pytest

from engine.cli.main import main
from engine.core.compiler import compile_graph
from engine.core.spec import GraphSpec
from engine.data import make_dataset
from engine.errors import FileFormatError
from engine.files import model_file as mf
from engine.files import safetensors_io as st
from engine.training.trainer import TrainConfig, Trainer

GRAPH = {
    "format": "gradscape-graph", "version": 1,
    "nodes": [
        {"id": "x", "op": "Input", "params": {"features": 2}},
        {"id": "h1", "op": "Dense", "params": {"units": 8}},
        {"id": "bn", "op": "BatchNorm"},
        {"id": "a1", "op": "Tanh"},
        {"id": "drop", "op": "Dropout", "params": {"p": 0.2}},
        {"id": "logits", "op": "Dense", "params": {"units": 2}},
        {"id": "y", "op": "Target", "params": {"features": 1}},
        {"id": "loss", "op": "CrossEntropyLoss"},
    ],
    "edges": [
        {"from": "x.out", "to": "h1.in"}, {"from": "h1.out", "to": "bn.in"},
        {"from": "bn.out", "to": "a1.in"}, {"from": "a1.out", "to": "drop.in"},
        {"from": "drop.out", "to": "logits.in"},
        {"from": "logits.out", "to": "loss.prediction"}, {"from": "y.out", "to": "loss.target"},
    ],
    "layout": {"x": [0, 0], "h1": [150, 10]},
    "training": {"dataset": "moons", "dataset_params": {"samples": 90}, "batch_size": 16,
                 "optimizer": "momentum", "lr": 0.05, "epochs": 3, "seed": 3,
                 "validation_split": 0.2},
}


def _setup(**overrides):
    spec = GraphSpec.from_dict(json.loads(json.dumps(GRAPH)))
    cfg = TrainConfig.from_block(spec.training, **overrides)
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed)
    data = make_dataset(cfg.dataset, seed=cfg.seed, **cfg.dataset_params)
    train, val = data.split(cfg.validation_split, cfg.seed)
    return spec, program, Trainer(program, train, cfg, val), data


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    spec, program, trainer, data = _setup()
    for _ in range(7):  # mid-epoch: 72 training rows, batches of 16
        trainer.step()
    path = tmp_path_factory.mktemp("m") / "model.gsmodel"
    mf.save_model(path, spec, program, trainer, data, metrics={"note": 1.0})
    return path, spec, program, trainer


@pytest.mark.parametrize("optimizer, dtype", [("momentum", "float32"), ("adam", "float64")])
def test_resume_continues_the_exact_trajectory(tmp_path, optimizer, dtype):
    spec, program, trainer, data = _setup(optimizer=optimizer, dtype=dtype)
    for _ in range(7):
        trainer.step()
    path = tmp_path / "m.gsmodel"
    mf.save_model(path, spec, program, trainer, data)
    program2, trainer2 = mf.resume(path)  # reloads the data set from the saved settings
    assert trainer2._batch_pos == trainer._batch_pos and trainer2.step_count == 7
    for _ in range(20):  # crosses epoch boundaries (new shuffles, evaluation)
        trainer.step()
        trainer2.step()
    assert trainer2.step_losses == trainer.step_losses
    assert np.array_equal(program2.theta, program.theta)
    for k, v in program.buffers.items():
        assert np.array_equal(program2.buffers[k], v)
    assert [r.to_dict() for r in trainer2.history] == [r.to_dict() for r in trainer.history]


def test_load_restores_graph_weights_history_and_preprocessing(saved):
    path, spec, program, trainer = saved
    m = mf.load_model(path)
    assert m.spec.to_dict() == spec.to_dict()  # layout and training block included
    assert m.dtype == "float32"
    for k, v in program.state_dict().items():
        assert np.array_equal(m.state_dict[k], v)
    assert m.history == [r.to_dict() for r in trainer.history]
    assert m.step_losses == trainer.step_losses
    assert m.task == "classification" and m.class_names == ["0", "1"]
    assert m.preprocessing["preprocessing"]["dataset"] == "moons"
    assert m.metrics["note"] == 1.0 and m.metrics["steps"] == 7
    p2 = m.build_program()
    x = np.random.default_rng(0).normal(size=(5, 2))
    assert np.array_equal(p2.predict(x), program.predict(x))


def test_model_without_trainer_predicts_but_cannot_resume(tmp_path):
    spec, program, _, _ = _setup()
    path = tmp_path / "bare.gsmodel"
    mf.save_model(path, spec, program)
    m = mf.load_model(path)
    assert m.optimizer_state is None
    with pytest.raises(FileFormatError, match="no training state"):
        m.build_trainer()


def test_cli_train_out_writes_a_loadable_model(tmp_path):
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps(GRAPH))
    out = tmp_path / "cli.gsmodel"
    assert main(["train", str(graph), "--epochs", "2", "--out", str(out)]) == 0
    m = mf.load_model(out)
    assert len(m.history) == 2 and m.trainer_state["epoch"] == 2


def test_writes_are_atomic(tmp_path, saved, monkeypatch):
    path = tmp_path / "keep.gsmodel"
    path.write_bytes(saved[0].read_bytes())
    spec, program, trainer, data = _setup()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", boom)
    with pytest.raises(OSError):
        mf.save_model(path, spec, program, trainer, data)
    assert path.read_bytes() == saved[0].read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["keep.gsmodel"]


# -- hostile and damaged files ------------------------------------------------------------

def _members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _zip(members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    return buf.getvalue()


def _refused(data: bytes, words: str | None = None) -> None:
    with pytest.raises(FileFormatError, match=words):
        mf.loads_model(data, "evil.gsmodel")


def test_not_a_zip_and_empty_file(tmp_path):
    _refused(b"", "not a Gradscape model")
    _refused(b'{"format": "gradscape-graph"}', "not a Gradscape model")
    _refused(b"PK\x03\x04garbage", "damaged zip")
    with pytest.raises(FileFormatError, match="Cannot open"):
        mf.load_model(tmp_path / "missing.gsmodel")


def test_every_truncation_is_refused(saved):
    data = saved[0].read_bytes()
    for cut in list(range(0, len(data), max(1, len(data) // 150))) + [len(data) - 1]:
        _refused(data[:cut])


def test_corrupted_bytes_are_refused_or_harmless(saved):
    data = saved[0].read_bytes()
    rng = np.random.default_rng(1)
    refused = 0
    for pos in rng.integers(0, len(data), size=150):
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        try:
            mf.loads_model(bytes(bad), "bad.gsmodel")
        except FileFormatError:
            refused += 1
    assert refused > 100  # the rest hit bytes the reader ignores (zip dates, comments)


def test_corrupted_member_data_fails_the_crc(saved):
    members = _members(saved[0])
    data = bytearray(_zip(members, zipfile.ZIP_STORED))
    pos = data.find(b"running_mean") + 400
    data[pos] ^= 0x01
    _refused(bytes(data))


def test_path_traversal_members_are_refused(saved):
    members = _members(saved[0])
    for name in ("../evil.json", "/etc/passwd", "sub/../../x", "a\\..\\b", "C:evil"):
        _refused(_zip({**members, name: b"{}"}), "path traversal")


def test_zip_bomb_is_refused_before_unpacking(saved):
    members = _members(saved[0])
    _refused(_zip({**members, "metrics.json": b" " * (20 * 1024 * 1024)}), "more than")
    _refused(_zip({**members, "bomb.bin": bytes(8 * 1024 * 1024)}), "zip bomb")


def test_member_lying_about_its_size_is_refused(saved):
    members = _members(saved[0])
    data = bytearray(_zip(members, zipfile.ZIP_STORED))
    # Shrink the size the central directory declares for graph.json.
    size = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("graph.json").file_size.to_bytes(
        4, "little")
    for lie in ((10).to_bytes(4, "little"), (10**6).to_bytes(4, "little")):
        assert size + size in data
        _refused(bytes(data).replace(size + size, size + lie))


def test_too_many_members_and_duplicates(saved):
    members = _members(saved[0])
    extra = {f"x{i}.json": b"{}" for i in range(40)}
    _refused(_zip({**members, **extra}), "at most")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)
        with pytest.warns(UserWarning):
            zf.writestr("graph.json", members["graph.json"])
    _refused(buf.getvalue(), "twice")


def test_wrong_weight_shapes_missing_and_extra_keys(saved):
    members = _members(saved[0])
    weights, _ = st.loads(members["weights.safetensors"])
    bad = dict(weights, **{"h1.weight": np.zeros((3, 3), np.float32)})
    _refused(_zip({**members, "weights.safetensors": st.dumps(bad)}), "shape")
    missing = {k: v for k, v in weights.items() if k != "bn.running_var"}
    _refused(_zip({**members, "weights.safetensors": st.dumps(missing)}), "lack")
    extra = dict(weights, **{"ghost.weight": np.zeros(2, np.float32)})
    _refused(_zip({**members, "weights.safetensors": st.dumps(extra)}), "no node")
    ints = dict(weights, **{"h1.bias": np.zeros(8, np.int64)})
    _refused(_zip({**members, "weights.safetensors": st.dumps(ints)}), "floating")
    opt, _ = st.loads(members["optimizer.safetensors"])
    short = {k: v[:-1] for k, v in opt.items()}
    _refused(_zip({**members, "optimizer.safetensors": st.dumps(short)}), "parameters")


def test_duplicate_keys_in_json_and_safetensors(saved):
    members = _members(saved[0])
    manifest = members["manifest.json"].decode()
    dup = manifest.replace('"format"', '"version": 1, "format"', 1)
    _refused(_zip({**members, "manifest.json": dup.encode()}), "twice")
    w = members["weights.safetensors"]
    (n,) = np.frombuffer(w[:8], "<u8")
    header = w[8:8 + int(n)].decode().rstrip()
    first = header[1:header.index("},") + 1]
    new_header = ("{" + first + "," + header[1:]).encode()
    new_header += b" " * (-len(new_header) % 8)
    forged = len(new_header).to_bytes(8, "little") + new_header + w[8 + int(n):]
    _refused(_zip({**members, "weights.safetensors": forged}), "twice")


def test_damaged_json_members(saved):
    members = _members(saved[0])
    cases = {
        "manifest.json": [b"[]", b"{", b'{"format": "other", "version": 1}',
                          b'{"format": "gradscape-model", "version": 99}',
                          b'{"format": "gradscape-model", "version": 1, "dtype": "int8"}',
                          b"[" * 50_000],
        "graph.json": [b"\xff\xfe", (b'{"format": "gradscape-graph", "version": 1, '
                                    b'"nodes": [{"id": "x", "op": "Nope"}]}')],
        "trainer.json": [b'{"step": -1}', b"{}", json.dumps({
            **json.loads(members["trainer.json"]), "rng": {"bit_generator": "PCG64"}}).encode()],
        "metrics.json": [b'{"history": 5}', b'{"a": NaN}', b'{"history": [{"loss": 1.0}]}',
                         b'{"history": [{"epoch": 1, "loss": "low"}]}'],
        "optimizer.json": [b"5"],
    }
    for name, variants in cases.items():
        for bad in variants:
            _refused(_zip({**members, name: bad}))
    for required in ("manifest.json", "graph.json", "weights.safetensors",
                     "optimizer.safetensors"):
        _refused(_zip({k: v for k, v in members.items() if k != required}), "lacks|missing")


def test_parameter_count_is_capped_before_allocating(saved, monkeypatch):
    monkeypatch.setattr(mf, "MAX_PARAMETERS", 20)
    _refused(saved[0].read_bytes(), "more than")


def test_loading_never_unpickles(saved, monkeypatch):
    import pickle

    def forbidden(*a, **k):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    m = mf.load_model(saved[0])
    mf.resume(m)
