"""The canvas scene: mirrors the GraphDocument and turns mouse gestures into controller calls.

Items are created, removed and updated only in answer to document signals, so the first
"do", every redo and every undo take the same path. Gestures handled here: connecting
(drag from a port; drag a wire off an input to re-route or remove it), moving a selection
(one MoveNodes on release; a lone unwired node dropped on a wire goes into it), double-click
on a title to rename, on a block to open it, on an open block's title bar to close it, on a
wire to add a reroute point. A closed block hides its nodes; its ports stand for their ports.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsScene, QGraphicsSceneMouseEvent, QToolTip

from designer import theme
from designer.canvas.block_item import BlockFrame, BlockItem
from designer.canvas.edge_item import DragWire, EdgeItem
from designer.canvas.node_item import GRID_SIZE, HEADER_HEIGHT, CardItem, NodeItem
from designer.canvas.note_item import NoteItem
from designer.canvas.port_item import HIT_RADIUS, PortItem
from designer.document.blocks import block_ports
from designer.document.layout import follow_ends
from engine.core import registry
from engine.core.spec import EdgeSpec
from engine.ops.base import fmt_shape

SCENE_RECT = QRectF(-20000, -20000, 40000, 40000)


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
        self.blocks: dict[str, BlockItem] = {}  # closed blocks, by group id
        self.frames: dict[str, BlockFrame] = {}  # open blocks, by group id
        self.notes: dict[str, NoteItem] = {}
        self._closed_in: dict[str, str] = {}  # node id -> its closed block's group id
        self._open_members: dict[str, set[str]] = {}  # open block -> nodes shown in its frame
        self._edges_of: dict[str, set[EdgeSpec]] = {}  # node id -> its wires (moves are hot)
        self._portless: set[str] = set()  # nodes whose port items are not made yet
        self.snap_to_grid = False
        self.show_wire_shapes = True
        self.user_moving = False
        self._press_positions: dict[str, QPointF] = {}
        self._press_blocks: dict[str, QPointF] = {}
        self._press_notes: dict[str, QPointF] = {}
        self._riders: list = []  # (item, offset, frame): carried by a moving comment frame
        self._target_wire: EdgeItem | None = None  # lit while a node is dragged over it
        self._drag: dict | None = None
        self._drag_wire: DragWire | None = None
        # Current values of one-number parameter nodes (θ) from training: the title shows the
        # engine's value, not the initial one stored in the document.
        self.live_values: dict[str, float] = {}
        # A BSP index: painting and hit tests then touch only the items near the exposed
        # rectangle instead of calling every item's Python boundingRect() (what made
        # panning a 2,000-node graph slow). Rebuilds switch it off while items arrive.
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.setSceneRect(SCENE_RECT)
        doc = self.document
        doc.node_added.connect(self._on_node_added)
        doc.node_removed.connect(self._on_node_removed)
        doc.node_renamed.connect(self._on_node_renamed)
        doc.node_moved.connect(self._on_node_moved)
        doc.node_changed.connect(lambda _id: None)  # content follows in refresh()
        doc.edge_added.connect(self._on_edge_added)
        doc.edge_removed.connect(self._on_edge_removed)
        doc.group_added.connect(self._sync_group)
        doc.group_removed.connect(self._sync_group)
        doc.group_changed.connect(self._sync_group)
        doc.note_added.connect(self._sync_note)
        doc.note_removed.connect(self._sync_note)
        doc.note_changed.connect(self._sync_note)
        doc.waypoints_changed.connect(self._on_waypoints)
        doc.reset.connect(self._on_reset)
        doc.changed.connect(self.refresh)
        self.focusItemChanged.connect(self._on_focus_item_changed)
        self._raised: list[CardItem] = []  # selected cards, drawn above the others
        self.selectionChanged.connect(self._raise_selected)
        self.rebuild()

    # -- mirroring the document ----------------------------------------------------------
    def rebuild(self, refresh: bool = True) -> None:
        """Throw every item away and build them again from the document (and refresh them,
        unless the document's `changed` signal is about to)."""
        self.cancel_drag()
        # Without an index while thousands of items arrive, then one index build: keeping
        # the BSP tree up to date item by item costs more than the items themselves.
        method = self.itemIndexMethod()
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.setSceneRect(SCENE_RECT)
        try:
            for item in (list(self.edges.values()) + list(self.nodes.values())
                         + list(self.blocks.values()) + list(self.frames.values())
                         + list(self.notes.values())):
                self.removeItem(item)
            self.nodes.clear()
            self.edges.clear()
            self.blocks.clear()
            self.frames.clear()
            self.notes.clear()
            self._closed_in.clear()
            self._open_members.clear()
            self._edges_of.clear()
            self._portless.clear()
            for node in self.document.nodes():
                self._on_node_added(node.id)
            for edge in self.document.edges():
                self._on_edge_added(edge)
            for group in self.document.groups():
                self._sync_group(group.id)
            for note in self.document.notes():
                self._sync_note(note.id)
        finally:
            self.setItemIndexMethod(method)
            # A freshly switched-to BSP index does not know the scene rectangle (Qt puts
            # every item in one leaf, so each paint tests all of them); setting the
            # rectangle again lays the tree out over it.
            rect = self.sceneRect()  # SCENE_RECT, grown by _grow_to for far nodes
            self.setSceneRect(rect.adjusted(0, 0, 0, 1))
            self.setSceneRect(rect)
        if refresh:
            self.refresh()

    def _grow_to(self, x: float, y: float) -> None:
        """Keep a node placed far away inside the scene rectangle (the BSP index never finds
        items outside it)."""
        rect = self.sceneRect()
        if not rect.adjusted(400, 400, -400, -400).contains(x, y):
            self.setSceneRect(rect.united(QRectF(x - 2000, y - 2000, 4000, 4000)))

    def _on_reset(self) -> None:
        self.rebuild(refresh=False)  # the document's `changed` follows and refreshes

    def _on_node_added(self, node_id: str) -> None:
        if node_id in self.nodes:
            return
        item = NodeItem(node_id, self.document.node(node_id).op)
        x, y = self.document.position(node_id)
        self._grow_to(x, y)
        item.setPos(x, y)
        self.addItem(item)
        self.nodes[node_id] = item
        self._portless.add(node_id)

    def _on_node_removed(self, node_id: str) -> None:
        item = self.nodes.pop(node_id, None)
        if item is not None:
            self.removeItem(item)
        self._closed_in.pop(node_id, None)
        self._portless.discard(node_id)

    def _on_node_renamed(self, old: str, new: str) -> None:
        item = self.nodes.pop(old, None)
        if item is not None:
            item.set_node_id(new)
            self.nodes[new] = item
        if old in self._portless:
            self._portless.discard(old)
            self._portless.add(new)
        if old in self._closed_in:
            self._closed_in[new] = self._closed_in.pop(old)
        self._sync_edges()

    def _on_node_moved(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        if item is None:
            return
        x, y = self.document.position(node_id)
        if item.pos() != QPointF(x, y):
            self._grow_to(x, y)
            item.setPos(x, y)
        self.node_item_moved(item)  # also after a drag, where the item was already there

    def _on_edge_added(self, edge: EdgeSpec) -> None:
        if edge in self.edges:
            return
        item = EdgeItem(edge)
        self.addItem(item)
        self.edges[edge] = item
        for end in (edge.src, edge.dst):
            self._edges_of.setdefault(end, set()).add(edge)
        points = self.document.waypoints(edge)
        if points:
            item.set_waypoints(points)
        self._place_edge(item)

    def _on_waypoints(self, key: str) -> None:
        for edge, item in self.edges.items():
            if edge.key == key:
                item.set_waypoints(self.document.waypoints(edge))

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
        edge = item.edge
        if edge.src not in self.nodes or edge.dst not in self.nodes:
            item.setVisible(False)
            return
        inside = self._closed_in.get(edge.src)
        if inside is not None and inside == self._closed_in.get(edge.dst):
            item.setVisible(False)  # a wire inside a closed block
            return
        item.setVisible(True)
        if self.user_moving and item.reroutes:
            item.move_waypoints(self._following_points(edge))
        item.set_ends(self.port_scene_pos(edge.src, "out", True),
                      self.port_scene_pos(edge.dst, edge.dst_port, False))

    def _following_points(self, edge: EdgeSpec) -> list[tuple[float, float]]:
        """Mid-drag, where a wire's reroute points go as its ends move (the document still
        has where they were; the move command sets the same points on release)."""
        doc = self.document
        src, dst = doc.position(edge.src), doc.position(edge.dst)
        return follow_ends(doc.waypoints(edge), src, dst, self._drag_step(edge.src, src),
                           self._drag_step(edge.dst, dst))

    def _drag_step(self, node_id: str, was: tuple[float, float]) -> tuple[float, float]:
        """How far a node has been dragged so far (with its closed block, if it is in one)."""
        gid = self._closed_in.get(node_id)
        if gid is not None and gid in self.blocks:
            block, group = self.blocks[gid].pos(), self.document.group(gid).position
            return (block.x() - group[0], block.y() - group[1])
        pos = self.nodes[node_id].pos()
        return (pos.x() - was[0], pos.y() - was[1])

    def port_scene_pos(self, node_id: str, name: str, is_output: bool) -> QPointF:
        """Where a wire of this node's port attaches: on the node, or on its closed block."""
        gid = self._closed_in.get(node_id)
        if gid is not None and gid in self.blocks:
            return self.blocks[gid].port_scene_pos(node_id, name, is_output)
        return self.nodes[node_id].port_scene_pos(name, is_output)

    def ensure_ports(self, rect: QRectF) -> None:
        """Make the port items of the nodes within reach of a scene rectangle: before the
        canvas paints it (CanvasView.paintEvent), hit-tests or hovers there. Ports are
        made late because a big file would otherwise open with tens of thousands."""
        if not self._portless:
            return
        reach = HIT_RADIUS + 1
        area = rect.adjusted(-reach, -reach, reach, reach)
        for item in self.items(area, Qt.ItemSelectionMode.IntersectsItemBoundingRect):
            if type(item) is NodeItem and not item.has_ports:
                item.build_ports()  # calls ports_made

    def ports_made(self, node_id: str) -> None:
        """A node made its port items (painted, hit-tested or asked for them)."""
        self._portless.discard(node_id)

    def render(self, painter, target: QRectF | None = None, source: QRectF | None = None,
               mode=Qt.AspectRatioMode.KeepAspectRatio) -> None:
        """Draw the scene (a picture of it): with the ports of what it shows."""
        target, source = target or QRectF(), source or QRectF()
        self.ensure_ports(source if not source.isNull() else self.sceneRect())
        super().render(painter, target, source, mode)

    def itemsBoundingRect(self) -> QRectF:
        """Every item's rectangle, the ports not yet made included (they stick out of
        their nodes): what the same graph gave when every node made its ports at once."""
        self.ensure_ports(self.sceneRect())
        return super().itemsBoundingRect()

    def port_item(self, node_id: str, name: str, is_output: bool) -> PortItem | None:
        """The visible port item of a node's port (its closed block's port if it has one)."""
        gid = self._closed_in.get(node_id)
        if gid is not None and gid in self.blocks:
            return self.blocks[gid].port(node_id, name, is_output)
        node = self.nodes.get(node_id)
        return node.port(name, is_output) if node else None

    def cards_moved(self) -> None:
        """The user dragged the selection a step: snap it to the grid if asked, carry what a
        moved comment frame holds, and make the wires follow (cards have no itemChange)."""
        for item, offset, frame in self._riders:
            item.setPos(frame.pos() + offset)
        moved = [self.nodes[n] for n in self._press_positions if n in self.nodes]
        moved += [self.blocks[g] for g in self._press_blocks if g in self.blocks]
        for item in moved:
            if self.snap_to_grid:
                pos = item.pos()
                snapped = QPointF(round(pos.x() / GRID_SIZE) * GRID_SIZE,
                                  round(pos.y() / GRID_SIZE) * GRID_SIZE)
                if snapped != pos:
                    item.setPos(snapped)
            if isinstance(item, NodeItem):
                self.node_item_moved(item)
            else:
                self.block_item_moved(item)

    def _raise_selected(self) -> None:
        """Selected cards are drawn above the others."""
        for item in self._raised:
            if item.scene() is self and not item.isSelected():
                item.setZValue(1)
        self._raised = [i for i in self.selectedItems() if isinstance(i, CardItem)]
        for item in self._raised:
            item.setZValue(1.5)

    def node_item_moved(self, item: NodeItem) -> None:
        """A node item moved (a drag step or a document move): its wires and its open block
        follow."""
        self._grow_to(item.x(), item.y())
        for edge in self._edges_of.get(item.node_id, ()):
            self._place_edge(self.edges[edge])
        if self.frames:
            group = self.document.group_of(item.node_id)
            if group is not None and group.id in self.frames:
                self._place_frame(group.id)

    def block_item_moved(self, item: BlockItem) -> None:
        """A closed block moved: the wires crossing its border follow."""
        if not self.document.has_group(item.group_id):
            return
        for node_id in self.document.group(item.group_id).nodes:
            for edge in self._edges_of.get(node_id, ()):
                self._place_edge(self.edges[edge])

    # -- blocks and notes ----------------------------------------------------------------
    def _sync_group(self, group_id: str) -> None:
        """Show a group as the document has it: a closed block item, or an open frame."""
        doc = self.document
        group = doc.group(group_id) if doc.has_group(group_id) else None
        block = self.blocks.get(group_id)
        if block is not None and (group is None or not group.collapsed):
            self.removeItem(self.blocks.pop(group_id))
        frame = self.frames.get(group_id)
        if frame is not None and (group is None or group.collapsed):
            self.removeItem(self.frames.pop(group_id))
        touched = {n for n, g in self._closed_in.items() if g == group_id}
        for n in touched:
            del self._closed_in[n]
        if group is not None and group.collapsed:
            for n in group.nodes:
                self._closed_in[n] = group_id
            block = self.blocks.get(group_id)
            if block is None:
                block = BlockItem(group_id, group.title, block_ports(doc, group), "")
                self.addItem(block)
                self.blocks[group_id] = block
            block.set_content(group.title, block.size_text)
            if block.pos() != QPointF(*group.position):
                block.setPos(*group.position)
        elif group is not None:
            if group_id not in self.frames:
                frame = BlockFrame(group_id, group.title)
                self.addItem(frame)
                self.frames[group_id] = frame
            self._place_frame(group_id)
        members = set(group.nodes) if group is not None else set()
        is_open = group is not None and not group.collapsed
        for n in touched | members | self._open_members.pop(group_id, set()):
            item = self.nodes.get(n)
            if item is not None:
                item.set_id_prefix(f"{group_id}/" if is_open and n in members else "")
        if is_open:
            self._open_members[group_id] = members
        for n in touched | members:
            item = self.nodes.get(n)
            if item is not None:
                hidden = self._closed_in.get(n) is not None
                item.setVisible(not hidden)
                if hidden:
                    item.setSelected(False)
        for n in touched | members:
            for edge in self._edges_of.get(n, ()):
                self._place_edge(self.edges[edge])

    def _place_frame(self, group_id: str) -> None:
        group = self.document.group(group_id)
        rect = QRectF()
        for n in group.nodes:
            item = self.nodes.get(n)
            if item is not None:
                rect = rect.united(item.sceneBoundingRect())
        self.frames[group_id].set_frame(rect, group.title)

    def _sync_note(self, note_id: str) -> None:
        doc = self.document
        item = self.notes.get(note_id)
        if not doc.has_note(note_id):
            if item is not None:
                self.removeItem(self.notes.pop(note_id))
            return
        note = doc.note(note_id)
        if item is None:
            item = NoteItem(note.id, note.kind, note.text, note.rect[2:])
            self.addItem(item)
            self.notes[note_id] = item
        item.set_content(note.text, note.rect[2:])
        if item.pos() != QPointF(note.rect[0], note.rect[1]):
            item.setPos(note.rect[0], note.rect[1])

    def note_resized(self, item: NoteItem) -> None:
        """A note's resize grip was released: record the new size."""
        self.controller.resize_note(item.note_id, item.scene_rect())
        self._sync_note(item.note_id)  # refused (or unchanged): show the document's size

    def _on_focus_item_changed(self, new, old, _reason) -> None:
        """Leaving a note's text editor records its text (one undo step)."""
        for item in self.notes.values():
            if item.editor is old and item.editor is not new:
                text = item.finish_editing()
                if text is not None:
                    self.controller.set_note_text(item.note_id, text)

    def reroute_released(self, edge_item: EdgeItem) -> None:
        self.controller.set_waypoints(edge_item.edge, edge_item.waypoint_positions(),
                                      "Move wire bend")

    def reroute_removed(self, edge_item: EdgeItem, index: int) -> None:
        points = edge_item.waypoint_positions()
        del points[index]
        self.controller.set_waypoints(edge_item.edge, points, "Remove wire bend")

    def add_reroute(self, edge_item: EdgeItem, pos: QPointF) -> None:
        """Add a reroute point where the wire was double-clicked, in path order."""
        path = edge_item.path()

        def t_of(p: QPointF) -> float:
            best, best_t = float("inf"), 0.0
            for i in range(101):
                q = path.pointAtPercent(i / 100)
                d = (q.x() - p.x()) ** 2 + (q.y() - p.y()) ** 2
                if d < best:
                    best, best_t = d, i / 100
            return best_t
        points = edge_item.waypoint_positions()
        t = t_of(pos)
        index = sum(1 for x, y in points if t_of(QPointF(x, y)) < t)
        points.insert(index, (round(pos.x()), round(pos.y())))
        self.controller.set_waypoints(edge_item.edge, points, "Bend wire")

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
        for gid, block in self.blocks.items():
            if not self.document.has_group(gid):
                continue
            group = self.document.group(gid)
            ports = block_ports(self.document, group)
            if ports != block.block_ports:
                block.set_ports(ports)
            shapes = [analysis.shapes.get(n) for n in ports.outputs]
            out = " ".join(fmt_shape(x) for x in shapes if x is not None)
            count = f"{len(group.nodes)} node" + ("s" if len(group.nodes) != 1 else "")
            problems = sum(1 for n in group.nodes if n in by_node)
            size = f"{count} · ⚠ {problems}" if problems else f"{count} · {out}".rstrip(" ·")
            block.set_content(group.title, size)
        for gid in self.frames:
            if self.document.has_group(gid):
                self._place_frame(gid)
        # Pens follow problems (set_problem), overlays and the theme (restyle()) by
        # themselves; here only labels, problems and which ports are wired change.
        label_brush = theme.color("shape_text")
        connected: set[int] = set()  # block ports with a wire
        wired: dict[str, set[tuple[str, bool]]] = {}  # node -> its ports with a wire
        blocks, closed_in = self.blocks, self._closed_in
        for edge, item in self.edges.items():
            shape = analysis.shapes.get(edge.src)
            item.set_label(fmt_shape(shape) if shape is not None else "", self.show_wire_shapes,
                           label_brush)
            item.set_problem(by_edge.get(edge.key))
            for node_id, name, out in ((edge.src, "out", True), (edge.dst, edge.dst_port, False)):
                gid = closed_in.get(node_id)
                if gid is not None and gid in blocks:  # drawn on the closed block's port
                    port = blocks[gid].port(node_id, name, out)
                    if port is not None:
                        connected.add(id(port))
                else:
                    wired.setdefault(node_id, set()).add((name, out))
        nothing: frozenset = frozenset()
        for node_id, card in self.nodes.items():
            card.set_wired(frozenset(wired[node_id]) if node_id in wired else nothing)
        for block in self.blocks.values():
            for port in block.ports():
                port.set_connected(id(port) in connected)
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
    def selected_node_ids(self, include_blocks: bool = False) -> list[str]:
        """Ids of the selected nodes, in document order (with `include_blocks`, also the
        nodes inside selected closed blocks: what copy and duplicate take)."""
        chosen = {i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)}
        if include_blocks:
            for gid in self.selected_group_ids():
                chosen.update(self.document.group(gid).nodes)
        return [n.id for n in self.document.nodes() if n.id in chosen]

    def selected_edges(self) -> list[EdgeSpec]:
        return [i.edge for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def selected_group_ids(self) -> list[str]:
        """Ids of the selected closed blocks."""
        return [i.group_id for i in self.selectedItems() if isinstance(i, BlockItem)]

    def selected_note_ids(self) -> list[str]:
        return [i.note_id for i in self.selectedItems() if isinstance(i, NoteItem)]

    def open_block(self, group_id: str) -> None:
        """Open a closed block and scroll its frame into view (its inside may be laid out
        away from where the closed block sits)."""
        self.controller.set_block_open(group_id, True)
        frame = self.frames.get(group_id)
        if frame is not None:
            for view in self.views():
                view.ensureVisible(frame.sceneBoundingRect(), 40, 40)

    def select_group(self, group_id: str) -> None:
        """Select exactly this block (closed), or its nodes (open)."""
        if group_id in self.blocks:
            self.clearSelection()
            self.blocks[group_id].setSelected(True)
        elif self.document.has_group(group_id):
            self.select_nodes(self.document.group(group_id).nodes)

    def select_nodes(self, node_ids) -> None:
        """Select exactly these nodes (a closed block when all its nodes are among them)
        and the notes whose ids are among them (what a paste returns)."""
        wanted = set(node_ids)
        self.clearSelection()
        for node_id in wanted:
            if node_id in self.nodes:
                self.nodes[node_id].setSelected(True)
            elif node_id in self.notes:
                self.notes[node_id].setSelected(True)
        for gid, block in self.blocks.items():  # closed blocks whose nodes are all wanted
            if set(self.document.group(gid).nodes) <= wanted:
                block.setSelected(True)

    def delete_selection(self) -> None:
        """Remove the selected nodes (with their wires) and the selected wires: one undo step."""
        ids, edges = self.selected_node_ids(), self.selected_edges()
        notes, groups = self.selected_note_ids(), self.selected_group_ids()
        if ids or edges or notes or groups:
            self.controller.remove(ids, edges, notes, groups)

    # -- gestures ------------------------------------------------------------------------
    def port_at(self, pos: QPointF) -> PortItem | None:
        self.ensure_ports(QRectF(pos, pos))
        for item in self.items(pos):
            if isinstance(item, PortItem) and item.isVisible():
                return item
        return None

    def wire_label_at(self, pos: QPointF) -> EdgeItem | None:
        """The wire whose shape text is drawn under a scene point, or None (the text is
        part of the wire's painting, not an item of its own)."""
        for item in self.items(pos, Qt.ItemSelectionMode.IntersectsItemBoundingRect):
            if isinstance(item, EdgeItem) and item.isVisible():
                rect = item.label_rect()
                if rect is not None and rect.contains(pos):
                    return item
        return None

    def block_at(self, pos: QPointF) -> BlockItem | None:
        """The closed block under a scene point (its ports count), or None."""
        return self._item_at(pos, BlockItem)

    def node_at(self, pos: QPointF) -> NodeItem | None:
        """The node under a scene point (its ports and badge count), or None."""
        return self._item_at(pos, NodeItem)

    def _item_at(self, pos: QPointF, kind: type):
        for item in self.items(pos):
            while item is not None and not isinstance(item, kind):
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
            selected = self.selectedItems()
            self._press_positions = {
                i.node_id: QPointF(i.pos()) for i in selected if isinstance(i, NodeItem)}
            self._press_blocks = {
                i.group_id: QPointF(i.pos()) for i in selected if isinstance(i, BlockItem)}
            self._press_notes = {
                i.note_id: QPointF(i.pos()) for i in selected if isinstance(i, NoteItem)}
            self._collect_riders(selected)
            self.user_moving = bool(self._press_positions or self._press_blocks
                                    or self._press_notes)

    def _collect_riders(self, selected) -> None:
        """A moved comment frame carries what lies inside it (nodes, blocks, notes)."""
        self._riders = []
        taken = set(selected)
        for frame in selected:
            if not isinstance(frame, NoteItem) or frame.kind != "frame":
                continue
            area = frame.sceneBoundingRect()
            inside = [i for i in list(self.nodes.values()) + list(self.blocks.values())
                      + list(self.notes.values())
                      if i not in taken and i.isVisible()
                      and area.contains(i.sceneBoundingRect())]
            for item in inside:
                taken.add(item)
                self._riders.append((item, item.pos() - frame.pos(), frame))
                if isinstance(item, NodeItem):
                    self._press_positions[item.node_id] = QPointF(item.pos())
                elif isinstance(item, BlockItem):
                    self._press_blocks[item.group_id] = QPointF(item.pos())
                else:
                    self._press_notes[item.note_id] = QPointF(item.pos())

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self.ensure_ports(QRectF(event.scenePos(), event.scenePos()))  # hover follows
        if self._drag is not None:
            self._update_drag(event.scenePos())
            event.accept()
            return
        super().mouseMoveEvent(event)
        if self.user_moving:
            self.cards_moved()
            self._highlight_target_wire()

    def _highlight_target_wire(self) -> None:
        """While one unwired node is dragged, light up the wire it would go into."""
        wire = None
        if len(self._press_positions) == 1 and not self._press_blocks and not self._press_notes:
            node_id = next(iter(self._press_positions))
            item = self.nodes.get(node_id)
            if item is not None and not self._edges_of.get(node_id):
                wire = self.wire_under(item.sceneBoundingRect(), node_id)
        if wire is not self._target_wire:
            for old_or_new, on in ((self._target_wire, False), (wire, True)):
                if old_or_new is not None and old_or_new.scene() is self:
                    old_or_new.set_hover(on)
            self._target_wire = wire

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._drag is not None and event.button() == Qt.MouseButton.LeftButton:
            self._finish_drag(event.scenePos())
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self._commit_move()

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        pos = event.scenePos()
        self.ensure_ports(QRectF(pos, pos))
        for item in self.items(pos):
            if isinstance(item, PortItem) or isinstance(item, NoteItem):
                break
            if isinstance(item, BlockItem):
                self.open_block(item.group_id)
                event.accept()
                return
            if isinstance(item, BlockFrame):
                self.controller.set_block_open(item.group_id, False)
                event.accept()
                return
            if isinstance(item, EdgeItem) and self.node_at(pos) is None:
                self.add_reroute(item, pos)
                event.accept()
                return
            if isinstance(item, NodeItem):
                break
        node = self.node_at(event.scenePos())
        if node is not None and self.port_at(event.scenePos()) is None:
            local = node.mapFromScene(event.scenePos())
            if local.y() <= HEADER_HEIGHT:
                self.rename_requested.emit(node.node_id)
                event.accept()
                return
        super().mouseDoubleClickEvent(event)

    def _commit_move(self) -> None:
        def pair(old: QPointF, new: QPointF) -> tuple:
            return (old.x(), old.y()), (new.x(), new.y())
        moved = {k: pair(old, self.nodes[k].pos()) for k, old in self._press_positions.items()
                 if k in self.nodes and self.nodes[k].pos() != old}
        blocks = {k: pair(old, self.blocks[k].pos()) for k, old in self._press_blocks.items()
                  if k in self.blocks and self.blocks[k].pos() != old}
        notes = {}
        for k, old in self._press_notes.items():
            item = self.notes.get(k)
            if item is not None and item.pos() != old:
                w, h = item.size
                notes[k] = ((old.x(), old.y(), w, h), item.scene_rect())
        self._press_positions, self._press_blocks, self._press_notes = {}, {}, {}
        self._riders = []
        self.user_moving = False
        if self._target_wire is not None:
            if self._target_wire.scene() is self:
                self._target_wire.set_hover(False)
            self._target_wire = None
        if moved or blocks or notes:
            self.controller.move_nodes(moved, blocks, notes)
        if len(moved) == 1 and not blocks and not notes:
            self._drop_on_wire(next(iter(moved)))

    def wire_under(self, rect: QRectF, exclude: str = "") -> EdgeItem | None:
        """A visible wire crossing the middle band of `rect` (not one of `exclude`'s)."""
        band = QRectF(rect.left(), rect.center().y() - 6, rect.width(), 12)
        for item in self.items(band):
            if isinstance(item, EdgeItem) and item.isVisible() and exclude not in (
                    item.edge.src, item.edge.dst):
                return item
        return None

    def _drop_on_wire(self, node_id: str) -> None:
        """A lone node without wires released over a wire goes into that wire."""
        item = self.nodes.get(node_id)
        if item is None or self._edges_of.get(node_id) or node_id in self._closed_in:
            return
        wire = self.wire_under(item.sceneBoundingRect(), node_id)
        if wire is not None:
            reason = self.controller.insert_on_wire(node_id, wire.edge)
            if reason:
                self.feedback.emit(reason, item.scenePos())

    # connect drag: a small state machine (idle -> dragging -> finished/cancelled)
    def _start_drag(self, port: PortItem, pos: QPointF) -> None:
        detached = None
        if port.is_output:
            anchor, from_output = port.node_id, True
        else:
            detached = self.document.incoming(port.node_id, port.name)
            if detached is not None and detached.src in self.nodes:
                # Pick the wire up by its end: it now hangs from its source.
                anchor, from_output = detached.src, True
                self.edges[detached].setVisible(False)
            else:
                detached, anchor, from_output = None, port.node_id, False
        anchor_port = "out" if from_output else port.name
        self._drag = {
            "node": anchor, "port": anchor_port, "from_output": from_output,
            "detached": detached, "target": None,
            "anchor": self.port_scene_pos(anchor, anchor_port, from_output),
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
            node = self.node_at(pos) or self.block_at(pos)
            if node is None or getattr(node, "node_id", None) == drag["node"]:
                return None
            inputs = list(node.inputs.values())
            outputs = [node.output] if isinstance(node, NodeItem) else list(
                node.outputs.values())
            if drag["from_output"]:
                free = [p for p in inputs if not p.connected]
                port = (free or inputs or [None])[0]
            else:
                port = (outputs or [None])[0]
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

    def helpEvent(self, event) -> None:
        """Show the tooltip of the topmost item under the mouse that has one. Qt's own
        version reads the stored C++ text; nodes and ports write theirs when asked."""
        pos = event.scenePos()
        self.ensure_ports(QRectF(pos, pos))
        items = self.items(pos)
        wire = self.wire_label_at(pos)
        if wire is not None:  # its shape text is drawn over it and whatever lies below
            below = next((i for i, item in enumerate(items)
                          if item.zValue() <= wire.zValue()), len(items))
            items.insert(below, wire)
        text = ""
        for item in items:
            text = item.toolTip()
            if text:
                break
        QToolTip.showText(event.screenPos(), text, event.widget())
        event.setAccepted(bool(text))

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape and self._drag is not None:
            self.cancel_drag()
            event.accept()
            return
        focus = self.focusItem()
        if event.key() == Qt.Key.Key_Escape and any(
                focus is n.editor for n in self.notes.values()):
            focus.clearFocus()  # ends the edit: _on_focus_item_changed records the text
            event.accept()
            return
        super().keyPressEvent(event)

    def item_sizes(self, node_ids) -> dict[str, tuple[float, float]]:
        """(width, height) of node items, for align and distribute."""
        return {n: (self.nodes[n].rect().width(), self.nodes[n].rect().height())
                for n in node_ids if n in self.nodes}


def _summary(op_id: str, params: dict) -> str:
    op = registry.get(op_id)
    if op is None:
        return f"? {op_id}"
    try:
        return op.summary(op.resolve_params(params))
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError):
        # a half-edited param must not break painting
        return op.id

