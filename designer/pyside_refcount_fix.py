"""Work around a reference-count bug of PySide6 6.12 on Python 3.11.

PySide6 6.12 (built for the stable ABI) releases a reference to ``None`` after every call of
a C++ method returning ``void``, and to ``True``/``False`` after some bool returns, as if these
objects were immortal -- which they only are from Python 3.12 on. On 3.11 the interpreter then
aborts with "Fatal Python error: none_dealloc" after a few thousand Qt calls.

On Python < 3.12 this module raises the reference counts of the singletons so far that they
can never reach zero, which is what 3.12's immortal objects do. It is imported by
``designer/__init__.py`` before any Qt module, and is a no-op on 3.12 and later.
"""

from __future__ import annotations

import ctypes
import sys

_PINNED = 1 << 60  # ~1e18 releases: centuries at any call rate


def pin_singletons() -> None:
    """Make None, True, False, Ellipsis and NotImplemented effectively immortal (3.11 only)."""
    if sys.version_info >= (3, 12) or getattr(sys, "_gradscape_singletons_pinned", False):
        return
    for obj in (None, True, False, Ellipsis, NotImplemented):
        ref = ctypes.c_ssize_t.from_address(id(obj))
        ref.value += _PINNED
    sys._gradscape_singletons_pinned = True


pin_singletons()
