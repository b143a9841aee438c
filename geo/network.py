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

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from geo.index import SpatialIndex
from geo.layers import LAYERS

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

_CACHE_LOCK = threading.Lock()  # networks are shared between web threads
_CLASS_FIELD = {"roads": "class", "rail_lines": "kind", "power_lines": "kv"}


@dataclass(eq=False)
class Network:
    """A noded, undirected line network.

    Attributes
    ----------
    nodes : ndarray (n, 2)
        Node coordinates (working CRS, metres).
    u, v : ndarray of int
        Edge end nodes; each edge's geometry runs from ``u`` to ``v``.
    length : ndarray of float
        Edge lengths, metres.
    minutes : ndarray of float
        Edge travel times, minutes, by the class speeds.
    geometry : ndarray of LineString
        Edge geometries (noded pieces of the source lines).
    layer, asset_id, status, kind : ndarray of object
        The source feature of each edge: layer name, asset id, recorded status,
        class (roads) or kind (rail lines).
    due : ndarray of object
        The source asset's ``due`` date (ISO text or None).
    tolerance : float
        The snapping tolerance used, metres.
    snapped : int
        How many line endpoints were moved by snapping.
    dangling : DataFrame
        Nodes of degree one (dead ends): ``node, x, y, layer, asset_id``.
    """

    nodes: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length: np.ndarray
    minutes: np.ndarray
    geometry: np.ndarray
    layer: np.ndarray
    asset_id: np.ndarray
    status: np.ndarray
    kind: np.ndarray
    due: np.ndarray
    tolerance: float
    snapped: int = 0
    dangling: pd.DataFrame = field(default_factory=pd.DataFrame)
    _csr_cache: OrderedDict[tuple[str, str | None], sparse.csr_matrix] = field(
        default_factory=OrderedDict, repr=False
    )
    _kdtree: cKDTree | None = field(default=None, repr=False)
    _edge_index: SpatialIndex | None = field(default=None, repr=False)

    # -- size -----------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return len(self.u)

    def summary(self) -> dict[str, Any]:
        """Counts, total length, tolerance and dead ends, for reports."""
        return {
            "nodes": self.n_nodes,
            "edges": self.n_edges,
            "length_km": round(float(self.length.sum()) / 1000.0, 3),
            "tolerance_m": self.tolerance,
            "snapped_endpoints": int(self.snapped),
            "dangling_ends": int(len(self.dangling)),
        }

    # -- scenarios --------------------------------------------------------------
    def effective_status(
        self, overrides: Mapping[tuple[str, str], str] | None = None
    ) -> np.ndarray:
        """Edge statuses with ``overrides`` (``{(layer, asset_id): status}``) applied."""
        status = self.status.copy()
        by_layer: dict[str, dict[str, str]] = {}
        for (layer, aid), st in (overrides or {}).items():
            by_layer.setdefault(layer, {})[str(aid)] = st
        for layer, changes in by_layer.items():
            hit = np.flatnonzero((self.layer == layer) & np.isin(self.asset_id, list(changes)))
            status[hit] = [changes[a] for a in self.asset_id[hit]]
        return status

    def mask(
        self,
        overrides: Mapping[tuple[str, str], str] | None = None,
        *,
        usable: Iterable[str] = ("operational",),
    ) -> np.ndarray:
        """Boolean edge mask: True where the edge's (effective) status is usable."""
        return np.isin(self.effective_status(overrides), list(usable))

    def csr(self, mask: np.ndarray | None = None, *, weight: str = "length") -> sparse.csr_matrix:
        """The symmetric adjacency matrix of the (masked) edges weighted by
        ``length`` or ``minutes``; parallel edges keep the lightest.  Cached per
        mask and weight, so scenarios only pay for a new mask once."""
        if weight not in ("length", "minutes"):
            raise ValueError(f"weight must be 'length' or 'minutes', not {weight!r}")
        key = (
            weight,
            None
            if mask is None
            else hashlib.blake2b(
                np.packbits(np.asarray(mask, bool)).tobytes(), digest_size=16
            ).hexdigest(),
        )
        with _CACHE_LOCK:
            hit = self._csr_cache.get(key)
            if hit is not None:
                self._csr_cache.move_to_end(key)
                return hit
        sel = np.ones(self.n_edges, bool) if mask is None else np.asarray(mask, bool)
        u, v = self.u[sel], self.v[sel]
        w = np.maximum(getattr(self, weight)[sel], 1e-9)  # csgraph ignores explicit zeros
        rows, cols, ws = np.r_[u, v], np.r_[v, u], np.r_[w, w]
        keep = rows != cols
        rows, cols, ws = rows[keep], cols[keep], ws[keep]
        order = np.lexsort((ws, cols, rows))
        rows, cols, ws = rows[order], cols[order], ws[order]
        first = (
            np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])]
            if len(rows)
            else np.zeros(0, bool)
        )
        matrix = sparse.csr_matrix(
            (ws[first], (rows[first], cols[first])), shape=(self.n_nodes, self.n_nodes)
        )
        with _CACHE_LOCK:
            self._csr_cache[key] = matrix
            while len(self._csr_cache) > 16:
                self._csr_cache.popitem(last=False)
        return matrix

    @overload
    def dijkstra(
        self,
        sources: Sequence[int] | np.ndarray,
        *,
        mask: np.ndarray | None = None,
        weight: str = "length",
        min_only: Literal[False] = False,
        limit: float = np.inf,
    ) -> np.ndarray: ...

    @overload
    def dijkstra(
        self,
        sources: Sequence[int] | np.ndarray,
        *,
        mask: np.ndarray | None = None,
        weight: str = "length",
        min_only: Literal[True],
        limit: float = np.inf,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def dijkstra(
        self,
        sources: Sequence[int] | np.ndarray,
        *,
        mask: np.ndarray | None = None,
        weight: str = "length",
        min_only: bool = False,
        limit: float = np.inf,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Shortest-path costs from many source nodes in one call.

        Returns
        -------
        ndarray
            ``(len(sources), n_nodes)`` costs (inf where unreachable); with
            ``min_only`` a pair ``(cost, source)``: the cost from the nearest
            source and which source node it was (-9999 where unreachable).
        """
        idx = np.asarray(sources, dtype=np.int64)
        if min_only:
            if len(idx) == 0:
                return np.full(self.n_nodes, np.inf), np.full(self.n_nodes, -9999)
            dist, _, src = csgraph.dijkstra(
                self.csr(mask, weight=weight),
                directed=True,
                indices=idx,
                min_only=True,
                limit=limit,
                return_predecessors=True,
            )
            return dist, src
        if len(idx) == 0:
            return np.zeros((0, self.n_nodes))
        return np.atleast_2d(
            csgraph.dijkstra(self.csr(mask, weight=weight), directed=True, indices=idx, limit=limit)
        )

    def blocking_edges(
        self,
        sources: Sequence[int] | np.ndarray,
        targets: Sequence[int] | np.ndarray,
        mask: np.ndarray,
        *,
        penalty: float = 1e7,
    ) -> list[tuple[np.ndarray, int] | None]:
        """Why targets are cut off: the unusable edges on the best way round.

        For each target node, the path from the nearest source that crosses the
        fewest edges outside ``mask`` (then the shortest) is found over *all*
        edges.  Returns, per target, ``(edges, source)``: the positions of the
        edges on that path outside ``mask`` (empty when the target is reachable
        within the mask) and the source node the path starts from; None when the
        target is unreachable even with every edge open.
        """
        mask = np.asarray(mask, bool)
        tg = np.asarray(targets, dtype=np.int64)
        src = np.unique(np.asarray(sources, dtype=np.int64))
        if len(src) == 0 or self.n_edges == 0:
            return [None] * len(tg)
        w = np.maximum(self.length, 1e-9) + penalty * (~mask)
        e = np.arange(self.n_edges)
        rows, cols, ws, es = np.r_[self.u, self.v], np.r_[self.v, self.u], np.r_[w, w], np.r_[e, e]
        keep = rows != cols
        rows, cols, ws, es = rows[keep], cols[keep], ws[keep], es[keep]
        order = np.lexsort((ws, cols, rows))
        rows, cols, ws, es = rows[order], cols[order], ws[order], es[order]
        first = np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])]
        rows, cols, ws, es = rows[first], cols[first], ws[first], es[first]
        matrix = sparse.csr_matrix((ws, (rows, cols)), shape=(self.n_nodes, self.n_nodes))
        edge_of = dict(zip(zip(rows.tolist(), cols.tolist()), es.tolist()))
        dist, pred, origin = csgraph.dijkstra(
            matrix, directed=True, indices=src, min_only=True, return_predecessors=True
        )
        out: list[tuple[np.ndarray, int] | None] = []
        for t in tg.tolist():
            if t < 0 or not np.isfinite(dist[t]):
                out.append(None)
                continue
            steps, node = [], t
            while pred[node] >= 0:
                steps.append(edge_of[(int(pred[node]), node)])
                node = int(pred[node])
            path = np.asarray(steps, dtype=np.intp)
            out.append((path[~mask[path]] if len(path) else path, int(origin[t])))
        return out

    def components(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Connected-component label of every node over the (masked) edges."""
        return csgraph.connected_components(self.csr(mask), directed=False)[1]

    # -- locating things on the network -------------------------------------
    def nearest_nodes(self, points: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Nearest node of each point (KD-tree): ``(node, distance)``; -1 / inf when
        the network is empty or the point is missing."""
        pts = np.asarray(points, dtype=object)
        node = np.full(len(pts), -1, dtype=np.intp)
        dist = np.full(len(pts), np.inf)
        if self.n_nodes == 0 or len(pts) == 0:
            return node, dist
        ok = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
        if not ok.any():
            return node, dist
        if self._kdtree is None:
            self._kdtree = cKDTree(self.nodes)
        xy = shapely.get_coordinates(shapely.centroid(pts[ok]))
        d, i = self._kdtree.query(xy)
        node[ok], dist[ok] = i, d
        return node, dist

    @property
    def edge_index(self) -> SpatialIndex:
        """An rtree index over the edge geometries (built on first use)."""
        if self._edge_index is None:
            self._edge_index = SpatialIndex(self.geometry)
        return self._edge_index

    def locate(
        self, geoms: ArrayLike, *, mask: np.ndarray | None = None, max_distance: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where each geometry meets the network: its nearest (usable) edge.

        Returns
        -------
        (edge, gap, t) : arrays
            Edge position (-1 where none), the straight distance from the geometry
            to the edge (m), and the fraction along the edge (from ``u``) of the
            edge's point nearest to the geometry.
        """
        g = np.asarray(geoms, dtype=object)
        edge, gap = self.edge_index.nearest(g, max_distance=max_distance, mask=mask)
        t = np.full(len(g), np.nan)
        hit = edge >= 0
        if hit.any():
            t[hit] = self.locate_on(g[hit], edge[hit])
        return edge, gap, t

    def locate_on(self, geoms: ArrayLike, edges: np.ndarray) -> np.ndarray:
        """Fraction along each given edge of its point nearest to each geometry."""
        g = np.asarray(geoms, dtype=object)
        lines = self.geometry[edges]
        touch = shapely.get_point(shapely.shortest_line(g, lines), 1)
        return shapely.line_locate_point(lines, touch, normalized=True)

    def from_nodes(
        self, costs: np.ndarray, edge: np.ndarray, t: np.ndarray, *, weight: str = "length"
    ) -> np.ndarray:
        """Costs from sources to points located on edges.

        ``costs`` is ``(S, n_nodes)`` (from :meth:`dijkstra`); a point at fraction
        ``t`` of edge ``e`` is reached through either end:
        ``min(D[u] + t w, D[v] + (1 - t) w)``.  Returns ``(S, P)``; inf where the
        point is not located (edge -1) or unreachable.
        """
        costs = np.atleast_2d(costs)
        out = np.full((costs.shape[0], len(edge)), np.inf)
        ok = edge >= 0
        if not ok.any() or costs.shape[0] == 0:
            return out
        e = edge[ok]
        w = getattr(self, weight)[e]
        tt = np.clip(t[ok], 0.0, 1.0)
        out[:, ok] = np.minimum(costs[:, self.u[e]] + tt * w, costs[:, self.v[e]] + (1.0 - tt) * w)
        return out

    def to_frame(self, crs: Any = None) -> gpd.GeoDataFrame:
        """The edges as a GeoDataFrame (for inspection and export)."""
        return gpd.GeoDataFrame(
            {
                "u": self.u,
                "v": self.v,
                "length_m": self.length,
                "minutes": self.minutes,
                "layer": self.layer,
                "asset_id": self.asset_id,
                "status": self.status,
                "kind": self.kind,
            },
            geometry=self.geometry,
            crs=crs,
        )


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
