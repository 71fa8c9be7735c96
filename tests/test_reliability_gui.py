"""Reliability from the window: runaway divergence, crash recovery, closing mid-run."""

import gc
import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, QSettings

from designer.controller import Controller
from designer.main_window import MainWindow
from designer.training import session as states
from tests.gui import EXAMPLES, make_window, open_example

ROOT = Path(__file__).resolve().parents[1]


def test_runaway_loss_is_shown_as_divergence(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    session = open_example(qtbot, win, "spirals_classifier.json", optimizer="sgd", lr=30.0,
                           batch_size=0)
    messages = []
    session.diverged.connect(lambda text, node: messages.append(text))
    session.play()
    qtbot.waitUntil(lambda: session.state == states.DIVERGED, timeout=10000)
    assert "jumped to" in messages[0] and "1,000 times its best" in messages[0]
    panel = win.training.panel
    assert "diverged" in panel.problem_label.text()
    win.training.shutdown()


def _crashed_session(recovery: Path) -> None:
    """Run a designer session that autosaves an edit, then dies by SIGKILL."""
    code = f"""
import os, signal
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QCoreApplication
app = QCoreApplication([])
from designer.controller import Controller
c = Controller(recovery_dir={str(recovery)!r})
c.add_node("Input", (0.0, 0.0))
c.add_node("Dense", (200.0, 0.0))
assert c.autosave() is not None
os.kill(os.getpid(), signal.SIGKILL)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == -9, result.stderr


def test_crash_recovery_restores_the_autosaved_document(qtbot, tmp_path):
    recovery = tmp_path / "recovery-w"
    _crashed_session(recovery)
    win = make_window(qtbot, tmp_path)
    asked = []
    win.ask_recover = lambda candidates: asked.append(candidates) or "restore"
    win.offer_recovery()
    assert len(asked) == 1
    assert sorted(n.op for n in win.document.spec().nodes) == ["Dense", "Input"]
    assert win.controller.is_modified() and win.controller.path is None
    assert win.controller.recovery_candidates() == []


def test_a_recovery_file_that_fails_is_not_offered_again(qtbot, tmp_path):
    recovery = tmp_path / "recovery-w"
    recovery.mkdir()
    damaged = recovery / "autosave-1-dead.json"
    damaged.write_text("[" * 100_000 + "]" * 100_000)
    win = make_window(qtbot, tmp_path)
    win.ask_recover = lambda candidates: "restore"
    win.offer_recovery()
    (title, text), = win.errors
    assert "nests more than" in text and "will not be offered again" in text
    assert win.controller.recovery_candidates() == []
    assert damaged.with_suffix(".damaged").exists()  # kept for whoever wants to look
    win.errors.clear()
    win.offer_recovery()
    assert win.errors == []


def _os_threads() -> int:
    return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") \
        else threading.active_count()


@pytest.mark.timeout(120)
def test_close_mid_run_20_times_leaves_no_thread_or_process(qtbot, tmp_path, capfd):
    def cycle(i: int) -> None:
        win = make_window(qtbot, tmp_path, name=f"w{i}")
        session = open_example(qtbot, win, "xor_mlp.json", epochs=0)
        session.play()
        assert session.state == states.RUNNING
        qtbot.wait(50)  # steps are under way
        win.close()  # the public way a user ends it, mid-run
        qtbot.wait(10)

    cycle(0)  # warm-up: Qt's own helper threads start once
    gc.collect()
    threads_before = _os_threads()
    python_before = threading.active_count()
    for i in range(1, 21):
        cycle(i)
    gc.collect()
    qtbot.waitUntil(lambda: _os_threads() <= threads_before, timeout=5000)
    assert threading.active_count() <= python_before
    assert multiprocessing.active_children() == []
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err


def test_prediction_view_draws_a_subsample_of_a_large_data_set():
    from designer.lab.prediction_view import MAX_POINTS, evaluate
    from engine.core.compiler import compile_graph
    from engine.core.spec import load_graph
    from engine.data import make_dataset
    from engine.training.trainer import TrainConfig, Trainer
    from tests.gui import EXAMPLES

    spec = load_graph(EXAMPLES / "spirals_classifier.json")
    data = make_dataset("moons", samples=30_000)
    trainer = Trainer(compile_graph(spec), data, TrainConfig(batch_size=64))
    res = evaluate(trainer.program, trainer)
    assert res.kind == "regions" and len(res.train_x) == MAX_POINTS
    assert (res.points_shown, res.points_total) == (MAX_POINTS, 30_000)
    assert res.confusion.sum() == 30_000  # the numbers still count every sample


def test_a_closed_window_releases_its_parentless_plot_menus(qtbot, tmp_path):
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication, QMenu

    app = QApplication.instance()

    def flush():
        for _ in range(3):
            app.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
            app.processEvents()

    def menus() -> int:  # menus with no parent: nothing would ever delete them
        return sum(isinstance(w, QMenu) and w.parent() is None for w in app.topLevelWidgets())

    flush()
    before = menus()
    for i in range(3):
        win = make_window(qtbot, tmp_path, name=f"m{i}")
        # the plots (built right after the first paint) and their menus exist while it is open
        qtbot.waitUntil(lambda: menus() > before, timeout=5000)
        win.close()
        flush()
    assert menus() == before  # closing released them; they would outlive the window


def test_a_closed_window_is_deleted_with_everything_it_opened(qtbot, tmp_path):
    """Closing a window frees it: the MainWindow object is gone (not just hidden) and no
    top-level widget it created (menus, popups, floating frames) is left behind."""
    import weakref

    import shiboken6
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()

    def flush():
        for _ in range(3):
            app.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
            app.processEvents()
        gc.collect()

    flush()
    before = {id(w) for w in app.topLevelWidgets()}
    closed = []
    for i in range(4):
        settings = QSettings(str(tmp_path / f"c{i}.ini"), QSettings.Format.IniFormat)
        win = MainWindow(Controller(recovery_dir=tmp_path / f"rc{i}",
                                    blocks_dir=tmp_path / f"bc{i}"), settings)
        win.ask_save_changes = lambda: "discard"
        win.show()
        qtbot.waitExposed(win)
        win.open_path(EXAMPLES / "spirals_classifier.json", ask=False)
        win.view.open_quick_add(QPointF(0, 0), None)  # a popup, created and shown
        assert len(app.topLevelWidgets()) > len(before)
        closed.append(weakref.ref(win))
        win.close()
        del win
        flush()
    for ref in closed:  # the Qt object is deleted (its Python wrapper may linger)
        assert ref() is None or not shiboken6.isValid(ref()), "a closed window still exists"
    left = [w for w in app.topLevelWidgets() if id(w) not in before]
    assert left == [], [type(w).__name__ for w in left]
