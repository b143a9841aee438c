"""Access design: the cheapest new roads, rail spurs or feeders joining target plots to the existing network.

The design is a Steiner tree on the :class:`~planner.corridors.CorridorGraph`: the
existing network (node 0) and one leaf per target plot are the terminals. A plot is
reached when the network comes within the frontage distance (25 m), i.e. at any node
of its ``reach``; a Steiner leaf must hang from one node (a leaf joined to several
would let the tree pass *through* the plot for free), so each plot's leaf hangs from a
*gate* node: first the reach node nearest the network, then, round by round, the reach
node nearest the tree found, until the tree stops getting cheaper. The instance of the
last improving round is the one reported and written (``--stp-out``); its lower bound
and gap are the Steiner solver's on that instance.

**Freight-aware option** (fixed-charge network design). Each target plot ships
``t`` tonnes a year; over ``years`` at ``tariff`` tenge per tonne-km, it costs
``w = t x years x tariff / 1000`` tenge per metre of network distance between the
plot and its destination (the nearest operational gate by road for roads, the station
by rail for spurs). Distance = along built segments to the existing network, plus
the onward distance on the existing network from where the connector joins it.
Minimise construction + freight. The freight-blind Steiner tree is the start; a
plot's cheapest route given what is built (edge weight ``w x length``, plus the
construction cost of edges not yet built) is added whenever it lowers the total, and
edges no route uses are dropped, until a pass changes nothing. Small instances
(targets x candidate edges <= ``FREIGHT_MILP_MAX``) are then solved as a MILP on
HiGHS (flow per plot, edges as binaries) warm-started from it. The lower bound is
the Steiner bound on construction plus every plot's freight over the whole corridor
graph built (each part at its own minimum), or HiGHS's bound when larger; the gap
is measured against it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import geopandas as gpd
import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from planner.access_freight import (
    DEFAULT_TONNES_PER_HA,
    FREIGHT_MILP_MAX,
    FREIGHT_TARIFF,
    FreightModel,
    _freight_design,
    _from_net,
    _nearest,
    freight_cost,
    freight_model,
)
from planner.corridors import NET, CorridorGraph
from planner.steiner import DEFAULT_TIME_LIMIT_S, Edge, SteinerTree, steiner_tree, write_stp

__all__ = [
    "FREIGHT_TARIFF",
    "DEFAULT_TONNES_PER_HA",
    "FREIGHT_MILP_MAX",
    "FreightModel",
    "Design",
    "design_access",
    "freight_cost",
    "freight_model",
]

_GATE_ROUNDS = 3

Progress = Callable[[float, str], None]


@dataclass(eq=False)
class Design:
    """A proposed design.

    Attributes
    ----------
    segments : GeoDataFrame
        One row per proposed segment (working CRS): ``kind``, ``length_m``, ``cost``,
        ``crossings``, ``targets`` (list of plot ids served through it), ``joins``
        (asset the segment's network end joins, or None).
    summary : dict
        JSON-able: cost, lower_bound, gap, optimal, method, elapsed_s, targets,
        connected, unreachable, unreachable_reasons, length/cost by kind, and freight
        figures when asked for. ``lower_bound`` and ``gap`` refer to the ``objective``:
        the construction cost, or with freight the total (construction + freight).
    edges : list of (int, int, float)
        The Steiner instance solved (corridor edges and target leaves).
    terminals : list of int
    chosen : ndarray of int
        Corridor edge indices of the design.
    """

    segments: gpd.GeoDataFrame
    summary: dict[str, Any]
    edges: list[Edge]
    terminals: list[int]
    chosen: np.ndarray = field(repr=False)

    def write_stp(self, path: str | os.PathLike[str]) -> None:
        """Write the instance solved in SteinLib format."""
        write_stp(
            path, self.edges, self.terminals, name=f"zoneplan access design {self.summary['kind']}"
        )


def design_access(
    graph: CorridorGraph,
    *,
    time_limit: float | None = DEFAULT_TIME_LIMIT_S,
    freight: FreightModel | None = None,
    progress: Progress | None = None,
) -> Design:
    """Design the cheapest new segments joining every reachable target to the network.

    Parameters
    ----------
    graph : CorridorGraph
    time_limit : float or None
        Seconds for the whole design (default 10 s); None proves optimality of each
        Steiner instance, however long.
    freight : FreightModel, optional
        Minimise construction plus freight instead of construction alone.
    progress : callable, optional
        ``progress(fraction, message)``; may raise to cancel.

    Raises
    ------
    ValueError
        No targets, or no target can be reached (the reasons named).
    """
    start = time.perf_counter()
    report = progress or (lambda fraction, message: None)
    if not graph.targets:
        raise ValueError("no target plots: the area has no candidate or available plots to connect")
    live = [k for k, pid in enumerate(graph.targets) if pid not in graph.unreachable]
    if not live:
        reasons = "; ".join(f"{p}: {r}" for p, r in graph.unreachable.items())
        raise ValueError(f"no target plot can be reached: {reasons}")
    lookup = graph.edge_lookup
    report(0.05, "choosing gates")
    dist, _ = _from_net(graph.matrix())
    gates = {k: _nearest(graph.reach[k], dist) for k in live if not graph.served[k]}
    best: tuple[SteinerTree, list[Edge], list[int], np.ndarray] | None = None
    deadline = None if time_limit is None else start + time_limit
    for rnd in range(_GATE_ROUNDS):
        budget = (
            None
            if deadline is None
            else max(
                0.5, (deadline - time.perf_counter()) * (0.5 if rnd < _GATE_ROUNDS - 1 else 1.0)
            )
        )
        report(0.1 + 0.6 * rnd / _GATE_ROUNDS, f"Steiner tree, round {rnd + 1}")
        edges, terminals = _instance(graph, live, gates)
        share = (0.1 + 0.6 * rnd / _GATE_ROUNDS, 0.6 / _GATE_ROUNDS)
        tree = steiner_tree(edges, terminals, time_limit=budget, check=_ticker(report, *share, rnd))
        chosen = _chosen(tree, lookup, graph.n_nodes)
        if best is None or tree.cost < best[0].cost - 1e-9 * max(1.0, best[0].cost):
            best = (tree, edges, terminals, chosen)
        else:
            break
        if deadline is not None and time.perf_counter() > deadline - 0.5:
            break
        regated = _regate(graph, chosen, gates)
        if regated == gates:
            break
        gates = regated
    assert best is not None, "the first round always keeps its tree"
    tree, edges, terminals, chosen = best
    summary = {"kind": graph.kind, "method": tree.method, "optimal": tree.optimal}
    freight_doc: dict[str, Any] = {}
    if freight is not None:
        report(0.75, "freight-aware design")
        chosen, freight_doc = _freight_design(
            graph,
            live,
            chosen,
            tree,
            freight,
            deadline,
            lambda: report(0.8, "freight-aware design"),
        )
    report(0.95, "segments")
    segments = _segments(graph, live, chosen)
    cost = float(math.fsum(graph.cost[chosen]))
    if freight is None:
        lower, gap, objective = tree.lower_bound, tree.gap, "construction"
    else:
        lower, gap, objective = (
            freight_doc["lower_bound"],
            freight_doc["gap"],
            "construction+freight",
        )
    connected = [graph.targets[k] for k in live]
    summary.update(
        {
            "cost": cost,
            "objective": objective,
            "lower_bound": lower,
            "gap": gap,
            "elapsed_s": round(time.perf_counter() - start, 3),
            "time_limit_s": time_limit,
            "targets": list(graph.targets),
            "connected": connected,
            "already_served": [graph.targets[k] for k in live if graph.served[k]],
            "unreachable": list(graph.unreachable),
            "unreachable_reasons": dict(graph.unreachable),
            "segments": len(segments),
            "length_m": {graph.kind: round(float(segments["length_m"].sum()), 1)},
            "cost_by_kind": {graph.kind: cost},
            "crossings": int(segments["crossings"].sum()) if len(segments) else 0,
            "spacing_m": graph.spacing_m,
            "corridor": {"nodes": graph.n_nodes, "edges": graph.n_edges},
            **freight_doc,
        }
    )
    if freight is not None:
        summary["method"] = freight_doc["freight_method"]
        summary["optimal"] = bool(gap is not None and gap <= 1e-6)
    report(1.0, "done")
    return Design(segments, summary, edges, terminals, chosen)


def _ticker(report: Progress, base: float, span: float, rnd: int) -> Callable[[], None]:
    """A Steiner ``check`` reporting the round's progress by elapsed time (so cancelling works)."""
    started = time.perf_counter()

    def tick() -> None:
        elapsed = time.perf_counter() - started
        report(base + span * elapsed / (elapsed + 5.0), f"Steiner tree, round {rnd + 1}")

    return tick


def _instance(
    graph: CorridorGraph, live: list[int], gates: Mapping[int, int]
) -> tuple[list[Edge], list[int]]:
    """Corridor edges plus one zero-cost leaf per live target (served ones hang from the network)."""
    edges: list[Edge] = list(zip(graph.u.tolist(), graph.v.tolist(), graph.cost.tolist()))
    leaves = []
    for k in live:
        leaf = graph.n_nodes + k
        edges.append((leaf, gates.get(k, NET), 0.0))
        leaves.append(leaf)
    return edges, [NET] + leaves


def _chosen(tree: SteinerTree, lookup: Mapping[tuple[int, int], int], n_nodes: int) -> np.ndarray:
    """Corridor edge indices of a tree (leaf edges dropped)."""
    ends = [(cast(int, u), cast(int, v)) for u, v, _ in tree.edges]  # corridor nodes are ints
    out = [lookup[(min(u, v), max(u, v))] for u, v in ends if u < n_nodes and v < n_nodes]
    return np.asarray(sorted(out), dtype=np.intp)


def _regate(graph: CorridorGraph, chosen: np.ndarray, gates: Mapping[int, int]) -> dict[int, int]:
    """Each unserved target's reach node nearest the tree (by construction cost)."""
    nodes = np.unique(np.r_[graph.u[chosen], graph.v[chosen], NET])
    dist = csgraph.dijkstra(graph.matrix(), directed=False, indices=nodes, min_only=True)
    return {k: _nearest(graph.reach[k], dist) for k in gates}


def _segments(graph: CorridorGraph, live: list[int], chosen: np.ndarray) -> gpd.GeoDataFrame:
    """Chosen corridor edges merged into segments between junctions, with the targets each serves."""
    columns: dict[str, list[Any]] = {
        "kind": [],
        "length_m": [],
        "cost": [],
        "crossings": [],
        "targets": [],
        "joins": [],
    }
    crs = graph.network.crs
    if len(chosen) == 0:
        return gpd.GeoDataFrame(columns, geometry=[], crs=crs)
    served_below = _targets_below(graph, live, chosen)
    groups = _chains(graph, chosen)
    geoms = []
    for group in groups:
        line = shapely.line_merge(shapely.multilinestrings(graph.geometry[group].tolist()))
        geoms.append(line)
        columns["kind"].append(graph.kind)
        columns["length_m"].append(round(float(graph.length[group].sum()), 2))
        columns["cost"].append(float(math.fsum(graph.cost[group])))
        columns["crossings"].append(int(graph.crossings[group].sum()))
        lower = [_lower_node(graph, e, served_below) for e in group]
        columns["targets"].append(sorted(set().union(*(served_below[n] for n in lower))))
        joins = [j for j in graph.joins[group] if j is not None]
        columns["joins"].append(joins[0] if joins else None)
    return gpd.GeoDataFrame(columns, geometry=geoms, crs=crs)


def _tree_order(graph: CorridorGraph, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Breadth-first order and predecessors of the chosen edges rooted at the network."""
    m = graph.matrix(np.ones(graph.n_edges), chosen)
    order, pred = csgraph.breadth_first_order(m, NET, directed=False, return_predecessors=True)
    return order, pred


def _targets_below(
    graph: CorridorGraph, live: list[int], chosen: np.ndarray
) -> dict[int, set[str]]:
    """Per tree node, the target plots reached at or below it (rooted at the network)."""
    order, pred = _tree_order(graph, chosen)
    below: dict[int, set[str]] = {int(n): set() for n in order.tolist()}
    in_tree = np.zeros(graph.n_nodes, bool)
    in_tree[order] = True
    for k in live:
        if graph.served[k]:
            continue
        hit = graph.reach[k][in_tree[graph.reach[k]]]
        # the plot is served through its reach node nearest the network in the tree
        if len(hit):
            below[int(hit[0])].add(graph.targets[k])
    for n in order[::-1].tolist():
        p = int(pred[n])
        if p >= 0:
            below[p] |= below[n]
    return below


def _lower_node(graph: CorridorGraph, e: int, below: Mapping[int, set[str]]) -> int:
    """The end of tree edge ``e`` farther from the network (the one with fewer targets below)."""
    a, b = int(graph.u[e]), int(graph.v[e])
    if a == NET or b == NET:
        return b if a == NET else a
    return a if len(below.get(a, ())) <= len(below.get(b, ())) else b


def _chains(graph: CorridorGraph, chosen: np.ndarray) -> list[np.ndarray]:
    """Group chosen edges into chains between nodes of degree other than 2 (and the network)."""
    deg = np.bincount(np.r_[graph.u[chosen], graph.v[chosen]], minlength=graph.n_nodes)
    stop = deg != 2
    stop[NET] = True
    # a chain is a connected component of edges once the stop nodes are split apart
    n = graph.n_nodes
    u, v = graph.u[chosen].copy(), graph.v[chosen].copy()
    # every edge end at a stop node gets its own private copy of that node
    private = np.arange(len(chosen))
    u = np.where(stop[u], n + 2 * private, u)
    v = np.where(stop[v], n + 2 * private + 1, v)
    size = n + 2 * len(chosen)
    m = sparse.coo_matrix((np.ones(len(chosen)), (u, v)), shape=(size, size))
    _, label = csgraph.connected_components(m, directed=False)
    comp = label[u]
    order = np.argsort(comp, kind="stable")
    bounds = np.flatnonzero(np.r_[True, comp[order][1:] != comp[order][:-1], True])
    return [chosen[order[a:b]] for a, b in zip(bounds[:-1], bounds[1:])]
