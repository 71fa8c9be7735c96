"""Artefacts shared by the reliability tests: a small trained CSV model and zip helpers."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from engine.core.compiler import compile_graph
from engine.core.spec import GraphSpec
from engine.data import load_csv
from engine.files.model_file import save_model
from engine.training.trainer import TrainConfig, Trainer

CSV_GRAPH = {
    "format": "gradscape-graph", "version": 1,
    "nodes": [
        {"id": "x", "op": "Input", "params": {"features": 3}},
        {"id": "d", "op": "Dense", "params": {"units": 2}},
        {"id": "t", "op": "Target", "params": {"features": 1}},
        {"id": "loss", "op": "CrossEntropyLoss"},
    ],
    "edges": [{"from": "x.out", "to": "d.in"}, {"from": "d.out", "to": "loss.prediction"},
              {"from": "t.out", "to": "loss.target"}],
    "training": {"epochs": 2, "batch_size": 8},
}


def write_csv(path: Path, rows: int = 40) -> Path:
    """A CSV of three features and a yes/no label."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3))
    lines = ["a,b,c,label"] + [
        ",".join(f"{v:.4f}" for v in r) + ("," + ("yes" if r.sum() > 0 else "no"))
        for r in x]
    path.write_text("\n".join(lines) + "\n")
    return path


def csv_model(folder: Path) -> tuple[Path, Path]:
    """(a trained .gsmodel with CSV preprocessing, the CSV it was trained on)."""
    csv_path = write_csv(folder / "data.csv")
    spec = GraphSpec.from_dict(dict(CSV_GRAPH, training=dict(CSV_GRAPH["training"],
                                                             csv=str(csv_path))))
    data = load_csv(csv_path)
    program = compile_graph(spec)
    trainer = Trainer(program, data, TrainConfig.from_block(spec.training))
    trainer.run()
    model = folder / "model.gsmodel"
    save_model(model, spec, program, trainer, data)
    return model, csv_path


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rezip(parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return buf.getvalue()


def with_member(path: Path, name: str, data: bytes) -> bytes:
    """The model's bytes with one member replaced."""
    parts = members(path)
    parts[name] = data
    return rezip(parts)


def graph_json(**changes) -> str:
    return json.dumps(dict(CSV_GRAPH, **changes))
