"""The graph file format: nodes, edges, optional layout, training settings and annotations.

A `GraphSpec` holds what compiles (nodes with op and params, edges port to port) plus blocks
the compiler ignores: `layout`, `training`, `groups` (named blocks over the flat node list),
`notes` (sticky notes and comment frames) and `waypoints` (reroute points of wires). Files are
JSON with a format name and an integer version; older versions are migrated, newer ones refused.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import FileFormatError

FORMAT_NAME = "gradscape-graph"
FORMAT_VERSION = 2
# A 20,000-node graph with its layout is about 3 MiB; the caps leave room for bigger graphs
# while keeping a hostile file's parse under a second and a few hundred MB.
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_NODES = 50_000
MAX_EDGES = 200_000


@dataclass(frozen=True)
class NodeSpec:
    """A node: a user-visible string id, an op id from the registry and its params."""

    id: str
    op: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "op": self.op}
        if self.params:
            out["params"] = dict(sorted(self.params.items()))
        return out


@dataclass(frozen=True)
class EdgeSpec:
    """A wire from an output port to an input port, written "node.port" in files."""

    src: str
    src_port: str
    dst: str
    dst_port: str

    @property
    def key(self) -> str:
        """A stable text id of the edge, e.g. ``"h1.out->a1.in"``."""
        return f"{self.src}.{self.src_port}->{self.dst}.{self.dst_port}"

    def to_dict(self) -> dict[str, str]:
        return {"from": f"{self.src}.{self.src_port}", "to": f"{self.dst}.{self.dst_port}"}


NOTE_KINDS = ("note", "frame")


@dataclass(frozen=True)
class GroupSpec:
    """A named block: nodes the canvas shows as one node. The compiler never sees it.

    The member nodes stay in the graph's flat node list with their own ids, so a grouped
    graph compiles, trains and exports exactly like the same graph without the group.
    `position` is where the collapsed block sits; `collapsed` False shows the members.
    """

    id: str
    title: str
    nodes: tuple[str, ...]
    collapsed: bool = True
    position: tuple[float, float] = (0.0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "nodes": list(self.nodes),
                "collapsed": self.collapsed,
                "position": [float(self.position[0]), float(self.position[1])]}


@dataclass(frozen=True)
class NoteSpec:
    """A sticky note ("note") or a comment frame ("frame") for people; never compiled.

    `rect` is (x, y, width, height) in canvas coordinates.
    """

    id: str
    kind: str
    text: str
    rect: tuple[float, float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "text": self.text,
                "rect": [float(v) for v in self.rect]}


@dataclass(frozen=True)
class GraphSpec:
    """A whole graph. `layout` maps node id to [x, y]; `training` holds trainer defaults;
    `groups`, `notes` and `waypoints` (edge key -> reroute points) are for the canvas only."""

    nodes: tuple[NodeSpec, ...] = ()
    edges: tuple[EdgeSpec, ...] = ()
    layout: dict[str, list[float]] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    groups: tuple[GroupSpec, ...] = ()
    notes: tuple[NoteSpec, ...] = ()
    waypoints: dict[str, list[list[float]]] = field(default_factory=dict)

    def node(self, node_id: str) -> NodeSpec:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }
        if self.layout:
            out["layout"] = {k: [float(v[0]), float(v[1])] for k, v in sorted(self.layout.items())}
        if self.training:
            out["training"] = dict(sorted(self.training.items()))
        if self.groups:
            out["groups"] = [g.to_dict() for g in self.groups]
        if self.notes:
            out["notes"] = [n.to_dict() for n in self.notes]
        if self.waypoints:
            out["waypoints"] = {k: [[float(x), float(y)] for x, y in pts]
                                for k, pts in sorted(self.waypoints.items()) if pts}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"

    @staticmethod
    def from_dict(data: Any, source: str = "the graph") -> GraphSpec:
        """Check the header, migrate older versions and build the spec.

        Raises:
            FileFormatError: with a sentence naming what is wrong.
        """
        from engine.core.migrations import migrate

        data = migrate(data, source)
        return _build(data, source)

    @staticmethod
    def from_json(text: str, source: str = "the graph") -> GraphSpec:
        """Parse graph JSON (strict: no NaN/Infinity, no duplicate keys, bounded nesting)."""
        from engine.files.json_text import parse_json

        return GraphSpec.from_dict(parse_json(text, source), source)


def parse_port_ref(ref: Any, source: str, what: str) -> tuple[str, str]:
    """Split ``"node.port"`` at its last dot."""
    if not isinstance(ref, str) or "." not in ref:
        raise FileFormatError(
            f"In {source}, an edge's '{what}' must look like \"node.port\", not {ref!r}."
        )
    node, port = ref.rsplit(".", 1)
    if not node or not port:
        raise FileFormatError(f"In {source}, the edge end {ref!r} lacks a node or a port name.")
    return node, port


def _build(data: dict[str, Any], source: str) -> GraphSpec:
    nodes_raw = data.get("nodes", [])
    edges_raw = data.get("edges", [])
    if not isinstance(nodes_raw, list) or not isinstance(edges_raw, list):
        raise FileFormatError(f"In {source}, 'nodes' and 'edges' must be lists.")
    if len(nodes_raw) > MAX_NODES or len(edges_raw) > MAX_EDGES:
        raise FileFormatError(
            f"{source} has {len(nodes_raw):,} nodes and {len(edges_raw):,} wires; Gradscape "
            f"opens graphs of at most {MAX_NODES:,} nodes and {MAX_EDGES:,} wires.")
    nodes: list[NodeSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(nodes_raw):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
            raise FileFormatError(f"In {source}, node #{i + 1} needs a non-empty string 'id'.")
        node_id = raw["id"]
        if "." in node_id or "->" in node_id:
            raise FileFormatError(f"In {source}, node id {node_id!r} may not contain '.' or '->'.")
        if node_id in seen:
            raise FileFormatError(
                f"In {source}, two nodes share the id {node_id!r}; ids must be unique.")
        seen.add(node_id)
        if not isinstance(raw.get("op"), str):
            raise FileFormatError(f"In {source}, node {node_id!r} needs a string 'op'.")
        params = raw.get("params", {})
        if not isinstance(params, dict):
            raise FileFormatError(f"In {source}, the params of node {node_id!r} must be an object.")
        nodes.append(NodeSpec(node_id, raw["op"], dict(params)))
    edges: list[EdgeSpec] = []
    for i, raw in enumerate(edges_raw):
        if not isinstance(raw, dict):
            raise FileFormatError(
                f"In {source}, edge #{i + 1} must be an object with 'from' and 'to'.")
        src, src_port = parse_port_ref(raw.get("from"), source, "from")
        dst, dst_port = parse_port_ref(raw.get("to"), source, "to")
        edges.append(EdgeSpec(src, src_port, dst, dst_port))
    layout_raw = data.get("layout", {}) or {}
    if not isinstance(layout_raw, dict):
        raise FileFormatError(f"In {source}, 'layout' must be an object of node id -> [x, y].")
    layout: dict[str, list[float]] = {}
    for key, pos in layout_raw.items():
        if (
            not isinstance(pos, (list, tuple))
            or len(pos) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pos)
        ):
            raise FileFormatError(f"In {source}, the layout of {key!r} must be [x, y] numbers.")
        layout[str(key)] = [float(pos[0]), float(pos[1])]
    training = data.get("training", {}) or {}
    if not isinstance(training, dict):
        raise FileFormatError(f"In {source}, 'training' must be an object.")
    groups = _build_groups(data.get("groups", []), seen, source)
    notes = _build_notes(data.get("notes", []), source)
    waypoints = _build_waypoints(data.get("waypoints", {}), {e.key for e in edges}, source)
    return GraphSpec(tuple(nodes), tuple(edges), layout, dict(training), groups, notes,
                     waypoints)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _point(raw: Any, source: str, what: str) -> tuple[float, float]:
    if not isinstance(raw, (list, tuple)) or len(raw) != 2 or not all(map(_is_number, raw)):
        raise FileFormatError(f"In {source}, {what} must be [x, y] numbers.")
    return float(raw[0]), float(raw[1])


def _build_groups(raw: Any, node_ids: set[str], source: str) -> tuple[GroupSpec, ...]:
    if not isinstance(raw, list):
        raise FileFormatError(f"In {source}, 'groups' must be a list.")
    groups: list[GroupSpec] = []
    owner: dict[str, str] = {}
    for i, g in enumerate(raw):
        if not isinstance(g, dict) or not isinstance(g.get("id"), str) or not g["id"]:
            raise FileFormatError(f"In {source}, group #{i + 1} needs a non-empty string 'id'.")
        gid = g["id"]
        if "." in gid or "->" in gid or gid in node_ids or any(x.id == gid for x in groups):
            raise FileFormatError(
                f"In {source}, the group id {gid!r} is already used or contains '.' or '->'.")
        members = g.get("nodes")
        if not isinstance(members, list) or not members or not all(
                isinstance(m, str) for m in members):
            raise FileFormatError(f"In {source}, group {gid!r} needs a list of node ids.")
        for m in members:
            if m not in node_ids:
                raise FileFormatError(
                    f"In {source}, group {gid!r} lists a node {m!r} that does not exist.")
            if m in owner:
                raise FileFormatError(
                    f"In {source}, node {m!r} is in two groups ({owner[m]!r} and {gid!r}).")
            owner[m] = gid
        title = g.get("title", gid)
        collapsed = g.get("collapsed", True)
        if not isinstance(title, str) or not isinstance(collapsed, bool):
            raise FileFormatError(
                f"In {source}, group {gid!r} needs a text 'title' and a true/false 'collapsed'.")
        pos = _point(g.get("position", [0, 0]), source, f"the position of group {gid!r}")
        groups.append(GroupSpec(gid, title, tuple(members), collapsed, pos))
    return tuple(groups)


def _build_notes(raw: Any, source: str) -> tuple[NoteSpec, ...]:
    if not isinstance(raw, list):
        raise FileFormatError(f"In {source}, 'notes' must be a list.")
    notes: list[NoteSpec] = []
    for i, n in enumerate(raw):
        if not isinstance(n, dict) or not isinstance(n.get("id"), str) or not n["id"]:
            raise FileFormatError(f"In {source}, note #{i + 1} needs a non-empty string 'id'.")
        kind, text, rect = n.get("kind", "note"), n.get("text", ""), n.get("rect")
        if kind not in NOTE_KINDS or not isinstance(text, str):
            raise FileFormatError(
                f"In {source}, note {n['id']!r} needs 'kind' \"note\" or \"frame\" and a text.")
        if (not isinstance(rect, list) or len(rect) != 4 or not all(map(_is_number, rect))
                or rect[2] <= 0 or rect[3] <= 0):
            raise FileFormatError(
                f"In {source}, note {n['id']!r} needs 'rect' [x, y, width, height] "
                "with a positive width and height.")
        if any(x.id == n["id"] for x in notes):
            raise FileFormatError(f"In {source}, two notes share the id {n['id']!r}.")
        notes.append(NoteSpec(n["id"], kind, text, tuple(float(v) for v in rect)))
    return tuple(notes)


def _build_waypoints(raw: Any, edge_keys: set[str],
                     source: str) -> dict[str, list[list[float]]]:
    if not isinstance(raw, dict):
        raise FileFormatError(f"In {source}, 'waypoints' must map wires to lists of [x, y].")
    out: dict[str, list[list[float]]] = {}
    for key, pts in raw.items():
        if key not in edge_keys:
            continue  # the wire was removed by hand: its bends go with it
        if not isinstance(pts, list):
            raise FileFormatError(f"In {source}, the waypoints of {key!r} must be a list.")
        out[key] = [list(_point(p, source, f"a waypoint of {key!r}")) for p in pts]
    return {k: v for k, v in out.items() if v}


def load_graph(path: str | os.PathLike[str]) -> GraphSpec:
    """Read a graph file. Raises FileFormatError with a clear sentence on any problem."""
    from engine.files.sized_read import read_limited

    p = Path(path)
    _name, raw = read_limited(p, MAX_FILE_BYTES, "graph files")
    if raw.startswith(b"PK\x03\x04"):
        raise FileFormatError(
            f"{p.name} is a zip archive, not a graph file. If it is a trained model (.gsmodel), "
            "open it in the designer (File → Open…) or use `predict` / `export`.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FileFormatError(f"{p.name} is not a text file (it is not UTF-8).") from None
    return GraphSpec.from_json(text, p.name)


def _new_file_mode(p: Path) -> int:
    """The permissions a plain open() would give: the old file's, else 0666 minus umask."""
    try:
        return p.stat().st_mode & 0o7777
    except OSError:
        mask = os.umask(0o022)
        os.umask(mask)
        return 0o666 & ~mask


def _remove_stale_temps(p: Path) -> None:
    """Delete temp files of earlier saves of `p` whose writing process is gone (killed
    mid-save: a killed process cannot clean up after itself)."""
    for tmp in p.parent.glob(f".{glob.escape(p.name)}.*.tmp"):
        pid_text = tmp.name[len(p.name) + 2:].split(".", 1)[0]
        try:
            if not pid_text.isdigit():
                continue
            pid = int(pid_text)
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, 0)
                continue  # still running: perhaps saving right now
            except ProcessLookupError:
                pass
            except PermissionError:
                continue  # alive, owned by someone else
            tmp.unlink()
        except OSError:
            pass


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target.

    The temp file is named ``.<name>.<pid>.<random>.tmp``; a later save removes those left
    by a process that was killed while writing.
    """
    p = Path(path)
    _remove_stale_temps(p)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=p.parent or ".")
    except OSError as exc:  # name the file the caller asked for, not the temp file
        raise OSError(exc.errno, exc.strerror, str(p)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode(p))  # mkstemp makes it private (0600)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _sync_folder(p.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_graph(spec: GraphSpec, path: str | os.PathLike[str]) -> None:
    """Write the graph as deterministic, indented JSON, atomically."""
    atomic_write_bytes(path, spec.to_json().encode("utf-8"))
