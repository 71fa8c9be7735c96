"""Start-up loads only what it shows: `--help` without Qt, the lab's tools on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUI = ("PySide6", "pyqtgraph", "shiboken6")
LAZY = ("designer.lab.landscape_view", "designer.lab.race_view", "designer.lab.lr_sweep_view",
        "designer.lab.gradcheck_dialog", "designer.lab.optimizer_state_panel")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_designer_help_and_bad_options_load_no_gui():
    for argv, code in ((["--help"], 0), (["--size", "x"], 2)):
        result = run_python(
            "import runpy, sys\n"
            f"sys.argv = ['gradscape', *{argv!r}]\n"
            "try:\n    runpy.run_module('designer', run_name='__main__')\n"
            "except SystemExit as exc:\n    status = exc.code\n"
            f"gui = [m for m in sys.modules if m.split('.')[0] in {GUI!r}]\n"
            "print('STATUS', status, 'GUI', gui)\n")
        assert f"STATUS {code} GUI []" in result.stdout, result.stdout + result.stderr
        assert "usage: gradscape" in result.stdout + result.stderr


def test_main_window_leaves_lab_tools_unloaded():
    result = run_python("import sys, designer.main_window\n"
                        f"print([m for m in {LAZY!r} if m in sys.modules])")
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_optimizer_state_panel_is_built_when_its_dock_shows(qtbot, tmp_path):
    from tests.gui import make_window

    window = make_window(qtbot, tmp_path)
    lab = window.lab_a
    assert lab._opt_panel is None  # hidden behind the Inspector tab
    lab.show_optimizer_state()
    qtbot.waitUntil(lambda: lab._opt_panel is not None, timeout=3000)
    assert lab.opt_dock.widget() is lab.opt_panel and lab.opt_panel.active
    window.inspector_dock.raise_()
    qtbot.waitUntil(lambda: not lab.opt_panel.active, timeout=3000)


def test_first_window_opens_without_pyqtgraph_and_its_plots():
    result = run_python(
        "import sys\n"
        "from designer.app import SHOWN_LINE, main\n"
        "sys.argv = ['gradscape', '--quit-after', '0']\n"
        "main()\n"
        "print('LOADED', [m for m in ('pyqtgraph', 'designer.training.loss_plot', "
        "'designer.lab.prediction_view', 'designer.lab.weights_view', "
        "'designer.overlays.edge_detail') "
        "if m in sys.modules])\n")
    assert "gradscape: window shown" in result.stdout, result.stdout + result.stderr
    assert "LOADED []" in result.stdout, result.stdout + result.stderr


def test_deferred_plots_are_built_right_after_the_first_paint(qtbot, tmp_path):
    from tests.gui import make_window

    window = make_window(qtbot, tmp_path)
    holders = (window.training.plot_holder, window.lab_training.predictions_holder,
               window.lab_training.weights_holder)
    assert not any(h.built for h in holders)  # the window is not painted yet
    qtbot.waitUntil(lambda: all(h.built for h in holders), timeout=5000)
    assert window.training.plot.parent() is holders[0]
    assert window.lab_training.predictions_dock.widget() is holders[1]
    assert window.lab_training.predictions.parent() is holders[1]
    window.training.shutdown()


def test_play_builds_the_waiting_plots_before_training_starts(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from designer.controller import Controller
    from designer.main_window import MainWindow
    from tests.gui import open_example

    settings = QSettings(str(tmp_path / "w.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Controller(recovery_dir=tmp_path / "recovery"), settings)
    qtbot.addWidget(window)  # never shown, never painted: the builds still wait
    session = open_example(qtbot, window, "xor_mlp.json")
    holders = (window.training.plot_holder, window.lab_training.predictions_holder)
    assert not any(h.built for h in holders)
    built_when_sent = []
    send = session._send
    session._send = lambda msg: (built_when_sent.append(all(h.built for h in holders))
                                 if msg[0] == "play" else None, send(msg))[1]
    session.play()
    assert built_when_sent == [True]
    qtbot.waitUntil(lambda: session.last_report is not None, timeout=5000)
    assert len(window.training.plot.history.losses) > 0
    window.training.shutdown()


def test_closing_at_once_leaves_no_training_process(qtbot, tmp_path):
    import multiprocessing

    from tests.gui import make_window

    window = make_window(qtbot, tmp_path)
    link = window.training.session.link  # its process may still be starting
    window.close()
    window.training.shutdown()
    assert not link.alive() and not link.reader.isRunning()
    assert link.process not in multiprocessing.active_children()
