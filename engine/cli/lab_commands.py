"""Command-line `race`, `sweep` and `explain`: the Learn menu's maths without a window
(added to `python -m engine` by engine.cli.main)."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.errors import GradscapeError


def add_commands(sub: Any, add_data_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `race`, `sweep` and `explain` to an argparse subparsers object."""
    from engine.lab.race import DEFAULT_EPOCHS

    p = sub.add_parser("race", help="optimizer race: contenders train copies of the graph from "
                       "the same start; scored on the whole training set")
    p.add_argument("graph")
    add_data_args(p)
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                   help=f"epochs per contender (default {DEFAULT_EPOCHS})")
    p.add_argument("--contender", action="append", metavar="NAME=OPT:LR:BATCH[:LOSS]",
                   help="a contender, e.g. 'GD=sgd:2:0' or 'CE=sgd:2:0:BCELoss' (batch 0 = full "
                   "batch; repeatable; default: GD, SGD, mini-batch, momentum and Adam)")
    p.set_defaults(func=cmd_race)

    p = sub.add_parser("sweep", help="learning-rate sweep: short runs from the same start, "
                       "one per rate, each labelled too small / good / too large")
    p.add_argument("graph")
    add_data_args(p)
    p.add_argument("--steps", type=int, default=100, help="steps per rate (default 100)")
    p.add_argument("--lr-min", type=float, default=1e-4)
    p.add_argument("--lr-max", type=float, default=10.0)
    p.add_argument("--count", type=int, default=16, help="rates, log-spaced (default 16)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("explain", help="chain rule: ∂L/∂θ of a scalar Parameter node as a sum "
                       "over paths of named local derivatives (first batch)")
    p.add_argument("graph")
    p.add_argument("node", help="a Parameter node holding one number, e.g. 'a'")
    add_data_args(p)
    p.add_argument("--batch-size", type=int)
    p.set_defaults(func=cmd_explain)


def parse_contender(text: str):
    """'NAME=OPT:LR:BATCH[:LOSS]' → RaceEntry (raises GradscapeError with a sentence)."""
    from engine.lab.race import RaceEntry

    name, _, rest = text.partition("=")
    parts = rest.split(":")
    if not name or len(parts) not in (3, 4):
        raise GradscapeError(f"The contender '{text}' must look like NAME=OPT:LR:BATCH or "
                             "NAME=OPT:LR:BATCH:LOSS, e.g. 'GD=sgd:2:0'.")
    try:
        lr, batch = float(parts[1]), int(parts[2])
    except ValueError:
        raise GradscapeError(f"In the contender '{text}' the learning rate must be a number and "
                             "the batch size a whole number.") from None
    return RaceEntry(name, parts[0], lr, batch or None, loss=parts[3] if len(parts) == 4
                     else None)


def cmd_race(args: argparse.Namespace) -> int:
    """`race`: a table of every contender's whole-training-set loss and accuracy."""
    from engine.cli.main import _prepare
    from engine.lab.race import DEFAULT_ENTRIES, OptimizerRace

    spec, cfg, _program, data = _prepare(args)
    if cfg.validation_split:
        data, _val = data.split(float(cfg.validation_split), cfg.seed)
    entries = [parse_contender(t) for t in args.contender] if args.contender \
        else list(DEFAULT_ENTRIES)
    race = OptimizerRace(spec, entries, data, seed=cfg.seed, config=cfg)
    before = race.results()
    race.run(args.epochs)
    print(f"whole training set ({len(data)} samples), evaluation mode, after {args.epochs} "
          "epochs")
    print(f"{'contender':<24} {'steps':>7} {'loss before':>12} {'loss after':>12} "
          f"{'accuracy':>9}")
    for b, r in zip(before, race.results()):
        after = "diverged" if r.diverged else f"{r.train_loss:.4g}"
        acc = "" if r.train_accuracy is None or r.diverged else f"{r.train_accuracy:.1%}"
        print(f"{r.label:<24} {r.steps:>7} {b.train_loss:>12.4g} {after:>12} {acc:>9}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """`sweep`: one line per learning rate with its final loss and region."""
    from engine.cli.main import _prepare
    from engine.lab.lr_sweep import lr_sweep

    spec, cfg, _program, data = _prepare(args)
    if not (0 < args.lr_min < args.lr_max) or args.count < 2:
        raise GradscapeError("Give 0 < --lr-min < --lr-max and --count of at least 2.")
    lrs = np.logspace(math.log10(args.lr_min), math.log10(args.lr_max), args.count)
    result = lr_sweep(spec, data, cfg, lrs=lrs, steps=args.steps)
    print(f"loss before training {result.initial_loss:.4g}; {args.steps} steps per rate; "
          "losses on the whole dataset")
    for lr, final, region in zip(result.lrs, result.final_losses, result.regions):
        mark = "  ← best" if result.best_lr == lr else ""
        print(f"  lr {lr:<10.3g} loss {final:<10.4g} {region}{mark}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """`explain`: the chain-rule sum for one scalar parameter, on the first batch."""
    from engine.cli.main import _first_batch, _prepare
    from engine.lab.chain_rule import explain_parameter_path

    args.dtype = "float64"
    _spec, cfg, program, data = _prepare(args, input_grads=True)
    x, y = _first_batch(cfg, data)
    program.forward(x, y)
    program.backward()
    explanation = explain_parameter_path(program, args.node)
    print(explanation.formula)
    ok = explanation.error <= 1e-12 * max(1.0, abs(explanation.param_grad))
    print(("✓ equals" if ok else "≠") + f" the gradient backprop stored: "
          f"{explanation.param_grad:.6g}", file=sys.stdout)
    return 0
