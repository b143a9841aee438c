"""Corridor graphs: where a new road, rail spur or 10 kV feeder may run, and what each metre costs.

A :class:`CorridorGraph` is built for one area and one kind of network:

* **the existing network** (roads, rail lines, or power lines and substations whose
  status is operational as of the date, what-ifs applied, by the servicing rules) is
  contracted into node 0: joining it anywhere costs nothing more;
* **candidate segments** run on a square lattice (8 neighbours, ``spacing_m`` apart,
  coarsened so at most ``MAX_LATTICE_NODES`` nodes) over the area grown far enough to
  meet the network (its distance plus ``REACH_SLACK_M`` for detours, at most
  ``MAX_REACH_M``), and along the boundaries of free plots (densified at the spacing);
  every node within ``1.5 x spacing`` of the network gets a straight connector to its
  nearest point on it;
* **forbidden zones**: protection zones of any status and occupied, allocated or
  reserved plots. No candidate segment crosses their interior (running along their
  edge is allowed). A rail spur may enter rail protection zones and a feeder may
  enter power-line zones and the zones of operational substations (the feeder's own
  substation: it must reach it);
* **cost** of a segment = length x ``per_m`` of the kind x the land factor of the land
  it runs over (``LAND_FACTORS``: inside a free plot costs more, since it consumes
  sellable land; open land is the base) + a fixed cost per crossing of a storm sewer
  or a rail line (a road or feeder; a rail spur pays for crossing a road)
  (``CROSSING_COSTS``). The sewer runs ~9 m beside the roads, so it is crossed, not
  buffered.

Costs are in tenge (the defaults are planning-grade figures, overridable).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from planner.corridor_lattice import (
    boundary_segments,
    crosses_interior,
    inside_any,
    merge_close,
    near_pairs,
    square_lattice,
)
from planner.servicing import FRONTAGE_M, ServicingModel

__all__ = [
    "KINDS",
    "NETWORK_LAYER",
    "COST_PER_M",
    "LAND_FACTORS",
    "CROSSING_COSTS",
    "FREE_PLOT_STATUSES",
    "FORBIDDEN_PLOT_STATUSES",
    "DEFAULT_SPACING_M",
    "MAX_LATTICE_NODES",
    "MAX_REACH_M",
    "REACH_SLACK_M",
    "NET",
    "CostModel",
    "CorridorGraph",
    "build_corridors",
]

KINDS: tuple[str, ...] = ("road", "rail", "power")
#: Store layer holding each kind's lines.
NETWORK_LAYER: dict[str, str] = {"road": "roads", "rail": "rail_lines", "power": "power_lines"}
#: Construction cost per metre, tenge: a two-lane industrial access road, a standard-gauge
#: spur on its embankment, a 10 kV overhead feeder.
COST_PER_M: dict[str, float] = {"road": 300_000.0, "rail": 700_000.0, "power": 40_000.0}
#: Cost factor by land class: ``open`` land outside plots, ``plot`` inside a free plot.
LAND_FACTORS: dict[str, float] = {"open": 1.0, "plot": 1.5}
#: Extra cost per crossing, tenge, by kind and crossed layer: a culvert over the storm
#: sewer, a level crossing of a railway, a rail spur's crossing of a road.
CROSSING_COSTS: dict[str, dict[str, float]] = {
    "road": {"storm_sewers": 5_000_000.0, "rail_lines": 40_000_000.0},
    "rail": {"storm_sewers": 8_000_000.0, "roads": 40_000_000.0},
    "power": {"rail_lines": 2_000_000.0},
}
FREE_PLOT_STATUSES: tuple[str, ...] = ("candidate", "available")
FORBIDDEN_PLOT_STATUSES: tuple[str, ...] = ("occupied", "allocated", "reserved")
DEFAULT_SPACING_M = 50.0
MAX_LATTICE_NODES = 15_000
#: How far beyond the area candidate segments reach, past the nearest network, for detours.
REACH_SLACK_M = 300.0
#: Networks farther than this from the area are out of reach.
MAX_REACH_M = 5_000.0
#: Node id of the existing network (contracted).
NET = 0
_EPS = 1e-6


@dataclass(frozen=True)
class CostModel:
    """Costs of one kind of segment.

    Parameters
    ----------
    per_m : float
        Construction cost per metre on open land, tenge.
    land : mapping
        Factor by land class (``open``, ``plot``).
    crossing : mapping
        Extra cost per crossing by crossed layer.

    Raises
    ------
    ValueError
        For a negative or non-finite cost or factor.
    """

    per_m: float
    land: Mapping[str, float] = field(default_factory=lambda: dict(LAND_FACTORS))
    crossing: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = {
            "cost per metre": self.per_m,
            **{f"land factor {k}": v for k, v in self.land.items()},
            **{f"crossing cost {k}": v for k, v in self.crossing.items()},
        }
        bad = [
            f"{k} = {v!r}"
            for k, v in values.items()
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0)
        ]
        if bad:
            raise ValueError("costs must be finite numbers >= 0: " + ", ".join(bad))
        missing = [k for k in LAND_FACTORS if k not in self.land]
        if missing:
            raise ValueError(f"land factors missing for: {', '.join(missing)}")

    @classmethod
    def default(
        cls,
        kind: str,
        *,
        per_m: float | None = None,
        land: Mapping[str, float] | None = None,
        crossing: Mapping[str, float] | None = None,
    ) -> CostModel:
        """The documented defaults of ``kind``, with any of them overridden."""
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r}: use one of {', '.join(KINDS)}")
        return cls(
            COST_PER_M[kind] if per_m is None else per_m,
            {**LAND_FACTORS, **(land or {})},
            {**CROSSING_COSTS[kind], **(crossing or {})},
        )


@dataclass(eq=False)
class CorridorGraph:
    """Candidate segments of one kind around one area, the existing network contracted into node 0.

    Attributes
    ----------
    kind : str
    xy : ndarray (n, 2)
        Node coordinates (working CRS); row 0 (the network) is NaN.
    u, v : ndarray of int
        Edge ends (``u < v`` is not guaranteed; connectors have ``v == 0``).
    length, cost : ndarray of float
        Metres and tenge per edge.
    crossings : ndarray of int
        Crossings of sewers / rail / roads per edge.
    geometry : ndarray of LineString
        Each edge's line; a connector runs from its node to the network.
    joins : ndarray of object
        For connectors: the asset id of the network feature joined; None for other edges.
    forbidden : ndarray of Polygon
        The zones no segment may cross (for checking and display).
    network : GeoDataFrame
        The existing network's features (working CRS).
    targets : list of str
        Target plot ids, in the order given.
    served : ndarray of bool
        Per target: already within the frontage distance of the existing network.
    reach : list of ndarray
        Per target: the nodes within the frontage distance of the plot.
    unreachable : dict
        Plot id -> reason, for targets that cannot be connected at all.
    spacing_m : float
        The lattice spacing used.
    """

    kind: str
    xy: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length: np.ndarray
    cost: np.ndarray
    crossings: np.ndarray
    geometry: np.ndarray
    joins: np.ndarray
    forbidden: np.ndarray
    network: gpd.GeoDataFrame
    targets: list[str]
    served: np.ndarray
    reach: list[np.ndarray]
    unreachable: dict[str, str]
    spacing_m: float

    @property
    def n_nodes(self) -> int:
        """Number of nodes, the network included."""
        return len(self.xy)

    @property
    def n_edges(self) -> int:
        """Number of candidate segments."""
        return len(self.u)

    def matrix(
        self, weight: np.ndarray | None = None, edges: np.ndarray | None = None
    ) -> sparse.csr_matrix:
        """Symmetric sparse adjacency weighted by ``weight`` (default: cost) over ``edges``
        (default: all); zero weights are kept as a tiny positive number so csgraph sees them."""
        sel = np.arange(self.n_edges) if edges is None else np.asarray(edges, dtype=np.intp)
        w = (self.cost if weight is None else np.asarray(weight, float))[sel]
        w = np.maximum(w, 1e-9)
        rows, cols = np.r_[self.u[sel], self.v[sel]], np.r_[self.v[sel], self.u[sel]]
        m = sparse.coo_matrix((np.r_[w, w], (rows, cols)), shape=(self.n_nodes, self.n_nodes))
        return _min_duplicates(m)

    @cached_property
    def edge_lookup(self) -> dict[tuple[int, int], int]:
        """Cheapest edge index by its (unordered) node pair (built once, on first use)."""
        order = np.argsort(-self.cost, kind="stable")  # cheapest written last, so it wins
        return {
            (min(a, b), max(a, b)): int(e)
            for e, a, b in zip(order.tolist(), self.u[order].tolist(), self.v[order].tolist())
        }


def _min_duplicates(m: sparse.coo_matrix) -> sparse.csr_matrix:
    """CSR keeping the smallest of duplicate entries (coo->csr would add them)."""
    order = np.lexsort((m.data, m.col, m.row))
    r, c, d = m.row[order], m.col[order], m.data[order]
    first = np.r_[True, (r[1:] != r[:-1]) | (c[1:] != c[:-1])] if len(r) else np.zeros(0, bool)
    return sparse.csr_matrix((d[first], (r[first], c[first])), shape=m.shape)


def build_corridors(
    model: ServicingModel,
    area: shapely.Geometry,
    target_ids: Sequence[str],
    *,
    kind: str,
    as_of: dt.date | str | None = None,
    what_if: Mapping[tuple[str, str], str] | None = None,
    costs: CostModel | None = None,
    spacing_m: float = DEFAULT_SPACING_M,
    frontage_m: float = FRONTAGE_M,
) -> CorridorGraph:
    """Build the corridor graph of ``kind`` around ``area`` for the target plots.

    Parameters
    ----------
    model : ServicingModel
        The store snapshot with its status rules.
    area : Polygon
        The expansion area (or the envelope of chosen plots), working CRS.
    target_ids : sequence of str
        Plot ids to reach (each must be a plot of the snapshot).
    kind : {"road", "rail", "power"}
    as_of, what_if
        Which assets count as operational (see :meth:`ServicingModel.scenario`).
    costs : CostModel, optional
        Defaults to :meth:`CostModel.default` of the kind.
    spacing_m : float
        Lattice spacing (coarsened on large areas).
    frontage_m : float
        A target is reached by a network within this distance (servicing's frontage).

    Raises
    ------
    ValueError
        Unknown kind or plots, bad spacing.
    """
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: use one of {', '.join(KINDS)}")
    if not (math.isfinite(spacing_m) and spacing_m >= 5.0):
        raise ValueError(f"lattice spacing must be at least 5 m, got {spacing_m!r}")
    costs = costs or CostModel.default(kind)
    plots = model.layers["plots"]
    pos = {pid: i for i, pid in enumerate(plots["plot_id"].astype(str))}
    unknown = [t for t in target_ids if t not in pos]
    if unknown:
        raise ValueError(f"unknown plots: {', '.join(unknown)}")
    network = _network(model, kind, as_of, what_if)
    forbidden = _forbidden(model, kind, network)
    status = plots["status"].astype(str).to_numpy()
    free_plots = np.asarray(
        plots.geometry.values[np.isin(status, FREE_PLOT_STATUSES)], dtype=object
    )
    target_geoms = np.asarray(plots.geometry.values[[pos[t] for t in target_ids]], dtype=object)
    net_geoms = np.asarray(network.geometry.values, dtype=object)
    empty = CorridorGraph(
        kind,
        np.full((1, 2), np.nan),
        *(np.zeros(0, np.intp),) * 2,
        *(np.zeros(0),) * 2,
        np.zeros(0, np.intp),
        np.zeros(0, object),
        np.zeros(0, object),
        forbidden,
        network,
        list(target_ids),
        np.zeros(len(target_ids), bool),
        [np.zeros(0, np.intp)] * len(target_ids),
        {},
        spacing_m,
    )
    if len(net_geoms) == 0:
        empty.unreachable = {
            t: f"no operational {_NOUN[kind]} exists to connect to" for t in target_ids
        }
        return empty
    net_union = shapely.union_all(net_geoms)
    served = shapely.dwithin(target_geoms, net_union, frontage_m + _EPS)
    scope = shapely.union_all(np.r_[np.asarray([area], dtype=object), target_geoms])
    gap = float(shapely.distance(scope, net_union))
    if gap > MAX_REACH_M:
        empty.served = served
        empty.unreachable = {
            t: f"the nearest operational {_NOUN[kind]} is {gap:.0f} m away, "
            f"beyond the {MAX_REACH_M:.0f} m reach"
            for t, s in zip(target_ids, served)
            if not s
        }
        return empty
    minx, miny, maxx, maxy = shapely.bounds(shapely.buffer(scope, gap + REACH_SLACK_M))
    spacing = _spacing(spacing_m, maxx - minx, maxy - miny)
    lattice_xy, lattice_edges = square_lattice(minx, miny, maxx, maxy, spacing)
    region = shapely.box(minx, miny, maxx, maxy)
    # every plot's edge is a corridor: a taken plot may be skirted, never entered
    all_plots = np.asarray(plots.geometry.values, dtype=object)
    boundary_xy, boundary_edges = boundary_segments(
        all_plots[shapely.intersects(all_plots, region)], spacing
    )
    xy = np.r_[lattice_xy, boundary_xy]
    edges = np.r_[lattice_edges, boundary_edges + len(lattice_xy)]
    xy, edges = merge_close(xy, edges)
    points = np.asarray(shapely.points(xy), dtype=object)
    inside = inside_any(points, forbidden)
    # boundary nodes join the lattice nodes around them
    b_first = len(lattice_xy)  # merging keeps the lattice nodes first, in place
    tie = near_pairs(points, spacing * 1.01)
    tie = tie[(tie[:, 0] >= b_first) != (tie[:, 1] >= b_first)]
    edges = np.r_[edges, tie]
    edges = edges[(edges[:, 0] != edges[:, 1]) & ~inside[edges[:, 0]] & ~inside[edges[:, 1]]]
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    lines = np.asarray(
        shapely.linestrings(np.stack([xy[edges[:, 0]], xy[edges[:, 1]]], axis=1)), dtype=object
    )
    # connectors from nodes near the network to its nearest point
    near_node, near_feat = shapely.STRtree(net_geoms).query_nearest(
        points, max_distance=spacing * 1.5, all_matches=False
    )
    keep = ~inside[near_node]
    near_node, near_feat = near_node[keep], near_feat[keep]
    conn_lines = shapely.shortest_line(points[near_node], net_geoms[near_feat])
    all_lines: np.ndarray = np.r_[lines, conn_lines]
    u = np.r_[edges[:, 0] + 1, near_node + 1]
    v = np.r_[edges[:, 1] + 1, np.zeros(len(near_node), np.intp)]
    joins = np.r_[
        np.full(len(lines), None, dtype=np.object_), network["asset_id"].to_numpy(object)[near_feat]
    ]
    ok = ~crosses_interior(all_lines, forbidden)
    all_lines, u, v, joins = all_lines[ok], u[ok], v[ok], joins[ok]
    length = shapely.length(all_lines)
    crossings, crossing_cost = _crossings(model, kind, all_lines, costs)
    factor = np.where(
        inside_any(
            shapely.line_interpolate_point(all_lines, 0.5, normalized=True), free_plots, strict=True
        ),
        costs.land["plot"],
        costs.land["open"],
    )
    cost = length * costs.per_m * factor + crossing_cost
    node_xy = np.r_[np.full((1, 2), np.nan), xy]
    graph = CorridorGraph(
        kind,
        node_xy,
        u.astype(np.intp),
        v.astype(np.intp),
        length,
        cost,
        crossings,
        all_lines,
        joins,
        forbidden,
        network,
        list(target_ids),
        served,
        [],
        {},
        spacing,
    )
    _attach_targets(graph, points, target_geoms, served, frontage_m, forbidden)
    return graph


_NOUN = {"road": "road", "rail": "rail line", "power": "power line or substation"}


def _network(
    model: ServicingModel,
    kind: str,
    as_of: dt.date | str | None,
    what_if: Mapping[tuple[str, str], str] | None,
) -> gpd.GeoDataFrame:
    """The kind's features operational in the scenario: ``asset_id``, ``layer``, ``sub_id``, geometry."""
    layers = [NETWORK_LAYER[kind]] + (["substations"] if kind == "power" else [])
    parts = []
    for layer in layers:
        frame = model.layers[layer]
        ok = model.layer_status(layer, as_of, what_if) == "operational"
        if layer == "power_lines":
            sub = frame["sub_id"].to_numpy(object)
        elif layer == "substations":
            sub = frame["asset_id"].to_numpy(object)
        else:
            sub = np.full(len(frame), None, dtype=object)
        parts.append(
            pd.DataFrame(
                {
                    "asset_id": frame["asset_id"].astype(str).to_numpy()[ok],
                    "layer": layer,
                    "sub_id": sub[ok],
                    "geometry": np.asarray(frame.geometry.values, dtype=object)[ok],
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    out = out[
        ~(
            shapely.is_missing(out["geometry"].to_numpy())
            | shapely.is_empty(out["geometry"].to_numpy())
        )
    ]
    return gpd.GeoDataFrame(
        out.reset_index(drop=True), geometry="geometry", crs=model.layers["plots"].crs
    )


def _forbidden(model: ServicingModel, kind: str, network: gpd.GeoDataFrame) -> np.ndarray:
    """Protection zones (any status) the kind may not enter, and occupied/allocated/reserved plots."""
    zones = model.layers["prot_zones"]
    zkind = zones["kind"].astype(str).to_numpy()
    zgeom = np.asarray(zones.geometry.values, dtype=object)
    allowed = np.zeros(len(zones), bool)
    if kind == "rail":
        allowed = zkind == "rail"
    elif kind == "power":
        subs = network.geometry.values[network["layer"].to_numpy() == "substations"]
        holds_sub = np.zeros(len(zones), bool)
        if len(subs) and len(zones):
            zi, _ = shapely.STRtree(np.asarray(subs, dtype=object)).query(
                zgeom, predicate="contains"
            )
            holds_sub[zi] = True
        allowed = (zkind == "power") | ((zkind == "substation") & holds_sub)
    plots = model.layers["plots"]
    taken = plots["status"].astype(str).isin(FORBIDDEN_PLOT_STATUSES).to_numpy()
    out: np.ndarray = np.r_[zgeom[~allowed], np.asarray(plots.geometry.values, dtype=object)[taken]]
    return out[~(shapely.is_missing(out) | shapely.is_empty(out))] if len(out) else out


def _spacing(spacing: float, width: float, height: float) -> float:
    """The requested spacing, coarsened until the lattice has at most MAX_LATTICE_NODES nodes."""
    while (width / spacing + 1) * (height / spacing + 1) > MAX_LATTICE_NODES:
        spacing *= 1.25
    return spacing


def _crossings(
    model: ServicingModel, kind: str, lines: np.ndarray, costs: CostModel
) -> tuple[np.ndarray, np.ndarray]:
    """Crossings per line of the layers the kind pays to cross, and their cost."""
    count = np.zeros(len(lines), np.intp)
    cost = np.zeros(len(lines))
    for layer, price in costs.crossing.items():
        frame = model.layers.get(layer)
        if frame is None or len(frame) == 0:
            continue
        # planned lines are not in the ground yet; anything else is, working or not
        built = frame["status"].astype(str).to_numpy() != "planned"
        geoms = np.asarray(frame.geometry.values, dtype=object)[built]
        if len(geoms) == 0:
            continue
        li, _ = shapely.STRtree(geoms).query(lines, predicate="crosses")
        hits = np.bincount(li, minlength=len(lines))
        count += hits
        cost += hits * price
    return count, cost


def _attach_targets(
    graph: CorridorGraph,
    points: np.ndarray,
    target_geoms: np.ndarray,
    served: np.ndarray,
    frontage_m: float,
    forbidden: np.ndarray,
) -> None:
    """Per target: the connected nodes within the frontage distance, or why there are none;
    the edges cut off from the network are dropped."""
    n = graph.n_nodes
    used = np.zeros(n, bool)
    used[graph.u] = True
    used[graph.v] = True
    _, label = csgraph.connected_components(graph.matrix(), directed=False)
    t, node = shapely.STRtree(points).query(
        target_geoms, predicate="dwithin", distance=frontage_m + _EPS
    )
    node = node + 1
    keep = used[node]
    t, node = t[keep], node[keep]
    graph.reach = [np.zeros(0, np.intp)] * len(target_geoms)
    for k in np.unique(t).tolist():
        graph.reach[k] = node[t == k]
    for k, pid in enumerate(graph.targets):
        if served[k]:
            continue
        nodes = graph.reach[k]
        if len(nodes) == 0:
            graph.unreachable[pid] = (
                f"no free land within {frontage_m:g} m of the plot: it is "
                "closed in by occupied, allocated or reserved plots or "
                "protection zones"
            )
        elif not (label[nodes] == label[NET]).any():
            graph.unreachable[pid] = (
                f"protection zones and occupied, allocated or reserved plots "
                f"cut it off from every operational {_NOUN[graph.kind]}"
            )
        else:
            graph.reach[k] = nodes[label[nodes] == label[NET]]
    # pieces of land cut off from the network serve nobody: drop them
    keep = label[graph.u] == label[NET]
    for name in ("u", "v", "length", "cost", "crossings", "geometry", "joins"):
        setattr(graph, name, getattr(graph, name)[keep])
