"""Helpers shared by the GUI tests: a main window with private settings, examples, worker calls."""

import weakref

import shiboken6
from PySide6.QtCore import QSettings

from designer.controller import Controller
from designer.main_window import MainWindow
from designer.resources import resource_path
from designer.training import session as states

EXAMPLES = resource_path("examples")
_WINDOWS: list[weakref.ref] = []  # the windows GUI tests opened, closed after each test


def track_window(win) -> None:
    """Close `win` after the test (conftest), unless the test closed it: a closed window
    deletes itself, so pytest-qt's own clean-up (qtbot.addWidget) would touch a dead one."""
    _WINDOWS.append(weakref.ref(win))


def close_tracked_windows() -> None:
    """Close the windows the test left open (called by conftest after every test)."""
    while _WINDOWS:
        win = _WINDOWS.pop()()
        if win is not None and shiboken6.isValid(win):
            win.close()


def make_window(qtbot, tmp_path, name: str = "w", size: tuple[int, int] = (1300, 850)):
    """A shown MainWindow with its own settings, recovery folder and block library; prompts
    never block.

    Error and information boxes are collected in `win.errors` / `win.infos` instead.
    """
    settings = QSettings(str(tmp_path / f"{name}.ini"), QSettings.Format.IniFormat)
    win = MainWindow(Controller(recovery_dir=tmp_path / f"recovery-{name}",
                                blocks_dir=tmp_path / f"blocks-{name}"), settings)
    win.ask_save_changes = lambda: "discard"
    win.errors = []
    win.show_error = lambda title, text: win.errors.append((title, text))
    win.infos = []
    win.models.show_info = lambda title, text: win.infos.append((title, text))
    track_window(win)
    win.resize(*size)
    win.show()
    return win


def window_fixture(qtbot, tmp_path, name: str = "w", size: tuple[int, int] = (1300, 850)):
    """`make_window` for a pytest fixture (`yield from`): the shown window, then file work
    finished and its training process ended."""
    win = make_window(qtbot, tmp_path, name, size)
    qtbot.waitExposed(win)
    yield win
    if shiboken6.isValid(win):  # the test may have closed (and so deleted) it
        win.models.wait()
        win.training.shutdown()


def open_example(qtbot, win, name: str, **training):
    """Open an example (optionally overriding its training settings) and wait until compiled."""
    win.open_path(EXAMPLES / name, ask=False)
    if training:
        block = win.document.training()
        block.update(training)
        win.controller.set_training(block)
        win.training.session.compile_now()
    session = win.training.session
    qtbot.waitUntil(lambda: session.state in (states.READY, states.PAUSED), timeout=5000)
    return session


def on_worker(qtbot, session, fn, timeout: int = 5000):
    """The result of `fn(program, trainer)` run on the training thread."""
    out = []
    session.run_on_worker(fn, out.append)
    qtbot.waitUntil(lambda: bool(out), timeout=timeout)
    return out[0]
