"""The training views' heavy redraws, one per event-loop turn.

While a run trains, three views redraw a few times a second: the wire overlay and counters
(a report applied to the canvas), the loss plot and the predictions. Each costs the GUI
thread 10–25 ms including its paint. When two landed in the same turn of the event loop,
their costs added up to 30–40 ms during which the window could not react to the mouse. The
pacer runs them one at a time with a short gap after each, so the paint of one, input
events and timers all get their turn before the next starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

GAP_MS = 12  # after one redraw, before the next: room for its paint and for input


class FramePacer(QObject):
    """Runs queued redraw jobs one per event-loop turn, at most one per `GAP_MS`."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._jobs: dict[str, Callable[[], None]] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._run_next)
        self._last_end = 0.0

    def request(self, key: str, job: Callable[[], None]) -> None:
        """Run `job` soon; a newer job under the same `key` replaces one still waiting."""
        self._jobs.pop(key, None)
        self._jobs[key] = job
        self._arm()

    def cancel(self, key: str) -> None:
        """Forget the job waiting under `key` (it was run directly)."""
        self._jobs.pop(key, None)

    def clear(self) -> None:
        """Forget every waiting job (a fresh run)."""
        self._jobs.clear()

    @property
    def waiting(self) -> list[str]:
        return list(self._jobs)

    def _arm(self) -> None:
        if self._jobs and not self._timer.isActive():
            wait = self._last_end + GAP_MS / 1000 - time.perf_counter()
            self._timer.start(max(0, int(wait * 1000)))

    def _run_next(self) -> None:
        key = next(iter(self._jobs), None)
        if key is None:
            return
        job = self._jobs.pop(key)
        try:
            job()
        finally:
            self._last_end = time.perf_counter()
            self._arm()
