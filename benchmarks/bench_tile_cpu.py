"""bench_tile_cpu: the PostgreSQL server's CPU per plots tile, this checkout's SQL against another's.

Wall times of a tile cut on this shared 2-core machine swing 2-3x with the load average;
the CPU the database backend spends on the tile's query does not. Each checkout's code
(in a worker process with that checkout's venv) cuts the same tiles as ``bench_overview``
(z12..z16 over a 12 km box of the synthetic grid) once and hands back the ``ST_AsMVT``
query it sent, parameters bound (replayed as text: a checkout fetching the tile in binary
saves the server's hex encoding of it, which this leaves out). The two sets of queries then run in turns, ``--rounds``
times, each on a connection of its own with the tile's transaction settings (no JIT, no
parallel workers); the backends' user + system CPU is read from ``/proc`` (so the server
must run on this machine), with wall ms for reference. Prints JSON per zoom: CPU ms per
tile, the ratio, wall p50, the load averages.

Not part of the test suite:

    .venv/bin/python benchmarks/bench_tile_cpu.py --db postgresql://…/DB --baseline-code /work/main [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Run in a checkout: cut the tiles named on argv[2] (JSON) with the store's own code and
#: print each tile's ST_AsMVT query with its parameters bound, one JSON line per tile.
WORKER = """
import json, sys
import psycopg
from geo.store import open_store
from geo.tiles import Tile
store = open_store(sys.argv[1])
sent = {}
execute = psycopg.Cursor.execute
def capture(self, query, params=None, **kw):
    text = query.as_string(self.connection) if hasattr(query, "as_string") else str(query)
    if "ST_AsMVT" in text:
        sent["sql"] = psycopg.ClientCursor(self.connection).mogrify(query, params)
    return execute(self, query, params, **kw)
psycopg.Cursor.execute = capture
for z, x, y in json.loads(sys.argv[2]):
    store.vector_tile("plots", Tile(z, x, y), properties=("status", "area_ha"))
    print(json.dumps({"z": z, "sql": sent.pop("sql")}), flush=True)
"""
SETTINGS = ("SET jit = off", "SET max_parallel_workers_per_gather = 0")


def queries(code: Path, db: str, tiles: list[tuple[int, int, int]]) -> list[dict]:
    """The tile queries ``code``'s checkout sends for ``tiles``."""
    out = subprocess.run(
        [str(code / ".venv" / "bin" / "python"), "-c", WORKER, db, json.dumps(tiles)],
        cwd=code,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def backend_cpu(pid: int) -> float:
    """Seconds of user + system CPU the process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    import psycopg

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_overview import BOX_M
    from bench_tiles import tile_range
    from synth import Grid

    from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="synthetic plots in the store")
    parser.add_argument("--db", required=True, help="a PostGIS store with its overview built")
    parser.add_argument("--baseline-code", required=True, help="the checkout to compare with")
    parser.add_argument("--tiles", type=int, default=20, help="tiles per zoom")
    parser.add_argument("--rounds", type=int, default=10, help="times each query runs")
    args = parser.parse_args(argv)
    x0, y0, x1, y1 = Grid.of(args.n).bounds
    cx, cy = x0 + (x1 - x0) * 0.75, y0 + (y1 - y0) * 0.75  # bench_overview's box
    box = transformer(WORKING_EPSG, WGS84_EPSG).transform_bounds(
        cx - BOX_M / 2, cy - BOX_M / 2, cx + BOX_M / 2, cy + BOX_M / 2
    )
    tiles = [t for z in range(12, 17) for t in tile_range(z, box, args.tiles)]
    sent = {
        "this": queries(ROOT, args.db, tiles),
        "baseline": queries(Path(args.baseline_code), args.db, tiles),
    }
    conns = {}
    for side in sent:
        conn = psycopg.connect(args.db, autocommit=True)
        for setting in SETTINGS:
            conn.execute(setting)
        conns[side] = (conn, conn.execute("SELECT pg_backend_pid()").fetchone()[0])
    report: dict = {"load_average_before": os.getloadavg(), "zooms": {}}
    for z in range(12, 17):
        mine = {side: [q["sql"] for q in qs if q["z"] == z] for side, qs in sent.items()}
        cpu = dict.fromkeys(sent, 0.0)
        wall: dict[str, list[float]] = {side: [] for side in sent}
        for turn in range(args.rounds):
            for i in range(len(mine["this"])):
                order = list(sent) if (i + turn) % 2 == 0 else list(reversed(sent))
                for side in order:
                    conn, pid = conns[side]
                    used, t = backend_cpu(pid), time.perf_counter()
                    conn.execute(mine[side][i]).fetchone()
                    wall[side].append((time.perf_counter() - t) * 1000)
                    cpu[side] += backend_cpu(pid) - used
        cuts = len(wall["this"])
        row = {
            side: {
                "cpu_ms_per_tile": round(cpu[side] / cuts * 1000, 2),
                "wall_p50_ms": round(statistics.median(wall[side]), 2),
            }
            for side in sent
        }
        row["cuts"] = cuts
        row["cpu_ratio"] = round(cpu["baseline"] / cpu["this"], 2) if cpu["this"] else None
        report["zooms"][z] = row
        print(f"  z{z}: {json.dumps(row)}", file=sys.stderr, flush=True)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
