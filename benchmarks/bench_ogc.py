"""bench_ogc: OGC API - Features items requests (bbox + attribute filter, limit 100) against
pygeoapi on the same data, over loopback HTTP, in the same run.

Every server runs under waitress with 8 threads, anonymous, all at once, and is timed in
interleaved slices (``--rounds``; the order rotates each round) so that the background load
of a shared machine falls on each alike:

- ``zoneplan``: ``zoneplan serve --db STORE`` (``/ogc``; GeoPackage or PostGIS: the R-tree or
  GiST index answers the bbox, SQL the filter; ``numberMatched`` is a ``count(*)`` of the
  same query cached per layer revision, role view and query; the access policy runs on
  every request);
- ``pygeoapi-ogr``: pygeoapi's Flask app, ``OGR`` provider over the GeoPackage (GDAL's
  spatial filter uses the GeoPackage's R-tree; answers carry no ``numberMatched``);
- ``pygeoapi-sqlite``: its ``SQLiteGPKG`` provider over the GeoPackage (SpatiaLite
  ``Intersects`` on the GeoPackage view: no spatial index; no ``numberMatched``);
- ``pygeoapi-postgresql``: its ``PostgreSQL`` provider on zoneplan's PostGIS table (GiST
  ``ST_Intersects``; ``numberMatched`` is a full ``count()`` of the query on every request).

pygeoapi is installed in a virtualenv of its own, for this benchmark only, made from Debian's
python3 (its sqlite3 loads extensions; ``--system-site-packages`` gives the OGR provider
Debian's GDAL bindings)::

    apt-get install libsqlite3-mod-spatialite python3-gdal
    /usr/bin/python3 -m venv --system-site-packages VENV
    VENV/bin/pip install pygeoapi waitress psycopg2-binary geoalchemy2

Each server is warmed up in turn (its first request timed on its own), then answers every box
in full (``limit=10000``): the sets of feature ids are compared across servers, and each
answer's ``numberMatched`` (when it has one) against its feature count. Then, in each slice,
``--clients`` threads with keep-alive connections send the same sequence of requests (random
boxes of 1.5 km given in the storage CRS with ``bbox-crs``, ``status=available``,
``limit=100``, answers in CRS84), ``--seconds`` in all per server; then the same on ``--fresh``
boxes each server has never seen (zoneplan's cached counts do not help there: every request
pays its ``count(*)``).
p50/p99 latency, requests/s and the ratios against zoneplan are printed as JSON. Not part of
the test suite; million-plot runs by hand::

    .venv/bin/python benchmarks/bench_ogc.py --n 100000 --db STORE.gpkg --pygeoapi VENV
    .venv/bin/python benchmarks/bench_ogc.py --n 100000 --db postgresql://.../DB \\
        --pygeoapi VENV --baselines postgresql
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from synth import HOLE, Grid  # noqa: E402
from synth import build as build_store  # noqa: E402

BOX_M = 1500.0
UTM = "http://www.opengis.net/def/crs/EPSG/0/32643"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
QUERY = f"bbox-crs={UTM}&status=available&limit=100"
BASELINES = ("ogr", "sqlite", "postgresql")


def boxes(k: int, n: int, seed: int = 3, sample: bool = False) -> list[str]:
    """``k`` random boxes of BOX_M metres over the synthetic grid (off the sample zone), or
    over the sample zone alone when ``sample``; in the storage CRS (so every server tests the
    same rectangle, with no reprojection)."""
    x0, y0, x1, y1 = HOLE if sample else Grid.of(n).bounds
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < k:
        x, y = rng.uniform(x0, x1 - BOX_M), rng.uniform(y0, y1 - BOX_M)
        hole = x < HOLE[2] and x + BOX_M > HOLE[0] and y < HOLE[3] and y + BOX_M > HOLE[1]
        if hole and not sample:
            continue
        out.append(f"{x:.1f},{y:.1f},{x + BOX_M:.1f},{y + BOX_M:.1f}")
    return out


def provider(kind: str, gpkg: Path, pg: str | None) -> dict[str, Any]:
    """pygeoapi's provider block for ``kind`` (the plots layer, stored in EPSG:32643)."""
    common = {
        "type": "feature",
        "id_field": "plot_id",
        "storage_crs": UTM,
        "crs": [CRS84, UTM],
    }
    if kind == "ogr":
        return {
            **common,
            "name": "OGR",
            "data": {"source_type": "GPKG", "source": str(gpkg)},
            "layer": "plots",
        }
    if kind == "sqlite":
        return {**common, "name": "SQLiteGPKG", "data": str(gpkg), "table": "plots"}
    if pg is None:
        raise SystemExit("--baselines postgresql needs --db postgresql://...")
    from urllib.parse import urlsplit

    url = urlsplit(pg)
    return {
        **common,
        "name": "PostgreSQL",
        "data": {
            "host": url.hostname or "127.0.0.1",
            "port": url.port or 5432,
            "dbname": url.path.lstrip("/"),
            "user": url.username or "postgres",
            "password": url.password or "",
        },
        "table": "plots",
        "geom_field": "geom",
    }


def pygeoapi_config(port: int, block: dict[str, Any]) -> dict[str, Any]:
    """A minimal pygeoapi configuration serving one collection, ``plots``."""
    who = {"name": "bench", "url": "https://example.org"}
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "limits": {"default_items": 100, "max_items": 10000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "zoneplan benchmark",
                "description": "the same plots",
                "keywords": ["plots"],
                "keywords_type": "theme",
                "terms_of_service": "https://example.org",
                "url": "https://example.org",
            },
            "license": who,
            "provider": who,
            "contact": {**who, "email": "bench@example.org", "role": "pointOfContact"},
        },
        "resources": {
            "plots": {
                "type": "collection",
                "title": "Plots",
                "description": "Plots",
                "keywords": ["plots"],
                "extents": {"spatial": {"bbox": [76.0, 42.0, 78.0, 44.5], "crs": CRS84}},
                "providers": [block],
            }
        },
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, args: argparse.Namespace) -> tuple[subprocess.Popen, int, str]:
    """Start one server under waitress (8 threads); its process, port and items path."""
    port = free_port()
    env = {**os.environ, "ZONEPLAN_SECRET_KEY": "bench"}
    if kind == "zoneplan":
        cmd = [str(ROOT / ".venv/bin/zoneplan"), "serve", "--db", args.db]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--threads", "8"]
        prefix = "/ogc/collections/plots/items"
    else:
        name = kind.removeprefix("pygeoapi-")
        block = provider(name, args.gpkg, args.db if "://" in args.db else None)
        config = args.workdir / f"pygeoapi-{name}.yml"
        config.write_text(json.dumps(pygeoapi_config(port, block), indent=1), encoding="utf-8")
        openapi = args.workdir / f"pygeoapi-{name}-openapi.yml"
        env |= {"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
        generate = [str(args.pygeoapi / "bin/pygeoapi"), "openapi", "generate", str(config)]
        subprocess.run(
            [*generate, "--output-file", str(openapi)], env=env, check=True, capture_output=True
        )
        cmd = [str(args.pygeoapi / "bin/waitress-serve"), "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--threads", "8", "pygeoapi.flask_app:APP"]
        prefix = "/collections/plots/items"
    # a file, not a pipe nobody reads (that would stall a chatty server); kept to read later
    log = open(args.workdir / f"{kind}.log", "w+b")  # noqa: SIM115 (the server holds it)
    proc = subprocess.Popen(cmd, cwd=args.workdir, env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port, prefix
        except OSError:
            time.sleep(0.2)
    proc.kill()
    log.seek(0)
    raise RuntimeError(f"{kind} did not start: {log.read().decode()[-2000:]}")


def fetch(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path, headers={"Accept": "application/geo+json"})
    response = conn.getresponse()
    return response.status, response.read()


@dataclass
class Timings:
    """Latencies (seconds) and failed statuses of one server's timed requests."""

    latencies: list[float] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    wall: float = 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "requests": len(lat),
            "errors": len(self.errors),
            "error_statuses": sorted(set(self.errors)),
            "wall_s": round(self.wall, 1),
            "rps": round(len(lat) / self.wall, 2),
            "p50_ms": round(1000 * lat[len(lat) // 2], 1),
            "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
            "mean_ms": round(1000 * statistics.fmean(lat), 1),
        }


def load(port: int, lists: list[list[str]], seconds: float, into: Timings) -> None:
    """One client thread per list of paths, each cycling through its list, for ``seconds``
    (requests in flight then are finished); a request that fails (status, reset, timeout)
    counts as an error and its client reconnects."""
    stop = time.perf_counter() + seconds
    lock = threading.Lock()

    def worker(paths: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        i = 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                status, _body = fetch(conn, paths[i % len(paths)])
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            took = time.perf_counter() - t
            with lock:
                into.latencies.append(took)
                if status != 200:
                    into.errors.append(status)
            i += 1
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(paths,)) for paths in lists]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    into.wall += time.perf_counter() - t0


@dataclass
class Server:
    """One running server, warmed up, with its whole answers and its timings."""

    kind: str
    proc: subprocess.Popen
    port: int
    prefix: str
    facts: dict[str, Any]
    answers: list[list[str]]
    repeated: Timings = field(default_factory=Timings)
    fresh: Timings = field(default_factory=Timings)

    def paths(self, bboxes: list[str]) -> list[str]:
        return [f"{self.prefix}?bbox={b}&{QUERY}" for b in bboxes]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def prepare(kind: str, args: argparse.Namespace, bboxes: list[str]) -> Server:
    """Start ``kind``, time its first request, get every box's whole answer (to compare)
    and send each timed request once."""
    proc, port, prefix = start(kind, args)
    server = Server(kind, proc, port, prefix, {}, [])
    paths = server.paths(bboxes)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
        t = time.perf_counter()
        status, body = fetch(conn, paths[0])  # the first request: caches, connections
        first = time.perf_counter() - t
        if status != 200:
            raise RuntimeError(f"{kind}: {paths[0]} -> {status} {body[:300]!r}")
        page = json.loads(body)
        matched = []
        t = time.perf_counter()
        for path in paths:
            status, body = fetch(conn, path.replace("limit=100", "limit=10000"))
            if status != 200:
                raise RuntimeError(f"{kind}: {path} -> {status} {body[:300]!r}")
            doc = json.loads(body)
            server.answers.append(sorted(str(f["id"]) for f in doc["features"]))
            matched.append(doc.get("numberMatched"))
        whole = time.perf_counter() - t
        for path in paths:
            fetch(conn, path)
        conn.close()
    except BaseException:
        server.stop()
        raise
    server.facts = {
        "first_request_s": round(first, 2),
        "whole_answers_s": round(whole, 1),
        "features_median": statistics.median(len(a) for a in server.answers),
        "numberMatched_in_page": "numberMatched" in page,
        "numberMatched_equals_features": (
            None
            if any(m is None for m in matched)
            else all(m == len(a) for m, a in zip(matched, server.answers))
        ),
    }
    return server


def measure(
    servers: list[Server], args: argparse.Namespace, bboxes: list[str], fresh: list[str]
) -> list[tuple[float, float, float]]:
    """``--rounds`` rounds; in each, every server in turn (the order rotating) gets its
    slice of ``--seconds`` on the repeated boxes, then on fresh ones: the machine's
    background load falls on all of them alike. Returns the load average after each round."""
    rounds, clients = args.rounds, args.clients
    slice_s = args.seconds / rounds
    chunk = len(fresh) // (rounds * clients) if fresh else 0
    loads = []
    for r in range(rounds):
        order = servers[r % len(servers) :] + servers[: r % len(servers)]
        for server in order:
            paths = server.paths(bboxes)
            lists = [paths[k * len(paths) // clients :] + paths for k in range(clients)]
            load(server.port, lists, slice_s, server.repeated)
            if chunk:  # boxes no server has seen: disjoint per round and client
                new = server.paths(fresh)
                lists = [
                    new[(r * clients + k) * chunk : (r * clients + k + 1) * chunk]
                    for k in range(clients)
                ]
                load(server.port, lists, slice_s, server.fresh)
        loads.append(os.getloadavg())
        print(f"round {r + 1}/{rounds} done, load {loads[-1]}", file=sys.stderr)
    return loads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="synthetic plots")
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="load time per server and box kind"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument(
        "--rounds", type=int, default=6, help="slices the load time is cut into, interleaved"
    )
    parser.add_argument("--boxes", type=int, default=40, help="distinct bbox queries")
    parser.add_argument(
        "--fresh",
        type=int,
        default=3000,
        help="boxes for a second timed load, each new to the server (0: skip it)",
    )
    parser.add_argument("--pygeoapi", type=Path, help="virtualenv with pygeoapi and waitress")
    parser.add_argument(
        "--baselines",
        default="ogr,sqlite",
        help=f"pygeoapi providers to run, comma-separated, of {','.join(BASELINES)} "
        "(postgresql: on --db's PostGIS database); 'none' runs zoneplan alone",
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out" / "ogc")
    parser.add_argument(
        "--db", help="zoneplan's store (GeoPackage or PostGIS URL); built if missing"
    )
    parser.add_argument("--gpkg", type=Path, help="the same data as a GeoPackage, for pygeoapi")
    parser.add_argument(
        "--sample",
        action="store_true",
        help="boxes over the sample zone instead of the synthetic grid (a quick check of "
        "the script on a store made by `zoneplan init`; nothing is built)",
    )
    args = parser.parse_args(argv)
    baselines = [] if args.baselines == "none" else args.baselines.split(",")
    if unknown := set(baselines) - set(BASELINES):
        parser.error(f"--baselines: unknown {', '.join(sorted(unknown))}")
    if baselines and args.pygeoapi is None:
        parser.error("--pygeoapi VENV is needed unless --baselines none")
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    from geo.store import store_exists

    if args.gpkg is None:  # pygeoapi serves zoneplan's own GeoPackage when it is one
        pg = args.db and "://" in args.db
        args.gpkg = Path(args.db) if args.db and not pg else args.workdir / f"plots_{args.n}.gpkg"
    args.gpkg = args.gpkg.resolve()
    args.db = args.db or str(args.gpkg)
    report: dict[str, Any] = {
        "n": args.n,
        "clients": args.clients,
        "seconds": args.seconds,
        "query": f"items?bbox=<{BOX_M:g} m box>&{QUERY}",
        "boxes": args.boxes,
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "zoneplan_store": args.db.split("@")[-1],
    }
    needs_gpkg = {"ogr", "sqlite"} & set(baselines)
    if needs_gpkg:
        report["pygeoapi_gpkg"] = str(args.gpkg)
    for location, key in ((str(args.gpkg), "build_gpkg"), (args.db, "build")):
        if (location == args.db or needs_gpkg) and not store_exists(location):
            if args.sample:
                parser.error(f"--sample: no store at {location}")
            report[key] = build_store(location, args.n, ROOT / "benchmarks" / "out" / "synth")
    bboxes = boxes(args.boxes, args.n, sample=args.sample)
    fresh = boxes(args.fresh, args.n, seed=4, sample=args.sample)
    servers: list[Server] = []
    try:
        for kind in ["zoneplan", *(f"pygeoapi-{b}" for b in baselines)]:
            print(f"starting {kind} ...", file=sys.stderr)
            servers.append(prepare(kind, args, bboxes))
            print(json.dumps(servers[-1].facts), file=sys.stderr)
        report["load_average_start_of_timing"] = os.getloadavg()
        report["load_average_each_round"] = measure(servers, args, bboxes, fresh)
    finally:
        for server in servers:
            server.stop()
    answers = {s.kind: s.answers for s in servers}
    for server in servers:
        report[server.kind] = server.repeated.summary() | server.facts
        if fresh:
            report[server.kind]["fresh_boxes"] = server.fresh.summary()
    ours = answers["zoneplan"]
    report["same_features"] = {k: a == ours for k, a in answers.items() if k != "zoneplan"}
    report["features_only_in"] = {
        k: {
            "zoneplan": sum(len(set(z) - set(p)) for z, p in zip(ours, a)),
            k: sum(len(set(p) - set(z)) for z, p in zip(ours, a)),
        }
        for k, a in answers.items()
        if k != "zoneplan"
    }
    report["load_average_after"] = os.getloadavg()
    z = report["zoneplan"]

    def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float]:
        return {
            "p50": round(theirs["p50_ms"] / ours["p50_ms"], 1),
            "p99": round(theirs["p99_ms"] / ours["p99_ms"], 1),
            "rps": round(ours["rps"] / theirs["rps"], 1),
        }

    report["zoneplan_vs"] = {k: ratios(z, report[k]) for k in answers if k != "zoneplan"}
    if args.fresh:
        report["zoneplan_vs_fresh_boxes"] = {
            k: ratios(z["fresh_boxes"], report[k]["fresh_boxes"])
            for k in answers
            if k != "zoneplan"
        }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
