"""Blocks: the ports a group shows when collapsed, and the library of reusable blocks.

A block file is an ordinary graph file holding the block's nodes, the wires among them,
their layout and exactly one group. Shipped blocks live in ``resources/blocks/`` (one file
each, so adding a block is adding a file); the user's own blocks in the ``blocks`` folder of
the platform's application data directory (QStandardPaths.AppDataLocation).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QStandardPaths

from designer.document.graph_document import GraphDocument
from designer.resources import resource_path
from engine.core import registry
from engine.core.spec import GraphSpec, GroupSpec, atomic_write_bytes, load_graph
from engine.errors import FileFormatError

BLOCK_SUFFIX = ".json"


@dataclass(frozen=True)
class BlockPorts:
    """What a collapsed block shows: inputs as (inner node, port), outputs as inner nodes."""

    inputs: tuple[tuple[str, str], ...]
    outputs: tuple[str, ...]


def block_ports(doc: GraphDocument, group: GroupSpec) -> BlockPorts:
    """The ports of a collapsed block: the wires that cross its border.

    Inputs are the members' inputs fed from outside the block, plus their required inputs
    that are not wired yet (so a fresh block can be connected); outputs are the members
    whose output leaves the block, plus members whose output goes nowhere yet.
    """
    members = set(group.nodes)
    fed: dict[tuple[str, str], str] = {}
    sends: dict[str, list[str]] = {m: [] for m in group.nodes}
    for e in doc.edges():
        if e.dst in members:
            fed[(e.dst, e.dst_port)] = e.src
        if e.src in members:
            sends[e.src].append(e.dst)
    inputs: list[tuple[str, str]] = []
    for m in group.nodes:
        op = registry.get(doc.node(m).op)
        for port in op.inputs if op else ():
            src = fed.get((m, port.name))
            if (src is None and not port.optional) or (src is not None and src not in members):
                inputs.append((m, port.name))
    outputs = [m for m in group.nodes
               if not sends[m] or any(d not in members for d in sends[m])]
    return BlockPorts(tuple(inputs), tuple(outputs))


def block_spec(doc: GraphDocument, group_id: str) -> GraphSpec:
    """A block file's graph: the group's nodes, the wires among them, layout and the group."""
    group = doc.group(group_id)
    members = set(group.nodes)
    nodes = tuple(n for n in doc.nodes() if n.id in members)
    edges = tuple(e for e in doc.edges() if e.src in members and e.dst in members)
    layout = {n.id: list(doc.position(n.id)) for n in nodes}
    waypoints = {e.key: [list(p) for p in doc.waypoints(e)] for e in edges if doc.waypoints(e)}
    return GraphSpec(nodes, edges, layout, groups=(group,), waypoints=waypoints)


def check_block(spec: GraphSpec, source: str) -> GraphSpec:
    """Refuse a graph that is not a block: it must have nodes and one group holding them all.

    Raises:
        FileFormatError: naming the file and what is missing.
    """
    if not spec.nodes:
        raise FileFormatError(f"{source} holds no nodes, so it is not a block.")
    if len(spec.groups) != 1 or set(spec.groups[0].nodes) != {n.id for n in spec.nodes}:
        raise FileFormatError(
            f"{source} is not a block: a block file has exactly one group holding all its nodes.")
    edges = {e.key for e in spec.edges}
    ids = {n.id for n in spec.nodes}
    if any(e.src not in ids or e.dst not in ids for e in spec.edges):
        raise FileFormatError(f"{source} has a wire to a node outside the block.")
    return dataclasses.replace(
        spec, waypoints={k: v for k, v in spec.waypoints.items() if k in edges})


@dataclass(frozen=True)
class BlockEntry:
    """One block of the library: its title, its file and whether it ships with Gradscape."""

    title: str
    path: Path
    shipped: bool


class BlockLibrary:
    """The shipped blocks and the user's saved blocks.

    Args:
        user_dir: the folder of the user's blocks (default: AppDataLocation/blocks).
        shipped_dir: the folder of the shipped blocks (default: resources/blocks).
    """

    def __init__(self, user_dir: str | Path | None = None,
                 shipped_dir: str | Path | None = None):
        self._user_dir = Path(user_dir) if user_dir is not None else None
        self.shipped_dir = Path(shipped_dir) if shipped_dir is not None else resource_path(
            "blocks")

    def user_dir(self) -> Path:
        """The folder "Save Block to Palette" writes to (it may not exist yet)."""
        if self._user_dir is None:
            base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
            self._user_dir = Path(base or Path.home() / ".gradscape") / "blocks"
        return self._user_dir

    def entries(self) -> list[BlockEntry]:
        """Shipped blocks, then the user's, each sorted by title. Unreadable files are skipped."""
        out: list[BlockEntry] = []
        for folder, shipped in ((self.shipped_dir, True), (self.user_dir(), False)):
            found = []
            for path in sorted(folder.glob(f"*{BLOCK_SUFFIX}")) if folder.is_dir() else ():
                try:
                    found.append(BlockEntry(self.read(path).groups[0].title, path, shipped))
                except FileFormatError:
                    continue
            out.extend(sorted(found, key=lambda b: b.title.lower()))
        return out

    @staticmethod
    def read(path: str | Path) -> GraphSpec:
        """A block file as a graph with one group.

        Raises:
            FileFormatError: the file is not a readable block.
        """
        path = Path(path)
        return check_block(load_graph(path), path.name)

    def save(self, spec: GraphSpec) -> Path:
        """Write a block (see `block_spec`) into the user's folder under its title.

        An existing block of the same title is replaced. Raises OSError if the folder
        cannot be written.
        """
        title = spec.groups[0].title
        stem = re.sub(r"[^\w\- ]+", "_", title).strip() or "block"
        folder = self.user_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem}{BLOCK_SUFFIX}"
        atomic_write_bytes(path, spec.to_json().encode("utf-8"))
        return path
