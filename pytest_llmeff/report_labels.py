"""Labels for every point of a scatter plot, placed where they overlap neither each other nor a point.

No label library is a dependency: points that sit on top of each other (under ``CLUSTER_PX``
apart: the same figures, as ``kd`` and ``kd+ah80`` often are) share one label listing them all;
each label then takes the first of a ring of candidate offsets, nearest first, where it stays
inside the axes and clear of the labels placed before it and of every point. A label that finds
no free place takes the nearest offset anyway (it may overlap; every point keeps a label). A label
away from its point gets a thin leader line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

CLUSTER_PX = 7.0  # points closer than this (display pixels) are one spot on the page
POINT_PX = 4.5  # half the size of the box a point occupies
OTHER_PX = 5.0  # the clearance a label keeps from the points it does not name
MARK_PX = 8.0  # half the size of a budget mark's bar
RADII = (4, 10, 18, 28, 40, 54, 70, 88)  # candidate distances from the point, typographic points
DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
LEADER_FROM = 12  # offsets beyond this many points get a leader line


def clusters(xy: Sequence[tuple[float, float]], kinds: Sequence[str] = (),
             radius: float = CLUSTER_PX) -> list[list[int]]:
    """Indices of ``xy`` (display coordinates) grouped by single linkage within ``radius``, in the
    order of their first member; only points of one kind (a failed case is not hidden in a list
    of passing ones) share a group."""
    kind = list(kinds) or [""] * len(xy)
    groups: list[list[int]] = []
    for i, (x, y) in enumerate(xy):
        near = [g for g in groups if kind[g[0]] == kind[i] and any(math.dist((x, y), xy[j]) < radius for j in g)]
        merged = [j for g in near for j in g] + [i]
        groups = [g for g in groups if g not in near] + [sorted(merged)]
    return sorted(groups, key=lambda g: g[0])


def _overlaps(box: Any, others: Sequence[Any]) -> bool:
    return any(box.overlaps(o) for o in others)


def _candidates() -> list[tuple[float, float, str, str]]:
    """(dx, dy, ha, va) in points, nearest first; diagonals stepped back to the same distance; beside
    the point (dy = 0) only close by."""
    out = []
    for r in RADII:
        for dx, dy in DIRECTIONS:
            if dy == 0 and r > LEADER_FROM:
                continue  # far along a row of points, a label is read as its neighbour's
            scale = r / math.hypot(dx, dy)
            out.append((dx * scale, dy * scale, {1: "left", -1: "right", 0: "center"}[dx],
                        {1: "bottom", -1: "top", 0: "center"}[dy]))
    return out


def _spot(note: Any, renderer: Any, frame: Any, taken: Sequence[Any]) -> tuple[tuple[float, float, str, str], Any]:
    """The first candidate offset at which ``note`` is inside ``frame`` and clear of ``taken``; else
    the nearest one. Returns it and the label's box there."""
    first = None
    for candidate in _candidates():
        dx, dy, ha, va = candidate
        note.xyann = (dx, dy)
        note.set_horizontalalignment(ha)
        note.set_verticalalignment(va)
        box = note.get_window_extent(renderer).padded(1.5)
        first = first or (candidate, box)
        inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
        if inside and not _overlaps(box, taken):
            return candidate, box
    assert first is not None
    return first


def place_labels(ax: Any, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str],
                 colours: Sequence[str], avoid: Sequence[Any] = (),
                 segments: Sequence[tuple[tuple[float, float], tuple[float, float]]] = (),
                 sizes: Sequence[float] = (), fontsize: float = 7.5) -> list[Any]:
    """Annotate every point (data coordinates) with its text; returns the annotations. ``avoid``:
    artists already drawn (budget labels), ``segments``: error bars (data coordinates, ends; both
    ends the same: a budget mark), and
    every point's half size in pixels (``sizes``, by default ``POINT_PX``): the labels keep clear of all.

    The axes' limits must be final (the placement works in display coordinates).
    """
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    xy = [tuple(p) for p in ax.transData.transform(list(zip(xs, ys, strict=True)))]
    frame = ax.get_window_extent(renderer)
    half = list(sizes) or [POINT_PX] * len(xy)
    points = [Bbox.from_extents(x - h, y - h, x + h, y + h) for (x, y), h in zip(xy, half, strict=True)]
    bars = []
    for ends in segments:  # an error bar: a flat box along it; a budget mark (one spot): a small square
        (x0, y0), (x1, y1) = ax.transData.transform(list(ends))
        pad = MARK_PX if (x0, y0) == (x1, y1) else 2.0
        bars.append(Bbox.from_extents(min(x0, x1) - pad, min(y0, y1) - pad, max(x0, x1) + pad, max(y0, y1) + pad))
    placed: list[Any] = [a.get_window_extent(renderer) for a in avoid]
    out = []
    for group in clusters(xy, colours):
        # a shared spot is labelled at its members' mean, in the order the table lists them
        at = tuple(ax.transData.inverted().transform((sum(xy[i][0] for i in group) / len(group),
                                                      sum(xy[i][1] for i in group) / len(group))))
        text = "\n".join(texts[i] for i in group)
        colour = colours[group[0]]
        probe = ax.annotate(text, at, xytext=(0, 0), textcoords="offset points", fontsize=fontsize)
        # other points keep a margin: a label right next to one is read as that point's
        near = [b if i in group else b.padded(OTHER_PX) for i, b in enumerate(points)]
        (dx, dy, ha, va), box = _spot(probe, renderer, frame, [*placed, *near, *bars])
        probe.remove()
        leader = {"arrowstyle": "-", "color": "#6e7781", "lw": 0.8, "shrinkA": 0, "shrinkB": 2} \
            if math.hypot(dx, dy) > LEADER_FROM else None
        # a light backing keeps a label legible where a budget line or an axis runs under it
        out.append(ax.annotate(text, at, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                               fontsize=fontsize, color=colour, arrowprops=leader, zorder=5,
                               bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.75}))
        placed.append(box)
    return out
