"""The exported train.py against Gradscape's engine: one training step of each example graph.

Run:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/torch_training.py
Both sides take the same step on the same batch (the graph's optimizer, batch size and
dtype); train.py runs on one CPU process. Prints a table and writes it to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, median_time, write_section  # noqa: E402
from engine.core.compiler import compile_graph  # noqa: E402
from engine.core.spec import load_graph  # noqa: E402
from engine.export import export  # noqa: E402
from engine.export.torch_training import import_train_script  # noqa: E402
from engine.training.trainer import TrainConfig, Trainer, load_data  # noqa: E402

EXAMPLES = ["xor_mlp", "spirals_classifier", "sine_regression", "residual_block", "digits_cnn"]


def measure(name: str, folder: Path, repeats: int) -> tuple[str, float, float, float]:
    spec = load_graph(ROOT / "resources" / "examples" / f"{name}.json")
    cfg = TrainConfig.from_block(spec.training)
    program = compile_graph(spec, dtype=cfg.dtype, seed=cfg.seed)
    data = load_data(cfg)
    train, val = data.split(cfg.validation_split, cfg.seed) if cfg.validation_split \
        else (data, None)
    trainer = Trainer(program, train, cfg, val)
    export(spec, "torch", folder)
    module = import_train_script(folder)
    run = module.Run(module.parse_args([]))
    ours = median_time(trainer.step, repeats)
    theirs = median_time(run.step, repeats)
    # The bare PyTorch loop: the same module, loss and optimizer on one fixed batch.
    model = module.GradscapeModel().to(run.dtype)
    params = [model.get_parameter(p["torch"]) for p in run.settings["parameters"]]
    opt = module.make_optimizer(run.settings["optimizer"], params, cfg.lr)
    size = cfg.batch_size or len(run.x)
    xb, yb = run.x[:size], run.y[:size]

    def bare() -> None:
        opt.zero_grad()
        module.graph_loss(run.settings, model(xb), yb).backward()
        opt.step()

    return name, ours, median_time(bare, repeats), theirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    import torch

    # One thread: on this shared 2-core machine torch's thread pool stalls behind other
    # processes (a 2-8-1 MLP step took 40 ms with 2 threads, 0.8 ms with one).
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in EXAMPLES:
            rows.append(measure(name, Path(tmp) / name, args.repeats))
    lines = ["## Exported train.py vs the engine: one training step of each example",
             "",
             f"`python bench/torch_training.py` — {machine_line()}, torch {torch.__version__} "
             f"({torch.get_num_threads()} thread), median of {args.repeats} steps. The engine "
             "and train.py steps include their epoch ends (which evaluate the whole data set); "
             "the bare loop is forward, backward and optimizer step on one fixed batch. The "
             "machine is shared and noisy.",
             "",
             "| example | engine (ms) | bare torch loop (ms) | train.py (ms) | "
             "train.py / bare | train.py / engine |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, ours, bare, theirs in rows:
        lines.append(f"| {name} | {ours * 1e3:.3f} | {bare * 1e3:.3f} | {theirs * 1e3:.3f} | "
                     f"{theirs / bare:.2f} | {theirs / ours:.2f} |")
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_write:
        write_section("torch_training", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
