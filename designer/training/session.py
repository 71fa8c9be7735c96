"""The GUI side of training: drives the worker process, recompiles on edits, fills the run.

Edits that change what is trained (nodes, params, wires, the training block) pause a
running training and schedule a recompile 300 ms after the last edit; moving nodes does
not. The worker keeps the weights of nodes that did not change, and gives back a graph
version exactly when undo/redo returns to it with no step taken in between. Every job
carries the document revision it was built from and reports of older jobs are dropped, so
the panels never show numbers of a graph that no longer exists.

The worker runs in a child process (`worker_process.serve`); a reader thread turns its
messages into queued Qt signals, so the GUI thread never waits for training and training
never waits for painting.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import json
import multiprocessing
import sys
import threading
import weakref

import cloudpickle
import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal

from designer.training.run import TrainingRun
from designer.training.worker import EdgeDetail, LoadJob, TrainingReport
from designer.training.worker_process import serve

RECOMPILE_DELAY_MS = 300
JOIN_TIMEOUT_S = 3.0
DISPLAY_INTERVAL_MS = 200  # overlay and counters redraw at most 5 times a second: readable numbers

# Session states (shown in the status bar and the training panel).
EMPTY, INVALID, COMPILING, READY, RUNNING, PAUSED, FINISHED, DIVERGED, FAILED = (
    "empty", "invalid", "compiling", "ready", "running", "paused", "finished", "diverged",
    "failed")


_LIVE: weakref.WeakSet = weakref.WeakSet()


def _context():
    """forkserver where it exists: a clean server process (no Qt) preloaded with the engine
    forks each worker in milliseconds; spawn elsewhere and in frozen bundles."""
    if "forkserver" in multiprocessing.get_all_start_methods() and not getattr(
            sys, "frozen", False):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["designer.training.worker_process"])
        return ctx
    return multiprocessing.get_context("spawn")


MAX_REASONS = 8  # problems listed under "cannot be trained yet"

class _Reader(QThread):
    """Receives the worker's messages; `message` is delivered on the GUI thread (queued)."""

    message = Signal(object)

    def __init__(self, conn):
        super().__init__()
        self.setObjectName("gradscape-training-reader")
        self.conn = conn

    def run(self) -> None:
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                self.message.emit(("exited",))
                return
            except Exception as exc:  # noqa: BLE001  (a message that cannot be read)
                self.message.emit(("failed", -2, f"Lost a message from training: {exc}"))
                continue
            self.message.emit(msg)


class WorkerLink:
    """The worker process, its pipe and the reader thread (one per session).

    The process is started by a short-lived thread: starting it waits for the forkserver
    (the first time, while that server imports the engine: about a second), and the window
    must not wait for that. Messages sent meanwhile wait in the pipe.
    """

    def __init__(self, on_message):
        ctx = _context()
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=serve, args=(child,), daemon=True,
                                   name="gradscape-training")
        self.reader = _Reader(self.conn)
        self.reader.message.connect(on_message)
        self.reader.start()
        self._starter = threading.Thread(target=self._start, args=(child,),
                                         name="gradscape-training-start", daemon=True)
        self._starter.start()

    def _start(self, child) -> None:
        try:
            self.process.start()
        finally:
            child.close()  # the reader sees the end of the pipe if the process never ran

    def alive(self) -> bool:
        return self._starter.is_alive() or self.process.is_alive()

    def send(self, message: tuple) -> bool:
        try:
            self.conn.send(message)
            return True
        except (OSError, BrokenPipeError, ValueError):
            return False

    def stop(self) -> bool:
        """Ask the process to end, wait, and make sure it did; True if it ended by itself."""
        self._starter.join(JOIN_TIMEOUT_S * 10)
        self.send(("quit",))
        if self.process.pid is None:  # it never started
            self.conn.close()
            self.reader.wait(int(JOIN_TIMEOUT_S * 1000))
            return True
        self.process.join(JOIN_TIMEOUT_S)
        clean = not self.process.is_alive()
        if not clean:
            self.process.kill()
            self.process.join(JOIN_TIMEOUT_S)
        self.conn.close()
        self.reader.wait(int(JOIN_TIMEOUT_S * 1000))
        return clean


def _stop_link(link: WorkerLink, *_args) -> None:
    """Stop a worker (also used when its session is deleted unannounced)."""
    try:
        if link.alive() or link.reader.isRunning():
            link.stop()
    except (RuntimeError, ValueError, OSError):  # already gone
        pass


@atexit.register
def _shutdown_all() -> None:
    """End every training process before the interpreter tears Qt down."""
    for session in list(_LIVE):
        try:
            session.shutdown()
        except RuntimeError:  # its C++ side is already gone
            pass


class TrainingSession(QObject):
    """Training for one controller's document; owns the `TrainingRun` (`session.run`).

    Signals:
        report(TrainingReport): a fresh report (stale ones are dropped), after the run took it.
        state_changed(str): one of the state constants of this module.
        problem(str): why training cannot run or stopped ('' clears it).
        notice(str): something worth a sentence in the status bar (not a problem).
        weights_reset(): a fresh run (new document, weights reset): counters back at zero.
        detail(EdgeDetail): stats and histograms of one edge, after `request_detail`.
        diverged(str, object): message and node id of a divergence.
    """

    report = Signal(object)
    state_changed = Signal(str)
    problem = Signal(str)
    notice = Signal(str)
    weights_reset = Signal()
    detail = Signal(object)
    diverged = Signal(str, object)

    def __init__(self, controller, parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.document = controller.document
        self.run = TrainingRun(self)
        self.run.restarted.connect(self.weights_reset)
        self.num_parameters = 0
        self.task = ""
        self._job_revision = -1
        self._play_id = 0  # numbers each Play (see TrainingReport.run)
        self._job_key: str | None = None
        self._failure = ""
        self._jobs: dict[int, tuple] = {}
        self._job_ids = itertools.count(1)
        self._pending: list[TrainingReport] = []
        self._closed = False

        self.link = WorkerLink(self._on_message)
        _LIVE.add(self)
        # Deleted without shutdown() (window destroyed unannounced): still end the process.
        self.destroyed.connect(functools.partial(_stop_link, self.link))

        self._display = QTimer(self)
        self._display.setSingleShot(True)
        self._display.setInterval(DISPLAY_INTERVAL_MS)
        self._display.timeout.connect(
            lambda: self.run.pacer.request("reports", self._flush_reports))

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

    # -- the run's numbers, for callers that read them here ---------------------------------
    @property
    def state(self) -> str:
        return self.run.state

    @property
    def last_report(self) -> TrainingReport | None:
        return self.run.last_report

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def is_alive(self) -> bool:
        """Can training still answer (the window is not closing)?"""
        return not self._closed

    # -- public commands -----------------------------------------------------------------
    def play(self) -> None:
        """Start (or continue) training; says why if the graph cannot be trained."""
        if self.running or self._closed:
            return
        if self.needs_compile():
            self.compile_now()
        if self.state in (EMPTY, INVALID, FAILED):
            self.problem.emit(self._why_not())
            return
        self.problem.emit("")
        self._set_state(RUNNING)
        self._play_id += 1
        self._send(("play", self._play_id))

    def pause(self) -> None:
        """Stop after the current step (the worker checks between steps)."""
        if self.running:
            self._send(("pause",))
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
        self._send(("step",))

    def reset_weights(self) -> None:
        """Re-initialise the weights from the seed; the loss plot starts again."""
        self.pause()
        if self.needs_compile():
            self.compile_now()
        self._send(("reset",))

    def request_detail(self, edge) -> None:
        """Ask for shape, stats and histograms of one edge (answer: `detail`)."""
        self._send(("detail", edge))

    def run_on_worker(self, fn, on_done, on_error=None, *, with_worker: bool = False) -> None:
        """Run `fn(program, trainer)` in the training process between two steps.

        `on_done(result)` (or `on_error(message)`, by default the `problem` signal) is then
        called on the GUI thread. This is how panels read the live program: the worker owns
        it. `fn` travels pickled (cloudpickle), so it may be a closure over plain data but
        not over widgets; it should return plain data or copies. `with_worker=True` calls
        `fn(program, trainer, worker)` (counters, `worker.publish(report)`).
        """
        job_id = next(self._job_ids)
        self._jobs[job_id] = (on_done, on_error)
        try:
            payload = cloudpickle.dumps(fn)
        except Exception as exc:  # noqa: BLE001  (a programming error: say it, do not crash)
            message = f"Could not send the request to training: {exc}"
            QTimer.singleShot(0, self, lambda: self._on_job_done(job_id, None, message))
            return
        if not self._send(("job", job_id, payload, with_worker)):
            # With the session as context: the answer is dropped if the window is deleted.
            QTimer.singleShot(0, self, lambda: self._on_job_done(
                job_id, None, "Training is not running (the window is closing)."))

    def _on_job_done(self, job_id: int, result, error: str | None) -> None:
        on_done, on_error = self._jobs.pop(job_id, (None, None))
        if on_done is None:
            return
        if error is None:
            on_done(result)
        elif on_error is not None:
            on_error(error)
        else:
            self.problem.emit(error)

    def shutdown(self) -> bool:
        """Stop training and the worker process; True if it ended within the timeout.
        Again after that (the window may be deleted by then): nothing to do."""
        if self._closed:
            return True
        self._timer.stop()
        self._display.stop()
        self._closed = True
        if self.state == RUNNING:
            self._set_state(PAUSED)
        _LIVE.discard(self)
        return self.link.stop()

    def _send(self, message: tuple) -> bool:
        if self._closed:
            return False
        if not self.link.alive():
            self._restart_worker()
        return self.link.send(message)

    def _restart_worker(self) -> None:
        """The process died (killed, out of memory): start a fresh one."""
        _stop_link(self.link)
        self.link = WorkerLink(self._on_message)
        self.destroyed.connect(functools.partial(_stop_link, self.link))
        self._job_key = None
        self.run.restart()

    # -- compiling -----------------------------------------------------------------------
    def _structure_key(self) -> str:
        # Once per document revision: opening a file asks twice (reset, then changed), and
        # for a 20,000-node graph each answer costs a quarter of a second.
        doc = self.document
        cached = getattr(self, "_structure_cache", None)
        if cached is not None and cached[0] is doc and cached[1] == doc.revision:
            return cached[2]
        spec = doc.spec()
        key = json.dumps({"nodes": [n.to_dict() for n in spec.nodes],
                          "edges": [e.to_dict() for e in spec.edges],
                          "training": spec.training}, sort_keys=True, default=str)
        self._structure_cache = (doc, doc.revision, key)
        return key

    def needs_compile(self) -> bool:
        return self._timer.isActive() or self._structure_key() != self._job_key

    def _why_not(self) -> str:
        if not self.document.nodes():
            return "The graph is empty: add an Input, some layers, a Target and a loss."
        if self.state == FAILED and self._failure:
            return self._failure
        diags = self.document.analysis().diagnostics
        if diags:
            # A few reasons, not hundreds: a big unfinished graph would stretch the window
            # (the canvas marks every node with a problem anyway).
            shown = [f"• {d}" for d in diags[:MAX_REASONS]]
            if len(diags) > MAX_REASONS:
                shown.append(f"• … and {len(diags) - MAX_REASONS:,} more problems, marked "
                             "on the canvas.")
            return "The graph cannot be trained yet:\n" + "\n".join(shown)
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
        self._send(("load", LoadJob(self.document.revision, self.document.spec(), keep_weights,
                                    self._job_key)))

    def _on_document_changed(self) -> None:
        if self._structure_key() == self._job_key:
            return  # only the layout changed: the current job's reports stay valid
        if self.running:
            self.pause()
        self._timer.start()

    def _on_document_reset(self) -> None:
        """A new document (New, Open, Revert): a new run, nothing carried over."""
        self.pause()
        self._pending = []
        self._send(("forget",))
        self.run.restart()
        self.compile_now(keep_weights=False)

    # -- worker answers ------------------------------------------------------------------
    def _on_message(self, message: tuple) -> None:
        """Hand a worker message ("report", report) to its `_on_report(report)` handler."""
        kind, *args = message
        if kind == "exited" and self._closed:
            return  # the window closed it
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(*args)

    def _on_notice(self, text: str) -> None:
        self.notice.emit(text)

    def _on_exited(self) -> None:
        for job_id in list(self._jobs):
            self._on_job_done(job_id, None, "Training stopped unexpectedly.")
        self._failure = ("The training process stopped unexpectedly (out of memory?). "
                         "Play starts it again from fresh weights.")
        self._job_key = None
        self._set_state(FAILED)
        self.problem.emit(self._failure)

    def _fresh(self, revision: int) -> bool:
        return revision == self._job_revision

    def _on_loaded(self, revision: int, num_parameters: int, task: str) -> None:
        if not self._fresh(revision):
            return
        self.num_parameters, self.task = num_parameters, task
        self.problem.emit("")
        if self.state == RUNNING:
            return  # Play was pressed while it compiled: the worker plays right after loading
        self._set_state(READY if self.run.last_report is None else PAUSED)

    def _on_failed(self, revision: int, message: str) -> None:
        if revision != -2 and not self._fresh(revision):
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
        self.run.pacer.cancel("reports")
        pending, self._pending = self._pending, []
        if not pending:
            return
        report = _merge(pending)
        if report.continued and report.run == self._play_id and report.target_epoch:
            self.notice.emit(
                f"The run had finished: Play trains {report.target_epoch - report.epoch:,} "
                f"more epochs, up to epoch {report.target_epoch:,}. Reset Weights starts over.")
        self.run.apply(report)
        if report.finished:
            self._set_state(FINISHED)
        elif not report.running and self.state in (RUNNING, READY) and (
                report.run == self._play_id or self.state == READY):
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
        self.run.restart()
        if self.state not in (FAILED, INVALID, EMPTY):
            self._set_state(READY)

    def _on_detail(self, detail: EdgeDetail) -> None:
        if self._fresh(detail.revision):
            self.detail.emit(detail)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.run.set_state(state)
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
    merged.continued = any(r.continued for r in reports)
    merged.stopped_at = max(r.stopped_at for r in reports)
    return merged
