"""Tab docks together once the main window is showing.

Tabifying into a new tab group before the window is laid out leaves a stale extra tab bar
on screen (Qt 6.11), so a default layout's tab groups are made after the first Show.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QDockWidget, QMainWindow


class _WhenShown(QObject):
    def __init__(self, window: QMainWindow, make):
        super().__init__(window)
        self.window, self.make = window, make
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() == QEvent.Type.Show:
            self.window.removeEventFilter(self)
            QTimer.singleShot(0, self, self.make)  # dropped if the window goes first
        return False


def tabify_when_shown(window: QMainWindow, anchor: QDockWidget,
                      docks: list[QDockWidget]) -> None:
    """Put DOCKS in tabs after ANCHOR (kept on top), now if WINDOW shows, else once it does
    (hidden until then: a panel that works only while visible stays idle)."""

    def make() -> None:
        for dock in docks:
            window.tabifyDockWidget(anchor, dock)
            dock.show()
        anchor.raise_()

    if window.isVisible():
        make()
    else:
        for dock in docks:
            dock.hide()
        _WhenShown(window, make)
