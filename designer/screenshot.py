"""Save a picture of a window (``python -m designer --screenshot PNG``; docs, smoke tests)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEventLoop
from PySide6.QtWidgets import QWidget


def settle(ms: int = 300) -> None:
    """Process events for about MS milliseconds so layouts, fits and repaints finish."""
    timer = QElapsedTimer()
    timer.start()
    while timer.elapsed() < ms:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)


def take_screenshot(window: QWidget, path: str | Path) -> bool:
    """Show WINDOW, let it settle and save ``window.grab()`` to PATH; False if saving failed."""
    window.show()
    settle()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return window.grab().save(str(path))
