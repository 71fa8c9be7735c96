"""`Controller`: turns gestures into undo commands; owns the document, the undo stack,
the file path, copy/paste and autosave.

Autosave and recovery rule: each running session writes its recovery file
``autosave-<pid>-<token>.json`` into the recovery folder and holds the QLockFile
``autosave-<pid>-<token>.lock`` next to it. A recovery file is a *candidate* (left over by a
crashed session) when nobody holds its lock: QLockFile treats a lock whose process is gone
as stale, and a file without a lock is unowned. Files of live sessions are never offered.
A clean exit, a save, new, open and revert delete the session's own file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from pathlib import Path
from typing import Any

from PySide6.QtCore import QLockFile, QObject, QStandardPaths, QTimer, Signal
from PySide6.QtGui import QUndoStack

from designer.document import commands as cmd
from designer.document.blocks import BlockLibrary, block_spec, check_block
from designer.document.graph_document import GraphDocument, Pos
from designer.document.layout import follow_ends, layered_layout
from designer.document.serialize import check_editable, load_file, save_file, to_json
from engine.core import registry
from engine.core.compiler import analyze
from engine.core.spec import (
    EdgeSpec,
    GraphSpec,
    GroupSpec,
    NodeSpec,
    NoteSpec,
    atomic_write_bytes,
)
from engine.errors import FileFormatError

PASTE_OFFSET = 30.0
AUTOSAVE_INTERVAL_MS = 60_000
ALIGN_MODES = ("left", "hcenter", "right", "top", "vcenter", "bottom")


class Controller(QObject):
    """Owns the GraphDocument and its QUndoStack; every edit goes through here.

    Methods that can be refused return None when done, else a sentence saying why not.
    """

    modified_changed = Signal(bool)
    path_changed = Signal(object)
    message = Signal(str)

    def __init__(self, parent: QObject | None = None, recovery_dir: str | Path | None = None,
                 blocks_dir: str | Path | None = None):
        super().__init__(parent)
        self.blocks = BlockLibrary(blocks_dir)
        self.document = GraphDocument(self)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self._path: Path | None = None
        self._last_paste: tuple[str, int] = ("", 0)
        self._before: tuple[int, set[tuple[str | None, str]]] | None = None
        self._recovery_dir = Path(recovery_dir) if recovery_dir is not None else None
        self._token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._lock: QLockFile | None = None
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(AUTOSAVE_INTERVAL_MS)
        self.autosave_timer.timeout.connect(self.autosave)

    # -- state -----------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The file the document was opened from or saved to, or None if untitled."""
        return self._path

    def _set_path(self, path: Path | None) -> None:
        if path != self._path:
            self._path = path
            self.path_changed.emit(path)

    def _on_clean_changed(self, clean: bool) -> None:
        self.modified_changed.emit(not clean)

    def is_modified(self) -> bool:
        """True if there are edits since the last save/open/new."""
        return not self.undo_stack.isClean()

    # -- editing ---------------------------------------------------------------------

    def add_node(self, op_id: str, pos: Pos) -> str:
        """Add a node of op `op_id` with default params at `pos`; returns its new id.

        Returns "" (and emits `message`) if the op is unknown.
        """
        op = registry.get(op_id)
        if op is None:
            self.message.emit(f"There is no op called '{op_id}'.")
            return ""
        node_id = self.document.unique_id(op.id.lower())
        node = NodeSpec(node_id, op.id, op.resolve_params({}))
        self.undo_stack.push(cmd.AddNode(self.document, node, pos))
        return node_id

    def can_connect(self, src_id: str, dst_id: str, dst_port: str,
                    src_port: str = "out") -> str | None:
        """None if a wire from `src_id`'s output into `dst_id`.`dst_port` is fine, else why not.

        Refuses unknown nodes/ports, output-to-output and input-to-input, self-loops,
        cycles and wires that give the destination a new compiler diagnostic (a shape
        mismatch, for instance). A wire already in that input would be replaced.
        """
        doc = self.document
        for end in (src_id, dst_id):
            if not doc.has_node(end):
                return f"There is no node '{end}'."
        if src_port != "out":
            return ("Wires go from an output (on the right of a node) into an input "
                    "(on the left); this would join two inputs.")
        if dst_port == "out":
            return "Wires go from an output into an input; this would join two outputs."
        op = registry.get(doc.node(dst_id).op)
        if op is None:
            return f"Node '{dst_id}' uses the unknown op '{doc.node(dst_id).op}'."
        ports = [p.name for p in op.inputs]
        if dst_port not in ports:
            where = f"its inputs are {', '.join(ports)}" if ports else "it has no inputs"
            return f"{op.id} node '{dst_id}' has no input '{dst_port}'; {where}."
        if src_id == dst_id:
            return "A node cannot feed its own input: that would be a loop."
        if self._reaches(dst_id, src_id):
            return f"This wire would make a loop: {dst_id} already feeds {src_id}."
        edge = EdgeSpec(src_id, "out", dst_id, dst_port)
        if doc.has_edge(edge):
            return None
        return self._new_diagnostic(edge)

    def _reaches(self, start: str, goal: str) -> bool:
        """True if a path of wires leads from `start` to `goal` (iterative DFS)."""
        succs: dict[str, list[str]] = {}
        for e in self.document.edges():
            succs.setdefault(e.src, []).append(e.dst)
        seen: set[str] = set()
        stack = [start]
        while stack:
            n = stack.pop()
            if n == goal:
                return True
            if n in seen:
                continue
            seen.add(n)
            stack.extend(succs.get(n, ()))
        return False

    def _new_diagnostic(self, edge: EdgeSpec) -> str | None:
        """The first diagnostic on edge.dst that the wire would add, if any."""
        spec = self.document.spec()
        # Hovering over ports asks many times per revision: reuse the "before" analysis.
        if self._before is None or self._before[0] != self.document.revision:
            self._before = (self.document.revision,
                            {(d.node, d.message)
                             for d in analyze(spec, require_loss=False).diagnostics})
        before = self._before[1]
        old = self.document.incoming(edge.dst, edge.dst_port)
        edges = [edge if e == old else e for e in spec.edges]
        if old is None:
            edges.append(edge)
        trial = GraphSpec(spec.nodes, tuple(edges))
        for d in analyze(trial, require_loss=False).diagnostics:
            if d.node == edge.dst and (d.node, d.message) not in before:
                return d.message
        return None

    def connect(self, src_id: str, dst_id: str, dst_port: str) -> str | None:
        """Wire `src_id`.out into `dst_id`.`dst_port` (one undo step, replacing an old wire).

        Returns None when done (or already connected), else the reason it was refused.
        """
        reason = self.can_connect(src_id, dst_id, dst_port)
        if reason is not None:
            return reason
        edge = EdgeSpec(src_id, "out", dst_id, dst_port)
        if not self.document.has_edge(edge):
            self.undo_stack.push(cmd.Connect(self.document, edge))
        return None

    def rewire(self, old: EdgeSpec | None, src_id: str, dst_id: str,
               dst_port: str) -> str | None:
        """Move a wire: take `old` away and connect src → dst.port, as one undo step.

        Returns None when done, else the reason (and nothing changes).
        """
        reason = self.can_connect(src_id, dst_id, dst_port)
        if reason is not None:
            return reason
        self.undo_stack.beginMacro(f"Connect {src_id} → {dst_id}.{dst_port}")
        if old is not None:
            self.disconnect(old)
        reason = self.connect(src_id, dst_id, dst_port)
        self.undo_stack.endMacro()
        return reason

    def add_node_wired(self, op_id: str, pos: Pos, pending) -> tuple[str, str | None]:
        """Add a node and wire it to a half-drawn wire, as one undo step.

        `pending` is ("from", src_id) (the new node's first input takes src.out) or
        ("into", dst_id, port) (the new node feeds dst.port), or None. Returns the new id
        ("" if the op is unknown) and the reason the wire was refused, if it was.
        """
        self.undo_stack.beginMacro(f"Add {op_id}")
        node_id = self.add_node(op_id, pos)
        reason = None
        if node_id and pending:
            if pending[0] == "from":
                op = registry.get(op_id)
                ports = [p.name for p in op.inputs] if op else []
                if ports:
                    reason = self.connect(pending[1], node_id, ports[0])
            else:
                reason = self.connect(node_id, pending[1], pending[2])
        self.undo_stack.endMacro()
        return node_id, reason

    def disconnect(self, edge: EdgeSpec) -> None:
        """Remove one wire (ignored if it is not in the document)."""
        if self.document.has_edge(edge):
            self.undo_stack.push(cmd.Disconnect(self.document, edge))

    def remove(self, node_ids: list[str], edges: list[EdgeSpec] = (),
               note_ids: list[str] = (), group_ids: list[str] = ()) -> None:
        """Delete nodes (with all their wires), extra wires, notes and whole blocks (a block
        with all its nodes), as one undo step."""
        ids = list(node_ids)
        for gid in group_ids:
            if self.document.has_group(gid):
                ids.extend(self.document.group(gid).nodes)
        command = cmd.RemoveItems(self.document, ids, list(edges), list(note_ids))
        if not command.is_empty():
            self.undo_stack.push(command)

    def move_nodes(self, moves: dict[str, tuple[Pos, Pos]],
                   groups: dict[str, tuple[Pos, Pos]] | None = None,
                   notes: dict[str, tuple[tuple, tuple]] | None = None,
                   burst: int | None = None) -> None:
        """Record a finished move as one undo step (no-op moves dropped): nodes
        {id: (old, new)}, collapsed blocks {group id: (old, new)} and notes
        {note id: (old_rect, new_rect)}. A moved collapsed block takes its hidden nodes
        along. Moves with the same `burst` number merge into one step (arrow-key nudges).
        """
        doc = self.document
        real = {k: (old, new) for k, (old, new) in moves.items()
                if doc.has_node(k) and tuple(old) != tuple(new)}
        real_groups = {k: (old, new) for k, (old, new) in (groups or {}).items()
                       if doc.has_group(k) and tuple(old) != tuple(new)}
        for gid, (old, new) in real_groups.items():
            dx, dy = new[0] - old[0], new[1] - old[1]
            for m in doc.group(gid).nodes:
                if m not in real:
                    x, y = doc.position(m)
                    real[m] = ((x, y), (x + dx, y + dy))
        real_notes = {k: (old, new) for k, (old, new) in (notes or {}).items()
                      if doc.has_note(k) and tuple(old) != tuple(new)}
        if real or real_groups or real_notes:
            text = "Nudge" if burst is not None else None
            self.undo_stack.push(cmd.MoveNodes(doc, real, text, real_groups, real_notes,
                                               burst, self._waypoints_following(real)))

    def _waypoints_following(self, moves: dict[str, tuple[Pos, Pos]]
                             ) -> dict[EdgeSpec, tuple[list[Pos], list[Pos]]]:
        """The reroute points of wires whose ends move by `moves` {id: (old, new)}, moved
        along with them (see layout.follow_ends): {edge: (old points, new points)}."""
        doc = self.document
        step = {k: (new[0] - old[0], new[1] - old[1]) for k, (old, new) in moves.items()}
        out = {}
        for edge in doc.edges():
            points = doc.waypoints(edge)
            if points and (edge.src in step or edge.dst in step):
                src = moves[edge.src][0] if edge.src in moves else doc.position(edge.src)
                dst = moves[edge.dst][0] if edge.dst in moves else doc.position(edge.dst)
                out[edge] = (points, follow_ends(points, src, dst, step.get(edge.src, (0, 0)),
                                                 step.get(edge.dst, (0, 0))))
        return out

    def nudge(self, node_ids: list[str], dx: float, dy: float, burst: int,
              group_ids: list[str] = (), note_ids: list[str] = ()) -> None:
        """Shift items by (dx, dy); nudges with the same `burst` are one undo step."""
        doc = self.document
        moves = {}
        for n in node_ids:
            if doc.has_node(n):
                x, y = doc.position(n)
                moves[n] = ((x, y), (x + dx, y + dy))
        groups = {}
        for g in group_ids:
            if doc.has_group(g):
                x, y = doc.group(g).position
                groups[g] = ((x, y), (x + dx, y + dy))
        notes = {}
        for n in note_ids:
            if doc.has_note(n):
                r = doc.note(n).rect
                notes[n] = (r, (r[0] + dx, r[1] + dy, r[2], r[3]))
        self.move_nodes(moves, groups, notes, burst=burst)

    def align(self, node_ids: list[str], mode: str,
              sizes: dict[str, tuple[float, float]] | None = None) -> str | None:
        """Line the nodes up on one side or centre line (one undo step).

        `mode` is one of ALIGN_MODES; `sizes` gives each node's (width, height) for the
        right, bottom and centre modes (the canvas knows them). Returns the reason if refused.
        """
        doc = self.document
        ids = [n for n in node_ids if doc.has_node(n)]
        if len(ids) < 2:
            return "Select at least two nodes to align."
        if mode not in ALIGN_MODES:
            return f"Unknown alignment '{mode}'."
        sizes = sizes or {}
        axis = 0 if mode in ("left", "hcenter", "right") else 1
        frac = {"left": 0, "top": 0, "hcenter": 0.5, "vcenter": 0.5, "right": 1,
                "bottom": 1}[mode]

        def anchor(n: str) -> float:
            return doc.position(n)[axis] + frac * sizes.get(n, (0.0, 0.0))[axis]
        values = [anchor(n) for n in ids]
        target = {0: min(values), 0.5: sum(values) / len(values), 1: max(values)}[frac]
        moves = {}
        for n in ids:
            pos = list(doc.position(n))
            pos[axis] += target - anchor(n)
            moves[n] = (doc.position(n), tuple(pos))
        self._push_layout_move(moves, f"Align {_count_nodes(len(ids))} {mode}")
        return None

    def distribute(self, node_ids: list[str], axis: str,
                   sizes: dict[str, tuple[float, float]] | None = None) -> str | None:
        """Space the nodes evenly between the outermost two, "horizontal" or "vertical"
        (equal gaps between their edges; one undo step). Returns the reason if refused."""
        doc = self.document
        ids = [n for n in node_ids if doc.has_node(n)]
        if len(ids) < 3:
            return "Select at least three nodes to distribute."
        a = 0 if axis == "horizontal" else 1
        sizes = sizes or {}
        ids.sort(key=lambda n: doc.position(n)[a])
        extent = [sizes.get(n, (0.0, 0.0))[a] for n in ids]
        first, last = doc.position(ids[0])[a], doc.position(ids[-1])[a] + extent[-1]
        gap = (last - first - sum(extent)) / (len(ids) - 1)
        moves, cursor = {}, first
        for n, size in zip(ids, extent):
            pos = list(doc.position(n))
            pos[a] = cursor
            moves[n] = (doc.position(n), tuple(pos))
            cursor += size + gap
        self._push_layout_move(moves, f"Distribute {_count_nodes(len(ids))} {axis}ly")
        return None

    def _push_layout_move(self, moves: dict[str, tuple[Pos, Pos]], text: str) -> None:
        real = {k: v for k, v in moves.items() if tuple(v[0]) != tuple(v[1])}
        if real:
            self.undo_stack.push(cmd.MoveNodes(self.document, real, text=text,
                                               waypoints=self._waypoints_following(real)))

    def set_param(self, node_id: str, name: str, value: Any, merge: bool = True) -> str | None:
        """Set one param after checking it against the op's schema.

        Consecutive edits of the same param merge into one undo step unless `merge` is
        False. Returns None when done, else the reason (the document is then untouched).
        """
        if not self.document.has_node(node_id):
            return f"There is no node '{node_id}'."
        node = self.document.node(node_id)
        op = registry.get(node.op)
        if op is None:
            return f"Node '{node_id}' uses the unknown op '{node.op}'."
        try:
            param = op.param(name)
        except KeyError:
            return f"{op.id} has no param '{name}'."
        problem = param.check(value)
        if problem:
            return problem[0].upper() + problem[1:] + "."
        if name in node.params and node.params[name] == value \
                and type(node.params[name]) is type(value):
            return None
        self.undo_stack.push(cmd.SetParam(self.document, node_id, name, value, merge))
        return None

    def rename(self, node_id: str, new_id: str) -> str | None:
        """Give a node a new id (surrounding spaces are dropped). Returns None or the reason."""
        if not self.document.has_node(node_id):
            return f"There is no node '{node_id}'."
        new_id = new_id.strip()
        if not new_id:
            return "A node's name cannot be empty."
        if "." in new_id or "->" in new_id:
            return "A node's name cannot contain '.' or '->'."
        if new_id == node_id:
            return None
        if self.document.has_node(new_id):
            return f"There is already a node called '{new_id}'."
        if self.document.has_group(new_id):
            return f"'{new_id}' is the name of a block; pick another name."
        self.undo_stack.push(cmd.RenameNode(self.document, node_id, new_id))
        return None

    def set_training(self, training: dict[str, Any],
                     text: str = "Change training settings") -> None:
        """Replace the training settings block (one undo step named `text`, skipped if
        unchanged)."""
        if dict(training) != self.document.training():
            self.undo_stack.push(cmd.SetTraining(self.document, training, text))

    # -- groups (blocks) ------------------------------------------------------------------

    def can_group(self, node_ids: list[str]) -> str | None:
        """None if these nodes can become one block, else why not."""
        doc = self.document
        ids = [n for n in node_ids if doc.has_node(n)]
        if not ids:
            return "Select the nodes to put in the block first."
        for n in ids:
            owner = doc.group_of(n)
            if owner is not None:
                return (f"'{n}' is already in the block '{owner.title}'; blocks inside blocks "
                        "are not supported. Ungroup it first.")
        return None

    def group_nodes(self, node_ids: list[str], title: str = "Block") -> str | None:
        """Make the nodes one collapsed block (one undo step); returns None or the reason.

        The nodes keep their ids, params and wires, so the graph computes exactly as before;
        the block's ports are the wires crossing the selection's border.
        """
        reason = self.can_group(node_ids)
        if reason:
            return reason
        doc = self.document
        chosen = set(node_ids)
        ids = tuple(n.id for n in doc.nodes() if n.id in chosen)
        gid = doc.unique_id(_slug(title) or "block")
        group = GroupSpec(gid, title, ids, True, self._block_spot(ids))
        self.undo_stack.push(cmd.GroupNodes(doc, group))
        return None

    def _block_spot(self, node_ids) -> Pos:
        """Where a closed block sits: amid its nodes (the middle of their positions), so
        the wires into and out of it stay about as long as they were."""
        xs = [self.document.position(n)[0] for n in node_ids]
        ys = [self.document.position(n)[1] for n in node_ids]
        return ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)

    def last_group_id(self) -> str:
        """The id of the newest block (after `group_nodes` or `insert_block`), or ""."""
        groups = self.document.groups()
        return groups[-1].id if groups else ""

    def ungroup(self, group_id: str) -> None:
        """Dissolve a block: exactly its nodes, as they were, shown one by one again."""
        if self.document.has_group(group_id):
            self.undo_stack.push(cmd.Ungroup(self.document, group_id))

    def set_block_open(self, group_id: str, is_open: bool) -> None:
        """Open a block (its nodes shown in place, framed) or close it (one block node)."""
        doc = self.document
        if not doc.has_group(group_id) or doc.group(group_id).collapsed == (not is_open):
            return
        group = doc.group(group_id)
        # The closed block keeps its own place (the graph around it looks as it did before
        # opening); its nodes keep theirs, so a graph can lay a block's inside out apart.
        new = dataclasses.replace(group, collapsed=not is_open)
        verb = "Open" if is_open else "Close"
        self.undo_stack.push(cmd.SetGroup(doc, new, f"{verb} block {group.title}"))

    def rename_block(self, group_id: str, title: str) -> str | None:
        """Change a block's title; returns None or the reason."""
        title = title.strip()
        if not self.document.has_group(group_id):
            return f"There is no block '{group_id}'."
        if not title:
            return "A block's name cannot be empty."
        group = self.document.group(group_id)
        if title != group.title:
            self.undo_stack.push(cmd.SetGroup(
                self.document, dataclasses.replace(group, title=title),
                f"Rename block {group.title} → {title}"))
        return None

    def save_block(self, group_id: str) -> Path:
        """Store a block in the user's block library ("My blocks"); returns its file.

        Raises:
            OSError: the library folder cannot be written.
        """
        path = self.blocks.save(block_spec(self.document, group_id))
        self.message.emit(f"Saved the block '{self.document.group(group_id).title}' to "
                          "My blocks.")
        return path

    def insert_block(self, spec: GraphSpec, at: Pos) -> str:
        """Add an independent copy of a block (see blocks.check_block), closed, at `at`, as
        one undo step. Inner ids become "<block id>/<name>" ("residual_2/dense1").
        Returns the block id, or "" (and emits `message`) if `spec` is not a block."""
        try:
            spec = check_block(spec, "the block")
        except FileFormatError as exc:
            self.message.emit(f"Cannot add the block: {exc}")
            return ""
        doc = self.document
        group = spec.groups[0]
        gid = doc.unique_id(group.id)
        renamed: dict[str, str] = {}
        for n in spec.nodes:
            local = n.id.rsplit("/", 1)[-1]
            renamed[n.id] = doc.unique_id(f"{gid}/{local}", taken=set(renamed.values()) | {gid})
        pos = {n.id: tuple(spec.layout.get(n.id, (0.0, 0.0))) for n in spec.nodes}
        xs = [p[0] for p in pos.values()]
        ys = [p[1] for p in pos.values()]
        # The closed block lands at `at`; its nodes keep their layout around that spot.
        dx, dy = at[0] - (min(xs) + max(xs)) / 2, at[1] - (min(ys) + max(ys)) / 2
        nodes = [(NodeSpec(renamed[n.id], n.op, dict(n.params)),
                  (pos[n.id][0] + dx, pos[n.id][1] + dy)) for n in spec.nodes]
        edges = [EdgeSpec(renamed[e.src], e.src_port, renamed[e.dst], e.dst_port)
                 for e in spec.edges]
        new_group = GroupSpec(gid, group.title, tuple(renamed[m] for m in group.nodes), True,
                              (float(at[0]), float(at[1])))
        self.undo_stack.push(cmd.Composite(f"Add block {group.title}", [
            lambda: cmd.PasteItems(doc, nodes, edges),
            lambda: cmd.GroupNodes(doc, new_group),
        ]))
        return gid

    # -- wires ---------------------------------------------------------------------------

    def insert_on_wire(self, node_id: str, edge: EdgeSpec) -> str | None:
        """Put a node into a wire: source → node's first free input, node → the wire's old
        input (one undo step). Returns None when done, else the reason it was refused."""
        doc = self.document
        if not doc.has_node(node_id) or not doc.has_edge(edge):
            return "That node or wire is gone."
        reason, first, second = self._wire_insertion(doc.node(node_id), edge)
        if reason:
            return reason
        self.undo_stack.push(cmd.Composite(f"Insert {node_id} into {cmd.wire_text(edge)}", [
            lambda: cmd.Connect(doc, first),
            lambda: cmd.Connect(doc, second),  # replaces the old wire in the same input
        ]))
        return None

    def add_node_on_wire(self, op_id: str, pos: Pos, edge: EdgeSpec) -> tuple[str, str | None]:
        """Add a node of `op_id` at `pos` and put it into `edge`, as one undo step.

        If it cannot go into the wire, the node is still added (one step) and the reason
        is returned. Returns (new id or "" for an unknown op, reason or None).
        """
        op = registry.get(op_id)
        if op is None or not self.document.has_edge(edge):
            return self.add_node(op_id, pos), None
        doc = self.document
        node = NodeSpec(doc.unique_id(op.id.lower()), op.id, op.resolve_params({}))
        reason, first, second = self._wire_insertion(node, edge)
        if reason:
            self.undo_stack.push(cmd.AddNode(doc, node, pos))
            return node.id, reason
        self.undo_stack.push(cmd.Composite(f"Insert {op.id} into {cmd.wire_text(edge)}", [
            lambda: cmd.AddNode(doc, node, pos),
            lambda: cmd.Connect(doc, first),
            lambda: cmd.Connect(doc, second),
        ]))
        return node.id, None

    def _wire_insertion(self, node: NodeSpec, edge: EdgeSpec
                        ) -> tuple[str | None, EdgeSpec | None, EdgeSpec | None]:
        """Why `node` (in the document or about to be) cannot go into `edge`, or None, and
        the two wires that would replace it."""
        doc = self.document
        if node.id in (edge.src, edge.dst):
            return f"'{node.id}' is already an end of this wire.", None, None
        op = registry.get(node.op)
        if op is None or not op.inputs:
            return (f"'{node.id}' has no input, so it cannot sit on a wire; "
                    "drop a node that takes an input."), None, None
        exists = doc.has_node(node.id)
        free = [p.name for p in op.inputs if not exists or doc.incoming(node.id, p.name) is None]
        if not free:
            return f"The inputs of '{node.id}' are all wired already; free one first.", None, None
        if exists and (self._reaches(node.id, edge.src) or self._reaches(edge.dst, node.id)):
            return (f"Putting '{node.id}' on the wire {cmd.wire_text(edge)} would make a "
                    "loop."), None, None
        first = EdgeSpec(edge.src, "out", node.id, free[0])
        second = EdgeSpec(node.id, "out", edge.dst, edge.dst_port)
        spec = doc.spec()
        nodes = spec.nodes if exists else (*spec.nodes, node)
        before = {(d.node, d.message) for d in analyze(
            GraphSpec(nodes, spec.edges), require_loss=False).diagnostics}
        trial = GraphSpec(nodes, tuple([e for e in spec.edges if e != edge] + [first, second]))
        for d in analyze(trial, require_loss=False).diagnostics:
            if d.node in (node.id, edge.dst) and (d.node, d.message) not in before:
                return f"Cannot insert '{node.id}' here: {d.message}", None, None
        return None, first, second

    def set_waypoints(self, edge: EdgeSpec, points: list[Pos], text: str = "Bend wire") -> None:
        """Give a wire its reroute points (an empty list straightens it): one undo step."""
        doc = self.document
        if doc.has_edge(edge) and [tuple(p) for p in points] != doc.waypoints(edge):
            self.undo_stack.push(cmd.SetWaypoints(doc, edge, points, text))

    # -- notes and frames ----------------------------------------------------------------

    def add_note(self, kind: str, rect: tuple[float, float, float, float],
                 text: str = "") -> str:
        """Add a sticky note ("note") or a comment frame ("frame"); returns its id."""
        note_id = self.document.unique_id(kind)
        if not text:
            text = "Comment" if kind == "frame" else "Note"
        self.undo_stack.push(cmd.AddNote(self.document, NoteSpec(note_id, kind, text,
                                                                 tuple(map(float, rect)))))
        return note_id

    def set_note_text(self, note_id: str, text: str) -> None:
        """Change what a note or a frame says (one undo step)."""
        doc = self.document
        if doc.has_note(note_id) and doc.note(note_id).text != text:
            self.undo_stack.push(cmd.SetNote(
                doc, dataclasses.replace(doc.note(note_id), text=text), "Edit note"))

    def resize_note(self, note_id: str, rect: tuple[float, float, float, float]) -> None:
        """Give a note or a frame a new rectangle (one undo step)."""
        doc = self.document
        rect = tuple(map(float, rect))
        if doc.has_note(note_id) and doc.note(note_id).rect != rect and rect[2] > 0 < rect[3]:
            self.undo_stack.push(cmd.SetNote(
                doc, dataclasses.replace(doc.note(note_id), rect=rect), "Resize note"))

    # -- clipboard -------------------------------------------------------------------

    def copy_json(self, ids: list[str], note_ids: list[str] = ()) -> str:
        """Graph JSON of the given nodes, the wires among them (with their reroute points),
        their layout, the blocks all of whose nodes are given, and the given notes."""
        chosen = set(ids)
        doc = self.document
        nodes = tuple(n for n in doc.nodes() if n.id in chosen)
        edges = tuple(e for e in doc.edges() if e.src in chosen and e.dst in chosen)
        layout = {n.id: list(doc.position(n.id)) for n in nodes}
        groups = tuple(g for g in doc.groups() if set(g.nodes) <= chosen)
        notes = tuple(n for n in doc.notes() if n.id in set(note_ids))
        waypoints = {e.key: [list(p) for p in doc.waypoints(e)] for e in edges
                     if doc.waypoints(e)}
        return GraphSpec(nodes, edges, layout, groups=groups, notes=notes,
                         waypoints=waypoints).to_json()

    def paste_json(self, text: str, at: Pos | None = None, *, verb: str = "Paste") -> list[str]:
        """Add the nodes and notes of graph JSON `text` with fresh unique ids, as one undo
        step.

        Wires among the pasted nodes are kept, with their reroute points, and so are
        blocks. With `at`, the top-left of the pasted items lands there; without, they are
        offset by (+30, +30) from where they were copied (a further 30 for each repeated
        paste of the same text). Returns the new node ids, then the new note ids, or []
        (and emits `message`) if the text is not a graph.
        """
        try:
            spec = check_editable(GraphSpec.from_json(text, "the clipboard"), "the clipboard")
        except FileFormatError as exc:
            self.message.emit(f"Cannot paste: {exc}")
            return []
        if not spec.nodes and not spec.notes:
            self.message.emit("Cannot paste: the clipboard holds no nodes or notes.")
            return []
        ids = [n.id for n in spec.nodes]
        pos = {k: (float(v[0]), float(v[1])) for k, v in spec.layout.items()}
        missing = [i for i in ids if i not in pos]
        if missing:
            pos.update(layered_layout(missing, spec.edges))
        corners = list(pos.values()) + [note.rect[:2] for note in spec.notes]
        left = min(p[0] for p in corners)
        top = min(p[1] for p in corners)
        if at is not None:
            dx, dy = at[0] - left, at[1] - top
        else:
            count = self._last_paste[1] + 1 if self._last_paste[0] == text else 1
            self._last_paste = (text, count)
            dx = dy = PASTE_OFFSET * count
        doc = self.document
        renamed: dict[str, str] = {}
        for old in ids:
            renamed[old] = doc.unique_id(old, taken=set(renamed.values()))
        nodes = [(NodeSpec(renamed[n.id], n.op, dict(n.params)),
                  (pos[n.id][0] + dx, pos[n.id][1] + dy)) for n in spec.nodes]
        edges, waypoints = [], {}
        for e in dict.fromkeys(spec.edges):
            new = EdgeSpec(renamed[e.src], e.src_port, renamed[e.dst], e.dst_port)
            edges.append(new)
            if spec.waypoints.get(e.key):
                waypoints[new] = [(x + dx, y + dy) for x, y in spec.waypoints[e.key]]
        taken = set(renamed.values())
        notes = []
        for note in spec.notes:
            note_id = doc.unique_id(note.id, taken=taken)
            taken.add(note_id)
            x, y, w, h = note.rect
            notes.append(dataclasses.replace(note, id=note_id, rect=(x + dx, y + dy, w, h)))
        steps = [lambda: cmd.PasteItems(doc, nodes, edges, verb, notes, waypoints)]
        for g in spec.groups:  # copied blocks come along, as independent blocks
            gid = doc.unique_id(g.id, taken=taken)
            taken.add(gid)
            group = GroupSpec(gid, g.title, tuple(renamed[m] for m in g.nodes), g.collapsed,
                              (g.position[0] + dx, g.position[1] + dy))
            steps.append(lambda group=group: cmd.GroupNodes(doc, group))
        if len(steps) == 1:
            self.undo_stack.push(steps[0]())
        else:
            self.undo_stack.push(cmd.Composite(f"{verb} {len(nodes)} nodes", steps))
        return [renamed[i] for i in ids] + [n.id for n in notes]

    def duplicate(self, ids: list[str], note_ids: list[str] = ()) -> list[str]:
        """Copy and paste the given nodes and notes, offset; returns the new ids (nodes,
        then notes)."""
        if not ids and not note_ids:
            return []
        return self.paste_json(self.copy_json(ids, note_ids), None, verb="Duplicate")

    # -- layout ----------------------------------------------------------------------

    def auto_layout(self, max_width: float | None = None) -> None:
        """Arrange all nodes in layers left to right, as one undo step; wider than
        `max_width` (scene units), the layers wrap into rows."""
        doc = self.document
        new = layered_layout([n.id for n in doc.nodes()], doc.edges(), max_width=max_width)
        moves = {k: (doc.position(k), p) for k, p in new.items() if doc.position(k) != p}
        if moves:
            self.undo_stack.push(cmd.MoveNodes(doc, moves, text="Auto layout",
                                               waypoints=self._waypoints_following(moves)))

    # -- files -----------------------------------------------------------------------

    def new(self) -> None:
        """Start an empty, untitled document (clears undo history)."""
        self._replace(GraphSpec(), None)

    def open(self, path: str | Path) -> None:
        """Load a graph file; nodes without a saved position get an automatic layout.

        Raises:
            FileFormatError: the file cannot be used; the document and history are untouched.
        """
        path = Path(path)
        spec = load_file(path)
        self._replace(spec, path)
        self.message.emit(f"Opened {path.name}.")

    def open_spec(self, spec: GraphSpec, path: str | Path) -> None:
        """Open a graph read from another kind of file (a .gsmodel) as the document of `path`.

        Raises:
            FileFormatError: the graph cannot be edited; the document is untouched.
        """
        path = Path(path)
        self._replace(check_editable(spec, path.name), path)
        self.message.emit(f"Opened {path.name}.")

    def mark_saved(self, path: str | Path) -> None:
        """The document was written to `path` by someone else (a .gsmodel): remember it."""
        self._set_path(Path(path))
        self.undo_stack.setClean()
        self.discard_recovery()

    def _replace(self, spec: GraphSpec, path: Path | None) -> None:
        missing = [n.id for n in spec.nodes if n.id not in spec.layout]
        if missing:
            layout = dict(spec.layout)
            auto = layered_layout([n.id for n in spec.nodes], spec.edges)
            layout.update({k: list(auto[k]) for k in missing})
            spec = dataclasses.replace(spec, layout=layout)
        self.document.load(spec)
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self._last_paste = ("", 0)
        self._set_path(path)
        self.discard_recovery()

    def save(self) -> None:
        """Save to `path` atomically and mark the document clean.

        Raises:
            ValueError: the document has no path yet (use save_as).
            OSError: the file could not be written.
        """
        if self._path is None:
            raise ValueError("The document has no file yet; use save_as.")
        self.save_as(self._path)

    def save_as(self, path: str | Path) -> None:
        """Save to `path` atomically, remember it and mark the document clean.

        Raises:
            OSError: the file could not be written.
        """
        path = Path(path)
        save_file(self.document, path)
        self._set_path(path)
        self.undo_stack.setClean()
        self.discard_recovery()
        self.message.emit(f"Saved {path.name}.")

    def revert(self) -> None:
        """Reload the file from disk (or start empty if untitled), dropping all edits.

        Raises:
            FileFormatError: the file cannot be read any more; nothing changes.
        """
        if self._path is None:
            self.new()
        else:
            self.open(self._path)

    # -- autosave and recovery -------------------------------------------------------

    def recovery_dir(self) -> Path:
        """The folder of recovery files (AppDataLocation/recovery unless given)."""
        if self._recovery_dir is None:
            base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
            self._recovery_dir = Path(base or Path.home() / ".gradscape") / "recovery"
        return self._recovery_dir

    def recovery_file(self) -> Path:
        """This session's recovery file (it may not exist)."""
        return self.recovery_dir() / f"autosave-{self._token}.json"

    def start_autosave(self, interval_ms: int = AUTOSAVE_INTERVAL_MS) -> None:
        """Call `autosave` every `interval_ms` (the app starts this)."""
        self.autosave_timer.start(interval_ms)

    def autosave(self) -> Path | None:
        """Write the document to this session's recovery file if it is modified.

        Returns the file written, or None (not modified, or the write failed: `message`).
        """
        if not self.is_modified():
            return None
        target = self.recovery_file()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if self._lock is None:
                lock = QLockFile(str(target.with_suffix(".lock")))
                lock.setStaleLockTime(0)
                if lock.tryLock(0):
                    self._lock = lock
            atomic_write_bytes(target, to_json(self.document).encode("utf-8"))
        except OSError as exc:
            self.message.emit(f"Autosave failed: {exc.strerror or exc}.")
            return None
        return target

    def recovery_candidates(self) -> list[Path]:
        """Recovery files left by sessions that are gone (see the module docstring).

        Newest first; this session's own file and those of running sessions are skipped.
        """
        folder = self.recovery_dir()
        if not folder.is_dir():
            return []
        found = []
        for f in folder.glob("autosave-*.json"):
            if f == self.recovery_file():
                continue
            probe = QLockFile(str(f.with_suffix(".lock")))
            probe.setStaleLockTime(0)
            if probe.tryLock(0):  # nobody holds it: the owner is gone
                probe.unlock()
                found.append(f)
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)

    def recover(self, path: str | Path) -> None:
        """Load a recovery candidate as an untitled, modified document; delete the file.

        Raises:
            FileFormatError: the file cannot be used; nothing changes in the document, and
                the file is renamed ``*.damaged`` so it is not offered again (it is kept for
                whoever wants to look into it).
        """
        path = Path(path)
        try:
            spec = load_file(path)
        except FileFormatError as exc:
            kept = path.with_suffix(".damaged")
            try:
                os.replace(path, kept)
                path.with_suffix(".lock").unlink(missing_ok=True)
            except OSError:
                self.discard_recovery(path)
                raise exc from None
            raise FileFormatError(f"{exc} It will not be offered again; it was kept as "
                                  f"{kept}.") from None
        self._replace(spec, None)
        self.undo_stack.resetClean()
        self.discard_recovery(path)
        self.message.emit("Recovered the unsaved document.")

    def discard_recovery(self, path: str | Path | None = None) -> None:
        """Delete a recovery file: this session's own (default) or a candidate's."""
        target = Path(path) if path is not None else self.recovery_file()
        try:
            target.unlink(missing_ok=True)
        except OSError:
            pass
        if path is None and self._lock is not None:
            self._lock.unlock()
            self._lock = None


def _slug(title: str) -> str:
    """A node-id-like form of a title: "Residual block" -> "residual_block"."""
    return re.sub(r"[^\w]+", "_", title.strip().lower()).strip("_")


def _count_nodes(n: int) -> str:
    return f"{n} node" if n == 1 else f"{n} nodes"
