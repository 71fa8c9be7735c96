"""Reading and writing documents as engine graph files (format and migrations live in
engine.core.spec / engine.core.migrations; this module adds the editor's own checks)."""

from __future__ import annotations

import dataclasses
import os

from designer.document.graph_document import GraphDocument
from engine.core.spec import GraphSpec, load_graph, save_graph
from engine.errors import FileFormatError


def to_json(doc: GraphDocument) -> str:
    """The document as deterministic, indented graph JSON."""
    return doc.spec().to_json()


def check_editable(spec: GraphSpec, source: str) -> GraphSpec:
    """Refuse wires to missing nodes (the editor cannot draw them); drop stray layout keys.

    Raises:
        FileFormatError: naming the first wire that refers to a missing node.
    """
    ids = {n.id for n in spec.nodes}
    for e in spec.edges:
        for end in (e.src, e.dst):
            if end not in ids:
                raise FileFormatError(
                    f"In {source}, the wire {e.key} refers to a node '{end}' that does not exist."
                )
    layout = {k: v for k, v in spec.layout.items() if k in ids}
    return dataclasses.replace(spec, layout=layout)


def load_file(path: str | os.PathLike[str]) -> GraphSpec:
    """Read a graph file for editing.

    Raises:
        FileFormatError: with a sentence a learner can act on.
    """
    spec = load_graph(path)
    return check_editable(spec, os.path.basename(os.fspath(path)))


def save_file(doc: GraphDocument, path: str | os.PathLike[str]) -> None:
    """Write the document atomically (temp file, fsync, rename)."""
    save_graph(doc.spec(), path)
