"""Split a kernel's work over a few sleeping helper threads, chunk by chunk.

Much of a training step is either memory-bound (Adam over millions of parameters, ReLU and
pooling over a batch of images) or a batch of matrix products too small for OpenBLAS to
split well (a convolution's per-sample products). One core cannot draw all the memory
bandwidth there is, and OpenBLAS runs such small products on one thread or pays for
synchronising two. Here the caller and up to `ways − 1` helper threads take chunks of the
work (ranges of elements or of batch rows) from a shared counter; each chunk runs with the
GIL released (a numba `nogil` kernel, or a numpy matrix product with OpenBLAS held to one
thread meanwhile).

numba's own parallel launch was tried first and rejected: its OpenMP threads keep spinning
after the loop and slow the matrix products that follow (docs/architecture.md). These
helpers sleep on a condition between calls. A helper that a busy machine has not scheduled
yet costs nothing but its wake-up: the caller takes the remaining chunks itself and waits
only for chunks already under way.

Every split gives bit-identical results: the kernels are elementwise or per row, and the
products run on one BLAS thread whether split or not (OpenBLAS's own thread count can
change the last bits of a product, by 2e-14 in float64: a split never depends on it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

import numpy as np

from engine.core import jit

# Elements below which a memory-bound kernel (Adam, ReLU, pooling) runs in one call: waking
# a helper costs more than it saves on less (at 235k parameters Adam split made the (c)
# step 1.19–1.26 → 1.26–1.33 ms; case (d)'s 346k-element ReLU went 0.14 → 0.22 ms). Above
# it splits pay: the caller takes the first rows, which a split convolution before it left
# in its own core's cache (the 3×32×32 CNN's step, median of five: 9.86 → 9.22 ms).
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
_POOL = threading.Lock()  # one split at a time; a second caller meanwhile runs alone
_blas: dict = {}


def splits_numba_kernels() -> bool:
    """Whether a `split` of numba kernels would use helper threads (more than one way, and
    a numba threading layer that allows launches from several threads at once)."""
    return _settings["ways"] > 1 and _threadsafe_layer()


def set_ways(ways: int) -> None:
    """How many threads (the caller's included) later splits may use; 1 = no helpers."""
    _settings["ways"] = max(1, int(ways))


class _Job:
    """One call's chunks, handed out under a lock to whichever thread asks first."""

    def __init__(self, work: Callable[[int, int], None], size: int, chunk: int,
                 numba_kernel: bool):
        self.work, self.size, self.chunk = work, size, chunk
        self.numba_kernel = numba_kernel
        self.next = 0
        self.running = 0
        self.lock = threading.Condition()
        self.error: BaseException | None = None

    def take_chunks(self) -> None:
        """Run chunks until none are left (any thread may call this, at any time)."""
        while True:
            with self.lock:
                start = self.next
                if start >= self.size or self.error is not None:
                    return
                self.next = start + self.chunk
                self.running += 1
            stop = min(start + self.chunk, self.size)
            try:
                if self.numba_kernel:
                    jit.use_threads(stop - start)  # numba's thread count is per thread
                self.work(start, stop)
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
            job.take_chunks()


def _reset_after_fork() -> None:
    """In a child forked mid-split or mid-hold: fresh locks, no helpers (threads do not
    survive fork), and the BLAS threads the parent's hold had taken away given back."""
    global _POOL, _BLAS_LOCK
    _POOL, _BLAS_LOCK = threading.Lock(), threading.Lock()
    _helpers.clear()
    limit, _blas_hold["limit"], _blas_hold["depth"] = _blas_hold["limit"], None, 0
    if limit is not None:
        limit.restore_original_limits()


def _threadsafe_layer() -> bool:
    numba = jit.numba_module()
    try:
        return numba is not None and numba.threading_layer() in THREADSAFE_LAYERS
    except ValueError:  # no parallel launch yet in this process: the layer is not chosen
        return False


_blas_hold = {"depth": 0, "limit": None}
_BLAS_LOCK = threading.Lock()


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Hold the BLAS libraries to one thread each (5 µs), for however many threads and
    nested blocks ask at once: the first to enter limits, the last to leave restores (a
    lab thread's conv network may step while the training thread's does)."""
    with _BLAS_LOCK:
        if _blas_hold["depth"] == 0:
            controller = _blas.get("controller")
            if controller is None:
                from threadpoolctl import ThreadpoolController

                controller = _blas["controller"] = ThreadpoolController()
            _blas_hold["limit"] = controller.limit(limits=1, user_api="blas")
        _blas_hold["depth"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _blas_hold["depth"] -= 1
            if _blas_hold["depth"] == 0:
                limit, _blas_hold["limit"] = _blas_hold["limit"], None
                limit.restore_original_limits()


_NO_HOLD = nullcontext()  # reusable: every training step of a small network passes here


def blas_on_one_thread(when: bool = True) -> AbstractContextManager:
    """A context that runs its block's matrix products on one BLAS thread when `when` and
    splits may use helpers: for a network whose large products are split here
    (convolutions).

    After any product OpenBLAS ran on two threads, its second thread spins for a while,
    and a helper woken then shares a core with it: a split convolution product that took
    1.0 ms took 1.8 ms right after even a tiny two-thread product (the CNN's last Dense).
    """
    if not when or _settings["ways"] < 2:
        return _NO_HOLD
    return _one_blas_thread()


def split(work: Callable[[int, int], None], size: int, *, align: int = 1,
          numba_kernel: bool = True, blas: bool = False) -> None:
    """`work(start, stop)` over ranges that cover 0…size, on up to `ways` threads.

    The caller decides whether the work is worth splitting. `align` rounds chunk sizes up
    (whole cache lines of a vector); `numba_kernel` says the work launches numba kernels
    (which need a thread-safe threading layer), `blas` that it runs matrix products (held
    to one BLAS thread each while the chunks run). Work that raises in a helper raises here.
    """
    n_ways = _settings["ways"]
    if (n_ways < 2 or size < 2 or (numba_kernel and not _threadsafe_layer())
            or not _POOL.acquire(blocking=False)):
        if numba_kernel:
            jit.use_threads(size)  # as a chunk would (numba's own threads stay unused)
        # held as a split would be, so the products' last bits do not depend on whether
        # another thread happened to be splitting
        with _one_blas_thread() if blas and n_ways >= 2 else nullcontext():
            work(0, size)
        return
    try:
        if _helpers and _helpers[0].pid != os.getpid():
            _helpers.clear()  # threads do not survive fork
        while len(_helpers) < n_ways - 1:
            _helpers.append(_Helper())
        pieces = min(size, n_ways * CHUNKS_PER_THREAD)
        per_piece = -(-size // pieces)  # ceiling division
        chunk = -(-per_piece // align) * align
        job = _Job(work, size, chunk, numba_kernel)
        with _one_blas_thread() if blas else nullcontext():
            for helper in _helpers[:n_ways - 1]:
                helper.give(job)
            job.take_chunks()
            job.wait()
    finally:
        _POOL.release()


def run(kernel: Callable, arrays: Sequence[np.ndarray], scalars: tuple = (), *,
        min_split: int | None = None, rows: bool = False) -> None:
    """`kernel(*arrays, *scalars)` for a numba kernel that works on each element (or, with
    `rows`, on each batch row along the first axis) of its contiguous arrays on its own,
    split into chunks when there are at least `min_split` elements (default `MIN_SPLIT`).
    Call inside `jit.LOCK`."""
    size = arrays[0].size
    if size < (MIN_SPLIT if min_split is None else min_split):
        jit.use_threads(size)
        kernel(*arrays, *scalars)
        return
    split(lambda start, stop: kernel(*(a[start:stop] for a in arrays), *scalars),
          len(arrays[0]) if rows else size, align=1 if rows else 64)


# Matrix products below this many floating-point operations run in one numpy call: a
# helper's wake-up (29 µs median, 69 µs at the 90th percentile on the 2-core bench machine)
# costs more than half of a smaller product saves (case (d)'s 18 MFLOP convolution went
# 0.52 → 0.64 ms when split).
MIN_SPLIT_FLOPS = 32_000_000


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """np.matmul(a, b, out=out) for a batch of products along out's first axis (an operand
    with fewer axes than `out` is shared by every sample), split over the batch when large:
    a convolution's per-sample products are too small for OpenBLAS to split well."""
    flops = 2 * out.size * a.shape[-1]
    if flops < MIN_SPLIT_FLOPS or len(out) < 2 or _settings["ways"] < 2:
        return np.matmul(a, b, out=out)
    batched_a, batched_b = a.ndim == out.ndim, b.ndim == out.ndim

    def work(start: int, stop: int) -> None:
        np.matmul(a[start:stop] if batched_a else a, b[start:stop] if batched_b else b,
                  out=out[start:stop])

    split(work, len(out), numba_kernel=False, blas=True)
    return out


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
