"""Command line: `python -m engine train|trace|gradcheck|race|sweep|explain …` (each with
--help)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.cli import lab_commands as lab_cli
from engine.cli import model_commands as model_cli
from engine.core.compiler import compile_graph
from engine.core.program import Program
from engine.core.spec import load_graph
from engine.errors import CompileError, GradscapeError, TrainingDiverged
from engine.training.trainer import TrainConfig, Trainer, fit_to_program, load_data


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (defaults come from the graph file's training block)")
    g.add_argument("--dataset", help="built-in dataset: xor, circles, moons, spirals, blobs, "
                   "linear, sine, digits, fables")
    g.add_argument("--samples", type=int, help="number of samples to generate")
    g.add_argument("--noise", type=float, help="noise level of the generated dataset")
    g.add_argument("--csv", metavar="FILE", help="train on a CSV file instead")
    g.add_argument("--text", metavar="FILE", help="train on a UTF-8 text file instead: each "
                   "sample is a block of characters, its targets the next characters")
    g.add_argument("--block-size", type=int, help="characters per sample of --text or the "
                   "fables data set")
    g.add_argument("--target", metavar="COL", action="append",
                   help="target column of the CSV (name or 0-based index; repeatable)")
    g.add_argument("--features", metavar="COLS",
                   help="comma-separated feature columns of the CSV (default: all but targets)")
    g.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=None,
                   help="scale CSV and data-table features to mean 0, std 1; "
                   "--no-standardize uses the numbers as written (default: the graph "
                   "file's setting, else on)")
    g.add_argument("--images", metavar="FOLDER",
                   help="train on a folder of images, one sub-folder per class (resized to "
                   "the Input's shape)")
    g.add_argument("--seed", type=int, help="seed for data, weights and shuffling")


def _config(args: argparse.Namespace, block: dict[str, Any]) -> TrainConfig:
    overrides: dict[str, Any] = {}
    for name in ("dataset", "csv", "images", "text", "seed", "epochs", "optimizer", "lr",
                 "validation_split", "standardize"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    if getattr(args, "batch_size", None) is not None:
        overrides["batch_size"] = args.batch_size
    if args.dataset and args.dataset != block.get("dataset"):
        overrides["dataset_params"] = {}
        block = {k: v for k, v in block.items() if k not in ("csv", "images")}
    params = dict(block.get("dataset_params", {}))
    params.update(overrides.get("dataset_params", {}))
    if args.samples is not None:
        params["samples"] = args.samples
    if args.noise is not None:
        params["noise"] = args.noise
    if getattr(args, "block_size", None) is not None:
        params["block_size"] = args.block_size
    overrides["dataset_params"] = params
    if args.target:
        overrides["target_columns"] = [_column(t) for t in args.target]
    if args.features:
        overrides["feature_columns"] = [_column(c.strip()) for c in args.features.split(",")]
    if getattr(args, "dtype", None):
        overrides["dtype"] = args.dtype
    if args.csv is None and args.dataset is not None:
        block = {k: v for k, v in block.items() if k not in ("csv", "images")}
    if args.csv is not None:
        block = {k: v for k, v in block.items() if k != "images"}
    if args.images is not None:
        block = {k: v for k, v in block.items() if k != "csv"}
    return TrainConfig.from_block(block, **overrides)


def _column(text: str) -> Any:
    return int(text) if text.isdigit() else text


def _read_graph(path: str) -> tuple[Any, dict[str, np.ndarray] | None]:
    """(spec, weights): a graph .json has no weights, an .onnx model brings its own."""
    if Path(path).suffix.lower() == ".onnx":
        from engine.files.onnx_import import import_onnx

        model = import_onnx(path)
        return model.spec, model.state_dict
    return load_graph(path), None


def _prepare(args: argparse.Namespace, require_loss: bool = True, input_grads: bool = False):
    spec, weights = _read_graph(args.graph)
    if getattr(args, "loss", None):
        from engine.training.loss_head import add_loss

        spec = add_loss(spec, args.loss, args.loss_on)
    elif require_loss and weights is not None:
        from engine.training.loss_head import has_loss

        if not has_loss(spec):
            raise GradscapeError(
                f"{Path(args.graph).name} predicts but has no loss to train with; choose one "
                "with --loss (CrossEntropyLoss for class scores, MSELoss for values).")
    cfg = _config(args, dict(spec.training))
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed, require_loss=require_loss,
                            input_grads=input_grads)
    if weights is not None:
        program.load_state_dict(weights, strict=True)
    data = load_data(cfg)
    fit_to_program(program, data)
    return spec, cfg, program, data


def _add_loss_args(p: argparse.ArgumentParser) -> None:
    from engine.training.loss_head import LOSSES

    g = p.add_argument_group("loss (for an .onnx model, which brings none)")
    g.add_argument("--loss", choices=LOSSES, help="add this loss and a Target to the graph")
    g.add_argument("--loss-on", metavar="NODE",
                   help="node whose output the loss judges (default: the graph's only output)")


class Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, total: int, stream=None):
        self.total = max(total, 1)
        self.stream = stream or sys.stderr
        self.last = 0.0
        self.start = time.perf_counter()

    def update(self, done: int, text: str, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        width = 28
        filled = int(width * done / self.total)
        bar = "█" * filled + "·" * (width - filled)
        self.stream.write(f"\r[{bar}] {done}/{self.total} {text}  ")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write(f"\n{time.perf_counter() - self.start:.1f} s\n")
        self.stream.flush()


def cmd_train(args: argparse.Namespace) -> int:
    """`train`: epochs with a progress bar (JSON lines with --json); exit 1 if it diverged."""
    spec, cfg, program, data = _prepare(args)
    train, val = (data.split(cfg.validation_split, cfg.seed) if cfg.validation_split
                  else (data, None))
    trainer = Trainer(program, train, cfg, val)
    for text in trainer.warnings:
        print(f"warning: {text}", file=sys.stderr)
    progress = Progress(cfg.epochs)
    status = 0
    try:
        for epoch in range(cfg.epochs):
            report = trainer.run_epoch()
            if args.json:
                print(json.dumps(_clean(report.to_dict())), flush=True)
            acc = f" acc {report.accuracy:.1%}" if report.accuracy is not None else ""
            progress.update(epoch + 1, f"loss {report.loss:.4g}{acc}",
                            force=epoch + 1 == cfg.epochs)
    except TrainingDiverged as exc:
        progress.close()
        print(f"error: {exc}", file=sys.stderr)
        status = 1
    else:
        progress.close()
        from engine.training.health import diagnose_trainer

        accuracy = trainer.history[-1].accuracy if trainer.history else None
        for sentence in diagnose_trainer(program, trainer, accuracy):
            print(f"warning: {sentence}", file=sys.stderr)
    if args.out:
        from engine.files.model_file import save_model

        save_model(args.out, spec, program, trainer, data)
        print(f"saved {args.out}", file=sys.stderr)
    return status


def _clean(obj: Any) -> Any:
    """JSON cannot hold NaN/Inf: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


FULL_VALUES_LIMIT = 64
HISTOGRAM_BINS = 16


def _tensor_json(a: np.ndarray | None) -> dict[str, Any] | None:
    from engine.core.stats import histogram, summarize

    if a is None:
        return None
    out: dict[str, Any] = summarize(a).to_dict()
    counts, edges = histogram(a, bins=HISTOGRAM_BINS)
    out["histogram"] = {"counts": counts, "edges": edges}
    if a.size <= FULL_VALUES_LIMIT:
        out["values"] = np.asarray(a, dtype=np.float64).tolist()
    return out


def trace_dict(program: Program, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """One forward and backward pass on one batch, every edge and parameter described."""
    program.set_training(True)
    loss = program.forward(x, y)
    program.backward()
    edges = []
    for k in program.topological_edges():
        e = program.edges[k]
        value = program.edge_value(k)
        edges.append({
            "from": f"{e.src}.{e.src_port}", "to": f"{e.dst}.{e.dst_port}",
            "shape": list(value.shape) if value is not None else None,
            "value": _tensor_json(value), "grad": _tensor_json(program.edge_grads[k]),
        })
    params = []
    for entry in program.entries:
        params.append({
            "node": entry.node, "name": entry.name, "shape": list(entry.shape),
            "value": _tensor_json(program.param_value(entry)),
            "grad": _tensor_json(program.param_grad(entry)),
        })
    return _clean({"loss": loss, "batch_size": int(len(x)), "dtype": str(program.dtype),
                   "edges": edges, "parameters": params})


def _first_batch(cfg: TrainConfig, data) -> tuple[np.ndarray, np.ndarray]:
    from engine.data import batches

    rng = np.random.default_rng(cfg.seed)
    idx = next(iter(batches(len(data), cfg.batch_size or None, rng, shuffle=True)))
    return data.x[idx], data.y[idx]


def cmd_trace(args: argparse.Namespace) -> int:
    """`trace`: one forward and backward pass on the first batch, every edge printed."""
    spec, cfg, program, data = _prepare(args, input_grads=True)
    x, y = _first_batch(cfg, data)
    result = trace_dict(program, x, y)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"loss {result['loss']:.6g} on a batch of {result['batch_size']}")
        for e in result["edges"]:
            g = e["grad"]
            gtxt = f"mean|dL/dx| {g['mean_abs']:.4g}" if g else "no gradient"
            print(f"  {e['from']:>20} → {e['to']:<20} {str(e['shape']):>12}  "
                  f"mean {e['value']['mean']:.4g}  {gtxt}")
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    """`gradcheck`: backprop against finite differences in float64; exit 1 on a mismatch."""
    from engine.lab.gradcheck import gradcheck

    args.dtype = "float64"
    spec, cfg, program, data = _prepare(args, input_grads=args.inputs)
    x, y = _first_batch(cfg, data)
    report = gradcheck(program, x, y, inputs=args.inputs, rtol=args.tolerance, atol=args.atol)
    print(report.table())
    worst = report.worst
    if worst is None:
        print("nothing to check: the graph has no learnable tensor")
        return 0
    if report.passed:
        print(f"backprop matches finite differences: every tensor within relative error "
              f"{args.tolerance:g} (or absolute error {report.atol:g} where the gradient is ~0)")
        return 0
    print(f"MISMATCH: {worst.key} has relative error {worst.rel:.3g}, above {args.tolerance:g}")
    return 1


def build_parser() -> argparse.ArgumentParser:
    """The `python -m engine` parser with every sub-command (docs/cli.md is built from it)."""
    parser = argparse.ArgumentParser(
        prog="python -m engine",
        description="Gradscape engine: train, inspect and check neural-network graphs.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a graph and report loss per epoch")
    p.add_argument("graph", help="graph file (.json) or ONNX model (.onnx)")
    _add_data_args(p)
    _add_loss_args(p)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="0 = full batch, 1 = SGD, N = mini-batch")
    p.add_argument("--optimizer", help="sgd, momentum, rmsprop, adam, adamw")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--validation-split", type=float, help="fraction held out, e.g. 0.2")
    p.add_argument("--out", metavar="MODEL", help="write the trained model (.gsmodel)")
    p.add_argument("--json", action="store_true", help="one JSON object per epoch on stdout")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("trace", help="one forward + backward pass: every edge's value and "
                       "gradient")
    p.add_argument("graph", help="graph file (.json) or ONNX model (.onnx)")
    _add_data_args(p)
    _add_loss_args(p)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--dtype", choices=("float32", "float64"))
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("gradcheck", help="compare backprop with finite differences "
                       "(exit 1 above tolerance)")
    p.add_argument("graph")
    _add_data_args(p)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--inputs", action="store_true", help="also check dL/dx of the inputs")
    p.add_argument("--tolerance", type=float, default=1e-5,
                   help="largest acceptable relative error (default 1e-5)")
    p.add_argument("--atol", type=float, default=1e-8,
                   help="absolute error accepted where a gradient is ~0 (default 1e-8)")
    p.set_defaults(func=cmd_gradcheck)

    model_cli.add_commands(sub)
    lab_cli.add_commands(sub, _add_data_args)
    return parser




def main(argv: list[str] | None = None) -> int:
    """Run one command; errors are one sentence on stderr with exit code 2, never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CompileError as exc:
        print("error: the graph cannot be compiled:", file=sys.stderr)
        for d in exc.diagnostics:
            print(f"  - {d.message}", file=sys.stderr)
        return 2
    except GradscapeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
    except MemoryError:  # a last resort: sizes are checked before the big allocations
        print("error: the computer ran out of memory; use a smaller batch size, a smaller "
              "data set or a smaller network.", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the command writes (--out) or reads outside the loaders
        where = f" {exc.filename}" if exc.filename else " a file"
        print(f"error: cannot access{where}: {exc.strerror or exc}.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
