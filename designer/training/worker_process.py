"""The training process: runs a `TrainingWorker` and talks to the window over a pipe. No Qt.

Training runs in a process of its own because a Python thread would share the interpreter
lock with painting: every millisecond the window spent drawing was a millisecond of lost
training (measured 0.63–0.99 of headless speed with a thread; see docs/benchmarks.md).

Messages are tuples. Commands in: ("load", LoadJob), ("play", run), ("pause",), ("step",),
("reset",), ("forget",), ("detail", EdgeSpec), ("job", job_id, payload, with_worker),
("quit",). Answers out: the worker's messages (see `TrainingWorker`), ("notice", text) (see
`KernelWatch`) and ("job_done", job_id, result, error). A job's payload is the function
pickled with cloudpickle, so a panel may send a closure over plain data; its result comes
back pickled.
Both ends are this application's own processes: nothing from a file is ever unpickled.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
import traceback

from designer.training.worker import TrainingWorker
from engine.core import chunked, jit


def blas_threads(cores: int | None = None) -> int:
    """How many BLAS threads the training process uses: all cores but one, at least one.

    The window needs a core to paint. When a matrix product is split over every core, its
    part on the core the window holds waits a scheduler time slice, and the whole product
    with it: on 2 cores, the Predictions grid of the spirals example took a median 32 ms
    with two BLAS threads and 1.2 ms with one (`bench/gui_training.py` explains the rest).
    """
    if cores is None:  # the cores this process may run on, not all the machine has
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count()
    return max(1, (cores or 1) - 1)


def limit_blas_threads(threads: int) -> None:
    """Cap this process's BLAS thread pools (numpy is already loaded, so the environment
    variables OpenBLAS reads at start-up cannot)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


# How long a compiled kernel's first call may take before the window is told why it waits.
PREPARING_NOTICE_AFTER = 0.5
PREPARING_NOTICE_REPEAT = 5.0  # the window shows a notice for 6 s
PREPARING_NOTICE = ("Preparing the engine's compiled kernels for this machine: the first run "
                    "after installing takes a few seconds, later runs start at once.")


class KernelWatch:
    """Says in the status bar when a compiled kernel's first call keeps the worker waiting.

    On a fresh install numba compiles the convolution kernels at a CNN's first step (4 s on
    2 cores for the padded-CNN example): without a word the counters would sit at step 0.
    `check` runs on a thread of its own (see `serve`) while the worker is busy. The notice
    is sent again before the status bar's 6 s timeout would hide it, and cleared when the
    call is over.
    """

    def __init__(self, send, delay: float = PREPARING_NOTICE_AFTER,
                 repeat: float = PREPARING_NOTICE_REPEAT) -> None:
        self.send, self.delay, self.repeat = send, delay, repeat
        self.sent_at: float | None = None  # when the notice went out last, while it shows

    def check(self, now: float) -> None:
        """Send the notice or clear it, as needed; `now` is time.monotonic()."""
        since = jit.preparing_since()
        if since is not None and now - since >= self.delay:
            if self.sent_at is None or now - self.sent_at >= self.repeat:
                self.sent_at = now
                self.send(("notice", PREPARING_NOTICE))
        elif since is None and self.sent_at is not None:
            self.sent_at = None
            self.send(("notice", ""))


def _watch_kernels(watch: KernelWatch, interval: float = 0.2) -> None:
    while True:
        time.sleep(interval)
        try:
            watch.check(time.monotonic())
        except (EOFError, OSError, BrokenPipeError):
            return  # the window is gone


def serve(conn) -> None:
    """The child process's main loop: commands between steps, until "quit" or EOF."""
    threads = blas_threads()
    limit_blas_threads(threads)
    chunked.set_ways(threads)  # Adam's helper threads leave the window its core too
    lock = threading.Lock()

    def send(message: tuple) -> None:  # the watch thread sends too: one message at a time
        with lock:
            conn.send(message)

    worker = TrainingWorker(send)
    threading.Thread(target=_watch_kernels, args=(KernelWatch(send),), daemon=True,
                     name="kernel-watch").start()
    while True:
        try:
            if worker.running:
                worker.run_slice(conn.poll)
                while conn.poll():
                    if not _handle(worker, send, conn.recv()):
                        return
            elif not _handle(worker, send, conn.recv()):
                return
        except (EOFError, OSError, BrokenPipeError):
            return  # the window is gone: so is this process


def _handle(worker: TrainingWorker, send, message: tuple) -> bool:
    """Carry out one command; False to end the process."""
    kind, *args = message
    if kind == "quit":
        return False
    if kind == "job":
        job_id, payload, with_worker = args
        try:
            fn = pickle.loads(payload)
        except Exception as exc:  # noqa: BLE001  (a job that cannot be read: say so)
            traceback.print_exc()
            send(("job_done", job_id, None, f"Could not run the request: {exc}"))
            return True
        result, error = worker.run_job(fn, with_worker)
        try:
            send(("job_done", job_id, result, error))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            send(("job_done", job_id, None, f"Could not send the result back: {exc}"))
        return True
    handler = {
        "load": worker.load, "play": worker.play, "pause": worker.pause,
        "step": worker.step_once, "reset": worker.reset_weights, "forget": worker.forget,
        "detail": worker.request_detail,
    }.get(kind)
    if handler is not None:
        handler(*args)
    return True
