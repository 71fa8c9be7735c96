"""Entry point of the ``gradscape`` command and of ``python -m designer [FILE]``."""

from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from designer.resources import resource_path

# Qt and the window are imported inside the functions that need them, so `--help` and bad
# options are answered without loading the GUI (see bench/startup.py).
if TYPE_CHECKING:
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from designer.main_window import MainWindow

FIRST_EXAMPLE = ("examples", "xor_mlp.json")
DESKTOP_ID = "org.gradscape.Gradscape"  # packaging/linux/org.gradscape.Gradscape.desktop
SHOWN_LINE = "gradscape: window shown"  # printed by --quit-after

# Libraries Qt's xcb platform plugin (a window on X11) loads from the system, with the
# Debian/Ubuntu package of each. The PySide6 wheels bundle Qt itself, not these.
XCB_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1", "xcb-image": "libxcb-image0",
    "xcb-render-util": "libxcb-render-util0", "xcb-randr": "libxcb-randr0",
    "xcb-shape": "libxcb-shape0", "xcb-sync": "libxcb-sync1", "xcb-xfixes": "libxcb-xfixes0",
    "xcb-xkb": "libxcb-xkb1", "xkbcommon-x11": "libxkbcommon-x11-0", "X11-xcb": "libx11-xcb1",
}
# The README's line; the packages left out come with the ones listed.
APT_LINE = ("sudo apt-get install libegl1 libgl1 libfontconfig1 libglib2.0-0 libdbus-1-3 "
            "libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-randr0 "
            "libxcb-shape0 libxcb-sync1 libxcb-xfixes0 libx11-xcb1")


def missing_xcb_packages(find_library: Callable[[str], str | None] = ctypes.util.find_library
                         ) -> list[str]:
    """Packages of the xcb-plugin libraries FIND_LIBRARY cannot find (empty if it finds
    nothing at all, not even the C library: then it cannot tell)."""
    if find_library("c") is None:
        return []
    return [pkg for lib, pkg in XCB_LIBRARIES.items() if find_library(lib) is None]


def display_problem(environ: Mapping[str, str] | None = None, platform: str | None = None,
                    find_library: Callable[[str], str | None] = ctypes.util.find_library
                    ) -> str | None:
    """Why Qt will fail to open a window on this Linux machine, as advice; None if no reason.

    Only checked on Linux when QT_QPA_PLATFORM does not choose a platform: no display at all,
    or an X11 display with the libraries of Qt's xcb plugin missing (Qt itself would only
    abort with "could not load the Qt platform plugin xcb").
    """
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return None
    if not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"):
        return ("Gradscape needs a graphical display, but neither DISPLAY nor WAYLAND_DISPLAY "
                "is set. Without a display, pictures still work: "
                "QT_QPA_PLATFORM=offscreen gradscape --screenshot out.png")
    if environ.get("WAYLAND_DISPLAY"):
        return None  # Qt uses its Wayland plugin; the xcb libraries are not needed
    missing = missing_xcb_packages(find_library)
    if not missing:
        return None
    return ("Qt cannot open a window: system libraries it needs are not installed "
            f"({', '.join(missing)}). On Debian or Ubuntu install them with\n"
            f"    {APT_LINE}\n"
            "(if they are installed where this check cannot see them, start Gradscape with "
            "QT_QPA_PLATFORM=xcb to skip it).")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options (without the program name)."""
    return build_parser().parse_args(argv)


def _setting(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"'{text}' is not KEY=VALUE (e.g. lr=0.5)")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    """The parser of `gradscape` / `python -m designer` (docs/cli.md is generated from it)."""
    parser = argparse.ArgumentParser(
        prog="gradscape", description="Gradscape: draw a neural network, train it and watch "
        "the gradients flow. The options from --train on prepare what the window shows, for "
        "pictures (--screenshot) and demonstrations.")
    parser.add_argument("file", nargs="?", help="a graph file (.json) to open")
    parser.add_argument("--theme", choices=("light", "dark"), help="force a colour scheme")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="save a picture of the window to PNG and quit (with default "
                             "window settings, not the saved layout)")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", type=_setting,
                        help="change a training setting before anything else, e.g. lr=100 or "
                        "dataset=circles (VALUE is read as JSON when it can be; repeatable)")
    parser.add_argument("--train", type=int, metavar="N",
                        help="train N steps (as pressing Step N times) before the picture")
    parser.add_argument("--select", metavar="ID",
                        help="select a node (its id) or a wire (SRC->DST or SRC->DST.PORT)")
    parser.add_argument("--size", type=_size, metavar="WxH",
                        help="window size in pixels, e.g. 1500x950")
    parser.add_argument("--zoom", type=_zoom, metavar="PERCENT",
                        help="canvas zoom in percent, or 'fit' to fit the whole graph")
    parser.add_argument("--hide", metavar="PANELS", type=lambda t: [p.strip().lower() for p in
                                                                  t.split(",") if p.strip()],
                        help="comma-separated panels (docks or tool bars, by title) to hide, "
                             "e.g. palette,inspector,history")
    parser.add_argument("--raise", dest="raise_", metavar="PANELS",
                        type=lambda t: [p.strip().lower() for p in t.split(",") if p.strip()],
                        help="comma-separated panels to bring to the front of their tabs, "
                             "e.g. data")
    parser.add_argument("--open", metavar="NAMES", type=lambda t: t.split(","),
                        help="with --screenshot: trigger these menu actions (comma-separated, "
                             "e.g. learn_optimizer) before training, to show panels that record "
                             "while training runs")
    parser.add_argument("--presentation", action="store_true",
                        help="turn on View → Presentation Mode last (large type, thick wires, "
                             "only the lesson's panel)")
    parser.add_argument("--action", metavar="NAME",
                        help="with --screenshot: trigger a menu action (e.g. shortcuts) and "
                             "save the dialog it opens instead of the window")
    parser.add_argument("--click", metavar="TEXT",
                        help="with --action: press the dialog's button labelled TEXT first")
    parser.add_argument("--wait", type=int, default=800, metavar="MS",
                        help="with --action: wait MS milliseconds before the picture "
                             "(default 800)")
    # For smoke tests: close the window after MS milliseconds.
    parser.add_argument("--quit-after", type=int, metavar="MS", help=argparse.SUPPRESS)
    return parser


def _size(text: str) -> QSize:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 1500x950") from None
    if w < 200 or h < 150:
        raise argparse.ArgumentTypeError(f"{text!r} is too small for the window")
    from PySide6.QtCore import QSize

    return QSize(w, h)


def _zoom(text: str) -> float:
    """--zoom: a percentage (0 < p ≤ 400), or 0.0 for 'fit'."""
    if text.strip().lower() == "fit":
        return 0.0
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage or 'fit'") from None
    if not 0 < value <= 400:
        raise argparse.ArgumentTypeError("the zoom must be between 0 and 400 percent")
    return value / 100


def use_fresh_settings() -> tempfile.TemporaryDirectory:
    """Point QSettings at an empty temporary folder (screenshots ignore the saved layout)."""
    from PySide6.QtCore import QSettings

    folder = tempfile.TemporaryDirectory(prefix="gradscape-settings-")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, folder.name)
    return folder


def prepare_view(window: MainWindow, args: argparse.Namespace) -> None:
    """--hide, --raise, --zoom, --train, --select and --presentation (raise ScreenshotError with a
    sentence when they cannot)."""
    from PySide6.QtWidgets import QDockWidget, QToolBar

    from designer.headless.screenshot import ScreenshotError, select_item, settle, train_steps

    if args.set:
        block = dict(window.document.training())
        for key, value in args.set:
            if key == "dataset" and value != block.get("dataset"):
                block["dataset_params"] = {}  # the old data set's parameters do not apply
            block[key] = value
        window.controller.set_training(block)
        settle(100)
    panels = {}
    for panel in window.findChildren(QDockWidget) + window.findChildren(QToolBar):
        for key in (panel.windowTitle().replace("&", "").lower(),
                    panel.objectName().removesuffix("_dock").lower()):
            panels.setdefault(key, panel)  # docks first: "training" is the dock
    for name in args.hide or []:
        if name in panels:
            panels[name].hide()
        else:  # a panel of a feature this build lacks: the picture is still useful
            print(f"note: there is no panel called {name!r} to hide "
                  f"(known: {', '.join(sorted(panels))}).", file=sys.stderr)
    for name in args.raise_ or []:
        if name in panels:
            panels[name].show()
            panels[name].raise_()
        else:
            print(f"note: there is no panel called {name!r} to raise "
                  f"(known: {', '.join(sorted(panels))}).", file=sys.stderr)
    if args.hide or args.raise_:
        settle(100)
        if args.zoom is None:  # the canvas grew: frame the graph for its new size
            window.view.show_graph()
    if args.zoom is not None:
        if args.zoom:
            window.view.set_zoom(args.zoom)
            window.view.centerOn(window.scene.itemsBoundingRect().center())
        else:
            window.view.fit_all()
    if args.open and args.select:  # panels that record follow the selection from step 0
        select_item(window, args.select)
    for name in args.open or []:
        action = window.actions.get(name)
        if action is None:
            raise ScreenshotError(f"There is no action called {name!r} "
                                  f"(known: {', '.join(sorted(window.actions))}).")
        action.trigger()
        settle(200)
    if args.open and args.zoom == 0:  # "fit": frame what the actions showed (an open block)
        window.view.fit_all()
    if args.train:
        train_steps(window, args.train)
    if args.select:
        select_item(window, args.select)
        settle(400)  # the wire detail panel asks the training thread for its histograms
    if args.presentation:
        window.presentation.set_on(True)
        settle(300)


def application_icon() -> QIcon:
    """The Gradscape icon in every rendered size (resources/icons, see packaging/)."""
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for png in sorted(resource_path("icons", "hicolor").glob("*/apps/gradscape.png")):
        icon.addFile(str(png))
    return icon


def setup_application(argv: list[str]) -> QApplication:
    """The QApplication, with the names QSettings and the recovery folder use."""
    from PySide6.QtWidgets import QApplication

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
    problem = display_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    from PySide6.QtCore import QTimer

    from designer import theme
    from designer.headless.screenshot import (
        ScreenshotError,
        grab_after_action,
        save_grab,
        settle,
        take_screenshot,
    )
    from designer.main_window import MainWindow

    settings_dir = use_fresh_settings() if args.screenshot else None  # noqa: F841 (kept alive)
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
        window.ask_save_changes = lambda: "discard"  # --set edits must not prompt on quit
    if args.size:
        window.resize(args.size)
    window.show()
    open_initial(window, args.file)
    if args.screenshot:
        from designer.training.on_demand import build_pending_now

        ok = False
        window.ask_save_changes = lambda: "discard"  # e.g. an opened block is an edit
        build_pending_now(window)  # the plots a user sees a moment after the window opens
        try:
            if not errors:
                settle()
                prepare_view(window, args)
            if args.action and not errors:
                ok = grab_after_action(window, args.action, args.screenshot, args.wait,
                                       args.click)
            else:
                ok = take_screenshot(window, args.screenshot)
        except ScreenshotError as exc:
            print(f"error: {exc}", file=sys.stderr)
            errors.append(str(exc))
            save_grab(window, args.screenshot)
        if not ok and not errors:
            print(f"error: cannot write {args.screenshot}", file=sys.stderr)
        window.close()
        return 0 if ok and not errors else 1
    try:
        prepare_view(window, args)
    except ScreenshotError as exc:
        window.show_error("Cannot prepare the view", str(exc))
    window.controller.start_autosave()
    if args.quit_after is not None:
        # The line tells bench/startup.py when the first window was up (painted).
        QTimer.singleShot(args.quit_after, lambda: (print(SHOWN_LINE, flush=True),
                                                    window.close(), app.quit()))
    else:
        QTimer.singleShot(0, window.offer_recovery)
    return app.exec()
