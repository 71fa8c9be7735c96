"""Long computations on a thread of their own: cancellable, with progress delivered by signals.

`BackgroundJob(fn)` runs ``fn(job)`` on a fresh QThread. Inside, ``job.emit(obj)`` hands a
chunk (plain data or copies) to the GUI thread through the `chunk` signal and
``job.cancelled`` says whether `cancel()` was called (check it between pieces of work and
return early). When ``fn`` returns, `done(result)` is emitted; an exception becomes
`failed(message)`. The GUI thread never waits for the job, except `cancel(wait=True)` when a
dialog closes (the job then stops at its next check). Every live job is joined at exit.
"""

from __future__ import annotations

import atexit
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QThread, Signal

from engine.errors import GradscapeError

# Strong references to every job until its thread has ended (a QThread must not be
# deleted while it runs); finished jobs are dropped whenever a new one starts.
_JOBS: list[BackgroundJob] = []


class BackgroundJob(QThread):
    """Run ``fn(job)`` off the GUI thread.

    Signals (received on the thread of the connected objects, normally the GUI thread):
        chunk(object): something `emit`ted by the job (a finished row, new losses, …).
        done(object): the return value of ``fn``.
        failed(str): a sentence saying why ``fn`` raised.
    """

    chunk = Signal(object)
    done = Signal(object)
    failed = Signal(str)

    def __init__(self, fn: Callable[[BackgroundJob], Any], parent=None, name: str = "lab-job"):
        super().__init__(parent)
        self.setObjectName(name)
        self._fn = fn
        self._cancel = False
        _JOBS[:] = [j for j in _JOBS if _alive(j)]
        _JOBS.append(self)

    @property
    def cancelled(self) -> bool:
        return self._cancel

    def emit(self, obj: Any) -> None:
        """Send a chunk to the GUI (from inside ``fn``)."""
        if not self._cancel:
            self.chunk.emit(obj)

    def cancel(self, wait: bool = False, timeout_ms: int = 3000) -> None:
        """Ask the job to stop at its next check; with `wait`, join the thread."""
        self._cancel = True
        if wait and self.isRunning():
            self.wait(timeout_ms)

    def run(self) -> None:  # on the job's thread
        try:
            result = self._fn(self)
        except GradscapeError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # noqa: BLE001  (a job must never die silently)
            traceback.print_exc()
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        self.done.emit(result)


def start_job(fn: Callable[[BackgroundJob], Any], on_chunk=None, on_done=None, on_failed=None,
              parent=None, name: str = "lab-job") -> BackgroundJob:
    """Create, connect and start a BackgroundJob; the thread object deletes itself later."""
    job = BackgroundJob(fn, parent, name)
    if on_chunk is not None:
        job.chunk.connect(on_chunk)
    if on_done is not None:
        job.done.connect(on_done)
    if on_failed is not None:
        job.failed.connect(on_failed)
    job.start()
    return job


def _alive(job: BackgroundJob) -> bool:
    try:
        return job.isRunning() or not job.isFinished()
    except RuntimeError:
        return False


def running_jobs() -> list[BackgroundJob]:
    """Jobs whose thread has not ended yet."""
    return [j for j in _JOBS if _alive(j)]


@atexit.register
def _join_all() -> None:
    """Stop and join every job before the interpreter tears Qt down."""
    for job in list(_JOBS):
        try:
            job.cancel(wait=True)
        except RuntimeError:  # its C++ side is already gone
            pass
