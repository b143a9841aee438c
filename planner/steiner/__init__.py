"""Steiner trees in graphs: exact reductions, shortest-path heuristics, local search and a directed-cut MILP.

The entry point is :func:`steiner_tree`; the stages live in this package's modules:
``instance`` (input, graph, budget, result), ``reductions``, ``heuristics`` (constructions
and local search), ``bounds`` (dual ascent, Voronoi), ``exact`` (the cut MILP) and ``stp``
(SteinLib files).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable

from planner.steiner.bounds import _dual_ascent, _voronoi_bound
from planner.steiner.exact import _CutModel
from planner.steiner.heuristics import _LocalSearch, _Tree
from planner.steiner.instance import (
    _TOL,
    DisconnectedTerminalsError,
    Edge,
    SteinerInternalError,
    SteinerTree,
    _Clock,
    _Graph,
    _Instance,
    _proven,
)
from planner.steiner.reductions import _Reducer
from planner.steiner.stp import read_stp, write_stp

__all__ = [
    "DEFAULT_TIME_LIMIT_S",
    "DisconnectedTerminalsError",
    "Edge",
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
_EXACT_BY_CONSTRUCTION = ("trivial", "shortest path")
_ASCENT_MIN_S = (
    1.0  # heuristic runs spend on the dual-ascent bound at most max(this, time spent so far)
)


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
    lower_bound: float | None
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
