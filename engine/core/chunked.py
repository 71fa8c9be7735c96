"""Run an elementwise compiled kernel over long vectors on several threads, chunk by chunk.

Adam on millions of parameters is bound by memory traffic, and one core cannot draw all the
memory bandwidth there is: two threads make the step 2–2.5× faster (5.8M parameters:
7.6 → 3.0–3.5 ms). numba's own parallel launch was tried and rejected: its OpenMP threads
keep spinning after the loop and slow the next matrix products of the training step
(docs/architecture.md). Here the extra threads are plain Python threads that sleep on a
condition between calls (they run the kernel with the GIL released), and the work is handed
out in chunks from a shared counter, so the calling thread never waits for a helper that a
busy machine has not scheduled yet: it takes the remaining chunks itself, and waits only
for the chunks already under way.

The kernel must be elementwise (element i of every array depends only on element i), so
every split gives bit-identical results.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

import numpy as np

from engine.core import jit

# Vectors shorter than this run in one call: below ~1 ms of work, waking a thread costs
# more than it saves (measured in a training step; see bench/engine_vs_torch.py).
MIN_SPLIT = 1 << 20
# One chunk per thread: each further chunk cost ~0.1 ms at 5.8M parameters (3.1–3.4 ms with
# one, 3.5–3.8 ms with four). A helper that starts late still costs no more than one thread:
# the caller then takes its chunk too.
CHUNKS_PER_THREAD = 1
# numba threading layers that allow launches from several threads at once.
THREADSAFE_LAYERS = ("omp", "tbb")


def default_ways() -> int:
    """Threads to use: the cores this process may run on, at most 4 (memory saturates)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    return max(1, min(4, cores or 1))


_settings = {"ways": default_ways()}
_helpers: list[_Helper] = []


def set_ways(ways: int) -> None:
    """How many threads (the caller's included) later `run` calls may use; 1 = no helpers."""
    _settings["ways"] = max(1, int(ways))


class _Job:
    """One call's chunks, handed out under a lock to whichever thread asks first."""

    def __init__(self, kernel: Callable, arrays: Sequence[np.ndarray], scalars: tuple,
                 chunk: int):
        self.kernel, self.arrays, self.scalars = kernel, arrays, scalars
        self.size, self.chunk = arrays[0].size, chunk
        self.next = 0
        self.running = 0
        self.lock = threading.Condition()
        self.error: BaseException | None = None

    def work(self) -> None:
        """Run chunks until none are left (any thread may call this, at any time)."""
        while True:
            with self.lock:
                start = self.next
                if start >= self.size or self.error is not None:
                    return
                self.next = start + self.chunk
                self.running += 1
            stop = min(start + self.chunk, self.size)
            jit.use_threads(stop - start)  # numba's thread count is set per thread
            try:
                self.kernel(*(a[start:stop] for a in self.arrays), *self.scalars)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                with self.lock:
                    self.error = exc
            finally:
                with self.lock:
                    self.running -= 1
                    self.lock.notify_all()

    def wait(self) -> None:
        """Until no chunk is under way in any thread; re-raises a helper's error."""
        with self.lock:
            while self.running:
                self.lock.wait()
        if self.error is not None:
            raise self.error


class _Helper:
    """A daemon thread that sleeps until it is given a job, then takes chunks from it."""

    def __init__(self):
        self.job: _Job | None = None
        self.wake = threading.Condition()
        self.pid = os.getpid()
        threading.Thread(target=self._loop, name="gradscape-chunks", daemon=True).start()

    def give(self, job: _Job) -> None:
        with self.wake:
            self.job = job
            self.wake.notify()

    def _loop(self) -> None:
        while True:
            with self.wake:
                while self.job is None:
                    self.wake.wait()
                job, self.job = self.job, None
            job.work()


def _threadsafe_layer() -> bool:
    numba = jit.numba_module()
    try:
        return numba.threading_layer() in THREADSAFE_LAYERS
    except ValueError:  # no parallel launch yet in this process: the layer is not chosen
        return False


def run(kernel: Callable, arrays: Sequence[np.ndarray], scalars: tuple) -> None:
    """`kernel(*arrays, *scalars)`, over chunks of the (equally long, 1-D, contiguous)
    arrays on up to `set_ways` threads when they are long enough. Call inside `jit.LOCK`."""
    ways = _settings["ways"]
    if ways < 2 or arrays[0].size < MIN_SPLIT or not _threadsafe_layer():
        jit.use_threads(arrays[0].size)
        kernel(*arrays, *scalars)
        return
    if _helpers and _helpers[0].pid != os.getpid():
        _helpers.clear()  # threads do not survive fork
    while len(_helpers) < ways - 1:
        _helpers.append(_Helper())
    pieces = ways * CHUNKS_PER_THREAD
    chunk = -(-arrays[0].size // pieces) + 63 & ~63  # whole cache lines
    job = _Job(kernel, arrays, scalars, chunk)
    for helper in _helpers[:ways - 1]:
        helper.give(job)
    job.work()
    job.wait()
