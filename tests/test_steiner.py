"""Tests for planner.steiner: known optima, brute force on random graphs, degenerate inputs and STP files."""

from __future__ import annotations

import itertools
import math
import random

import networkx as nx
import pytest
from scipy.sparse import csgraph

from planner import steiner
from planner.steiner import (
    DisconnectedTerminalsError,
    SteinerInternalError,
    SteinerTree,
    read_stp,
    steiner_tree,
    write_stp,
)


def assert_valid(result: SteinerTree, edges: list, terminals: list) -> None:
    """The result is a tree of given edges (by identity) joining all terminals, with the right cost."""
    given = {id(e) for e in edges}
    assert all(id(e) in given for e in result.edges)
    assert math.isclose(result.cost, math.fsum(c for _, _, c in result.edges), abs_tol=1e-9)
    distinct = set(terminals)
    if len(distinct) < 2:
        assert result.edges == [] and result.cost == 0.0
        return
    tree = nx.Graph()
    tree.add_edges_from((u, v) for u, v, _ in result.edges)
    assert tree.number_of_edges() == len(result.edges), "parallel edges in the tree"
    assert nx.is_tree(tree)
    assert distinct <= set(tree.nodes)
    if result.lower_bound is not None:
        assert result.lower_bound <= result.cost + 1e-6


def brute_force(edges: list, terminals: list) -> float:
    """Minimum over Steiner-vertex subsets of the MST of the induced subgraph."""
    graph = nx.Graph()
    for u, v, c in edges:
        if u != v and (not graph.has_edge(u, v) or graph[u][v]["weight"] > c):
            graph.add_edge(u, v, weight=c)
    others = [x for x in graph.nodes if x not in set(terminals)]
    best = math.inf
    for k in range(len(others) + 1):
        for extra in itertools.combinations(others, k):
            sub = graph.subgraph(list(set(terminals)) + list(extra))
            if nx.is_connected(sub):
                best = min(best, nx.minimum_spanning_tree(sub).size(weight="weight"))
    return best


def random_graph(rng: random.Random, n: int, p: float, integer_costs: bool) -> list:
    edges = [
        (i, i + 1 + rng.randrange(n - i - 1), rng.randint(1, 9)) for i in range(n - 1)
    ]  # spanning
    edges += [
        (i, j, rng.randint(0, 9)) for i in range(n) for j in range(i + 1, n) if rng.random() < p
    ]
    if not integer_costs:
        edges = [(u, v, c + rng.random()) for u, v, c in edges]
    return edges


# --------------------------------------------------------------------------- known optima

TRIANGLE_WITH_HUB = [
    ("a", "s", 1.0),
    ("b", "s", 1.0),
    ("c", "s", 1.0),
    ("a", "b", 1.9),
    ("b", "c", 1.9),
    ("a", "c", 1.9),
]


@pytest.mark.parametrize("exact", [None, True, False])
def test_steiner_vertex_needed(exact: bool | None) -> None:
    result = steiner_tree(TRIANGLE_WITH_HUB, ["a", "b", "c"], exact=exact)
    assert_valid(result, TRIANGLE_WITH_HUB, ["a", "b", "c"])
    assert result.cost == pytest.approx(3.0)
    assert {u for u, _, _ in result.edges} == {"a", "b", "c"}


def test_shortest_path_heuristic_alone_is_suboptimal_here() -> None:
    instance = steiner._Instance.parse(TRIANGLE_WITH_HUB, ["a", "b", "c"])
    search = steiner._LocalSearch(instance.graph)
    dist, pred = csgraph.dijkstra(
        instance.graph.matrix, indices=instance.graph.terminals, return_predecessors=True
    )
    for root in range(3):
        sph = search.tree_on(search.shortest_path_heuristic(root, dist, pred))
        assert sph.cost == pytest.approx(3.8)
    assert search.mehlhorn().cost == pytest.approx(3.8)
    assert steiner_tree(TRIANGLE_WITH_HUB, ["a", "b", "c"], exact=False).cost == pytest.approx(3.0)


def test_path_and_tree_result_fields() -> None:
    edges = [(1, 2, 2.0), (2, 3, 3.0), (3, 4, 4.0), (1, 4, 10.0)]
    result = steiner_tree(edges, [1, 3])
    assert result.cost == pytest.approx(5.0)
    assert (
        result.optimal
        and result.lower_bound == pytest.approx(5.0)
        and result.gap == pytest.approx(0.0)
    )
    assert result.method == "shortest path" and result.elapsed_s >= 0
    chosen, cost = result
    assert chosen == result.edges and cost == result.cost


def test_proven_optimum_reports_milp() -> None:
    result = steiner_tree(TRIANGLE_WITH_HUB, ["a", "b", "c"])
    assert result.method == "milp" and result.optimal and result.lower_bound == pytest.approx(3.0)


def test_grid_with_centre_hub() -> None:
    # 3x3 grid, terminals at the corners: the optimum runs through the centre (cost 6 * 1)
    edges = [((i, j), (i + 1, j), 1.0) for i in range(2) for j in range(3)]
    edges += [((i, j), (i, j + 1), 1.0) for i in range(3) for j in range(2)]
    corners = [(0, 0), (0, 2), (2, 0), (2, 2)]
    result = steiner_tree(edges, corners)
    assert_valid(result, edges, corners)
    assert result.cost == pytest.approx(6.0) and result.optimal


# --------------------------------------------------------------------------- brute force


@pytest.mark.parametrize("seed", range(40))
def test_random_small_graphs_match_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(4, 11)
    edges = random_graph(rng, n, p=rng.choice([0.2, 0.4, 0.7]), integer_costs=seed % 2 == 0)
    terminals = rng.sample(range(n), rng.randint(2, min(5, n)))
    optimum = brute_force(edges, terminals)
    for exact in (True, False):
        result = steiner_tree(edges, terminals, exact=exact)
        assert_valid(result, edges, terminals)
        if exact:
            assert result.cost == pytest.approx(optimum) and result.optimal
        else:
            assert result.cost >= optimum - 1e-9


def test_medium_grid_heuristic_close_to_proven_optimum() -> None:
    rng = random.Random(5)
    k = 12
    edges = [((i, j), (i + 1, j), rng.randint(1, 20)) for i in range(k - 1) for j in range(k)]
    edges += [((i, j), (i, j + 1), rng.randint(1, 20)) for i in range(k) for j in range(k - 1)]
    terminals = rng.sample([(i, j) for i in range(k) for j in range(k)], 10)
    exact = steiner_tree(edges, terminals, exact=True)
    heuristic = steiner_tree(edges, terminals, exact=False)
    assert_valid(exact, edges, terminals)
    assert_valid(heuristic, edges, terminals)
    assert exact.optimal and 0 < heuristic.lower_bound <= exact.cost
    assert exact.cost <= heuristic.cost <= 1.05 * exact.cost
    graph = nx.Graph()
    graph.add_weighted_edges_from(edges)
    mehlhorn = nx.algorithms.approximation.steiner_tree(graph, terminals, method="mehlhorn")
    assert heuristic.cost <= mehlhorn.size(weight="weight") + 1e-9


def test_time_limit_still_returns_a_valid_tree() -> None:
    rng = random.Random(11)
    k = 25
    edges = [((i, j), (i + 1, j), rng.random()) for i in range(k - 1) for j in range(k)]
    edges += [((i, j), (i, j + 1), rng.random()) for i in range(k) for j in range(k - 1)]
    terminals = rng.sample([(i, j) for i in range(k) for j in range(k)], 30)
    result = steiner_tree(edges, terminals, time_limit=0.5, exact=True)
    assert_valid(result, edges, terminals)
    assert result.elapsed_s < 5.0


# --------------------------------------------------------------------------- degenerate input


@pytest.mark.parametrize("terminals", [[], ["a"], ["a", "a"]])
def test_fewer_than_two_distinct_terminals_give_empty_tree(terminals: list) -> None:
    result = steiner_tree([("a", "b", 1.0)], terminals)
    assert result.edges == [] and result.cost == 0.0 and result.optimal


def test_duplicate_terminals_and_string_ids() -> None:
    edges = [("x", "y", 2.5), ("y", "z", 1.5)]
    result = steiner_tree(edges, ["x", "z", "x"])
    assert result.cost == pytest.approx(4.0)
    assert_valid(result, edges, ["x", "z"])


def test_parallel_edges_use_the_cheapest_and_self_loops_are_ignored() -> None:
    cheap = ("a", "b", 1.0)
    edges = [("a", "b", 5.0), cheap, ("b", "a", 3.0), ("a", "a", 0.0), ("b", "c", 2.0)]
    result = steiner_tree(edges, ["a", "c"])
    assert result.cost == pytest.approx(3.0)
    assert any(e is cheap for e in result.edges)
    assert_valid(result, edges, ["a", "c"])


def test_zero_cost_edges() -> None:
    edges = [(1, 2, 0.0), (2, 3, 0.0), (3, 4, 0.0), (1, 4, 1.0), (4, 5, 0), (5, 1, 0.0)]
    result = steiner_tree(edges, [1, 3, 5])
    assert result.cost == 0.0
    assert_valid(result, edges, [1, 3, 5])


def test_disconnected_terminals_are_named() -> None:
    edges = [("a", "b", 1.0), ("b", "c", 1.0), ("x", "y", 1.0), ("z", "z", 1.0)]
    with pytest.raises(DisconnectedTerminalsError) as caught:
        steiner_tree(edges, ["a", "c", "x", "z"])
    assert set(caught.value.unreachable) == {"x", "z"}
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("edges", "terminals", "message"),
    [
        ([("a", "b", -1.0)], ["a", "b"], "non-negative"),
        ([("a", "b", float("nan"))], ["a", "b"], "non-negative"),
        ([("a", "b")], ["a", "b"], "triple"),
        ([("a", "b", "cheap")], ["a", "b"], "numeric"),
        ([("a", "b", 1.0)], ["a", "q"], "not nodes"),
    ],
)
def test_bad_input_raises_value_error(edges: list, terminals: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        steiner_tree(edges, terminals)


def test_internal_check_rejects_a_cycle() -> None:
    edges = [(1, 2, 1.0), (2, 3, 1.0), (3, 1, 1.0)]
    instance = steiner._Instance.parse(edges, [1, 3])
    with pytest.raises(SteinerInternalError, match="cycle"):
        steiner._check_tree(instance, [0, 1, 2], 3.0)
    with pytest.raises(SteinerInternalError, match="cost"):
        steiner._check_tree(instance, [0, 1], 5.0)


# --------------------------------------------------------------------------- STP files


def test_stp_round_trip(tmp_path) -> None:
    edges = [("depot", "x", 1.25), ("x", "y", 2.0), ("y", "gate", 0.1), ("x", "gate", 7.0)]
    numbers = write_stp(tmp_path / "zone.stp", edges, ["depot", "gate"])
    read_edges, read_terminals = read_stp(tmp_path / "zone.stp")
    assert read_edges == [(numbers[u], numbers[v], c) for u, v, c in edges]
    assert read_terminals == [numbers["depot"], numbers["gate"]]
    assert steiner_tree(read_edges, read_terminals).cost == pytest.approx(
        steiner_tree(edges, ["depot", "gate"]).cost
    )


def test_stp_keeps_positive_integer_ids(tmp_path) -> None:
    edges = [(3, 7, 1.0), (7, 9, 2.0)]
    write_stp(tmp_path / "ints.stp", edges, [3, 9])
    assert read_stp(tmp_path / "ints.stp") == (edges, [3, 9])


STEINLIB_SAMPLE = """33D32945 STP File, STP Format Version 1.0

SECTION Comment
Name    "tiny"
Remark  "hand made"
END

SECTION Graph
Nodes 4
Edges 4
E 1 2 3
E 2 3 4
E 3 4 5
E 1 4 1
END

SECTION Terminals
Terminals 2
T 1
T 3
END

SECTION Coordinates
DD 1 0 0
END

EOF
"""


def test_read_steinlib_sample(tmp_path) -> None:
    path = tmp_path / "tiny.stp"
    path.write_text(STEINLIB_SAMPLE)
    edges, terminals = read_stp(path)
    assert edges == [(1, 2, 3.0), (2, 3, 4.0), (3, 4, 5.0), (1, 4, 1.0)]
    assert terminals == [1, 3]
    assert steiner_tree(edges, terminals).cost == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("broken", "line"),
    [
        (STEINLIB_SAMPLE.replace("E 2 3 4", "E 2 three 4"), 12),
        (STEINLIB_SAMPLE.replace("E 3 4 5", "E 3 4"), 13),
        (STEINLIB_SAMPLE.replace("E 3 4 5", "E 3 9 5"), 13),
        (STEINLIB_SAMPLE.replace("T 3", "X 3"), 20),
        (STEINLIB_SAMPLE.replace("33D32945", "STEINER"), 1),
        (STEINLIB_SAMPLE.replace("EOF\n", ""), 26),
    ],
)
def test_malformed_stp_names_the_line(tmp_path, broken: str, line: int) -> None:
    path = tmp_path / "broken.stp"
    path.write_text(broken)
    with pytest.raises(ValueError, match=f"line {line}"):
        read_stp(path)


def test_stp_declared_count_mismatch(tmp_path) -> None:
    path = tmp_path / "count.stp"
    path.write_text(STEINLIB_SAMPLE.replace("Edges 4", "Edges 5"))
    with pytest.raises(ValueError, match="declares 5 edges"):
        read_stp(path)


def test_solver_prints_nothing(capfd) -> None:
    steiner_tree(TRIANGLE_WITH_HUB, ["a", "b", "c"], exact=True)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize("scale", [1e-9, 1e6])
def test_cost_scale_does_not_change_the_tree(scale: float) -> None:
    rng = random.Random(21)
    edges = random_graph(rng, 10, p=0.4, integer_costs=False)
    terminals = [0, 3, 6, 9]
    optimum = brute_force(edges, terminals)
    scaled = [(u, v, c * scale) for u, v, c in edges]
    for exact in (True, False):
        result = steiner_tree(scaled, terminals, exact=exact)
        assert_valid(result, scaled, terminals)
        assert result.cost >= optimum * scale * (1 - 1e-9)
        if exact:
            assert result.cost == pytest.approx(optimum * scale) and result.optimal


def test_result_fields_are_plain_python_types() -> None:
    result = steiner_tree(TRIANGLE_WITH_HUB, ["a", "b", "c"], exact=True)
    assert (
        type(result.cost) is float
        and type(result.lower_bound) is float
        and type(result.optimal) is bool
    )
