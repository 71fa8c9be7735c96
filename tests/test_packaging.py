"""Packaging: the wheel carries the code, the resources, the digits data and the command."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


def source_packages() -> set[str]:
    """Every package directory (with __init__.py) under engine/ and designer/."""
    found = set()
    for top in ("engine", "designer"):
        for init in (ROOT / top).rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                found.add(".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_pyproject_lists_every_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    missing = source_packages() - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
    assert "gradscape_resources" in listed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """A wheel built from a copy of the sources (so no build/ or egg-info lands in the repo)."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed, so the wheel cannot be built offline")
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("engine", "designer", "resources"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{result.stdout}\n{result.stderr}")
    (path,) = out.glob("gradscape-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def test_wheel_has_code_and_data(wheel):
    names = set(wheel.namelist())
    for top in ("engine", "designer"):
        for py in (ROOT / top).rglob("*.py"):
            assert py.relative_to(ROOT).as_posix() in names
    assert "engine/data/files/digits_8x8.npz" in names
    assert "gradscape_resources/__init__.py" in names
    assert "gradscape_resources/examples/xor_mlp.json" in names
    for path in (ROOT / "resources").rglob("*"):  # every resource file, in any folder
        if path.is_file() and "__pycache__" not in path.parts:
            relative = path.relative_to(ROOT / "resources").as_posix()
            assert f"gradscape_resources/{relative}" in names
    assert "gradscape_resources/icons/gradscape.svg" in names
    for size in ICON_SIZES:
        assert f"gradscape_resources/icons/hicolor/{size}x{size}/apps/gradscape.png" in names


def test_wheel_has_entry_point_and_licence(wheel):
    names = wheel.namelist()
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[console_scripts]" in text
    assert "gradscape = designer.app:main" in text
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    import engine

    assert f"Version: {engine.__version__}" in wheel.read(metadata).decode()
    assert any(n.endswith("LICENSE") for n in names)


def test_resource_path_finds_examples_and_icons():
    from designer.resources import resource_path

    assert resource_path("examples", "xor_mlp.json").is_file()
    assert resource_path("icons", "gradscape.svg").is_file()


def test_icon_pngs_have_their_sizes(qapp):
    from PySide6.QtGui import QImage

    for size in ICON_SIZES:
        image = QImage(str(ROOT / "resources/icons/hicolor" / f"{size}x{size}/apps/gradscape.png"))
        assert (image.width(), image.height()) == (size, size)


def test_application_icon_and_about(qapp):
    import engine
    from designer.app import application_icon
    from designer.main_window import about_text

    assert 16 in [s.width() for s in application_icon().availableSizes()]
    text = about_text()
    assert engine.__version__ in text and "MIT" in text


def test_take_screenshot(qtbot, tmp_path):
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QLabel

    from designer.headless.screenshot import take_screenshot

    label = QLabel("hello")
    qtbot.addWidget(label)
    out = tmp_path / "shots" / "label.png"
    assert take_screenshot(label, out)
    assert not QImage(str(out)).isNull()


@pytest.mark.parametrize("file, code", [(None, 0), ("bad.json", 1)])
def test_screenshot_option_exits(tmp_path, file, code):
    """`python -m designer --screenshot` saves the window and exits; 1 if the file was bad."""
    (tmp_path / "bad.json").write_text("{bad", encoding="utf-8")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "PYTHONPATH": str(ROOT)}
    png = tmp_path / "shot.png"
    args = [sys.executable, "-m", "designer", "--screenshot", str(png)]
    result = subprocess.run(args + ([file] if file else []), cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == code, result.stderr
    assert png.stat().st_size > 1000


def _imported_top_modules() -> set[str]:
    """Top-level modules imported anywhere in engine/ and designer/ (lazy imports included)."""
    import ast

    found = set()
    # Copied into an exported PyTorch folder as train.py and run there, never by the app.
    templates = {ROOT / "engine" / "export" / "torch_train_script.py"}
    for top in ("engine", "designer"):
        for path in (ROOT / top).rglob("*.py"):
            if path in templates:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"engine", "designer", "gradscape_resources"}


def test_everything_the_app_imports_is_installed_by_pip_install_dot():
    """What the menus offer (ONNX export included) must work after the README's install."""
    import re

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime = {re.split(r"[<>=;!~ \[]", dep, maxsplit=1)[0].lower()
               for dep in config["project"]["dependencies"]}
    distribution = {"PySide6": "pyside6-essentials", "PIL": "pillow"}
    missing = {m for m in _imported_top_modules()
               if distribution.get(m, m).lower() not in runtime}
    assert not missing, f"imported but not in [project] dependencies: {sorted(missing)}"
    assert "onnx" in runtime
