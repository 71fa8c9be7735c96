"""The canvas scene: mirrors the GraphDocument and turns mouse gestures into controller calls.

Items are created, removed and updated only in answer to document signals, so the first
"do", every redo and every undo take the same path. Gestures handled here: connecting
(drag from a port; drag a wire off an input to re-route or remove it), moving a selection
(one MoveNodes on release), double-click on a title to rename.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QGraphicsScene, QGraphicsSceneMouseEvent

from designer.canvas.edge_item import DragWire, EdgeItem
from designer.canvas.node_item import HEADER_HEIGHT, NodeItem
from designer.canvas.port_item import PortItem
from engine.core import registry
from engine.core.spec import EdgeSpec
from engine.ops.base import fmt_shape


class CanvasScene(QGraphicsScene):
    """Scene of node and edge items for one controller's document.

    Signals:
        feedback(str, QPointF): a message to show near a scene point (e.g. a refused wire).
        quick_add_requested(QPointF, object): open the quick-add popup at a scene point;
            the object is None or a pending connection ("from", node_id) / ("into", node_id,
            port) to complete with the new node.
        rename_requested(str): the user double-clicked a node's title.
        refreshed(): shapes and badges were updated from a new analysis.
    """

    feedback = Signal(str, QPointF)
    quick_add_requested = Signal(QPointF, object)
    rename_requested = Signal(str)
    refreshed = Signal()

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.document = controller.document
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[EdgeSpec, EdgeItem] = {}
        self._edges_of: dict[str, set[EdgeSpec]] = {}  # node id -> its wires (moves are hot)
        self.snap_to_grid = False
        self.show_wire_shapes = True
        self.user_moving = False
        self._press_positions: dict[str, QPointF] = {}
        self._drag: dict | None = None
        self._drag_wire: DragWire | None = None
        # Current values of one-number parameter nodes (θ) from training: the title shows the
        # engine's value, not the initial one stored in the document.
        self.live_values: dict[str, float] = {}
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.setSceneRect(-20000, -20000, 40000, 40000)
        doc = self.document
        doc.node_added.connect(self._on_node_added)
        doc.node_removed.connect(self._on_node_removed)
        doc.node_renamed.connect(self._on_node_renamed)
        doc.node_moved.connect(self._on_node_moved)
        doc.node_changed.connect(lambda _id: None)  # content follows in refresh()
        doc.edge_added.connect(self._on_edge_added)
        doc.edge_removed.connect(self._on_edge_removed)
        doc.reset.connect(lambda: self.rebuild(refresh=False))  # `changed` follows a reset
        doc.changed.connect(self.refresh)
        self.rebuild()

    # -- mirroring the document ----------------------------------------------------------
    def rebuild(self, refresh: bool = True) -> None:
        """Throw every item away and build them again from the document."""
        self.cancel_drag()
        # Without an index while thousands of items arrive, then one index build: keeping
        # the BSP tree up to date item by item costs more than the items themselves.
        method = self.itemIndexMethod()
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        try:
            for item in list(self.edges.values()) + list(self.nodes.values()):
                self.removeItem(item)
            self.nodes.clear()
            self.edges.clear()
            self._edges_of.clear()
            for node in self.document.nodes():
                self._on_node_added(node.id)
            for edge in self.document.edges():
                self._on_edge_added(edge)
        finally:
            self.setItemIndexMethod(method)
        if refresh:
            self.refresh()

    def _on_node_added(self, node_id: str) -> None:
        if node_id in self.nodes:
            return
        item = NodeItem(node_id, self.document.node(node_id).op)
        x, y = self.document.position(node_id)
        item.setPos(x, y)
        self.addItem(item)
        self.nodes[node_id] = item

    def _on_node_removed(self, node_id: str) -> None:
        item = self.nodes.pop(node_id, None)
        if item is not None:
            self.removeItem(item)

    def _on_node_renamed(self, old: str, new: str) -> None:
        item = self.nodes.pop(old, None)
        if item is not None:
            item.set_node_id(new)
            self.nodes[new] = item
        self._sync_edges()

    def _on_node_moved(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        if item is None:
            return
        x, y = self.document.position(node_id)
        if item.pos() != QPointF(x, y):
            item.setPos(x, y)

    def _on_edge_added(self, edge: EdgeSpec) -> None:
        if edge in self.edges:
            return
        item = EdgeItem(edge)
        self.addItem(item)
        self.edges[edge] = item
        for end in (edge.src, edge.dst):
            self._edges_of.setdefault(end, set()).add(edge)
        self._place_edge(item)

    def _on_edge_removed(self, edge: EdgeSpec) -> None:
        item = self.edges.pop(edge, None)
        if item is not None:
            self.removeItem(item)
        for end in (edge.src, edge.dst):
            self._edges_of.get(end, set()).discard(edge)

    def _sync_edges(self) -> None:
        wanted = set(self.document.edges())
        for edge in [e for e in self.edges if e not in wanted]:
            self._on_edge_removed(edge)
        for edge in self.document.edges():
            self._on_edge_added(edge)

    def _place_edge(self, item: EdgeItem) -> None:
        src, dst = self.nodes.get(item.edge.src), self.nodes.get(item.edge.dst)
        if src is None or dst is None:
            item.setVisible(False)
            return
        item.setVisible(True)
        item.set_ends(src.port_scene_pos("out", True),
                      dst.port_scene_pos(item.edge.dst_port, False))

    def node_item_moved(self, item: NodeItem) -> None:
        """Called by a node item whenever it moves: its wires follow."""
        for edge in self._edges_of.get(item.node_id, ()):
            self._place_edge(self.edges[edge])

    def set_live_values(self, values: dict[str, float]) -> None:
        """Show these current values of one-number parameters in their titles ({} after a
        reset: the document's initial values again)."""
        if values != self.live_values:
            self.live_values = dict(values)
            self.refresh()

    def refresh(self) -> None:
        """Repaint titles, shapes, badges and wire labels from the document's analysis."""
        analysis = self.document.analysis()
        by_node: dict[str, list[str]] = {}
        by_edge: dict[str, str] = {}
        for diag in analysis.diagnostics:
            if diag.node:
                by_node.setdefault(diag.node, []).append(diag.message)
            if diag.edge:
                by_edge.setdefault(diag.edge, diag.message)
        for node_id, item in self.nodes.items():
            if not self.document.has_node(node_id):
                continue
            spec = self.document.node(node_id)
            shape = analysis.shapes.get(node_id)
            params = analysis.params.get(node_id, spec.params)
            if node_id in self.live_values:
                params = {**params, "value": self.live_values[node_id]}
            item.set_content(_summary(spec.op, params),
                             fmt_shape(shape) if shape is not None else "",
                             by_node.get(node_id, []))
            for port in item.ports():
                port.set_connected(False)
        for edge, item in self.edges.items():
            shape = analysis.shapes.get(edge.src)
            item.set_label(fmt_shape(shape) if shape is not None else "", self.show_wire_shapes)
            item.set_problem(by_edge.get(edge.key))
            item.restyle()
            for node_id, name, out in ((edge.src, "out", True), (edge.dst, edge.dst_port, False)):
                node = self.nodes.get(node_id)
                port = node.port(name, out) if node else None
                if port is not None:
                    port.set_connected(True)
        self.refreshed.emit()

    def set_show_wire_shapes(self, on: bool) -> None:
        self.show_wire_shapes = on
        self.refresh()

    def restyle(self) -> None:
        """Re-pick every pen after a theme change."""
        for item in self.edges.values():
            item.restyle()
        for item in self.items():  # cached items (nodes, ports) repaint their pixmaps
            item.update()
        self.update()

    # -- selection -----------------------------------------------------------------------
    def selected_node_ids(self) -> list[str]:
        """Ids of the selected nodes, in document order."""
        chosen = {i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)}
        return [n.id for n in self.document.nodes() if n.id in chosen]

    def selected_edges(self) -> list[EdgeSpec]:
        return [i.edge for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def select_nodes(self, node_ids) -> None:
        """Select exactly these nodes."""
        wanted = set(node_ids)
        self.clearSelection()
        for node_id in wanted:
            if node_id in self.nodes:
                self.nodes[node_id].setSelected(True)

    def delete_selection(self) -> None:
        """Remove the selected nodes (with their wires) and the selected wires: one undo step."""
        ids, edges = self.selected_node_ids(), self.selected_edges()
        if ids or edges:
            self.controller.remove(ids, edges)

    # -- gestures ------------------------------------------------------------------------
    def port_at(self, pos: QPointF) -> PortItem | None:
        for item in self.items(pos):
            if isinstance(item, PortItem):
                return item
        return None

    def node_at(self, pos: QPointF) -> NodeItem | None:
        for item in self.items(pos):
            while item is not None and not isinstance(item, NodeItem):
                item = item.parentItem()
            if item is not None:
                return item
        return None

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            port = self.port_at(event.scenePos())
            if port is not None:
                self._start_drag(port, event.scenePos())
                event.accept()
                return
        super().mousePressEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self._press_positions = {
                i.node_id: QPointF(i.pos()) for i in self.selectedItems()
                if isinstance(i, NodeItem)
            }
            self.user_moving = bool(self._press_positions)

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._drag is not None:
            self._update_drag(event.scenePos())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._drag is not None and event.button() == Qt.MouseButton.LeftButton:
            self._finish_drag(event.scenePos())
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self._commit_move()

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        node = self.node_at(event.scenePos())
        if node is not None and self.port_at(event.scenePos()) is None:
            local = node.mapFromScene(event.scenePos())
            if local.y() <= HEADER_HEIGHT:
                self.rename_requested.emit(node.node_id)
                event.accept()
                return
        super().mouseDoubleClickEvent(event)

    def _commit_move(self) -> None:
        moved = {}
        for node_id, old in self._press_positions.items():
            item = self.nodes.get(node_id)
            if item is not None and item.pos() != old:
                moved[node_id] = ((old.x(), old.y()), (item.pos().x(), item.pos().y()))
        self._press_positions = {}
        self.user_moving = False
        if moved:
            self.controller.move_nodes(moved)

    # connect drag: a small state machine (idle -> dragging -> finished/cancelled)
    def _start_drag(self, port: PortItem, pos: QPointF) -> None:
        node = self.nodes[port.node_id]
        detached = None
        if port.is_output:
            anchor_node, from_output = node, True
        else:
            detached = self.document.incoming(port.node_id, port.name)
            if detached is not None and detached.src in self.nodes:
                # Pick the wire up by its end: it now hangs from its source.
                anchor_node, from_output = self.nodes[detached.src], True
                self.edges[detached].setVisible(False)
            else:
                detached, anchor_node, from_output = None, node, False
        anchor_port = "out" if from_output else port.name
        self._drag = {
            "node": anchor_node.node_id, "port": anchor_port, "from_output": from_output,
            "detached": detached, "target": None,
            "anchor": anchor_node.port_scene_pos(anchor_port, from_output),
        }
        if self._drag_wire is None:  # one reusable item, hidden between drags
            self._drag_wire = DragWire()
            self.addItem(self._drag_wire)
        self._drag_wire.set_state(None)
        self._drag_wire.show()
        self._update_drag(pos)

    def _update_drag(self, pos: QPointF) -> None:
        drag = self._drag
        target = self._target_port(pos)
        if target is not drag["target"]:
            if drag["target"] is not None:
                drag["target"].set_highlight(None)
            drag["target"] = target
            state = None
            if target is not None:
                state = "bad" if self._reason(target) else "ok"
                target.set_highlight(state)
            self._drag_wire.set_state(state)
        end = target.scenePos() if target is not None else pos
        a, b = (drag["anchor"], end) if drag["from_output"] else (end, drag["anchor"])
        self._drag_wire.set_ends(a, b)

    def _target_port(self, pos: QPointF) -> PortItem | None:
        """The port a release here would connect to (a port, or a free input of a node)."""
        drag = self._drag
        port = self.port_at(pos)
        if port is None:
            node = self.node_at(pos)
            if node is None or node.node_id == drag["node"]:
                return None
            if drag["from_output"]:
                free = [p for p in node.inputs.values() if not p.connected]
                port = (free or list(node.inputs.values()) or [None])[0]
            else:
                port = node.output
        if port is None or port.is_output == drag["from_output"]:
            return None
        return port

    def _ends(self, target: PortItem, drag: dict | None = None) -> tuple[str, str, str]:
        drag = drag or self._drag
        if drag["from_output"]:
            return drag["node"], target.node_id, target.name
        return target.node_id, drag["node"], drag["port"]

    def _reason(self, target: PortItem) -> str | None:
        src, dst, port = self._ends(target)
        detached = self._drag["detached"]
        if detached is not None and (detached.src, detached.dst, detached.dst_port) == (
                src, dst, port):
            return None
        return self.controller.can_connect(src, dst, port)

    def _finish_drag(self, pos: QPointF) -> None:
        drag = self._drag
        target = drag["target"]
        detached = drag["detached"]
        self.cancel_drag()
        if target is None:
            port = self.port_at(pos)
            if detached is not None:
                self.controller.disconnect(detached)
            elif port is not None and port.is_output == drag["from_output"] and not (
                    port.node_id == drag["node"] and port.name == drag["port"]):
                self.feedback.emit(
                    "A wire runs from an output (right side of a node) to an input (left "
                    "side); two outputs cannot be joined." if port.is_output else
                    "A wire runs from an output (right side of a node) to an input (left "
                    "side); two inputs cannot be joined.", pos)
            elif self.node_at(pos) is None:
                pending = (("from", drag["node"]) if drag["from_output"]
                           else ("into", drag["node"], drag["port"]))
                self.quick_add_requested.emit(pos, pending)
            return
        src, dst, port = self._ends(target, drag)
        if detached is not None and (detached.src, detached.dst, detached.dst_port) == (
                src, dst, port):
            return
        reason = self.controller.rewire(detached, src, dst, port)
        if reason:
            self.feedback.emit(reason, pos)

    def cancel_drag(self) -> None:
        """Drop a connect drag in progress (Escape, or the document was replaced)."""
        if self._drag is None:
            return
        if self._drag["target"] is not None:
            self._drag["target"].set_highlight(None)
        detached = self._drag["detached"]
        if detached is not None and detached in self.edges:
            self.edges[detached].setVisible(True)
        self._drag = None
        if self._drag_wire is not None:
            self._drag_wire.hide()

    @property
    def dragging_wire(self) -> bool:
        return self._drag is not None

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape and self._drag is not None:
            self.cancel_drag()
            event.accept()
            return
        super().keyPressEvent(event)


def _summary(op_id: str, params: dict) -> str:
    op = registry.get(op_id)
    if op is None:
        return f"? {op_id}"
    try:
        return op.summary(op.resolve_params(params))
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError):
        # a half-edited param must not break painting
        return op.id

