"""`GraphDocument`: the one truth of the designer — a graph, its layout and a revision.

Scene items hold node ids only and repaint from the document when it signals. Only undo
commands (designer.document.commands) and `load` call the mutators, so the first "do",
every redo and every undo run the same code path.
"""

from __future__ import annotations

import copy
import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.core.compiler import Analysis, analyze
from engine.core.spec import EdgeSpec, GraphSpec, GroupSpec, NodeSpec, NoteSpec

Pos = tuple[float, float]

_SUFFIX = re.compile(r"^(.*\S)_(\d+)$")


class GraphDocument(QObject):
    """Nodes (in order), edges (in order), a position per node, training settings.

    Every mutator changes the data, increments `revision`, then emits its own signal and
    then `changed`. NodeSpec/EdgeSpec values handed out are frozen; treat their params
    dicts as read-only (use the controller to change them).
    """

    node_added = Signal(str)
    node_removed = Signal(str)
    node_changed = Signal(str)
    node_renamed = Signal(str, str)
    node_moved = Signal(str)
    edge_added = Signal(object)
    edge_removed = Signal(object)
    training_changed = Signal()
    group_added = Signal(str)
    group_removed = Signal(str)
    group_changed = Signal(str)
    note_added = Signal(str)
    note_removed = Signal(str)
    note_changed = Signal(str)
    waypoints_changed = Signal(str)  # an edge key
    reset = Signal()
    changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._nodes: list[NodeSpec] = []
        self._by_id: dict[str, NodeSpec] = {}  # the same nodes by id: lookups are hot
        self._edges: list[EdgeSpec] = []
        self._layout: dict[str, Pos] = {}
        self._training: dict[str, Any] = {}
        self._groups: list[GroupSpec] = []
        self._notes: list[NoteSpec] = []
        self._waypoints: dict[str, list[Pos]] = {}
        # Bends of wires that were taken out: a wire put back (undo) gets them again.
        self._parked_waypoints: dict[str, list[Pos]] = {}
        self.revision = 0
        self._analysis: tuple[int, Analysis] | None = None
        self._positions: dict[str, int] = {}  # node id -> index in _nodes (see _node_index)

    # -- reading ---------------------------------------------------------------------

    def spec(self) -> GraphSpec:
        """The whole document as an engine GraphSpec (with layout and training)."""
        return GraphSpec(
            nodes=tuple(self._nodes),
            edges=tuple(self._edges),
            layout={n.id: list(self._layout[n.id]) for n in self._nodes},
            training=copy.deepcopy(self._training),
            groups=tuple(self._groups),
            notes=tuple(self._notes),
            waypoints={k: [list(p) for p in v] for k, v in self._waypoints.items() if v},
        )

    def nodes(self) -> list[NodeSpec]:
        """All nodes in document order."""
        return list(self._nodes)

    def node(self, node_id: str) -> NodeSpec:
        """The node with this id; KeyError if there is none."""
        return self._by_id[node_id]

    def has_node(self, node_id: str) -> bool:
        return node_id in self._layout

    def edges(self) -> list[EdgeSpec]:
        """All edges in document order."""
        return list(self._edges)

    def has_edge(self, edge: EdgeSpec) -> bool:
        return edge in self._edges

    def edges_of(self, node_id: str) -> list[EdgeSpec]:
        """Edges that start or end at this node, in document order."""
        return [e for e in self._edges if e.src == node_id or e.dst == node_id]

    def incoming(self, node_id: str, port: str) -> EdgeSpec | None:
        """The wire plugged into input `port` of `node_id`, or None."""
        for e in self._edges:
            if e.dst == node_id and e.dst_port == port:
                return e
        return None

    def position(self, node_id: str) -> Pos:
        """Scene position (x, y) of the node; KeyError if there is none."""
        return self._layout[node_id]

    def training(self) -> dict[str, Any]:
        """A copy of the training settings block."""
        return copy.deepcopy(self._training)

    def groups(self) -> list[GroupSpec]:
        """All groups (blocks) in document order."""
        return list(self._groups)

    def group(self, group_id: str) -> GroupSpec:
        """The group with this id; KeyError if there is none."""
        return self._groups[self._group_index(group_id)]

    def has_group(self, group_id: str) -> bool:
        return any(g.id == group_id for g in self._groups)

    def group_of(self, node_id: str) -> GroupSpec | None:
        """The group a node belongs to, or None."""
        for g in self._groups:
            if node_id in g.nodes:
                return g
        return None

    def notes(self) -> list[NoteSpec]:
        """Sticky notes and comment frames in document order."""
        return list(self._notes)

    def note(self, note_id: str) -> NoteSpec:
        for n in self._notes:
            if n.id == note_id:
                return n
        raise KeyError(note_id)

    def has_note(self, note_id: str) -> bool:
        return any(n.id == note_id for n in self._notes)

    def waypoints(self, edge: EdgeSpec) -> list[Pos]:
        """The reroute points a wire passes through, in order (usually none)."""
        return list(self._waypoints.get(edge.key, ()))

    def unique_id(self, base: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
        """A free node id made from `base`: "dense", then "dense_2", "dense_3", …

        A trailing "_<number>" of `base` is replaced rather than extended, and ids in
        `taken` count as used too (for several new nodes at once).
        """
        base = re.sub(r"\s+", "_", base.strip().replace("->", "_").replace(".", "_")) or "node"
        used = set(self._layout) | set(taken) | {g.id for g in self._groups} | {
            n.id for n in self._notes}
        if base not in used:
            return base
        m = _SUFFIX.match(base)
        stem = m.group(1) if m else base
        n = 2
        while f"{stem}_{n}" in used:
            n += 1
        return f"{stem}_{n}"

    def analysis(self) -> Analysis:
        """Shapes and diagnostics of the current graph, computed once per revision."""
        if self._analysis is None or self._analysis[0] != self.revision:
            self._analysis = (self.revision, analyze(self.spec(), require_loss=True))
        return self._analysis[1]

    # -- low-level mutators (undo commands and load only) ----------------------------

    def insert_node(self, node: NodeSpec, pos: Pos, index: int | None = None) -> None:
        """Insert a node at `index` (default: the end) at scene position `pos`."""
        if node.id in self._layout:
            raise ValueError(f"a node with id {node.id!r} already exists")
        node = NodeSpec(node.id, node.op, copy.deepcopy(dict(node.params)))
        if index is None:
            index = len(self._nodes)
        self._nodes.insert(index, node)
        self._by_id[node.id] = node
        self._layout[node.id] = (float(pos[0]), float(pos[1]))
        self._bump()
        self.node_added.emit(node.id)
        self.changed.emit()

    def take_node(self, node_id: str) -> tuple[NodeSpec, Pos, int]:
        """Remove a node that has no edges left and is in no group; returns
        (node, position, index)."""
        if self.edges_of(node_id):
            raise ValueError(f"node {node_id!r} still has wires; remove them first")
        if self.group_of(node_id) is not None:
            raise ValueError(f"node {node_id!r} is in a group; take it out first")
        index = self._node_index(node_id)
        node = self._nodes.pop(index)
        del self._by_id[node_id]
        pos = self._layout.pop(node_id)
        self._bump()
        self.node_removed.emit(node_id)
        self.changed.emit()
        return node, pos, index

    def insert_edge(self, edge: EdgeSpec, index: int | None = None) -> None:
        """Insert a wire at `index` (default: the end); both nodes must exist."""
        for end in (edge.src, edge.dst):
            if end not in self._layout:
                raise KeyError(end)
        if edge in self._edges:
            raise ValueError(f"the wire {edge.key} already exists")
        if index is None:
            index = len(self._edges)
        self._edges.insert(index, edge)
        parked = self._parked_waypoints.pop(edge.key, None)
        if parked:
            self._waypoints[edge.key] = parked
        self._bump()
        self.edge_added.emit(edge)
        self.changed.emit()

    def take_edge(self, edge: EdgeSpec) -> int:
        """Remove a wire; returns the index it had."""
        index = self._edges.index(edge)
        del self._edges[index]
        if edge.key in self._waypoints:
            self._parked_waypoints[edge.key] = self._waypoints.pop(edge.key)
        self._bump()
        self.edge_removed.emit(edge)
        self.changed.emit()
        return index

    def set_params(self, node_id: str, params: dict[str, Any]) -> None:
        """Replace the whole params dict of a node."""
        index = self._node_index(node_id)
        old = self._nodes[index]
        self._nodes[index] = self._by_id[node_id] = NodeSpec(old.id, old.op,
                                                             copy.deepcopy(dict(params)))
        self._bump()
        self.node_changed.emit(node_id)
        self.changed.emit()

    def rename_node(self, old: str, new: str) -> None:
        """Give a node a new id; its edges and position follow."""
        if new in self._layout:
            raise ValueError(f"a node with id {new!r} already exists")
        index = self._node_index(old)
        node = self._nodes[index]
        self._nodes[index] = self._by_id[new] = NodeSpec(new, node.op, node.params)
        del self._by_id[old]
        renamed = []
        for e in self._edges:
            r = EdgeSpec(new if e.src == old else e.src, e.src_port,
                         new if e.dst == old else e.dst, e.dst_port)
            if r != e and e.key in self._waypoints:
                self._waypoints[r.key] = self._waypoints.pop(e.key)
            renamed.append(r)
        self._edges = renamed
        changed_groups = []
        for i, g in enumerate(self._groups):
            if old in g.nodes:
                members = tuple(new if m == old else m for m in g.nodes)
                self._groups[i] = GroupSpec(g.id, g.title, members, g.collapsed, g.position)
                changed_groups.append(g.id)
        # Keep the layout dict's order stable apart from the key.
        self._layout = {(new if k == old else k): v for k, v in self._layout.items()}
        self._bump()
        self.node_renamed.emit(old, new)
        for gid in changed_groups:
            self.group_changed.emit(gid)
        self.changed.emit()

    def set_position(self, node_id: str, pos: Pos) -> None:
        """Move a node to scene position `pos`."""
        if node_id not in self._layout:
            raise KeyError(node_id)
        self._layout[node_id] = (float(pos[0]), float(pos[1]))
        self._bump()
        self.node_moved.emit(node_id)
        self.changed.emit()

    def set_training(self, training: dict[str, Any]) -> None:
        """Replace the training settings block."""
        self._training = copy.deepcopy(dict(training))
        self._bump()
        self.training_changed.emit()
        self.changed.emit()

    def insert_group(self, group: GroupSpec, index: int | None = None) -> None:
        """Add a group over existing nodes that are in no other group."""
        if self.has_group(group.id) or group.id in self._layout:
            raise ValueError(f"the id {group.id!r} is already used")
        for m in group.nodes:
            if m not in self._layout:
                raise KeyError(m)
            if self.group_of(m) is not None:
                raise ValueError(f"node {m!r} is already in a group")
        self._groups.insert(len(self._groups) if index is None else index, group)
        self._bump()
        self.group_added.emit(group.id)
        self.changed.emit()

    def take_group(self, group_id: str) -> tuple[GroupSpec, int]:
        """Remove a group (its nodes stay); returns (group, index)."""
        index = self._group_index(group_id)
        group = self._groups.pop(index)
        self._bump()
        self.group_removed.emit(group_id)
        self.changed.emit()
        return group, index

    def set_group(self, group: GroupSpec) -> None:
        """Replace the group with the same id (title, members, collapsed, position)."""
        index = self._group_index(group.id)
        for m in group.nodes:
            owner = self.group_of(m)
            if m not in self._layout or (owner is not None and owner.id != group.id):
                raise ValueError(f"node {m!r} cannot join group {group.id!r}")
        self._groups[index] = group
        self._bump()
        self.group_changed.emit(group.id)
        self.changed.emit()

    def insert_note(self, note: NoteSpec, index: int | None = None) -> None:
        """Add a sticky note or comment frame."""
        if self.has_note(note.id):
            raise ValueError(f"a note with id {note.id!r} already exists")
        self._notes.insert(len(self._notes) if index is None else index, note)
        self._bump()
        self.note_added.emit(note.id)
        self.changed.emit()

    def take_note(self, note_id: str) -> tuple[NoteSpec, int]:
        """Remove a note; returns (note, index)."""
        index = next(i for i, n in enumerate(self._notes) if n.id == note_id)
        note = self._notes.pop(index)
        self._bump()
        self.note_removed.emit(note_id)
        self.changed.emit()
        return note, index

    def set_note(self, note: NoteSpec) -> None:
        """Replace the note with the same id (text, rect)."""
        index = next(i for i, n in enumerate(self._notes) if n.id == note.id)
        self._notes[index] = note
        self._bump()
        self.note_changed.emit(note.id)
        self.changed.emit()

    def set_waypoints(self, edge: EdgeSpec, points: list[Pos]) -> None:
        """Set the reroute points of a wire (an empty list makes it straight again)."""
        if edge not in self._edges:
            raise KeyError(edge.key)
        if points:
            self._waypoints[edge.key] = [(float(x), float(y)) for x, y in points]
        else:
            self._waypoints.pop(edge.key, None)
        self._bump()
        self.waypoints_changed.emit(edge.key)
        self.changed.emit()

    def load(self, spec: GraphSpec) -> None:
        """Replace everything with `spec`; nodes without a layout entry go to (0, 0).

        Edges must refer to nodes of the spec (serialize.load_file checks this).
        """
        with _collections_paused():
            self._load(spec)

    def _load(self, spec: GraphSpec) -> None:
        ids = {n.id for n in spec.nodes}
        for e in spec.edges:
            for end in (e.src, e.dst):
                if end not in ids:
                    raise ValueError(f"the wire {e.key} refers to a missing node {end!r}")
        self._nodes = [NodeSpec(n.id, n.op, copy.deepcopy(dict(n.params))) for n in spec.nodes]
        self._by_id = {n.id: n for n in self._nodes}
        self._edges = list(spec.edges)
        self._layout = {}
        for n in spec.nodes:
            x, y = spec.layout.get(n.id, (0.0, 0.0))
            self._layout[n.id] = (float(x), float(y))
        self._training = copy.deepcopy(dict(spec.training))
        self._groups = [g for g in spec.groups if all(m in ids for m in g.nodes)]
        self._notes = list(spec.notes)
        keys = {e.key for e in spec.edges}
        self._waypoints = {k: [(float(x), float(y)) for x, y in v]
                           for k, v in spec.waypoints.items() if k in keys and v}
        self._parked_waypoints = {}
        self._bump()
        self.reset.emit()
        self.changed.emit()

    # -- helpers ---------------------------------------------------------------------

    def _node_index(self, node_id: str) -> int:
        """Position of a node in the list: a dict lookup, checked against the list (ids are
        unique, so a match is right) and rebuilt after inserts, removals and renames."""
        i = self._positions.get(node_id, -1)
        if not (0 <= i < len(self._nodes) and self._nodes[i].id == node_id):
            self._positions = {n.id: k for k, n in enumerate(self._nodes)}
            i = self._positions.get(node_id, -1)
            if i < 0:
                raise KeyError(node_id)
        return i

    def _group_index(self, group_id: str) -> int:
        for i, g in enumerate(self._groups):
            if g.id == group_id:
                return i
        raise KeyError(group_id)

    def _bump(self) -> None:
        self.revision += 1


@contextmanager
def _collections_paused() -> Iterator[None]:
    """Hold Python's cyclic garbage collector off while a document loads. Loading a big
    file makes hundreds of thousands of long-lived objects (specs, then canvas items and
    their wrappers); each time they grow the heap by a quarter the collector walks all of
    them, which took a fifth of opening a 20,000-node graph. Afterwards it runs as usual."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
