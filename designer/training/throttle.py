"""Fetch a panel's numbers from the training thread, throttled.

Panels that follow training (predictions, weights, …) ask for fresh data on every report,
but they may fetch at most once per interval, with one request in flight, and not at all
while hidden; requests made meanwhile merge into the next fetch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer


class ThrottledFetch(QObject):
    """Runs `make_job()`'s function on the worker via `session.run_on_worker`, throttled.

    Args:
        session: the TrainingSession.
        interval_ms: the least time between two fetches (see `set_interval`).
        make_job: called on the GUI thread when a fetch is due; returns the function to run
            on the training thread, `fn(program, trainer)`.
        on_result / on_error: called on the GUI thread with the answer.
        visible: whether the panel can be seen (hidden panels do not fetch).
        with_worker: the function is `fn(program, trainer, worker)` (the run's counters).
    """

    def __init__(self, session, interval_ms: int, make_job: Callable[[], Callable],
                 on_result: Callable[[Any], None], on_error: Callable[[str], None],
                 visible: Callable[[], bool], parent: QObject | None = None,
                 with_worker: bool = False):
        super().__init__(parent)
        self.with_worker = with_worker
        self.session = session
        self.make_job, self.on_result, self.on_error = make_job, on_result, on_error
        self.visible = visible
        self.in_flight = False
        self.wanted = False
        self._cooldown = QTimer(self)
        self._cooldown.setSingleShot(True)
        self._cooldown.setInterval(interval_ms)
        self._cooldown.timeout.connect(self._maybe_fetch)

    def set_interval(self, ms: int) -> None:
        """Space the following fetches by `ms` (e.g. scaled by how long the last one took)."""
        self._cooldown.setInterval(ms)

    def request(self, now: bool = False) -> None:
        """Fetch soon; with `now`, without waiting for the interval (if nothing is in flight)."""
        self.wanted = True
        if now:
            self._cooldown.stop()
        self._maybe_fetch()

    def _maybe_fetch(self) -> None:
        if not self.wanted or self.in_flight or self._cooldown.isActive():
            return
        if not self.visible():
            return
        self.wanted = False
        self.in_flight = True
        self._cooldown.start()
        self.session.run_on_worker(self.make_job(), self._done, self._failed,
                                   with_worker=self.with_worker)

    def _done(self, result: Any) -> None:
        self.in_flight = False
        self.on_result(result)
        if self.wanted:
            self._cooldown.start()

    def _failed(self, message: str) -> None:
        self.in_flight = False
        self.on_error(message)
