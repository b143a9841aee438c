"""The routable network: edges with their source assets, shortest paths over a (masked)
scipy CSR matrix, and geometries located on it (built by :func:`geo.network.build_network`)."""

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

__all__ = ["Network"]

_CACHE_LOCK = threading.Lock()  # networks are shared between web threads


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
