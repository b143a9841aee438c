"""A Steiner instance: parsed input, the simple graph the solvers work on, the time budget and the result."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

_TOL = 1e-9
_OPTIMALITY_RTOL = 1e-6
_CHECK_EVERY_S = 0.25

Edge = tuple[Hashable, Hashable, float]


class DisconnectedTerminalsError(ValueError):
    """The terminals lie in different connected components; ``unreachable`` names those left out."""

    def __init__(self, unreachable: Sequence[Hashable]) -> None:
        self.unreachable = tuple(unreachable)
        super().__init__(
            f"terminals cannot all be joined: {list(self.unreachable)!r} are not connected to the others"
        )


class SteinerInternalError(RuntimeError):
    """A computed tree failed its own validity check: a bug in this package, never bad input."""


@dataclass(frozen=True)
class SteinerTree:
    """A Steiner tree: the chosen input edges, their total cost and what is known about optimality.

    Unpacks as ``edges, cost = steiner_tree(...)``.
    """

    edges: list[Edge]
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

    def __iter__(self) -> Iterator[list[Edge] | float]:
        yield self.edges
        yield self.cost


def _cheaper(new: float, old: float) -> bool:
    """Strictly cheaper beyond floating-point noise."""
    return new < old - _TOL * abs(old)


def _proven(cost: float, bound: float) -> bool:
    """The bound meets the cost up to the relative optimality tolerance."""
    return cost - bound <= _OPTIMALITY_RTOL * abs(cost) + 1e-12


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
        self._key_order: np.ndarray = np.argsort(keys)
        self._sorted_keys: np.ndarray = keys[self._key_order]

    def edge_ids(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Ids of the edges joining ``a[i]`` and ``b[i]`` (which must exist)."""
        keys = np.minimum(a, b) * self.n + np.maximum(a, b)
        found: np.ndarray = self._key_order[np.searchsorted(self._sorted_keys, keys)]
        return found

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
    edges: list[Edge]
    terminal_ids: list[Hashable]
    graph: _Graph

    @classmethod
    def parse(cls, edge_list: list[Edge], terminals: Iterable[Hashable]) -> _Instance:
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


def _parse_edge(i: int, edge: Any, node_index: dict[Hashable, int]) -> tuple[int, int, float, int]:
    try:  # any (u, v, cost) sequence will do: unpacking and float() are the check
        u, v, raw_cost = edge
        cost = float(raw_cost)
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
    payload: list[tuple[int, ...]] = [(int(i),) for i in table[keep, 3]]
    return _Graph(
        n, lo[keep], hi[keep], table[keep, 2], payload, np.array(terminals, dtype=np.int64)
    )


def _terminal_component(graph: _Graph, terminal_ids: list[Hashable]) -> _Graph:
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
