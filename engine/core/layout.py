"""Automatic left-to-right layered layout of a graph (pure Python; the designer and importers).

Longest-path layering: every node sits one layer right of its furthest predecessor; a
source (Input, Target, Parameter, …) is then pulled right to sit just before its nearest
consumer. Within a layer nodes are ordered by the mean row of their predecessors (fewer
crossings) and centred vertically. Iterative, no recursion, so deep graphs lay out fine.

Given a `max_width`, a long chain is laid out in rows (like lines of text) instead of one
line that only fits the screen at an unreadable zoom. The last row is right-aligned: the
loss ends under the end of the row above, and the bottom-left corner stays free for the
canvas legend.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from engine.core.spec import EdgeSpec

X_SPACING = 220.0
Y_SPACING = 120.0
NODE_WIDTH = 152.0  # designer.canvas.node_item.NODE_WIDTH (this module stays Qt-free)
ROW_GAP = 20.0  # extra room between rows for the wire that runs back to the left


def layered_layout(
    node_ids: list[str],
    edges: Iterable[EdgeSpec],
    origin: tuple[float, float] = (0.0, 0.0),
    max_width: float | None = None,
) -> dict[str, tuple[float, float]]:
    """Positions for `node_ids` in layers left to right.

    Args:
        node_ids: the nodes, in document order (ties keep this order).
        edges: wires; those touching unknown nodes are ignored.
        origin: x of the first layer and y of the centre line (of the first row).
        max_width: when the layers are wider than this (scene units), they wrap into rows
            of as many layers as fit, one row below the other.

    Returns:
        node id -> (x, y).
    """
    known = set(node_ids)
    preds: dict[str, list[str]] = {n: [] for n in node_ids}
    succs: dict[str, list[str]] = {n: [] for n in node_ids}
    for e in edges:
        if e.src in known and e.dst in known and e.src != e.dst:
            preds[e.dst].append(e.src)
            succs[e.src].append(e.dst)

    # Longest path from the sources, in Kahn order.
    indegree = {n: len(preds[n]) for n in node_ids}
    ready = deque(n for n in node_ids if indegree[n] == 0)
    order: list[str] = []
    layer: dict[str, int] = {}
    while ready:
        n = ready.popleft()
        order.append(n)
        layer[n] = max((layer[p] + 1 for p in preds[n] if p in layer), default=0)
        for s in succs[n]:
            indegree[s] -= 1
            if indegree[s] == 0:
                ready.append(s)
    # Nodes in a cycle (the compiler flags them) go after what they can see.
    for n in node_ids:
        if n not in layer:
            layer[n] = max((layer[p] + 1 for p in preds[n] if p in layer), default=0)
            order.append(n)

    # Pull sources right, next to their nearest consumer.
    for n in node_ids:
        if not preds[n] and succs[n]:
            layer[n] = max(0, min(layer[s] for s in succs[n]) - 1)

    layers: dict[int, list[str]] = {}
    for n in node_ids:
        layers.setdefault(layer[n], []).append(n)

    pos: dict[str, tuple[float, float]] = {}
    doc_index = {n: i for i, n in enumerate(node_ids)}
    ox, oy = origin
    n_layers = max(layers, default=0) + 1
    per_row = _layers_per_row(n_layers, max_width)
    row_centre = _row_centres(layers, per_row, oy)
    last_row = (n_layers - 1) // per_row
    indent = (per_row - (n_layers - last_row * per_row)) if last_row else 0
    for k in sorted(layers):
        members = layers[k]

        def key(n: str) -> tuple[float, int]:
            placed = [pos[p][1] for p in preds[n] if p in pos]
            return (sum(placed) / len(placed) if placed else float("inf"), doc_index[n])

        members.sort(key=key)
        count = len(members)
        for i, n in enumerate(members):
            y = row_centre[k // per_row] + (i - (count - 1) / 2.0) * Y_SPACING
            column = k % per_row + (indent if k // per_row == last_row else 0)
            pos[n] = (ox + column * X_SPACING, y)
    return pos


def _layers_per_row(n_layers: int, max_width: float | None) -> int:
    """How many layers one row holds (all of them when there is no width limit)."""
    if max_width is None:
        return max(1, n_layers)
    fit = int((max_width - NODE_WIDTH) // X_SPACING) + 1
    return max(1, min(n_layers, fit))


def _row_centres(layers: dict[int, list[str]], per_row: int, top: float) -> list[float]:
    """The y of each row's centre line: rows stack with room for their tallest layer."""
    n_rows = (max(layers, default=0)) // per_row + 1
    half = [0.0] * n_rows  # half the height of each row's tallest layer, in Y_SPACING units
    for k, members in layers.items():
        half[k // per_row] = max(half[k // per_row], (len(members) - 1) / 2.0)
    centres, y = [], top
    for r in range(n_rows):
        if r:
            y += (half[r - 1] + half[r] + 1) * Y_SPACING + ROW_GAP
        centres.append(y)
    return centres


def wrap_rows(pos: dict[str, tuple[float, float]], per_row: int,
              gap: float = Y_SPACING) -> dict[str, tuple[float, float]]:
    """Fold a long left-to-right layout into rows of `per_row` layers, like lines of text.

    A deep imported network (a dozen layers in a chain) is one very wide strip otherwise,
    which shows tiny at any zoom that fits it; rows keep it legible.
    """
    if not pos:
        return {}
    left = min(x for x, _ in pos.values())
    layers = {n: round((x - left) / X_SPACING) for n, (x, _) in pos.items()}
    if max(layers.values()) < per_row + per_row // 2:
        return dict(pos)
    top = min(y for _, y in pos.values())
    height = max(y for _, y in pos.values()) - top + gap + Y_SPACING
    return {n: (left + (layers[n] % per_row) * X_SPACING, y + (layers[n] // per_row) * height)
            for n, (_, y) in pos.items()}
