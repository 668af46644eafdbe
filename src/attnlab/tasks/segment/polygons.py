"""An object's outline as polygons along its pixels' outer edges, as ImageJ's wand tool traces it.

Vertices are pixel corners, (x, y) with pixel (row r, column c) the square [c, c + 1] × [r, r + 1]. Fiji and
QuPath fill a polygon's pixels where the pixel's centre lies inside, so a polygon through the corners covers
its object's pixels exactly; contours through the pixel centres (``skimage.measure.find_contours``) cover one
pixel less around the edge. Every boundary edge is walked once, the object on the right (in image
coordinates, y down): outer rings run clockwise on the screen (positive shoelace area), holes anticlockwise.
At a corner where two object pixels touch only diagonally, the walk turns to keep hugging the pixel it came
along, so each 4-connected piece of an object gets a ring of its own and no ring crosses itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rings", "ring_area", "polygons"]

# An edge's direction (dx, dy) -> the directions to try at its end: right turn, straight on, left turn.
_TURNS = {d: ((-d[1], d[0]), d, (d[1], -d[0])) for d in ((1, 0), (0, 1), (-1, 0), (0, -1))}


def _edges(mask: np.ndarray) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Every boundary edge of ``mask`` (h, w) as start corner (x, y) -> the directions leaving it."""
    m = np.pad(mask.astype(bool), 1)
    inside = m[1:-1, 1:-1]
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}
    # (neighbour outside, the edge's start corner offset (dx, dy) from the pixel's top-left, its direction)
    sides = (
        (~m[:-2, 1:-1], (0, 0), (1, 0)),  # top side, left to right
        (~m[1:-1, 2:], (1, 0), (0, 1)),  # right side, downwards
        (~m[2:, 1:-1], (1, 1), (-1, 0)),  # bottom side, right to left
        (~m[1:-1, :-2], (0, 1), (0, -1)),  # left side, upwards
    )
    for outside, (ox, oy), direction in sides:
        rows, cols = np.nonzero(inside & outside)
        for x, y in zip((cols + ox).tolist(), (rows + oy).tolist(), strict=True):
            out.setdefault((x, y), []).append(direction)
    return out


def rings(mask: np.ndarray) -> list[np.ndarray]:
    """Closed rings (n, 2) int64 of corner (x, y), first vertex not repeated, only the corners where the
    outline turns; outer rings clockwise on the screen, holes anticlockwise."""
    edges = _edges(mask)
    found = []
    while edges:
        start = next(iter(edges))
        corner, direction = start, edges[start][0]
        ring = []
        while True:
            leaving = edges[corner]
            leaving.remove(direction)
            if not leaving:
                del edges[corner]
            ring.append((corner, direction))
            corner = (corner[0] + direction[0], corner[1] + direction[1])
            if corner not in edges:  # every edge of this ring walked: back at the start
                break
            direction = next(d for d in _TURNS[direction] if d in edges[corner])
        vertices = [c for (c, d), (_, before) in zip(ring, [ring[-1], *ring[:-1]], strict=True) if d != before]
        found.append(np.asarray(vertices, dtype=np.int64))
    return found


def ring_area(ring: np.ndarray) -> float:
    """The shoelace area: positive for an outer ring, negative for a hole."""
    x, y = ring[:, 0].astype(np.float64), ring[:, 1].astype(np.float64)
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def polygons(mask: np.ndarray) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """(outer ring, its holes) for each 4-connected piece of ``mask``, largest piece first."""
    from matplotlib.path import Path

    found = rings(mask)
    outers = sorted((r for r in found if ring_area(r) > 0), key=ring_area, reverse=True)
    holes = [r for r in found if ring_area(r) < 0]
    shapes: list[tuple[np.ndarray, list[np.ndarray]]] = [(r, []) for r in outers]
    for hole in holes:
        if len(shapes) == 1:
            shapes[0][1].append(hole)
            continue
        # a point just inside the object beside the hole's first edge (the object is on the edge's right)
        (x0, y0), (x1, y1) = hole[0], hole[1]
        dx, dy = np.sign(x1 - x0), np.sign(y1 - y0)
        probe = (x0 + 0.5 * dx - 0.5 * dy, y0 + 0.5 * dy + 0.5 * dx)
        owner = next((s for s in shapes if Path(s[0]).contains_point(probe)), shapes[0])
        owner[1].append(hole)
    return shapes
