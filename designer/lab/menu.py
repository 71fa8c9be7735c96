"""The shared Learn menu of the main window, which every learning-lab tool adds to."""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QDialog, QMenu, QVBoxLayout

from designer.editing.param_widgets import guard_number_box, wheel_only_with_focus


def learn_menu(window) -> QMenu:
    """The Learn menu (created just before Help the first time it is asked for)."""
    return window.menu("learn", "&Learn")


def add_learn_actions(window, entries) -> list[QAction]:
    """Add a group of (name, text, slot, status tip) actions to the Learn menu, after a
    separator; each is also registered as `window.actions[name]`."""
    menu = learn_menu(window)
    if menu.actions():
        menu.addSeparator()
    actions = []
    for name, text, slot, tip in entries:
        action = QAction(text, window)
        action.setStatusTip(tip)
        action.triggered.connect(lambda _c=False, s=slot: s())
        window.actions[name] = action
        menu.addAction(action)
        actions.append(action)
    return actions


class ToolDialog(QDialog):
    """A non-modal window around one learning-lab view; closing it stops the view's work.

    Subclasses set TITLE, NAME and SIZE and build `self.view` with `make_view(parent)`;
    the view must have the method named by STOP (it cancels a background computation).
    """

    TITLE = ""
    NAME = ""
    SIZE = (1000, 720)
    STOP = "cancel"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle(self.TITLE)
        self.setObjectName(self.NAME)
        self.view = self.make_view(self)
        guard_all(self.view)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.view)
        self.resize(*self.SIZE)

    def make_view(self, parent):
        raise NotImplementedError

    def closeEvent(self, event) -> None:
        getattr(self.view, self.STOP)()
        super().closeEvent(event)


def guard_all(widget) -> None:
    """Every spin box and combo box inside `widget`: the wheel edits it only with focus, and
    a spin box says why a typed value was refused (`param_widgets.guard_number_box`)."""
    for box in widget.findChildren(QAbstractSpinBox):
        if not box.property("number_guard"):
            guard_number_box(box, box.toolTip().split(":")[0] or "This value")
    for combo in widget.findChildren(QComboBox):
        if not combo.property("wheel_guard"):
            wheel_only_with_focus(combo)
