"""Render resources/icons/gradscape.svg to the PNG sizes desktops and bundles want.

    python packaging/render_icons.py          # writes resources/icons/hicolor/NxN/apps/*.png
    python packaging/render_icons.py --check  # exit 1 if a PNG is missing or older than the SVG

Run it after editing the SVG; the PNGs are committed so installs need no SVG renderer.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ICONS = ROOT / "resources" / "icons"
SVG = ICONS / "gradscape.svg"
SMALL_SVG = ICONS / "gradscape-16.svg"  # the same design on a 16 px grid, for sizes up to 24
SIZES = (16, 32, 48, 64, 128, 256, 512)


def png_path(size: int) -> Path:
    return ICONS / "hicolor" / f"{size}x{size}" / "apps" / "gradscape.png"


def render(sizes: tuple[int, ...] = SIZES) -> list[Path]:
    """Write one PNG per size; returns the paths."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderers = {}
    for svg in (SVG, SMALL_SVG):
        renderers[svg] = QSvgRenderer(str(svg))
        if not renderers[svg].isValid():
            raise SystemExit(f"cannot read {svg}")
    written = []
    for size in sizes:
        renderer = renderers[SMALL_SVG if size <= 24 else SVG]
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(painter)
        painter.end()
        out = png_path(size)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out), "PNG"):
            raise SystemExit(f"cannot write {out}")
        written.append(out)
    return written


def stale() -> list[Path]:
    """PNGs that are missing or older than the SVG."""
    svg_time = max(SVG.stat().st_mtime, SMALL_SVG.stat().st_mtime)
    return [p for p in map(png_path, SIZES) if not p.exists() or p.stat().st_mtime < svg_time]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report missing/stale PNGs")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale()
        for path in bad:
            print(f"stale: {path.relative_to(ROOT)}")
        return 1 if bad else 0
    for path in render():
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
