"""The training worker: owns a Program and a Trainer on a QThread and sends small reports.

The worker runs optimizer steps in short slices (at most one report interval long) and
returns to its thread's event loop between slices, so queued commands (load, step, reset,
quit) are handled promptly. Pausing sets a plain flag that the loop checks between two
steps, so it takes effect after at most one step, never blocking the GUI thread.

Only small things cross to the GUI: losses, counters and per-edge `Summary` objects
(a few floats per edge); whole arrays only on demand for one edge (`edge_detail`).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from engine.core.compiler import compile_graph
from engine.core.program import Program
from engine.core.spec import EdgeSpec, GraphSpec
from engine.core.stats import Summary, histogram, summarize
from engine.errors import CompileError, GradscapeError, TrainingDiverged
from engine.training.trainer import EpochReport, TrainConfig, Trainer, load_data

REPORT_INTERVAL = 1.0 / 30.0  # seconds between two reports while running
SATURATING = {"Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0)}
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


@dataclass
class TrainingReport:
    """A small report of the training state, sent at most ~30 times a second.

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


class TrainingWorker(QObject):
    """Runs a Trainer on the thread it is moved to. Talk to it through queued signals.

    Signals:
        loaded(int revision, int num_parameters, str task): a program is ready.
        failed(int revision, str message): the graph or data could not be used.
        report(TrainingReport): progress (at most ~30 per second while running).
        diverged(int revision, str message, object node): training stopped, weights kept.
        was_reset(int revision): weights were re-initialised; counters are back at zero.
        detail(EdgeDetail): the answer to `request_detail`.
        job_done(WorkerJob): a `run_job` finished (result or error filled in).
    """

    loaded = Signal(int, int, str)
    failed = Signal(int, str)
    report = Signal(object)
    diverged = Signal(int, str, object)
    was_reset = Signal(int)
    detail = Signal(object)
    job_done = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.program: Program | None = None
        self.trainer: Trainer | None = None
        self.config: TrainConfig | None = None
        self.revision = -1
        self.run_id = 0
        self.running = False  # set from any thread; read between steps
        self._step_base = 0  # steps done by previous trainers (kept across recompiles)
        self._epoch_base = 0
        self._target_epoch = 0
        self._pending_losses: list[float] = []
        self._pending_epochs: list[tuple[int, EpochReport]] = []
        self._first_pending = 1
        self._last_report = 0.0
        self._rate_mark: tuple[float, int] = (time.perf_counter(), 0)
        self._rate = 0.0
        self._last_step_report: Any = None
        self._timer: QTimer | None = None
        self.stopped_at = 0.0  # perf_counter() when the loop last saw a pause request

    # -- counters ------------------------------------------------------------------------
    @property
    def step_count(self) -> int:
        """Steps since the last weight reset (across recompiles)."""
        return self._step_base + (self.trainer.step_count if self.trainer else 0)

    @property
    def epoch_count(self) -> int:
        return self._epoch_base + (self.trainer.epoch if self.trainer else 0)

    # -- commands (slots, run on the worker thread) ---------------------------------------
    @Slot(object)
    def load(self, job: LoadJob) -> None:
        """Compile `job.spec` and build a fresh Trainer; keep unchanged nodes' weights."""
        self.running = False
        self._flush_pending()
        old_program, old_spec = self.program, self.program.spec if self.program else None
        if self.trainer is not None:
            self._step_base += self.trainer.step_count
            self._epoch_base += self.trainer.epoch
        self.program = self.trainer = None
        self.revision = job.revision
        try:
            config = TrainConfig.from_block(job.spec.training)
            program = compile_graph(job.spec, dtype=config.dtype, seed=config.seed,
                                    input_grads=True)
            if job.keep_weights and old_program is not None:
                program.load_state_dict(_unchanged_state(old_program, old_spec, job.spec),
                                        strict=False)
            else:
                self._step_base = self._epoch_base = 0
            self.trainer = self._make_trainer(program, config)
        except CompileError as exc:
            self.failed.emit(job.revision, "\n".join(str(d) for d in exc.diagnostics))
            return
        except (GradscapeError, ValueError) as exc:
            self.failed.emit(job.revision, str(exc))
            return
        except Exception as exc:  # noqa: BLE001  (never let the worker thread die silently)
            traceback.print_exc()
            self.failed.emit(job.revision, f"Could not prepare training: {exc}")
            return
        self.program, self.config = program, config
        self._target_epoch = self.epoch_count + config.epochs
        self.loaded.emit(job.revision, program.num_parameters, self.trainer.train_set.task)

    @staticmethod
    def _make_trainer(program: Program, config: TrainConfig) -> Trainer:
        data = load_data(config)
        val = None
        if config.validation_split:
            data, val = data.split(float(config.validation_split), config.seed)
        return Trainer(program, data, config, val)

    @Slot(int)
    def play(self, run: int = 0) -> None:
        """Train until paused, diverged or the configured number of epochs is done.

        `run` numbers the Play; reports carry it so the session can tell a report of this run
        from the last report of a run it already paused.
        """
        self.run_id = run
        if self.trainer is None or self.running:
            return
        if self.config.epochs and self.epoch_count >= self._target_epoch:
            self._target_epoch = self.epoch_count + self.config.epochs  # Play again: more
        self.running = True
        self._rate_mark = (time.perf_counter(), self.step_count)
        self._last_report = time.perf_counter()
        if self._timer is None:
            self._timer = QTimer(self)
            self._timer.setSingleShot(True)
            self._timer.timeout.connect(self._run_slice)
        self._timer.start(0)

    def pause(self) -> None:
        """Ask the loop to stop after the current step (safe to call from any thread)."""
        self.running = False

    @Slot()
    def step_once(self) -> None:
        """One optimizer step, then a report."""
        if self.trainer is None:
            return
        self.running = False
        self._rate = 0.0
        if self._one_step():
            self._emit_report(finished=False)

    @Slot()
    def reset_weights(self) -> None:
        """Re-initialise the weights from the seed and start a fresh optimizer."""
        self.running = False
        self._pending_losses.clear()
        self._pending_epochs.clear()
        self._step_base = self._epoch_base = 0
        if self.program is None:
            self.was_reset.emit(self.revision)
            return
        self.program.reset_parameters(self.config.seed)
        try:
            self.trainer = self._make_trainer(self.program, self.config)
        except (GradscapeError, ValueError) as exc:
            self.trainer = None
            self.failed.emit(self.revision, str(exc))
            return
        self._first_pending = 1
        self._target_epoch = self.config.epochs
        self.was_reset.emit(self.revision)

    @Slot(object)
    def request_detail(self, edge: EdgeSpec) -> None:
        """Shape, summaries and histograms of one edge (on demand: whole arrays are read)."""
        p = self.program
        if p is None or edge not in p.edges:
            return
        k = p.edges.index(edge)
        value, grad = p.edge_value(k), p.edge_grads[k]
        shape = tuple(value.shape) if value is not None else ()
        self.detail.emit(EdgeDetail(
            self.revision, edge, shape,
            summarize(value) if value is not None else None,
            summarize(grad) if grad is not None else None,
            histogram(value) if value is not None else None,
            histogram(grad) if grad is not None else None))

    @Slot(object)
    def run_job(self, job: WorkerJob) -> None:
        """Run `job.fn(program, trainer)` here, between steps, and answer with job_done."""
        job.revision = self.revision
        try:
            job.result = job.fn(self.program, self.trainer)
        except GradscapeError as exc:
            job.error = str(exc)
        except Exception as exc:  # noqa: BLE001  (report, never kill the worker thread)
            traceback.print_exc()
            job.error = f"{type(exc).__name__}: {exc}"
        self.job_done.emit(job)

    # -- the loop ------------------------------------------------------------------------
    @Slot()
    def _run_slice(self) -> None:
        """Steps until the report interval is over or a pause is requested."""
        end = time.perf_counter() + REPORT_INTERVAL
        finished = False
        while self.running:
            if not self._one_step():
                return
            if self.config.epochs and self.epoch_count >= self._target_epoch:
                self.running = False
                finished = True
                break
            if time.perf_counter() >= end:
                break
        now = time.perf_counter()
        if not self.running:
            self.stopped_at = now
        t0, s0 = self._rate_mark
        if now - t0 >= 0.25:
            self._rate = (self.step_count - s0) / (now - t0)
            self._rate_mark = (now, self.step_count)
        if self._pending_losses or not self.running:
            self._emit_report(finished)
        if self.running:
            self._timer.start(0)

    def _one_step(self) -> bool:
        """One trainer step; False (and a `diverged` signal) if training blew up."""
        if not self._pending_losses:
            self._first_pending = self.step_count + 1
        try:
            rep = self.trainer.step()
        except TrainingDiverged as exc:
            self.running = False
            self._flush_pending()
            self.diverged.emit(self.revision, str(exc), exc.node)
            return False
        except Exception as exc:  # noqa: BLE001  (shape errors and the like: stop, say why)
            self.running = False
            self._flush_pending()
            traceback.print_exc()
            self.failed.emit(self.revision, str(exc))
            return False
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

    def _emit_report(self, finished: bool) -> None:
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
            target_epoch=self._target_epoch if self.config.epochs else 0, run=self.run_id)
        self._pending_losses = []
        self._pending_epochs = []
        self._last_report = time.perf_counter()
        self.report.emit(report)


def _unchanged_state(old: Program, old_spec: GraphSpec, new_spec: GraphSpec) -> dict:
    """The old program's tensors of the nodes whose op and params did not change."""
    before = {n.id: n for n in old_spec.nodes}
    same = {n.id for n in new_spec.nodes if before.get(n.id) == n}
    return {k: v for k, v in old.state_dict().items() if k.rsplit(".", 1)[0] in same}


def _health_fractions(p: Program) -> dict[int, float]:
    """Per edge leaving a ReLU / Sigmoid / Tanh: the fraction of dead or saturated values."""
    out: dict[int, float] = {}
    for k, edge in enumerate(p.edges):
        i = p.index[edge.src]
        op = p.op_ids[i]
        v = p.values[i]
        if v is None or v.size == 0:
            continue
        if op == "ReLU":
            out[k] = float(np.count_nonzero(v <= 0)) / v.size
        elif op in SATURATING:
            lo, hi = SATURATING[op]
            margin = SATURATION_MARGIN * (hi - lo)
            near = np.count_nonzero((v <= lo + margin) | (v >= hi - margin))
            out[k] = float(near) / v.size
    return out
