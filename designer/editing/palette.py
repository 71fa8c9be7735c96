"""The op palette: every registered op grouped by category, searchable and draggable.

A drag carries the op id as ``application/x-gradscape-op`` mime data; the canvas creates the
node where it is dropped. Double-click (or Enter) asks for the op at the view centre.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from designer import theme
from engine.core import registry
from engine.ops.base import OpDef

OP_MIME = "application/x-gradscape-op"
OP_ROLE = Qt.ItemDataRole.UserRole


def op_tooltip(op: OpDef) -> str:
    """Rich tooltip of an op: description, inputs, formula."""
    tip = f"<b>{op.id}</b> · <i>{op.category}</i><br>{op.description}"
    if op.inputs:
        tip += "<br><small>Inputs: " + ", ".join(p.name for p in op.inputs) + "</small>"
    if op.formula:
        formula = op.formula.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        tip += f"<pre style='margin-top:4px'>{formula}</pre>"
    return tip


class _OpTree(QTreeWidget):
    """Tree whose op rows start a drag with the op id as mime data."""

    def startDrag(self, supported_actions) -> None:
        item = self.currentItem()
        op_id = item.data(0, OP_ROLE) if item else None
        if not op_id:
            return
        mime = QMimeData()
        mime.setData(OP_MIME, op_id.encode("utf-8"))
        mime.setText(op_id)
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.setPixmap(item.icon(0).pixmap(16, 16))
        drag.exec(Qt.DropAction.CopyAction)


class PaletteWidget(QWidget):
    """Search field over a tree of categories (collapsible) and their ops.

    Signals:
        op_activated(str): the user double-clicked (or pressed Enter on) an op.
    """

    op_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search ops…")
        self.search.setClearButtonEnabled(True)
        layout.addWidget(self.search)
        self.tree = _OpTree()
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(True)
        self.tree.setIndentation(12)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setAnimated(True)
        self.tree.setUniformRowHeights(True)
        layout.addWidget(self.tree)
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._activate_first)
        self.tree.itemActivated.connect(self._on_activated)
        self.populate()

    def populate(self) -> None:
        """(Re)build the tree from the registry."""
        self.tree.clear()
        groups: dict[str, QTreeWidgetItem] = {}
        for op in registry.all_ops():
            group = groups.get(op.category)
            if group is None:
                group = QTreeWidgetItem([op.category])
                group.setIcon(0, theme.category_icon(op.category))
                group.setFont(0, theme.ui_font(9, bold=True))
                group.setFlags(Qt.ItemFlag.ItemIsEnabled)
                self.tree.addTopLevelItem(group)
                groups[op.category] = group
            item = QTreeWidgetItem([op.id])
            item.setData(0, OP_ROLE, op.id)
            item.setIcon(0, theme.category_icon(op.category, 10))
            item.setToolTip(0, op_tooltip(op))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                          | Qt.ItemFlag.ItemIsDragEnabled)
            group.addChild(item)
        self.tree.expandAll()

    def filter(self, text: str) -> None:
        """Show the ops whose id, category or description contains the text."""
        text = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            shown = 0
            for j in range(group.childCount()):
                item = group.child(j)
                op = registry.get(item.data(0, OP_ROLE))
                hay = f"{op.id} {op.category} {op.description}".lower() if op else ""
                hidden = bool(text) and text not in hay
                item.setHidden(hidden)
                shown += not hidden
            group.setHidden(shown == 0)
            if text:
                group.setExpanded(True)

    def visible_ops(self) -> list[str]:
        """Op ids currently shown (after filtering)."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            for j in range(group.childCount()):
                item = group.child(j)
                if not item.isHidden() and not group.isHidden():
                    out.append(item.data(0, OP_ROLE))
        return out

    def _activate_first(self) -> None:
        ops = self.visible_ops()
        if ops:
            self.op_activated.emit(ops[0])

    def _on_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        op_id = item.data(0, OP_ROLE)
        if op_id:
            self.op_activated.emit(op_id)
