"""The shared Learn menu of the main window, which every learning-lab tool adds to."""

from __future__ import annotations

from PySide6.QtWidgets import QMenu

LEARN_MENU = "learn_menu"


def learn_menu(window) -> QMenu:
    """The Learn menu (created just before Help the first time it is asked for)."""
    bar = window.menuBar()
    menu = bar.findChild(QMenu, LEARN_MENU)
    if menu is not None:
        return menu
    menu = QMenu("&Learn", bar)
    menu.setObjectName(LEARN_MENU)
    help_action = next((a for a in bar.actions() if a.text() == "&Help"), None)
    if help_action is not None:
        bar.insertMenu(help_action, menu)
    else:
        bar.addMenu(menu)
    return menu
