"""Command-line `export` and `predict` (added to `python -m engine` by engine.cli.main)."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import DataError


def add_commands(sub: Any) -> None:
    """Add the `export` and `predict` sub-commands to an argparse subparsers object."""
    p = sub.add_parser("export", help="write a model in another format (ONNX, PyTorch, "
                       "safetensors, standalone NumPy)")
    p.add_argument("model", help="model file (.gsmodel or .onnx), or a graph (.json) for "
                   "fresh weights")
    p.add_argument("--format", required=True, choices=("onnx", "torch", "safetensors", "numpy"))
    p.add_argument("--out", required=True, metavar="PATH",
                   help="file for onnx/safetensors; folder (or NAME.py) for torch/numpy; the "
                   "torch folder holds train.py, the data and a README to train with PyTorch")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="predict new CSV rows or images with a trained model")
    p.add_argument("model", help="model file (.gsmodel or .onnx)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", metavar="FILE",
                     help="rows of raw features (or all training columns, target blank)")
    src.add_argument("--images", metavar="PATH", nargs="+",
                     help="PNG/JPEG files or folders of them, resized to the model's input")
    p.add_argument("--out", metavar="FILE", help="write the predictions CSV here "
                   "(default: standard output)")
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="the rows are already on the model's scale: feed them as written "
                   "(default: standardised like the training data, if it was)")
    p.set_defaults(func=cmd_predict)


def cmd_export(args: argparse.Namespace) -> int:
    """`export`: write a model or graph in another format; lists the files written."""
    from engine.export import export

    notes: list[str] = []
    files = export(args.model, args.format, args.out, opset=args.opset, notes=notes)
    for f in files:
        print(f"wrote {f}", file=sys.stderr)
    if any(f.name == "train.py" for f in files):
        print(f"train with PyTorch: cd {files[0].parent} && python train.py  (see README.md)",
              file=sys.stderr)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _load(path: str) -> tuple[Any, Any]:
    """(program, LoadedModel or None) of a .gsmodel, an .onnx model or a graph .json."""
    from engine.export import resolve_model
    from engine.files.model_file import load_model

    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return resolve_model(path)[0], None
    if suffix == ".onnx":
        from engine.files.onnx_import import import_onnx

        model = import_onnx(path)
        return model.build_program(), model
    model = load_model(path)
    return model.build_program(), model


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def probabilities(program: Any, out: np.ndarray) -> np.ndarray:
    """Class probabilities (N, C) from the network's output, judged by its loss and ops."""
    out = np.asarray(out, dtype=np.float64).reshape(len(out), -1)
    head = program.output_nodes[0]
    loss_op, from_logits = None, False
    for i in program.loss_nodes:
        loss_op = program.op_ids[i]
        from_logits = bool(program.params[program.order[i]].get("from_logits"))
    if out.shape[1] == 1:
        p1 = _sigmoid(out[:, 0]) if (loss_op == "BCELoss" and from_logits) else np.clip(
            out[:, 0], 0.0, 1.0)
        return np.stack([1.0 - p1, p1], axis=1)
    if program.op_ids[head] == "Softmax":
        return out
    if loss_op in (None, "CrossEntropyLoss") or (out < 0).any() or (out > 1).any():
        return _softmax(out)
    return out


def prediction_table(program: Any, model: Any, x: np.ndarray) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the predictions CSV."""
    out = np.asarray(program.predict(x), dtype=np.float64)
    if out.ndim == 0:
        out = out.reshape(1, 1)
    out = out.reshape(len(out), -1)
    bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
    if len(bad):
        raise DataError(f"The model's output for row {int(bad[0]) + 1} is not a finite number "
                        f"({len(bad)} of {len(out)} rows); check those rows for extreme values.")
    task = model.task if model is not None else None
    if task == "classification":
        probs = probabilities(program, out)
        names = model.class_names or [str(c) for c in range(probs.shape[1])]
        if len(names) != probs.shape[1]:
            names = [str(c) for c in range(probs.shape[1])]
        cls = probs.argmax(axis=1)
        header = ["class", "label"] + [f"prob_{n}" for n in names]
        rows = [[str(int(c)), names[int(c)]] + [f"{v:.9g}" for v in row]
                for c, row in zip(cls, probs)]
        return header, rows
    names = list((model.preprocessing.get("target_names") if model is not None else None) or [])
    if len(names) != out.shape[1]:
        names = [f"output_{k}" for k in range(out.shape[1])]
    return names, [[f"{v:.9g}" for v in row] for row in out]


def cmd_predict(args: argparse.Namespace) -> int:
    """`predict`: prepare new CSV rows like the training data and write the predictions."""
    from engine.core.spec import atomic_write_bytes
    from engine.data.csv_import import apply_preprocessing

    program, model = _load(args.model)
    pp = dict(model.preprocessing.get("preprocessing") or {}) if model is not None else {}
    if not args.standardize:
        pp["standardize"] = False
    want = program.shapes[program.order[program.input_nodes[0]]][1:] if program.input_nodes \
        else None
    files: list[Path] = []
    if args.images:
        from engine.data.images import image_files, read_image

        files = image_files(args.images)
        x = np.stack([read_image(f, tuple(want or ())) for f in files])
    else:
        x = apply_preprocessing(pp, args.csv)
        if len(x) == 0:
            raise DataError(f"{Path(args.csv).name} has no rows to predict (only a header, or "
                            "blank lines); add one line of features per sample.")
    if want is not None and x.shape[1:] != tuple(want):
        if int(np.prod(x.shape[1:])) != int(np.prod(want)):
            raise DataError(f"The rows of {Path(args.csv).name} have {int(np.prod(x.shape[1:]))} "
                            f"values, but the model's input takes {int(np.prod(want))}.")
        x = x.reshape((len(x), *want))
    header, rows = prediction_table(program, model, x)
    if files:  # one row per image, named
        header = ["file", *header]
        rows = [[str(f), *r] for f, r in zip(files, rows)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if args.out:
        atomic_write_bytes(args.out, buf.getvalue().encode("utf-8"))
        print(f"wrote {len(rows)} predictions to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(buf.getvalue())
    return 0
