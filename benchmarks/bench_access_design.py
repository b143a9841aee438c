"""Benchmark access design against networkx's Steiner approximation and per-plot shortest paths (not run in CI).

On the sample zone's expansion areas and on a generated 500 ha expansion with 500 target
plots, the design's Steiner tree is compared, on the very instance it solved (corridor
graph plus one leaf per target), with

* networkx ``approximation.steiner_tree`` (Mehlhorn), and
* joining each plot by its own cheapest path to the existing network (what a planner
  drawing roads one by one approximates): the union of those paths, each edge paid once.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.access_design import design_access  # noqa: E402
from planner.corridors import build_corridors  # noqa: E402
from planner.servicing import ServicingModel  # noqa: E402

CRS = 32643


def sample_snapshot() -> dict:
    """The sample zone, built into a temporary store."""
    from geo.store import create_store
    from zoneplan.commands.core import SAMPLE_DIR, load_folder

    path = Path(tempfile.mkdtemp()) / "zone.gpkg"
    store = create_store(path)
    load_folder(store, SAMPLE_DIR)
    return store.snapshot()


def generated_snapshot(seed: int = 7) -> tuple[dict, shapely.Polygon, list[str]]:
    """A 2.5 km x 2 km (500 ha) expansion of 25 x 20 plots of 90 m x 90 m (10 m gaps), 200 m
    north of an arterial road and 150 m east of a collector; 20 plots occupied at random and
    two protection zones (a gas main strip and a substation square) inside."""
    rng = np.random.default_rng(seed)
    x0, y0 = 650_000.0, 4_790_000.0
    area = shapely.box(x0, y0, x0 + 2500, y0 + 2000)
    ix, iy = np.meshgrid(np.arange(25), np.arange(20))
    ix, iy = ix.ravel(), iy.ravel()
    plots = shapely.box(
        x0 + ix * 100 + 5, y0 + iy * 100 + 5, x0 + ix * 100 + 95, y0 + iy * 100 + 95
    )
    ids = [f"G-{i + 1:03d}" for i in range(len(plots))]
    status = np.full(len(plots), "candidate", dtype=object)
    status[rng.choice(len(plots), 20, replace=False)] = "occupied"
    roads = gpd.GeoDataFrame(
        {
            "asset_id": ["A-1", "C-1"],
            "name": None,
            "class": ["arterial", "collector"],
            "status": "operational",
            "since": None,
            "due": None,
            "note": None,
        },
        geometry=[
            shapely.LineString([(x0 - 1000, y0 - 200), (x0 + 3500, y0 - 200)]),
            shapely.LineString([(x0 - 150, y0 - 200), (x0 - 150, y0 + 2500)]),
        ],
        crs=CRS,
    )
    zones = gpd.GeoDataFrame(
        {
            "asset_id": ["PZ-G", "PZ-S"],
            "name": None,
            "kind": ["gas", "substation"],
            "width_m": [10.0, 40.0],
            "status": "operational",
            "since": None,
            "due": None,
            "note": None,
        },
        geometry=[
            shapely.LineString([(x0 + 600, y0 - 300), (x0 + 1900, y0 + 2100)]).buffer(10),
            shapely.box(x0 + 1200, y0 + 1200, x0 + 1300, y0 + 1300),
        ],
        crs=CRS,
    )
    plot_frame = gpd.GeoDataFrame(
        {"plot_id": ids, "status": status, "exp_id": "EXP-G"}, geometry=plots, crs=CRS
    )
    free = [p for p, s in zip(ids, status) if s == "candidate"]
    return {"plots": plot_frame, "roads": roads, "prot_zones": zones}, area, free


def per_plot_paths(edges: list, terminals: list) -> tuple[float, float]:
    """Each terminal joined to the network by its own cheapest path; shared edges paid once."""
    t0 = time.perf_counter()
    ids = {n: i for i, n in enumerate(dict.fromkeys([x for u, v, _ in edges for x in (u, v)]))}
    u = np.array([ids[a] for a, _, _ in edges])
    v = np.array([ids[b] for _, b, _ in edges])
    c = np.maximum(np.array([w for _, _, w in edges]), 1e-9)
    m = sparse.coo_matrix(
        (np.r_[c, c], (np.r_[u, v], np.r_[v, u])), shape=(len(ids), len(ids))
    ).tocsr()
    _, pred = csgraph.dijkstra(
        m, directed=False, indices=ids[terminals[0]], return_predecessors=True
    )
    cost_of = {}
    for a, b, w in zip(u.tolist(), v.tolist(), c.tolist()):
        key = (min(a, b), max(a, b))
        cost_of[key] = min(w, cost_of.get(key, math.inf))
    used = set()
    for t in terminals[1:]:
        node = ids[t]
        while pred[node] >= 0:
            p = int(pred[node])
            used.add((min(p, node), max(p, node)))
            node = p
    return math.fsum(cost_of[e] for e in used), time.perf_counter() - t0


def mehlhorn(edges: list, terminals: list) -> tuple[float, float]:
    t0 = time.perf_counter()
    g = nx.Graph()
    for a, b, w in edges:
        if not g.has_edge(a, b) or g[a][b]["weight"] > w:
            g.add_edge(a, b, weight=w)
    tree = nx.algorithms.approximation.steiner_tree(
        g, terminals, weight="weight", method="mehlhorn"
    )
    return tree.size(weight="weight"), time.perf_counter() - t0


def run(
    name: str, model: ServicingModel, area, targets: list[str], kind: str, time_limit: float
) -> None:
    t0 = time.perf_counter()
    graph = build_corridors(model, area, targets, kind=kind)
    build_s = time.perf_counter() - t0
    design = design_access(graph, time_limit=time_limit)
    s = design.summary
    mh, mh_s = mehlhorn(design.edges, design.terminals)
    pp, pp_s = per_plot_paths(design.edges, design.terminals)
    gap = "-" if s["gap"] is None else f"{s['gap']:.2%}"
    print(
        f"| {name} | {kind} | {len(targets)} ({len(s['unreachable'])} unreachable) | "
        f"{graph.n_nodes:,} / {graph.n_edges:,} | {build_s:.1f} | {s['elapsed_s']:.1f} | "
        f"{s['cost'] / 1e6:,.1f} | {gap} ({s['method']}) | {mh / 1e6:,.1f} ({(mh - s['cost']) / s['cost']:+.2%}), "
        f"{mh_s:.1f} s | {pp / 1e6:,.1f} ({(pp - s['cost']) / s['cost']:+.2%}), {pp_s:.2f} s |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--skip-generated", action="store_true")
    args = parser.parse_args()
    print(
        "| area | kind | targets | corridor nodes / edges | build s | design s | cost, M tenge | "
        "gap | networkx Mehlhorn, M (vs ours), time | per-plot shortest paths, M (vs ours), time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    snap = sample_snapshot()
    model = ServicingModel(snap)
    plots = snap["plots"]
    for row in snap["expansion"].itertuples():
        targets = plots.loc[
            (plots["exp_id"] == row.exp_id) & plots["status"].isin(["candidate", "available"]),
            "plot_id",
        ].tolist()
        if not targets:
            print(f"| sample {row.exp_id} | - | 0 | no free plots: nothing to design | | | | | | |")
            continue
        for kind in ("road", "rail", "power"):
            run(f"sample {row.exp_id}", model, row.geometry, targets, kind, args.time_limit)
    if not args.skip_generated:
        layers, area, targets = generated_snapshot()
        run("generated 500 ha", ServicingModel(layers), area, targets, "road", args.time_limit)


if __name__ == "__main__":
    main()
