"""Entry point of the ``gradscape`` command and of ``python -m designer [FILE]``."""

from __future__ import annotations

import argparse
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from designer import theme
from designer.main_window import MainWindow
from designer.resources import resource_path

FIRST_EXAMPLE = ("examples", "xor_mlp.json")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gradscape", description="Gradscape network designer")
    parser.add_argument("file", nargs="?", help="a graph file (.json) to open")
    parser.add_argument("--theme", choices=("light", "dark"), help="force a colour scheme")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the editor; opens FILE, or the XOR example so a first-time user sees a network."""
    argv = list(sys.argv if argv is None else argv)
    args = parse_args(argv[1:])
    app = QApplication.instance() or QApplication(argv[:1])
    app.setApplicationName("Gradscape")
    app.setOrganizationName("Gradscape")
    app.setOrganizationDomain("gradscape.org")
    app.setApplicationDisplayName("Gradscape")
    if args.theme:
        theme.set_scheme(args.theme)
        theme.apply_app_palette(app)

    window = MainWindow()
    if args.file:
        window.open_path(args.file, ask=False)
    else:
        first = resource_path(*FIRST_EXAMPLE)
        if first.exists():
            window.open_path(first, ask=False)
    window.show()
    window.view.fit_all()
    window.controller.start_autosave()
    QTimer.singleShot(0, window.offer_recovery)
    return app.exec()
