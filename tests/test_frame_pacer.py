"""The frame pacer runs the training views' heavy redraws one per event-loop turn."""

from __future__ import annotations

import time

from designer.training.frame_pacer import GAP_MS, FramePacer


def test_a_newer_job_replaces_the_waiting_one_of_its_key(qtbot):
    pacer = FramePacer()
    ran = []
    pacer.request("plot", lambda: ran.append("old"))
    pacer.request("plot", lambda: ran.append("new"))
    qtbot.waitUntil(lambda: not pacer.waiting, timeout=2000)
    assert ran == ["new"]


def test_jobs_run_one_at_a_time_with_a_gap_between(qtbot):
    pacer = FramePacer()
    stamps: dict[str, float] = {}
    for key in ("reports", "loss-plot", "predictions"):
        pacer.request(key, lambda key=key: stamps.setdefault(key, time.perf_counter()))
    qtbot.waitUntil(lambda: len(stamps) == 3, timeout=2000)
    order = sorted(stamps, key=stamps.get)
    assert order == ["reports", "loss-plot", "predictions"]  # first asked, first drawn
    times = sorted(stamps.values())
    assert all(b - a >= GAP_MS / 1000 * 0.9 for a, b in zip(times, times[1:]))


def test_cancel_and_clear_drop_waiting_jobs(qtbot):
    pacer = FramePacer()
    ran = []
    pacer.request("a", lambda: ran.append("a"))
    pacer.request("b", lambda: ran.append("b"))
    pacer.cancel("a")
    assert pacer.waiting == ["b"]
    pacer.clear()
    qtbot.wait(3 * GAP_MS)
    assert ran == []


def test_a_failing_job_does_not_stop_the_next(qtbot):
    pacer = FramePacer()
    ran = []

    def broken():
        raise ValueError("boom")

    pacer.request("broken", broken)
    pacer.request("next", lambda: ran.append("next"))
    try:
        pacer._run_next()
    except ValueError:
        pass
    qtbot.waitUntil(lambda: ran == ["next"], timeout=2000)
