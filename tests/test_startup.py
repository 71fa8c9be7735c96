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
