"""The training worker: owns a Program and a Trainer and sends small reports. No Qt.

It runs in a process of its own (`worker_process.serve`), so training and painting never
compete for one interpreter lock. Commands arrive as messages between two steps; answers
leave through `send((kind, *payload))`. The loop runs optimizer steps in slices of at most
one report interval and checks for a waiting command after every step, so Pause takes
effect after at most one step.

Only small things cross to the GUI: losses, counters, per-edge `Summary` objects (a few
floats per edge) and the values of small parameter tensors; whole arrays only on demand
for one edge (`request_detail`) or through a job.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.core import registry
from engine.core.compiler import compile_graph
from engine.core.program import Program
from engine.core.spec import EdgeSpec, GraphSpec
from engine.core.stats import Summary, histogram, summarize
from engine.errors import CompileError, GradscapeError, TrainingDiverged
from engine.training.trainer import EpochReport, TrainConfig, Trainer, load_data

REPORT_INTERVAL = 0.1  # seconds between reports while running (the window shows 5/s)
# Seconds between looks for a waiting command. Looking (a poll of the pipe, ~5 µs) after
# every step cost 2–3% of a small network's 0.2 ms step; once a millisecond costs nothing
# a user could see.
COMMAND_CHECK_INTERVAL = 0.001
SMALL_PARAMETER = 16  # tensors with at most this many numbers travel in every report
SNAPSHOTS_KEPT = 8  # graph versions (programs) that undo/redo can bring back exactly
SATURATION_MARGIN = 0.02  # "near the bound": within 2 % of the output range


@dataclass
class LoadJob:
    """What the worker needs to (re)build its program: sent by the session.

    Attributes:
        revision: the document revision this job was built from (tags every report).
        spec: the graph to compile.
        keep_weights: copy the weights of unchanged nodes from the current program.
    """

    revision: int
    spec: GraphSpec
    keep_weights: bool = True
    key: str = ""  # what compiles (nodes, edges, training): same key, same graph version


@dataclass
class TrainingReport:
    """A small report of the training state, sent at most 10 times a second.

    `losses` holds every step loss since the previous report (steps `first_step` ..
    `step`), so the loss plot misses no point. `values` / `grads` are the per-edge
    summaries after the last step, indexed like `edges` (the program's edge list).
    `flags` maps an edge index to the fraction of dead (ReLU) or saturated
    (Sigmoid/Tanh) units in the value it carries.
    """

    revision: int
    step: int
    epoch: int
    loss: float
    lr: float
    steps_per_second: float
    running: bool
    first_step: int = 0
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    epochs: list[tuple[int, EpochReport]] = field(default_factory=list)  # (step, report)
    edges: list[EdgeSpec] = field(default_factory=list)
    values: list[Summary | None] = field(default_factory=list)
    grads: list[Summary | None] = field(default_factory=list)
    flags: dict[int, float] = field(default_factory=dict)
    finished: bool = False
    target_epoch: int = 0  # the epoch this run stops at (grows when Play continues a run)
    run: int = 0  # the Play that produced it (stale "stopped" reports of an earlier Play)
    parameters: dict[str, np.ndarray] = field(default_factory=dict)  # small tensors, by key
    stopped_at: float = 0.0  # time.perf_counter() when the loop saw a pause (0: running)
    continued: bool = False  # Play went on past a finished run (target_epoch grew)


@dataclass
class EdgeDetail:
    """Everything shown for one selected wire: shape, stats and histograms."""

    revision: int
    edge: EdgeSpec
    shape: tuple[int, ...]
    value: Summary | None
    grad: Summary | None
    value_hist: tuple[list[int], list[float]] | None
    grad_hist: tuple[list[int], list[float]] | None


@dataclass
class WorkerJob:
    """A function to run on the training thread between two steps.

    `fn(program, trainer)` may read anything (the program after the last step: values,
    gradients, weights) and should return quickly with plain data or copies; long work
    (a loss landscape, a race) belongs on a thread of its own, fed with those copies.
    `program` and `trainer` are None when the graph does not compile.
    """

    fn: Any
    on_done: Any
    on_error: Any = None
    result: Any = None
    error: str | None = None
    revision: int = -1
    with_worker: bool = False  # call fn(program, trainer, worker): counters, publish()


class TrainingWorker:
    """Runs a Trainer; every answer goes out through `send((kind, *payload))`.

    Messages sent:
        ("loaded", revision, num_parameters, task): a program is ready.
        ("failed", revision, message): the graph or data could not be used.
        ("report", TrainingReport): progress (at most 10 per second while running).
        ("diverged", revision, message, node): training stopped, last good weights kept.
        ("was_reset", revision): weights were re-initialised; counters are back at zero.
        ("detail", EdgeDetail): the answer to `request_detail`.
    """

    def __init__(self, send) -> None:
        self.send = send
        self.program: Program | None = None
        self.trainer: Trainer | None = None
        self.config: TrainConfig | None = None
        self.revision = -1
        self.key = ""
        self.run_id = 0
        self.running = False
        self._step_base = 0  # steps done by previous trainers (kept across recompiles)
        self._epoch_base = 0
        self._target_epoch = 0
        self._pending_losses: list[float] = []
        self._pending_epochs: list[tuple[int, EpochReport]] = []
        self._first_pending = 1
        self._rate_mark: tuple[float, int] = (time.perf_counter(), 0)
        self._rate = 0.0
        self._last_step_report: Any = None
        self._continued = False
        self._steps_ever = 0  # optimizer steps taken by this worker, never reset
        self.stash: dict[str, Any] = {}  # what one job leaves for a later one
        # Graph versions left behind, for undo/redo: key -> (steps_ever, program, ...)
        self._snapshots: dict[str, tuple] = {}

    # -- counters ------------------------------------------------------------------------
    @property
    def step_count(self) -> int:
        """Steps since the last weight reset (across recompiles)."""
        return self._step_base + (self.trainer.step_count if self.trainer else 0)

    @property
    def epoch_count(self) -> int:
        return self._epoch_base + (self.trainer.epoch if self.trainer else 0)

    # -- commands ------------------------------------------------------------------------
    def load(self, job: LoadJob) -> None:
        """Compile `job.spec` and build a fresh Trainer.

        With `keep_weights`, nodes whose op, params and input shapes did not change keep
        their weights; and a graph version seen before, with no step taken since it was
        left, comes back exactly (weights, optimizer state, counters): undo then redo
        loses nothing.
        """
        self.running = False
        self._flush_pending()
        self._remember_current()
        old_program = self.program
        old_spec = old_program.spec if old_program is not None else None
        if self.trainer is not None:
            self._step_base += self.trainer.step_count
            self._epoch_base += self.trainer.epoch
        self.program = self.trainer = None
        self.revision, self.key = job.revision, job.key
        snapshot = self._snapshots.pop(job.key, None) if job.keep_weights else None
        if snapshot is not None and snapshot[0] == self._steps_ever:
            # The same graph version, and no step taken since it was left: take it back as
            # it was (weights, optimizer state, counters), so undo/redo loses nothing.
            (_, program, trainer, self._step_base, self._epoch_base,
             self._target_epoch) = snapshot
            self.program, self.trainer, self.config = program, trainer, trainer.config
            self.send(("loaded", job.revision, program.num_parameters,
                       trainer.train_set.task))
            return
        try:
            config = TrainConfig.from_block(job.spec.training)
            program = compile_graph(job.spec, dtype=config.dtype, seed=config.seed,
                                    input_grads=True)
            if job.keep_weights and old_program is not None:
                program.load_state_dict(_unchanged_state(old_program, old_spec, job.spec),
                                        strict=False)
            else:
                self._step_base = self._epoch_base = 0
            trainer = self._make_trainer(program, config)
        except CompileError as exc:
            self.send(("failed", job.revision, "\n".join(str(d) for d in exc.diagnostics)))
            return
        except (GradscapeError, ValueError) as exc:
            self.send(("failed", job.revision, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001  (never let the worker die silently)
            traceback.print_exc()
            self.send(("failed", job.revision, f"Could not prepare training: {exc}"))
            return
        self.program, self.trainer, self.config = program, trainer, config
        self._target_epoch = self.epoch_count + config.epochs
        self.send(("loaded", job.revision, program.num_parameters, trainer.train_set.task))

    def forget(self) -> None:
        """Drop the program, counters and snapshots: the next load starts a fresh run."""
        self.running = False
        self._pending_losses.clear()
        self._pending_epochs.clear()
        self.program = self.trainer = None
        self._step_base = self._epoch_base = self._target_epoch = 0
        self._snapshots.clear()
        self._last_step_report = None

    def _remember_current(self) -> None:
        """Keep the graph version being left, untouched, for undo/redo to bring back."""
        if self.program is None or self.trainer is None or not self.key:
            return
        self._snapshots.pop(self.key, None)
        self._snapshots[self.key] = (self._steps_ever, self.program, self.trainer,
                                     self._step_base, self._epoch_base, self._target_epoch)
        while len(self._snapshots) > SNAPSHOTS_KEPT:
            self._snapshots.pop(next(iter(self._snapshots)))

    @staticmethod
    def _make_trainer(program: Program, config: TrainConfig) -> Trainer:
        data = load_data(config)
        val = None
        if config.validation_split:
            data, val = data.split(float(config.validation_split), config.seed)
        return Trainer(program, data, config, val)

    def play(self, run: int = 0) -> None:
        """Train until paused, diverged or the configured number of epochs is done.

        `run` numbers the Play; reports carry it so the session can tell a report of this run
        from the last report of a run it already paused.
        """
        self.run_id = run
        if self.trainer is None or self.running:
            return
        self._continued = False
        if self.config.epochs and self.epoch_count >= self._target_epoch:
            self._target_epoch = self.epoch_count + self.config.epochs  # Play again: more
            self._continued = self.epoch_count > 0
        self.running = True
        self._rate_mark = (time.perf_counter(), self.step_count)

    def pause(self) -> None:
        """Stop after the current step."""
        if self.running:
            self.running = False
            self._emit_report(finished=False, stopped_at=time.perf_counter())

    def step_once(self) -> None:
        """One optimizer step, then a report."""
        if self.trainer is None:
            return
        self.running = False
        self._rate = 0.0
        if self._one_step():
            self._emit_report(finished=False)

    def reset_weights(self) -> None:
        """Re-initialise the weights from the seed and start a fresh optimizer."""
        self.running = False
        self._pending_losses.clear()
        self._pending_epochs.clear()
        self._step_base = self._epoch_base = 0
        self._snapshots.clear()
        if self.program is None:
            self.send(("was_reset", self.revision))
            return
        self.program.reset_parameters(self.config.seed)
        try:
            self.trainer = self._make_trainer(self.program, self.config)
        except (GradscapeError, ValueError) as exc:
            self.trainer = None
            self.send(("failed", self.revision, str(exc)))
            return
        self._first_pending = 1
        self._target_epoch = self.config.epochs
        self._last_step_report = None
        self.send(("was_reset", self.revision))

    def request_detail(self, edge: EdgeSpec) -> None:
        """Shape, summaries and histograms of one edge (on demand: whole arrays are read)."""
        p = self.program
        if p is None or edge not in p.edges:
            return
        k = p.edges.index(edge)
        value, grad = p.edge_value(k), p.edge_grads[k]
        shape = tuple(value.shape) if value is not None else ()
        self.send(("detail", EdgeDetail(
            self.revision, edge, shape,
            summarize(value) if value is not None else None,
            summarize(grad) if grad is not None else None,
            histogram(value) if value is not None else None,
            histogram(grad) if grad is not None else None)))

    def run_job(self, fn, with_worker: bool = False) -> tuple[Any, str | None]:
        """`fn(program, trainer)` (or `fn(program, trainer, self)`): (result, error)."""
        try:
            args = (self.program, self.trainer, self) if with_worker else (
                self.program, self.trainer)
            return fn(*args), None
        except GradscapeError as exc:
            return None, str(exc)
        except Exception as exc:  # noqa: BLE001  (report, never kill the worker)
            traceback.print_exc()
            return None, f"{type(exc).__name__}: {exc}"

    def publish(self, report: TrainingReport) -> None:
        """Send a report built outside the loop (a restored model file)."""
        report.revision = self.revision
        self.send(("report", report))

    # -- the loop ------------------------------------------------------------------------
    def run_slice(self, command_waiting) -> None:
        """Steps until the report interval is over, a command is waiting, or training stops.

        `command_waiting()` is checked after the first step that ends COMMAND_CHECK_INTERVAL
        after the last check, so a Pause waits for about a millisecond (or one long step).
        """
        start = time.perf_counter()
        end = start + REPORT_INTERVAL
        look = start + COMMAND_CHECK_INTERVAL
        finished = False
        while self.running:
            if not self._one_step():
                return
            if self.config.epochs and self.epoch_count >= self._target_epoch:
                self.running = False
                finished = True
                break
            now = time.perf_counter()
            if now >= end:
                break
            if now >= look:
                if command_waiting():
                    break
                look = now + COMMAND_CHECK_INTERVAL
        now = time.perf_counter()
        t0, s0 = self._rate_mark
        if now - t0 >= 0.25:
            self._rate = (self.step_count - s0) / (now - t0)
            self._rate_mark = (now, self.step_count)
        if self._pending_losses and (now >= end or not self.running):
            self._emit_report(finished, stopped_at=0.0 if self.running else now)

    def _one_step(self) -> bool:
        """One trainer step; False (and a `diverged` message) if training blew up."""
        if not self._pending_losses:
            self._first_pending = self.step_count + 1
        try:
            rep = self.trainer.step()
        except TrainingDiverged as exc:
            self.running = False
            self._flush_pending()
            self.send(("diverged", self.revision, str(exc), exc.node))
            return False
        except Exception as exc:  # noqa: BLE001  (shape errors and the like: stop, say why)
            self.running = False
            self._flush_pending()
            traceback.print_exc()
            self.send(("failed", self.revision, str(exc)))
            return False
        self._steps_ever += 1
        self._pending_losses.append(rep.loss)
        if rep.epoch_done is not None:
            done = rep.epoch_done
            self._pending_epochs.append((self.step_count, EpochReport(
                self._epoch_base + done.epoch, done.loss, done.val_loss, done.accuracy,
                done.val_accuracy)))
        self._last_step_report = rep
        return True

    def _flush_pending(self) -> None:
        if self._pending_losses and self.trainer is not None:
            self._emit_report(finished=False)

    def current_report(self, finished: bool = False, stopped_at: float = 0.0
                       ) -> TrainingReport:
        """A report of the state now, carrying the step losses not yet sent."""
        p, t = self.program, self.trainer
        rep = self._last_step_report
        values, grads = t.edge_summaries()
        report = TrainingReport(
            revision=self.revision, step=self.step_count, epoch=self.epoch_count,
            loss=rep.loss if rep is not None else float("nan"),
            lr=rep.lr if rep is not None else self.config.lr,
            steps_per_second=self._rate if self.running or finished else 0.0,
            running=self.running, first_step=self._first_pending,
            losses=np.asarray(self._pending_losses, dtype=np.float64),
            epochs=list(self._pending_epochs), edges=list(p.edges), values=values,
            grads=grads, flags=_health_fractions(p), finished=finished,
            target_epoch=self._target_epoch if self.config.epochs else 0, run=self.run_id,
            parameters=_small_parameters(p), stopped_at=stopped_at,
            continued=self._continued)
        self._pending_losses = []
        self._pending_epochs = []
        return report

    def _emit_report(self, finished: bool, stopped_at: float = 0.0) -> None:
        if self.trainer is None:
            return
        self.send(("report", self.current_report(finished, stopped_at)))


def _unchanged_state(old: Program, old_spec: GraphSpec, new_spec: GraphSpec) -> dict:
    """The old program's tensors of the nodes whose op and params did not change.

    Tensors whose shape changed (an input width upstream changed) are left out by
    `load_state_dict(strict=False)`'s shape check in the caller's program.
    """
    before = {n.id: n for n in old_spec.nodes}
    same = {n.id for n in new_spec.nodes if before.get(n.id) == n}
    return {k: v for k, v in old.state_dict().items() if k.rsplit(".", 1)[0] in same}


def _small_parameters(p: Program) -> dict[str, np.ndarray]:
    """Copies of the parameter tensors small enough to show as numbers on the canvas."""
    return {e.key: e.view(p.theta).copy()
            for e in p.entries if e.size <= SMALL_PARAMETER}


def _health_fractions(p: Program) -> dict[int, float]:
    """Per edge leaving a ReLU-like or saturating op: the fraction of dead or saturated
    values (what an op is comes from its definition)."""
    out: dict[int, float] = {}
    for k, edge in enumerate(p.edges):
        i = p.index[edge.src]
        op = p.op_ids[i]
        v = p.values[i]
        if v is None or v.size == 0:
            continue
        kind = registry.get(op)
        if kind is None:
            continue
        if kind.dies_at_zero:
            out[k] = float(np.count_nonzero(v <= 0)) / v.size
        elif kind.saturates_at is not None:
            lo, hi = kind.saturates_at
            margin = SATURATION_MARGIN * (hi - lo)
            near = np.count_nonzero((v <= lo + margin) | (v >= hi - margin))
            out[k] = float(near) / v.size
    return out
