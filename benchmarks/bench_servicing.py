"""Benchmark: servicing of 100,000 plots on a synthetic zone of 20,000 road segments.

Run (not part of CI)::

    .venv/bin/python benchmarks/bench_servicing.py            # 100k plots, 20k segments
    .venv/bin/python benchmarks/bench_servicing.py --plots 20000 --baseline 500

What is timed
-------------
* **zoneplan**: ``ServicingModel(snapshot)`` (noding and snapping the road and rail
  networks, rtree indexes, plot frontage and main candidates) plus
  ``model.answer()`` for every plot (road gate/distance/time, rail, power with
  headroom, water, storm, gas, and the readiness sweep over the due dates), i.e.
  the full JSON-shaped records.
* **naive baseline** on a random sample of ``--baseline`` plots (default 1,000),
  extrapolated linearly to all plots: per plot, shapely distances to *every* road
  segment and every main (no spatial index) to find the frontage and the mains,
  and one networkx ``single_source_dijkstra_path_length`` call from the plot's
  entry node to reach gates, stations and substations.  The baseline does less
  than zoneplan (no statuses, headroom, readiness or records), so the ratio is
  conservative.

The synthetic zone: a 100 x 100 street grid at 100 m spacing (19,800 segments of
mixed classes, a few closed), 8 gates on the boundary, a main line with a
restricted spur, a closed station and sidings, 20 substations (one under repair),
water / gas mains along every 4th street (5 % closed, due 2026-12-01), a planned storm
sewer along them (due 2027-03-01: every plot waits for it, so the readiness sweep
re-evaluates the plots date by date), diamond plots of 15 m
half-diagonal scattered over the grid.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.servicing import ServicingModel  # noqa: E402

X0, Y0 = 640_000.0, 4_790_000.0
CRS = 32643


def _assets(n, prefix, rng, *, closed=0.0, due=None):
    status = np.where(rng.random(n) < closed, "closed", "operational").astype(object)
    return pd.DataFrame(
        {
            "asset_id": [f"{prefix}{i}" for i in range(n)],
            "name": None,
            "status": status,
            "since": None,
            "due": [due if s != "operational" else None for s in status],
            "note": None,
        }
    )


def synthetic_zone(n_plots: int, grid: int = 100, spacing: float = 100.0, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    xs = X0 + np.arange(grid) * spacing
    ys = Y0 + np.arange(grid) * spacing
    segs = []
    for j in range(grid):  # horizontal streets
        for i in range(grid - 1):
            segs.append(((xs[i], ys[j]), (xs[i + 1], ys[j])))
    for i in range(grid):  # vertical streets
        for j in range(grid - 1):
            segs.append(((xs[i], ys[j]), (xs[i], ys[j + 1])))
    roads = _assets(len(segs), "R", rng, closed=0.002, due="2027-05-01")
    roads["class"] = rng.choice(
        ["arterial", "collector", "local", "access"], len(segs), p=[0.1, 0.2, 0.5, 0.2]
    )
    roads = gpd.GeoDataFrame(roads, geometry=shapely.linestrings(np.array(segs)), crs=CRS)
    lo, hi = xs[0], xs[-1]
    gate_xy = [
        (lo, ys[20]),
        (lo, ys[70]),
        (hi, ys[30]),
        (hi, ys[80]),
        (xs[25], lo),
        (xs[75], lo),
        (xs[40], hi),
        (xs[90], hi),
    ]
    gates = gpd.GeoDataFrame(_assets(8, "G", rng), geometry=shapely.points(gate_xy), crs=CRS)
    # rail: a main line south of the grid, a restricted spur up to a closed station, sidings
    ym = Y0 - 300.0
    sx = xs[50]
    rail_geoms = [
        shapely.LineString([(X0 - 500, ym), (sx, ym), (hi + 500, ym)]),
        shapely.LineString([(sx, ym), (sx, Y0 + 450)]),
        shapely.LineString([(sx, Y0 + 450), (sx + 2000, Y0 + 450)]),
        shapely.LineString([(sx, Y0 + 450), (sx - 2000, Y0 + 450)]),
    ]
    rail = pd.DataFrame(
        {
            "asset_id": ["ML", "SP", "SD1", "SD2"],
            "name": None,
            "status": ["operational", "restricted", "operational", "operational"],
            "since": None,
            "due": [None, "2026-10-30", None, None],
            "note": None,
            "kind": ["mainline", "spur", "siding", "siding"],
        }
    )
    rail = gpd.GeoDataFrame(rail, geometry=rail_geoms, crs=CRS)
    stations = gpd.GeoDataFrame(
        _assets(1, "ST", rng), geometry=[shapely.Point(sx, Y0 + 450)], crs=CRS
    )
    stations["status"], stations["due"] = "closed", "2026-10-30"
    subs = _assets(20, "SS", rng)
    subs.loc[3, ["status", "due"]] = ["under_repair", "2026-10-30"]
    subs["cap_mva"] = rng.uniform(400, 800, 20).round(1)
    subs["load_mva"] = (subs["cap_mva"] * rng.uniform(0.5, 0.95, 20)).round(1)
    sub_xy = np.c_[rng.uniform(X0, hi, 20), rng.uniform(Y0, ys[-1], 20)] + 30.0
    subs = gpd.GeoDataFrame(subs, geometry=shapely.points(sub_xy), crs=CRS)

    def mains(prefix, offset, **extra):
        rows = [j for j in range(0, grid, 4)]
        geoms = [shapely.LineString([(lo, ys[j] + offset), (hi, ys[j] + offset)]) for j in rows]
        frame = _assets(len(geoms), prefix, rng, closed=0.05, due="2026-12-01")
        for k, v in extra.items():
            frame[k] = v
        return gpd.GeoDataFrame(frame, geometry=geoms, crs=CRS)

    water = mains("W", 8.0, cap_m3d=50_000.0, load_m3d=20_000.0)
    storm = mains("SW", -8.0)
    storm["status"] = "planned"  # every plot waits for it: the readiness sweep works
    storm["due"] = "2027-03-01"
    gas = mains("GM", 12.0)
    cx = rng.uniform(X0 + 20, hi - 20, n_plots)
    cy = rng.uniform(Y0 + 20, ys[-1] - 20, n_plots)
    r = 15.0
    rings = np.stack(
        [
            np.c_[cx, cy - r],
            np.c_[cx + r, cy],
            np.c_[cx, cy + r],
            np.c_[cx - r, cy],
            np.c_[cx, cy - r],
        ],
        axis=1,
    )
    plots = gpd.GeoDataFrame(
        {
            "plot_id": [f"P{i:06d}" for i in range(n_plots)],
            "status": rng.choice(
                ["available", "reserved", "allocated", "occupied", "candidate"],
                n_plots,
                p=[0.38, 0.01, 0.01, 0.5, 0.1],
            ),
            "power_kw": rng.uniform(50, 900, n_plots).round(0),
            "water_m3d": rng.uniform(1, 40, n_plots).round(1),
            "rail_need": pd.array(rng.random(n_plots) < 0.1, dtype="boolean"),
        },
        geometry=shapely.polygons(rings),
        crs=CRS,
    )
    return {
        "plots": plots,
        "roads": roads,
        "gates": gates,
        "rail_lines": rail,
        "rail_stations": stations,
        "substations": subs,
        "water_mains": water,
        "storm_sewers": storm,
        "gas_mains": gas,
    }


def naive(zone: dict, sample: np.ndarray, frontage: float = 25.0) -> float:
    """Per-plot baseline: no spatial index, one networkx shortest-path call per plot."""
    t0 = time.perf_counter()
    roads = zone["roads"]
    geoms = np.asarray(roads.geometry.values)
    start = shapely.get_coordinates(shapely.get_point(geoms, 0)).round(3)
    end = shapely.get_coordinates(shapely.get_point(geoms, -1)).round(3)
    g = nx.Graph()
    for a, b, length in zip(map(tuple, start), map(tuple, end), shapely.length(geoms)):
        g.add_edge(a, b, weight=float(length))
    nodes = np.array(list(g.nodes))

    def node_of(pt):
        return tuple(nodes[np.argmin(np.hypot(*(nodes - pt).T))])

    gates = [node_of(p) for p in shapely.get_coordinates(zone["gates"].geometry.values)]
    stations = [node_of(p) for p in shapely.get_coordinates(zone["rail_stations"].geometry.values)]
    subs = [node_of(p) for p in shapely.get_coordinates(zone["substations"].geometry.values)]
    mains = [
        np.asarray(zone[k].geometry.values) for k in ("water_mains", "storm_sewers", "gas_mains")
    ]
    plots = np.asarray(zone["plots"].geometry.values)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    for i in sample:
        poly = plots[i]
        d = shapely.distance(poly, geoms)  # every segment, no index
        e = int(np.argmin(d))
        entry = (
            start[e]
            if shapely.distance(shapely.Point(start[e]), poly)
            <= shapely.distance(shapely.Point(end[e]), poly)
            else end[e]
        )
        dist = nx.single_source_dijkstra_path_length(g, tuple(entry), weight="weight")
        min(dist.get(n, np.inf) for n in gates)
        min(dist.get(n, np.inf) for n in stations)
        min(dist.get(n, np.inf) for n in subs)
        for m in mains:
            shapely.distance(poly, m).min()
    per_plot = (time.perf_counter() - t1) / len(sample)
    return setup, per_plot


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plots", type=int, default=100_000)
    ap.add_argument("--grid", type=int, default=100, help="streets per side (segments ~ 2 g^2)")
    ap.add_argument("--baseline", type=int, default=1_000, help="plots timed by the naive baseline")
    args = ap.parse_args(argv)
    os.environ.setdefault("ZONEPLAN_TODAY", "2026-01-01")
    t = time.perf_counter()
    zone = synthetic_zone(args.plots, args.grid)
    print(
        f"synthetic zone: {len(zone['plots']):,} plots, {len(zone['roads']):,} road segments "
        f"(generated in {time.perf_counter() - t:.1f} s; not timed)"
    )
    t0 = time.perf_counter()
    model = ServicingModel(zone)
    t_build = time.perf_counter() - t0
    t1 = time.perf_counter()
    records = model.answer()
    t_answer = time.perf_counter() - t1
    t2 = time.perf_counter()
    records_asof = model.answer(as_of="2026-11-01")
    t_asof = time.perf_counter() - t2
    total = t_build + t_answer
    rep = model.network_report()["roads"]
    print(
        f"road network: {rep['nodes']:,} nodes, {rep['edges']:,} edges, tolerance "
        f"{rep['tolerance_m']} m, {rep['dangling_ends']} dangling ends"
    )
    print(f"zoneplan build (networks, indexes, frontage): {t_build:6.2f} s")
    print(f"zoneplan answer() all plots (recorded):       {t_answer:6.2f} s")
    print(f"zoneplan TOTAL for {len(records):,} plots:          {total:6.2f} s")
    print(f"zoneplan answer(as_of=2026-11-01) again:       {t_asof:6.2f} s (networks reused)")
    rail = sum(r["rail"]["available"] for r in records_asof)
    fronts = sum(r["road"]["fronts"] for r in records)
    print(
        f"  (sanity: {fronts:,} plots front a road; {rail:,} have rail as of 2026-11-01; "
        f"{sum(r['ready'] != 'unknown' for r in records):,} have a readiness date)"
    )
    rng = np.random.default_rng(1)
    sample = rng.choice(
        len(zone["plots"]), size=min(args.baseline, len(zone["plots"])), replace=False
    )
    setup, per_plot = naive(zone, sample)
    extrapolated = setup + per_plot * len(zone["plots"])
    print(
        f"naive baseline: {len(sample):,}-plot sample at {per_plot * 1000:.1f} ms/plot "
        f"(+{setup:.1f} s graph build) -> extrapolated {extrapolated:,.0f} s "
        f"for {len(zone['plots']):,} plots"
    )
    print(f"speed-up: {extrapolated / total:,.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
