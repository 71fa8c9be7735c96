"""The tiny GPT example trained from the GUI for two minutes of wall time, then sampled.

Opens resources/examples/tiny_gpt.json in the real main window (offscreen, 1280×800),
presses Play (training runs in the worker process, as for a user), stops after SECONDS of
wall time, saves a picture of the window, opens Learn → Generate Text, presses Generate and
saves a picture of that panel. Records the loss against the unigram baseline of the text
(the cross-entropy of always predicting the characters' overall frequencies) and the
sampled text in docs/benchmarks.md; the pictures go to docs/images/.

Run from the repository root: ``python bench/gui_gpt.py [seconds] [--blas-threads N]``
(default 120 s and numpy's own BLAS threads). With --blas-threads the window and its training
process run with OPENBLAS_NUM_THREADS=N, and the result goes to a section and pictures of its
own: on an oversubscribed machine, BLAS threads that spin waiting for a core cost more than
they bring to the tiny GPT's small matrix products.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, publish  # noqa: E402

EXAMPLE = ROOT / "resources" / "examples" / "tiny_gpt.json"
IMAGES = ROOT / "docs" / "images"
LAST = 50  # steps averaged for "the loss now" (one step's loss is one batch: noisy)


def train_and_sample(seconds: float, suffix: str) -> dict:
    """Train in the window for `seconds`, then generate; what was seen, as plain data."""
    from designer.app import setup_application, use_fresh_settings
    from designer.headless.screenshot import save_grab, settle, wait_until
    from designer.main_window import MainWindow
    from designer.training import session as states
    from engine.data.text import fables_text, unigram_entropy

    settings = use_fresh_settings()  # noqa: F841  (the default layout, not a saved one)
    setup_application([sys.argv[0]])
    window = MainWindow()
    window.show_error = lambda title, text: print(f"{title}: {text}", file=sys.stderr)
    window.ask_save_changes = lambda: "discard"
    window.resize(1280, 800)
    window.show()
    window.open_path(EXAMPLE, ask=False)
    window.view.show_graph()
    session = window.training.session
    losses: list[float] = []
    epochs: list = []

    def on_report(report) -> None:
        losses.extend(float(v) for v in report.losses)
        epochs.extend(e for _, e in report.epochs)

    session.report.connect(on_report)
    if not wait_until(lambda: session.state not in (states.EMPTY, states.COMPILING), 60_000):
        raise SystemExit("the tiny GPT did not compile within a minute")
    start = time.perf_counter()
    session.play()
    wait_until(lambda: time.perf_counter() - start >= seconds
               or session.state in (states.FAILED, states.DIVERGED), int(seconds * 1000) + 5000)
    session.pause()
    # The state says "paused" at once; the worker's last report (its final step) follows.
    wait_until(lambda: session.run.last_report is not None
               and not session.run.last_report.running, 10_000)
    wall = time.perf_counter() - start
    settle(800)
    IMAGES.mkdir(parents=True, exist_ok=True)
    save_grab(window, IMAGES / f"gpt-two-minutes{suffix}.png")

    dialog = window.sequence_lab.show_generate()
    view = dialog.view
    view.seed.setValue(0)
    settle(300)
    view.generate_button.click()
    wait_until(lambda: view.runs >= 1, 120_000)
    settle(300)
    save_grab(dialog, IMAGES / f"gpt-two-minutes{suffix}-generate.png")
    report = session.last_report
    result = {"wall": wall, "steps": report.step, "epoch": report.epoch,
              "first": losses[0] if losses else float("nan"),
              "last": sum(losses[-LAST:]) / max(1, len(losses[-LAST:])),
              "epoch_loss": epochs[-1].loss if epochs else None,
              "unigram": unigram_entropy(fables_text()), "prompt": view.prompt.text(),
              "temperature": view.temperature.value(), "text": view.text,
              "state": session.state}
    view.cancel()
    window.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", nargs="?", type=float, default=120.0)
    parser.add_argument("--blas-threads", type=int, help="OPENBLAS_NUM_THREADS for the run")
    args = parser.parse_args()
    seconds, suffix, setting = args.seconds, "", ""
    if args.blas_threads:  # before numpy loads, here and in the training process
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
        suffix = f"-blas{args.blas_threads}"
        setting = f" --blas-threads {args.blas_threads}"
    r = train_and_sample(seconds, suffix)
    below = 1 - r["last"] / r["unigram"]
    epoch = (f"; the last finished epoch's mean loss {r['epoch_loss']:.3f}"
             if r["epoch_loss"] is not None else "")
    sample = (r["prompt"] + r["text"]).replace("\n", " ⏎ ")
    lines = [
        f"## Tiny GPT trained from the GUI for {seconds:g} seconds"
        + (f" (OPENBLAS_NUM_THREADS={args.blas_threads})" if suffix else ""),
        "",
        f"`python bench/gui_gpt.py {seconds:g}{setting}` — {machine_line()}; the real main window "
        "(offscreen, 1280×800) opens resources/examples/tiny_gpt.json, presses Play (training "
        "runs in the worker process with the example's settings), pauses after "
        f"{seconds:g} s of wall time, then samples with Learn → Generate Text. The machine "
        "was shared with other jobs, so the steps done in the time vary from run to run.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| wall time from Play to Pause | {r['wall']:.0f} s |",
        f"| steps / epochs done | {r['steps']:,} / {r['epoch']} |",
        f"| loss of the first step | {r['first']:.3f} |",
        f"| loss now (mean of the last {LAST} steps' batch losses) | {r['last']:.3f}{epoch} |",
        f"| unigram baseline (entropy of the text's character frequencies) | "
        f"{r['unigram']:.3f} |",
        f"| loss now vs baseline | {below:.0%} below |",
        "",
        f"Sampled text (prompt “{r['prompt']}”, temperature {r['temperature']:g}, seed 0; "
        "line breaks shown as ⏎; the prompt is part of the quote):",
        "",
        f"> {sample}",
        "",
        f"![The tiny GPT after {seconds:g} s of training](images/gpt-two-minutes{suffix}.png)",
        "",
        f"![Generate Text after {seconds:g} s of training]"
        f"(images/gpt-two-minutes{suffix}-generate.png)",
    ]
    publish("gui_gpt" + suffix.replace("-", "_"), lines)


if __name__ == "__main__":
    main()
