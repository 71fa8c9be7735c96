"""The layered layout of the canvas (the code lives in engine.core.layout, shared with the
importers), and how a wire's reroute points follow its moved ends."""

from engine.core.layout import NODE_WIDTH, ROW_GAP, X_SPACING, Y_SPACING, layered_layout

__all__ = ["NODE_WIDTH", "ROW_GAP", "X_SPACING", "Y_SPACING", "follow_ends", "layered_layout"]


def follow_ends(points: list[tuple[float, float]], src: tuple[float, float],
                dst: tuple[float, float], d_src: tuple[float, float],
                d_dst: tuple[float, float]) -> list[tuple[float, float]]:
    """A wire's reroute points after its ends moved: `src` and `dst` are where the ends were,
    `d_src` and `d_dst` how far each moved.

    Ends moved together carry every point by the same step; otherwise each point moves by
    a blend of the two steps, weighted by how far along the wire it lies (a point near the
    source follows the source), so the bend keeps its shape.
    """
    if d_src == d_dst:
        return [(x + d_src[0], y + d_src[1]) for x, y in points]
    path = [src, *points, dst]
    steps = [((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2) ** 0.5 for a, b in zip(path, path[1:])]
    total = sum(steps) or 1.0
    out, walked = [], 0.0
    for (x, y), step in zip(points, steps):
        walked += step
        t = walked / total
        out.append((x + (1 - t) * d_src[0] + t * d_dst[0], y + (1 - t) * d_src[1] + t * d_dst[1]))
    return out
