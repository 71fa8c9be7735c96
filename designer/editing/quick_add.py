"""The quick-add popup: type to filter the ops, Enter adds the chosen one at the cursor."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout

from designer import theme
from engine.ops.base import OpDef


def match_score(op: OpDef, text: str) -> int | None:
    """How well an op matches the typed text (lower is better), or None for no match."""
    text = text.strip().lower()
    if not text:
        return 0
    name = op.id.lower()
    if name.startswith(text):
        return 0
    if text in name:
        return 1
    if text in op.category.lower():
        return 2
    if text in op.description.lower():
        return 3
    return None


class QuickAddPopup(QFrame):
    """A small frameless popup with a search field and a list of ops.

    Signals:
        chosen(str): the op id the user picked (Enter or a click).
    """

    chosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent, Qt.WindowType.Popup)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("QuickAdd")
        self._ops: list[OpDef] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        self.heading = QLabel("Add node")
        self.heading.setFont(theme.ui_font(8.5, bold=True))
        layout.addWidget(self.heading)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Type to search ops…")
        self.search.setClearButtonEnabled(True)
        layout.addWidget(self.search)
        self.list = QListWidget()
        self.list.setUniformItemSizes(True)
        layout.addWidget(self.list)
        self.resize(280, 340)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self.accept_current)
        self.list.itemActivated.connect(lambda _item: self.accept_current())
        self.list.itemClicked.connect(lambda _item: self.accept_current())
        self.search.installEventFilter(self)

    def set_ops(self, ops: list[OpDef], heading: str = "Add node") -> None:
        """The ops to offer (already filtered to what fits, e.g. ops that take a wire)."""
        self._ops = list(ops)
        self.heading.setText(heading)
        self.search.clear()
        self._filter("")

    def _filter(self, text: str) -> None:
        self.list.clear()
        scored = [(match_score(op, text), i, op) for i, op in enumerate(self._ops)]
        for _score, _i, op in sorted(s for s in scored if s[0] is not None):
            item = QListWidgetItem(theme.category_icon(op.category), op.id)
            item.setData(Qt.ItemDataRole.UserRole, op.id)
            item.setToolTip(f"<b>{op.id}</b> · {op.category}<br>{op.description}")
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def visible_ops(self) -> list[str]:
        """Op ids currently listed (after filtering)."""
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def accept_current(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        self.hide()
        self.chosen.emit(item.data(Qt.ItemDataRole.UserRole))

    def popup(self, global_pos: QPoint) -> None:
        """Show at a screen position, focused on the search field."""
        self.move(global_pos)
        self.show()
        self.search.setFocus()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.search and event.type() == QEvent.Type.KeyPress:
            if event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_PageDown,
                               Qt.Key.Key_PageUp):
                row = self.list.currentRow()
                step = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1, Qt.Key.Key_PageDown: 8,
                        Qt.Key.Key_PageUp: -8}[event.key()]
                if self.list.count():
                    self.list.setCurrentRow(max(0, min(self.list.count() - 1, row + step)))
                return True
            if event.key() == Qt.Key.Key_Escape:
                self.hide()
                return True
        return super().eventFilter(obj, event)
