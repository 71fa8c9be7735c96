"""`GraphDocument`: the one truth of the designer — a graph, its layout and a revision.

Scene items hold node ids only and repaint from the document when it signals. Only undo
commands (designer.document.commands) and `load` call the mutators, so the first "do",
every redo and every undo run the same code path.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.core.compiler import Analysis, analyze
from engine.core.spec import EdgeSpec, GraphSpec, NodeSpec

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
    reset = Signal()
    changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._nodes: list[NodeSpec] = []
        self._edges: list[EdgeSpec] = []
        self._layout: dict[str, Pos] = {}
        self._training: dict[str, Any] = {}
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
        )

    def nodes(self) -> list[NodeSpec]:
        """All nodes in document order."""
        return list(self._nodes)

    def node(self, node_id: str) -> NodeSpec:
        """The node with this id; KeyError if there is none."""
        return self._nodes[self._node_index(node_id)]

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

    def unique_id(self, base: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
        """A free node id made from `base`: "dense", then "dense_2", "dense_3", …

        A trailing "_<number>" of `base` is replaced rather than extended, and ids in
        `taken` count as used too (for several new nodes at once).
        """
        base = re.sub(r"\s+", "_", base.strip().replace("->", "_").replace(".", "_")) or "node"
        used = set(self._layout) | set(taken)
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
        self._layout[node.id] = (float(pos[0]), float(pos[1]))
        self._bump()
        self.node_added.emit(node.id)
        self.changed.emit()

    def take_node(self, node_id: str) -> tuple[NodeSpec, Pos, int]:
        """Remove a node that has no edges left; returns (node, position, index)."""
        if self.edges_of(node_id):
            raise ValueError(f"node {node_id!r} still has wires; remove them first")
        index = self._node_index(node_id)
        node = self._nodes.pop(index)
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
        self._bump()
        self.edge_added.emit(edge)
        self.changed.emit()

    def take_edge(self, edge: EdgeSpec) -> int:
        """Remove a wire; returns the index it had."""
        index = self._edges.index(edge)
        del self._edges[index]
        self._bump()
        self.edge_removed.emit(edge)
        self.changed.emit()
        return index

    def set_params(self, node_id: str, params: dict[str, Any]) -> None:
        """Replace the whole params dict of a node."""
        index = self._node_index(node_id)
        old = self._nodes[index]
        self._nodes[index] = NodeSpec(old.id, old.op, copy.deepcopy(dict(params)))
        self._bump()
        self.node_changed.emit(node_id)
        self.changed.emit()

    def rename_node(self, old: str, new: str) -> None:
        """Give a node a new id; its edges and position follow."""
        if new in self._layout:
            raise ValueError(f"a node with id {new!r} already exists")
        index = self._node_index(old)
        node = self._nodes[index]
        self._nodes[index] = NodeSpec(new, node.op, node.params)
        self._edges = [
            EdgeSpec(new if e.src == old else e.src, e.src_port,
                     new if e.dst == old else e.dst, e.dst_port)
            for e in self._edges
        ]
        # Keep the layout dict's order stable apart from the key.
        self._layout = {(new if k == old else k): v for k, v in self._layout.items()}
        self._bump()
        self.node_renamed.emit(old, new)
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

    def load(self, spec: GraphSpec) -> None:
        """Replace everything with `spec`; nodes without a layout entry go to (0, 0).

        Edges must refer to nodes of the spec (serialize.load_file checks this).
        """
        ids = {n.id for n in spec.nodes}
        for e in spec.edges:
            for end in (e.src, e.dst):
                if end not in ids:
                    raise ValueError(f"the wire {e.key} refers to a missing node {end!r}")
        self._nodes = [NodeSpec(n.id, n.op, copy.deepcopy(dict(n.params))) for n in spec.nodes]
        self._edges = list(spec.edges)
        self._layout = {}
        for n in spec.nodes:
            x, y = spec.layout.get(n.id, (0.0, 0.0))
            self._layout[n.id] = (float(x), float(y))
        self._training = copy.deepcopy(dict(spec.training))
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

    def _bump(self) -> None:
        self.revision += 1
