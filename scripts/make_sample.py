"""Deterministic generator of a synthetic Almaty Industrial Zone (sample shapefiles).

The zone is built in a local metric frame (u east-ish, v north-ish) on a jittered
street lattice, then rotated and moved into UTM 43N around the zone's real
location (43.33 N, 76.85 E). Every random draw comes from one seeded numpy
generator, so the files are the same on every run.

Usage::

    .venv/bin/python scripts/make_sample.py [--out data/shapefiles]
                                            [--applications data/applications.csv]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shapely  # noqa: E402
from shapely import affinity  # noqa: E402
from shapely.geometry import LineString, Point, Polygon, box  # noqa: E402

from geo.io import write_shapefile  # noqa: E402
from geo.layers import FEATURE_LAYERS, SECTORS, get_layer  # noqa: E402

SEED = 20220408  # the date of the akimat's visit
EPSG = 32643
CENTRE = (649_980.0, 4_799_120.0)  # 43.33 N, 76.85 E in UTM 43N
ROTATION_DEG = 7.0  # the street grid is turned a little anticlockwise from north
ZONE_HA = 490.0
EXPANSION_HA = 200.0
DBF_DATE = bytes((122, 4, 8))  # 2022-04-08: fixed "last update" so files are reproducible

OPERATOR = "Industrial Zone Almaty LLP"
DUE = "2022-10-30"

# Street lattice: column (u) and row (v) spacings in metres before scaling.
U_SPACING = (430.0, 520.0, 470.0, 560.0, 450.0, 500.0)
V_SPACING = (480.0, 410.0, 530.0, 450.0)
OMITTED_CELLS = {(0, 0), (5, 2), (5, 3)}  # stepped outline; (5, 2)/(5, 3) become expansion
JITTER_M = 26.0
OUTSET_M = 30.0  # zone fence outside the perimeter road centreline
HALF_ROW = {"arterial": 22.0, "collector": 16.0, "local": 13.0, "access": 8.0}
RAIL_PROT_M = {"mainline": 30.0, "spur": 12.0, "siding": 12.0}
SUB_PROT_M = 40.0
STATION_CELL = 2  # the station sits in the top block of column 2

# Utilities follow the road centrelines shifted by a fixed local vector, so lines of
# one network keep sharing their junction vertices.
SHIFT = {"water": (-6.0, -6.0), "gas": (9.0, -9.0), "storm": (-9.0, 9.0)}


# --------------------------------------------------------------------------- helpers


def _pt(p) -> tuple[float, float]:
    return (round(float(p[0]), 3), round(float(p[1]), 3))


def _mid(a, b, t: float = 0.5) -> tuple[float, float]:
    return _pt((a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t))


def _smooth(points: list, radius: float, steps: int = 6) -> list:
    """Round the interior corners of a polyline with quadratic Bézier fillets."""
    out = [points[0]]
    for a, b, c in zip(points[:-2], points[1:-1], points[2:]):
        ab = math.dist(a, b)
        bc = math.dist(b, c)
        r = min(radius, ab / 2.0, bc / 2.0)
        p0 = _mid(b, a, r / ab)
        p2 = _mid(b, c, r / bc)
        for k in range(steps + 1):
            t = k / steps
            x = (1 - t) ** 2 * p0[0] + 2 * t * (1 - t) * b[0] + t * t * p2[0]
            y = (1 - t) ** 2 * p0[1] + 2 * t * (1 - t) * b[1] + t * t * p2[1]
            out.append(_pt((x, y)))
    out.append(points[-1])
    dedup = [out[0]]
    for p in out[1:]:
        if math.dist(p, dedup[-1]) > 0.5:
            dedup.append(p)
    return dedup


def _bezier(p0, p1, p2, n: int) -> list:
    return [
        _pt(
            (
                (1 - t) ** 2 * p0[0] + 2 * t * (1 - t) * p1[0] + t * t * p2[0],
                (1 - t) ** 2 * p0[1] + 2 * t * (1 - t) * p1[1] + t * t * p2[1],
            )
        )
        for t in np.linspace(0.0, 1.0, n)
    ]


def _polygons(geom) -> list[Polygon]:
    if geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    return [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]


def _largest(geom) -> Polygon | None:
    parts = _polygons(geom)
    return max(parts, key=lambda g: g.area) if parts else None


def _band(axis: str, lo: float, hi: float) -> Polygon:
    big = 1e5
    return box(lo, -big, hi, big) if axis == "u" else box(-big, lo, big, hi)


# --------------------------------------------------------------------------- lattice


@dataclass
class Lattice:
    nodes: dict  # (i, j) -> (u, v)
    cells: list  # included (i, j)

    def quad(self, i: int, j: int) -> Polygon:
        n = self.nodes
        return Polygon([n[i, j], n[i + 1, j], n[i + 1, j + 1], n[i, j + 1]])

    def edges(self) -> dict:
        """Road edges ((i, j), (k, l)) -> number of included cells they border."""
        count: dict = {}
        for i, j in self.cells:
            for e in (
                ((i, j), (i + 1, j)),
                ((i + 1, j), (i + 1, j + 1)),
                ((i, j + 1), (i + 1, j + 1)),
                ((i, j), (i, j + 1)),
            ):
                count[e] = count.get(e, 0) + 1
        return count


def _lattice(scale: float, jitter: np.ndarray) -> Lattice:
    us = np.concatenate([[0.0], np.cumsum(U_SPACING)]) * scale
    vs = np.concatenate([[0.0], np.cumsum(V_SPACING)]) * scale
    us -= us[-1] / 2.0
    vs -= vs[-1] / 2.0
    cells = [
        (i, j)
        for j in range(len(V_SPACING))
        for i in range(len(U_SPACING))
        if (i, j) not in OMITTED_CELLS
    ]
    used = {(i + di, j + dj) for i, j in cells for di in (0, 1) for dj in (0, 1)}
    nodes = {
        (i, j): _pt((us[i] + jitter[i, j, 0], vs[j] + jitter[i, j, 1])) for (i, j) in sorted(used)
    }
    return Lattice(nodes, cells)


def _zone_outline(lat: Lattice) -> Polygon:
    cells = shapely.union_all([lat.quad(i, j) for i, j in lat.cells])
    outline = cells.buffer(OUTSET_M, join_style="mitre", mitre_limit=3.0)
    return shapely.set_precision(outline, 0.01)


# --------------------------------------------------------------------------- geometry


def _geometry(rng: np.random.Generator) -> dict:
    """All shapes in the local frame (metres), before placing them in UTM."""
    jitter = rng.uniform(-JITTER_M, JITTER_M, size=(len(U_SPACING) + 1, len(V_SPACING) + 1, 2))
    scale = 1.0
    for _ in range(6):
        zone = _zone_outline(_lattice(scale, jitter))
        scale *= math.sqrt(ZONE_HA * 1e4 / zone.area)
    lat = _lattice(scale, jitter)
    zone = _zone_outline(lat)
    n = lat.nodes
    ni, nj = len(U_SPACING), len(V_SPACING)

    # ---- roads: lattice edges, gate stubs, one station access road
    edge_cells = lat.edges()
    roads: list[dict] = []
    col_names = [
        "ул. Заводская",
        "Zavodskaya Lane",
        "ул. Промышленная",
        "Industrial Avenue (пр. Индустриальный)",
        "ул. Монтажная",
        "ул. Складская",
        "Eastern Ring Road",
    ]
    row_names = [
        "ул. Южная",
        "ул. Литейная",
        "Central Avenue (пр. Центральный)",
        "ул. Энергетиков",
        "ул. Северная",
    ]

    def road_class(a, b) -> str:
        vertical = a[0] == b[0]
        if edge_cells[(a, b)] == 1:
            return "collector"
        if (vertical and a[0] == 3) or (not vertical and a[1] == 2):
            return "arterial"
        return "local"

    top_l, top_r = n[STATION_CELL, nj], n[STATION_CELL + 1, nj]
    access_at = _mid(top_l, top_r, 0.62)
    for a, b in sorted(edge_cells):
        name = col_names[a[0]] if a[0] == b[0] else row_names[a[1]]
        cls = road_class(a, b)
        if (a, b) == ((STATION_CELL, nj), (STATION_CELL + 1, nj)):
            roads.append(dict(coords=[n[a], access_at], cls=cls, name=name))
            roads.append(dict(coords=[access_at, n[b]], cls=cls, name=name))
        else:
            roads.append(dict(coords=[n[a], n[b]], cls=cls, name=name))

    # gates: arterial stubs from perimeter nodes straight out to the fence
    gate_specs = [
        ((0, 2), (1, 2), "Gate W (Западный въезд)", "Western approach (Западный подъезд)"),
        ((3, 0), (3, 1), "Gate S (Южный въезд)", "Southern approach (Южный подъезд)"),
        ((6, 1), (5, 1), "Gate E (Восточный въезд)", "Eastern approach (Восточный подъезд)"),
        ((3, nj), (3, nj - 1), "Gate N (Северный въезд)", "Northern approach (Северный подъезд)"),
    ]
    gates = []
    ring = zone.exterior
    for node, inner, gname, rname in gate_specs:
        p, q = n[node], n[inner]
        d = np.subtract(p, q)
        d = d / np.linalg.norm(d)
        ray = LineString([p, tuple(np.add(p, d * 400.0))])
        hit = ray.intersection(ring)
        pts = [hit] if isinstance(hit, Point) else list(hit.geoms)
        end = min(pts, key=lambda g: g.distance(Point(p)))
        end = (float(end.x), float(end.y))  # exact intersection: stays on the fence line
        roads.append(dict(coords=[p, end], cls="arterial", name=rname))
        gates.append(dict(coords=end, name=gname))

    # ---- rail
    yard_ref = _mid(top_l, top_r, 0.5)
    station = _pt((yard_ref[0], yard_ref[1] - 110.0))
    north = max(y for _, y in ring.coords)
    v_main = north + 150.0
    u_lo = min(x for x, _ in ring.coords) - 900.0
    u_hi = max(x for x, _ in ring.coords) + 900.0
    u_junction = station[0] - 935.0

    def main_v(u: float) -> float:
        return v_main + 25.0 * math.sin((u - u_lo) / 1400.0) + 0.000012 * (u - u_lo) * 40.0

    us_main = sorted(set(np.round(np.arange(u_lo, u_hi + 1, 300.0), 3)) | {u_junction})
    main_pts = [_pt((u, main_v(u))) for u in us_main]
    junction = _pt((u_junction, main_v(u_junction)))
    k = main_pts.index(junction)
    spur = _bezier(junction, (station[0] - 150.0, junction[1] + 5.0), station, 24)
    col2_mid_3 = _mid(n[STATION_CELL, nj - 1], n[STATION_CELL + 1, nj - 1])
    col2_mid_2 = _mid(n[STATION_CELL, nj - 2], n[STATION_CELL + 1, nj - 2])
    sd1 = [station, col2_mid_3, _pt((col2_mid_2[0], col2_mid_2[1] + 70.0))]
    col3_top = _mid(n[STATION_CELL + 1, nj], n[STATION_CELL + 2, nj])
    col3_mid_3 = _mid(n[STATION_CELL + 1, nj - 1], n[STATION_CELL + 2, nj - 1])
    sd2 = _smooth(
        [station, _pt((col3_top[0], station[1])), _pt((col3_mid_3[0], col3_mid_3[1] + 70.0))], 90.0
    )
    col1_top = _mid(n[STATION_CELL - 1, nj], n[STATION_CELL, nj])
    col1_mid_3 = _mid(n[STATION_CELL - 1, nj - 1], n[STATION_CELL, nj - 1])
    sd3 = _smooth(
        [
            station,
            _pt((col1_top[0], station[1] - 20.0)),
            _pt((col1_mid_3[0], col1_mid_3[1] + 70.0)),
        ],
        90.0,
    )
    rails = [
        dict(coords=main_pts[: k + 1], kind="mainline"),
        dict(coords=main_pts[k:], kind="mainline"),
        dict(coords=spur, kind="spur"),
        dict(coords=_smooth(sd1, 60.0), kind="siding"),
        dict(coords=sd2, kind="siding"),
        dict(coords=sd3, kind="siding"),
    ]
    access_bend = _pt((access_at[0], station[1] + 58.0))
    access_end = _pt((station[0] + 28.0, station[1] + 28.0))  # inside the station yard
    roads.append(
        dict(
            coords=[access_at, access_bend, access_end],
            cls="access",
            name="Station access (подъезд к станции)",
        )
    )

    # ---- substations: inside a cell, diagonally off its south-west node
    def sub_at(node, sign=(1, 1)) -> tuple[float, float]:
        return _pt((n[node][0] + 60.0 * sign[0], n[node][1] + 60.0 * sign[1]))

    subs = {
        "SS-7": sub_at((3, 1)),
        "SS-12": sub_at((1, 2)),
        "SS-14": sub_at((4, 2)),
        "SS-19": sub_at((1, 0)),
    }

    # ---- expansion areas
    bottom = [n[i, 0] for i in range(1, ni + 1)]
    e1_u0 = n[1, 0][0] + 150.0
    e1_u1 = n[5, 0][0] - 100.0
    e1_top = max(p[1] for p in bottom) + 200.0
    e2 = box(
        n[5, 2][0] - 100.0, n[5, 2][1] - 150.0, n[6, 1][0] + 130.0, n[5, nj][1] - 10.0
    ).difference(zone)
    e2 = shapely.set_precision(_largest(e2), 0.01)
    depth = 600.0
    for _ in range(6):
        e1 = box(e1_u0, min(p[1] for p in bottom) - depth, e1_u1, e1_top).difference(zone)
        e1 = shapely.set_precision(_largest(e1), 0.01)
        gap = EXPANSION_HA * 1e4 - e1.area - e2.area
        depth += gap / (e1_u1 - e1_u0)
    subs["SS-30"] = _pt((n[4, 0][0] + 230.0, n[4, 0][1] - 260.0))

    return dict(
        lat=lat,
        zone=zone,
        roads=roads,
        gates=gates,
        rails=rails,
        station=station,
        subs=subs,
        e1=e1,
        e2=e2,
        scale=scale,
        col_names=col_names,
        row_names=row_names,
    )


# --------------------------------------------------------------------------- plots

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
            _largest(piece.intersection(_band(other, -1e5, cut))),
            _largest(piece.intersection(_band(other, cut, 1e5))),
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
                _polygons(row.intersection(_band(axis, a, b))),
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
                merged = _largest(shapely.union(row[j], p))
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


def _zone_plots(rng, g: dict) -> tuple[list, list]:
    lat: Lattice = g["lat"]
    carve = [LineString(r["coords"]).buffer(HALF_ROW[r["cls"]] + 0.5) for r in g["roads"]]
    carve += [Point(p).buffer(HALF_ROW["local"] + 0.5) for p in lat.nodes.values()]
    carve += [LineString(r["coords"]).buffer(RAIL_PROT_M[r["kind"]] + 1.0) for r in g["rails"]]
    carve.append(Point(g["station"]).buffer(48.0, join_style="mitre"))
    carve += [Point(p).buffer(SUB_PROT_M + 1.0, cap_style="square") for p in g["subs"].values()]
    free = g["zone"].difference(shapely.union_all(carve))
    pieces = [p for p in _polygons(free) if not p.buffer(-16.0).is_empty and p.area > 4000.0]
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


def _candidate_plots(rng, g: dict) -> list[Polygon]:
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
    for piece in sorted(_polygons(area), key=lambda p: p.centroid.x):
        if piece.area < 5e4:
            continue
        plots += _subdivide(rng, piece, "cand", 2)
    return plots


# --------------------------------------------------------------------------- attributes

RU_ROOTS = [
    "Алатау",
    "Жетысу",
    "Тянь-Шань",
    "Медеу",
    "Туран",
    "Кайнар",
    "Береке",
    "Арман",
    "Достык",
    "Сункар",
    "Байтерек",
    "Илийский",
    "Капшагай",
    "Шыгыс",
    "Нурлы",
    "Асем",
]
EN_ROOTS = [
    "Steppe",
    "Alatau",
    "Zhetysu",
    "Silk Way",
    "Tien Shan",
    "Medeu",
    "Kazakh",
    "Eurasia",
    "Almaty",
    "Caspian",
    "Altyn",
    "Baikonur",
    "Saryarka",
    "Ile",
]
SECTOR_NOUN = {
    "machine": (["Машзавод", "Техмаш", "Агромаш"], ["Machinery", "Engineering", "Motors"]),
    "materials": (
        ["Металл", "Стройматериалы", "Бетон"],
        ["Steel", "Building Materials", "Polymers"],
    ),
    "food": (["Агро", "Фуд", "Молоко"], ["Foods", "Agro", "Dairy"]),
    "pharma": (["Фарм", "Медпрепараты"], ["Pharma", "Medical"]),
    "chemicals": (["Химпром", "Лакокраска"], ["Chemicals", "Coatings"]),
    "light": (["Текстиль", "Мебель"], ["Textiles", "Furniture"]),
    "logistics": (["Логистик", "Транзит"], ["Logistics", "Terminals"]),
    "energy": (["Энергомаш", "Кабель"], ["Energy Systems", "Cable Works"]),
}
PROJECTS = {
    "machine": [
        "Agricultural machinery assembly",
        "Metal structures fabrication",
        "Electrical equipment plant",
        "Bus and truck body assembly",
    ],
    "materials": [
        "Dry building mixes",
        "PVC pipe production",
        "Aerated concrete blocks",
        "Steel wire and mesh",
    ],
    "food": [
        "Dairy processing",
        "Meat processing plant",
        "Confectionery factory",
        "Flour mill and bakery",
    ],
    "pharma": ["Generic drugs (GMP)", "Medical disposables", "Infusion solutions plant"],
    "chemicals": ["Paints and coatings", "Household chemicals", "Polymer packaging film"],
    "light": ["Garment factory", "Footwear production", "Furniture factory"],
    "logistics": ["Bonded warehouse", "Cold-chain distribution centre", "Cross-dock terminal"],
    "energy": ["Solar panel assembly", "Transformer repair works", "Cable and wire plant"],
}
KW_PER_HA = {
    "machine": 260,
    "materials": 420,
    "food": 220,
    "pharma": 300,
    "chemicals": 360,
    "light": 130,
    "logistics": 70,
    "energy": 260,
}
M3D_PER_HA = {
    "machine": 12,
    "materials": 25,
    "food": 60,
    "pharma": 40,
    "chemicals": 45,
    "light": 15,
    "logistics": 4,
    "energy": 10,
}
HAZARD = {
    "machine": (2, 4),
    "materials": (2, 4),
    "food": (1, 2),
    "pharma": (2, 3),
    "chemicals": (3, 5),
    "light": (1, 2),
    "logistics": (1, 2),
    "energy": (2, 3),
}
ALLOWED = [
    "*",
    "*",
    "*",
    "machine,materials,logistics,energy",
    "food,pharma,light,logistics",
    "machine,materials,chemicals,energy",
    "machine,light,logistics,food",
]
RAIL_ALLOWED = "machine,materials,logistics,energy,chemicals"

SEEDS = {
    "steel": dict(
        resident="Asia Steel Pipe Corporation",
        sector="materials",
        project="Large-diameter welded steel pipe, 100 kt/yr (export to UZ, TM, TJ, RU, CN, KG)",
        status="occupied",
        invest=38_000_000_000.0,
        jobs=520,
        power_kw=9200.0,
        water_m3d=620.0,
        rail_need=True,
        hazard=3,
        floor_m2=46_000.0,
        start_yr=2019,
    ),
    "greenhouse": dict(
        resident="BRB APK (ТОО «BRB АПК»)",
        sector="food",
        project="Greenhouse complex, 7.2 kt vegetables/yr (export to RU, UAE)",
        status="occupied",
        invest=21_000_000_000.0,
        jobs=430,
        power_kw=4300.0,
        water_m3d=1150.0,
        rail_need=False,
        hazard=1,
        floor_m2=118_000.0,
        start_yr=2020,
    ),
    "valtherm": dict(
        resident="Valtherm",
        sector="machine",
        project="Aluminium and bimetallic radiators, 20 M units/yr "
        "(under construction; export mainly to RU)",
        status="allocated",
        invest=12_500_000_000.0,
        jobs=290,
        power_kw=6400.0,
        water_m3d=240.0,
        rail_need=False,
        hazard=3,
        floor_m2=36_000.0,
        start_yr=2021,
    ),
    "auto": dict(
        resident="ТОО «Алматы Автокомпонент»",
        sector="machine",
        project="Auto-components plant: seats, plastic parts, accessories, "
        "multimedia systems (construction from autumn 2022)",
        status="allocated",
        invest=24_000_000_000.0,
        jobs=650,
        power_kw=5200.0,
        water_m3d=160.0,
        rail_need=False,
        hazard=3,
        floor_m2=42_000.0,
        start_yr=2022,
    ),
}
OCCUPANT_FIELDS = (
    "resident",
    "project",
    "sector",
    "invest",
    "jobs",
    "power_kw",
    "water_m3d",
    "rail_need",
    "hazard",
    "floor_m2",
    "start_yr",
)


def _company(rng, sector: str, used: set) -> str:
    ru, en = SECTOR_NOUN[sector]
    for _ in range(50):
        if rng.random() < 0.5:
            name = f"ТОО «{rng.choice(RU_ROOTS)} {rng.choice(ru)}»"
        else:
            name = f"{rng.choice(EN_ROOTS)} {rng.choice(en)} LLP"
        if name not in used:
            used.add(name)
            return name
    name = f"{name} {len(used)}"
    used.add(name)
    return name


def _occupant(rng, sector: str, ha: float, status: str, used: set) -> dict:
    intensity = float(rng.uniform(0.6, 1.4))
    h_lo, h_hi = HAZARD[sector]
    return dict(
        resident=_company(rng, sector, used),
        sector=sector,
        project=str(rng.choice(PROJECTS[sector])),
        invest=float(round(ha * rng.uniform(0.35e9, 1.6e9), -6)),
        jobs=int(max(8, round(ha * rng.uniform(10, 42)))),
        power_kw=float(round(ha * KW_PER_HA[sector] * intensity, -1)),
        water_m3d=float(round(ha * M3D_PER_HA[sector] * float(rng.uniform(0.6, 1.4)), 1)),
        rail_need=bool(sector in ("materials", "machine", "logistics") and rng.random() < 0.3),
        hazard=int(rng.integers(h_lo, h_hi + 1)),
        floor_m2=float(round(ha * 1e4 * rng.uniform(0.22, 0.55), -1)),
        start_yr=int(
            rng.integers(2006, 2022) if status == "occupied" else rng.integers(2021, 2024)
        ),
    )


def _plot_attributes(rng, zone_plots: list, cand_plots: list, g: dict) -> list[dict]:
    lat = g["lat"]
    sidings = shapely.union_all(
        [LineString(r["coords"]) for r in g["rails"] if r["kind"] == "siding"]
    )
    rows = []
    for k, (geom, cell) in enumerate(zone_plots):
        rows.append(
            dict(
                geometry=geom,
                cell=cell,
                ha=geom.area / 1e4,
                rail=geom.distance(sidings) < 20.0,
                exp=None,
            )
        )
    for geom in cand_plots:
        rows.append(
            dict(
                geometry=geom,
                cell=None,
                ha=geom.area / 1e4,
                rail=False,
                exp="EXP-1",
                status="candidate",
            )
        )
    nzone = len(zone_plots)

    def pick(pred, key):
        options = [i for i in range(nzone) if pred(rows[i]) and "status" not in rows[i]]
        return max(options, key=key)

    seeds = {
        "steel": pick(lambda r: r["rail"] and r["cell"] == (2, 2), lambda i: rows[i]["ha"]),
        "greenhouse": pick(lambda r: r["cell"] == (1, 0), lambda i: rows[i]["ha"]),
        "valtherm": pick(lambda r: r["cell"] == (4, 0), lambda i: -abs(rows[i]["ha"] - 6.5)),
        "auto": pick(lambda r: r["cell"] == (3, 2), lambda i: -abs(rows[i]["ha"] - 8.0)),
    }
    for key, i in seeds.items():
        rows[i].update(SEEDS[key])
        rows[i]["sectors"] = RAIL_ALLOWED if rows[i]["rail"] else "*"
        rows[i]["hazard_ok"] = 4
    # rail-side plots kept free for rail-dependent investors
    rail_free = [i for i in range(nzone) if rows[i]["rail"] and "status" not in rows[i]]
    for i in rail_free[::3][:5]:
        rows[i]["status"] = "available"
    # the remaining statuses: available plots lean to the newer east and south
    rest = [i for i in range(nzone) if "status" not in rows[i]]
    lat_cells = lat.cells
    east = {c: (c[0] + (len(V_SPACING) - c[1])) for c in lat_cells}
    weights = np.array([1.0 + east[rows[i]["cell"]] ** 1.5 for i in rest])
    n_avail = 52 - sum(1 for i in range(nzone) if rows[i].get("status") == "available")
    order = list(rng.choice(rest, size=len(rest), replace=False, p=weights / weights.sum()))
    plan = ["available"] * n_avail + ["candidate"] * 3 + ["reserved"] * 10 + ["allocated"] * 10
    for i, status in zip(order, plan):
        rows[i]["status"] = status
    for i in rest:
        rows[i].setdefault("status", "occupied")

    used = {r["resident"] for r in rows if "resident" in r}
    sector_cycle = list(SECTORS)
    occupied = [
        i
        for i in range(nzone)
        if rows[i]["status"] in ("occupied", "allocated") and "resident" not in rows[i]
    ]
    for n_, i in enumerate(occupied):
        r = rows[i]
        allowed = str(rng.choice(ALLOWED)) if not r["rail"] else RAIL_ALLOWED
        choices = sorted(SECTORS if allowed == "*" else allowed.split(","))
        sector = (
            sector_cycle[n_]
            if n_ < len(sector_cycle) and sector_cycle[n_] in choices
            else str(rng.choice(choices))
        )
        if n_ < len(sector_cycle):
            allowed = "*"
            sector = sector_cycle[n_]
        r.update(_occupant(rng, sector, r["ha"], r["status"], used))
        if r["rail"] and sector in ("materials", "machine", "logistics"):
            r["rail_need"] = True
        r["sectors"] = allowed
        r["hazard_ok"] = int(max(r["hazard"], rng.integers(2, 6)))
    for i, r in enumerate(rows):
        if r["status"] in ("occupied", "allocated"):
            continue
        r["sectors"] = RAIL_ALLOWED if r["rail"] else str(rng.choice(ALLOWED))
        r["hazard_ok"] = int(rng.integers(2, 6)) if not r["rail"] else 4
        if r["status"] == "reserved":
            choices = sorted(SECTORS if r["sectors"] == "*" else r["sectors"].split(","))
            sector = str(rng.choice(choices))
            r.update(
                resident=_company(rng, sector, used),
                sector=sector,
                project=str(rng.choice(PROJECTS[sector])),
            )

    out = []
    for k, r in enumerate(rows):
        cell = r["cell"]
        cad = (
            f"20-321-{(cell[1] * 10 + cell[0] + 1):03d}-{k + 101:03d}"
            if cell is not None and r["status"] != "candidate"
            else None
        )
        rec = {f.name: None for f in get_layer("plots").input_fields}
        rec.update({key: r[key] for key in rec if key in r})
        rec.update(plot_id=f"P-{k + 1:03d}", cadastre=cad, exp_id=r["exp"], geometry=r["geometry"])
        out.append(rec)
    return out


# --------------------------------------------------------------------------- assets


def _asset(layer: str, **values) -> dict:
    rec = {f.name: None for f in get_layer(layer).input_fields}
    rec.update(values)
    return rec


def _shifted(coords, shift) -> list:
    return [_pt((x + shift[0], y + shift[1])) for x, y in coords]


def _node_lines(lines: list[list]) -> list[list[list]]:
    """Split each line at interior vertices that other lines share (network noding)."""
    seen: dict = {}
    for idx, coords in enumerate(lines):
        for p in coords:
            seen.setdefault(p, set()).add(idx)
    out = []
    for idx, coords in enumerate(lines):
        parts, current = [], [coords[0]]
        for p in coords[1:-1]:
            current.append(p)
            if len(seen[p]) > 1:
                parts.append(current)
                current = [p]
        current.append(coords[-1])
        parts.append(current)
        out.append(parts)
    return out


def _runs(line: list, edges: set) -> list[list]:
    """Maximal runs of consecutive lattice nodes along ``line`` joined by road edges."""
    out, cur = [], [line[0]]
    for a, b in zip(line[:-1], line[1:]):
        if (a, b) in edges:
            cur.append(b)
        else:
            if len(cur) > 1:
                out.append(cur)
            cur = [b]
    if len(cur) > 1:
        out.append(cur)
    return out


def _networks(g: dict, rng) -> dict:
    n = g["lat"].nodes
    nj = len(V_SPACING)

    def path(*nodes) -> list:
        return [n[x] for x in nodes]

    # power: feeders leave each substation to the road on its west or south side
    feeders = {
        "SS-7": [
            ((3, 1), (4, 1), (5, 1), (6, 1)),
            ((4, 1), (3, 1), (2, 1), (1, 1), (0, 1)),
            ((3, 2), (3, 1), (3, 0)),
            ((3, 1), (3, 2), (2, 2)),
        ],
        "SS-12": [
            ((1, 2), (1, 3), (1, 4), (0, 4)),
            ((2, 2), (1, 2), (0, 2), (0, 3)),
            ((1, 3), (1, 2), (1, 1)),
        ],
        "SS-14": [
            ((4, 2), (4, 3), (4, 4), (5, 4)),
            ((5, 2), (4, 2), (3, 2), (3, 3), (3, 4)),
            ((4, 2), (5, 2), (6, 2)),
            ((4, 3), (4, 2), (4, 1)),
        ],
        "SS-19": [
            ((1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0)),
            ((1, 1), (1, 0)),
            ((2, 0), (1, 0), (1, 1), (0, 1)),
        ],
    }
    power = []
    for sub, specs in feeders.items():
        s = g["subs"][sub]
        d = 5.0 + 1.5 * len(power)  # each substation's cables on their own line
        for k, spec in enumerate(specs):
            a, b = np.array(n[spec[0]]), np.array(n[spec[1]])
            t = float(np.clip(np.dot(np.subtract(s, a), b - a) / np.dot(b - a, b - a), 0, 1))
            foot = a + t * (b - a)
            coords = [s, _pt(foot + (d, d))] + [_pt(np.add(n[x], (d, d))) for x in spec[1:]]
            power.append(dict(coords=coords, sub=sub, k=k + 1))
    # a planned feeder from the planned substation to the southern gate road
    s30 = g["subs"]["SS-30"]
    power.append(
        dict(
            coords=[s30, _pt((n[3, 0][0] + 5.0, s30[1])), _pt(np.add(n[3, 0], (5, -5)))],
            sub="SS-30",
            k=1,
            planned=True,
        )
    )

    # water, gas and storm mains: one main per street run, named after the street
    edges = set(g["lat"].edges())
    runs = []  # (axis, index, [nodes])
    for i in range(len(U_SPACING) + 1):
        runs += [("col", i, r) for r in _runs([(i, j) for j in range(nj + 1)], edges)]
    for j in range(nj + 1):
        runs += [("row", j, r) for r in _runs([(i, j) for i in range(len(U_SPACING) + 1)], edges)]
    water, gas, storm = [], [], []
    for axis, idx, nodes in runs:
        street = g["col_names"][idx] if axis == "col" else g["row_names"][idx]
        coords = path(*nodes)
        diam = (
            500
            if (axis, idx) == ("row", 2)
            else 400
            if (axis, idx) == ("col", 3)
            else 300
            if (axis, idx) in (("col", 1), ("col", 5), ("row", 0))
            else 200
        )
        cap = {500: 24_000.0, 400: 9_000.0, 300: 5_500.0, 200: 2_400.0}[diam]
        share = 0.94 if (axis, idx) == ("col", 3) else float(rng.uniform(0.45, 0.8))
        water.append(
            dict(
                coords=coords,
                diam=diam,
                cap=cap,
                load=float(round(cap * share, -1)),
                name=("Water trunk, " if diam == 500 else "Water main, ") + street,
            )
        )
        if (axis, idx) == ("row", 2):
            gas.append(
                dict(coords=coords, pressure="high", name="High-pressure gas main, " + street)
            )
        elif (axis, idx) in (("row", 3), ("row", 4)):
            gas.append(dict(coords=coords, pressure="low", name="Gas main, " + street))
        elif (axis == "col" and 1 <= idx <= 4) or (axis, idx) == ("row", 1):
            gas.append(dict(coords=coords, pressure="medium", name="Gas main, " + street))
        if axis == "col" or (axis, idx) == ("row", 0):
            storm.append(
                dict(
                    coords=coords,
                    diam=1200 if axis == "row" else 800 if idx % 2 else 1000,
                    name="Storm (rain) sewer, " + street,
                )
            )
    return dict(power=power, water=water, gas=gas, storm=storm)


def _asset_layers(g: dict, rng) -> dict:
    out: dict[str, list] = {}
    out["roads"] = [
        _asset(
            "roads",
            asset_id=f"R-{k + 1:03d}",
            name=r["name"],
            **{"class": r["cls"]},
            status="operational",
            since="2011-09-01" if r["cls"] != "access" else "2018-12-20",
            geometry=LineString(r["coords"]),
        )
        for k, r in enumerate(g["roads"])
    ]
    out["gates"] = [
        _asset(
            "gates",
            asset_id=f"G-{k + 1}",
            name=gt["name"],
            status="operational",
            since="2011-09-01",
            geometry=Point(gt["coords"]),
        )
        for k, gt in enumerate(g["gates"])
    ]
    rail_meta = [
        ("ML-1", "Turksib mainline (Турксиб), western section", "operational", None, None, None),
        ("ML-2", "Turksib mainline (Турксиб), eastern section", "operational", None, None, None),
        (
            "RS-1",
            "Rail Access Road (Подъездной путь)",
            "restricted",
            "2018-12-20",
            DUE,
            "accepted in 2018 with violations; violations to be dealt with and the line put "
            "into operation by 2022-10-30",
        ),
        (
            "SD-1",
            "Siding 1 (Тупик №1), south",
            "operational",
            "2018-12-20",
            None,
            "usable only via the Rail Access Road and Industrialnaya station",
        ),
        (
            "SD-2",
            "Siding 2 (Тупик №2), east",
            "operational",
            "2018-12-20",
            None,
            "usable only via the Rail Access Road and Industrialnaya station",
        ),
        (
            "SD-3",
            "Siding 3 (Тупик №3), west",
            "operational",
            "2018-12-20",
            None,
            "usable only via the Rail Access Road and Industrialnaya station",
        ),
    ]
    out["rail_lines"] = [
        _asset(
            "rail_lines",
            asset_id=aid,
            name=name,
            kind=r["kind"],
            status=st,
            since=since,
            due=due,
            note=note,
            geometry=LineString(r["coords"]),
        )
        for (aid, name, st, since, due, note), r in zip(rail_meta, g["rails"])
    ]
    out["rail_stations"] = [
        _asset(
            "rail_stations",
            asset_id="RST-1",
            name="Индустриальная / Industrialnaya",
            built_yr=2017,
            status="closed",
            since=None,
            due=DUE,
            note="closed by the transport control inspectorate: derailment threat; to be put "
            "into operation by 2022-10-30",
            geometry=Point(g["station"]),
        )
    ]
    sub_meta = {
        "SS-7": (
            "ПС-7 «Индустриальная» 110/10 kV",
            80.0,
            61.8,
            110.0,
            "operational",
            None,
            None,
            "2 x 40 MVA",
        ),
        "SS-12": (
            "Substation No. 12 (ПС-12) 110/10 kV",
            50.0,
            31.6,
            110.0,
            "under_repair",
            "2022-03-15",
            DUE,
            "cracks in supporting structures from soil subsidence; "
            "repair and restoration due 2022-10-30; 2 x 25 MVA",
        ),
        "SS-14": (
            "ПС-14 «Литейная» 110/10 kV",
            50.0,
            38.7,
            110.0,
            "operational",
            None,
            None,
            "2 x 25 MVA; little headroom left once allocated plots connect",
        ),
        "SS-19": (
            "ПС-19 «Южная» 35/10 kV",
            32.0,
            24.4,
            35.0,
            "operational",
            None,
            None,
            "2 x 16 MVA",
        ),
        "SS-30": (
            "ПС-30 «Расширение» 110/10 kV (planned)",
            50.0,
            0.0,
            110.0,
            "planned",
            None,
            "2024-12-31",
            "planned for expansion area EXP-1; 2 x 25 MVA",
        ),
    }
    out["substations"] = [
        _asset(
            "substations",
            asset_id=sid,
            name=m[0],
            cap_mva=m[1],
            load_mva=m[2],
            kv=m[3],
            status=m[4],
            since=m[5],
            due=m[6],
            note=m[7],
            geometry=Point(g["subs"][sid]),
        )
        for sid, m in sub_meta.items()
    ]
    nets = _networks(g, rng)
    out["power_lines"] = [
        _asset(
            "power_lines",
            asset_id=f"PL-{p['sub'][3:]}-{p['k']}",
            name=f"10 kV feeder {p['k']} from {p['sub']}",
            kv=10.0,
            sub_id=p["sub"],
            status="planned" if p.get("planned") else "operational",
            due="2024-12-31" if p.get("planned") else None,
            geometry=LineString(p["coords"]),
        )
        for p in nets["power"]
    ]
    rows = []
    shifted = [_shifted(w["coords"], SHIFT["water"]) for w in nets["water"]]
    for k, (w, parts) in enumerate(zip(nets["water"], _node_lines(shifted))):
        for m, part in enumerate(parts):
            rows.append(
                _asset(
                    "water_mains",
                    asset_id=f"W-{k + 1:02d}{chr(97 + m)}",
                    name=w["name"],
                    cap_m3d=w["cap"],
                    load_m3d=w["load"],
                    diam_mm=w["diam"],
                    status="operational",
                    since="2011-09-01",
                    geometry=LineString(part),
                )
            )
    out["water_mains"] = rows
    rows = []
    shifted = [_shifted(s["coords"], SHIFT["storm"]) for s in nets["storm"]]
    for k, (s, parts) in enumerate(zip(nets["storm"], _node_lines(shifted))):
        for m, part in enumerate(parts):
            rows.append(
                _asset(
                    "storm_sewers",
                    asset_id=f"SW-{k + 1:02d}{chr(97 + m)}",
                    name=s["name"] + " (ливневая канализация)",
                    diam_mm=s["diam"],
                    built_yr=2018,
                    status="not_commissioned",
                    since="2018-12-20",
                    due=None,
                    note="built in 2018, never put into operation; akimat departments to audit "
                    "the contractor's obligations, materials passed to law enforcement",
                    geometry=LineString(part),
                )
            )
    out["storm_sewers"] = rows
    rows = []
    shifted = [_shifted(s["coords"], SHIFT["gas"]) for s in nets["gas"]]
    for k, (s, parts) in enumerate(zip(nets["gas"], _node_lines(shifted))):
        for m, part in enumerate(parts):
            rows.append(
                _asset(
                    "gas_mains",
                    asset_id=f"GM-{k + 1:02d}{chr(97 + m)}",
                    name=s["name"],
                    pressure=s["pressure"],
                    status="operational",
                    since="2012-06-01",
                    geometry=LineString(part),
                )
            )
    out["gas_mains"] = rows

    prot = []
    for sid, m in sub_meta.items():
        prot.append(
            _asset(
                "prot_zones",
                asset_id=f"PZ-{sid}",
                name=f"Protection zone of {sid}",
                kind="substation",
                width_m=SUB_PROT_M,
                status="planned" if m[4] == "planned" else "operational",
                geometry=Point(g["subs"][sid]).buffer(SUB_PROT_M, cap_style="square"),
            )
        )
    for (aid, *_), r in zip(rail_meta, g["rails"]):
        w = RAIL_PROT_M[r["kind"]]
        prot.append(
            _asset(
                "prot_zones",
                asset_id=f"PZ-{aid}",
                name=f"Rail protection zone of {aid}",
                kind="rail",
                width_m=w,
                status="operational",
                geometry=LineString(r["coords"]).buffer(w),
            )
        )
    out["prot_zones"] = prot
    return out


# --------------------------------------------------------------------------- tables


def _targets() -> pd.DataFrame:
    source = "Akimat of Almaty: Ye. Dosaev's visit to the Almaty Industrial Zone, 8 April 2022"
    return pd.DataFrame(
        [
            dict(
                target_id="T-01",
                name="Projects to implement this year",
                metric="projects",
                value=13.0,
                year=2022,
                source=source,
            ),
            dict(
                target_id="T-02",
                name="Investment in this year's projects, tenge",
                metric="invest",
                value=13_300_000_000.0,
                year=2022,
                source=source,
            ),
            dict(
                target_id="T-03",
                name="Industrial parks to commission",
                metric="parks",
                value=40.0,
                year=2025,
                source=source,
            ),
            dict(
                target_id="T-04",
                name="Production floor area of the parks, m2",
                metric="floor_m2",
                value=250_000.0,
                year=2025,
                source=source,
            ),
        ],
        columns=[f.name for f in get_layer("targets").input_fields],
    ).astype(object)


def _applications(rng, plots: gpd.GeoDataFrame, rail_geoms) -> pd.DataFrame:
    avail = plots[plots["status"] == "available"].copy()
    avail["ha"] = avail.geometry.area / 1e4
    avail["rail"] = avail.geometry.distance(rail_geoms) < 20.0
    rail_plots = avail[avail["rail"]].sort_values("ha", ascending=False)
    big = avail[~avail["rail"]].sort_values("ha", ascending=False)
    mid = avail[(avail["ha"] > 1.5) & (avail["ha"] < 4.0) & ~avail["rail"]].sort_values("plot_id")
    hot = [rail_plots.iloc[0], big.iloc[0], mid.iloc[len(mid) // 2], rail_plots.iloc[1]]
    wanted = [hot[0]] * 4 + [hot[1]] * 3 + [hot[2]] * 3 + [hot[3]] * 2
    used: set = set()
    rows = []
    for k in range(30):
        target = (
            wanted[k]
            if k < len(wanted)
            else (avail.iloc[int(rng.integers(0, len(avail)))] if k % 3 == 0 else None)
        )
        if target is not None:
            allowed = target["sectors"]
            choices = sorted(SECTORS if allowed in (None, "*") else allowed.split(","))
            ha = float(target["ha"])
        else:
            choices = list(SECTORS)
            ha = float(avail["ha"].iloc[int(rng.integers(0, len(avail)))])
        sector = str(rng.choice(choices))
        h_lo, h_hi = HAZARD[sector]
        hazard = int(rng.integers(h_lo, h_hi + 1))
        if target is not None:
            hazard = min(hazard, int(target["hazard_ok"]))
        rail_need = bool(target is not None and bool(target["rail"])) or (
            sector in ("materials", "logistics") and rng.random() < 0.25
        )
        heavy = k in (0, 1, 4, 11, 17, 23)
        kw = ha * KW_PER_HA[sector] * float(rng.uniform(0.8, 1.6)) * (2.5 if heavy else 1.0)
        rows.append(
            dict(
                app_id=f"A-{k + 1:03d}",
                investor="investor",
                company=_company(rng, sector, used),
                project=str(rng.choice(PROJECTS[sector])),
                sector=sector,
                plot_id=None if target is None else target["plot_id"],
                min_ha=round(max(0.3, ha * float(rng.uniform(0.6, 0.95))), 1),
                max_ha=round(ha * float(rng.uniform(1.1, 1.6)) + 0.1, 1),
                power_kw=float(round(max(300.0, kw), -1)),
                water_m3d=float(round(ha * M3D_PER_HA[sector] * float(rng.uniform(0.7, 1.5)), 1)),
                rail_need=rail_need,
                hazard=hazard,
                invest=float(round(ha * rng.uniform(0.4e9, 1.8e9), -6)),
                jobs=int(round(ha * rng.uniform(12, 45))),
                priority=int(rng.integers(1, 6)),
                status="submitted",
                reason=None,
                assigned=None,
                created=(
                    dt.datetime(2022, 4, 18, 9, 0) + dt.timedelta(days=3 * k, hours=k % 7)
                ).isoformat(timespec="seconds"),
            )
        )
        rows[-1]["updated"] = rows[-1]["created"]
    frame = pd.DataFrame(rows, columns=[f.name for f in get_layer("applications").input_fields])
    return frame.astype(object).where(frame.notna(), None)


# --------------------------------------------------------------------------- build


def _to_utm(frame: gpd.GeoDataFrame, offset: tuple[float, float]) -> gpd.GeoDataFrame:
    a = math.radians(ROTATION_DEG)
    c, s = math.cos(a), math.sin(a)
    matrix = [c, -s, s, c, offset[0], offset[1]]
    geoms = np.array(
        [affinity.affine_transform(gm, matrix) for gm in frame.geometry.values], dtype=object
    )
    return frame.set_geometry(gpd.GeoSeries(geoms, crs=EPSG, index=frame.index))


def _frame(layer: str, records: list[dict]) -> gpd.GeoDataFrame:
    cols = [f.name for f in get_layer(layer).input_fields]
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in records], columns=cols)
    df = df.astype(object).where(pd.notna(df), None)
    return gpd.GeoDataFrame(df, geometry=[r["geometry"] for r in records], crs=EPSG)


def build_sample() -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    """Build the synthetic zone: every feature layer, ``targets`` and ``applications``.

    Returns
    -------
    dict
        Layer name -> GeoDataFrame in EPSG:32643 (columns: the layer's input
        fields and ``geometry``); ``targets`` and ``applications`` -> DataFrame.
    """
    rng = np.random.default_rng(SEED)
    g = _geometry(rng)
    zone_plots, _ = _zone_plots(rng, g)
    cand = _candidate_plots(rng, g)
    plot_recs = _plot_attributes(rng, zone_plots, cand, g)
    layers: dict = {}
    layers["zone"] = _frame(
        "zone",
        [
            dict(
                zone_id="IZA",
                name="Индустриальная зона Алматы / Almaty Industrial Zone",
                operator=OPERATOR,
                geometry=g["zone"],
            )
        ],
    )
    layers["expansion"] = _frame(
        "expansion",
        [
            dict(
                exp_id="EXP-1",
                name="Южное расширение / Southern extension",
                status="approved",
                note="approved extension; candidate plots laid out, no roads yet",
                geometry=g["e1"],
            ),
            dict(
                exp_id="EXP-2",
                name="Восточное расширение / Eastern extension",
                status="proposed",
                note="proposed extension discussed at the April 2022 meeting; not subdivided",
                geometry=g["e2"],
            ),
        ],
    )
    layers["plots"] = _frame("plots", plot_recs)
    for name, recs in _asset_layers(g, rng).items():
        layers[name] = _frame(name, recs)

    # place everything: rotate about the local origin, then move the zone centroid to CENTRE
    a = math.radians(ROTATION_DEG)
    cx, cy = g["zone"].centroid.x, g["zone"].centroid.y
    rx, ry = cx * math.cos(a) - cy * math.sin(a), cx * math.sin(a) + cy * math.cos(a)
    offset = (round(CENTRE[0] - rx, 2), round(CENTRE[1] - ry, 2))
    out = {name: _to_utm(layers[name], offset) for name in FEATURE_LAYERS}
    rail = shapely.union_all(
        out["rail_lines"].geometry[out["rail_lines"]["kind"] == "siding"].values
    )
    plots = out["plots"].copy()
    plots["sectors"] = plots["sectors"].fillna("*")
    out["targets"] = _targets()
    out["applications"] = _applications(rng, plots, rail)
    return out


def _fix_dbf_date(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.seek(1)
        fh.write(DBF_DATE)


def write_sample(sample: dict, out_dir: Path, applications: Path | None) -> list[Path]:
    """Write every layer of ``sample`` to ``out_dir`` (and the applications CSV)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FEATURE_LAYERS:
        frame = sample[name]
        if get_layer(name).has("area_ha"):
            frame = frame.assign(area_ha=np.round(frame.geometry.area.to_numpy() / 1e4, 4))
        for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            (out_dir / f"{name}{ext}").unlink(missing_ok=True)
        written.append(write_shapefile(name, frame, out_dir))
        _fix_dbf_date(out_dir / f"{name}.dbf")
    for ext in (".dbf", ".cpg", ".shp", ".shx"):
        (out_dir / f"targets{ext}").unlink(missing_ok=True)
    write_shapefile("targets", sample["targets"], out_dir)
    _fix_dbf_date(out_dir / "targets.dbf")
    written.append(out_dir / "targets.dbf")
    (out_dir / "README.md").write_text(_readme(sample), encoding="utf-8")
    if applications is not None:
        applications.parent.mkdir(parents=True, exist_ok=True)
        apps = sample["applications"].copy()
        apps["rail_need"] = apps["rail_need"].map({True: "true", False: "false"})
        apps.to_csv(applications, index=False, encoding="utf-8", lineterminator="\n")
        written.append(applications)
    return written


def _readme(sample: dict) -> str:
    plots = sample["plots"]
    counts = "\n".join(
        f"| `{name}` | {get_layer(name).geometry} | {len(sample[name])} |"
        for name in FEATURE_LAYERS
    )
    status_counts = ", ".join(
        f"{s} {int((plots['status'] == s).sum())}"
        for s in ("candidate", "available", "reserved", "allocated", "occupied")
    )
    zone_ha = float(sample["zone"].geometry.area.iloc[0] / 1e4)
    exp_ha = float(sample["expansion"].geometry.area.sum() / 1e4)
    by_res = plots.set_index("resident")
    seeds = [
        "Asia Steel Pipe Corporation",
        "BRB APK (ТОО «BRB АПК»)",
        "Valtherm",
        "ТОО «Алматы Автокомпонент»",
    ]
    seed_ids = {r: by_res.loc[r, "plot_id"] for r in seeds}
    sidings = sample["rail_lines"][sample["rail_lines"]["kind"] == "siding"]
    near = plots.geometry.distance(shapely.union_all(sidings.geometry.values)) < 25.0
    station = sample["rail_stations"].geometry.iloc[0]
    by_station = plots.assign(d=plots.geometry.distance(station)).nsmallest(4, "d")
    subs = "\n".join(
        f"| {r.asset_id} | {r['name']} | {r.status} | {r.cap_mva:g} | {r.load_mva:g} | "
        f"{r.due or ''} |"
        for _, r in sample["substations"].iterrows()
    )
    return README.format(
        rail_plots=", ".join(plots.loc[near, "plot_id"]),
        station_plots=", ".join(by_station["plot_id"]),
        subs=subs,
        counts=counts,
        status_counts=status_counts,
        zone_ha=zone_ha,
        exp_ha=exp_ha,
        n_zone=int(plots["exp_id"].isna().sum()),
        n_cand=int(plots["exp_id"].notna().sum()),
        seed=SEED,
        steel=seed_ids[seeds[0]],
        greenhouse=seed_ids[seeds[1]],
        valtherm=seed_ids[seeds[2]],
        auto=seed_ids[seeds[3]],
        n_apps=len(sample["applications"]),
        n_targets=len(sample["targets"]),
    )


README = """# Sample zone: a SYNTHETIC Almaty Industrial Zone

**These data are synthetic.** No surveyed boundary, cadastre, network or company record
was used. The shapes and attributes are generated by `scripts/make_sample.py` (seeded
numpy generator, seed {seed}) and are modelled on the facts of the akimat's news item
of 8 April 2022 (`/work/shared/seed/`). Where the news gives no number, the number is
invented and only meant to be plausible. Company names other than the four named in the
news are invented.

## Regenerate

```
.venv/bin/python scripts/make_sample.py            # writes data/shapefiles/ and data/applications.csv
.venv/bin/python scripts/make_sample.py --out /tmp/zone --applications /tmp/zone/applications.csv
```

Same bytes on every run (the DBF "last update" header date is pinned to 2022-04-08).

## CRS and encoding

EPSG:32643, WGS 84 / UTM zone 43N (metres); every `.prj` says so. Attribute text is
UTF-8 (`.cpg` = `UTF-8`); Cyrillic names survive. Fields, types and vocabularies are those
of `geo/layers.py`; dates are DBF dates, booleans DBF logicals. `area_ha` is filled for
convenience (the store recomputes it).

## Layers

| file | geometry | features |
|---|---|---|
{counts}
| `targets.dbf` | table (no geometry) | {n_targets} |

`data/applications.csv`: {n_apps} synthetic pending investor applications (status `submitted`).

## Seed facts and how they are encoded

| fact (news item, 8 April 2022) | encoding |
|---|---|
| Zone of ~490 ha in the Alatau district, NW of the centre | `zone` IZA, {zone_ha:.1f} ha, centroid at 43.33 N 76.85 E (649 980 E, 4 799 120 N) |
| One operator, Industrial Zone Almaty LLP (one-stop shop) | `zone.operator` |
| Plans to expand the territory | `expansion` EXP-1 (approved, {n_cand} candidate plots, no roads yet) and EXP-2 (proposed), {exp_ha:.1f} ha together, touching the zone |
| Auto-components plant (seats, plastic parts, accessories, multimedia), construction from autumn 2022 | plot {auto}, status `allocated`, `start_yr` 2022 |
| Asia Steel Pipe Corporation, large-diameter welded pipe, 100 kt/yr, export to neighbours | plot {steel}, `occupied`, `rail_need` true, next to siding SD-1 |
| BRB APK greenhouse complex, 7.2 kt vegetables/yr | plot {greenhouse}, `occupied` |
| Valtherm radiator plant under construction, 20 M units/yr | plot {valtherm}, `allocated` |
| 71.5 bn tenge invested, >1,200 jobs in these three projects | `invest` 38.0 + 21.0 + 12.5 bn = 71.5 bn; `jobs` 520 + 430 + 290 = 1 240 (the split is illustrative) |
| Industrialnaya station, built 2017, closed by the transport control inspectorate (derailment threat), to be put into operation by 30 October | `rail_stations` RST-1, `built_yr` 2017, `closed`, `due` 2022-10-30 |
| Rail Access Road accepted with violations in 2018, same deadline | `rail_lines` RS-1 (`spur`), `restricted` since 2018-12-20, `due` 2022-10-30; sidings SD-1..3 reach the Turksib mainline (ML-1/ML-2) only through RS-1 and the station, so as recorded no plot has rail access; once both count as operational (as of 2022-11-01) the plots along the sidings do |
| Storm sewer built 2018, never put into operation; contractor audit | `storm_sewers`, `built_yr` 2018, `not_commissioned`, no `due` |
| Substation No. 12, cracks from soil subsidence, repair due 30 October | `substations` SS-12, `under_repair`, `due` 2022-10-30 |
| 13 projects / 13.3 bn tenge this year; 40 industrial parks, 250 000 m2 by 2025 | `targets` T-01..T-04 |

## Conventions of the sample

- Plot statuses: {status_counts}. Zone plots: {n_zone}, each fronting a road (boundary
  within 25 m of a road centreline); plots never overlap each other or a protection zone.
- All eight sector codes occur among occupants; `sectors` is `*` (any) or a code list.
- Hazard classes run 1 (least) .. 5 (most hazardous); a plot accepts projects with
  `hazard <= hazard_ok`. Application `priority` runs 1 (low) .. 5 (high).
- Substation `cap_mva` is the installed total (e.g. 2 x 25 MVA = 50), `load_mva` the
  present load of its occupied consumers and city feeders.

## Where things are

- Zone: a stepped, slightly rotated block of streets (7 north-south, 5 east-west,
  jittered); arterials are Industrial Avenue (north-south) and Central Avenue
  (east-west); the perimeter ring is collector class. Gates G-1 (west), G-2 (south,
  towards EXP-1), G-3 (east), G-4 (north) sit where the arterial approaches end on the fence.
- Rail: the Turksib mainline (ML-1/ML-2, split at the junction) runs ~150 m north of the
  zone. The Rail Access Road RS-1 leaves it at the junction west of the zone and curves
  into the top row of blocks to Industrialnaya station RST-1 (nearest plots:
  {station_plots}). Sidings SD-1 (south, two blocks), SD-2 (east, then south) and SD-3
  (west, then south) start at the station. Plots within 25 m of a siding:
  {rail_plots}.
- Expansion: EXP-1 (approved) lies south of the zone beyond gate G-2, with the candidate
  plots next to the zone and the planned substation SS-30; EXP-2 (proposed) fills the
  zone's north-east notch.

| substation | name | status | cap, MVA | load, MVA | due |
|---|---|---|---|---|---|
{subs}

Power headroom is tight at SS-14 (11.3 MVA, nearly all of it promised to the allocated
plots it feeds, the Valtherm plant among them) and SS-12 gives none until repaired.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        default=str(ROOT / "data" / "shapefiles"),
        help="output directory for the shapefiles (default data/shapefiles)",
    )
    parser.add_argument(
        "--applications",
        default=str(ROOT / "data" / "applications.csv"),
        help="where to write the applications CSV",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sample = build_sample()
    written = write_sample(sample, Path(args.out), Path(args.applications))
    print(f"wrote {len(written)} files to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
