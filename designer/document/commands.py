"""Undo commands. Each holds the document, ids and plain data; redo/undo call its mutators.

Build a command right before pushing it: some constructors read the current document
(what a removal takes away, which wire a connection replaces). QUndoStack.push runs redo.
"""

from __future__ import annotations

import copy
from typing import Any

from PySide6.QtGui import QUndoCommand

from designer.document.graph_document import GraphDocument, Pos
from engine.core.spec import EdgeSpec, NodeSpec

# Merge ids (QUndoCommand.id); -1 means "never merge".
SET_PARAM_ID = 1001


def wire_text(edge: EdgeSpec) -> str:
    """Readable wire name: "h1 → a1", or "h1 → loss.target" for a named input."""
    dst = edge.dst if edge.dst_port == "in" else f"{edge.dst}.{edge.dst_port}"
    return f"{edge.src} → {dst}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class AddNode(QUndoCommand):
    """Add one node at a position (text "Add Dense")."""

    def __init__(self, doc: GraphDocument, node: NodeSpec, pos: Pos, index: int | None = None):
        super().__init__(f"Add {node.op}")
        self.doc = doc
        self.node = node
        self.pos = (float(pos[0]), float(pos[1]))
        self.index = len(doc.nodes()) if index is None else index

    def redo(self) -> None:
        self.doc.insert_node(self.node, self.pos, self.index)

    def undo(self) -> None:
        self.doc.take_node(self.node.id)


class RemoveItems(QUndoCommand):
    """Remove nodes, all their wires and some extra wires; undo restores ids and indices."""

    def __init__(self, doc: GraphDocument, node_ids: list[str], edges: list[EdgeSpec] = ()):
        super().__init__()
        self.doc = doc
        self.node_ids = [n for n in dict.fromkeys(node_ids) if doc.has_node(n)]
        chosen = set(self.node_ids)
        wanted = set(edges)
        self.edges = [e for e in doc.edges()
                      if e in wanted or e.src in chosen or e.dst in chosen]
        # Filled by redo: what was taken, in the order it was taken.
        self._taken_edges: list[tuple[EdgeSpec, int]] = []
        self._taken_nodes: list[tuple[NodeSpec, Pos, int]] = []
        self.setText(self._describe())

    def _describe(self) -> str:
        if len(self.node_ids) == 1 and all(
                self.node_ids[0] in (e.src, e.dst) for e in self.edges):
            return f"Delete {self.node_ids[0]}"
        if not self.node_ids and len(self.edges) == 1:
            return f"Delete wire {wire_text(self.edges[0])}"
        if not self.node_ids:
            return f"Delete {_count(len(self.edges), 'wire')}"
        return f"Delete {_count(len(self.node_ids), 'node')}"

    def is_empty(self) -> bool:
        """True if there is nothing to remove."""
        return not self.node_ids and not self.edges

    def redo(self) -> None:
        self._taken_edges = [(e, self.doc.take_edge(e)) for e in self.edges]
        self._taken_nodes = [self.doc.take_node(n) for n in self.node_ids]

    def undo(self) -> None:
        for node, pos, index in reversed(self._taken_nodes):
            self.doc.insert_node(node, pos, index)
        for edge, index in reversed(self._taken_edges):
            self.doc.insert_edge(edge, index)


class MoveNodes(QUndoCommand):
    """Move nodes: {id: (old_pos, new_pos)}; pushed once, when the drag ends."""

    def __init__(self, doc: GraphDocument, moves: dict[str, tuple[Pos, Pos]],
                 text: str | None = None):
        super().__init__()
        self.doc = doc
        self.moves = {k: (tuple(map(float, a)), tuple(map(float, b)))
                      for k, (a, b) in moves.items()}
        if text is None:
            text = (f"Move {next(iter(self.moves))}" if len(self.moves) == 1
                    else f"Move {_count(len(self.moves), 'node')}")
        self.setText(text)

    def redo(self) -> None:
        for node_id, (_, new) in self.moves.items():
            self.doc.set_position(node_id, new)

    def undo(self) -> None:
        for node_id, (old, _) in self.moves.items():
            self.doc.set_position(node_id, old)


class Connect(QUndoCommand):
    """Add a wire; a wire already in that input is replaced in the same step."""

    def __init__(self, doc: GraphDocument, edge: EdgeSpec):
        super().__init__(f"Connect {wire_text(edge)}")
        self.doc = doc
        self.edge = edge
        self.replaced = doc.incoming(edge.dst, edge.dst_port)
        self._index: int | None = None

    def redo(self) -> None:
        if self.replaced is not None:
            self._index = self.doc.take_edge(self.replaced)
            self.doc.insert_edge(self.edge, self._index)
        else:
            self.doc.insert_edge(self.edge)

    def undo(self) -> None:
        self.doc.take_edge(self.edge)
        if self.replaced is not None:
            self.doc.insert_edge(self.replaced, self._index)


class Disconnect(QUndoCommand):
    """Remove one wire."""

    def __init__(self, doc: GraphDocument, edge: EdgeSpec):
        super().__init__(f"Disconnect {wire_text(edge)}")
        self.doc = doc
        self.edge = edge
        self._index = 0

    def redo(self) -> None:
        self._index = self.doc.take_edge(self.edge)

    def undo(self) -> None:
        self.doc.insert_edge(self.edge, self._index)


class SetParam(QUndoCommand):
    """Set one param; consecutive edits of the same node+param merge into one step."""

    def __init__(self, doc: GraphDocument, node_id: str, name: str, value: Any,
                 merge: bool = True):
        super().__init__(f"Set {node_id}.{name} = {value!r}")
        self.doc = doc
        self.node_id = node_id
        self.name = name
        self.merge = merge
        self.old = copy.deepcopy(dict(doc.node(node_id).params))
        self.new = dict(self.old)
        self.new[name] = copy.deepcopy(value)

    def id(self) -> int:
        return SET_PARAM_ID if self.merge else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetParam) or not other.merge:
            return False
        if (other.doc is not self.doc or other.node_id != self.node_id
                or other.name != self.name):
            return False
        self.new = other.new
        self.setText(other.text())
        return True

    def redo(self) -> None:
        self.doc.set_params(self.node_id, self.new)

    def undo(self) -> None:
        self.doc.set_params(self.node_id, self.old)


class RenameNode(QUndoCommand):
    """Give a node a new id; its wires and position follow."""

    def __init__(self, doc: GraphDocument, old: str, new: str):
        super().__init__(f"Rename {old} → {new}")
        self.doc = doc
        self.old = old
        self.new = new

    def redo(self) -> None:
        self.doc.rename_node(self.old, self.new)

    def undo(self) -> None:
        self.doc.rename_node(self.new, self.old)


class PasteItems(QUndoCommand):
    """Add several nodes (appended, ids already unique) and the wires among them."""

    def __init__(self, doc: GraphDocument, nodes: list[tuple[NodeSpec, Pos]],
                 edges: list[EdgeSpec], text: str = "Paste"):
        super().__init__(f"{text} {_count(len(nodes), 'node')}")
        self.doc = doc
        self.nodes = [(n, (float(p[0]), float(p[1]))) for n, p in nodes]
        self.edges = list(edges)

    def redo(self) -> None:
        for node, pos in self.nodes:
            self.doc.insert_node(node, pos)
        for edge in self.edges:
            self.doc.insert_edge(edge)

    def undo(self) -> None:
        for edge in reversed(self.edges):
            self.doc.take_edge(edge)
        for node, _ in reversed(self.nodes):
            self.doc.take_node(node.id)


class SetTraining(QUndoCommand):
    """Replace the training settings block."""

    def __init__(self, doc: GraphDocument, training: dict[str, Any],
                 text: str = "Change training settings"):
        super().__init__(text)
        self.doc = doc
        self.old = doc.training()
        self.new = copy.deepcopy(dict(training))

    def redo(self) -> None:
        self.doc.set_training(self.new)

    def undo(self) -> None:
        self.doc.set_training(self.old)
