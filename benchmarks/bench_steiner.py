"""Benchmark planner.steiner against proven optima and networkx's Mehlhorn heuristic (not run in CI)."""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
from scipy.spatial import Delaunay

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.steiner import steiner_tree  # noqa: E402

Edge = tuple[int, int, float]


@dataclass(frozen=True)
class Instance:
    name: str
    edges: list[Edge]
    terminals: list[int]


def grid(side_x: int, side_y: int, terminals: int, seed: int) -> Instance:
    """Grid graph with uniform random integer costs 1..100."""
    rng = np.random.default_rng(seed)
    node = np.arange(side_x * side_y).reshape(side_x, side_y)
    pairs = np.concatenate(
        [
            np.stack([node[:-1, :].ravel(), node[1:, :].ravel()], 1),
            np.stack([node[:, :-1].ravel(), node[:, 1:].ravel()], 1),
        ]
    )
    costs = rng.integers(1, 101, len(pairs)).astype(float)
    edges = [(int(a), int(b), float(c)) for (a, b), c in zip(pairs, costs)]
    chosen = rng.choice(side_x * side_y, terminals, replace=False)
    return Instance(f"grid {side_x}x{side_y} t={terminals}", edges, [int(t) for t in chosen])


def road_lattice(side: int, terminals: int, seed: int) -> Instance:
    """Perturbed grid: jittered junctions, Euclidean lengths, ~10% streets missing, a few diagonals."""
    rng = np.random.default_rng(seed)
    xy = (
        np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2)
        * 100.0
    )
    xy += rng.normal(0, 18, xy.shape)
    node = np.arange(side * side).reshape(side, side)
    pairs = np.concatenate(
        [
            np.stack([node[:-1, :].ravel(), node[1:, :].ravel()], 1),
            np.stack([node[:, :-1].ravel(), node[:, 1:].ravel()], 1),
            np.stack([node[:-1, :-1].ravel(), node[1:, 1:].ravel()], 1),
        ]
    )
    is_diagonal = np.arange(len(pairs)) >= len(pairs) - (side - 1) ** 2
    keep = np.where(is_diagonal, rng.random(len(pairs)) < 0.08, rng.random(len(pairs)) < 0.9)
    return _geometric(f"road lattice {side}x{side} t={terminals}", xy, pairs[keep], terminals, rng)


def delaunay(nodes: int, terminals: int, seed: int) -> Instance:
    """Delaunay triangulation of random points, Euclidean lengths times a random road-quality factor."""
    rng = np.random.default_rng(seed)
    xy = rng.random((nodes, 2)) * 1000.0
    simplices = Delaunay(xy).simplices
    pairs = np.concatenate([simplices[:, [0, 1]], simplices[:, [1, 2]], simplices[:, [0, 2]]])
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    return _geometric(f"delaunay n={nodes} t={terminals}", xy, pairs, terminals, rng)


def _geometric(
    name: str, xy: np.ndarray, pairs: np.ndarray, terminals: int, rng: np.random.Generator
) -> Instance:
    length = np.linalg.norm(xy[pairs[:, 0]] - xy[pairs[:, 1]], axis=1) * rng.uniform(
        1.0, 1.5, len(pairs)
    )
    graph = nx.Graph()
    graph.add_edges_from(map(tuple, pairs.tolist()))
    giant = max(nx.connected_components(graph), key=len)
    edges = [(int(a), int(b), round(float(c), 3)) for (a, b), c in zip(pairs, length) if a in giant]
    chosen = rng.choice(sorted(giant), terminals, replace=False)
    return Instance(f"{name} (n={len(giant)}, m={len(edges)})", edges, [int(t) for t in chosen])


def small_instances(quick: bool) -> list[Instance]:
    instances = [
        grid(7, 7, 5, 1),
        grid(10, 10, 10, 2),
        grid(15, 15, 15, 3),
        grid(20, 20, 20, 4),
        road_lattice(8, 6, 5),
        road_lattice(15, 15, 6),
        delaunay(50, 5, 7),
        delaunay(300, 20, 8),
    ]
    if not quick:
        instances += [
            grid(25, 25, 30, 9),
            grid(31, 32, 40, 10),
            road_lattice(22, 30, 11),
            road_lattice(31, 40, 12),
            delaunay(600, 30, 13),
            delaunay(1000, 40, 14),
        ]
    return instances


def large_instances(quick: bool) -> list[Instance]:
    instances = [grid(142, 142, 200, 101)]
    if not quick:
        instances += [road_lattice(142, 200, 102), delaunay(20_000, 200, 103)]
    return instances


def mehlhorn(instance: Instance) -> tuple[float, float]:
    """networkx's Mehlhorn 2-approximation: (cost, seconds)."""
    graph = nx.Graph()
    for u, v, c in instance.edges:
        if not graph.has_edge(u, v) or graph[u][v]["weight"] > c:
            graph.add_edge(u, v, weight=c)
    start = time.perf_counter()
    tree = nx.algorithms.approximation.steiner_tree(graph, instance.terminals, method="mehlhorn")
    return tree.size(weight="weight"), time.perf_counter() - start


def gap(cost: float, optimum: float) -> float:
    return (cost - optimum) / optimum if optimum > 0 else 0.0


def run_small(instances: list[Instance]) -> None:
    print("## Instances with proven optimum (exact MILP, 300 s cap)\n")
    print(
        "| instance | optimum | proven | MILP s | heuristic cost | gap | s | auto gap | s | Mehlhorn cost | gap | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    heuristic_gaps, auto_gaps, mehlhorn_gaps = [], [], []
    for instance in instances:
        exact = steiner_tree(instance.edges, instance.terminals, exact=True, time_limit=300.0)
        optimum = exact.lower_bound if exact.lower_bound is not None else math.nan
        heuristic = steiner_tree(instance.edges, instance.terminals, exact=False, time_limit=None)
        auto = steiner_tree(instance.edges, instance.terminals)
        m_cost, m_time = mehlhorn(instance)
        reference = (
            exact.cost if exact.optimal else optimum
        )  # unproven: gaps are against the lower bound
        heuristic_gaps.append(gap(heuristic.cost, reference))
        auto_gaps.append(gap(auto.cost, reference))
        mehlhorn_gaps.append(gap(m_cost, reference))
        print(
            f"| {instance.name} | {exact.cost:.3f} | {'yes' if exact.optimal else f'no, LB {optimum:.3f}'} "
            f"| {exact.elapsed_s:.2f} | {heuristic.cost:.3f} | {heuristic_gaps[-1]:.2%} | {heuristic.elapsed_s:.2f} "
            f"| {auto_gaps[-1]:.2%} | {auto.elapsed_s:.2f} | {m_cost:.3f} | {mehlhorn_gaps[-1]:.2%} | {m_time:.2f} |",
            flush=True,
        )
    print()
    for label, gaps in (
        ("heuristic + local search", heuristic_gaps),
        ("default (auto)", auto_gaps),
        ("networkx Mehlhorn", mehlhorn_gaps),
    ):
        print(f"- {label}: mean gap {statistics.mean(gaps):.2%}, worst {max(gaps):.2%}")
    print()


def run_large(instances: list[Instance]) -> None:
    print("## Large instances (heuristic + local search)\n")
    print(
        "| instance | cost | s | dual-ascent bound | gap to bound | Mehlhorn cost | its gap to bound | s | ours vs Mehlhorn |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for instance in instances:
        result = steiner_tree(instance.edges, instance.terminals)
        m_cost, m_time = mehlhorn(instance)
        bound = result.lower_bound
        print(
            f"| {instance.name} | {result.cost:.1f} | {result.elapsed_s:.2f} | {bound:.1f} | {gap(result.cost, bound):.2%} "
            f"| {m_cost:.1f} | {gap(m_cost, bound):.2%} | {m_time:.2f} | {(result.cost - m_cost) / m_cost:+.2%} |",
            flush=True,
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="smaller instances only, one large graph"
    )
    parser.add_argument("--only", choices=("small", "large"), help="run one part only")
    args = parser.parse_args()
    if args.only != "large":
        run_small(small_instances(args.quick))
    if args.only != "small":
        run_large(large_instances(args.quick))


if __name__ == "__main__":
    main()
