"""Learning-rate sweep: short runs from the same start, one per learning rate.

Every run starts from the same initial weights (the graph compiled with the config's
seed) and sees the same batches (a fresh Trainer seeded alike), takes `steps` optimizer
steps, and is scored by the loss on the whole dataset in evaluation mode.

The rule that labels each learning rate (L₀ = loss before training, Lᵢ = after):

* diverged: the run hit NaN/Inf, a batch loss above ``diverge_factor``·L₀, or ended
  higher than it started (Lᵢ > L₀·(1 + rise_tolerance)). Diverged runs are
  "too large (diverging)".
* best: the non-diverged run with the lowest Lᵢ. Its progress is g* = ln(L₀/L_best).
* "good": not diverged and progress ln(L₀/Lᵢ) ≥ good_fraction·g* (by default it
  got at least half as many e-folds of loss reduction as the best).
* otherwise "too small (slow)" below the best learning rate and "too large (learns less)"
  above it: the loss fell, just less than at the best rate. Only a run whose loss rose or
  went non-finite is called diverging.

If no run lowered the loss, there is no best and every finite run is "too small (slow)".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from engine.core.compiler import compile_graph
from engine.core.spec import GraphSpec
from engine.errors import GradscapeError, TrainingDiverged
from engine.training.trainer import TrainConfig, Trainer

TOO_SMALL = "too small (slow)"
GOOD = "good"
TOO_LARGE = "too large (diverging)"
TOO_LARGE_SLOW = "too large (learns less)"
NOT_RUN = ""  # cancelled before this learning rate ran
DEFAULT_LRS = tuple(float(v) for v in np.logspace(-4, 1, 16))  # 1e-4 … 10


@dataclass(frozen=True)
class SweepResult:
    """One entry per learning rate (in the order given); plain floats, bools and strings."""

    lrs: tuple[float, ...]
    initial_loss: float
    final_losses: tuple[float, ...]  # whole-dataset loss after the run (nan if not run)
    diverged: tuple[bool, ...]
    regions: tuple[str, ...]  # TOO_SMALL, GOOD, TOO_LARGE_SLOW, TOO_LARGE, or NOT_RUN
    best_lr: float | None
    curves: tuple[tuple[float, ...], ...]  # batch loss per step of each run
    completed: int  # learning rates run to the end
    cancelled: bool


def lr_sweep(spec: GraphSpec, data: Any, config: TrainConfig,
             lrs: Sequence[float] | np.ndarray = DEFAULT_LRS, steps: int = 100,
             should_continue: Callable[[int, int], bool] | None = None,
             good_fraction: float = 0.5, diverge_factor: float = 1e4,
             rise_tolerance: float = 0.01) -> SweepResult:
    """Run `steps` steps for every learning rate and label each (see the module rule).

    `config` supplies optimizer, batch size, seed, dtype and the rest; only lr changes.
    `should_continue(runs_done, runs_total)` is asked after every step; False stops
    the sweep (the unfinished run is dropped, the result has ``cancelled=True``).
    """
    lr_list = [float(v) for v in lrs]
    if not lr_list or any(not (v > 0 and math.isfinite(v)) for v in lr_list):
        raise GradscapeError("The learning rates must be positive numbers.")
    if not (isinstance(steps, int) and steps >= 1):
        raise GradscapeError(f"steps must be a whole number ≥ 1, not {steps!r}.")
    program = compile_graph(spec, dtype=config.dtype, seed=config.seed)
    start = program.state_dict()
    probe = Trainer(program, data, replace(config, lr=lr_list[0]))
    initial = probe.evaluate(data)[0]
    n = len(lr_list)
    finals = [float("nan")] * n
    diverged = [False] * n
    curves: list[tuple[float, ...]] = [()] * n
    cancelled = False
    done = 0
    for k, lr in enumerate(lr_list):
        program.load_state_dict(start)
        trainer = Trainer(program, data, replace(config, lr=lr))
        curve: list[float] = []
        blew_up = False
        for _ in range(steps):
            try:
                with np.errstate(over="ignore", invalid="ignore"):  # large lrs may blow up
                    loss = trainer.step().loss
            except TrainingDiverged:
                blew_up = True
                break
            curve.append(loss)
            if not math.isfinite(loss) or loss > diverge_factor * initial:
                blew_up = True
                break
            if should_continue is not None and not should_continue(done, n):
                cancelled = True
                break
        if cancelled:
            break
        with np.errstate(over="ignore", invalid="ignore"):
            final = float("inf") if blew_up else float(trainer.evaluate(data)[0])
        if not math.isfinite(final):
            final, blew_up = float("inf"), True
        finals[k] = final
        diverged[k] = blew_up or final > initial * (1.0 + rise_tolerance)
        curves[k] = tuple(curve)
        done += 1
        if should_continue is not None and not should_continue(done, n):
            cancelled = done < n
            break
    regions, best_lr = classify(lr_list, initial, finals[:done], diverged[:done], good_fraction)
    regions += [NOT_RUN] * (n - done)
    return SweepResult(tuple(lr_list), float(initial), tuple(finals), tuple(diverged),
                       tuple(regions), best_lr, tuple(curves), done, cancelled)


def classify(lrs: Sequence[float], initial: float, finals: Sequence[float],
             diverged: Sequence[bool], good_fraction: float = 0.5
             ) -> tuple[list[str], float | None]:
    """Regions and best learning rate for the completed runs (the module's rule)."""
    n = len(finals)
    ok = [k for k in range(n) if not diverged[k] and math.isfinite(finals[k])]
    if not ok:
        return [TOO_LARGE] * n, None
    best = min(ok, key=lambda k: finals[k])
    gain_best = _gain(initial, finals[best])
    if not gain_best > 0.0:  # nothing learned anything
        return [TOO_LARGE if diverged[k] else TOO_SMALL for k in range(n)], None
    regions = []
    for k in range(n):
        if diverged[k]:
            regions.append(TOO_LARGE)
        elif k == best or _gain(initial, finals[k]) >= good_fraction * gain_best:
            regions.append(GOOD)
        else:
            regions.append(TOO_SMALL if lrs[k] < lrs[best] else TOO_LARGE_SLOW)
    return regions, lrs[best]


def _gain(initial: float, final: float) -> float:
    """Progress ln(L₀/L) in e-folds (infinite at a loss of exactly 0)."""
    if not initial > 0.0:
        return 0.0
    return math.inf if final <= 0.0 else math.log(initial / final)
