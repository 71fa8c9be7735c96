"""Freeing a closed window: Qt deletes a widget's children, but pyqtgraph creates its
context menus without a parent, and a closed QMainWindow is only hidden, so both would
outlive the window (about 11 MB a window)."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QWidget


def release_plot_menus(root: QWidget) -> int:
    """Schedule deletion of the parentless menus of every plot inside `root`; returns how
    many. Call it only when the plots will not be used again."""
    pg = sys.modules.get("pyqtgraph")
    if pg is None:  # never loaded (it loads with the first plot): no plot, no menu
        return 0
    released = 0
    for view in root.findChildren(pg.GraphicsView):
        scene = view.scene()
        if scene is None:
            continue
        for item in scene.items():
            menus = []
            if isinstance(item, pg.ViewBox):
                menus.append(getattr(item, "menu", None))
            if isinstance(item, pg.PlotItem):
                menus.append(getattr(item, "ctrlMenu", None))
            for menu in menus:
                if menu is not None and menu.parent() is None:
                    menu.deleteLater()
                    released += 1
    return released


def release_window(window: QWidget) -> None:
    """Schedule deletion of a closed window: a closed QMainWindow is only hidden. Its
    children go with it, popups and floating docks included (they are its children)."""
    window.deleteLater()
