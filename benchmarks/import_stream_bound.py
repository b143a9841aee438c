"""What a streamed PostGIS plots import could reach: a prototype timed against the CLI.

``zoneplan import`` reads and checks the whole file before the server gets a row
(benchmarks/RESULTS_io.md: the server idles ~1.3 s per 200k plots, ~4.8 s per 1M). This
prototype streams instead, with the product's own parts: the file read in Arrow batches
(pyogrio), each batch typed and checked (``check_rows``, the import's envelope) and encoded
(``copy_binary_blocks``) while a writer thread COPYs the previous one inside the
transaction, under ``indexes_rebuilt`` (indexes dropped, built again, ANALYZE), then the
input's overlaps (``_self_overlaps``) while the server builds the indexes, then the
overview's blocks (``refresh_added``), and a rollback. It leaves out what a real streamed
import would add: the text scan of ``read_upload``, the store comparisons (a first import
has none to make), the audit rows, revisions and caches. So its time is a lower bound.

Each round makes a fresh database from ``--template`` (a store made by ``zoneplan init``
plus the expansion area; see bench_io), runs the prototype in a child process (start-up
included), then ``zoneplan import plots FILE`` on another fresh copy; prints both, the
ratio, and the prototype's timeline. Not part of CI:

    .venv/bin/python benchmarks/import_stream_bound.py --pg postgresql://postgres@127.0.0.1:5432 \
        --template zp_tpl --file synthetic_plots_200000.gpkg --rounds 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZONEPLAN = ROOT / ".venv" / "bin" / "zoneplan"
SCRATCH = "zp_stream_bound"


def stream(url: str, path: str, batch: int) -> dict:
    """The streamed import of ``path`` into ``url``, rolled back: seconds since start-up."""
    t0 = time.perf_counter()
    import queue
    import threading

    import geopandas as gpd
    import numpy as np
    import psycopg
    import pyogrio
    import shapely

    from geo import overview
    from geo.io.imports import _self_overlaps, import_envelope
    from geo.layers import get_layer
    from geo.store import open_store, pg_copy
    from geo.store.checks import check_rows, stored_rows
    from geo.store.overview_sql import PgOverview
    from geo.store.postgis import _db_value

    def now() -> float:
        return round(time.perf_counter() - t0, 2)

    lyr = get_layer("plots")
    store = open_store(url)
    epsg, (envelope, note) = store.epsg, import_envelope(store, "plots")
    store.close()
    n = pyogrio.read_info(path)["features"]
    conn = psycopg.connect(url)
    feed: queue.Queue = queue.Queue(maxsize=8)
    marks, whole, checked = {"start": now()}, {}, threading.Event()

    class Rollback(Exception):
        pass

    def writer() -> None:
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('zoneplan:plots'))")
                with pg_copy.indexes_rebuilt(conn, "plots", n):
                    with conn.cursor() as cur, cur.copy(feed.get()) as copy:
                        while (block := feed.get()) is not None:
                            copy.write(block)
                    marks["copy_end"] = now()
                marks["indexes_end"] = now()
                checked.wait()
                overview.refresh_added(PgOverview(conn, epsg), whole["status"], whole["geoms"])
                marks["overview_end"] = now()
                raise Rollback
        except Rollback:
            pass

    thread = threading.Thread(target=writer)
    thread.start()
    geoms, statuses, problems = [], [], 0
    with pyogrio.open_arrow(path, batch_size=batch, use_pyarrow=True) as (meta, reader):
        for part in reader:
            frame = part.to_pandas()
            shapes = shapely.from_wkb(frame.pop(meta["geometry_name"] or "wkb_geometry"))
            rows = check_rows(
                lyr,
                gpd.GeoDataFrame(frame, geometry=shapes, crs=epsg),
                epsg=epsg,
                envelope=envelope,
                envelope_note=note,
            )
            problems += len(rows.problems)
            typed, shapes = stored_rows(lyr, rows)
            typed["version"] = 1
            typed = typed[[c for c in lyr.names if c in typed.columns]]
            if not geoms:
                columns = ", ".join([*typed.columns, "geom"])
                feed.put(f"COPY plots ({columns}) FROM STDIN (FORMAT BINARY)")
                feed.put(memoryview(pg_copy.BINARY_HEADER))
                marks["first_batch"] = now()
            fields = [lyr.field(c) for c in typed.columns]
            encoded = list(pg_copy.copy_binary_blocks(fields, typed, shapes, epsg, _db_value))
            for block in encoded[1:-1]:  # the rows, without each batch's header and trailer
                feed.put(block)
            geoms.append(shapes)
            statuses.append(typed["status"].to_numpy(object))
    feed.put(memoryview(pg_copy.BINARY_TRAILER))
    feed.put(None)
    marks["read_end"] = now()
    whole["geoms"], whole["status"] = np.concatenate(geoms), np.concatenate(statuses)
    count = len(whole["geoms"])
    keys = gpd.GeoDataFrame(
        {"plot_id": np.arange(count).astype(str)}, geometry=whole["geoms"], crs=epsg
    )
    overlaps = _self_overlaps(keys, np.ones(count, dtype=bool), shapely.STRtree(whole["geoms"]))
    marks["checks_end"] = now()
    checked.set()
    thread.join()
    conn.close()
    marks["total"] = now()
    return {"rows": count, "problems": problems, "overlaps": len(overlaps), "marks": marks}


def fresh(pg: str, template: str) -> str:
    """A new database ``SCRATCH`` copied from ``template``; its URL."""
    import psycopg
    from psycopg import sql

    scratch, source = sql.Identifier(SCRATCH), sql.Identifier(template)
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(scratch))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(scratch, source))
    return f"{pg}/{SCRATCH}"


def timed(command: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return time.perf_counter() - t, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg", required=True, help="server URL without a database (the child: its database)"
    )
    parser.add_argument("--template", required=True, help="database: init + expansion area")
    parser.add_argument("--file", required=True, help="the plots file (GeoPackage)")
    parser.add_argument("--batch", type=int, default=25_000, help="rows per streamed batch")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(stream(args.pg, args.file, args.batch)))
        return 0
    for _ in range(args.rounds):
        url = fresh(args.pg, args.template)
        me = [sys.executable, __file__, "--child", "--pg", url, "--template", args.template]
        me += ["--file", args.file]
        wall_stream, out = timed([*me, "--batch", str(args.batch)])
        report = json.loads(out)
        url = fresh(args.pg, args.template)
        wall_cli, _ = timed([str(ZONEPLAN), "import", "plots", args.file, "--db", url])
        rows = report["rows"]
        print(
            json.dumps(
                {
                    "rows": rows,
                    "streamed_wall_s": round(wall_stream, 2),
                    "streamed_rows_per_s": round(rows / wall_stream),
                    "cli_wall_s": round(wall_cli, 2),
                    "cli_rows_per_s": round(rows / wall_cli),
                    "cli_over_streamed": round(wall_cli / wall_stream, 2),
                    "streamed_timeline_s": report["marks"],
                    "problems": report["problems"],
                    "overlaps": report["overlaps"],
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
