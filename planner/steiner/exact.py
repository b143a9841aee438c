"""The exact solver: a directed-cut MILP on HiGHS with flow-separated cuts and branch-and-cut rounds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from planner.highs import silent_highs
from planner.steiner.bounds import _dual_ascent
from planner.steiner.heuristics import _LocalSearch, _Tree
from planner.steiner.instance import SteinerInternalError, _Clock, _Graph, _proven

_LP_TAILING_ROUNDS = 8
_FLOW_SCALE = 1_000_000
_NESTED_CUTS = 4


@dataclass(frozen=True)
class _ExactResult:
    tree: _Tree | None
    lower_bound: float | None


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
        return bool(status == self.hs.HighsModelStatus.kOptimal)

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
