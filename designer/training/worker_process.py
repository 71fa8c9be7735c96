"""The training process: runs a `TrainingWorker` and talks to the window over a pipe. No Qt.

Training runs in a process of its own because a Python thread would share the interpreter
lock with painting: every millisecond the window spent drawing was a millisecond of lost
training (measured 0.63–0.99 of headless speed with a thread; see docs/benchmarks.md).

Messages are tuples. Commands in: ("load", LoadJob), ("play", run), ("pause",), ("step",),
("reset",), ("forget",), ("detail", EdgeSpec), ("job", job_id, payload, with_worker),
("quit",). Answers out: the worker's messages (see `TrainingWorker`) plus
("job_done", job_id, result, error). A job's payload is the function pickled with
cloudpickle, so a panel may send a closure over plain data; its result comes back pickled.
Both ends are this application's own processes: nothing from a file is ever unpickled.
"""

from __future__ import annotations

import os
import pickle
import traceback

from designer.training.worker import TrainingWorker


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


def serve(conn) -> None:
    """The child process's main loop: commands between steps, until "quit" or EOF."""
    limit_blas_threads(blas_threads())
    worker = TrainingWorker(conn.send)
    while True:
        try:
            if worker.running:
                worker.run_slice(conn.poll)
                while conn.poll():
                    if not _handle(worker, conn, conn.recv()):
                        return
            elif not _handle(worker, conn, conn.recv()):
                return
        except (EOFError, OSError, BrokenPipeError):
            return  # the window is gone: so is this process


def _handle(worker: TrainingWorker, conn, message: tuple) -> bool:
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
            conn.send(("job_done", job_id, None, f"Could not run the request: {exc}"))
            return True
        result, error = worker.run_job(fn, with_worker)
        try:
            conn.send(("job_done", job_id, result, error))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            conn.send(("job_done", job_id, None, f"Could not send the result back: {exc}"))
        return True
    handler = {
        "load": worker.load, "play": worker.play, "pause": worker.pause,
        "step": worker.step_once, "reset": worker.reset_weights, "forget": worker.forget,
        "detail": worker.request_detail,
    }.get(kind)
    if handler is not None:
        handler(*args)
    return True
