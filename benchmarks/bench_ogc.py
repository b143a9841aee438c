"""bench_ogc: OGC API - Features items requests (bbox + attribute filter, limit 100) against
pygeoapi serving the same GeoPackage, over loopback HTTP, in the same run.

Both servers run under waitress with 8 threads, one after the other, each warmed up first:

- ``zoneplan``: ``zoneplan serve`` (``/ogc``: the GeoPackage R-tree answers the bbox, the
  count is cached per layer revision and query);
- ``pygeoapi``: pygeoapi's Flask app with its SQLiteGPKG provider over the same file
  (pygeoapi is installed in a separate virtualenv for this benchmark only)::

      python3 -m venv /tmp/pygeoapi-venv
      /tmp/pygeoapi-venv/bin/pip install pygeoapi waitress
      apt-get install libsqlite3-mod-spatialite     # pygeoapi's GeoPackage provider needs it

4 client threads with keep-alive connections send the same sequence of requests
(``bbox`` = random 1.5 km boxes over the synthetic grid given in the storage CRS with
``bbox-crs``, ``status=available``, ``limit=100``, answers in CRS84) for a fixed time; the script first checks that both servers return the same
features for every box (whole answers) and prints p50/p99 latency, requests/s and the ratios. Anonymous
requests on both: zoneplan's access policy also runs on every request. Not part of the
test suite.

    .venv/bin/python benchmarks/bench_ogc.py --n 100000 --seconds 20 --pygeoapi /tmp/pygeoapi-venv
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
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_api import BOX_M, free_port, load  # noqa: E402
from synth import HOLE, Grid  # noqa: E402
from synth import build as build_store  # noqa: E402

UTM = "http://www.opengis.net/def/crs/EPSG/0/32643"
QUERY = f"bbox-crs={UTM}&status=available&limit=100"


def boxes(k: int, n: int, seed: int = 3) -> list[str]:
    """``k`` random boxes of BOX_M metres over the synthetic grid (off the sample zone), in
    the storage CRS (so both servers test the same rectangle, with no reprojection)."""
    x0, y0, x1, y1 = Grid.of(n).bounds
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < k:
        x, y = rng.uniform(x0, x1 - BOX_M), rng.uniform(y0, y1 - BOX_M)
        if x < HOLE[2] and x + BOX_M > HOLE[0] and y < HOLE[3] and y + BOX_M > HOLE[1]:
            continue
        out.append(f"{x:.1f},{y:.1f},{x + BOX_M:.1f},{y + BOX_M:.1f}")
    return out


PYGEOAPI_CONFIG = """\
server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  languages: [en-US]
  limits: {{default_items: 100, max_items: 10000}}
  map: {{url: 'https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png', attribution: OSM}}
logging: {{level: ERROR}}
metadata:
  identification:
    title: zoneplan benchmark
    description: the same GeoPackage
    keywords: [plots]
    keywords_type: theme
    terms_of_service: https://example.org
    url: https://example.org
  license: {{name: MIT, url: https://example.org}}
  provider: {{name: bench, url: https://example.org}}
  contact: {{name: bench, position: bench, address: x, city: x, stateorprovince: x,
            postalcode: x, country: x, phone: x, fax: x, email: x@example.org,
            url: https://example.org, hours: x, instructions: x, role: pointOfContact}}
resources:
  plots:
    type: collection
    title: Plots
    description: Plots
    keywords: [plots]
    extents:
      spatial:
        bbox: [76.0, 42.0, 78.0, 44.5]
        crs: http://www.opengis.net/def/crs/OGC/1.3/CRS84
    providers:
      - type: feature
        name: SQLiteGPKG
        data: {db}
        id_field: plot_id
        table: plots
        storage_crs: http://www.opengis.net/def/crs/EPSG/0/32643
        crs:
          - http://www.opengis.net/def/crs/OGC/1.3/CRS84
          - http://www.opengis.net/def/crs/EPSG/0/32643
"""


def wait_for(proc: subprocess.Popen, port: int, kind: str) -> None:
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{kind} did not start: {proc.stderr.read().decode()[-2000:]}")


def start(kind: str, db: str, venv: Path, workdir: Path) -> tuple[subprocess.Popen, int, str]:
    """Start one server; returns it, its port and its items path prefix."""
    port = free_port()
    if kind == "zoneplan":
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
        env = {**os.environ, "ZONEPLAN_SECRET_KEY": "bench"}
        prefix = "/ogc/collections/plots/items"
    else:
        config = workdir / "pygeoapi.yml"
        config.write_text(PYGEOAPI_CONFIG.format(port=port, db=db), encoding="utf-8")
        openapi = workdir / "pygeoapi-openapi.yml"
        env = {**os.environ, "PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
        subprocess.run(
            [
                str(venv / "bin/pygeoapi"),
                "openapi",
                "generate",
                str(config),
                "--output-file",
                str(openapi),
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        cmd = [
            str(venv / "bin/waitress-serve"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            "8",
            "pygeoapi.flask_app:APP",
        ]
        prefix = "/collections/plots/items"
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wait_for(proc, port, kind)
    return proc, port, prefix


def fetch(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path, headers={"Accept": "application/geo+json"})
    response = conn.getresponse()
    return response.status, response.read()


def run(
    kind: str, db: str, venv: Path, workdir: Path, bboxes: list[str], clients: int, seconds: float
) -> tuple[dict[str, Any], list[list[str]]]:
    proc, port, prefix = start(kind, db, venv, workdir)
    paths = [f"{prefix}?bbox={b}&{QUERY}" for b in bboxes]
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        answers = []
        for path in paths:  # warm-up: every box's whole answer once, to compare
            status, body = fetch(conn, path.replace("limit=100", "limit=10000"))
            if status != 200:
                raise RuntimeError(f"{kind}: {path} -> {status} {body[:300]!r}")
            answers.append(sorted(str(f["id"]) for f in json.loads(body)["features"]))
        conn.close()
        result = load(port, paths, clients, seconds)
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
    parser.add_argument(
        "--pygeoapi",
        type=Path,
        default=Path("/tmp/pygeoapi-venv"),
        help="virtualenv with pygeoapi and waitress",
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out" / "ogc")
    parser.add_argument("--db", help="zoneplan's store (GeoPackage or PostGIS URL)")
    parser.add_argument("--gpkg", type=Path, help="the same data as a GeoPackage, for pygeoapi")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    from geo.store import store_exists

    gpkg = (args.gpkg or args.workdir / f"plots_{args.n}.gpkg").resolve()
    db = args.db or str(gpkg)
    report: dict[str, Any] = {
        "n": args.n,
        "clients": args.clients,
        "seconds": args.seconds,
        "query": f"items?bbox=<{BOX_M:g} m box>&{QUERY}",
        "boxes": args.boxes,
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "zoneplan_store": db.split("@")[-1],
    }
    for location, key in ((str(gpkg), "build_gpkg"), (db, "build")):
        if not store_exists(location):
            report[key] = build_store(location, args.n, ROOT / "benchmarks" / "out" / "synth")
    bboxes = boxes(args.boxes, args.n)
    answers: dict[str, list] = {}
    for kind in ("zoneplan", "pygeoapi"):
        print(f"running {kind} ...", file=sys.stderr)
        report[kind], answers[kind] = run(
            kind,
            db if kind == "zoneplan" else str(gpkg),
            args.pygeoapi,
            args.workdir,
            bboxes,
            args.clients,
            args.seconds,
        )
        print(json.dumps(report[kind]), file=sys.stderr)
    # both test the exact geometry against the box
    report["same_features"] = answers["zoneplan"] == answers["pygeoapi"]
    report["features_only_in"] = {
        "zoneplan": sum(
            len(set(z) - set(p)) for z, p in zip(answers["zoneplan"], answers["pygeoapi"])
        ),
        "pygeoapi": sum(
            len(set(p) - set(z)) for z, p in zip(answers["zoneplan"], answers["pygeoapi"])
        ),
    }
    report["load_average_after"] = os.getloadavg()
    z, p = report["zoneplan"], report["pygeoapi"]
    report["speedup"] = {
        "p50": round(p["p50_ms"] / z["p50_ms"], 1),
        "p99": round(p["p99_ms"] / z["p99_ms"], 1),
        "rps": round(z["rps"] / p["rps"], 1),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
