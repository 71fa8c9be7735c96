"""Undo commands. Each holds the document, ids and plain data; redo/undo call its mutators.

Build a command right before pushing it: some constructors read the current document
(what a removal takes away, which wire a connection replaces). QUndoStack.push runs redo.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QUndoCommand

from designer.document.graph_document import GraphDocument, Pos
from engine.core.spec import EdgeSpec, GroupSpec, NodeSpec, NoteSpec

# Merge ids (QUndoCommand.id); -1 means "never merge".
SET_PARAM_ID = 1001
NUDGE_ID = 1002


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
    """Remove nodes, all their wires, some extra wires and notes; undo restores ids and indices.

    A group loses the removed members; a group left empty is removed with them.
    """

    def __init__(self, doc: GraphDocument, node_ids: list[str], edges: list[EdgeSpec] = (),
                 note_ids: list[str] = ()):
        super().__init__()
        self.doc = doc
        self.node_ids = [n for n in dict.fromkeys(node_ids) if doc.has_node(n)]
        self.note_ids = [n for n in dict.fromkeys(note_ids) if doc.has_note(n)]
        chosen = set(self.node_ids)
        wanted = set(edges)
        self.edges = [e for e in doc.edges()
                      if e in wanted or e.src in chosen or e.dst in chosen]
        self.groups = [g for g in doc.groups() if chosen & set(g.nodes)]
        # Filled by redo: what was taken, in the order it was taken.
        self._taken_edges: list[tuple[EdgeSpec, int]] = []
        self._taken_nodes: list[tuple[NodeSpec, Pos, int]] = []
        self._taken_groups: list[tuple[GroupSpec, int]] = []
        self._taken_notes: list[tuple[NoteSpec, int]] = []
        self.setText(self._describe())

    def _describe(self) -> str:
        if not self.node_ids and not self.edges:
            return f"Delete {_count(len(self.note_ids), 'note')}"
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
        return not self.node_ids and not self.edges and not self.note_ids

    def redo(self) -> None:
        chosen = set(self.node_ids)
        self._taken_groups = []
        for g in self.groups:
            kept = tuple(m for m in g.nodes if m not in chosen)
            if kept:
                self.doc.set_group(dataclasses.replace(g, nodes=kept))
            else:
                self._taken_groups.append(self.doc.take_group(g.id))
        self._taken_edges = [(e, self.doc.take_edge(e)) for e in self.edges]
        self._taken_nodes = [self.doc.take_node(n) for n in self.node_ids]
        self._taken_notes = [self.doc.take_note(n) for n in self.note_ids]

    def undo(self) -> None:
        for note, index in reversed(self._taken_notes):
            self.doc.insert_note(note, index)
        for node, pos, index in reversed(self._taken_nodes):
            self.doc.insert_node(node, pos, index)
        for edge, index in reversed(self._taken_edges):
            self.doc.insert_edge(edge, index)
        for group, index in reversed(self._taken_groups):
            self.doc.insert_group(group, index)
        for g in self.groups:
            if self.doc.has_group(g.id):
                self.doc.set_group(g)


class MoveNodes(QUndoCommand):
    """Move nodes {id: (old_pos, new_pos)}, blocks {group id: (old, new)}, notes
    {note id: (old_rect, new_rect)} and wires' reroute points {edge: (old_points,
    new_points)}; pushed once, when the drag ends.

    With `burst` set, consecutive moves of the same items with the same burst number merge
    into one undo step (arrow-key nudges).
    """

    def __init__(self, doc: GraphDocument, moves: dict[str, tuple[Pos, Pos]],
                 text: str | None = None, groups: dict[str, tuple[Pos, Pos]] | None = None,
                 notes: dict[str, tuple[tuple, tuple]] | None = None,
                 burst: int | None = None,
                 waypoints: dict[EdgeSpec, tuple[list[Pos], list[Pos]]] | None = None):
        super().__init__()
        self.doc = doc
        self.waypoints = {e: ([tuple(map(float, p)) for p in a], [tuple(map(float, p)) for p in b])
                          for e, (a, b) in (waypoints or {}).items()}
        self.moves = {k: (tuple(map(float, a)), tuple(map(float, b)))
                      for k, (a, b) in moves.items()}
        self.groups = {k: (tuple(map(float, a)), tuple(map(float, b)))
                       for k, (a, b) in (groups or {}).items()}
        self.notes = {k: (tuple(map(float, a)), tuple(map(float, b)))
                      for k, (a, b) in (notes or {}).items()}
        self.burst = burst
        if text is None:
            names = list(self.moves) + list(self.groups) + list(self.notes)
            word = "node" if not self.groups and not self.notes else "item"
            text = (f"Move {names[0]}" if len(names) == 1
                    else f"Move {_count(len(names), word)}")
        self.setText(text)

    def id(self) -> int:
        return NUDGE_ID if self.burst is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, MoveNodes) or other.burst != self.burst or (
                other.doc is not self.doc):
            return False
        if (set(other.moves), set(other.groups), set(other.notes), set(other.waypoints)) != (
                set(self.moves), set(self.groups), set(self.notes), set(self.waypoints)):
            return False
        for mine, theirs in ((self.moves, other.moves), (self.groups, other.groups),
                             (self.notes, other.notes), (self.waypoints, other.waypoints)):
            for k in mine:
                mine[k] = (mine[k][0], theirs[k][1])
        return True

    def _apply(self, which: int) -> None:
        for node_id, pair in self.moves.items():
            self.doc.set_position(node_id, pair[which])
        for group_id, pair in self.groups.items():
            self.doc.set_group(dataclasses.replace(self.doc.group(group_id),
                                                   position=pair[which]))
        for note_id, pair in self.notes.items():
            self.doc.set_note(dataclasses.replace(self.doc.note(note_id), rect=pair[which]))
        for edge, pair in self.waypoints.items():
            self.doc.set_waypoints(edge, pair[which])

    def redo(self) -> None:
        self._apply(1)

    def undo(self) -> None:
        self._apply(0)


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
    """Add several nodes (appended, ids already unique), the wires among them with their
    reroute points {edge: points}, and notes (ids already unique)."""

    def __init__(self, doc: GraphDocument, nodes: list[tuple[NodeSpec, Pos]],
                 edges: list[EdgeSpec], text: str = "Paste", notes: list[NoteSpec] = (),
                 waypoints: dict[EdgeSpec, list[Pos]] | None = None):
        what = _count(len(nodes), "node")
        if notes:
            what = (f"{what} and {_count(len(notes), 'note')}" if nodes
                    else _count(len(notes), "note"))
        super().__init__(f"{text} {what}")
        self.doc = doc
        self.nodes = [(n, (float(p[0]), float(p[1]))) for n, p in nodes]
        self.edges = list(edges)
        self.notes = list(notes)
        self.waypoints = dict(waypoints or {})

    def redo(self) -> None:
        for node, pos in self.nodes:
            self.doc.insert_node(node, pos)
        for edge in self.edges:
            self.doc.insert_edge(edge)
        for edge, points in self.waypoints.items():
            self.doc.set_waypoints(edge, points)
        for note in self.notes:
            self.doc.insert_note(note)

    def undo(self) -> None:
        for note in reversed(self.notes):
            self.doc.take_note(note.id)
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


class Composite(QUndoCommand):
    """Several commands as one undo step.

    Each step is a function that builds its command; the functions run one after the other
    on the first redo, so each sees the document the previous step left (a command reads
    the document when it is built). Later redos and undos replay the built commands.
    A step may return None (nothing to do).
    """

    def __init__(self, text: str, steps: list[Callable[[], QUndoCommand | None]]):
        super().__init__(text)
        self._steps = list(steps)
        self._done: list[QUndoCommand] | None = None

    def redo(self) -> None:
        if self._done is None:
            self._done = []
            for step in self._steps:
                command = step()
                if command is not None:
                    command.redo()
                    self._done.append(command)
            return
        for command in self._done:
            command.redo()

    def undo(self) -> None:
        for command in reversed(self._done or []):
            command.undo()


class GroupNodes(QUndoCommand):
    """Make existing nodes one named block (they keep their ids, params and wires)."""

    def __init__(self, doc: GraphDocument, group: GroupSpec, text: str | None = None):
        super().__init__(text or f"Group {_count(len(group.nodes), 'node')} as {group.title}")
        self.doc = doc
        self.group = group

    def redo(self) -> None:
        self.doc.insert_group(self.group)

    def undo(self) -> None:
        self.doc.take_group(self.group.id)


class Ungroup(QUndoCommand):
    """Dissolve a block: its nodes stay exactly as they are, shown one by one again."""

    def __init__(self, doc: GraphDocument, group_id: str):
        super().__init__(f"Ungroup {doc.group(group_id).title}")
        self.doc = doc
        self.group_id = group_id
        self._taken: tuple[GroupSpec, int] | None = None

    def redo(self) -> None:
        self._taken = self.doc.take_group(self.group_id)

    def undo(self) -> None:
        group, index = self._taken
        self.doc.insert_group(group, index)


class _Replace(QUndoCommand):
    """Swap a record (a group, a note) for a changed copy with the same id."""

    def __init__(self, text: str, old: Any, new: Any, setter: Callable[[Any], None]):
        super().__init__(text)
        self.old, self.new, self._set = old, new, setter

    def redo(self) -> None:
        self._set(self.new)

    def undo(self) -> None:
        self._set(self.old)


class SetGroup(_Replace):
    """Change a block's title, open/closed state or position."""

    def __init__(self, doc: GraphDocument, group: GroupSpec, text: str):
        super().__init__(text, doc.group(group.id), group, doc.set_group)


class AddNote(QUndoCommand):
    """Add a sticky note or a comment frame."""

    def __init__(self, doc: GraphDocument, note: NoteSpec):
        super().__init__("Add comment frame" if note.kind == "frame" else "Add note")
        self.doc = doc
        self.note = note

    def redo(self) -> None:
        self.doc.insert_note(self.note)

    def undo(self) -> None:
        self.doc.take_note(self.note.id)


class SetNote(_Replace):
    """Change a note's text or rectangle."""

    def __init__(self, doc: GraphDocument, note: NoteSpec, text: str = "Edit note"):
        super().__init__(text, doc.note(note.id), note, doc.set_note)


class SetWaypoints(QUndoCommand):
    """Set the reroute points of one wire."""

    def __init__(self, doc: GraphDocument, edge: EdgeSpec, points: list[Pos], text: str):
        super().__init__(text)
        self.doc = doc
        self.edge = edge
        self.old = doc.waypoints(edge)
        self.new = [(float(x), float(y)) for x, y in points]

    def redo(self) -> None:
        self.doc.set_waypoints(self.edge, self.new)

    def undo(self) -> None:
        self.doc.set_waypoints(self.edge, self.old)
