"""Lower bounds on a Steiner tree's cost: Wong's dual ascent and the Voronoi-region bound."""

from __future__ import annotations

import heapq

import numpy as np
from scipy.sparse import csgraph

from planner.steiner.instance import _Clock, _Graph


def _dual_ascent(
    graph: _Graph, root: int, clock: _Clock, keep_cuts: bool
) -> tuple[float, list[np.ndarray]]:
    """Wong's dual ascent on the bidirected graph: a lower bound, and the cuts it raised.

    Arc ``e`` is ``u[e] -> v[e]`` and arc ``e + m`` the reverse. Each terminal but the root
    owns the set of nodes reaching it over arcs of zero reduced cost; the terminal whose set
    has the fewest entering arcs raises that cut's dual by the least reduced cost on it.
    Every intermediate state is dual feasible, so the bound holds when time runs out too.
    """
    tail = np.concatenate([graph.u, graph.v])
    head = np.concatenate([graph.v, graph.u])
    reduced = np.concatenate([graph.cost, graph.cost])
    by_head = np.argsort(head, kind="stable")
    first_in = np.searchsorted(head[by_head], np.arange(graph.n + 1))
    inside: dict[int, np.ndarray] = {}
    entering: dict[int, np.ndarray] = {}

    def grow(t: int, nodes: np.ndarray) -> bool:
        """Add ``nodes`` and all that reach them over zero-cost arcs; True once the root is in."""
        parts = [entering[t]]
        frontier = np.unique(nodes)
        frontier = frontier[~inside[t][frontier]]
        while frontier.size:
            inside[t][frontier] = True
            start, count = first_in[frontier], np.diff(first_in)[frontier]
            arcs = by_head[
                np.repeat(start - np.cumsum(count) + count, count) + np.arange(count.sum())
            ]
            parts.append(arcs)
            tails = tail[arcs[reduced[arcs] <= 0]]
            frontier = np.unique(tails[~inside[t][tails]])
        entering[t] = np.concatenate(parts)
        return bool(inside[t][root])

    queue = []
    for t in graph.terminals.tolist():
        if t != root:
            inside[t], entering[t] = np.zeros(graph.n, dtype=bool), np.empty(0, dtype=np.int64)
            if not grow(t, np.array([t])):
                queue.append((0, t))
    heapq.heapify(queue)
    bound, cuts = 0.0, []
    while queue and not clock.expired():
        size, t = heapq.heappop(queue)
        arcs = entering[t] = entering[t][~inside[t][tail[entering[t]]]]
        if arcs.size > size:
            heapq.heappush(queue, (arcs.size, t))  # no longer the smallest: look again later
            continue
        step = reduced[arcs].min()
        if step > 0:
            reduced[arcs] -= step
            bound += float(step)
            if keep_cuts:
                cuts.append(arcs)
        if not grow(t, tail[arcs[reduced[arcs] <= 0]]):
            heapq.heappush(queue, (entering[t].size, t))
    return bound, cuts


def _voronoi_bound(graph: _Graph) -> float:
    """Half the sum, over terminals, of a lower bound on the distance to the nearest other terminal.

    Walking around a Steiner tree visits the terminals in turn, each leg at least that
    distance, so twice the tree's cost covers the sum. Each terminal's distance is bounded
    below by its cheapest edge into another terminal's Voronoi region (``d(x) + c + d(y)``);
    one multi-source Dijkstra, so it is there when dual ascent runs out of time.
    """
    terminals = graph.terminals
    dist, _, source = csgraph.dijkstra(
        graph.matrix, directed=False, indices=terminals, min_only=True, return_predecessors=True
    )
    a, b = graph.u, graph.v
    across = (source[a] != source[b]) & (source[a] >= 0) & (source[b] >= 0)
    value = dist[a[across]] + graph.cost[across] + dist[b[across]]
    nearest = np.full(graph.n, np.inf)
    np.minimum.at(nearest, source[a[across]], value)
    np.minimum.at(nearest, source[b[across]], value)
    legs = nearest[terminals]
    if not np.isfinite(legs).all():
        return 0.0
    # distances ran on weights where zero costs are a tiny positive number: stay below
    return max(0.0, 0.5 * float(legs.sum()) * (1.0 - 1e-7))
