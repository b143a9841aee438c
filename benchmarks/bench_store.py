"""Benchmark both store backends on the same synthetic plots: bulk import, bbox+attribute query
(index vs full scan), single-plot update. Run by hand; results in RESULTS.md."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo.crs import WORKING_EPSG  # noqa: E402
from geo.layers import PLOT_STATUSES  # noqa: E402
from geo.store import Range, create_store  # noqa: E402

CELL = 50.0  # metres between plot origins on the grid
E0, N0 = 600_000.0, 4_700_000.0


def make_plots(n: int, seed: int = 7) -> gpd.GeoDataFrame:
    """``n`` plots on a square grid, 30–48 m squares, random status and jobs."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    x, y = E0 + (i % side) * CELL, N0 + (i // side) * CELL
    size = rng.uniform(30.0, 48.0, n)
    return gpd.GeoDataFrame(
        {
            "plot_id": np.char.add("P-", np.char.zfill(i.astype(str), 7)),
            "status": rng.choice(PLOT_STATUSES, n),
            "sectors": np.where(rng.random(n) < 0.5, "*", "food,light"),
            "jobs": rng.integers(0, 500, n),
        },
        geometry=shapely.box(x, y, x + size, y + size),
        crs=WORKING_EPSG,
    )


def queries(
    n: int, count: int, box_m: float, seed: int = 11
) -> list[tuple[float, float, float, float]]:
    """Random ``box_m`` × ``box_m`` boxes inside the grid."""
    rng = np.random.default_rng(seed)
    extent = np.ceil(np.sqrt(n)) * CELL - box_m
    x, y = E0 + rng.uniform(0, extent, count), N0 + rng.uniform(0, extent, count)
    return [(a, b, a + box_m, b + box_m) for a, b in zip(x, y)]


WHERE = {"status": ["available", "candidate"], "area_ha": Range(0.15, None)}


def full_scan(store, bbox) -> np.ndarray:
    """The same answer without the store's filters: every plot read, filtered in memory
    (what the catalogue did before `where` took ranges)."""
    frame = store.read("plots")
    hit = (
        frame.geometry.intersects(shapely.box(*bbox))
        & frame["status"].isin(WHERE["status"])
        & (frame["area_ha"] >= 0.15)
    )
    return np.sort(frame.loc[hit, "plot_id"].to_numpy())


def pct(samples: list[float], q: float) -> float:
    return round(float(np.percentile(samples, q)) * 1000, 2)


def run(location: str, frame: gpd.GeoDataFrame, args: argparse.Namespace) -> dict:
    store = create_store(location, force=True)
    started = time.perf_counter()
    with store.transaction("bench") as tx:
        for start in range(0, len(frame), args.chunk):
            tx.insert("plots", frame.iloc[start : start + args.chunk])
            print(
                f"  {location[:40]}: {min(start + args.chunk, len(frame)):>9,} rows "
                f"({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    import_s = time.perf_counter() - started
    boxes = queries(len(frame), args.queries, args.box)
    latencies, answers = [], []
    for bbox in boxes:
        t = time.perf_counter()
        rows = store.read("plots", bbox=bbox, where=WHERE)
        # bbox reads return what the index box touches; the exact test is the caller's.
        rows = rows[rows.geometry.intersects(shapely.box(*bbox))]
        latencies.append(time.perf_counter() - t)
        answers.append(np.sort(rows["plot_id"].to_numpy()))
    scans, same = [], True
    for k, bbox in enumerate(boxes[: args.scans]):
        t = time.perf_counter()
        expected = full_scan(store, bbox)
        scans.append(time.perf_counter() - t)
        same &= bool(np.array_equal(expected, answers[k]))
    rng = np.random.default_rng(3)
    ids = frame["plot_id"].to_numpy()[rng.integers(0, len(frame), args.updates)]
    updates = []
    for k, pid in enumerate(ids):
        t = time.perf_counter()
        store.update("plots", str(pid), {"cadastre": f"C-{k}"}, user="bench")
        updates.append(time.perf_counter() - t)
    store.close()
    return {
        "rows": len(frame),
        "import_s": round(import_s, 1),
        "import_rows_per_s": round(len(frame) / import_s),
        "query_rows_mean": round(float(np.mean([len(a) for a in answers])), 1),
        "query_p50_ms": pct(latencies, 50),
        "query_p99_ms": pct(latencies, 99),
        "full_scan_p50_ms": pct(scans, 50),
        "full_scan_max_ms": pct(scans, 100),
        "full_scan_same_answers": same,
        "update_p50_ms": pct(updates, 50),
        "update_p99_ms": pct(updates, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plots", type=int, default=1_000_000)
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server (a throw-away database is made and dropped)",
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--scans", type=int, default=3, help="full scans per backend (slow)")
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--box", type=float, default=1000.0, help="query box side, metres")
    parser.add_argument("--chunk", type=int, default=100_000)
    args = parser.parse_args()
    t = time.perf_counter()
    frame = make_plots(args.plots)
    print(f"made {len(frame):,} plots in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    database = f"zp_bench_{int(time.time())}"
    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        with psycopg.connect(f"{args.pg}/{database}", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        results = {}
        with tempfile.TemporaryDirectory(prefix="zp-bench-") as work:
            results["gpkg"] = run(str(Path(work) / "bench.gpkg"), frame, args)
            print(json.dumps({"gpkg": results["gpkg"]}), file=sys.stderr, flush=True)
        results["postgis"] = run(f"{args.pg}/{database}", frame, args)
    finally:
        with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    for name, r in results.items():
        r["query_speedup_vs_full_scan_p50"] = round(r["full_scan_p50_ms"] / r["query_p50_ms"], 1)
    print(json.dumps({"plots": args.plots, "box_m": args.box, **results}, indent=2))


if __name__ == "__main__":
    main()
