"""Benchmark: the allocation through the web job (POST /api/allocations, poll, fetch the result)
on 1,000 applications × 20,000 plots × 50 substations, against the bare solver on the same
store in the same run.

Run (not part of CI)::

    .venv/bin/python benchmarks/bench_allocation_job.py                 # 1,000 × 20,000, 60 s
    .venv/bin/python benchmarks/bench_allocation_job.py --limit 30 --reuse /tmp/bench-alloc.gpkg

What is measured
----------------
* **web job**: a real waitress server over a GeoPackage store; a planner's Bearer token posts
  ``/api/allocations`` (objective investment, the time limit), polls
  ``/api/allocations/<id>`` every 0.2 s and fetches ``/result``. *Time to first proposal*
  is when the poll first shows a best value (the job reads the store, builds the servicing
  model and the tables, runs the warm start, then reports each incumbent); *gap at the
  time limit* is the proven gap of the final proposal.
* **bare solver** (the baseline: what ``zoneplan allocate`` does, with nothing around it):
  the same store's snapshot, ``ServicingModel``, ``plot_table`` / ``capacity_table`` /
  ``application_table`` and ``planner.allocation.solve`` with the same time limit, in
  this process.
The bare run goes first (it pays the process's warm-up). **overhead** = the web job's wall time seen by the client minus the bare run's tables +
  solve time: the store reads, first come first served for the comparison, explaining the
  proposal (reasons, rules on the plot applied for, GeoJSON), the job runner's writes and
  the polling.

The synthetic zone (say so wherever its numbers appear): plot areas, sectors, hazard classes,
applications and substation headroom come from ``bench_allocation.make_instance`` (seed 1,
headroom 50% of the demand that could reach each substation); the plots are squares of those
areas on a street grid, the 50 substations sit on street corners and each plot draws on the
nearest by road, as the servicing model decides. The zone has no rail, so no application
needs it.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import requests
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_allocation import make_instance  # noqa: E402

from geo.crs import WORKING_EPSG  # noqa: E402
from geo.layers import SECTORS  # noqa: E402
from geo.store import create_store, open_store  # noqa: E402
from planner.allocation import solve  # noqa: E402
from planner.allocation_tables import application_table, capacity_table, plot_table  # noqa: E402
from planner.servicing import POWER_FACTOR, ServicingModel  # noqa: E402

X0, Y0 = 600_000.0, 4_700_000.0
ROAD_GAP_M = 20.0  # a plot's edge to its street (within the 25 m frontage)


def build(db: Path, apps: int, plots: int, nodes: int, seed: int) -> None:
    """A GeoPackage store of the synthetic zone (see the module docstring)."""
    plot_t, app_t, cap_t = make_instance(apps, plots, nodes, 0.5, seed)
    sector_of = dict(zip(sorted(set(app_t["sector"])), np.resize(np.array(SECTORS), 10)))
    side = np.sqrt(plot_t["area_ha"].to_numpy() * 1e4)
    pitch = float(side.max()) + 2 * ROAD_GAP_M
    cols = int(np.ceil(np.sqrt(plots)))
    i = np.arange(plots)
    x = X0 + (i % cols) * pitch + ROAD_GAP_M
    y = Y0 + (i // cols) * pitch + ROAD_GAP_M
    rows = int(np.ceil(plots / cols))
    width, height = cols * pitch, rows * pitch
    plots_gdf = gpd.GeoDataFrame(
        {
            "plot_id": plot_t["plot_id"],
            "status": "available",
            "sectors": [
                "*" if s == "*" else ",".join(sorted({sector_of[c] for c in s.split(",")}))
                for s in plot_t["sectors"]
            ],
            "hazard_ok": plot_t["hazard_ok"],
        },
        geometry=shapely.box(x, y, x + side, y + side),
        crs=WORKING_EPSG,
    )
    streets = [
        shapely.LineString([(X0, Y0 + k * pitch), (X0 + width, Y0 + k * pitch)])
        for k in range(rows + 1)
    ]
    streets += [
        shapely.LineString([(X0 + k * pitch, Y0), (X0 + k * pitch, Y0 + height)])
        for k in range(cols + 1)
    ]
    roads = gpd.GeoDataFrame(
        {
            "asset_id": [f"R-{k:04d}" for k in range(len(streets))],
            "status": "operational",
            "class": "collector",
        },
        geometry=streets,
        crs=WORKING_EPSG,
    )
    rng = np.random.default_rng(seed)
    corners = np.c_[
        X0 + rng.integers(0, cols + 1, nodes) * pitch, Y0 + rng.integers(0, rows + 1, nodes) * pitch
    ]
    headroom_kw = cap_t["power_kw"].to_numpy()
    subs = gpd.GeoDataFrame(
        {
            "asset_id": [f"SS-{k:02d}" for k in range(nodes)],
            "name": None,
            "status": "operational",
            "cap_mva": np.round(headroom_kw / 1000.0 / POWER_FACTOR, 4),
            "load_mva": 0.0,
        },
        geometry=shapely.points(corners + 5.0),
        crs=WORKING_EPSG,
    )
    gates = gpd.GeoDataFrame(
        {"asset_id": ["G-1", "G-2"], "status": "operational"},
        geometry=shapely.points([(X0, Y0), (X0 + width, Y0 + height)]),
        crs=WORKING_EPSG,
    )
    zone = gpd.GeoDataFrame(
        {"zone_id": ["Z-1"], "name": ["Synthetic benchmark zone"]},
        geometry=[shapely.box(X0 - 100, Y0 - 100, X0 + width + 100, Y0 + height + 100)],
        crs=WORKING_EPSG,
    )
    applications = pd.DataFrame(
        {
            "app_id": app_t["app_id"],
            "investor": "planner",
            "project": [f"Project {k}" for k in range(apps)],
            "sector": app_t["sector"].map(sector_of),
            "min_ha": app_t["min_ha"],
            "max_ha": app_t["max_ha"],
            "power_kw": app_t["power_kw"],
            "rail_need": False,
            "hazard": app_t["hazard"],
            "invest": app_t["invest"],
            "jobs": app_t["jobs"].astype(int),
            "priority": app_t["priority"],
            "status": "submitted",
        }
    )
    store = create_store(db, force=True)
    with store.transaction("bench") as tx:
        for name, frame in (
            ("zone", zone),
            ("roads", roads),
            ("gates", gates),
            ("substations", subs),
            ("plots", plots_gdf),
            ("applications", applications),
        ):
            tx.insert(name, frame)
    from usecases import accounts

    accounts.create_user(store, "planner", "planner", "bench-pass-123")


def serve(db: Path):
    """A waitress server (8 threads) over ``db`` in this process; returns (base URL, server)."""
    from waitress.server import create_server

    from web import create_app

    app = create_app({"ZONEPLAN_DB": str(db), "SECRET_KEY": "bench"})
    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=server.run, daemon=True).start()
    return f"http://127.0.0.1:{server.effective_port}", server


def web_job(base: str, token: str, limit: float) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    r = requests.post(
        f"{base}/api/allocations",
        json={"objective": "investment", "time_limit": limit},
        headers=headers,
        timeout=60,
    )
    r.raise_for_status()
    job_id, first, samples = r.json()["job_id"], None, []
    while True:
        job = requests.get(f"{base}/api/allocations/{job_id}", headers=headers, timeout=60).json()
        now = time.perf_counter() - started
        interim = job.get("result") or {}
        if job["state"] == "running" and "objective" in interim:
            first = first if first is not None else now
            samples.append((now, interim["gap"]))
        if job["state"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    done = time.perf_counter() - started
    if job["state"] != "done":
        raise SystemExit(f"the job ended {job['state']}: {job.get('error')}")
    result = requests.get(
        f"{base}/api/allocations/{job_id}/result", headers=headers, timeout=120
    ).json()
    fetched = time.perf_counter() - started
    return {
        "first_s": first,
        "done_s": done,
        "fetched_s": fetched,
        "result": result,
        "samples": samples,
    }


def bare(db: Path, limit: float) -> dict:
    started = time.perf_counter()
    store = open_store(db)
    snapshot = store.snapshot()
    model = ServicingModel(snapshot)
    plots, caps = plot_table(snapshot, model), capacity_table(model)
    apps = application_table(store.read("applications"))
    tables = time.perf_counter() - started
    first: list[float] = []
    result = solve(
        plots,
        apps,
        caps,
        objective="investment",
        time_limit=limit,
        on_progress=lambda e, o, b: first or first.append(time.perf_counter() - started),
    )
    greedy = solve(plots, apps, caps, objective="investment", method="greedy")
    return {
        "tables_s": tables,
        "solve_s": result.elapsed_s,
        "total_s": time.perf_counter() - started,
        "first_s": first[0] if first else None,
        "gap": result.gap,
        "value": result.objective,
        "greedy": greedy.objective,
        "placed": int(result.assignments["plot_id"].notna().sum()),
        "pairs": (len(apps), len(plots)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--plots", type=int, default=20000)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=float, default=60.0, help="solver time limit, s")
    parser.add_argument("--db", type=Path, default=Path("/tmp/bench-alloc.gpkg"))
    parser.add_argument("--reuse", action="store_true", help="reuse the store at --db")
    options = parser.parse_args(argv)
    if not (options.reuse and options.db.exists()):
        t = time.perf_counter()
        build(options.db, options.apps, options.plots, options.nodes, options.seed)
        print(f"built {options.db} in {time.perf_counter() - t:.1f} s", flush=True)
    from usecases import accounts

    token = accounts.issue_token(open_store(options.db), "planner")
    # the bare run first: whichever goes first pays the process's warm-up (imports, HiGHS)
    b = bare(options.db, options.limit)
    base, server = serve(options.db)
    try:
        job = web_job(base, token, options.limit)
    finally:
        server.close()
    s = job["result"]["summary"]
    c = job["result"]["comparison"]
    print(
        f"instance: {options.apps} applications × {options.plots} plots × {options.nodes} "
        f"substations (synthetic, seed {options.seed}), objective investment, limit {options.limit:g} s"
    )
    print(f"{'':38}{'web job':>12}{'bare solver':>14}")
    print(
        f"{'first proposal, s (client / in-process)':38}{job['first_s'] or float('nan'):>12.1f}{b['first_s'] or float('nan'):>14.1f}"
    )
    print(f"{'first proposal, s (server side)':38}{s['first_proposal_s']:>12.1f}{'':>14}")
    print(f"{'tables (store, servicing), s':38}{'':>12}{b['tables_s']:>14.1f}")
    print(f"{'solve, s':38}{s['solve_s']:>12.1f}{b['solve_s']:>14.1f}")
    print(
        f"{'done (client saw the end), s':38}{job['done_s']:>12.1f}{b['tables_s'] + b['solve_s']:>14.1f}"
    )
    print(f"{'job total (server side), s':38}{s['total_s']:>12.1f}{'':>14}")
    print(f"{'result fetched, s':38}{job['fetched_s']:>12.1f}{'':>14}")
    print(f"{'proven gap at the limit':38}{s['gap']:>12.3%}{b['gap']:>14.3%}")
    print(f"{'placed':38}{s['placed']:>12}{b['placed']:>14}")
    print(f"{'objective, bn tenge':38}{s['value'] / 1e9:>12.2f}{b['value'] / 1e9:>14.2f}")
    print(
        f"{'vs first come, first served':38}{s['value'] / c['fcfs']['value']:>11.2f}x{b['value'] / b['greedy']:>13.2f}x"
    )
    overhead = job["done_s"] - (b["tables_s"] + b["solve_s"])
    print(
        f"job machinery overhead: {overhead:+.1f} s "
        f"({overhead / (b['tables_s'] + b['solve_s']):+.1%} of the bare tables + solve)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
