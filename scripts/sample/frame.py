"""The sample zone's frame: constants, geometry helpers, the street lattice and shapes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon, box

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


def pt(p) -> tuple[float, float]:
    return (round(float(p[0]), 3), round(float(p[1]), 3))


def mid(a, b, t: float = 0.5) -> tuple[float, float]:
    return pt((a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t))


def _smooth(points: list, radius: float, steps: int = 6) -> list:
    """Round the interior corners of a polyline with quadratic Bézier fillets."""
    out = [points[0]]
    for a, b, c in zip(points[:-2], points[1:-1], points[2:]):
        ab = math.dist(a, b)
        bc = math.dist(b, c)
        r = min(radius, ab / 2.0, bc / 2.0)
        p0 = mid(b, a, r / ab)
        p2 = mid(b, c, r / bc)
        for k in range(steps + 1):
            t = k / steps
            x = (1 - t) ** 2 * p0[0] + 2 * t * (1 - t) * b[0] + t * t * p2[0]
            y = (1 - t) ** 2 * p0[1] + 2 * t * (1 - t) * b[1] + t * t * p2[1]
            out.append(pt((x, y)))
    out.append(points[-1])
    dedup = [out[0]]
    for p in out[1:]:
        if math.dist(p, dedup[-1]) > 0.5:
            dedup.append(p)
    return dedup


def _bezier(p0, p1, p2, n: int) -> list:
    return [
        pt(
            (
                (1 - t) ** 2 * p0[0] + 2 * t * (1 - t) * p1[0] + t * t * p2[0],
                (1 - t) ** 2 * p0[1] + 2 * t * (1 - t) * p1[1] + t * t * p2[1],
            )
        )
        for t in np.linspace(0.0, 1.0, n)
    ]


def polygons(geom) -> list[Polygon]:
    if geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    return [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]


def largest(geom) -> Polygon | None:
    parts = polygons(geom)
    return max(parts, key=lambda g: g.area) if parts else None


def band(axis: str, lo: float, hi: float) -> Polygon:
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
        (i, j): pt((us[i] + jitter[i, j, 0], vs[j] + jitter[i, j, 1])) for (i, j) in sorted(used)
    }
    return Lattice(nodes, cells)


def _zone_outline(lat: Lattice) -> Polygon:
    cells = shapely.union_all([lat.quad(i, j) for i, j in lat.cells])
    outline = cells.buffer(OUTSET_M, join_style="mitre", mitre_limit=3.0)
    return shapely.set_precision(outline, 0.01)


# --------------------------------------------------------------------------- geometry


def zone_shapes(rng: np.random.Generator) -> dict:
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
    access_at = mid(top_l, top_r, 0.62)
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
    yard_ref = mid(top_l, top_r, 0.5)
    station = pt((yard_ref[0], yard_ref[1] - 110.0))
    north = max(y for _, y in ring.coords)
    v_main = north + 150.0
    u_lo = min(x for x, _ in ring.coords) - 900.0
    u_hi = max(x for x, _ in ring.coords) + 900.0
    u_junction = station[0] - 935.0

    def main_v(u: float) -> float:
        return v_main + 25.0 * math.sin((u - u_lo) / 1400.0) + 0.000012 * (u - u_lo) * 40.0

    us_main = sorted(set(np.round(np.arange(u_lo, u_hi + 1, 300.0), 3)) | {u_junction})
    main_pts = [pt((u, main_v(u))) for u in us_main]
    junction = pt((u_junction, main_v(u_junction)))
    k = main_pts.index(junction)
    spur = _bezier(junction, (station[0] - 150.0, junction[1] + 5.0), station, 24)
    col2_mid_3 = mid(n[STATION_CELL, nj - 1], n[STATION_CELL + 1, nj - 1])
    col2_mid_2 = mid(n[STATION_CELL, nj - 2], n[STATION_CELL + 1, nj - 2])
    sd1 = [station, col2_mid_3, pt((col2_mid_2[0], col2_mid_2[1] + 70.0))]
    col3_top = mid(n[STATION_CELL + 1, nj], n[STATION_CELL + 2, nj])
    col3_mid_3 = mid(n[STATION_CELL + 1, nj - 1], n[STATION_CELL + 2, nj - 1])
    sd2 = _smooth(
        [station, pt((col3_top[0], station[1])), pt((col3_mid_3[0], col3_mid_3[1] + 70.0))], 90.0
    )
    col1_top = mid(n[STATION_CELL - 1, nj], n[STATION_CELL, nj])
    col1_mid_3 = mid(n[STATION_CELL - 1, nj - 1], n[STATION_CELL, nj - 1])
    sd3 = _smooth(
        [
            station,
            pt((col1_top[0], station[1] - 20.0)),
            pt((col1_mid_3[0], col1_mid_3[1] + 70.0)),
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
    access_bend = pt((access_at[0], station[1] + 58.0))
    access_end = pt((station[0] + 28.0, station[1] + 28.0))  # inside the station yard
    roads.append(
        dict(
            coords=[access_at, access_bend, access_end],
            cls="access",
            name="Station access (подъезд к станции)",
        )
    )

    # ---- substations: inside a cell, diagonally off its south-west node
    def sub_at(node, sign=(1, 1)) -> tuple[float, float]:
        return pt((n[node][0] + 60.0 * sign[0], n[node][1] + 60.0 * sign[1]))

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
    e2 = shapely.set_precision(largest(e2), 0.01)
    depth = 600.0
    for _ in range(6):
        e1 = box(e1_u0, min(p[1] for p in bottom) - depth, e1_u1, e1_top).difference(zone)
        e1 = shapely.set_precision(largest(e1), 0.01)
        gap = EXPANSION_HA * 1e4 - e1.area - e2.area
        depth += gap / (e1_u1 - e1_u0)
    subs["SS-30"] = pt((n[4, 0][0] + 230.0, n[4, 0][1] - 260.0))

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
