"""bench_api: /api/plots with bbox and filters on 100,000 plots, over loopback HTTP.

Two servers run in the same session on 127.0.0.1, one after the other, each under
waitress with 8 threads and each warmed up first:

- ``indexed``: ``zoneplan serve`` itself (the store's GeoPackage R-tree answers the bbox);
- ``fullscan``: the same app over a store whose bbox reads ignore the R-tree: every
  plot of the asked statuses is read and the bbox is applied to the geometries' bounds
  in Python (what the catalogue would cost without the spatial index).

4 client threads with keep-alive connections send the same sequence of queries (random
1.5 km boxes over the synthetic zone, ``min_area`` and ``sector`` filters, page of 100)
for a fixed time; the script prints p50/p99 latency and requests/s per server and the
ratios. Not part of the test suite.

    .venv/bin/python benchmarks/bench_api.py --n 100000 --seconds 20 --clients 4
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer  # noqa: E402
from geo.store.gpkg import GpkgStore  # noqa: E402

X0, Y0 = 636_000.0, 4_786_000.0  # a ~28 km square inside the zone envelope
PITCH = 90.0
STATUSES = np.array(
    ["available", "available", "available", "reserved", "occupied", "candidate", "allocated"],
    dtype=object,
)
SECTOR_SETS = np.array(
    ["*", "machine,food", "food,light,logistics", "chemicals,energy", "materials,machine"],
    dtype=object,
)
BOX_M = 1500.0
QUERY = "min_area=0.4&sector=food&limit=100"


def synthetic_plots(start: int, n: int, total: int, seed: int = 11) -> gpd.GeoDataFrame:
    """Plots ``start .. start+n`` of a jittered grid of ``total``: 40-85 m squares
    (0.16-0.72 ha), seven statuses, five sector sets (vectorised)."""
    side = int(np.ceil(np.sqrt(total)))
    i = np.arange(start, start + n)
    rng = np.random.default_rng(seed + start)
    w = rng.uniform(40.0, 85.0, n)
    xs = X0 + (i % side) * PITCH + rng.uniform(0, PITCH - w)
    ys = Y0 + (i // side) * PITCH + rng.uniform(0, PITCH - w)
    return gpd.GeoDataFrame(
        {
            "plot_id": np.char.add("S-", np.char.zfill(i.astype(str), 6)).astype(object),
            "status": STATUSES[i % len(STATUSES)],
            "sectors": SECTOR_SETS[(i // 3) % len(SECTOR_SETS)],
            "resident": np.where(i % 5 == 4, "ТОО «Алатау Индастри»", None).astype(object),
            "power_kw": np.round(rng.uniform(50, 3000, n), 1),
            "water_m3d": np.round(rng.uniform(1, 150, n), 1),
            "rail_need": i % 7 == 0,
        },
        geometry=shapely.box(xs, ys, xs + w, ys + w),
        crs=WORKING_EPSG,
    )


def build(db: Path, n: int, chunk: int = 50_000) -> dict[str, Any]:
    """The sample zone's infrastructure and accounts plus ``n`` synthetic plots."""
    from geo.store import create_store
    from zoneplan.commands.core import SAMPLE_DIR, load_folder

    t = time.perf_counter()
    store = create_store(db, force=True)
    load_folder(store, SAMPLE_DIR)
    for start in range(0, n, chunk):
        with store.transaction("bench") as tx:
            tx.insert("plots", synthetic_plots(start, min(chunk, n - start), n))
        print(f"  {start + min(chunk, n - start):>7,} plots inserted", file=sys.stderr)
    return {
        "plots": store.count("plots"),
        "build_s": round(time.perf_counter() - t, 1),
        "file_mib": round(db.stat().st_size / 2**20, 1),
    }


class FullScanStore(GpkgStore):
    """The GeoPackage store with bbox reads done by a full scan instead of the R-tree."""

    def read(self, layer, *, bbox=None, where=None, order_by=None, limit=None, offset=0):
        if bbox is None:
            return super().read(layer, where=where, order_by=order_by, limit=limit, offset=offset)
        frame = super().read(layer, where=where, order_by=order_by)
        b = shapely.bounds(np.asarray(frame.geometry.values))
        keep = (
            (b[:, 0] <= bbox[2])
            & (b[:, 2] >= bbox[0])
            & (b[:, 1] <= bbox[3])
            & (b[:, 3] >= bbox[1])
        )
        frame = frame[keep]
        end = None if limit is None else offset + limit
        return frame.iloc[offset:end].reset_index(drop=True)

    def count(self, layer, *, bbox=None, where=None):
        if bbox is None:
            return super().count(layer, where=where)
        return len(self.read(layer, bbox=bbox, where=where))


def serve_fullscan(db: str, port: int) -> None:
    """Run the app over :class:`FullScanStore` under waitress, as ``zoneplan serve`` does."""
    from waitress import create_server

    from web import create_app

    app = create_app({"ZONEPLAN_DB": db, "STORE": FullScanStore(db)})
    server = create_server(app, host="127.0.0.1", port=port, threads=8, ident="zoneplan")
    print(f"fullscan serving on {port}", flush=True)
    server.run()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, db: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    if kind == "indexed":
        cmd = [
            str(ROOT / ".venv/bin/zoneplan"),
            "serve",
            "--db",
            str(db),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            "8",
        ]
    else:
        cmd = [sys.executable, __file__, "--serve-fullscan", str(db), "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start: {proc.stderr.read().decode()[-2000:]}")


def boxes(k: int, n: int, seed: int = 3) -> list[str]:
    """``k`` random WGS84 boxes of BOX_M metres over the synthetic grid."""
    side = int(np.ceil(np.sqrt(n))) * PITCH
    rng = random.Random(seed)
    tr = transformer(WORKING_EPSG, WGS84_EPSG)
    out = []
    for _ in range(k):
        x, y = X0 + rng.uniform(0, side - BOX_M), Y0 + rng.uniform(0, side - BOX_M)
        minx, miny, maxx, maxy = tr.transform_bounds(x, y, x + BOX_M, y + BOX_M)
        out.append(f"{minx:.6f},{miny:.6f},{maxx:.6f},{maxy:.6f}")
    return out


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path, headers={"Accept": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def load(port: int, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads, each cycling through ``paths`` from its own offset."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop = time.perf_counter() + seconds

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        i = k * len(paths) // clients
        while time.perf_counter() < stop:
            path = paths[i % len(paths)]
            t = time.perf_counter()
            status, _body = get(conn, path)
            latencies[k].append(time.perf_counter() - t)
            errors[k] += status != 200
            i += 1
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    lat = sorted(x for per in latencies for x in per)
    return {
        "requests": len(lat),
        "errors": sum(errors),
        "wall_s": round(wall, 1),
        "rps": round(len(lat) / wall, 1),
        "p50_ms": round(1000 * lat[len(lat) // 2], 1),
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
        "mean_ms": round(1000 * statistics.fmean(lat), 1),
    }


def run(
    kind: str, db: Path, paths: list[str], clients: int, seconds: float
) -> tuple[dict[str, Any], list[list[str]]]:
    proc, port = start(kind, db)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        t = time.perf_counter()
        status, body = get(conn, paths[0])  # the first request builds the servicing model
        first = time.perf_counter() - t
        answers = []
        for path in paths:  # warm-up: every box once; keep the answers to compare
            status, body = get(conn, path)
            if status != 200:
                raise RuntimeError(f"{kind}: {path} -> {status} {body[:300]!r}")
            answers.append([f["id"] for f in json.loads(body)["features"]])
        conn.close()
        result = load(port, paths, clients, seconds)
        result["first_request_s"] = round(first, 1)
        result["matched_median"] = statistics.median(len(a) for a in answers)
        return result, answers
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="synthetic plots")
    parser.add_argument("--seconds", type=float, default=20.0, help="load time per server")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--boxes", type=int, default=40, help="distinct bbox queries")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out" / "api")
    parser.add_argument("--reuse", action="store_true", help="reuse the built store")
    parser.add_argument("--serve-fullscan", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fullscan:
        serve_fullscan(args.serve_fullscan, args.port)
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = args.workdir / f"plots_{args.n}.gpkg"
    report: dict[str, Any] = {
        "n": args.n,
        "clients": args.clients,
        "seconds": args.seconds,
        "query": f"/api/plots?bbox=<{BOX_M:g} m box>&{QUERY}",
        "boxes": args.boxes,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    if not (args.reuse and db.exists()):
        report["build"] = build(db, args.n)
    paths = [f"/api/plots?bbox={b}&{QUERY}" for b in boxes(args.boxes, args.n)]
    answers: dict[str, list] = {}
    for kind in ("indexed", "fullscan"):
        print(f"running {kind} ...", file=sys.stderr)
        report[kind], answers[kind] = run(kind, db, paths, args.clients, args.seconds)
        print(json.dumps(report[kind]), file=sys.stderr)
    report["same_answers"] = answers["indexed"] == answers["fullscan"]
    i, f = report["indexed"], report["fullscan"]
    report["speedup"] = {
        "p50": round(f["p50_ms"] / i["p50_ms"], 1),
        "p99": round(f["p99_ms"] / i["p99_ms"], 1),
        "rps": round(i["rps"] / f["rps"], 1),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
