"""Test set-up: Qt runs offscreen, and Qt warnings fail tests (pytest-qt)."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The platform's data folder (recovery files, the user's block library) goes to a private
# temporary folder, so no test reads or writes the real one.
os.environ["XDG_DATA_HOME"] = __import__("tempfile").mkdtemp(prefix="gradscape-test-data-")

import sys  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _close_windows_after_test():
    """Windows a test left open are closed (and so deleted) after it."""
    yield
    if "tests.gui" in sys.modules:
        sys.modules["tests.gui"].close_tracked_windows()


@pytest.fixture(autouse=True)
def _clear_clipboard_after_test():
    """Qt's offscreen clipboard crashes at exit while it still owns data: empty it after tests."""
    yield
    if "PySide6.QtWidgets" in sys.modules:
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        if app is not None:
            app.clipboard().clear()
