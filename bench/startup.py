"""Start-up time: `--help` of both commands, importing the window, and the first window.

Run:  python bench/startup.py [--runs N]
Each command runs N times in fresh interpreters, interleaved so drift in machine load hits
all alike; the table shows medians, next to a bare `python -c pass` for the interpreter's
own start. Like an installed copy (pip compiles the bytecode), the runs use cached bytecode:
PYTHONDONTWRITEBYTECODE is dropped and one unmeasured round writes the caches. Writes the
table to docs/benchmarks.md.
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
from designer.app import SHOWN_LINE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
COMMANDS = [
    ("bare interpreter: `python -c pass`", [PY, "-c", "pass"], None),
    ("`python -m designer --help`", [PY, "-m", "designer", "--help"], "≤ 0.30 s"),
    ("`python -m engine --help`", [PY, "-m", "engine", "--help"], None),
    ("`import designer.main_window`", [PY, "-c", "import designer.main_window"], None),
    ("first window: `python -m designer --quit-after 0` (offscreen, start to first paint)",
     [PY, "-m", "designer", "--quit-after", "0"], "≤ 1.5 s"),
]
EXIT_LABEL = "the same, start to exit (closing waits for the training process)"
PROBE = ("import sys; from designer.app import main; sys.argv[1:] = ['--quit-after', '0']; "
         "main(); print(','.join(m for m in ('pyqtgraph', 'designer.training.loss_plot', "
         "'designer.lab.prediction_view', 'designer.lab.weights_view', "
         "'designer.lab.landscape_view', 'designer.lab.optimizer_state_panel', "
         "'designer.lab.gradcheck_dialog') if m in sys.modules))")


def run_once(argv: list[str], env: dict) -> tuple[float, float | None]:
    """(seconds to exit, seconds until the program printed SHOWN_LINE or None)."""
    t0 = time.perf_counter()
    shown = None
    with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True) as proc:
        for line in proc.stdout:
            if shown is None and line.strip() == SHOWN_LINE:
                shown = time.perf_counter() - t0
        if proc.wait(timeout=120):
            raise subprocess.CalledProcessError(proc.returncode, argv)
    return time.perf_counter() - t0, shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    load_before = os.getloadavg()[0]
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for _label, argv, _ in COMMANDS:  # writes the bytecode caches; not measured
        run_once(argv, env)
    times: dict[str, list[float]] = {label: [] for label, _, _ in COMMANDS}
    times[EXIT_LABEL] = []
    for _ in range(args.runs):
        for label, argv, _ in COMMANDS:
            total, shown = run_once(argv, env)
            times[label].append(total if shown is None else shown)
            if shown is not None:
                times[EXIT_LABEL].append(total)
    loaded = subprocess.run([PY, "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
                            text=True, check=True).stdout.strip().splitlines()
    loaded = [line for line in loaded if line != SHOWN_LINE]
    base = statistics.median(times[COMMANDS[0][0]])
    lines = ["## Start-up time", "",
             f"`python bench/startup.py` — {machine_line()}; 1-minute load average "
             f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after. "
             f"Median of {args.runs} interleaved "
             "runs each in a fresh interpreter; the machine is shared, so compare with the bare "
             "interpreter's start measured in the same run.", "",
             "| command | median (s) | minus bare start (s) | target |",
             "|---|---:|---:|---|"]
    for label, target in [(c[0], c[2]) for c in COMMANDS] + [(EXIT_LABEL, None)]:
        med = statistics.median(times[label])
        lines.append(f"| {label} | {med:.3f} | {med - base:+.3f} | {target or '—'} |")
    lines += ["", "Loaded by the first window among pyqtgraph, its plots and the lab's "
              f"on-demand tools: {''.join(loaded) or 'none'}. `--help` and bad options are "
              "answered before Qt is imported. The window opens with light stand-ins for the "
              "loss plot and the Predictions and Weights views; pyqtgraph and those plots are "
              "built right after the first paint, one per event-loop turn (or at once when "
              "Play is pressed first), and the Training Loop, Loss Landscape, Optimizer Race, "
              "Learning-Rate Sweep, Gradient Check, Attention and Optimizer State views load "
              "when first opened. The training process starts in the background (its "
              "forkserver imports the engine), so the window does not wait for it."]
    publish("startup", lines)


if __name__ == "__main__":
    main()
