"""Noded, routable graphs from line layers (roads, rail lines) in a scipy CSR matrix.

A :class:`Network` is built once per snapshot by :func:`build_network`:

1. line endpoints closer than ``tolerance`` metres are snapped together
   (clusters found with a KD-tree), and a free endpoint that stops short of (or
   overshoots onto) another line within ``tolerance`` is snapped onto that line
   (a T-junction);
2. all lines are noded at every intersection (``shapely.union_all``; a snapped
   endpoint is first added as a vertex of the line it lands on, so the join is
   exact), so crossings become junctions; pieces shorter than ``GRID_M`` are dropped;
3. every noded piece is mapped back to the feature it came from (asset id,
   status, class/kind), its length is its length in metres and its travel time
   follows the speed of its class (:data:`ROAD_SPEEDS_KMH`).

Each edge keeps its source asset, so a scenario drops closed / restricted assets
with a boolean edge mask (:meth:`Network.mask`) and :meth:`Network.csr` rebuilds
only the sparse matrix (cached per mask), never the geometry.  Shortest paths
come from :func:`scipy.sparse.csgraph.dijkstra`, from many sources in one call.

Road crossings are treated as at-grade junctions (right for an industrial zone's
street grid).  Build separate networks for separate modes: a road crossing a
railway is a level crossing, not a place where a lorry turns onto the track.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from geo.index import SpatialIndex
from geo.layers import LAYERS
from geo.network_model import Network

__all__ = [
    "ROAD_SPEEDS_KMH",
    "RAIL_SPEED_KMH",
    "DEFAULT_SPEED_KMH",
    "SNAP_TOLERANCE_M",
    "GRID_M",
    "Network",
    "build_network",
]

#: Design travel speeds by road class (km/h) inside an industrial zone: arterial
#: streets at the urban limit, collectors and local streets slower, plot access
#: lanes at walking-lorry speed.  Travel time = length / speed.
ROAD_SPEEDS_KMH: dict[str, float] = {
    "arterial": 50.0,
    "collector": 40.0,
    "local": 30.0,
    "access": 20.0,
}
#: Yard / siding speed used for rail edges (km/h).
RAIL_SPEED_KMH = 25.0
#: Speed of a class not listed (km/h).
DEFAULT_SPEED_KMH = 20.0
#: Default snapping tolerance (m): endpoints and near-misses closer than this join.
SNAP_TOLERANCE_M = 2.0
#: Pieces shorter than this (m) are noding slivers and dropped; node coordinates are
#: matched to 1e-6 m.
GRID_M = 0.001

_CLASS_FIELD = {"roads": "class", "rail_lines": "kind", "power_lines": "kv"}


def build_network(
    layers: Mapping[str, pd.DataFrame],
    *,
    tolerance: float = SNAP_TOLERANCE_M,
    speeds: Mapping[str, float] | None = None,
    default_speed: float | None = None,
) -> Network:
    """Build a noded network from line layers.

    Parameters
    ----------
    layers : mapping of layer name to GeoDataFrame
        LineString layers in the working CRS (e.g. ``{"roads": roads}``) with the
        layer's key, ``status`` and ``due``; roads are timed by ``class``, rail by
        :data:`RAIL_SPEED_KMH`.
    tolerance : float
        Snapping tolerance in metres (endpoints closer than this are joined).
    speeds : mapping, optional
        Speed by class (km/h); default :data:`ROAD_SPEEDS_KMH`.
    default_speed : float, optional
        Speed of unlisted classes; default :data:`DEFAULT_SPEED_KMH`, or
        :data:`RAIL_SPEED_KMH` for rail lines.

    Raises
    ------
    ValueError
        For a negative tolerance or a frame that is not a line layer.
    """
    if not (tolerance >= 0 and np.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a finite number of metres >= 0, got {tolerance!r}")
    speeds = dict(ROAD_SPEEDS_KMH if speeds is None else speeds)
    parts_geom: list[np.ndarray] = []
    attrs: dict[str, list[np.ndarray]] = {
        k: [] for k in ("layer", "asset_id", "status", "kind", "due", "speed")
    }
    for name, frame in layers.items():
        if frame is None or len(frame) == 0:
            continue
        key = LAYERS[name].key if name in LAYERS else "asset_id"
        geoms = np.asarray(frame.geometry.values, dtype=object)
        parts, index = shapely.get_parts(geoms, return_index=True)
        types = shapely.get_type_id(parts)
        if len(parts) and not np.isin(types, (1, 2)).all():
            raise ValueError(f"layer {name!r} holds non-line geometries; a network needs lines")
        n = len(parts)

        def col(c: str, default: object = None) -> np.ndarray:
            if c in frame.columns:
                return np.asarray(frame[c].astype(object).where(frame[c].notna(), None))[index]
            return np.full(n, default, dtype=object)

        kind = col(_CLASS_FIELD.get(name, "kind"))
        base = (
            default_speed
            if default_speed is not None
            else (RAIL_SPEED_KMH if name == "rail_lines" else DEFAULT_SPEED_KMH)
        )
        speed = np.array(
            [RAIL_SPEED_KMH if name == "rail_lines" else speeds.get(k, base) for k in kind],
            dtype=float,
        )
        parts_geom.append(parts)
        attrs["layer"].append(np.full(n, name, dtype=object))
        attrs["asset_id"].append(
            np.array([None if a is None else str(a) for a in col(key)], dtype=object)
        )
        attrs["status"].append(col("status", "operational"))
        attrs["kind"].append(kind)
        attrs["due"].append(col("due"))
        attrs["speed"].append(speed)
    if not parts_geom:
        return _empty(tolerance)
    lines = np.concatenate(parts_geom)
    a = {k: np.concatenate(v) for k, v in attrs.items()}
    ok = ~(shapely.is_empty(lines) | shapely.is_missing(lines)) & (shapely.length(lines) > 0)
    lines = lines[ok]
    a = {k: v[ok] for k, v in a.items()}
    if len(lines) == 0:
        return _empty(tolerance)
    lines, snapped = _snap(lines, tolerance)
    pieces, source = _node(lines)
    return _assemble(pieces, source, a, tolerance, snapped)


def _empty(tolerance: float) -> Network:
    e = np.zeros(0, dtype=object)
    return Network(
        np.zeros((0, 2)),
        np.zeros(0, np.intp),
        np.zeros(0, np.intp),
        np.zeros(0),
        np.zeros(0),
        e,
        e,
        e,
        e,
        e,
        e,
        tolerance,
        0,
        pd.DataFrame(columns=["node", "x", "y", "layer", "asset_id"]),
    )


def _snap(lines: np.ndarray, tol: float) -> tuple[np.ndarray, int]:
    """Join endpoints within ``tol`` and pull free endpoints onto lines within ``tol``."""
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    counts = np.bincount(idx, minlength=len(lines))
    first = np.r_[0, np.cumsum(counts)[:-1]]
    last = first + counts - 1
    # Rows of coords holding endpoints, line by line (start, end, start, end, ...), so a
    # cluster snaps onto the endpoint of the earliest feature: earlier features keep
    # their geometry.
    ends = np.c_[first, last].ravel()
    pts = coords[ends]
    moved = 0
    owner = np.repeat(np.arange(len(lines)), 2)
    shared = np.zeros(len(ends), bool)
    if tol > 0 and len(pts) > 1:
        pairs = cKDTree(pts).query_pairs(tol, output_type="ndarray")
        if len(pairs):
            g = sparse.coo_matrix(
                (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(pts), len(pts))
            )
            _, label = csgraph.connected_components(g, directed=False)
            # Representative: the lowest-numbered endpoint of each cluster.
            rep = np.full(label.max() + 1, len(pts))
            np.minimum.at(rep, label, np.arange(len(pts)))
            new = pts[rep[label]]
            moved += int((np.hypot(*(new - pts).T) > 0).sum())
            pts = new
            size = np.bincount(label)
            shared = size[label] > 1
    # Exact coincidences count as shared too (closed by construction).
    _, inv, cnt = np.unique(np.round(pts, 6), axis=0, return_inverse=True, return_counts=True)
    shared |= cnt[inv.ravel()] > 1
    coords[ends] = pts
    if tol > 0:
        free = np.flatnonzero(~shared)
        if len(free):
            lines = np.asarray(shapely.linestrings(coords, indices=idx), dtype=object)
            index = SpatialIndex(lines)
            p = shapely.points(pts[free])
            left, right, d = index.within(p, tol)
            own = owner[free[left]] == right
            left, right, d = left[~own], right[~own], d[~own]
            keep = np.r_[True, left[1:] != left[:-1]] if len(left) else np.zeros(0, bool)
            left, right, d = left[keep], right[keep], d[keep]
            far = d > 0
            left, right = left[far], right[far]
            if len(left):
                on = shapely.line_interpolate_point(
                    lines[right], shapely.line_locate_point(lines[right], p[left])
                )
                on_xy = shapely.get_coordinates(on)
                coords[ends[free[left]]] = on_xy
                moved += len(left)
                out = np.asarray(shapely.linestrings(coords, indices=idx), dtype=object)
                # The snapped point becomes a vertex of the line it lands on, so the
                # (floating-point) noder joins them exactly.
                return _insert_vertices(out, right, on_xy), moved
    out = np.asarray(shapely.linestrings(coords, indices=idx), dtype=object)
    return out, moved


def _insert_vertices(lines: np.ndarray, targets: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Add the points ``xy`` as vertices of ``lines[targets]`` (in order along each line)."""
    lines = lines.copy()
    for li in np.unique(targets).tolist():
        pts = xy[targets == li]
        line = lines[li]
        coords = shapely.get_coordinates(line)
        at = shapely.line_locate_point(line, shapely.points(pts))
        cum = np.r_[0.0, np.cumsum(np.hypot(*np.diff(coords, axis=0).T))]
        seg = np.clip(np.searchsorted(cum, at, side="right") - 1, 0, len(coords) - 2)
        order = np.argsort(at, kind="stable")
        new = np.insert(coords, seg[order] + 1, pts[order], axis=0)
        keep = np.r_[True, np.any(np.diff(new, axis=0) != 0, axis=1)]
        lines[li] = shapely.LineString(new[keep])
    return lines


def _node(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Node every intersection; return the pieces and each piece's source line."""
    merged = shapely.union_all(lines)
    pieces = shapely.get_parts(merged)
    pieces = pieces[shapely.get_type_id(pieces) == 1]
    pieces = pieces[shapely.length(pieces) > GRID_M]
    mids = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
    index = SpatialIndex(lines)
    source, _ = index.nearest(mids, max_distance=GRID_M)
    lost = np.flatnonzero(source < 0)
    if len(lost):
        source[lost] = index.nearest(mids[lost])[0]
    return pieces, source


def _assemble(
    pieces: np.ndarray,
    source: np.ndarray,
    a: dict[str, np.ndarray],
    tolerance: float,
    snapped: int,
) -> Network:
    start = shapely.get_coordinates(shapely.get_point(pieces, 0))
    end = shapely.get_coordinates(shapely.get_point(pieces, -1))
    both = np.round(np.r_[start, end], 6)
    nodes, inv = np.unique(both, axis=0, return_inverse=True)
    inv = inv.ravel()
    u, v = inv[: len(pieces)], inv[len(pieces) :]
    length = shapely.length(pieces)
    speed = a["speed"][source]
    minutes = length / (speed * 1000.0 / 60.0)
    degree = np.bincount(np.r_[u, v], minlength=len(nodes))
    dead = np.flatnonzero(degree == 1)
    # The edge touching each dead end, for its asset id.
    touching = np.full(len(nodes), -1)
    touching[u] = np.arange(len(u))
    touching[v] = np.arange(len(v))
    de = touching[dead]
    dangling = pd.DataFrame(
        {
            "node": dead,
            "x": nodes[dead, 0],
            "y": nodes[dead, 1],
            "layer": a["layer"][source][de],
            "asset_id": a["asset_id"][source][de],
        }
    )
    return Network(
        nodes=nodes,
        u=u.astype(np.intp),
        v=v.astype(np.intp),
        length=length,
        minutes=minutes,
        geometry=pieces,
        layer=a["layer"][source],
        asset_id=a["asset_id"][source],
        status=a["status"][source],
        kind=a["kind"][source],
        due=a["due"][source],
        tolerance=tolerance,
        snapped=snapped,
        dangling=dangling,
    )
