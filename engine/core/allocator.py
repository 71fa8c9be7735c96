"""Keep the memory numpy frees for the next arrays of the same size (glibc's malloc).

A training step allocates and frees the same arrays every time: activations, gradients,
a convolution's columns. By default glibc hands large freed blocks back to the system
(`munmap`, or trimming the heap's top) and takes them again on the next step, and every
page taken again is zeroed by the kernel on its first touch: the 3×32×32 CNN's step paid
420–500 page faults and 2.7–2.8 ms of system time for it (11.9 → 10.7 ms without them;
bench/cnn_step.py). Both thresholds must be set: setting one turns off glibc's
adjustment of the other, which then stays at its 128 kB default (setting only the trim
threshold gave 7,700 faults a step).

Blocks above `MMAP_THRESHOLD` (glibc's largest allowed value) are still mapped on their
own and returned when freed. The cost: up to `TRIM_THRESHOLD` of free memory at the top of
each heap (the main one and one per thread that allocates) stays with the process instead
of going back to the system. 32 MiB already removed the CNN's faults (1.3 a step); a
network whose step frees more faults as before. Nothing changes where the C library is not
glibc, when the user has set malloc's thresholds through the environment, or with
`GRADSCAPE_MALLOC=0`.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt() parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # HEAP_MAX_SIZE / 2 on 64-bit: glibc refuses more
TRIM_THRESHOLD = 64 << 20
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_state: dict[str, bool] = {}


def keep_freed_memory() -> bool:
    """Set malloc's thresholds once per process; True when they are (glibc only)."""
    if "kept" not in _state:
        _state["kept"] = _set_thresholds()
    return _state["kept"]


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("GRADSCAPE_MALLOC") == "0":
        return False
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "") or any(
            name in os.environ for name in _USER_SETTINGS):
        return False  # the user's own thresholds win
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
        gnu_get_libc_version = libc.gnu_get_libc_version  # present in glibc alone
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    del gnu_get_libc_version
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # mmap first: glibc refuses it above its maximum (512 kB on 32-bit), and then nothing
    # has changed; the trim threshold has no maximum, so once mmap's is set it is set too
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
