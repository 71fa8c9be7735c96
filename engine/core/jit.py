"""Optional numba compilation of the engine's hot loops, with numpy as the fallback.

A kernel module defines a builder, ``build(numba) -> compiled function``; `kernel(build)`
compiles it once per process (cached on disk by numba) and returns it, or returns None when
the caller must use its numpy path: numba is not installed, ``GRADSCAPE_NUMBA=0`` is set, or
this is a child process forked after numba ran (OpenMP thread pools do not survive fork).
Launch compiled parallel kernels inside `LOCK`: every numba threading layer is then safe to
use from several training threads.

Callers use a kernel only above a work size (`worth_it`): importing numba and loading the
compiled code costs ~0.7 s once per process, which small networks would never earn back.
Kernels are compiled with parallel=True (which also lets LLVM vectorise them) but run on
the calling thread alone below `PARALLEL_WORK` (see `use_threads`), which is set so high that
they always do: numba's OpenMP threads keep spinning after a launch and slow the matrix
products that follow. Elementwise kernels on long vectors (Adam) are split over plain
sleeping threads instead (`engine.core.chunked`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

LOCK = threading.Lock()
# Elements touched per call below which the numpy path is used.
MIN_WORK = 65_536
# Elements per call from which a kernel runs on all of numba's threads: in practice never.
# In a training step the kernels run between OpenBLAS's matrix products, whose threads keep
# spinning for a while; a second numba thread then fights them for the two cores (the
# 784-2048-2048-10 step: 1.57× jax.jit's time with two numba threads, 0.99× with one;
# `bench/engine_vs_torch.py`). Tests lower it to check the threaded path stays bit-identical.
PARALLEL_WORK = 1 << 62

_numba: Any = None
_state = {"tried": False, "pid": 0}
_kernels: dict[Callable, Callable] = {}
_preparing: list[float] = []  # when each first call under way began (see preparing_since)


def enabled() -> bool:
    """True when compiled kernels may be used in this process (imports numba on first call)."""
    if os.environ.get("GRADSCAPE_NUMBA", "1") == "0":
        return False
    if not _state["tried"]:
        global _numba
        _state["tried"], _state["pid"] = True, os.getpid()
        try:
            import numba
        except ImportError:
            numba = None
        _numba = numba
    return _numba is not None and os.getpid() == _state["pid"]


def worth_it(work: int) -> bool:
    """Whether a call touching `work` elements should take the compiled path."""
    return work >= MIN_WORK and enabled()


def kernel(build: Callable[[Any], Callable]) -> Callable | None:
    """The function `build(numba)` compiles (built once), or None for the numpy path."""
    if not enabled():
        return None
    fn = _kernels.get(build)
    if fn is None:
        fn = _kernels[build] = _timed_first_call(build, build(_numba))
    return fn


def _timed_first_call(build: Callable, fn: Callable) -> Callable:
    """`fn`, noting while its first call runs: numba compiles a kernel then (seconds, once
    per install) or loads it from its disk cache. Later calls go to `fn` itself."""
    def first_call(*args):
        _preparing.append(time.monotonic())
        try:
            return fn(*args)
        finally:
            _preparing.pop()
            _kernels[build] = fn

    first_call.dispatchers = getattr(fn, "dispatchers", (fn,))
    return first_call


def preparing_since() -> float | None:
    """When (time.monotonic()) the kernel being called for the first time in this process
    was called, or None: a caller that waits long can say why (see the training process)."""
    first = _preparing[:1]  # one atomic read: another thread may end the call meanwhile
    return first[0] if first else None


def numba_module() -> Any:
    """The imported numba module (only after `enabled()` said True)."""
    return _numba


_thread_count = threading.local()  # what use_threads last set in this thread


def use_threads(work: int) -> None:
    """Set how many threads the next kernel launch from this thread uses (call inside LOCK)."""
    n = _numba.config.NUMBA_NUM_THREADS if work >= PARALLEL_WORK else 1
    # numba's setting is per thread and only set here; setting it again took 11 µs inside a
    # training step (1 µs in a loop of its own), once a step for Adam
    if getattr(_thread_count, "n", None) != n:
        _numba.set_num_threads(n)
        _thread_count.n = n
