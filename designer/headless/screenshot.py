"""Pictures of the app for the docs and smoke tests (``python -m designer --screenshot PNG``).

`take_screenshot` saves a window. `train_steps`, `select_item` and `grab_after_action` prepare
what is shown first: N optimizer steps through the window's real TrainingSession (so the loss
plot and the gradient overlay are drawn exactly as a user sees them), a selected node or wire,
or a dialog opened by one of the window's actions. docs/screenshots.py drives them through the
command line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEventLoop, Qt, QTimer
from PySide6.QtWidgets import QAbstractButton, QApplication, QWidget

STEPS_PER_BATCH = 25  # Step requests queued at once; reports are drawn between batches


class ScreenshotError(Exception):
    """A screenshot run could not do what it was asked (the message is a sentence)."""


def settle(ms: int = 300) -> None:
    """Process events for about MS milliseconds so layouts, fits and repaints finish."""
    timer = QElapsedTimer()
    timer.start()
    while timer.elapsed() < ms:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)


def wait_until(condition: Callable[[], bool], timeout_ms: int) -> bool:
    """Process events until `condition()` is true; False if TIMEOUT_MS passed first."""
    timer = QElapsedTimer()
    timer.start()
    while not condition():
        if timer.elapsed() > timeout_ms:
            return False
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    return True


def take_screenshot(window: QWidget, path: str | Path) -> bool:
    """Show WINDOW, let it settle (and its background jobs, such as the Data dock reading a
    CSV file, finish: up to a minute) and save ``window.grab()`` to PATH; False if saving
    failed."""
    from designer.lab.background import running_jobs

    window.show()
    settle()
    if running_jobs():
        wait_until(lambda: not running_jobs(), 60_000)
        settle()
    return save_grab(window, path)


def save_grab(widget: QWidget, path: str | Path) -> bool:
    """Save ``widget.grab()`` to PATH (folders are created); False if saving failed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return widget.grab().save(str(path))


def train_steps(window, steps: int, timeout_ms: int = 120_000) -> None:
    """Train STEPS optimizer steps with the window's TrainingSession, as the Step button does.

    Steps are queued in small batches and every report is handed to the loss plot and the
    gradient overlay before the next batch, so what is drawn is what a user would see after
    pressing Step STEPS times. Raises ScreenshotError with the reason if training cannot run,
    fails, diverges or takes longer than TIMEOUT_MS.
    """
    session = window.training.session
    from designer.training import session as states

    problems: list[str] = []
    session.problem.connect(lambda text: text and problems.append(text))
    bad = (states.EMPTY, states.INVALID, states.FAILED, states.DIVERGED)
    # The graph is compiled on the training thread; wait until it is ready (or refused).
    if not wait_until(lambda: session.state not in (states.COMPILING,), timeout_ms):
        raise ScreenshotError("The graph did not finish compiling in time.")
    if session.state in bad:
        raise ScreenshotError(_why(session, problems, "The graph cannot be trained."))
    done = 0
    timer = QElapsedTimer()
    timer.start()
    while done < steps:
        batch = min(STEPS_PER_BATCH, steps - done)
        target = done + batch
        for _ in range(batch):
            session.step()
        remaining = max(1, timeout_ms - timer.elapsed())
        arrived = wait_until(lambda t=target: session.state in bad or (
            session.last_report is not None and session.last_report.step >= t), remaining)
        if session.state in bad:
            raise ScreenshotError(_why(session, problems, "Training stopped."))
        if not arrived:
            raise ScreenshotError(f"Training did not finish {steps} steps within "
                                  f"{timeout_ms / 1000:.0f} s.")
        done = target
    settle(250)  # the last report is drawn at once; let the overlay and plot repaint


def _why(session, problems: list[str], fallback: str) -> str:
    text = problems[-1] if problems else (session._why_not() or fallback)
    return " ".join(text.split())


def select_item(window, what: str) -> None:
    """Select a node or a block (its id) or a wire ("SRC->DST" or "SRC->DST.PORT").

    A selected node fills the inspector; a selected wire opens the wire detail panel.
    Raises ScreenshotError if there is no such node or wire.
    """
    scene = window.scene
    if "->" not in what and window.document.has_group(what):
        scene.select_group(what)  # a block, by its id
        return
    if "->" not in what:
        if what not in scene.nodes:
            raise ScreenshotError(f"There is no node called {what!r} to select.")
        scene.select_nodes([what])
        return
    src, dst = (part.strip() for part in what.split("->", 1))
    src_node = src.split(".")[0]
    dst_node, _, dst_port = dst.partition(".")
    for edge, item in scene.edges.items():
        if (edge.src == src_node and edge.dst == dst_node
                and (not dst_port or edge.dst_port == dst_port)):
            scene.clearSelection()
            item.setSelected(True)
            return
    raise ScreenshotError(f"There is no wire {what!r} to select.")


def trigger_action(window, name: str) -> None:
    """Trigger `window.actions[NAME]` (a menu command) later, from the event loop.

    Later, so that a dialog it opens with exec() runs its own loop while we keep going.
    Raises ScreenshotError for an unknown action.
    """
    action = window.actions.get(name)
    if action is None:
        known = ", ".join(sorted(window.actions))
        raise ScreenshotError(f"There is no action called {name!r} (known: {known}).")
    QTimer.singleShot(0, action.trigger)


def newest_dialog(window) -> QWidget | None:
    """The visible top-level widget other than WINDOW that was opened last (a dialog)."""
    modal = QApplication.activeModalWidget()
    if modal is not None and modal is not window:
        return modal
    others = [w for w in QApplication.topLevelWidgets()
              if w.isVisible() and w is not window and w.isWindow()
              and w.windowType() not in (Qt.WindowType.Popup, Qt.WindowType.ToolTip)]
    return others[-1] if others else None


def grab_after_action(window, name: str, path: str | Path, wait_ms: int = 800,
                      click: str | None = None) -> bool:
    """Trigger action NAME, then save the dialog it opened (or the window) to PATH and close it.

    With CLICK, the dialog's button with that text (e.g. "Compute") is pressed first and the
    picture taken WAIT_MS later. Works for dialogs shown with show() and with exec(): the
    picture is taken from a timer, which also runs inside a dialog's own event loop.
    """
    result: list[bool] = []
    failure: list[str] = []

    def grab() -> None:
        dialog = newest_dialog(window)
        result.append(save_grab(dialog or window, path))
        if dialog is not None:
            dialog.close()

    def press() -> None:
        dialog = newest_dialog(window)
        buttons = [b for b in (dialog or window).findChildren(QAbstractButton)
                   if b.text().replace("&", "") == click and b.isVisible()]
        if not buttons:
            failure.append(f"There is no button {click!r} to press after {name!r}.")
            result.append(False)
            if dialog is not None:
                dialog.close()
            return
        buttons[0].click()
        QTimer.singleShot(wait_ms, grab)

    trigger_action(window, name)
    if click:
        QTimer.singleShot(600, press)
    else:
        QTimer.singleShot(wait_ms, grab)
    if not wait_until(lambda: bool(result), wait_ms + 60_000):
        raise ScreenshotError(f"The action {name!r} did not leave time for a picture.")
    if failure:
        raise ScreenshotError(failure[0])
    settle(100)
    return result[0]
