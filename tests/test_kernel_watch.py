"""A compiled kernel's first call (numba compiles it once per install) is said in the status
bar when it keeps the training process waiting."""

import pytest

from designer.training import worker_process
from designer.training.worker_process import PREPARING_NOTICE, KernelWatch
from engine.core import jit


def test_the_first_call_of_a_kernel_is_timed_and_later_calls_go_straight_through(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.delenv("GRADSCAPE_NUMBA", raising=False)
    monkeypatch.setattr(jit, "_kernels", {})
    seen = []

    def compiled(x):  # stands in for a numba dispatcher
        seen.append(jit.preparing_since())
        return x + 1

    def build(numba):
        return compiled

    assert jit.preparing_since() is None
    first = jit.kernel(build)
    assert first is not compiled and first.dispatchers == (compiled,)
    assert first(1) == 2 and seen[0] is not None  # noted while it ran
    assert jit.preparing_since() is None  # and no longer once it returned
    assert jit.kernel(build) is compiled  # later calls: the kernel itself, no wrapper
    assert jit.kernel(build)(1) == 2 and seen[1] is None


def test_a_failing_first_call_is_not_left_marked_as_preparing(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.delenv("GRADSCAPE_NUMBA", raising=False)
    monkeypatch.setattr(jit, "_kernels", {})

    def build(numba):
        def compiled(x):
            raise ValueError("bad types")
        return compiled

    with pytest.raises(ValueError):
        jit.kernel(build)(1)
    assert jit.preparing_since() is None


def test_the_watch_speaks_after_half_a_second_repeats_before_the_timeout_and_clears(monkeypatch):
    since = {"t": None}
    monkeypatch.setattr(worker_process.jit, "preparing_since", lambda: since["t"])
    sent = []
    watch = KernelWatch(sent.append, delay=0.5, repeat=5.0)
    watch.check(10.0)
    assert sent == []  # nothing compiling: nothing to say
    since["t"] = 10.0
    watch.check(10.3)
    assert sent == []  # a short first call (a kernel loaded from numba's cache) stays quiet
    watch.check(10.6)
    assert sent == [("notice", PREPARING_NOTICE)]
    watch.check(12.0)
    assert len(sent) == 1  # said once, still showing
    watch.check(15.7)
    assert sent[-1] == ("notice", PREPARING_NOTICE) and len(sent) == 2  # said again
    since["t"] = None
    watch.check(16.0)
    assert sent[-1] == ("notice", "")  # done: the status bar is cleared
    watch.check(17.0)
    assert len(sent) == 3  # and only once
    assert "first run after installing" in PREPARING_NOTICE


def test_a_notice_from_the_training_process_reaches_the_status_bar(qtbot, tmp_path):
    from tests.gui import make_window

    win = make_window(qtbot, tmp_path)
    try:
        win.training.session._on_message(("notice", PREPARING_NOTICE))
        assert win.statusBar().currentMessage() == PREPARING_NOTICE
        win.training.session._on_message(("notice", ""))
        assert win.statusBar().currentMessage() == ""
    finally:
        win.training.shutdown()
