"""Benchmark: a synthetic store of N plots; bbox queries; shapefile export against a
geopandas + fiona baseline, each export in its own process (time and peak RSS, VmHWM).

    .venv/bin/python benchmarks/bench_io.py --n 1000000

Not part of CI. Needs ``fiona`` for the baseline (``pip install fiona``).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geo.crs import WORKING_EPSG  # noqa: E402
from geo.layers import get_layer  # noqa: E402
from geo.store import create_store, open_store  # noqa: E402
from geo.store.base import prepare_rows  # noqa: E402

X0, Y0 = 639_000.0, 4_788_000.0  # a 22 km square for 1M plots, inside ZONE_ENVELOPE
SIZE, GAP = 20.0, 2.0
STATUSES = np.array(["candidate", "available", "reserved", "allocated", "occupied"], dtype=object)


def synthetic_plots(start: int, n: int, total: int, seed: int = 7) -> gpd.GeoDataFrame:
    """Plots ``start .. start+n`` of a jittered grid of ``total`` (vectorised)."""
    side = int(np.ceil(np.sqrt(total)))
    i = np.arange(start, start + n)
    rng = np.random.default_rng(seed + start)
    xs = X0 + (i % side) * (SIZE + GAP) + rng.uniform(0, GAP / 2, n)
    ys = Y0 + (i // side) * (SIZE + GAP) + rng.uniform(0, GAP / 2, n)
    w = SIZE - rng.uniform(0, 4, n)
    return gpd.GeoDataFrame(
        {
            "plot_id": np.char.add("B-", i.astype(str)).astype(object),
            "cadastre": np.char.add("20-311-", i.astype(str)).astype(object),
            "status": STATUSES[i % 5],
            "sectors": np.where(i % 4 == 0, "*", "machine,food").astype(object),
            "resident": np.where(i % 3 == 0, "ТОО «Алатау Индастри»", None).astype(object),
            "jobs": (i % 250).astype("int64"),
            "invest": np.round(rng.uniform(1e6, 5e9, n), 2),
            "power_kw": np.round(rng.uniform(10, 5000, n), 1),
            "rail_need": i % 7 == 0,
            "start_yr": 2020 + (i % 10),
        },
        geometry=shapely.box(xs, ys, xs + w, ys + w),
        crs=WORKING_EPSG,
    )


def _status_mib(key: str) -> float | None:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return None


def rss_mib() -> float:
    """Peak resident memory of this process image (VmHWM).

    ``ru_maxrss`` is not used: Linux carries it across ``execve``, so a child
    would report its parent's peak when that is higher.
    """
    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(db: Path, n: int, chunk: int) -> dict:
    """Insert ``n`` plots through Session.insert, ``chunk`` per transaction."""
    store = create_store(db, force=True)
    gen = ins = 0.0
    sample = synthetic_plots(0, min(chunk, n), n)
    t = time.perf_counter()
    prepare_rows(get_layer("plots"), sample)
    validate_s = time.perf_counter() - t
    for start in range(0, n, chunk):
        t = time.perf_counter()
        frame = synthetic_plots(start, min(chunk, n - start), n)
        gen += time.perf_counter() - t
        t = time.perf_counter()
        with store.transaction("bench") as tx:
            tx.insert("plots", frame)
        ins += time.perf_counter() - t
        print(f"  inserted {start + len(frame):>9,} plots  ({ins:.1f} s so far)", file=sys.stderr)
    return {
        "n": n,
        "chunk": chunk,
        "generate_s": round(gen, 2),
        "insert_s": round(ins, 2),
        "insert_rows_per_s": round(n / ins),
        "validate_chunk_s": round(validate_s, 2),
        "validate_share": round(validate_s * (n / len(sample)) / ins, 3),
        "file_mib": round(db.stat().st_size / 2**20, 1),
    }


def bbox_queries(db: Path, sizes: list[float], reps: int) -> list[dict]:
    """Median time of Store.read and Store.count over random boxes of each size."""
    store = open_store(db)
    minx, miny, maxx, maxy = store.extent("plots")
    rng = np.random.default_rng(1)
    out = []
    for size in sizes:
        reads, counts, rows = [], [], []
        for _ in range(reps):
            x = rng.uniform(minx, max(minx, maxx - size))
            y = rng.uniform(miny, max(miny, maxy - size))
            box = (x, y, x + size, y + size)
            t = time.perf_counter()
            frame = store.read("plots", bbox=box)
            reads.append(time.perf_counter() - t)
            t = time.perf_counter()
            store.count("plots", bbox=box)
            counts.append(time.perf_counter() - t)
            rows.append(len(frame))
        out.append(
            {
                "box_m": size,
                "rows_median": int(statistics.median(rows)),
                "read_ms_median": round(statistics.median(reads) * 1000, 1),
                "count_ms_median": round(statistics.median(counts) * 1000, 1),
            }
        )
    return out


def child(kind: str, db: Path, out: Path) -> dict:
    """One export in this (child) process; returns timings and peak RSS."""
    from geo import io as gio

    store = open_store(db)
    t0 = time.perf_counter()
    after_read = None
    if kind == "ours":
        gio.export_layers(store, "plots", "shp", out / "plots.zip")
        result = {"total_s": time.perf_counter() - t0}
    elif kind == "ours_nozip":
        frame = store.read("plots")
        after_read = _status_mib("VmRSS")
        t1 = time.perf_counter()
        gio.write_shapefile("plots", frame, out)
        result = {
            "read_s": t1 - t0,
            "write_s": time.perf_counter() - t1,
            "total_s": time.perf_counter() - t0,
        }
    elif kind == "fiona":
        frame = store.read("plots")
        after_read = _status_mib("VmRSS")
        t1 = time.perf_counter()
        frame.to_file(out / "plots.shp", engine="fiona", encoding="utf-8")
        result = {
            "read_s": t1 - t0,
            "write_s": time.perf_counter() - t1,
            "total_s": time.perf_counter() - t0,
        }
    else:
        raise SystemExit(f"unknown child {kind}")
    result = {k: round(v, 2) for k, v in result.items()}
    result["peak_rss_mib"] = round(rss_mib())
    if after_read is not None:
        result["rss_after_read_mib"] = round(after_read)
    result["output_mib"] = round(sum(p.stat().st_size for p in out.iterdir()) / 2**20, 1)
    return result


def run_child(kind: str, db: Path, work: Path) -> dict:
    out = work / kind
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--db", str(db), "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="plots in the store")
    parser.add_argument("--chunk", type=int, default=100_000, help="plots per transaction")
    parser.add_argument("--reps", type=int, default=20, help="queries per bbox size")
    parser.add_argument(
        "--sizes", type=float, nargs="+", default=[100, 1000, 5000], help="bbox sides in metres"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp folder")
    parser.add_argument("--reuse", action="store_true", help="reuse an existing bench.gpkg")
    parser.add_argument("--skip-fiona", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.db, args.out)))
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="zoneplan-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "bench.gpkg"
    report: dict = {"n": args.n}
    if not (args.reuse and db.exists()):
        report["build"] = build(db, args.n, args.chunk)
        print(json.dumps(report["build"]), file=sys.stderr)
    report["bbox"] = bbox_queries(db, args.sizes, args.reps)
    print(json.dumps(report["bbox"]), file=sys.stderr)
    kinds = ["ours", "ours_nozip"] + ([] if args.skip_fiona else ["fiona"])
    report["export"] = {k: run_child(k, db, work) for k in kinds}
    if "fiona" in report["export"]:
        base = report["export"]["fiona"]["total_s"]
        report["ratio_fiona_over_ours_zip"] = round(base / report["export"]["ours"]["total_s"], 2)
        report["ratio_fiona_over_ours_nozip"] = round(
            base / report["export"]["ours_nozip"]["total_s"], 2
        )
        report["write_ratio_fiona_over_ours"] = round(
            report["export"]["fiona"]["write_s"] / report["export"]["ours_nozip"]["write_s"], 2
        )
    print(json.dumps(report, indent=2))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
