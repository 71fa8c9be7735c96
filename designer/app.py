"""Entry point of the ``gradscape`` command and of ``python -m designer [FILE]``."""

from __future__ import annotations

import argparse
import sys

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from designer import theme
from designer.main_window import MainWindow
from designer.resources import resource_path
from designer.screenshot import take_screenshot

FIRST_EXAMPLE = ("examples", "xor_mlp.json")
DESKTOP_ID = "org.gradscape.Gradscape"  # packaging/linux/org.gradscape.Gradscape.desktop


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options (without the program name)."""
    parser = argparse.ArgumentParser(prog="gradscape", description="Gradscape network designer")
    parser.add_argument("file", nargs="?", help="a graph file (.json) to open")
    parser.add_argument("--theme", choices=("light", "dark"), help="force a colour scheme")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="save a picture of the window to PNG and quit")
    # For smoke tests: close the window after MS milliseconds.
    parser.add_argument("--quit-after", type=int, metavar="MS", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def application_icon() -> QIcon:
    """The Gradscape icon in every rendered size (resources/icons, see packaging/)."""
    icon = QIcon()
    for png in sorted(resource_path("icons", "hicolor").glob("*/apps/gradscape.png")):
        icon.addFile(str(png))
    return icon


def setup_application(argv: list[str]) -> QApplication:
    """The QApplication, with the names QSettings and the recovery folder use."""
    app = QApplication.instance() or QApplication(argv[:1])
    app.setApplicationName("Gradscape")
    app.setOrganizationName("Gradscape")
    app.setOrganizationDomain("gradscape.org")
    app.setApplicationDisplayName("Gradscape")
    app.setDesktopFileName(DESKTOP_ID)
    app.setWindowIcon(application_icon())
    return app


def open_initial(window: MainWindow, file: str | None) -> None:
    """Open FILE, or with none the XOR example so a first-time user sees a network.

    A FILE that cannot be read is reported by the window and leaves an empty graph.
    """
    if file:
        window.open_path(file, ask=False)
    else:
        first = resource_path(*FIRST_EXAMPLE)
        if first.exists():
            window.open_path(first, ask=False)
    window.view.show_graph()


def main(argv: list[str] | None = None) -> int:
    """Run the editor until its window closes; returns the exit code."""
    argv = list(sys.argv if argv is None else argv)
    args = parse_args(argv[1:])
    app = setup_application(argv)
    if args.theme:
        theme.set_scheme(args.theme)
        theme.apply_app_palette(app)
    window = MainWindow()
    errors: list[str] = []
    if args.screenshot or args.quit_after is not None:  # unattended: no modal error boxes
        def report(title: str, text: str) -> None:
            errors.append(text)
            print(f"{title}: {text}", file=sys.stderr)

        window.show_error = report
    window.show()
    open_initial(window, args.file)
    if args.screenshot:
        ok = take_screenshot(window, args.screenshot)
        window.close()
        return 0 if ok and not errors else 1
    window.controller.start_autosave()
    if args.quit_after is not None:
        QTimer.singleShot(args.quit_after, lambda: (window.close(), app.quit()))
    else:
        QTimer.singleShot(0, window.offer_recovery)
    return app.exec()
