"""Freight-aware access design: construction plus freight over a horizon (fixed-charge
network design), improved from the freight-blind Steiner tree and, on small instances,
solved as a MILP on HiGHS (see :mod:`planner.access_design`, which re-exports it)."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from planner.corridors import NET, CorridorGraph
from planner.servicing import ServicingModel
from planner.steiner import SteinerTree

__all__ = [
    "FREIGHT_TARIFF",
    "DEFAULT_TONNES_PER_HA",
    "FREIGHT_MILP_MAX",
    "FreightModel",
    "freight_cost",
    "freight_model",
]

#: Tenge per tonne-km: lorry haulage on roads, wagonload on rail.
FREIGHT_TARIFF: dict[str, float] = {"road": 30.0, "rail": 12.0}
#: Annual freight of a plot without a stated tonnage, tonnes per hectare: the seed's
#: greenhouse ships 7.2 kt/yr from 21 ha and the pipe plant 100 kt/yr from 6 ha; a
#: planning default between light and heavy industry.
DEFAULT_TONNES_PER_HA = 2_000.0
#: Largest targets x edges product solved as a freight MILP.
FREIGHT_MILP_MAX = 60_000


@dataclass(frozen=True)
class FreightModel:
    """Freight over a horizon.

    Attributes
    ----------
    tonnes : ndarray
        Tonnes a year per target (in the graph's target order).
    years : float
    tariff : float
        Tenge per tonne-km.
    exit_m : ndarray
        Per corridor edge: metres from where a connector joins the existing network to
        the destination along it (inf where the destination cannot be reached; 0 for
        edges that are not connectors).
    served_m : ndarray
        Per target: distance along the existing network to the destination from the
        plot's frontage (used for targets already served).
    """

    tonnes: np.ndarray
    years: float
    tariff: float
    exit_m: np.ndarray
    served_m: np.ndarray

    @property
    def weight(self) -> np.ndarray:
        """Tenge per metre of distance, per target."""
        return self.tonnes * self.years * self.tariff / 1000.0


def _from_net(matrix: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Costs and predecessors from the existing network (node ``NET``) to every node."""
    dist, pred = csgraph.dijkstra(matrix, directed=False, indices=[NET], return_predecessors=True)
    return dist[0], pred[0]


def _nearest(nodes: np.ndarray, dist: np.ndarray) -> int:
    return int(nodes[np.argmin(dist[nodes])])


# --------------------------------------------------------------------------- freight


def freight_cost(
    graph: CorridorGraph, live: Sequence[int], chosen: np.ndarray, freight: FreightModel
) -> tuple[float, np.ndarray]:
    """Freight over the horizon with the given segments built: total and per target distance (m)."""
    dist = _built_distance(graph, chosen, freight)
    per = np.full(len(graph.targets), np.inf)
    for k in live:
        per[k] = freight.served_m[k] if graph.served[k] else float(dist[graph.reach[k]].min())
    w = freight.weight
    idx = np.asarray(live, dtype=np.intp)
    return float(np.sum(w[idx] * per[idx])), per


def _built_distance(graph: CorridorGraph, chosen: np.ndarray, freight: FreightModel) -> np.ndarray:
    """Metres to the destination from every node over the built segments (inf where cut off)."""
    length = graph.length + freight.exit_m
    return _from_net(graph.matrix(length, chosen))[0]


def _freight_design(
    graph: CorridorGraph,
    live: list[int],
    chosen: np.ndarray,
    tree: SteinerTree,
    freight: FreightModel,
    deadline: float | None,
    tick: Callable[[], None],
) -> tuple[np.ndarray, dict[str, Any]]:
    """Improve the Steiner tree for construction + freight; the figures for the summary."""
    w = freight.weight
    base_freight, _ = freight_cost(graph, live, chosen, freight)
    base_cost = float(math.fsum(graph.cost[chosen]))
    current, total = _improve(graph, live, chosen, freight, deadline, tick)
    method = "heuristic"
    lower = (tree.lower_bound or 0.0) + _freight_floor(graph, live, freight)
    unserved = [k for k in live if not graph.served[k]]
    if len(unserved) * graph.n_edges <= FREIGHT_MILP_MAX:
        milp = _freight_milp(graph, unserved, current, freight, deadline)
        if milp is not None:
            built, bound = milp
            fixed = sum(w[k] * freight.served_m[k] for k in live if graph.served[k])
            lower = max(lower, bound + fixed)
            if built is not None:
                cand = (
                    float(math.fsum(graph.cost[built]))
                    + freight_cost(graph, live, built, freight)[0]
                )
                if cand < total - 1e-9 * max(1.0, total):
                    current, total = built, cand
            method = "milp"
    freight_now, _ = freight_cost(graph, live, current, freight)
    cost = float(math.fsum(graph.cost[current]))
    gap = max(0.0, (total - lower) / total) if total > 0 else 0.0
    return current, {
        "freight_method": method,
        "freight_years": freight.years,
        "tariff": freight.tariff,
        "tonnes": {graph.targets[k]: float(freight.tonnes[k]) for k in live},
        "freight_cost": freight_now,
        "total": cost + freight_now,
        "construction_only": {
            "cost": base_cost,
            "freight_cost": base_freight,
            "total": base_cost + base_freight,
        },
        "saving": base_cost + base_freight - (cost + freight_now),
        "lower_bound": min(lower, total),
        "gap": gap,
    }


def _freight_floor(graph: CorridorGraph, live: list[int], freight: FreightModel) -> float:
    """Freight with every candidate segment built: no design ships for less."""
    return freight_cost(graph, live, np.arange(graph.n_edges), freight)[0]


def _objective(
    graph: CorridorGraph, live: list[int], built: np.ndarray, freight: FreightModel
) -> float:
    return float(math.fsum(graph.cost[built])) + freight_cost(graph, live, built, freight)[0]


def _improve(
    graph: CorridorGraph,
    live: list[int],
    chosen: np.ndarray,
    freight: FreightModel,
    deadline: float | None,
    tick: Callable[[], None],
) -> tuple[np.ndarray, float]:
    """Add each heavy plot's cheapest route when it lowers the total; drop unused edges; repeat."""
    w = freight.weight
    built = np.zeros(graph.n_edges, bool)
    built[chosen] = True
    total = _objective(graph, live, chosen, freight)
    order = sorted((k for k in live if not graph.served[k]), key=lambda k: -w[k])
    improved = True
    while improved:
        improved = False
        for k in order:
            tick()
            if deadline is not None and time.perf_counter() > deadline:
                return np.flatnonzero(built), total
            weight = w[k] * (graph.length + freight.exit_m) + np.where(built, 0.0, graph.cost)
            dist, pred = _from_net(graph.matrix(weight))
            node = _nearest(graph.reach[k], dist)
            path = _path_edges(graph, pred, node)
            if built[path].all():
                continue
            trial = built.copy()
            trial[path] = True
            trial = _prune(graph, live, trial, freight)
            value = _objective(graph, live, np.flatnonzero(trial), freight)
            if value < total - 1e-9 * max(1.0, total):
                built, total, improved = trial, value, True
    return np.flatnonzero(built), total


def _path_edges(graph: CorridorGraph, pred: np.ndarray, node: int) -> np.ndarray:
    lookup = graph.edge_lookup
    out = []
    while pred[node] >= 0:
        p = int(pred[node])
        out.append(lookup[(min(p, node), max(p, node))])
        node = p
    return np.asarray(out, dtype=np.intp)


def _prune(
    graph: CorridorGraph, live: list[int], built: np.ndarray, freight: FreightModel
) -> np.ndarray:
    """Keep only the edges on some target's shortest freight route over the built segments."""
    chosen = np.flatnonzero(built)
    length = graph.length + freight.exit_m
    dist, pred = _from_net(graph.matrix(length, chosen))
    keep = np.zeros(graph.n_edges, bool)
    for k in live:
        if graph.served[k]:
            continue
        keep[_path_edges(graph, pred, _nearest(graph.reach[k], dist))] = True
    return keep


def _freight_milp(
    graph: CorridorGraph,
    targets: list[int],
    start: np.ndarray,
    freight: FreightModel,
    deadline: float | None,
) -> tuple[np.ndarray | None, float] | None:
    """Fixed-charge design as a MILP on HiGHS: per target a unit flow from a source joined to its
    reach nodes to the network; an edge carries flow only if built. Returns (built edges or None,
    proven bound on construction + freight of these targets)."""
    import highspy

    from planner.highs import silent_highs

    E, N = graph.n_edges, graph.n_nodes
    w = freight.weight
    # arcs: each edge both ways, plus per target a source arc into each reach node
    tail = np.r_[graph.u, graph.v]
    head = np.r_[graph.v, graph.u]
    arc_len = np.r_[graph.length + freight.exit_m, graph.length + freight.exit_m]
    arc_edge = np.r_[np.arange(E), np.arange(E)]
    cols_cost = [graph.cost]
    lower_cols, upper_cols = [np.zeros(E)], [np.ones(E)]
    rows, cols, vals = [], [], []
    row_lo, row_hi = [], []
    n_rows = 0
    col = E
    for k in targets:
        reach = graph.reach[k]
        src = N  # the target's own source node
        t_tail = np.r_[tail, np.full(len(reach), src)]
        t_head = np.r_[head, reach]
        t_cost = np.r_[w[k] * arc_len, np.zeros(len(reach))]
        A = len(t_tail)
        ids = col + np.arange(A)
        cols_cost.append(t_cost)
        lower_cols.append(np.zeros(A))
        upper_cols.append(np.ones(A))
        # conservation at every node and the source: out - in = 1 at source, -1 at NET
        nodes = N + 1
        rows += [n_rows + t_tail, n_rows + t_head]
        cols += [ids, ids]
        vals += [np.ones(A), -np.ones(A)]
        b = np.zeros(nodes)
        b[src], b[NET] = 1.0, -1.0
        row_lo.append(b)
        row_hi.append(b)
        n_rows += nodes
        # linking: flow on an edge arc <= built
        link = np.arange(2 * E)
        r = n_rows + arc_edge[link]  # both directions share a row per edge: f_ab + f_ba <= y
        rows += [r, r]
        cols += [ids[link], arc_edge[link]]
        vals += [np.ones(2 * E), -np.ones(2 * E)]
        row_lo.append(np.full(E, -np.inf))
        row_hi.append(np.zeros(E))
        n_rows += E
        col += A
    cost = np.concatenate(cols_cost)
    matrix = sparse.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, col)
    )
    lo, hi = np.concatenate(row_lo), np.concatenate(row_hi)
    lo = np.where(np.isinf(lo), -highspy.kHighsInf, lo)
    highs = silent_highs()
    integrality = np.r_[np.ones(E, np.int32), np.zeros(col - E, np.int32)]
    highs.passModel(
        col,
        n_rows,
        matrix.nnz,
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        cost,
        np.concatenate(lower_cols),
        np.concatenate(upper_cols),
        lo,
        hi,
        matrix.indptr,
        matrix.indices,
        matrix.data,
        integrality,
    )
    if deadline is not None:
        remaining = deadline - time.perf_counter()
        if remaining <= 0.2:
            return None
        highs.setOptionValue("time_limit", remaining)
    warm = np.zeros(E)
    warm[start] = 1.0
    highs.setSolution(E, np.arange(E, dtype=np.int32), warm)
    highs.run()
    info = highs.getInfo()
    bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else 0.0
    if info.primal_solution_status != 2:
        return None, bound
    y = np.asarray(highs.getSolution().col_value[:E])
    return np.flatnonzero(y > 0.5), bound


def freight_model(
    model: ServicingModel,
    graph: CorridorGraph,
    *,
    years: float,
    tonnes: Mapping[str, float] | None = None,
    tariff: float | None = None,
    as_of: dt.date | str | None = None,
    what_if: Mapping[tuple[str, str], str] | None = None,
) -> FreightModel:
    """Freight inputs for a road or rail design from the store snapshot.

    Tonnes per target come from ``tonnes`` (plot id -> t/yr) or, for plots not listed,
    ``DEFAULT_TONNES_PER_HA`` x the plot's area. Destinations: operational gates (road)
    or rail stations (rail) as of the date.

    Raises
    ------
    ValueError
        For power (freight does not ride a feeder), bad numbers, or no destination.
    """
    kind = graph.kind
    if kind not in FREIGHT_TARIFF:
        raise ValueError("freight applies to roads and rail spurs, not to power feeders")
    if not (math.isfinite(years) and years > 0):
        raise ValueError(f"freight years must be a positive number, got {years!r}")
    tariff = FREIGHT_TARIFF[kind] if tariff is None else float(tariff)
    if not (math.isfinite(tariff) and tariff >= 0):
        raise ValueError(f"freight tariff must be a number >= 0, got {tariff!r}")
    plots = model.layers["plots"].set_index("plot_id", drop=False)
    given = dict(tonnes or {})
    bad = [
        f"{p}={t!r}"
        for p, t in given.items()
        if not (isinstance(t, (int, float)) and math.isfinite(t) and t >= 0)
    ]
    if bad:
        raise ValueError("tonnes must be numbers >= 0: " + ", ".join(bad))
    area_ha = shapely.area(np.asarray(plots.loc[graph.targets].geometry.values, dtype=object)) / 1e4
    t = np.array([given.get(p, DEFAULT_TONNES_PER_HA * a) for p, a in zip(graph.targets, area_ha)])
    net = model.road if kind == "road" else model.rail
    scen = model.scenario(as_of, what_if)
    layer = "gates" if kind == "road" else "rail_stations"
    ok = model.layer_status(layer, as_of, what_if) == "operational"
    points = np.asarray(model.layers[layer].geometry.values, dtype=object)[ok]
    nodes, _ = net.nearest_nodes(points)
    nodes = nodes[nodes >= 0]
    if len(nodes) == 0:
        raise ValueError(
            f"no operational {'gate' if kind == 'road' else 'rail station'} "
            "to ship freight to (try another date or a what-if)"
        )
    mask = net.mask(scen.overrides)
    dist, _ = net.dijkstra(nodes, mask=mask, min_only=True)

    def onward(geoms: np.ndarray) -> np.ndarray:
        edge, gap, frac = net.locate(geoms, mask=mask)
        via: np.ndarray = net.from_nodes(dist[None, :], edge, frac)[0]
        return via + np.where(edge >= 0, gap, 0.0)

    exit_m = np.zeros(graph.n_edges)
    conn = np.flatnonzero(graph.v == NET)
    if len(conn):
        exit_m[conn] = onward(shapely.get_point(graph.geometry[conn], 1))
    served_m = np.zeros(len(graph.targets))
    if graph.served.any():
        served_m[graph.served] = onward(
            np.asarray(plots.loc[graph.targets].geometry.values, dtype=object)[graph.served]
        )
    exit_m = np.where(np.isfinite(exit_m), exit_m, 1e9)  # a join cut off from the destination
    return FreightModel(t, float(years), tariff, exit_m, served_m)
