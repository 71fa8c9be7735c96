"""Automatic left-to-right layered layout of a graph (pure Python; the designer and importers).

Longest-path layering: every node sits one layer right of its furthest predecessor; a
source (Input, Target, Parameter, …) is then pulled right to sit just before its nearest
consumer. Within a layer nodes are ordered by the mean row of their predecessors (fewer
crossings) and centred vertically. Iterative, no recursion, so deep graphs lay out fine.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from engine.core.spec import EdgeSpec

X_SPACING = 220.0
Y_SPACING = 120.0


def layered_layout(
    node_ids: list[str],
    edges: Iterable[EdgeSpec],
    origin: tuple[float, float] = (0.0, 0.0),
) -> dict[str, tuple[float, float]]:
    """Positions for `node_ids` in layers left to right.

    Args:
        node_ids: the nodes, in document order (ties keep this order).
        edges: wires; those touching unknown nodes are ignored.
        origin: x of the first layer and y of the centre line.

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
    for k in sorted(layers):
        members = layers[k]

        def key(n: str) -> tuple[float, int]:
            placed = [pos[p][1] for p in preds[n] if p in pos]
            return (sum(placed) / len(placed) if placed else float("inf"), doc_index[n])

        members.sort(key=key)
        count = len(members)
        for i, n in enumerate(members):
            y = oy + (i - (count - 1) / 2.0) * Y_SPACING
            pos[n] = (ox + k * X_SPACING, y)
    return pos


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
