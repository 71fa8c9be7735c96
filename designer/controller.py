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

import os
import uuid
from pathlib import Path
from typing import Any

from PySide6.QtCore import QLockFile, QObject, QStandardPaths, QTimer, Signal
from PySide6.QtGui import QUndoStack

from designer.document import commands as cmd
from designer.document.graph_document import GraphDocument, Pos
from designer.document.layout import layered_layout
from designer.document.serialize import check_editable, load_file, save_file, to_json
from engine.core import registry
from engine.core.compiler import analyze
from engine.core.spec import EdgeSpec, GraphSpec, NodeSpec, atomic_write_bytes
from engine.errors import FileFormatError

PASTE_OFFSET = 30.0
AUTOSAVE_INTERVAL_MS = 60_000


class Controller(QObject):
    """Owns the GraphDocument and its QUndoStack; every edit goes through here.

    Methods that can be refused return None when done, else a sentence saying why not.
    """

    modified_changed = Signal(bool)
    path_changed = Signal(object)
    message = Signal(str)

    def __init__(self, parent: QObject | None = None, recovery_dir: str | Path | None = None):
        super().__init__(parent)
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
        trial = GraphSpec(spec.nodes, tuple(edges), spec.layout, spec.training)
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

    def disconnect(self, edge: EdgeSpec) -> None:
        """Remove one wire (ignored if it is not in the document)."""
        if self.document.has_edge(edge):
            self.undo_stack.push(cmd.Disconnect(self.document, edge))

    def remove(self, node_ids: list[str], edges: list[EdgeSpec] = ()) -> None:
        """Delete nodes (with all their wires) and extra wires, as one undo step."""
        command = cmd.RemoveItems(self.document, list(node_ids), list(edges))
        if not command.is_empty():
            self.undo_stack.push(command)

    def move_nodes(self, moves: dict[str, tuple[Pos, Pos]]) -> None:
        """Record a finished move {id: (old, new)} as one undo step (no-op moves dropped).

        The document's positions are set to `new` (the canvas may already show them).
        """
        real = {k: (old, new) for k, (old, new) in moves.items()
                if self.document.has_node(k) and tuple(old) != tuple(new)}
        if real:
            self.undo_stack.push(cmd.MoveNodes(self.document, real))

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
        self.undo_stack.push(cmd.RenameNode(self.document, node_id, new_id))
        return None

    def set_training(self, training: dict[str, Any]) -> None:
        """Replace the training settings block (one undo step, skipped if unchanged)."""
        if dict(training) != self.document.training():
            self.undo_stack.push(cmd.SetTraining(self.document, training))

    # -- clipboard -------------------------------------------------------------------

    def copy_json(self, ids: list[str]) -> str:
        """Graph JSON of the given nodes, the wires among them and their layout."""
        chosen = set(ids)
        doc = self.document
        nodes = tuple(n for n in doc.nodes() if n.id in chosen)
        edges = tuple(e for e in doc.edges() if e.src in chosen and e.dst in chosen)
        layout = {n.id: list(doc.position(n.id)) for n in nodes}
        return GraphSpec(nodes, edges, layout).to_json()

    def paste_json(self, text: str, at: Pos | None = None, *, verb: str = "Paste") -> list[str]:
        """Add the nodes of graph JSON `text` with fresh unique ids, as one undo step.

        Wires among the pasted nodes are kept. With `at`, the top-left of the pasted
        group lands there; without, it is offset by (+30, +30) from where it was copied
        (a further 30 for each repeated paste of the same text). Returns the new ids, or
        [] (and emits `message`) if the text is not a graph.
        """
        try:
            spec = check_editable(GraphSpec.from_json(text, "the clipboard"), "the clipboard")
        except FileFormatError as exc:
            self.message.emit(f"Cannot paste: {exc}")
            return []
        if not spec.nodes:
            self.message.emit("Cannot paste: the clipboard holds no nodes.")
            return []
        ids = [n.id for n in spec.nodes]
        pos = {k: (float(v[0]), float(v[1])) for k, v in spec.layout.items()}
        missing = [i for i in ids if i not in pos]
        if missing:
            pos.update(layered_layout(missing, spec.edges))
        left = min(p[0] for p in pos.values())
        top = min(p[1] for p in pos.values())
        if at is not None:
            dx, dy = at[0] - left, at[1] - top
        else:
            count = self._last_paste[1] + 1 if self._last_paste[0] == text else 1
            self._last_paste = (text, count)
            dx = dy = PASTE_OFFSET * count
        renamed: dict[str, str] = {}
        for old in ids:
            renamed[old] = self.document.unique_id(old, taken=set(renamed.values()))
        nodes = [(NodeSpec(renamed[n.id], n.op, dict(n.params)),
                  (pos[n.id][0] + dx, pos[n.id][1] + dy)) for n in spec.nodes]
        edges = list(dict.fromkeys(
            EdgeSpec(renamed[e.src], e.src_port, renamed[e.dst], e.dst_port)
            for e in spec.edges))
        self.undo_stack.push(cmd.PasteItems(self.document, nodes, edges, verb))
        return [renamed[i] for i in ids]

    def duplicate(self, ids: list[str]) -> list[str]:
        """Copy and paste the given nodes, offset; returns the new ids."""
        if not ids:
            return []
        return self.paste_json(self.copy_json(ids), None, verb="Duplicate")

    # -- layout ----------------------------------------------------------------------

    def auto_layout(self, max_width: float | None = None) -> None:
        """Arrange all nodes in layers left to right, as one undo step; wider than
        `max_width` (scene units), the layers wrap into rows."""
        doc = self.document
        new = layered_layout([n.id for n in doc.nodes()], doc.edges(), max_width=max_width)
        moves = {k: (doc.position(k), p) for k, p in new.items() if doc.position(k) != p}
        if moves:
            self.undo_stack.push(cmd.MoveNodes(doc, moves, text="Auto layout"))

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
            spec = GraphSpec(spec.nodes, spec.edges, layout, spec.training)
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
            FileFormatError: the file cannot be used; nothing changes.
        """
        path = Path(path)
        spec = load_file(path)
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
