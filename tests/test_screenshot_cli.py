"""`python -m designer FILE --train N --screenshot PNG` and the system-library advice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
XOR = ROOT / "resources" / "examples" / "xor_mlp.json"


def run_designer(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "designer", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=170)


def test_train_then_screenshot(tmp_path):
    from PySide6.QtGui import QImage

    png = tmp_path / "xor.png"
    result = run_designer(tmp_path, str(XOR), "--train", "50", "--size", "1200x800",
                          "--select", "h1->a1", "--screenshot", str(png))
    assert result.returncode == 0, result.stderr
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1200, 800)
    # Not blank: a real window has many distinct colours (canvas, nodes, plot, gradients).
    small = image.scaled(300, 200)
    colours = {small.pixel(x, y) for x in range(0, 300, 3) for y in range(0, 200, 3)}
    assert len(colours) > 50
    # No user settings were written (screenshots use a throw-away settings folder).
    assert not list((tmp_path / "config").rglob("*.conf"))


@pytest.mark.parametrize("args, words", [
    (["missing.json"], "missing.json"),
    ([str(XOR), "--select", "nobody"], "nobody"),
])
def test_screenshot_errors_exit_nonzero_with_a_sentence(tmp_path, args, words):
    png = tmp_path / "shot.png"
    result = run_designer(tmp_path, *args, "--screenshot", str(png))
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if words in line]
    assert lines, result.stderr
    assert lines[0].rstrip().endswith("."), lines[0]


def fake_finder(missing: set[str]):
    return lambda name: None if name in missing else f"lib{name}.so"


def test_display_problem_names_missing_xcb_packages():
    from designer.app import APT_LINE, display_problem

    env = {"DISPLAY": ":0"}
    text = display_problem(env, "linux", fake_finder({"xcb-cursor", "xkbcommon-x11"}))
    assert "libxcb-cursor0" in text and "libxkbcommon-x11-0" in text
    assert APT_LINE in text
    assert display_problem(env, "linux", fake_finder(set())) is None


@pytest.mark.parametrize("env, platform", [
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, "linux"),  # explicit platform: no check
    ({"DISPLAY": ":0"}, "darwin"),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux"),  # Wayland plugin instead
])
def test_display_problem_only_checks_plain_x11_linux(env, platform):
    from designer.app import display_problem

    assert display_problem(env, platform, fake_finder({"xcb-cursor"})) is None


def test_display_problem_without_display_or_finder():
    from designer.app import display_problem

    assert "DISPLAY" in display_problem({}, "linux", fake_finder(set()))
    # A finder that finds nothing at all (not even libc) cannot tell: no false alarm.
    assert display_problem({"DISPLAY": ":0"}, "linux", lambda _name: None) is None


def test_readme_apt_line_matches_the_advice():
    from designer.app import APT_LINE

    assert APT_LINE in (ROOT / "README.md").read_text(encoding="utf-8")
