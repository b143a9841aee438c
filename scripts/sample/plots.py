"""Cutting the lattice's blocks and the expansion into plots."""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from scripts.sample.frame import (
    HALF_ROW,
    OUTSET_M,
    RAIL_PROT_M,
    SUB_PROT_M,
    Lattice,
    band,
    largest,
    polygons,
)

MODES = {
    # cell -> subdivision mode; default "fine"
    (1, 0): "whole",
    (4, 1): "whole",
    (4, 0): "large",
    (3, 2): "large",
    (0, 1): "medium",
    (5, 0): "medium",
    (3, 0): "medium",
    (0, 3): "medium",
    (2, 1): "medium",
    (1, 1): "fine",
    (2, 2): "large",
}
RAIL_CELLS = {(1, 3), (2, 3), (3, 3), (2, 2)}
SIZE_HA = {
    "fine": (1.15, 0.45, 0.45, 3.2),
    "medium": (3.0, 0.35, 1.6, 6.0),
    "large": (7.0, 0.25, 4.0, 11.0),
    "cand": (1.7, 0.45, 0.7, 4.0),
}


def _plot_widths(rng, length: float, depth: float, mode: str) -> list[float]:
    median, sigma, lo, hi = SIZE_HA[mode]
    widths: list[float] = []
    while sum(widths) < length:
        ha = float(np.clip(rng.lognormal(math.log(median), sigma), lo, hi))
        widths.append(max(ha * 1e4 / depth, 32.0))
    if len(widths) > 1 and widths[-1] - (sum(widths) - length) < 0.5 * widths[-1]:
        widths.pop()
    f = length / sum(widths)
    return [w * f for w in widths]


def _subdivide(rng, piece: Polygon, mode: str, max_rows: int = 2) -> list[Polygon]:
    """Cut a block piece into rows along its long axis, then rows into plots."""
    minu, minv, maxu, maxv = piece.bounds
    axis = "u" if (maxu - minu) >= (maxv - minv) else "v"
    if mode == "whole":
        return [piece]
    across = (minv, maxv) if axis == "u" else (minu, maxu)
    width = across[1] - across[0]
    rows = [piece]
    if max_rows > 1 and width > 300.0:
        cut = across[0] + width * float(rng.uniform(0.45, 0.55))
        other = "v" if axis == "u" else "u"
        rows = [
            largest(piece.intersection(band(other, -1e5, cut))),
            largest(piece.intersection(band(other, cut, 1e5))),
        ]
    plots: list[Polygon] = []
    for row in rows:
        if row is None:
            continue
        lo, hi = (row.bounds[0], row.bounds[2]) if axis == "u" else (row.bounds[1], row.bounds[3])
        depth = row.area / (hi - lo)
        if mode == "large":
            count = max(1, round(row.area / 1e4 / float(rng.uniform(5.5, 9.0))))
            widths = [(hi - lo) / count] * count
        else:
            widths = _plot_widths(rng, hi - lo, depth, mode)
        edges = np.concatenate([[lo], lo + np.cumsum(widths)])
        edges[-1] = hi
        # a band may fall apart where a siding or yard cuts the row: keep every part,
        # grouping parts by their side so small ones merge with a neighbour they touch
        lanes: dict[int, list[Polygon]] = {}
        for a, b in zip(edges[:-1], edges[1:]):
            parts = sorted(
                polygons(row.intersection(band(axis, a, b))),
                key=lambda p: p.centroid.y if axis == "u" else p.centroid.x,
            )
            for lane, part in enumerate(parts):
                if part.area > 1.0:
                    lanes.setdefault(lane, []).append(part)
        for lane in sorted(lanes):
            plots += _merge_small(lanes[lane])
    return plots


def _merge_small(row: list[Polygon], min_m2: float = 3500.0) -> list[Polygon]:
    """Join plots below ``min_m2`` (or slivers) to their neighbour in the row."""
    row = list(row)
    changed = True
    while changed and len(row) > 1:
        changed = False
        for i, p in enumerate(row):
            thin = p.area / max(p.length, 1.0) < 9.0
            if p.area < min_m2 or thin:
                j = i - 1 if i > 0 else i + 1
                if i + 1 < len(row) and i > 0 and row[i + 1].area < row[i - 1].area:
                    j = i + 1
                merged = largest(shapely.union(row[j], p))
                if merged is not None and merged.area >= row[j].area + p.area - 1.0:
                    row[min(i, j)] = merged
                    del row[max(i, j)]
                    changed = True
                    break
    return row


def _cell_of(lat: Lattice, geom) -> tuple[int, int] | None:
    p = geom.representative_point()
    for c in lat.cells:
        if lat.quad(*c).contains(p):
            return c
    return None


def cut_zone_plots(rng, g: dict) -> tuple[list, list]:
    lat: Lattice = g["lat"]
    carve = [LineString(r["coords"]).buffer(HALF_ROW[r["cls"]] + 0.5) for r in g["roads"]]
    carve += [Point(p).buffer(HALF_ROW["local"] + 0.5) for p in lat.nodes.values()]
    carve += [LineString(r["coords"]).buffer(RAIL_PROT_M[r["kind"]] + 1.0) for r in g["rails"]]
    carve.append(Point(g["station"]).buffer(48.0, join_style="mitre"))
    carve += [Point(p).buffer(SUB_PROT_M + 1.0, cap_style="square") for p in g["subs"].values()]
    free = g["zone"].difference(shapely.union_all(carve))
    pieces = [p for p in polygons(free) if not p.buffer(-16.0).is_empty and p.area > 4000.0]
    pieces.sort(key=lambda p: (-round(p.centroid.y, -1), round(p.centroid.x, -1)))
    plots = []
    for piece in pieces:
        cell = _cell_of(lat, piece)
        if cell is None:
            continue
        mode = MODES.get(cell, "medium" if cell in RAIL_CELLS else "fine")
        max_rows = 1 if cell in RAIL_CELLS else 2
        for p in _subdivide(rng, piece, mode, max_rows):
            plots.append((p, cell))
    roads = shapely.union_all([LineString(r["coords"]) for r in g["roads"]])
    return _ensure_frontage(plots, roads), carve


def _ensure_frontage(plots: list, roads, reach: float = 24.0) -> list:
    """Join a plot with no road frontage to a fronting neighbour; drop it if none."""
    plots = list(plots)
    while True:
        blind = [k for k, (p, _) in enumerate(plots) if p.distance(roads) > reach]
        if not blind:
            return [(p, c) for p, c in plots if p.area >= 3000.0]
        k = blind[0]
        p, cell = plots[k]
        best = None
        for m, (q, qc) in enumerate(plots):
            if m == k or qc != cell or q.distance(roads) > reach:
                continue
            shared = p.boundary.intersection(q.boundary).length
            merged = shapely.union(p, q)
            if shared > 10.0 and isinstance(merged, Polygon) and merged.area < 25e4 - 1:
                if best is None or shared > best[0]:
                    best = (shared, m, merged)
        if best is not None:
            plots[best[1]] = (best[2], plots[best[1]][1])
        del plots[k]


def cut_candidate_plots(rng, g: dict) -> list[Polygon]:
    """~20 candidate plots in EXP-1 between future streets continuing columns 2..4."""
    lat, e1 = g["lat"], g["e1"]
    n = lat.nodes
    base = min(n[i, 0][1] for i in (2, 3, 4))
    cut_v = base - OUTSET_M - 400.0
    future = [LineString([n[i, 0], (n[i, 0][0], cut_v - 400.0)]) for i in (2, 3, 4)]
    future.append(LineString([(n[2, 0][0] - 300.0, cut_v), (n[4, 0][0] + 300.0, cut_v)]))
    blocked = shapely.union_all(
        [f.buffer(15.0) for f in future]
        + [Point(g["subs"]["SS-30"]).buffer(SUB_PROT_M + 1.0, cap_style="square")]
    )
    area = e1.intersection(box(n[2, 0][0], cut_v, n[4, 0][0], base)).difference(blocked)
    area = area.difference(g["zone"].buffer(12.0))
    plots = []
    for piece in sorted(polygons(area), key=lambda p: p.centroid.x):
        if piece.area < 5e4:
            continue
        plots += _subdivide(rng, piece, "cand", 2)
    return plots
