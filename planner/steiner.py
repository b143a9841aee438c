"""Steiner trees in graphs: exact reductions, shortest-path heuristics, local search and a directed-cut MILP."""

from __future__ import annotations

import heapq
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from planner.highs import silent_highs

__all__ = [
    "DEFAULT_TIME_LIMIT_S",
    "DisconnectedTerminalsError",
    "SteinerInternalError",
    "SteinerTree",
    "read_stp",
    "steiner_tree",
    "write_stp",
]

DEFAULT_TIME_LIMIT_S = 10.0
"""Budget of a call that names no time limit: a planner's click must not wait for a proof."""

EXACT_MAX_EDGES = 6000
"""Above this many edges after reductions, a budgeted ``exact=None`` call skips the MILP (it rarely closes in minutes)."""

_TOL = 1e-9
_EXACT_BY_CONSTRUCTION = ("trivial", "shortest path")
_OPTIMALITY_RTOL = 1e-6
_MAX_DISTANCE_ENTRIES = (
    40_000_000  # terminals x nodes float64 matrix kept for the shortest-path heuristic
)
_MAX_SPH_ROOTS = 24
_SD_TEST_MAX_ENTRIES = 2_000_000
_ASCENT_MIN_S = (
    1.0  # heuristic runs spend on the dual-ascent bound at most max(this, time spent so far)
)
_IMPROVED_STARTS = 6
_PERTURBED_RESTARTS = 16
_PERTURBATION = 0.25
_THOROUGH_MAX_EDGES = 6000
_LP_TAILING_ROUNDS = 8
_FLOW_SCALE = 1_000_000
_CHECK_EVERY_S = 0.25
_NESTED_CUTS = 4

Edge = tuple[Hashable, Hashable, float]


class DisconnectedTerminalsError(ValueError):
    """The terminals lie in different connected components; ``unreachable`` names those left out."""

    def __init__(self, unreachable: Sequence[Hashable]) -> None:
        self.unreachable = tuple(unreachable)
        super().__init__(
            f"terminals cannot all be joined: {list(self.unreachable)!r} are not connected to the others"
        )


class SteinerInternalError(RuntimeError):
    """A computed tree failed its own validity check: a bug in this module, never bad input."""


@dataclass(frozen=True)
class SteinerTree:
    """A Steiner tree: the chosen input edges, their total cost and what is known about optimality.

    Unpacks as ``edges, cost = steiner_tree(...)``.
    """

    edges: list
    cost: float
    lower_bound: float | None
    optimal: bool
    method: str
    elapsed_s: float

    @property
    def gap(self) -> float | None:
        """Relative gap ``(cost - lower_bound) / cost``, or None without a bound."""
        if self.lower_bound is None:
            return None
        if self.cost <= 0.0:
            return 0.0
        return max(0.0, (self.cost - self.lower_bound) / self.cost)

    def __iter__(self) -> Iterator:
        yield self.edges
        yield self.cost


# --------------------------------------------------------------------------- public entry point


def steiner_tree(
    edges: Iterable[Edge],
    terminals: Iterable[Hashable],
    *,
    time_limit: float | None = DEFAULT_TIME_LIMIT_S,
    exact: bool | None = None,
    check: Callable[[], None] | None = None,
) -> SteinerTree:
    """Find a minimum-cost tree joining all terminals of an undirected graph.

    Parameters
    ----------
    edges
        ``(u, v, cost)`` triples with hashable node ids and finite non-negative costs.
        Parallel edges are allowed (the cheapest counts); self-loops are ignored.
    terminals
        Node ids to join; duplicates are ignored.
    time_limit
        Wall-clock budget in seconds for the whole call (default ``DEFAULT_TIME_LIMIT_S``,
        10 s): the best tree found by then is returned with its lower bound and gap (a first
        heuristic tree is always completed). None: prove, however long -- local search runs
        to convergence and the MILP runs until it proves optimality, whatever the graph size
        (unless ``exact=False``).
    exact
        True: always run the MILP; False: heuristic and local search only; None: run the
        MILP when the reduced graph has at most ``EXACT_MAX_EDGES`` edges, or always when
        ``time_limit`` is None.
    check
        Called now and then while the search runs (at most every 0.25 s when the solver
        looks at its clock); whatever it raises abandons the search and propagates
        (how a cancelled job stops). The MILP's HiGHS runs are not interrupted.

    Returns
    -------
    SteinerTree
        ``edges`` are the chosen input triples exactly as given, ``cost`` their sum,
        ``lower_bound`` a proven bound (from the LP relaxation when the MILP ran, else from
        dual ascent, which may stop early on big graphs) and ``optimal`` whether the cost
        meets it.

    Raises
    ------
    ValueError
        Malformed edges, negative or non-finite costs, or terminals absent from the graph.
    DisconnectedTerminalsError
        The terminals are not all in one connected component.
    """
    clock = _Clock(time_limit, check=check)
    edge_list = list(edges)
    instance = _Instance.parse(edge_list, terminals)
    if len(instance.terminal_ids) < 2:
        return _finish(instance, [], None, "trivial", clock)
    graph = _Reducer(instance.graph).reduce()
    search = _LocalSearch(graph)
    if len(graph.terminals) == 2:
        return _finish(
            instance, _expand(graph, search.construct(clock)[0]), None, "shortest path", clock
        )
    run_exact = (
        exact if exact is not None else (time_limit is None or len(graph.u) <= EXACT_MAX_EDGES)
    )
    # a budgeted heuristic run leaves time for the dual-ascent bound, so it can report a gap
    heuristic_clock = clock.share(0.25 if run_exact else 0.6)
    tree = search.solve(heuristic_clock)
    if not run_exact:
        ascent_clock = clock.capped(max(_ASCENT_MIN_S, clock.elapsed()))
        lower_bound, _ = _dual_ascent(graph, int(graph.terminals[0]), ascent_clock, keep_cuts=False)
    else:
        result = _CutModel(graph).solve(tree, search, clock)
        lower_bound = result.lower_bound
        if result.tree is not None and result.tree.cost < tree.cost:
            tree = result.tree
    lower_bound = max(lower_bound or 0.0, _voronoi_bound(graph))
    return _finish(
        instance, _expand(graph, tree), lower_bound, "milp" if run_exact else "heuristic", clock
    )


def _cheaper(new: float, old: float) -> bool:
    """Strictly cheaper beyond floating-point noise."""
    return new < old - _TOL * abs(old)


def _proven(cost: float, bound: float) -> bool:
    """The bound meets the cost up to the relative optimality tolerance."""
    return cost - bound <= _OPTIMALITY_RTOL * abs(cost) + 1e-12


def _expand(graph: _Graph, tree: _Tree) -> list[int]:
    """Input edge indices behind the (reduced) tree edges."""
    return sorted(i for e in tree.edge_ids.tolist() for i in graph.payload[e])


def _finish(
    instance: _Instance, chosen: list[int], lower_bound: float | None, method: str, clock: _Clock
) -> SteinerTree:
    chosen_edges = [instance.edges[i] for i in chosen]
    cost = math.fsum(float(edge[2]) for edge in chosen_edges)
    _check_tree(instance, chosen, cost)
    if method in _EXACT_BY_CONSTRUCTION:
        lower_bound = cost
    elif lower_bound is not None:
        lower_bound = min(lower_bound, cost)
    optimal = lower_bound is not None and _proven(cost, lower_bound)
    if lower_bound is not None:
        lower_bound = float(lower_bound)
    return SteinerTree(chosen_edges, cost, lower_bound, bool(optimal), method, clock.elapsed())


def _check_tree(instance: _Instance, chosen: list[int], cost: float) -> None:
    """Raise SteinerInternalError unless ``chosen`` is a tree of input edges joining every terminal."""
    if len(set(chosen)) != len(chosen) or any(not 0 <= i < len(instance.edges) for i in chosen):
        raise SteinerInternalError(f"edge indices repeated or out of range: {chosen!r}")
    parent: dict[Hashable, Hashable] = {}

    def find(x: Hashable) -> Hashable:
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while x != root:
            parent[x], x = root, parent[x]
        return root

    for i in chosen:
        u, v, _ = instance.edges[i]
        ru, rv = find(u), find(v)
        if ru == rv:
            raise SteinerInternalError(f"edge {instance.edges[i]!r} closes a cycle")
        parent[ru] = rv
    if chosen and len(chosen) != len(parent) - 1:
        raise SteinerInternalError("the chosen edges form a forest, not a tree")
    if len(instance.terminal_ids) >= 2:
        missing = [t for t in instance.terminal_ids if t not in parent]
        if missing:
            raise SteinerInternalError(f"terminals {missing!r} are not joined")
    expected = math.fsum(float(instance.edges[i][2]) for i in chosen)
    if abs(expected - cost) > _TOL * expected + 1e-12:
        raise SteinerInternalError(f"reported cost {cost} differs from the edge sum {expected}")


# --------------------------------------------------------------------------- input and graphs


class _Clock:
    """Wall-clock budget; ``limit`` None means unlimited.

    ``check`` (optional) is called at most every ``_CHECK_EVERY_S`` whenever the solver
    looks at the clock; it may raise to abandon the search (a cancelled job).
    """

    def __init__(
        self,
        limit: float | None,
        start: float | None = None,
        check: Callable[[], None] | None = None,
    ) -> None:
        self.start = time.perf_counter() if start is None else start
        self.limit = limit
        self.check = check
        self._checked = self.start

    def elapsed(self) -> float:
        now = time.perf_counter()
        if self.check is not None and now - self._checked >= _CHECK_EVERY_S:
            self._checked = now
            self.check()
        return now - self.start

    def remaining(self) -> float:
        return math.inf if self.limit is None else self.limit - self.elapsed()

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def share(self, fraction: float) -> _Clock:
        """A sub-budget: ``fraction`` of what remains, or unlimited if this clock is."""
        if self.limit is None:
            return _Clock(None, check=self.check)
        return _Clock(max(0.0, self.remaining()) * fraction, check=self.check)

    def capped(self, seconds: float) -> _Clock:
        return _Clock(min(seconds, self.remaining()), check=self.check)


@dataclass
class _Graph:
    """Undirected simple graph on nodes ``0..n-1``; edge i stands for the input edges ``payload[i]``."""

    n: int
    u: np.ndarray
    v: np.ndarray
    cost: np.ndarray
    payload: list[tuple[int, ...]]
    terminals: np.ndarray

    def __post_init__(self) -> None:
        self.is_terminal = np.zeros(self.n, dtype=bool)
        self.is_terminal[self.terminals] = True
        # csgraph drops explicit zeros from MSTs, so zero costs become a tiny positive weight;
        # distances are then over-estimated by a negligible amount, which keeps reduction tests safe.
        positive = self.cost[self.cost > 0]
        tiny = 1e-9 * (positive.min() if positive.size else 1.0)
        self.weight = np.where(self.cost > 0, self.cost, tiny)
        both_u = np.concatenate([self.u, self.v])
        both_v = np.concatenate([self.v, self.u])
        self.matrix = sp.csr_array(
            (np.concatenate([self.weight, self.weight]), (both_u, both_v)), shape=(self.n, self.n)
        )
        keys = np.minimum(self.u, self.v) * self.n + np.maximum(self.u, self.v)
        self._key_order = np.argsort(keys)
        self._sorted_keys = keys[self._key_order]

    def edge_ids(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Ids of the edges joining ``a[i]`` and ``b[i]`` (which must exist)."""
        keys = np.minimum(a, b) * self.n + np.maximum(a, b)
        return self._key_order[np.searchsorted(self._sorted_keys, keys)]

    def shortest_paths(
        self, sources: np.ndarray, limit: float = np.inf
    ) -> tuple[np.ndarray, np.ndarray]:
        """Distances and predecessors from the nearest of ``sources`` to every node."""
        dist, pred, _ = csgraph.dijkstra(
            self.matrix, indices=sources, min_only=True, return_predecessors=True, limit=limit
        )
        return dist, pred


@dataclass
class _Instance:
    edges: list
    terminal_ids: list
    graph: _Graph

    @classmethod
    def parse(cls, edge_list: list, terminals: Iterable[Hashable]) -> _Instance:
        node_index: dict[Hashable, int] = {}
        rows = [_parse_edge(i, edge, node_index) for i, edge in enumerate(edge_list)]
        terminal_ids = list(dict.fromkeys(terminals))
        missing = [t for t in terminal_ids if t not in node_index]
        if missing:
            raise ValueError(f"terminals {missing!r} are not nodes of any edge")
        rows = [row for row in rows if row[0] != row[1]]
        table = np.array(rows, dtype=float).reshape(-1, 4)
        graph = _cheapest_simple_graph(
            table, len(node_index), [node_index[t] for t in terminal_ids]
        )
        if len(terminal_ids) >= 2:
            graph = _terminal_component(graph, terminal_ids)
        return cls(edge_list, terminal_ids, graph)


def _parse_edge(
    i: int, edge: object, node_index: dict[Hashable, int]
) -> tuple[int, int, float, int]:
    try:
        u, v, cost = edge  # type: ignore[misc]
        cost = float(cost)
    except (TypeError, ValueError):
        raise ValueError(
            f"edge {i} is not a (u, v, cost) triple with a numeric cost: {edge!r}"
        ) from None
    if not math.isfinite(cost) or cost < 0:
        raise ValueError(f"edge {i} {edge!r}: cost must be finite and non-negative")
    a = node_index.setdefault(u, len(node_index))
    b = node_index.setdefault(v, len(node_index))
    return a, b, cost, i


def _cheapest_simple_graph(table: np.ndarray, n: int, terminals: list[int]) -> _Graph:
    lo = np.minimum(table[:, 0], table[:, 1]).astype(np.int64)
    hi = np.maximum(table[:, 0], table[:, 1]).astype(np.int64)
    order = np.lexsort((table[:, 3], table[:, 2], hi, lo))
    first = np.ones(order.size, dtype=bool)
    first[1:] = (lo[order][1:] != lo[order][:-1]) | (hi[order][1:] != hi[order][:-1])
    keep = order[first]
    payload = [(int(i),) for i in table[keep, 3]]
    return _Graph(
        n, lo[keep], hi[keep], table[keep, 2], payload, np.array(terminals, dtype=np.int64)
    )


def _terminal_component(graph: _Graph, terminal_ids: list) -> _Graph:
    """Restrict to the component holding most terminals; raise if any terminal lies elsewhere."""
    _, labels = csgraph.connected_components(graph.matrix, directed=False)
    terminal_labels = labels[graph.terminals]
    main = Counter(terminal_labels.tolist()).most_common(1)[0][0]
    unreachable = [t for t, label in zip(terminal_ids, terminal_labels) if label != main]
    if unreachable:
        raise DisconnectedTerminalsError(unreachable)
    return _subgraph(graph, labels == main)


def _subgraph(graph: _Graph, node_mask: np.ndarray) -> _Graph:
    new_id = np.cumsum(node_mask) - 1
    keep = np.flatnonzero(node_mask[graph.u] & node_mask[graph.v])
    return _Graph(
        int(node_mask.sum()),
        new_id[graph.u[keep]],
        new_id[graph.v[keep]],
        graph.cost[keep],
        [graph.payload[e] for e in keep],
        new_id[graph.terminals],
    )


# --------------------------------------------------------------------------- reductions


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


@dataclass(frozen=True)
class _Tree:
    edge_ids: np.ndarray
    cost: float


class _LocalSearch:
    """Constructions and improvement moves on one (reduced) graph."""

    def __init__(self, graph: _Graph) -> None:
        self.g = graph

    # ---- building blocks

    def tree_on(self, vertices: np.ndarray) -> _Tree | None:
        """MST of the subgraph induced by a vertex mask, with non-terminal leaves pruned; None if disconnected."""
        g = self.g
        sel = np.flatnonzero(vertices[g.u] & vertices[g.v])
        nodes = np.flatnonzero(vertices)
        local = np.full(g.n, -1)
        local[nodes] = np.arange(nodes.size)
        sub = sp.csr_array(
            (g.weight[sel], (local[g.u[sel]], local[g.v[sel]])), shape=(nodes.size, nodes.size)
        )
        mst = csgraph.minimum_spanning_tree(sub).tocoo()
        if mst.nnz != nodes.size - 1:
            return None
        ids = g.edge_ids(nodes[mst.row], nodes[mst.col])
        return self._tree(self._prune(ids))

    def _tree(self, edge_ids: np.ndarray) -> _Tree:
        return _Tree(np.sort(edge_ids), float(self.g.cost[edge_ids].sum()))

    def _prune(self, edge_ids: np.ndarray) -> np.ndarray:
        g = self.g
        while True:
            degree = np.bincount(np.concatenate([g.u[edge_ids], g.v[edge_ids]]), minlength=g.n)
            useless_leaf = (degree == 1) & ~g.is_terminal
            drop = useless_leaf[g.u[edge_ids]] | useless_leaf[g.v[edge_ids]]
            if not drop.any():
                return edge_ids
            edge_ids = edge_ids[~drop]

    def vertex_mask(self, tree: _Tree) -> np.ndarray:
        mask = np.zeros(self.g.n, dtype=bool)
        mask[self.g.u[tree.edge_ids]] = True
        mask[self.g.v[tree.edge_ids]] = True
        mask[self.g.terminals] = True
        return mask

    def _path_to_source(self, pred: np.ndarray, node: int) -> list[int]:
        path = [node]
        while pred[node] >= 0:
            node = int(pred[node])
            path.append(node)
        return path

    # ---- constructions

    def solve(self, clock: _Clock) -> _Tree:
        """Local search from the best constructions, then from constructions on perturbed costs."""
        starts = self.construct(clock)
        best = self.improve(starts[0], clock)
        # beyond the first start only where it is cheap, or where the caller granted the time
        if clock.limit is None and len(self.g.u) > _THOROUGH_MAX_EDGES:
            return best
        for tree in starts[1:_IMPROVED_STARTS]:
            if clock.expired():
                return best
            best = min(best, self.improve(tree, clock), key=_cost)
        if len(self.g.terminals) * self.g.n <= _MAX_DISTANCE_ENTRIES:
            rng = np.random.default_rng(0)
            for _ in range(_PERTURBED_RESTARTS):
                if clock.expired():
                    break
                best = min(best, self.improve(self.perturbed_start(rng), clock), key=_cost)
        return best

    def construct(self, clock: _Clock) -> list[_Tree]:
        """Distinct trees from Mehlhorn's and the shortest-path heuristic (several roots), cheapest first."""
        g = self.g
        trees = {}
        mehlhorn = self.mehlhorn()
        trees[mehlhorn.edge_ids.tobytes()] = mehlhorn
        t = len(g.terminals)
        if t * g.n <= _MAX_DISTANCE_ENTRIES:
            dist, pred = csgraph.dijkstra(g.matrix, indices=g.terminals, return_predecessors=True)
            for root in np.unique(np.linspace(0, t - 1, min(t, _MAX_SPH_ROOTS)).astype(int)):
                tree = self.tree_on(self.shortest_path_heuristic(int(root), dist, pred))
                if tree is not None:
                    trees[tree.edge_ids.tobytes()] = tree
                if clock.expired():
                    break
        return sorted(trees.values(), key=_cost)

    def perturbed_start(self, rng: np.random.Generator) -> _Tree:
        """Shortest-path heuristic from a random root on randomly inflated costs (for diversity)."""
        g = self.g
        noisy = g.matrix.copy()
        noisy.data = noisy.data * rng.uniform(1.0, 1.0 + _PERTURBATION, noisy.data.size)
        dist, pred = csgraph.dijkstra(noisy, indices=g.terminals, return_predecessors=True)
        tree = self.tree_on(
            self.shortest_path_heuristic(int(rng.integers(len(g.terminals))), dist, pred)
        )
        assert tree is not None, "shortest-path heuristic vertices induce a connected subgraph"
        return tree

    def mehlhorn(self) -> _Tree:
        """Mehlhorn's 2-approximation: MST of the terminal Voronoi-region graph, expanded to paths."""
        g = self.g
        dist, pred, source = csgraph.dijkstra(
            g.matrix, indices=g.terminals, min_only=True, return_predecessors=True
        )
        region = np.full(g.n, -1)
        region[g.terminals] = np.arange(len(g.terminals))
        region = region[source]
        bridges = np.flatnonzero(region[g.u] != region[g.v])
        length = dist[g.u[bridges]] + g.weight[bridges] + dist[g.v[bridges]]
        a, b = region[g.u[bridges]], region[g.v[bridges]]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        order = np.lexsort((length, hi, lo))
        first = np.ones(order.size, dtype=bool)
        first[1:] = (lo[order][1:] != lo[order][:-1]) | (hi[order][1:] != hi[order][:-1])
        best = order[first]
        t = len(g.terminals)
        terminal_graph = sp.csr_array((length[best] + _TOL, (lo[best], hi[best])), shape=(t, t))
        mst = csgraph.minimum_spanning_tree(terminal_graph).tocoo()
        index = {(int(x), int(y)): int(k) for x, y, k in zip(lo[best], hi[best], best)}
        mask = np.zeros(g.n, dtype=bool)
        mask[g.terminals] = True
        for x, y in zip(mst.row.tolist(), mst.col.tolist()):
            edge = bridges[index[(min(x, y), max(x, y))]]
            for end in (g.u[edge], g.v[edge]):
                mask[self._path_to_source(pred, int(end))] = True
        tree = self.tree_on(mask)
        assert tree is not None, "Mehlhorn paths form a connected vertex set"
        return tree

    def shortest_path_heuristic(self, root: int, dist: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Takahashi-Matsuyama: grow from one terminal, repeatedly attaching the nearest terminal."""
        g = self.g
        t = len(g.terminals)
        rows = np.arange(t)
        in_tree = np.zeros(g.n, dtype=bool)
        start = int(g.terminals[root])
        in_tree[start] = True
        nearest = dist[:, start].copy()
        attach = np.full(t, start)
        waiting = np.ones(t, dtype=bool)
        waiting[root] = False
        for _ in range(t - 1):
            k = int(np.argmin(np.where(waiting, nearest, np.inf)))
            waiting[k] = False
            path = self._path_to_source(pred[k], int(attach[k]))
            path = np.array([x for x in path if not in_tree[x]], dtype=np.int64)
            if path.size == 0:
                continue
            in_tree[path] = True
            sub = dist[:, path]
            j = sub.argmin(axis=1)
            closer = sub[rows, j] < nearest
            nearest[closer] = sub[rows, j][closer]
            attach[closer] = path[j[closer]]
        return in_tree

    # ---- local search

    def improve(self, tree: _Tree, clock: _Clock) -> _Tree:
        """Key-path exchange, key-vertex elimination and Steiner-vertex insertion until no move helps."""
        thorough = clock.limit is not None or len(self.g.u) <= _THOROUGH_MAX_EDGES
        while not clock.expired():
            before = tree.cost
            tree = self.key_path_exchange(tree, clock)
            tree = self.key_vertex_elimination(tree, clock)
            if thorough:
                tree = self.vertex_insertion(tree, clock)
            if not _cheaper(tree.cost, before):
                break
        return tree

    def _try_replace(self, tree: _Tree, pieces: list[np.ndarray], removed_cost: float) -> _Tree:
        """Rejoin tree pieces by shortest paths, or through one new hub vertex; keep the result if cheaper."""
        if len(pieces) == 2:
            small, large = sorted(pieces, key=len)
            dist, pred = self.g.shortest_paths(small, limit=removed_cost)
            target = large[np.argmin(dist[large])]
            path = self._path_to_source(pred, int(target))
            return self._accept_if_cheaper(tree, pieces, [path], float(dist[target]), removed_cost)
        searches = [self.g.shortest_paths(piece, limit=removed_cost) for piece in pieces]
        joins: dict[tuple[int, int], tuple[float, list[int]]] = {}
        for i, (dist, pred) in enumerate(searches[:-1]):
            for j in range(i + 1, len(pieces)):
                target = pieces[j][np.argmin(dist[pieces[j]])]
                if np.isfinite(dist[target]):
                    joins[(i, j)] = (float(dist[target]), self._path_to_source(pred, int(target)))
        chosen = _prim(len(pieces), joins)
        paths = [joins[p][1] for p in chosen] if chosen is not None else []
        cost = sum(joins[p][0] for p in chosen) if chosen is not None else math.inf
        # a star around one hub can beat any tree of pairwise paths (a new Steiner vertex)
        through = np.sum([dist for dist, _ in searches], axis=0)
        hub = int(np.argmin(through))
        if through[hub] < cost:
            cost = float(through[hub])
            paths = [self._path_to_source(pred, hub) for _, pred in searches]
        return self._accept_if_cheaper(tree, pieces, paths, cost, removed_cost)

    def _accept_if_cheaper(
        self,
        tree: _Tree,
        pieces: list[np.ndarray],
        paths: list[list[int]],
        cost: float,
        removed_cost: float,
    ) -> _Tree:
        if not _cheaper(cost, removed_cost):
            return tree
        mask = np.zeros(self.g.n, dtype=bool)
        for nodes in [*pieces, *paths]:
            mask[nodes] = True
        candidate = self.tree_on(mask)
        if candidate is not None and _cheaper(candidate.cost, tree.cost):
            return candidate
        return tree

    def key_path_exchange(self, tree: _Tree, clock: _Clock) -> _Tree:
        """Replace a key path by a shorter path between the two pieces it joins."""
        rooted = _RootedTree(self.g, tree)
        tried: set[bytes] = set()
        while not clock.expired():
            fresh = [p for p in rooted.paths if p.signature not in tried]
            if not fresh:
                break
            path = max(fresh, key=lambda p: p.cost)
            tried.add(path.signature)
            pieces = [rooted.subtree(path.bottom), rooted.outside(path.below_top)]
            better = self._try_replace(tree, pieces, path.cost)
            if better is not tree:
                tree, rooted = better, _RootedTree(self.g, better)
        return tree

    def key_vertex_elimination(self, tree: _Tree, clock: _Clock) -> _Tree:
        """Drop a Steiner vertex of degree >= 3 with its key paths and rejoin the pieces."""
        rooted = _RootedTree(self.g, tree)
        tried: set[int] = set()
        while not clock.expired():
            fresh = [x for x in rooted.steiner_hubs() if x not in tried]
            if not fresh:
                break
            hub = fresh[0]
            tried.add(hub)
            up, down = rooted.up_path[hub], rooted.down_paths[hub]
            pieces = [rooted.outside(up.below_top)] + [rooted.subtree(p.bottom) for p in down]
            better = self._try_replace(tree, pieces, up.cost + sum(p.cost for p in down))
            if better is not tree:
                tree, rooted = better, _RootedTree(self.g, better)
        return tree

    def vertex_insertion(self, tree: _Tree, clock: _Clock) -> _Tree:
        """Add a non-tree vertex touching the tree twice if the MST over the larger set is cheaper."""
        g = self.g
        mask = self.vertex_mask(tree)
        touching = g.matrix.astype(bool).astype(np.int32) @ mask.astype(np.int32)
        longest = float(g.cost[tree.edge_ids].max()) if tree.edge_ids.size else 0.0
        for x in np.flatnonzero(~mask & (touching >= 2)).tolist():
            if clock.expired():
                break
            links = g.matrix[[x]].toarray()[0][mask]
            links = np.sort(links[links > 0])
            if links.size < 2 or links[1] >= longest:
                continue  # as a leaf it would be pruned; its second edge could not replace any tree edge
            trial = mask.copy()
            trial[x] = True
            candidate = self.tree_on(trial)
            if candidate is not None and _cheaper(candidate.cost, tree.cost):
                tree, mask = candidate, self.vertex_mask(candidate)
                longest = float(g.cost[tree.edge_ids].max())
        return tree


@dataclass(frozen=True)
class _KeyPath:
    """A tree path between key nodes (terminals or degree >= 3) through non-terminals of degree 2."""

    top: int
    below_top: int
    bottom: int
    cost: float
    signature: bytes


class _RootedTree:
    """A tree rooted at a terminal, numbered in preorder so that every subtree is one contiguous slice.

    Rooting at a terminal makes every key path vertical: its highest node is one of its ends.
    """

    def __init__(self, graph: _Graph, tree: _Tree) -> None:
        self.g = graph
        nodes = np.unique(np.concatenate([graph.u[tree.edge_ids], graph.v[tree.edge_ids]]))
        local = np.full(graph.n, -1)
        local[nodes] = np.arange(nodes.size)
        ends_u, ends_v = local[graph.u[tree.edge_ids]], local[graph.v[tree.edge_ids]]
        adjacency = sp.csr_array(
            (np.ones(ends_u.size), (ends_u, ends_v)), shape=(nodes.size, nodes.size)
        )
        root = int(local[graph.terminals[0]])
        order, parent = csgraph.depth_first_order(adjacency, root, directed=False)
        self.order = nodes[order]
        self.parent = np.full(graph.n, -1)
        has_parent = parent[order] >= 0
        self.parent[nodes[order][has_parent]] = nodes[parent[order][has_parent]]
        self.position = np.full(graph.n, -1)
        self.position[self.order] = np.arange(self.order.size)
        self.size = np.zeros(graph.n, dtype=np.int64)
        self.size[self.order] = 1
        for x in self.order[:0:-1].tolist():
            self.size[self.parent[x]] += self.size[x]
        self.degree = np.bincount(
            np.concatenate([graph.u[tree.edge_ids], graph.v[tree.edge_ids]]), minlength=graph.n
        )
        self._key_paths()

    def _key_paths(self) -> None:
        g = self.g
        is_key = g.is_terminal | (self.degree >= 3)
        self.paths: list[_KeyPath] = []
        self.up_path: dict[int, _KeyPath] = {}
        self.down_paths: dict[int, list[_KeyPath]] = {}
        for bottom in self.order[1:][is_key[self.order[1:]]].tolist():
            walk = [bottom]
            while not is_key[self.parent[walk[-1]]]:
                walk.append(int(self.parent[walk[-1]]))
            top = int(self.parent[walk[-1]])
            walk = np.array(walk)
            edges = g.edge_ids(walk, self.parent[walk])
            path = _KeyPath(
                top, int(walk[-1]), bottom, float(g.cost[edges].sum()), np.sort(edges).tobytes()
            )
            self.paths.append(path)
            self.up_path[bottom] = path
            self.down_paths.setdefault(top, []).append(path)

    def steiner_hubs(self) -> list[int]:
        """Non-terminals of tree degree >= 3, most expensive surroundings first."""
        hubs = [x for x in self.down_paths if not self.g.is_terminal[x]]
        return sorted(
            hubs, key=lambda x: -(self.up_path[x].cost + sum(p.cost for p in self.down_paths[x]))
        )

    def subtree(self, x: int) -> np.ndarray:
        start = self.position[x]
        return self.order[start : start + self.size[x]]

    def outside(self, x: int) -> np.ndarray:
        """Tree nodes not in the subtree of ``x``."""
        start = self.position[x]
        return np.concatenate([self.order[:start], self.order[start + self.size[x] :]])


def _cost(tree: _Tree) -> float:
    return tree.cost


def _prim(
    k: int, joins: dict[tuple[int, int], tuple[float, list[int]]]
) -> list[tuple[int, int]] | None:
    """Minimum spanning tree over ``k`` pieces from the available pairwise joins; None if disconnected."""
    inside = {0}
    chosen = []
    while len(inside) < k:
        options = [
            (cost, pair)
            for pair, (cost, _) in joins.items()
            if (pair[0] in inside) != (pair[1] in inside)
        ]
        if not options:
            return None
        _, pair = min(options)
        chosen.append(pair)
        inside.update(pair)
    return chosen


# --------------------------------------------------------------------------- exact MILP


@dataclass(frozen=True)
class _ExactResult:
    tree: _Tree | None
    lower_bound: float | None


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


class _CutModel:
    """Directed-cut formulation rooted at a terminal, solved by LP cut loop then branch-and-cut rounds."""

    def __init__(self, graph: _Graph) -> None:
        import highspy

        self.hs = highspy
        self.g = graph
        self.root = int(graph.terminals[0])
        self.tail = np.concatenate([graph.u, graph.v])
        self.head = np.concatenate([graph.v, graph.u])
        self.arc_cost = np.concatenate([graph.cost, graph.cost])
        self.highs = silent_highs()
        self.highs.setOptionValue("mip_rel_gap", 1e-7)
        self.seen_cuts: set[bytes] = set()
        upper = np.where(self.head == self.root, 0.0, 1.0)
        arcs = len(self.tail)
        self.highs.addCols(arcs, self.arc_cost, np.zeros(arcs), upper, 0, [], [], [])
        self._add_rows(*self._base_rows())

    def _base_rows(self) -> tuple[list[np.ndarray], list[np.ndarray], list[float], list[float]]:
        """In-degree 1 at terminals, at most 1 elsewhere; Steiner nodes entered before left, never leaves."""
        g = self.g
        order = np.argsort(self.head, kind="stable")
        starts = np.searchsorted(self.head[order], np.arange(g.n + 1))
        into = [order[starts[x] : starts[x + 1]] for x in range(g.n)]
        out_order = np.argsort(self.tail, kind="stable")
        out_starts = np.searchsorted(self.tail[out_order], np.arange(g.n + 1))
        rows, coefs, lower, upper = [], [], [], []

        def add(index: np.ndarray, coef: np.ndarray, lo: float, hi: float) -> None:
            rows.append(index)
            coefs.append(coef)
            lower.append(lo)
            upper.append(hi)

        for x in range(g.n):
            if x == self.root:
                continue
            incoming = into[x]
            ones = np.ones(incoming.size)
            if g.is_terminal[x]:
                add(incoming, ones, 1.0, 1.0)
                continue
            add(incoming, ones, 0.0, 1.0)
            outgoing = out_order[out_starts[x] : out_starts[x + 1]]
            add(
                np.concatenate([incoming, outgoing]),
                np.concatenate([ones, -np.ones(outgoing.size)]),
                -np.inf,
                0.0,
            )
            for a in outgoing.tolist():
                add(np.append(incoming, a), np.append(ones, -1.0), 0.0, np.inf)
        m = len(g.u)
        for e in range(m):
            add(np.array([e, e + m]), np.ones(2), 0.0, 1.0)
        return rows, coefs, lower, upper

    def _add_rows(
        self,
        rows: list[np.ndarray],
        coefs: list[np.ndarray],
        lower: list[float],
        upper: list[float],
    ) -> None:
        if not rows:
            return
        starts = np.cumsum([0] + [r.size for r in rows[:-1]])
        index = np.concatenate(rows).astype(np.int32)
        value = np.concatenate(coefs).astype(float)
        self.highs.addRows(
            len(rows),
            np.array(lower),
            np.array(upper),
            index.size,
            starts.astype(np.int32),
            index,
            value,
        )

    def _add_cuts(self, cuts: list[np.ndarray]) -> None:
        fresh = {cut.tobytes(): cut for cut in cuts}
        for key in self.seen_cuts.intersection(fresh):
            del fresh[key]
        self.seen_cuts.update(fresh)
        rows = list(fresh.values())
        self._add_rows(
            rows, [np.ones(c.size) for c in rows], [1.0] * len(rows), [np.inf] * len(rows)
        )

    def _cut_into(self, inside: np.ndarray) -> np.ndarray | None:
        """The arcs entering ``inside``, unless that cut is already in the model."""
        arcs = np.flatnonzero(inside[self.head] & ~inside[self.tail])
        return None if arcs.tobytes() in self.seen_cuts else arcs

    def _reach(self, arcs: np.ndarray, start: int) -> np.ndarray:
        n = self.g.n
        matrix = sp.csr_array(
            (np.ones(arcs.size), (self.tail[arcs], self.head[arcs])), shape=(n, n)
        )
        mask = np.zeros(n, dtype=bool)
        mask[
            csgraph.breadth_first_order(matrix, start, directed=True, return_predecessors=False)
        ] = True
        return mask

    def _connectivity_cuts(self, chosen: np.ndarray, reached: np.ndarray) -> list[np.ndarray]:
        """Cuts around the pieces of the chosen arcs that the root cannot reach."""
        g = self.g
        support = sp.csr_array(
            (np.ones(chosen.size), (self.tail[chosen], self.head[chosen])), shape=(g.n, g.n)
        )
        _, labels = csgraph.connected_components(support, directed=False)
        cuts = [self._cut_into(~reached)]
        for label in np.unique(labels[g.terminals[~reached[g.terminals]]]):
            cuts.append(self._cut_into(labels == label))
        return [c for c in cuts if c is not None]

    def _flow_cuts(self, y: np.ndarray) -> list[np.ndarray]:
        """Max-flow separation from the root to every terminal, with nested and back cuts."""
        capacity = np.round(y * _FLOW_SCALE).astype(np.int32)
        cuts = []
        for t in self.g.terminals.tolist():
            if t != self.root:
                cuts += self._nested_cuts(y, capacity.copy(), t)
        return cuts

    def _nested_cuts(self, y: np.ndarray, capacity: np.ndarray, t: int) -> list[np.ndarray]:
        """Minimum cuts between root and ``t``; each found cut is saturated so the next flow finds another."""
        n = self.g.n
        cuts = []
        for _ in range(_NESTED_CUTS):
            used = np.flatnonzero(capacity > 0)
            network = sp.csr_array(
                (capacity[used], (self.tail[used], self.head[used])), shape=(n, n)
            )
            flow = csgraph.maximum_flow(network, self.root, t)
            if flow.flow_value >= _FLOW_SCALE * (1 - 1e-6):
                break
            residual = (network - flow.flow).tocsr()
            residual.data = (residual.data > 0).astype(np.float64)
            residual.eliminate_zeros()
            reached = np.zeros(n, dtype=bool)
            reached[
                csgraph.breadth_first_order(
                    residual, self.root, directed=True, return_predecessors=False
                )
            ] = True
            reaching = np.zeros(n, dtype=bool)
            backwards = residual.T.tocsr()
            reaching[
                csgraph.breadth_first_order(backwards, t, directed=True, return_predecessors=False)
            ] = True
            for inside in (~reached, reaching):
                arcs = self._cut_into(inside)
                if arcs is not None and y[arcs].sum() < 1 - 1e-6:
                    cuts.append(arcs)
            forward = np.flatnonzero(~reached[self.head] | reached[self.tail])
            capacity[np.setdiff1d(np.arange(capacity.size), forward)] = _FLOW_SCALE
        return cuts

    def _run(self, clock: _Clock) -> bool:
        """Solve the current model; False when time ran out before a usable solution."""
        self.highs.setOptionValue("time_limit", max(1e-3, clock.remaining()))
        self.highs.run()
        status = self.highs.getModelStatus()
        return status == self.hs.HighsModelStatus.kOptimal

    def solve(self, incumbent: _Tree, search: _LocalSearch, clock: _Clock) -> _ExactResult:
        """Prove or improve ``incumbent``; the lower bound holds for the (reduced) instance."""
        ascent_bound, cuts = _dual_ascent(self.g, self.root, clock, keep_cuts=True)
        self._add_cuts(cuts)
        if _proven(incumbent.cost, ascent_bound):
            return _ExactResult(None, ascent_bound)
        bound, y = self._cut_loop(incumbent.cost, clock)
        bound = ascent_bound if bound is None else max(bound, ascent_bound)
        if y is None or _proven(incumbent.cost, bound):
            return _ExactResult(None, bound)
        return self._branch_and_cut(incumbent, search, clock, bound)

    def _cut_loop(self, upper: float, clock: _Clock) -> tuple[float | None, np.ndarray | None]:
        """Solve the LP relaxation, adding violated cuts until none is left or progress stalls."""
        history: list[float] = []
        while not clock.expired():
            if not self._run(clock):
                break
            y = np.array(self.highs.getSolution().col_value)
            history.append(self.highs.getInfo().objective_function_value)
            if _proven(upper, history[-1]):
                return history[-1], None
            cuts = self._flow_cuts(y)
            stalled = len(history) > _LP_TAILING_ROUNDS and (
                history[-1] - history[-1 - _LP_TAILING_ROUNDS] <= 1e-4 * abs(history[-1])
            )
            if not cuts or stalled:
                return history[-1], y
            self._add_cuts(cuts)
        return (history[-1] if history else None), None

    def _branch_and_cut(
        self, incumbent: _Tree, search: _LocalSearch, clock: _Clock, bound: float
    ) -> _ExactResult:
        """Solve the MILP with the cuts found so far; cut off disconnected integer solutions and resolve."""
        arcs = len(self.tail)
        integer = np.full(arcs, self.hs.HighsVarType.kInteger)
        self.highs.changeColsIntegrality(arcs, np.arange(arcs, dtype=np.int32), integer)
        best: _Tree | None = None
        while not clock.expired():
            self._set_start(incumbent)
            optimal = self._run(clock)
            info = self.highs.getInfo()
            if math.isfinite(info.mip_dual_bound):
                bound = max(bound, info.mip_dual_bound)
            if info.primal_solution_status != 2:
                break
            chosen = np.flatnonzero(np.array(self.highs.getSolution().col_value) > 0.5)
            reached = self._reach(chosen, self.root)
            if not reached[self.g.terminals].all():
                cuts = self._connectivity_cuts(chosen, reached)
                if not cuts:
                    raise SteinerInternalError(
                        "a disconnected integer solution satisfies every cut"
                    )
                self._add_cuts(cuts)
                continue
            tree = search.tree_on(reached)
            if tree is not None and (best is None or tree.cost < best.cost):
                best = tree
            if optimal:
                bound = max(bound, info.objective_function_value)
            break
        return _ExactResult(best, bound)

    def _set_start(self, tree: _Tree) -> None:
        """Offer the incumbent, oriented away from the root, as a MIP start."""
        g = self.g
        ids = tree.edge_ids
        m = len(g.u)
        both = np.concatenate([ids, ids + m])
        arcs = sp.csr_array(
            (np.ones(both.size), (self.tail[both], self.head[both])), shape=(g.n, g.n)
        )
        order, parent = csgraph.breadth_first_order(arcs, self.root, directed=True)
        child = order[1:]
        chosen = np.zeros(len(self.tail))
        edge = g.edge_ids(parent[child], child)
        chosen[np.where(g.u[edge] == parent[child], edge, edge + m)] = 1.0
        self.highs.setSolution(len(chosen), np.arange(len(chosen), dtype=np.int32), chosen)


# --------------------------------------------------------------------------- SteinLib STP files


def read_stp(path: str | os.PathLike) -> tuple[list[tuple[int, int, float]], list[int]]:
    """Read an undirected instance in SteinLib's STP format.

    Parameters
    ----------
    path
        File with ``SECTION Graph`` (``E u v cost`` lines), ``SECTION Terminals`` (``T v``
        lines) and a closing ``EOF``; other sections are skipped.

    Returns
    -------
    tuple
        ``(edges, terminals)``: ``(u, v, cost)`` triples with integer node ids, and the terminal ids.

    Raises
    ------
    ValueError
        On any malformed line, with its line number.
    """
    edges: list[tuple[int, int, float]] = []
    terminals: list[int] = []
    declared: dict[str, int] = {}
    section: str | None = None
    saw_header = saw_eof = False
    lines = Path(path).read_text().splitlines()
    for number, raw in enumerate(lines, start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        keyword = words[0].lower()

        def fail(message: str) -> ValueError:
            return ValueError(f"{path}: line {number}: {message}: {raw.strip()!r}")

        if not saw_header:
            if keyword != "33d32945":
                raise fail("not an STP file (expected the 33D32945 header)")
            saw_header = True
            continue
        if saw_eof:
            raise fail("text after EOF")
        if keyword == "eof":
            if section is not None:
                raise fail(f"EOF inside SECTION {section}")
            saw_eof = True
        elif keyword == "section":
            if section is not None or len(words) != 2:
                raise fail("misplaced SECTION")
            section = words[1].lower()
        elif keyword == "end":
            if section is None:
                raise fail("END outside a section")
            section = None
        elif section == "graph":
            _read_graph_line(words, declared, edges, fail)
        elif section == "terminals":
            _read_terminal_line(words, declared, terminals, fail)
    if not saw_eof:
        raise ValueError(f"{path}: line {len(lines)}: missing EOF")
    _check_declared(path, declared, edges, terminals)
    return edges, terminals


def _read_graph_line(words: list[str], declared: dict[str, int], edges: list, fail) -> None:  # noqa: ANN001
    keyword = words[0].lower()
    try:
        if keyword in ("nodes", "edges") and len(words) == 2:
            declared[keyword] = int(words[1])
        elif keyword == "e" and len(words) == 4:
            u, v, cost = int(words[1]), int(words[2]), float(words[3])
            if not (1 <= u and 1 <= v) or ("nodes" in declared and max(u, v) > declared["nodes"]):
                raise fail("node id out of range")
            if not math.isfinite(cost) or cost < 0:
                raise fail("cost must be finite and non-negative")
            edges.append((u, v, cost))
        elif keyword in ("a", "arcs"):
            raise fail("directed arcs are not supported")
        else:
            raise fail("expected 'Nodes n', 'Edges m' or 'E u v cost'")
    except ValueError as error:
        if "line" in str(error):
            raise
        raise fail("bad number") from None


def _read_terminal_line(words: list[str], declared: dict[str, int], terminals: list, fail) -> None:  # noqa: ANN001
    keyword = words[0].lower()
    try:
        if keyword == "terminals" and len(words) == 2:
            declared["terminals"] = int(words[1])
        elif keyword == "t" and len(words) == 2:
            terminals.append(int(words[1]))
        else:
            raise fail("expected 'Terminals k' or 'T v'")
    except ValueError as error:
        if "line" in str(error):
            raise
        raise fail("bad number") from None


def _check_declared(
    path: str | os.PathLike, declared: dict[str, int], edges: list, terminals: list
) -> None:
    if "edges" in declared and declared["edges"] != len(edges):
        raise ValueError(f"{path}: declares {declared['edges']} edges but lists {len(edges)}")
    if "terminals" in declared and declared["terminals"] != len(terminals):
        raise ValueError(
            f"{path}: declares {declared['terminals']} terminals but lists {len(terminals)}"
        )
    if "nodes" in declared and any(not 1 <= t <= declared["nodes"] for t in terminals):
        raise ValueError(f"{path}: a terminal id is outside 1..{declared['nodes']}")


def write_stp(
    path: str | os.PathLike,
    edges: Iterable[Edge],
    terminals: Iterable[Hashable],
    *,
    name: str = "zoneplan",
) -> dict[Hashable, int]:
    """Write an instance in SteinLib's STP format.

    Parameters
    ----------
    path
        Output file.
    edges, terminals
        As for :func:`steiner_tree`.
    name
        Instance name for the Comment section.

    Returns
    -------
    dict
        The STP number (1..N) given to each node id; positive integer ids keep their value.
    """
    edge_list = list(edges)
    terminal_list = list(dict.fromkeys(terminals))
    ids = list(dict.fromkeys([x for u, v, _ in edge_list for x in (u, v)] + terminal_list))
    keep_ids = all(type(x) is int and x >= 1 for x in ids)
    number = {x: x for x in ids} if keep_ids else {x: i for i, x in enumerate(ids, start=1)}
    lines = [
        "33D32945 STP File, STP Format Version 1.0",
        "",
        "SECTION Comment",
        f'Name "{name}"',
        "END",
        "",
        "SECTION Graph",
        f"Nodes {max(number.values(), default=0)}",
        f"Edges {len(edge_list)}",
        *(f"E {number[u]} {number[v]} {float(c)!r}" for u, v, c in edge_list),
        "END",
        "",
        "SECTION Terminals",
        f"Terminals {len(terminal_list)}",
        *(f"T {number[t]}" for t in terminal_list),
        "END",
        "",
        "EOF",
    ]
    Path(path).write_text("\n".join(lines) + "\n")
    return number
