"""Costly parts of the window loaded on first use, so the first window appears quickly.

pyqtgraph takes 0.2–0.4 s to import and its plots tens of milliseconds each to build. The
window therefore opens with light stand-ins (`DeferredWidget`) for the loss plot and the
learning views; `build_when_idle` builds them one per event-loop turn right after the
window's first paint (before anyone can press Play, so no build lands in the middle of
training), and asking a stand-in for its widget builds it at once. Modules that only need
pyqtgraph inside their dialogs use `pg` from here: it imports pyqtgraph on first attribute
access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from designer import theme


class OnDemandModule:
    """A module imported at its first attribute access (`pg.PlotWidget` imports pyqtgraph)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


pg = OnDemandModule("pyqtgraph")


class DeferredWidget(QWidget):
    """Stands in for the widget `factory()` builds, showing `note` until it is built.

    `widget()` builds it (once), puts it in the stand-in's place inside this widget and
    calls `placed(widget)` (e.g. to fetch its first numbers); being shown builds it too,
    after the window's first paint (a dock restored open).
    """

    def __init__(self, factory: Callable[[], QWidget], note: str = "",
                 parent: QWidget | None = None,
                 placed: Callable[[QWidget], Any] | None = None):
        super().__init__(parent)
        self._factory: Callable[[], QWidget] | None = factory
        self._placed = placed  # called with the widget once it is in place (and visible)
        self._widget: QWidget | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._note = QLabel(note)
        self._note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._note.setWordWrap(True)
        self._note.setStyleSheet(f"color: {theme.current().muted_text};")
        self._layout.addWidget(self._note)

    @property
    def built(self) -> bool:
        return self._widget is not None

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._widget is None:
            build_when_idle(self.window(), self.widget)

    def widget(self) -> QWidget:
        """The real widget, built now if it was not yet."""
        if self._widget is None:
            factory, self._factory = self._factory, None
            self._widget = factory()
            self._note.hide()
            self._note.deleteLater()
            self._layout.addWidget(self._widget)
            self._widget.show()  # now, not at the layout's next event-loop turn
            if self._placed is not None:
                self._placed(self._widget)
        return self._widget


class _IdleBuilds(QObject):
    """Runs the builds of one window one per event-loop turn after its first paint."""

    def __init__(self, window: QWidget):
        super().__init__(window)
        self.window = window
        self.pending: list[Callable[[], Any]] = []
        self.painted = False
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() == QEvent.Type.Paint and not self.painted:
            self.painted = True
            self.window.removeEventFilter(self)
            QTimer.singleShot(0, self, self._next)  # dropped with self
        return False

    def _next(self) -> None:
        if not self.window.isVisible():  # closed meanwhile: build nothing it would not free
            self.pending.clear()
            return
        if self.pending:
            build = self.pending.pop(0)
            build()
            QTimer.singleShot(0, self, self._next)  # dropped with self

    def run_all(self) -> None:
        while self.pending:
            self.pending.pop(0)()


def _idle_builds(window: QWidget) -> _IdleBuilds | None:
    return window.findChild(_IdleBuilds, options=Qt.FindChildOption.FindDirectChildrenOnly)


def build_when_idle(window: QWidget, *builds: Callable[[], Any]) -> None:
    """Call each of `builds` after `window` was first painted, one per event-loop turn
    (a build that already happened on demand costs nothing)."""
    idle = _idle_builds(window) or _IdleBuilds(window)
    idle.pending.extend(b for b in builds if b not in idle.pending)
    if idle.painted:
        QTimer.singleShot(0, idle._next)


def build_pending_now(window: QWidget) -> None:
    """Run the builds still waiting for an idle moment, now: training is about to start,
    and a plot built in the middle of it would stall the window while it trains."""
    idle = _idle_builds(window)
    if idle is not None:
        idle.run_all()
