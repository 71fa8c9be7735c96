"""Render resources/icons/gradscape.svg to the PNG sizes desktops and bundles want.

    python packaging/render_icons.py          # writes resources/icons/hicolor/NxN/apps/*.png
    python packaging/render_icons.py --check  # exit 1 if a PNG is missing or differs

Sizes up to 24 px come from gradscape-16.svg, the same design redrawn on a 16 px grid so it
stays legible. Run this after editing either SVG; the PNGs are committed so installs and
bundles need no SVG renderer.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ICONS = ROOT / "resources" / "icons"
SVG = ICONS / "gradscape.svg"
SMALL_SVG = ICONS / "gradscape-16.svg"
SIZES = (16, 32, 48, 64, 128, 256, 512)


def png_path(size: int) -> Path:
    return ICONS / "hicolor" / f"{size}x{size}" / "apps" / "gradscape.png"


def render(size: int):
    """The icon at SIZE x SIZE pixels, as a QImage."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    if QGuiApplication.instance() is None:
        render.app = QGuiApplication(sys.argv[:1])  # kept alive with the function
    svg = SMALL_SVG if size <= 24 else SVG
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def differs(image, path: Path, tolerance: int = 8) -> bool:
    """True when PATH is missing or any channel of a pixel is off by more than TOLERANCE."""
    from PySide6.QtGui import QImage

    old = QImage(str(path))
    if old.isNull() or old.size() != image.size():
        return True
    old = old.convertToFormat(QImage.Format.Format_ARGB32)
    a, b = bytes(image.constBits()), bytes(old.constBits())
    return max(abs(x - y) for x, y in zip(a, b)) > tolerance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a PNG is missing or out of date")
    args = parser.parse_args(argv)
    stale = 0
    for size in SIZES:
        image, out = render(size), png_path(size)
        if args.check:
            if differs(image, out):
                print(f"out of date: {out.relative_to(ROOT)}")
                stale += 1
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out), "PNG"):
            raise SystemExit(f"cannot write {out}")
        print(out.relative_to(ROOT))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
