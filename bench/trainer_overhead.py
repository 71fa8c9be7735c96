"""What `Trainer.step` costs on top of the engine's bare training step, for large networks.

The bare step is forward, backward and Adam on one fixed batch (as in engine_vs_torch.py).
`Trainer.step`, which the app and the CLI train with, adds drawing the next mini-batch from
the data set, keeping the weights from before the step (to restore after a divergence, and
for the lab's replay), checking that every gradient is finite before the step and that no
weight left a sane range after it. The table shows both, their ratio, and the bare step with
only the batch drawn (the part of the difference that any training loop pays).

Run:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/trainer_overhead.py
Prints a table and writes it to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine_line, median_time, publish  # noqa: E402
from bench.engine_vs_torch import interleaved, mlp  # noqa: E402
from engine.core.compiler import compile_graph  # noqa: E402
from engine.data.dataset import Dataset  # noqa: E402
from engine.training.optim import make_optimizer  # noqa: E402
from engine.training.trainer import TrainConfig, Trainer  # noqa: E402

BATCH = 128
SAMPLES = 40 * BATCH
NETWORKS = [[784, 256, 128, 10], [784, 1024, 1024, 10], [784, 2048, 2048, 10]]


def random_digits(rng: np.random.Generator) -> Dataset:
    """SAMPLES rows of 784 random features with one of 10 classes (MNIST-sized)."""
    return Dataset(name="random", x=rng.standard_normal((SAMPLES, 784)),
                   y=rng.integers(0, 10, (SAMPLES, 1)).astype(np.float64),
                   task="classification", num_classes=10,
                   feature_names=[f"pixel {i}" for i in range(784)], target_names=["class"])


def steps(sizes: list[int], data: Dataset) -> dict:
    """The three steps compared, each on its own compiled program with the same seed."""
    spec = mlp(sizes, "ReLU", "CrossEntropyLoss", 1)
    bare = compile_graph(spec, seed=0)
    opt = make_optimizer("adam", bare.theta, bare.grad, 1e-3)
    x = np.ascontiguousarray(data.x, dtype=np.float32)
    y = np.ascontiguousarray(data.y, dtype=np.float32)
    # the batches of one shuffled epoch, in turn (the trainer also shuffles once an epoch)
    order = np.random.default_rng(1).permutation(SAMPLES).reshape(-1, BATCH)
    turn = [0]
    xb, yb = x[:BATCH].copy(), y[:BATCH].copy()

    def bare_step():
        bare.forward(xb, yb)
        bare.backward()
        opt.step()

    def bare_with_batches():
        idx = order[turn[0] % len(order)]
        turn[0] += 1
        bare.forward(x[idx], y[idx])
        bare.backward()
        opt.step()

    trainer = Trainer(compile_graph(spec, seed=0), data, TrainConfig(batch_size=BATCH, lr=1e-3))
    return {"bare": bare_step, "drawn": bare_with_batches, "trainer": trainer.step}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=3.0, help="seconds per network and side")
    args = ap.parse_args()
    data = random_digits(np.random.default_rng(0))
    load = os.getloadavg()[0]
    rows = []
    for sizes in NETWORKS:
        fns = steps(sizes, data)
        one = median_time(fns["bare"], 5, warmup=3)
        times = interleaved(fns, args.budget, max(20, int(args.budget / one / 3)), rounds=5)
        rows.append(("-".join(map(str, sizes)), times))
    lines = [
        "## Trainer.step against the bare step (784-H-H-10, Adam, batch 128)", "",
        f"`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/trainer_overhead.py` — "
        f"{machine_line()}. Medians of 5 interleaved rounds. *bare*: forward, backward and "
        "Adam on one fixed batch; *batches drawn*: the same with the batches of a shuffled "
        f"epoch of {SAMPLES:,} samples in turn; *Trainer.step*: what the app and the CLI "
        "run (batches drawn, the weights before the step kept, every gradient checked "
        "finite, every weight checked after the step). 1-minute load average "
        f"{load:.1f} before and {os.getloadavg()[0]:.1f} after.", "",
        "| network | bare (ms) | batches drawn (ms) | Trainer.step (ms) | Trainer / bare | "
        "Trainer / batches drawn |",
        "|---|---:|---:|---:|---:|---:|"]
    for name, t in rows:
        lines.append(f"| {name} | {t['bare'] * 1e3:.3f} | {t['drawn'] * 1e3:.3f} | "
                     f"{t['trainer'] * 1e3:.3f} | {t['trainer'] / t['bare']:.2f} | "
                     f"{t['trainer'] / t['drawn']:.2f} |")
    publish("trainer-overhead", lines)


if __name__ == "__main__":
    main()
