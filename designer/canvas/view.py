"""The canvas view: zoom, pan, grid background, palette drops (ops and blocks, onto a wire to
insert), quick-add, inline rename, arrow-key nudges and the minimap."""

from __future__ import annotations

import math

from PySide6.QtCore import (
    QElapsedTimer,
    QEvent,
    QLineF,
    QPoint,
    QPointF,
    QRectF,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QKeyEvent, QPainter, QPen
from PySide6.QtWidgets import QFrame, QGraphicsView, QLabel, QLineEdit, QMenu

from designer import theme
from designer.canvas.block_item import BlockItem
from designer.canvas.minimap import Minimap
from designer.canvas.node_item import GRID_SIZE, HEADER_HEIGHT, NODE_WIDTH, NodeItem
from designer.canvas.scene import CanvasScene
from designer.editing.palette import BLOCK_MIME, OP_MIME
from designer.editing.quick_add import QuickAddPopup
from engine.core import registry

MIN_ZOOM, MAX_ZOOM = 0.15, 3.0
SHOW_MARGIN = 40.0  # scene units around a graph framed by show_graph
FEEDBACK_MS = 4000
NUDGE_STEP = 1.0  # scene units per arrow key press (Shift: one grid step)
NUDGE_BURST_MS = 800  # presses closer together than this are one undo step
ARROWS = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, -1),
          Qt.Key.Key_Down: (0, 1)}


class CanvasView(QGraphicsView):
    """The node editor's view of a CanvasScene.

    Signals:
        zoom_changed(float): the new scale (1.0 = 100 %).
        message(str): text for the status bar.
    """

    zoom_changed = Signal(float)
    message = Signal(str)

    def __init__(self, scene: CanvasScene, parent=None):
        super().__init__(scene, parent)
        self.canvas = scene
        self.controller = scene.controller
        self.show_grid = True
        self.text_scale = 1.0  # presentation mode opens graphs larger
        self._pan_from: QPoint | None = None
        self._space = False
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.TextAntialiasing
                            | QPainter.RenderHint.SmoothPixmapTransform)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.BoundingRectViewportUpdate)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.feedback_label = QLabel(self.viewport())
        self.feedback_label.setWordWrap(True)
        self.feedback_label.setMaximumWidth(360)
        self.feedback_label.hide()
        self._feedback_timer = QTimer(self)
        self._feedback_timer.setSingleShot(True)
        self._feedback_timer.timeout.connect(self.feedback_label.hide)

        self.quick_add = QuickAddPopup(self)
        self.quick_add.chosen.connect(self._quick_add_chosen)
        self._quick_add_at = QPointF()
        self._quick_add_pending = None

        self.rename_editor: QLineEdit | None = None
        self.node_menu_actions: list = []  # the window's Cut/Copy/Duplicate/Delete actions
        self.block_menu_actions: list = []  # Open/Ungroup/Save to palette (canvas_actions)
        self._nudge_clock = QElapsedTimer()
        self._nudge_burst = 0
        self.minimap = Minimap(self)

        scene.feedback.connect(self.show_feedback)
        scene.quick_add_requested.connect(self.open_quick_add)
        scene.rename_requested.connect(self.start_rename)

    # -- zoom and pan --------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float, anchor: QPointF | None = None) -> None:
        """Scale to an absolute zoom, keeping `anchor` (a scene point) where it is."""
        factor = max(MIN_ZOOM, min(MAX_ZOOM, factor))
        scale = factor / self.zoom()
        if abs(scale - 1.0) < 1e-6:
            return
        if anchor is None:
            self.scale(scale, scale)
        else:
            before = self.mapFromScene(anchor)
            old = self.transformationAnchor()
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
            self.scale(scale, scale)
            after = self.mapFromScene(anchor)
            delta = after - before
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() + delta.y())
            self.setTransformationAnchor(old)
        self.zoom_changed.emit(self.zoom())

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * 1.2)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / 1.2)

    def reset_zoom(self) -> None:
        self.set_zoom(1.0)

    def fit_rect(self, rect: QRectF, max_zoom: float = 1.25) -> None:
        """Show a scene rectangle with a margin, never zooming in past `max_zoom`."""
        if rect.isNull() or rect.isEmpty():
            return
        rect = rect.adjusted(-60, -60, 60, 60)
        vp = self.viewport().rect()
        factor = min(vp.width() / rect.width(), vp.height() / rect.height())
        self.set_zoom(min(factor, max_zoom))
        self.centerOn(rect.center())

    def fit_all(self) -> None:
        """Fit every node into the view."""
        self.fit_rect(self._items_rect(self.canvas_items()))

    def canvas_items(self) -> list:
        """What "the whole graph" is for framing: visible nodes, closed blocks and notes."""
        return ([i for i in self.canvas.nodes.values() if i.isVisible()]
                + list(self.canvas.blocks.values()) + list(self.canvas.notes.values()))

    def opening_zoom_range(self) -> tuple[float, float]:
        """(smallest, largest) zoom a freshly opened graph is shown at: never below the zoom
        where canvas labels stay legible (theme.legible_zoom)."""
        low = theme.legible_zoom() * self.text_scale
        return low, max(low, 1.0)

    def legible_width(self) -> float:
        """How wide (scene units) a graph may be to fit the view at the legible zoom."""
        return self.viewport().width() / self.opening_zoom_range()[0] - 2 * SHOW_MARGIN

    def show_graph(self) -> None:
        """Frame a freshly opened graph: fit it, but stay legible.

        When the graph is too wide to fit at the legible zoom, its left end (the inputs) is
        shown; Auto Layout then wraps it into rows that fit.
        """
        rect = self._items_rect(self.canvas_items())
        if rect.isEmpty():
            self.reset_zoom()
            self.centerOn(0, 0)
            return
        margin = rect.adjusted(-SHOW_MARGIN, -SHOW_MARGIN, SHOW_MARGIN, SHOW_MARGIN)
        vp = self.viewport().rect()
        factor = min(vp.width() / margin.width(), vp.height() / margin.height())
        low, high = self.opening_zoom_range()
        zoom = max(low, min(factor, high))
        self.set_zoom(zoom)
        center = margin.center()
        if margin.width() * zoom > vp.width():
            center.setX(margin.left() + vp.width() / (2 * zoom))
        if margin.height() * zoom > vp.height():
            center.setY(margin.top() + vp.height() / (2 * zoom))
        self.centerOn(center)

    def zoom_to_selection(self) -> None:
        """Fit the selected nodes (or everything, if nothing is selected)."""
        items = [self.canvas.nodes[i] for i in self.canvas.selected_node_ids()]
        if not items:
            self.fit_all()
            return
        self.fit_rect(self._items_rect(items), max_zoom=1.6)

    @staticmethod
    def _items_rect(items) -> QRectF:
        rect = QRectF()
        for item in items:
            rect = rect.united(item.sceneBoundingRect())
        return rect

    def wheelEvent(self, event) -> None:
        delta = event.angleDelta().y() or event.pixelDelta().y()
        if delta == 0:
            return
        self.set_zoom(self.zoom() * math.pow(1.0015, delta),
                      self.mapToScene(event.position().toPoint()))
        event.accept()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (
                event.button() == Qt.MouseButton.LeftButton and self._space):
            self._pan_from = event.position().toPoint()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton:
            self.setFocus()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._pan_from is not None:
            pos = event.position().toPoint()
            delta = pos - self._pan_from
            self._pan_from = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan_from is not None and event.button() in (
                Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.viewport().setCursor(
                Qt.CursorShape.OpenHandCursor if self._space else Qt.CursorShape.ArrowCursor)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def event(self, event: QEvent) -> bool:
        # Tab must open quick-add instead of moving the keyboard focus.
        if event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Tab:
            self.open_quick_add(self._cursor_scene_pos(), None)
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in ARROWS and self._nudge(event):
            return
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal) and not event.modifiers() & ~(
                Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier):
            self.zoom_in()
            return
        if key == Qt.Key.Key_Minus and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            self.zoom_out()
            return
        super().keyPressEvent(event)

    def _nudge(self, event: QKeyEvent) -> bool:
        """Arrow keys move the selection (Shift: a grid step); a burst is one undo step."""
        canvas = self.canvas
        if any(canvas.focusItem() is n.editor for n in canvas.notes.values()):
            return False
        if event.modifiers() & ~(Qt.KeyboardModifier.ShiftModifier
                                 | Qt.KeyboardModifier.KeypadModifier):
            return False
        nodes, blocks = canvas.selected_node_ids(), canvas.selected_group_ids()
        notes = canvas.selected_note_ids()
        if not (nodes or blocks or notes):
            return False
        if not self._nudge_clock.isValid() or self._nudge_clock.elapsed() > NUDGE_BURST_MS:
            self._nudge_burst += 1
        self._nudge_clock.restart()
        step = GRID_SIZE if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else NUDGE_STEP
        dx, dy = ARROWS[event.key()]
        self.controller.nudge(nodes, dx * step, dy * step, self._nudge_burst, blocks, notes)
        return True

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            if self._pan_from is None:
                self.viewport().setCursor(Qt.CursorShape.ArrowCursor)
            return
        super().keyReleaseEvent(event)

    def contextMenuEvent(self, event) -> None:
        pos = self.mapToScene(event.pos())
        node = self.canvas.node_at(pos)
        if node is None and not self.itemAt(event.pos()) and (
                self.canvas.wire_label_at(pos) is None):
            self.open_quick_add(pos, None)
            event.accept()
            return
        if node is not None:
            if not node.isSelected():
                self.canvas.select_nodes([node.node_id])
            self._item_menu(event, "Rename…", node.node_id, self.node_menu_actions)
            return
        block = self.canvas.block_at(pos)
        if block is not None:
            if not block.isSelected():
                self.canvas.select_group(block.group_id)
            self._item_menu(event, "Rename Block…", block.group_id, self.block_menu_actions)
            return
        super().contextMenuEvent(event)

    def _item_menu(self, event, rename_text: str, item_id: str, actions: list) -> None:
        """The context menu of a node or a block: rename, then the window's actions."""
        menu = QMenu(self)
        menu.addAction(rename_text).triggered.connect(lambda: self.start_rename(item_id))
        menu.addSeparator()
        menu.addActions(actions)
        menu.exec(event.globalPos())
        event.accept()

    def _cursor_scene_pos(self) -> QPointF:
        pos = self.viewport().mapFromGlobal(self.cursor().pos())
        if not self.viewport().rect().contains(pos):
            pos = self.viewport().rect().center()
        return self.mapToScene(pos)

    def center_scene_pos(self) -> QPointF:
        """The scene point at the middle of the view."""
        return self.mapToScene(self.viewport().rect().center())

    # -- background ----------------------------------------------------------------------
    def set_show_grid(self, on: bool) -> None:
        self.show_grid = on
        self.resetCachedContent()
        self.viewport().update()

    def paintEvent(self, event) -> None:
        # The nodes about to be painted get their port items first (they are made late).
        self.canvas.ensure_ports(self.mapToScene(event.rect()).boundingRect())
        super().paintEvent(event)

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self.minimap.schedule()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.minimap.place()

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        pal = theme.current()
        painter.fillRect(rect, QColor(pal.background))
        if not self.show_grid:
            return
        zoom = self.zoom()
        step = GRID_SIZE if zoom >= 0.5 else GRID_SIZE * 5
        left = math.floor(rect.left() / step) * step
        top = math.floor(rect.top() / step) * step
        minor, major = [], []
        x = left
        while x < rect.right():
            line = QLineF(x, rect.top(), x, rect.bottom())
            (major if round(x / step) % 5 == 0 or step > GRID_SIZE else minor).append(line)
            x += step
        y = top
        while y < rect.bottom():
            line = QLineF(rect.left(), y, rect.right(), y)
            (major if round(y / step) % 5 == 0 or step > GRID_SIZE else minor).append(line)
            y += step
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        pen = QPen(QColor(pal.grid_minor), 0)  # cosmetic: 1 px at any zoom
        painter.setPen(pen)
        painter.drawLines(minor)
        pen.setColor(QColor(pal.grid_major))
        painter.setPen(pen)
        painter.drawLines(major)

    # -- palette drops -------------------------------------------------------------------
    @staticmethod
    def _palette_drag(event) -> bool:
        """True (and the drop is accepted) for an op or a block dragged from the palette."""
        mime = event.mimeData()
        if mime.hasFormat(OP_MIME) or mime.hasFormat(BLOCK_MIME):
            event.acceptProposedAction()
            return True
        return False

    def dragEnterEvent(self, event) -> None:
        if not self._palette_drag(event):
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if not self._palette_drag(event):
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:
        pos = self.mapToScene(event.position().toPoint())
        if event.mimeData().hasFormat(OP_MIME):
            op_id = bytes(event.mimeData().data(OP_MIME).data()).decode("utf-8")
            self.add_op_at(op_id, pos, onto_wire=True)
            event.acceptProposedAction()
            return
        if event.mimeData().hasFormat(BLOCK_MIME):
            path = bytes(event.mimeData().data(BLOCK_MIME).data()).decode("utf-8")
            self.add_block_at(path, pos)
            event.acceptProposedAction()
            return
        super().dropEvent(event)

    def _node_origin(self, scene_pos: QPointF) -> tuple[float, float]:
        """Top-left of a new node centred under a scene point (snapped to the grid if on)."""
        x = round(scene_pos.x() - NODE_WIDTH / 2)
        y = round(scene_pos.y() - HEADER_HEIGHT / 2)
        if self.canvas.snap_to_grid:
            x, y = round(x / GRID_SIZE) * GRID_SIZE, round(y / GRID_SIZE) * GRID_SIZE
        return float(x), float(y)

    def add_op_at(self, op_id: str, scene_pos: QPointF, onto_wire: bool = False) -> str | None:
        """Add a node of `op_id` centred under a scene point; returns its id.

        With `onto_wire`, a node dropped on a wire goes into it (or the reason is shown).
        """
        if registry.get(op_id) is None:
            self.message.emit(f"Unknown op '{op_id}'.")
            return None
        x, y = self._node_origin(scene_pos)
        under = QRectF(x, scene_pos.y() - HEADER_HEIGHT, NODE_WIDTH, 2 * HEADER_HEIGHT)
        wire = self.canvas.wire_under(under) if onto_wire else None
        if wire is not None:
            node_id, reason = self.controller.add_node_on_wire(op_id, (x, y), wire.edge)
            if reason:
                self.show_feedback(reason, scene_pos)
        else:
            node_id = self.controller.add_node(op_id, (x, y))
        if node_id:
            self.canvas.select_nodes([node_id])
        return node_id

    def add_block_at(self, path: str, scene_pos: QPointF) -> str:
        """Add a copy of the block stored in `path` under a scene point; returns its id."""
        from engine.errors import FileFormatError

        try:
            spec = self.controller.blocks.read(path)
        except FileFormatError as exc:
            self.show_feedback(f"Cannot add the block: {exc}", scene_pos)
            return ""
        at = (float(round(scene_pos.x() - NODE_WIDTH / 2)),
              float(round(scene_pos.y() - HEADER_HEIGHT / 2)))
        group_id = self.controller.insert_block(spec, at)
        if group_id:
            self.canvas.select_group(group_id)
        return group_id

    # -- quick add -----------------------------------------------------------------------
    def open_quick_add(self, scene_pos: QPointF, pending=None) -> None:
        """Open the popup at a scene point; `pending` is a wire to complete (see scene)."""
        ops = registry.all_ops()
        heading = "Add node"
        if pending and pending[0] == "from":
            ops = [op for op in ops if op.inputs]
            heading = f"Add node fed by {pending[1]}"
        elif pending:
            heading = f"Add node feeding {pending[1]}.{pending[2]}"
        self._quick_add_at = QPointF(scene_pos)
        self._quick_add_pending = pending
        self.quick_add.set_ops(ops, heading)
        self.quick_add.popup(self.viewport().mapToGlobal(self.mapFromScene(scene_pos)))

    def _quick_add_chosen(self, op_id: str) -> None:
        pending = self._quick_add_pending
        self._quick_add_pending = None
        pos = QPointF(self._quick_add_at)
        if pending and pending[0] == "from":
            pos += QPointF(NODE_WIDTH / 2, 0)  # the new node's input lands under the cursor
        elif pending:
            pos -= QPointF(NODE_WIDTH / 2, 0)
        if registry.get(op_id) is None:
            self.message.emit(f"Unknown op '{op_id}'.")
            return
        node_id, reason = self.controller.add_node_wired(op_id, self._node_origin(pos), pending)
        if node_id:
            self.canvas.select_nodes([node_id])
            if reason:
                self.canvas.feedback.emit(reason, self.canvas.nodes[node_id].scenePos())

    # -- feedback ------------------------------------------------------------------------
    def show_feedback(self, text: str, scene_pos: QPointF) -> None:
        """Show a message near a scene point for a few seconds (and on the status bar)."""
        pal = theme.current()
        label = self.feedback_label
        label.setText(text)
        label.setStyleSheet(
            f"QLabel {{ background: {pal.label_background}; color: {pal.text};"
            f" border: 1px solid {pal.error}; border-left: 4px solid {pal.error};"
            " border-radius: 4px; padding: 6px 8px; }")
        label.adjustSize()
        pt = self.mapFromScene(scene_pos) + QPoint(14, 14)
        vp = self.viewport().rect()
        pt.setX(max(4, min(pt.x(), vp.width() - label.width() - 4)))
        pt.setY(max(4, min(pt.y(), vp.height() - label.height() - 4)))
        label.move(pt)
        label.show()
        label.raise_()
        self._feedback_timer.start(FEEDBACK_MS)
        self.message.emit(text)

    # -- inline rename -------------------------------------------------------------------
    def start_rename(self, node_id: str) -> None:
        """Put a line editor over the node's (or closed block's) title; Enter renames,
        Escape cancels. A block is renamed by its title, a node by its id."""
        item: NodeItem | BlockItem | None = self.canvas.nodes.get(node_id)
        text = node_id
        if item is None or not item.isVisible():
            item = self.canvas.blocks.get(node_id)
            if item is None:
                return
            text = item.title
        self.finish_rename(commit=False)
        rect = self.mapFromScene(item.mapToScene(item.header_rect())).boundingRect()
        editor = QLineEdit(text, self.viewport())
        editor.setGeometry(rect.adjusted(2, 2, -2, -2))
        editor.selectAll()
        editor.setProperty("node_id", node_id)
        editor.returnPressed.connect(lambda: self.finish_rename(commit=True))
        editor.editingFinished.connect(lambda: self.finish_rename(commit=True))
        editor.installEventFilter(self)
        self.rename_editor = editor
        editor.show()
        editor.setFocus()

    def finish_rename(self, commit: bool) -> None:
        editor, self.rename_editor = self.rename_editor, None
        if editor is None:
            return
        old, new = editor.property("node_id"), editor.text().strip()
        editor.hide()
        editor.deleteLater()
        if commit and old in self.canvas.blocks:
            reason = self.controller.rename_block(old, new)
            if reason:
                self.show_feedback(reason, self.canvas.blocks[old].scenePos())
        elif commit and new and new != old:
            reason = self.controller.rename(old, new)
            if reason and old in self.canvas.nodes:
                self.show_feedback(reason, self.canvas.nodes[old].scenePos())
        self.setFocus()

    def eventFilter(self, obj, event) -> bool:
        if obj is self.rename_editor and event.type() == QEvent.Type.KeyPress \
                and event.key() == Qt.Key.Key_Escape:
            self.finish_rename(commit=False)
            return True
        return super().eventFilter(obj, event)
