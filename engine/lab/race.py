"""Optimizer race: several optimizers train copies of one graph side by side.

Every contender gets its own compiled copy of the graph with the same initial weights
(compiled with the race's seed, then the first copy's weights and buffers are copied
into the others) and its own `Trainer` seeded with the race's seed. Each epoch a
trainer shuffles the data with one ``rng.permutation`` call, so every contender sees
the *same sample order in every epoch*: with equal batch sizes the batches are
identical, with different batch sizes the same permutation is cut into batches of
each contender's size (a batch of 32 covers the same samples as the first 32 samples
of a full batch). Contenders with different batch sizes therefore reach the end of an
epoch after different numbers of steps; compare them per step (`losses`) or per epoch
(`epoch_losses`, `samples_seen`).

`step_all()` makes one optimizer step per running contender; `run(epochs)` advances
every contender by whole epochs, round-robin one step at a time, and can be cancelled
between steps. A contender whose loss or gradient becomes NaN/Inf, or whose batch loss
grows beyond ``diverge_factor`` × its first loss, is marked diverged and simply stops;
the race goes on.

A contender may also change the graph's loss (`RaceEntry.loss`, e.g. "MSELoss" against
"BCELoss"): its copy of the graph is compiled with that loss op instead. The summary
`results()` scores every contender by its loss on the *whole training set* in evaluation
mode (`train_loss`), not by its last batch, which for a one-sample batch can be any number.
Contenders with a different loss function are scored by their own loss; their accuracy
(`train_accuracy`) is the number to compare across losses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engine.core import registry
from engine.core.compiler import compile_graph
from engine.core.program import Program
from engine.core.spec import GraphSpec
from engine.errors import GradscapeError, TrainingDiverged
from engine.training.trainer import TrainConfig, Trainer


@dataclass
class RaceEntry:
    """One contender: an optimizer with its learning rate, batch size and settings."""

    label: str
    optimizer: str = "adam"
    lr: float = 0.01
    batch_size: int | None = 32  # None or 0: full batch
    optimizer_params: dict[str, Any] = field(default_factory=dict)
    loss: str | None = None  # a loss op id replacing the graph's loss node(s); None keeps it


# Rates that make each one visibly learn XOR within DEFAULT_EPOCHS: full-batch GD takes one
# step per epoch, so it needs a large rate to move in 50 steps.
DEFAULT_EPOCHS = 50
DEFAULT_ENTRIES = (
    RaceEntry("Full-batch GD", "sgd", 2.0, None),
    RaceEntry("SGD (1 sample)", "sgd", 0.1, 1),
    RaceEntry("Mini-batch SGD (16)", "sgd", 0.5, 16),
    RaceEntry("Momentum (16)", "momentum", 0.1, 16),
    RaceEntry("Adam (16)", "adam", 0.01, 16),
)


@dataclass
class Contender:
    """A contender's live state and histories (index k of `losses` is step k + 1)."""

    entry: RaceEntry
    program: Program
    trainer: Trainer
    losses: list[float] = field(default_factory=list)  # batch loss per step
    samples_seen: list[int] = field(default_factory=list)  # cumulative, per step
    epoch_losses: list[float] = field(default_factory=list)  # mean batch loss per epoch
    snapshots: list[np.ndarray] = field(default_factory=list)  # theta copies
    snapshot_steps: list[int] = field(default_factory=list)
    diverged: bool = False
    message: str = ""

    @property
    def label(self) -> str:
        return self.entry.label

    @property
    def steps(self) -> int:
        return self.trainer.step_count

    @property
    def epochs(self) -> int:
        return self.trainer.epoch


@dataclass(frozen=True)
class RaceResult:
    """Plain numbers describing one contender, for tables and legends."""

    label: str
    steps: int
    epochs: int
    final_loss: float  # last batch loss (nan before the first step)
    best_loss: float
    diverged: bool
    message: str
    train_loss: float = float("nan")  # whole training set, evaluation mode (nan if diverged)
    train_accuracy: float | None = None  # classification only


class OptimizerRace:
    """Train copies of `spec` with each contender's optimizer in lockstep.

    Args:
        spec: the graph.
        contenders: the RaceEntry list (labels should be unique).
        data: the training Dataset (x, y).
        seed: initial weights and data order, shared by all.
        config: other training settings (schedule, clipping, L1/L2, dtype); its
            optimizer, lr, batch size and seed are replaced per contender.
        snapshot_every: keep a copy of theta every this many steps (0: none); the initial
            weights are always kept when snapshots are on. At most `max_snapshots` per
            contender (then every other one is dropped and the interval doubles).
        diverge_factor: a batch loss above this × the first loss counts as diverged.
    """

    def __init__(self, spec: GraphSpec, contenders: list[RaceEntry], data: Any, seed: int = 0,
                 config: TrainConfig | None = None, snapshot_every: int = 0,
                 max_snapshots: int = 2000, diverge_factor: float = 1e4):
        if not contenders:
            raise GradscapeError("A race needs at least one contender.")
        base = config or TrainConfig()
        self.seed = seed
        self.snapshot_every = int(snapshot_every)
        self.max_snapshots = max(2, int(max_snapshots))
        self.diverge_factor = float(diverge_factor)
        self.contenders: list[Contender] = []
        first: Program | None = None
        for entry in contenders:
            cfg = replace(base, optimizer=entry.optimizer, lr=entry.lr,
                          batch_size=entry.batch_size or 0,
                          optimizer_params=dict(entry.optimizer_params), seed=seed)
            cfg.validate()
            program = compile_graph(with_loss(spec, entry.loss), dtype=cfg.dtype, seed=seed)
            if first is None:
                first = program
            else:
                program.load_state_dict(first.state_dict())
            c = Contender(entry, program, Trainer(program, data, cfg))
            if self.snapshot_every:
                c.snapshots.append(program.theta.copy())
                c.snapshot_steps.append(0)
            self.contenders.append(c)
        self._n = len(data)
        self.data = data

    @property
    def running(self) -> list[Contender]:
        return [c for c in self.contenders if not c.diverged]

    def step_all(self) -> list[float | None]:
        """One optimizer step for every running contender; the losses (None if stopped)."""
        return [self._step(c) if not c.diverged else None for c in self.contenders]

    def _step(self, c: Contender) -> float | None:
        t = c.trainer
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is expected here
                report = t.step()
        except TrainingDiverged as exc:
            c.diverged, c.message = True, str(exc)
            return None
        loss = report.loss
        c.losses.append(loss)
        batch = t.last_batch
        c.samples_seen.append((c.samples_seen[-1] if c.samples_seen else 0) + len(batch))
        if report.epoch_done is not None:
            c.epoch_losses.append(report.epoch_done.loss)
        if self.snapshot_every and t.step_count % self.snapshot_every == 0:
            self._snapshot(c)
        first = c.losses[0]
        if not math.isfinite(loss) or (first > 0 and loss > self.diverge_factor * first):
            c.diverged = True
            c.message = (f"The loss grew from {first:.4g} to {loss:.4g} at step "
                         f"{t.step_count}; the learning rate {c.entry.lr:g} is too large.")
        return loss

    def _snapshot(self, c: Contender) -> None:
        c.snapshots.append(c.program.theta.copy())
        c.snapshot_steps.append(c.trainer.step_count)
        if len(c.snapshots) > self.max_snapshots:
            c.snapshots[:] = c.snapshots[::2]
            c.snapshot_steps[:] = c.snapshot_steps[::2]

    def run(self, epochs: int = 1,
            should_continue: Callable[[OptimizerRace], bool] | None = None) -> list[RaceResult]:
        """Advance every running contender by `epochs` whole epochs of its own.

        Contenders take turns, one step each; `should_continue(race)` is asked after every
        round and False stops early (contenders may then be mid-epoch).
        """
        targets = {id(c): c.epochs + int(epochs) for c in self.contenders}
        while True:
            busy = [c for c in self.running if c.epochs < targets[id(c)]]
            if not busy:
                break
            for c in busy:
                self._step(c)
            if should_continue is not None and not should_continue(self):
                break
        return self.results()

    def evaluate(self, data: Any) -> list[float]:
        """Each contender's loss on a whole dataset in evaluation mode (nan if diverged)."""
        return [float("nan") if c.diverged else c.trainer.evaluate(data)[0]
                for c in self.contenders]

    def results(self) -> list[RaceResult]:
        """Every contender's numbers, scored on the whole training set."""
        out = []
        for c in self.contenders:
            finite = [v for v in c.losses if math.isfinite(v)]
            loss, acc = float("nan"), None
            if not c.diverged:
                with np.errstate(over="ignore", invalid="ignore"):
                    loss, acc = c.trainer.evaluate(self.data)
            out.append(RaceResult(c.label, c.steps, c.epochs,
                                  c.losses[-1] if c.losses else float("nan"),
                                  min(finite) if finite else float("nan"), c.diverged,
                                  c.message, float(loss), acc))
        return out


def with_loss(spec: GraphSpec, loss: str | None) -> GraphSpec:
    """`spec` with every loss node's op replaced by `loss` (its parameters dropped)."""
    if not loss:
        return spec
    op = registry.get(loss)
    if op is None or not getattr(op, "is_loss", False):
        raise GradscapeError(f"'{loss}' is not a loss function.")
    nodes = tuple(replace(n, op=loss, params={})
                  if getattr(registry.get(n.op), "is_loss", False) else n for n in spec.nodes)
    return replace(spec, nodes=nodes)
