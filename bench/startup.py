"""Start-up time: `--help` of both commands, importing the window, and the first window.

Run:  python bench/startup.py [--runs N]
Each command runs N times in fresh interpreters, interleaved so drift in machine load hits
all alike; the table shows medians, next to a bare `python -c pass` for the interpreter's
own start. Writes the table to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine_line, publish  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
COMMANDS = [
    ("bare interpreter: `python -c pass`", [PY, "-c", "pass"], None),
    ("`python -m designer --help`", [PY, "-m", "designer", "--help"], "≤ 0.30 s"),
    ("`python -m engine --help`", [PY, "-m", "engine", "--help"], None),
    ("`import designer.main_window`", [PY, "-c", "import designer.main_window"], None),
    ("first window: `python -m designer --quit-after 0` (offscreen, start to exit)",
     [PY, "-m", "designer", "--quit-after", "0"], "≤ 1.5 s"),
]
PROBE = ("import sys, designer.main_window; "
         "print(','.join(m for m in ('pyqtgraph', 'designer.lab.landscape_view', "
         "'designer.lab.optimizer_state_panel', 'designer.lab.gradcheck_dialog') "
         "if m in sys.modules))")


def run_once(argv: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True, timeout=120)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    times: dict[str, list[float]] = {label: [] for label, _, _ in COMMANDS}
    for _ in range(args.runs):
        for label, argv, _ in COMMANDS:
            times[label].append(run_once(argv, env))
    loaded = subprocess.run([PY, "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
                            text=True, check=True).stdout.strip()
    base = statistics.median(times[COMMANDS[0][0]])
    lines = ["## Start-up time", "",
             f"`python bench/startup.py` — {machine_line()}. Median of {args.runs} interleaved "
             "runs each in a fresh interpreter; the machine is shared, so compare with the bare "
             "interpreter's start measured in the same run.", "",
             "| command | median (s) | minus bare start (s) | target |",
             "|---|---:|---:|---|"]
    for label, _, target in COMMANDS:
        med = statistics.median(times[label])
        lines.append(f"| {label} | {med:.3f} | {med - base:+.3f} | {target or '—'} |")
    lines += ["", "Loaded by `import designer.main_window` among pyqtgraph and the lab's "
              f"on-demand tools: {loaded or 'none'}. `--help` and bad options are answered "
              "before Qt is imported; the Loss Landscape, Optimizer Race, Learning-Rate Sweep "
              "and Gradient Check windows and the Optimizer State plots load on first use. "
              "pyqtgraph itself still loads with the first window, for the Training dock's "
              "loss plot and the prediction and weight panels that the window shows at once."]
    publish("startup", lines)


if __name__ == "__main__":
    main()
