"""The op palette: every registered op grouped by category, searchable and draggable.

A drag carries the op id as ``application/x-gradscape-op`` mime data; the canvas creates the
node where it is dropped. Double-click (or Enter) asks for the op at the view centre. Blocks
(shipped ones under "Blocks", the user's under "My blocks") drag as
``application/x-gradscape-block`` carrying the block file's path.
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
BLOCK_MIME = "application/x-gradscape-block"
OP_ROLE = Qt.ItemDataRole.UserRole
BLOCK_ROLE = Qt.ItemDataRole.UserRole + 1
BLOCK_GROUPS = ("Blocks", "My blocks")


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
        block = item.data(0, BLOCK_ROLE) if item else None
        if not op_id and not block:
            return
        mime = QMimeData()
        if block:
            mime.setData(BLOCK_MIME, block.encode("utf-8"))
            mime.setText(item.text(0))
        else:
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
    block_activated = Signal(str)  # a block file's path

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
                hay = (f"{op.id} {op.category} {op.description}".lower() if op
                       else f"{item.text(0)} {group.text(0)}".lower())
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
                if not item.isHidden() and not group.isHidden() and item.data(0, OP_ROLE):
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
        elif item.data(0, BLOCK_ROLE):
            self.block_activated.emit(item.data(0, BLOCK_ROLE))

    def set_blocks(self, entries) -> None:
        """Show the block library (designer.document.blocks.BlockEntry list): shipped blocks
        under "Blocks", the user's under "My blocks" (with a hint while it is empty)."""
        for i in reversed(range(self.tree.topLevelItemCount())):
            if self.tree.topLevelItem(i).text(0) in BLOCK_GROUPS:
                self.tree.takeTopLevelItem(i)
        for name, shipped in zip(BLOCK_GROUPS, (True, False)):
            group = QTreeWidgetItem([name])
            group.setIcon(0, theme.category_icon("Blocks"))
            group.setFont(0, theme.ui_font(9, bold=True))
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(group)
            for entry in entries:
                if entry.shipped != shipped:
                    continue
                item = QTreeWidgetItem([entry.title])
                item.setData(0, BLOCK_ROLE, str(entry.path))
                item.setIcon(0, theme.category_icon("Blocks", 10))
                item.setToolTip(0, f"<b>{entry.title}</b><br>Drag onto the canvas to add an "
                                   f"independent copy.<br><small>{entry.path}</small>")
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsDragEnabled)
                group.addChild(item)
            if not shipped and group.childCount() == 0:
                hint = QTreeWidgetItem(["Right-click a block › Save Block to Palette"])
                hint.setFlags(Qt.ItemFlag.NoItemFlags)
                hint.setFont(0, theme.ui_font(8))
                group.addChild(hint)
            group.setExpanded(True)
        self.filter(self.search.text())

    def block_titles(self, group: str = "My blocks") -> list[str]:
        """Titles listed under a block group (for tests and scripts)."""
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top.text(0) == group:
                return [top.child(j).text(0) for j in range(top.childCount())
                        if top.child(j).data(0, BLOCK_ROLE)]
        return []
