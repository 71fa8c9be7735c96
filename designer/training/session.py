"""The GUI side of training: owns the worker thread, recompiles on edits, relays reports.

Edits that change what is trained (nodes, params, wires, the training block) pause a
running training and schedule a recompile 300 ms after the last edit; moving nodes does
not. The worker keeps the weights of nodes that did not change. Every job carries the
document revision it was built from and reports of older jobs are dropped, so the panels
never show numbers of a graph that no longer exists.
"""

from __future__ import annotations

import atexit
import functools
import json
import sys
import weakref

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal

from designer.training.worker import (
    EdgeDetail,
    LoadJob,
    TrainingReport,
    TrainingWorker,
    WorkerJob,
)

RECOMPILE_DELAY_MS = 300
JOIN_TIMEOUT_MS = 3000
DISPLAY_INTERVAL_MS = 200  # overlay and counters redraw at most 5 times a second: readable numbers
# The worker is a pure-Python loop holding the GIL; PySide releases the GIL around every
# Qt call, and with the default 5 ms switch interval each re-acquisition by the GUI thread
# could wait up to 5 ms (a convoy). 1 ms keeps the GUI responsive at a small cost.
GIL_SWITCH_INTERVAL = 0.001

# Session states (shown in the status bar and the training panel).
EMPTY, INVALID, COMPILING, READY, RUNNING, PAUSED, FINISHED, DIVERGED, FAILED = (
    "empty", "invalid", "compiling", "ready", "running", "paused", "finished", "diverged",
    "failed")


_LIVE: weakref.WeakSet = weakref.WeakSet()


def _stop_thread(thread: QThread, worker: TrainingWorker, *_args) -> None:
    """Quit and join a worker thread (also used when its session is deleted unannounced)."""
    worker.pause()
    try:
        if thread.isRunning():
            thread.quit()
            thread.wait(JOIN_TIMEOUT_MS)
    except RuntimeError:  # the thread's C++ object is already gone
        pass


@atexit.register
def _shutdown_all() -> None:
    """Join every training thread before the interpreter tears Qt down."""
    for session in list(_LIVE):
        try:
            session.shutdown()
        except RuntimeError:  # its C++ side is already gone
            pass


class TrainingSession(QObject):
    """Training for one controller's document.

    Signals:
        report(TrainingReport): a fresh report (stale ones are dropped).
        state_changed(str): one of the state constants of this module.
        problem(str): why training cannot run or stopped ('' clears it).
        weights_reset(): counters back at zero (clear the loss plot).
        detail(EdgeDetail): stats and histograms of one edge, after `request_detail`.
        diverged(str, object): message and node id of a divergence.
    """

    report = Signal(object)
    state_changed = Signal(str)
    problem = Signal(str)
    weights_reset = Signal()
    detail = Signal(object)
    diverged = Signal(str, object)

    _load = Signal(object)
    _play = Signal(int)
    _step = Signal()
    _reset = Signal()
    _detail = Signal(object)
    _job = Signal(object)

    def __init__(self, controller, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.document = controller.document
        self.state = EMPTY
        self.last_report: TrainingReport | None = None
        self.num_parameters = 0
        self.task = ""
        self._job_revision = -1
        self._run = 0  # numbers each Play (see TrainingReport.run)
        self._job_key: str | None = None
        self._failure = ""

        self.thread = QThread()
        self.thread.setObjectName("gradscape-training")
        self.worker = TrainingWorker()
        self.worker.moveToThread(self.thread)
        self._load.connect(self.worker.load)
        self._play.connect(self.worker.play)
        self._step.connect(self.worker.step_once)
        self._reset.connect(self.worker.reset_weights)
        self._detail.connect(self.worker.request_detail)
        self._job.connect(self.worker.run_job)
        self.worker.job_done.connect(self._on_job_done)
        self.worker.loaded.connect(self._on_loaded)
        self.worker.failed.connect(self._on_failed)
        self.worker.report.connect(self._on_report)
        self.worker.diverged.connect(self._on_diverged)
        self.worker.was_reset.connect(self._on_was_reset)
        self.worker.detail.connect(self._on_detail)
        self.thread.start()
        _LIVE.add(self)
        # Deleted without shutdown() (window destroyed unannounced): still join the thread.
        self.destroyed.connect(functools.partial(_stop_thread, self.thread, self.worker))

        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL))
        self._pending: list[TrainingReport] = []
        self._display = QTimer(self)
        self._display.setSingleShot(True)
        self._display.setInterval(DISPLAY_INTERVAL_MS)
        self._display.timeout.connect(self._flush_reports)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RECOMPILE_DELAY_MS)
        self._timer.timeout.connect(self.compile_now)
        self.document.changed.connect(self._on_document_changed)
        self.document.reset.connect(self._on_document_reset)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.compile_now(keep_weights=False)

    # -- public commands -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def play(self) -> None:
        """Start (or continue) training; says why if the graph cannot be trained."""
        if self.running or not self.thread.isRunning():
            return
        if self.needs_compile():
            self.compile_now()
        if self.state in (EMPTY, INVALID, FAILED):
            self.problem.emit(self._why_not())
            return
        self.problem.emit("")
        self._set_state(RUNNING)
        self._run += 1
        self._play.emit(self._run)

    def pause(self) -> None:
        """Stop after the current step (the worker checks a flag between steps)."""
        self.worker.pause()
        if self.running:
            self._set_state(PAUSED)

    def toggle(self) -> None:
        """Play if paused, pause if running."""
        if self.running:
            self.pause()
        else:
            self.play()

    def step(self) -> None:
        """One optimizer step."""
        self.pause()
        if self.needs_compile():
            self.compile_now()
        if self.state in (EMPTY, INVALID, FAILED):
            self.problem.emit(self._why_not())
            return
        self._step.emit()

    def reset_weights(self) -> None:
        """Re-initialise the weights from the seed; the loss plot starts again."""
        self.pause()
        if self.needs_compile():
            self.compile_now()
        self._reset.emit()

    def request_detail(self, edge) -> None:
        """Ask for shape, stats and histograms of one edge (answer: `detail`)."""
        self._detail.emit(edge)

    def run_on_worker(self, fn, on_done, on_error=None) -> None:
        """Run `fn(program, trainer)` on the training thread between two steps.

        `on_done(result)` (or `on_error(message)`, by default the `problem` signal) is then
        called on the GUI thread. This is how panels read the live program safely: the
        worker owns it, so nothing on the GUI thread may touch it directly.
        """
        self._job.emit(WorkerJob(fn, on_done, on_error))

    def _on_job_done(self, job) -> None:
        if job.error is None:
            job.on_done(job.result)
        elif job.on_error is not None:
            job.on_error(job.error)
        else:
            self.problem.emit(job.error)

    def shutdown(self) -> bool:
        """Stop training and the thread; True if the thread ended within the timeout."""
        self._timer.stop()
        self.worker.pause()
        if not self.thread.isRunning():
            return True
        self.thread.quit()
        ok = self.thread.wait(JOIN_TIMEOUT_MS)
        _LIVE.discard(self)
        if self.state == RUNNING:
            self._set_state(PAUSED)
        return ok

    # -- compiling -----------------------------------------------------------------------
    def _structure_key(self) -> str:
        spec = self.document.spec()
        return json.dumps({"nodes": [n.to_dict() for n in spec.nodes],
                           "edges": [e.to_dict() for e in spec.edges],
                           "training": spec.training}, sort_keys=True, default=str)

    def needs_compile(self) -> bool:
        return self._timer.isActive() or self._structure_key() != self._job_key

    def _why_not(self) -> str:
        if not self.document.nodes():
            return "The graph is empty: add an Input, some layers, a Target and a loss."
        if self.state == FAILED and self._failure:
            return self._failure
        diags = self.document.analysis().diagnostics
        if diags:
            return "The graph cannot be trained yet:\n" + "\n".join(f"• {d}" for d in diags)
        return ""

    def compile_now(self, keep_weights: bool = True) -> None:
        """Send the current graph to the worker (or report why it cannot be trained)."""
        self._timer.stop()
        self._failure = ""
        self._job_key = self._structure_key()
        self._job_revision = self.document.revision
        if not self.document.nodes():
            self._set_state(EMPTY)
            return
        if self.document.analysis().diagnostics:
            self._set_state(INVALID)
            self.problem.emit(self._why_not())
            return
        self._set_state(COMPILING)
        self._load.emit(LoadJob(self.document.revision, self.document.spec(), keep_weights))

    def _on_document_changed(self) -> None:
        if self._structure_key() == self._job_key:
            return  # only the layout changed: the current job's reports stay valid
        if self.running:
            self.pause()
        self._timer.start()

    def _on_document_reset(self) -> None:
        self.pause()
        self._pending = []
        self.last_report = None
        self.weights_reset.emit()
        self.compile_now(keep_weights=False)

    # -- worker answers ------------------------------------------------------------------
    def _fresh(self, revision: int) -> bool:
        return revision == self._job_revision

    def _on_loaded(self, revision: int, num_parameters: int, task: str) -> None:
        if not self._fresh(revision):
            return
        self.num_parameters, self.task = num_parameters, task
        self.problem.emit("")
        self._set_state(READY if self.last_report is None else PAUSED)

    def _on_failed(self, revision: int, message: str) -> None:
        if not self._fresh(revision):
            return
        self._failure = message
        self._set_state(FAILED)
        self.problem.emit(message)

    def _on_report(self, report: TrainingReport) -> None:
        """Collect reports; hand them on merged, at most every DISPLAY_INTERVAL_MS.

        A backlog (the GUI was busy) collapses into one update instead of many redraws,
        and the last report of a run (paused, finished) is shown at once.
        """
        if not self._fresh(report.revision):
            return
        self._pending.append(report)
        if not report.running:
            self._flush_reports()
        elif not self._display.isActive():
            self._display.start()

    def _flush_reports(self) -> None:
        self._display.stop()
        pending, self._pending = self._pending, []
        if not pending:
            return
        report = _merge(pending)
        self.last_report = report
        if report.finished:
            self._set_state(FINISHED)
        elif not report.running and self.state in (RUNNING, READY) and (
                report.run == self._run or self.state == READY):
            # A "stopped" report of a Play that was paused and played again at once must not
            # pause the new run: only this run's own stop counts.
            self._set_state(PAUSED)
        self.report.emit(report)

    def _on_diverged(self, revision: int, message: str, node) -> None:
        if not self._fresh(revision):
            return
        self._set_state(DIVERGED)
        self.problem.emit(message)
        self.diverged.emit(message, node)

    def _on_was_reset(self, revision: int) -> None:
        if not self._fresh(revision):
            return
        self._pending = []
        self.last_report = None
        if self.state not in (FAILED, INVALID, EMPTY):
            self._set_state(READY)
        self.weights_reset.emit()

    def _on_detail(self, detail: EdgeDetail) -> None:
        if self._fresh(detail.revision):
            self.detail.emit(detail)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)


def _merge(reports: list[TrainingReport]) -> TrainingReport:
    """One report standing for several in a row: all their losses and epochs, the last state."""
    if len(reports) == 1:
        return reports[0]
    last = reports[-1]
    losses = [r.losses for r in reports if len(r.losses)]
    first = next((r.first_step for r in reports if len(r.losses)), last.first_step)
    merged = TrainingReport(**{**last.__dict__})
    merged.first_step = first
    merged.losses = np.concatenate(losses) if losses else last.losses
    merged.epochs = [e for r in reports for e in r.epochs]
    merged.finished = any(r.finished for r in reports)
    return merged
