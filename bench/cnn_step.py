"""What chains and kept memory give the 3×32×32 CNN's training step.

The CNN of bench/engine_vs_torch.py (batch 64, float32, Adam) with and without Conv2D →
ReLU → max-pool chains (engine.ops.conv_chain; off: GRADSCAPE_CHAINS=0) and with and
without keeping a step's freed memory for the next (engine.core.allocator; off:
GRADSCAPE_MALLOC=0), each in a fresh process, in interleaved rounds, with the page faults
and system time a step costs. Both are process-wide settings, hence one process each.

Run:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/cnn_step.py
Prints a table and writes it to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, publish  # noqa: E402

CONFIGS = [  # (label, environment)
    ("node by node, memory handed back (as before)", {"GRADSCAPE_CHAINS": "0",
                                                     "GRADSCAPE_MALLOC": "0"}),
    ("node by node, memory kept", {"GRADSCAPE_CHAINS": "0", "GRADSCAPE_MALLOC": "1"}),
    ("chained, memory handed back", {"GRADSCAPE_CHAINS": "1", "GRADSCAPE_MALLOC": "0"}),
    ("chained, memory kept (now)", {"GRADSCAPE_CHAINS": "1", "GRADSCAPE_MALLOC": "1"}),
]

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np
from bench.engine_vs_torch import SCALING, our_step

step = our_step(next(r for r in SCALING if r.key == "CNN"))[3]
for _ in range(15):
    step()
before = resource.getrusage(resource.RUSAGE_SELF)
times = []
for _ in range({steps}):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"step": float(np.median(times)),
                  "faults": (after.ru_minflt - before.ru_minflt) / {steps},
                  "system": (after.ru_stime - before.ru_stime) / {steps}}}))
"""


def run(env: dict, steps: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), steps=steps)],
                         env={**os.environ, **env}, capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {label: [] for label, _ in CONFIGS}
    for _ in range(args.rounds):
        for label, env in CONFIGS:
            results[label].append(run(env, args.steps))
    base = statistics.median(r["step"] for r in results[CONFIGS[0][0]])
    lines = [
        "## The 3×32×32 CNN's step: chains and kept memory",
        "",
        f"`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/cnn_step.py` — "
        f"{machine_line()}. The CNN row of the engine-vs-PyTorch table (batch 64, float32, "
        "Adam), each configuration in a fresh process with the chunk threads the machine "
        "allows; median over "
        f"{args.rounds} interleaved rounds of each process's median step ({args.steps} "
        "steps after 15 warm-up). Page faults and system time are per step.",
        "",
        "| configuration | step (ms) | ÷ as before | page faults | system time (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, _ in CONFIGS:
        rs = results[label]
        step = statistics.median(r["step"] for r in rs)
        lines.append(f"| {label} | {step * 1e3:.2f} | {step / base:.2f} | "
                     f"{statistics.median(r['faults'] for r in rs):,.0f} | "
                     f"{statistics.median(r['system'] for r in rs) * 1e3:.2f} |")
    publish("cnn_step", lines)


if __name__ == "__main__":
    main()
