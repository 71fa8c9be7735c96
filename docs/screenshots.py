"""Regenerate every screenshot used by README.md and docs/ (so they never go stale).

    python docs/screenshots.py            # all of them, into docs/images/
    python docs/screenshots.py hero lab-race   # only these (names without .png)
    python docs/screenshots.py --list

Each picture is one run of the app's own command line (`python -m designer FILE --train N
--screenshot PNG …`, see docs/cli.md), offscreen unless QT_QPA_PLATFORM says otherwise, with
fresh window settings. To add a picture, add a `Shot` to SHOTS. A shot that needs a menu
action the app does not have (a feature not built yet) is skipped with a note, not failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
EXAMPLES = ROOT / "resources" / "examples"
SIZE = "1280x800"  # every picture: the window a laptop or a projector shows


@dataclass
class Shot:
    """One picture: NAME.png, of EXAMPLE, after the app options ARGS."""

    name: str
    example: str
    args: list[str] = field(default_factory=list)
    what: str = ""  # where it is used / what it shows

    def command(self, out: Path) -> list[str]:
        return [sys.executable, "-m", "designer", str(EXAMPLES / self.example), "--size", SIZE,
                *self.args, "--screenshot", str(out)]


# The canvas opens at the zoom the app picks (labels at least 10 px on screen), as a user
# sees it; no --zoom.
SHOTS = [
    Shot("hero", "spirals_classifier.json",
         ["--train", "1500", "--hide", "palette,inspector,history,chain rule,optimizer state,"
          "backprop,weights"],
         "README: the two-spirals classifier after 1500 steps, gradient-coloured wires"),
    Shot("editor", "xor_mlp.json",
         ["--select", "h1", "--hide", "training,backprop,predictions,weights"],
         "user guide: palette, canvas, inspector with a Dense layer selected"),
    Shot("training", "xor_mlp.json",
         ["--train", "300", "--select", "h1->a1", "--hide", "backprop,predictions,weights"],
         "user guide: training dock, loss plot, overlay legend, wire detail panel"),
    Shot("chain-rule", "chain_rule.json",
         ["--train", "1", "--hide", "palette,inspector,history,chain rule,optimizer state,"
          "training,backprop,predictions,weights"],
         "concepts: the pen-and-paper chain with every wire's gradient"),
    Shot("xor-start", "xor_mlp.json",
         ["--train", "1", "--hide", "palette,inspector,history,chain rule,optimizer state,"
          "training,backprop,predictions,weights"],
         "concepts: XOR after one step (gradients large near the loss)"),
    Shot("presentation", "chain_rule.json",
         ["--open", "presentation", "--train", "1"],
         "concepts: View → Presentation Mode (F11), large type and thick wires"),
    Shot("training-loop", "xor_mlp.json",
         ["--open", "learn_training_loop", "--train", "1"],
         "concepts: Learn → The Training Loop beside the graph, with the initial weights"),
    Shot("stuck-run", "spirals_classifier.json",
         ["--set", "dataset=circles", "--set", "optimizer=sgd", "--set", "lr=100",
          "--set", "validation_split=0", "--train", "120"],
         "concepts: a run with a learning rate of 100 stops learning and says so"),
    # Shots of dialogs and panels opened by a menu action (skipped while the action is missing).
    Shot("export-dialog", "xor_mlp.json", ["--train", "300", "--action", "export"],
         "user guide: File → Export Model…"),
    Shot("lab-chain-rule", "chain_rule.json",
         ["--train", "1", "--select", "a", "--open", "learn_chain_rule"],
         "learning lab: chain-rule inspector docked beside the graph"),
    Shot("lab-neurons", "xor_mlp.json",
         ["--train", "300", "--select", "h1", "--action", "learn_neurons",
          "--hide", "palette,predictions,weights,backprop,training"],
         "learning lab: a Dense layer expanded into its neurons"),
    Shot("lab-gradcheck", "xor_mlp.json",
         ["--train", "50", "--action", "learn_gradcheck", "--wait", "4000"],
         "learning lab: gradient check table"),
    Shot("lab-optimizer-state", "xor_mlp.json",
         ["--select", "out", "--open", "learn_optimizer", "--train", "100"],
         "learning lab: optimizer state of one parameter"),
    Shot("lab-landscape", "chain_rule.json",
         ["--train", "30", "--action", "learn_landscape", "--click", "Compute",
          "--wait", "6000"],
         "learning lab: loss landscape with a dot per step and the −α∇L arrow"),
    Shot("lab-race", "xor_mlp.json",
         ["--action", "learn_race", "--click", "Start race", "--wait", "40000"],
         "learning lab: optimizer race"),
    Shot("lab-lr-sweep", "xor_mlp.json",
         ["--action", "learn_lr_sweep", "--click", "Run sweep", "--wait", "8000"],
         "learning lab: learning-rate sweep"),
]

MISSING_ACTION = "There is no action called"


def run(shot: Shot, folder: Path) -> str:
    """Make one picture; returns 'ok', 'skipped: …' or 'FAILED: …'."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    out = folder / f"{shot.name}.png"
    result = subprocess.run(shot.command(out), cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    if result.returncode == 0:
        return "ok"
    errors = [line for line in result.stderr.splitlines() if line.strip()
              and "propagateSizeHints" not in line]
    if any(MISSING_ACTION in line for line in errors):
        return "skipped: the app has no such action yet"
    return "FAILED: " + (errors[-1] if errors else f"exit status {result.returncode}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="shots to make (default: all)")
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder (default docs/images)")
    parser.add_argument("--list", action="store_true", help="list the shots and exit")
    args = parser.parse_args(argv)
    if args.list:
        for shot in SHOTS:
            print(f"{shot.name:16} {shot.what}")
        return 0
    known = {s.name for s in SHOTS}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown shot(s): {', '.join(unknown)} (see --list)")
    chosen = [s for s in SHOTS if not args.names or s.name in args.names]
    failed = 0
    for shot in chosen:
        start = time.perf_counter()
        status = run(shot, args.out)
        failed += status.startswith("FAILED")
        print(f"{shot.name + '.png':20} {status}  ({time.perf_counter() - start:.0f} s)",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
