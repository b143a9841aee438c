"""Exact reductions: degree tests and the special-distance test shrink a graph without losing an optimum."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from planner.steiner.instance import _TOL, _Graph

_SD_TEST_MAX_ENTRIES = 2_000_000


class _Reducer:
    """Exact reductions: the reduced graph keeps at least one minimum Steiner tree of the original."""

    def __init__(self, graph: _Graph) -> None:
        self.n = graph.n
        self.is_terminal = graph.is_terminal
        self.terminals = graph.terminals
        self.adj: list[dict[int, int]] = [{} for _ in range(graph.n)]
        self.ends: list[tuple[int, int]] = []
        self.cost: list[float] = []
        self.payload: list[tuple[int, ...]] = []
        for a, b, c, p in zip(
            graph.u.tolist(), graph.v.tolist(), graph.cost.tolist(), graph.payload
        ):
            self._add(a, b, c, p)

    def reduce(self, rounds: int = 4) -> _Graph:
        self._degree_tests(range(self.n))
        for _ in range(rounds):
            graph, edge_ids = self._snapshot()
            if len(graph.terminals) * graph.n > _SD_TEST_MAX_ENTRIES:
                return graph  # on big graphs with many terminals it costs more than it saves
            doomed = edge_ids[graph.cost > _special_distance_bound(graph) * (1 + _TOL) + _TOL]
            for e in doomed.tolist():
                self._remove(e)
            self._degree_tests(x for e in doomed.tolist() for x in self.ends[e])
            if doomed.size <= 0.01 * len(edge_ids):
                break
        return self._snapshot()[0]

    def _add(self, a: int, b: int, cost: float, payload: tuple[int, ...]) -> None:
        existing = self.adj[a].get(b)
        if existing is not None:
            if self.cost[existing] <= cost:
                return
            self._remove(existing)
        e = len(self.cost)
        self.ends.append((a, b))
        self.cost.append(cost)
        self.payload.append(payload)
        self.adj[a][b] = e
        self.adj[b][a] = e

    def _remove(self, e: int) -> None:
        a, b = self.ends[e]
        if self.adj[a].get(b) == e:
            del self.adj[a][b], self.adj[b][a]

    def _degree_tests(self, nodes: Iterable[int]) -> None:
        """Drop non-terminal leaves and replace non-terminals of degree 2 by a single edge."""
        stack = list(nodes)
        while stack:
            x = stack.pop()
            neighbours = self.adj[x]
            if self.is_terminal[x] or len(neighbours) not in (1, 2):
                continue
            incident = list(neighbours.items())
            for _, e in incident:
                self._remove(e)
            if len(incident) == 2:
                (y, e1), (z, e2) = incident
                self._add(y, z, self.cost[e1] + self.cost[e2], self.payload[e1] + self.payload[e2])
            stack.extend(y for y, _ in incident)

    def _snapshot(self) -> tuple[_Graph, np.ndarray]:
        alive = sorted({e for neighbours in self.adj for e in neighbours.values()})
        ends = np.array([self.ends[e] for e in alive], dtype=np.int64).reshape(-1, 2)
        used = np.zeros(self.n, dtype=bool)
        used[ends.ravel()] = True
        used[self.terminals] = True
        new_id = np.cumsum(used) - 1
        graph = _Graph(
            int(used.sum()),
            new_id[ends[:, 0]],
            new_id[ends[:, 1]],
            np.array([self.cost[e] for e in alive], dtype=float),
            [self.payload[e] for e in alive],
            new_id[self.terminals],
        )
        return graph, np.array(alive, dtype=np.int64)


def _special_distance_bound(graph: _Graph) -> np.ndarray:
    """Per edge, an upper bound on the bottleneck Steiner distance between its ends.

    An edge longer than that bound lies in no minimum Steiner tree (Duin & Volgenant).
    """
    dist = csgraph.dijkstra(graph.matrix, indices=graph.terminals)
    bottleneck = _terminal_bottlenecks(dist[:, graph.terminals])
    u, v = graph.u, graph.v
    t = len(graph.terminals)
    if t * t <= 2_500:
        bound = np.empty(len(u))
        chunk = max(1, 4_000_000 // (t * t))
        for start in range(0, len(u), chunk):
            part = slice(start, start + chunk)
            # u -> z1, then terminal-to-terminal hops, then z2 -> v
            pairs = np.maximum(dist[:, None, u[part]], bottleneck[:, :, None])
            bound[part] = np.maximum(pairs, dist[None, :, v[part]]).min(axis=(0, 1))
    else:
        # only the terminals nearest to either end, to stay linear in the number of edges
        nearest, near = dist.argmin(axis=0), dist.min(axis=0)
        zu, zv = nearest[u], nearest[v]
        via_zu = np.maximum(near[u], dist[zu, v])
        via_zv = np.maximum(dist[zv, u], near[v])
        across = np.maximum(np.maximum(near[u], bottleneck[zu, zv]), near[v])
        bound = np.minimum(np.minimum(via_zu, via_zv), across)
    if graph.n <= 1500:
        bound = np.minimum(bound, csgraph.dijkstra(graph.matrix)[u, v])
    return bound


def _terminal_bottlenecks(distances: np.ndarray) -> np.ndarray:
    """Minimax path lengths between terminals in their complete distance graph (via Kruskal merges)."""
    t = len(distances)
    # sparse input on purpose: csgraph reads dense entries below ~1e-8 as missing edges
    tree = csgraph.minimum_spanning_tree(sp.csr_array(distances)).tocoo()
    bottleneck = np.full((t, t), np.inf)
    np.fill_diagonal(bottleneck, 0.0)
    members = {i: [i] for i in range(t)}
    owner = list(range(t))
    for k in np.argsort(tree.data):
        a, b = owner[tree.row[k]], owner[tree.col[k]]
        bottleneck[np.ix_(members[a], members[b])] = tree.data[k]
        bottleneck[np.ix_(members[b], members[a])] = tree.data[k]
        for x in members[b]:
            owner[x] = a
        members[a] += members.pop(b)
    return bottleneck


# --------------------------------------------------------------------------- heuristics
