"""bench_api: /api/plots with bbox and filters over loopback HTTP, against an in-memory
STRtree server.

Servers run in the same session on 127.0.0.1, one after the other, each under
waitress with 8 threads and each warmed up first:

- ``indexed`` (``indexed_Nw`` with ``--workers N``: N forked processes sharing the port):
  ``zoneplan serve`` itself (the GeoPackage R-tree or PostGIS GiST index answers
  the bbox, SQL the attribute filters, the sector, counts and pages, and the page goes from
  the rows to GeoJSON without a DataFrame);
- ``strtree``: the same app over a store that holds the whole plots layer in memory, loaded
  once at start, with a shapely STRtree over it and the filters, counts and pages done in
  pandas: what a user would write instead of a database (no index on disk, nothing to
  query; it pays the load up front and the memory for as long as it runs). Everything
  after the plots rows (servicing facts, visibility, JSON) is the same code, so the answers
  are identical and checked. It runs as ``zoneplan serve --workers`` does (forked after
  loading, so the workers share the layer and its tree), with the most workers asked for
  the indexed server unless ``--strtree-workers`` says otherwise.

Clients (keep-alive connections) send the same sequence of queries (random boxes of
``--box`` metres over the synthetic grid, ``min_area`` and ``sector`` filters, page of
100) for a fixed time, from Python threads or (``--client wrk``, Debian's ``wrk``) from one
C thread that leaves the cores to the server; ``client_cpu`` is the share of a core the
client used. Every server is started and warmed first; then, ``--rounds`` times, each
takes ``--seconds`` of load in turn, so on a shared machine they meet the same background
load (the medians of the rounds are reported). The script prints p50/p99 latency and
requests/s per server and the ratios; with ``--baseline CHECKOUT`` the same indexed
servers also run from that checkout (``base_*``, e.g. a worktree of main: the code before
a change), in the same rounds, and the ratios against them. The store is built by benchmarks/synth.py through ``zoneplan import`` (or
given with ``--db``, either backend). Not part of the test suite.

    .venv/bin/python benchmarks/bench_api.py --n 1000000 --box 1000 5000 --seconds 30 \
        --clients 4 --query "min_area=0.1&sector=food&limit=100" --db STORE \
        --workers 1 2 --client wrk --rounds 3
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
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from synth import HOLE, Grid  # noqa: E402
from synth import build as build_store  # noqa: E402

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer  # noqa: E402

BOX_M = 1500.0
QUERY = "min_area=0.4&sector=food&limit=100"


class StrtreeStore:
    """A store whose plots layer is answered from memory: the whole layer read once, a
    shapely STRtree over it, filters, sort and paging in pandas (every other layer and
    every write go to the real store)."""

    def __init__(self, location: str):
        from geo.store import open_store

        self._store = open_store(location)
        t = time.perf_counter()
        self._plots = self._store.read("plots")
        self._tree = shapely.STRtree(np.asarray(self._plots.geometry.values))
        self.load_s = time.perf_counter() - t

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _select(self, bbox: Any, where: Any, exact: bool = False) -> Any:
        from geo.layers import get_layer
        from geo.store.base import compile_where, list_has

        frame = self._plots
        if bbox is not None:
            box = shapely.box(*bbox)
            hits = self._tree.query(box, predicate="intersects" if exact else None)
            frame = frame.iloc[np.sort(hits)]
        mask = np.ones(len(frame), dtype=bool)
        for name, op, value in compile_where(get_layer("plots"), where):
            column = frame[name]
            if op == "in":
                mask &= column.isin(value).to_numpy()
            elif op == "null":
                mask &= column.isna().to_numpy()
            elif op == "notnull":
                mask &= column.notna().to_numpy()
            elif op == ">=":
                mask &= (column >= value).fillna(False).to_numpy(dtype=bool)
            elif op == "<=":
                mask &= (column <= value).fillna(False).to_numpy(dtype=bool)
            elif op == "=":
                mask &= (column == value).fillna(False).to_numpy(dtype=bool)
            elif op == "listhas":  # the allowed sectors, as the stores' SQL reads them
                everything, item = value
                mask &= np.array([list_has(t, item, everything) for t in column], dtype=bool)
            else:
                raise NotImplementedError(op)
        return frame[mask]

    def read(
        self, layer, *, bbox=None, where=None, order_by=None, limit=None, offset=0, exact=False
    ):
        if layer != "plots":
            return self._store.read(
                layer, bbox=bbox, where=where, order_by=order_by, limit=limit, offset=offset
            )
        frame = self._select(bbox, where, exact)
        order = order_by or "plot_id"
        frame = frame.sort_values(
            [order.lstrip("-"), "plot_id"], ascending=not order.startswith("-")
        )
        end = None if limit is None else offset + limit
        return frame.iloc[offset:end].reset_index(drop=True)

    def rows(self, layer, columns, **query):
        """A page as plain columns: the Store's generic way, through :meth:`read`."""
        from geo.store import Store

        return Store.rows(self, layer, columns, **query)  # type: ignore[arg-type]

    def count(self, layer, *, bbox=None, where=None, exact=False):
        if layer != "plots":
            return self._store.count(layer, bbox=bbox, where=where)
        return len(self._select(bbox, where, exact))


def serve_strtree(db: str, port: int, workers: int = 1) -> None:
    """Run the app over :class:`StrtreeStore` as ``zoneplan serve`` does (with ``workers``
    processes forked after the layer, its STRtree and the servicing model are loaded)."""
    from web import create_app
    from zoneplan.commands.serve import serve_app

    store = StrtreeStore(db)
    print(f"strtree loaded {len(store._plots)} plots in {store.load_s:.1f} s", file=sys.stderr)
    app = create_app({"ZONEPLAN_DB": db, "STORE": store})
    serve_app(app, "127.0.0.1", port, threads=8, workers=workers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Threads per ``zoneplan serve`` process (``--threads``).
THREADS = 8
#: Another checkout whose ``zoneplan serve`` runs as the ``base_`` servers (``--baseline``).
BASELINE: Path | None = None


def start(kind: str, db: Path | str, workers: int = 1) -> tuple[subprocess.Popen, int]:
    port = free_port()
    root = ROOT
    if kind.startswith("base_"):
        assert BASELINE is not None
        root = BASELINE
    if kind.startswith(("indexed", "base_")):
        cmd = [
            str(root / ".venv/bin/zoneplan"),
            "serve",
            "--db",
            str(db),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            str(THREADS),
            "--workers",
            str(workers),
        ]
    else:
        cmd = [sys.executable, __file__, "--serve-strtree", str(db), "--port", str(port)]
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "ZONEPLAN_SECRET_KEY": os.environ.get("ZONEPLAN_SECRET_KEY", "bench")}
    log = tempfile.TemporaryFile()  # a pipe nobody reads would stall a chatty server
    # Its own process group, so that stopping it reaches its workers too (see stop).
    proc = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
    )
    deadline = time.time() + 900
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    log.seek(0)
    raise RuntimeError(f"{kind} server did not start: {log.read().decode()[-2000:]}")


def boxes(k: int, n: int, size: float = BOX_M, seed: int = 3) -> list[str]:
    """``k`` random WGS84 boxes of ``size`` metres over the synthetic grid (outside its hole)."""
    x0, y0, x1, y1 = Grid.of(n).bounds
    rng = random.Random(seed)
    tr = transformer(WORKING_EPSG, WGS84_EPSG)
    out = []
    while len(out) < k:
        x, y = rng.uniform(x0, x1 - size), rng.uniform(y0, y1 - size)
        if x < HOLE[2] and x + size > HOLE[0] and y < HOLE[3] and y + size > HOLE[1]:
            continue
        minx, miny, maxx, maxy = tr.transform_bounds(x, y, x + size, y + size)
        out.append(f"{minx:.6f},{miny:.6f},{maxx:.6f},{maxy:.6f}")
    return out


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path, headers={"Accept": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def load(
    port: int, paths: list[str], clients: int, seconds: float, client: str = "python"
) -> dict[str, Any]:
    """``clients`` keep-alive connections cycling through ``paths`` for ``seconds``, from
    Python threads or from one ``wrk`` thread; ``client_cpu`` is the share of one core the
    client itself used (what it took from the server on a small machine)."""
    if client == "wrk":
        return load_wrk(port, paths, clients, seconds)
    cpu0 = time.process_time()
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
        "client_cpu": round((time.process_time() - cpu0) / wall, 2),
        "requests": len(lat),
        "errors": sum(errors),
        "wall_s": round(wall, 1),
        "rps": round(len(lat) / wall, 1),
        "p50_ms": round(1000 * lat[len(lat) // 2], 1),
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
        "mean_ms": round(1000 * statistics.fmean(lat), 1),
    }


WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["Accept"] = "application/json"})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("ZP %%d %%d %%d %%f %%f %%f\\n", summary.requests,
    e.status + e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


def load_wrk(port: int, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """Like :func:`load`, from ``wrk`` (one thread, ``clients`` connections, in C)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
        script.flush()
        before = os.times()
        out = subprocess.run(
            ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "-s", script.name]
            + [f"http://127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        after = os.times()
    line = next(x for x in out.splitlines() if x.startswith("ZP "))
    requests, errors, micros, p50, p99, mean = (float(v) for v in line.split()[1:])
    wall = micros / 1e6
    used = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return {
        "client_cpu": round(used / wall, 2),
        "requests": int(requests),
        "errors": int(errors),
        "wall_s": round(wall, 1),
        "rps": round(requests / wall, 1),
        "p50_ms": round(p50 / 1000, 1),
        "p99_ms": round(p99 / 1000, 1),
        "mean_ms": round(mean / 1000, 1),
    }


def prepare(
    kind: str, db: Path, paths: dict[str, list[str]], workers: int = 1
) -> tuple[subprocess.Popen, int, dict[str, Any], dict[str, list[list[str]]]]:
    """Start one server and time its first answers, then ask every box once (answers
    kept to compare); the server is left running."""
    t0 = time.perf_counter()
    proc, port = start(kind, db, workers)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    result: dict[str, Any] = {"listening_s": round(time.perf_counter() - t0, 1)}
    first_paths = next(iter(paths.values()))
    t = time.perf_counter()
    status, body = get(conn, "/tiles/plots/16/46776/23981.mvt")  # needs no servicing
    result["first_tile_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    status, body = get(conn, first_paths[0])  # waits for the servicing model and facts
    result["first_request_s"] = round(time.perf_counter() - t, 1)
    result["first_answer_after_start_s"] = round(time.perf_counter() - t0, 1)
    answers: dict[str, list[list[str]]] = {}
    for size, group in paths.items():
        answers[size] = []
        for path in group:
            status, body = get(conn, path)
            if status != 200:
                stop(proc)
                raise RuntimeError(f"{kind}: {path} -> {status} {body[:300]!r}")
            answers[size].append([f["id"] for f in json.loads(body)["features"]])
    conn.close()
    return proc, port, result, answers


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server, then SIGKILL to its whole process group (workers left behind
    by a server that did not stop them: older ones ignored SIGINT when started from a
    background job, and a killed parent left its workers running)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_all(
    runs: list[tuple[str, int]],
    db: Path,
    paths: dict[str, list[str]],
    args: argparse.Namespace,
) -> tuple[dict[str, Any], dict[str, dict[str, list[list[str]]]]]:
    """Every server started and warmed first, then ``args.rounds`` rounds in which each
    server in turn takes ``args.seconds`` of load per viewport size, each round starting
    with the next server: on a shared machine the servers then meet the same background
    load. Each size reports the median of the
    rounds' p50, p99 and req/s, and every round's."""
    procs: dict[str, tuple[subprocess.Popen, int]] = {}
    report: dict[str, Any] = {}
    answers: dict[str, dict[str, list[list[str]]]] = {}
    try:
        for kind, workers in runs:
            print(f"starting {kind} ...", file=sys.stderr)
            proc, port, report[kind], answers[kind] = prepare(kind, db, paths, workers)
            procs[kind] = (proc, port)
            report[kind]["workers"] = workers
        for number in range(args.rounds):
            # Each round starts with the next server, so none always meets the load first.
            turn = runs[number % len(runs) :] + runs[: number % len(runs)]
            for size, group in paths.items():
                for kind, _ in turn:
                    got = load(procs[kind][1], group, args.clients, args.seconds, args.client)
                    got["load_average"] = round(os.getloadavg()[0], 1)
                    report[kind].setdefault(size, {"rounds": []})["rounds"].append(got)
                    print(f"  round {number} {kind} {size}: {json.dumps(got)}", file=sys.stderr)
    finally:
        for proc, _ in procs.values():
            stop(proc)
    for kind, _ in runs:
        for size in paths:
            rounds = report[kind][size]["rounds"]
            report[kind][size].update(
                {
                    name: statistics.median(r[name] for r in rounds)
                    for name in ("p50_ms", "p99_ms", "rps", "client_cpu", "load_average")
                },
                errors=sum(r["errors"] for r in rounds),
                matched_median=statistics.median(len(a) for a in answers[kind][size]),
            )
    return report, answers


def store_location(args: argparse.Namespace, report: dict[str, Any]) -> str:
    """``--db`` when given (built first if it does not exist yet), else a GeoPackage in
    ``--workdir``; a new store is built by synth.build through ``zoneplan import``."""
    from geo.store import store_exists

    db = args.db or str(args.workdir / f"plots_{args.n}.gpkg")
    if not store_exists(db):
        report["build"] = build_store(db, args.n, ROOT / "benchmarks" / "out" / "synth")
        print(json.dumps(report["build"]), file=sys.stderr)
    return db


def indexed(workers: int) -> str:
    """The report's name of the indexed server with ``workers`` processes."""
    return "indexed" if workers == 1 else f"indexed_{workers}w"


def compare(
    report: dict[str, Any],
    answers: dict[str, dict[str, list]],
    kind: str,
    paths: dict,
    against: str = "strtree",
) -> None:
    """The ``kind`` server against the ``against`` one: same answers, and the ratios
    (above 1: ``kind`` is faster)."""
    report[f"{kind}_same_answers_as_{against}"] = answers[kind] == answers[against]
    # The stores' R-tree/GiST boxes are float32: a plot whose bounds lie within that
    # rounding (under a metre) of the viewport's edge may be in one answer only.
    report[f"{kind}_boxes_differing_from_{against}"] = {
        size: sum(a != b for a, b in zip(answers[kind][size], answers[against][size]))
        for size in paths
    }
    ratios = report[f"{kind}_vs_{against}"] = {}
    for size in paths:
        i, f = report[kind][size], report[against][size]
        ratios[size] = {
            "p50": round(f["p50_ms"] / i["p50_ms"], 2),
            "p99": round(f["p99_ms"] / i["p99_ms"], 2),
            "rps": round(i["rps"] / f["rps"], 2),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="synthetic plots")
    parser.add_argument("--db", help="store (GeoPackage path or PostGIS URL); built if missing")
    parser.add_argument(
        "--box", type=float, nargs="+", default=[BOX_M], help="viewport sides, metres"
    )
    parser.add_argument("--query", default=QUERY, help="filters after the bbox")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="load time per server, size and round"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds of load, the servers taking turns"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--boxes", type=int, default=40, help="distinct bbox queries")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out" / "api")
    parser.add_argument("--only", choices=("indexed", "strtree"), help="run one server")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        help="processes of the indexed server (`zoneplan serve --workers`), one run per count",
    )
    parser.add_argument(
        "--strtree-workers",
        type=int,
        help="processes of the strtree server (default: the most of --workers)",
    )
    parser.add_argument(
        "--client",
        choices=("python", "wrk"),
        default="python",
        help="load generator: Python threads, or wrk (C, one thread; Debian's package)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (with its .venv; e.g. a detached worktree of main) whose "
        "indexed servers run beside these with the same --workers, taking turns (base_*)",
    )
    parser.add_argument("--threads", type=int, default=8, help="threads per zoneplan serve process")
    parser.add_argument("--serve-strtree", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_strtree:
        serve_strtree(args.serve_strtree, args.port, args.workers[0])
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "n": args.n,
        "clients": args.clients,
        "seconds": args.seconds,
        "query": f"/api/plots?bbox=<box>&{args.query}",
        "boxes_m": args.box,
        "boxes": args.boxes,
        "cpus": os.cpu_count(),
        "client": args.client,
        "load_average_before": os.getloadavg(),
    }
    db = store_location(args, report)
    report["store"] = db.split("@")[-1]
    paths = {
        f"{size:g}m": [f"/api/plots?bbox={b}&{args.query}" for b in boxes(args.boxes, args.n, size)]
        for size in args.box
    }
    global BASELINE, THREADS
    BASELINE, THREADS = args.baseline, args.threads
    runs = []
    for w in [] if args.only == "strtree" else args.workers:
        runs += [(indexed(w), w)] + ([(f"base_{indexed(w)}", w)] if args.baseline else [])
    most = max(args.workers) if args.strtree_workers is None else args.strtree_workers
    runs += [] if args.only == "indexed" else [("strtree", most)]
    results, answers = run_all(runs, db, paths, args)
    report.update(results)
    report["load_average_after"] = os.getloadavg()
    if args.baseline:
        report["baseline"] = str(args.baseline)
        for w in [] if args.only == "strtree" else args.workers:
            compare(report, answers, indexed(w), paths, f"base_{indexed(w)}")
    if "strtree" in answers:
        report["strtree_workers"] = most
        for kind, _ in runs[:-1]:
            compare(report, answers, kind, paths)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
