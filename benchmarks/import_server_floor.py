"""import_server_floor: the PostgreSQL server's CPU for each statement of a bulk import, by part.

``zoneplan import`` of n plots into a PostGIS store runs, inside one transaction on one
backend process, a binary COPY of the rows (PostgreSQL computing the derived tile columns
of each row as it stores it), the builds of the secondary indexes it dropped, an ANALYZE,
and the COPY of the overview's blocks. PostgreSQL 15 runs a transaction's statements on
that one process (no parallel COPY or GiST build), so their CPU is a floor under the
import's wall time whatever the client does. This replays those statements with the rows
of a store the command itself filled (read back with ``COPY ... TO STDOUT``, so the client
only hands over bytes) and reads the backend's user + system CPU from ``/proc`` around
each (the server must run on this machine). The plots COPY is also replayed into tables
holding the plain columns only and each derived column alone, to price each one. Every
replay is rolled back: the store is left as it was.

Prints JSON: CPU seconds per part (median of ``--rounds``), their sum, and the wall time
50,000 rows/s would allow for the store's plots. Not part of the test suite:

    .venv/bin/python benchmarks/import_server_floor.py --db postgresql://…/DB [--rounds 3]

The store must hold the plots of ``zoneplan import`` (e.g. ``bench_io.py --import-only --pg
URL`` leaves its last import there).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_tile_cpu import backend_cpu  # noqa: E402

from geo.layers import get_layer  # noqa: E402
from geo.store.pg_copy import analyse, secondary_indexes  # noqa: E402
from geo.store.pg_derived import MERCATOR, OUTPUT_ONLY, READY, SIZE, TILE_ID  # noqa: E402

BLOCKS = "zoneplan_plot_overview"
BLOCK_COLUMNS = ("level", "cx", "cy", "status", "plots", "geom")
DERIVED = (MERCATOR, TILE_ID, SIZE, READY)


class Rollback(Exception):
    """Ends a replay's transaction."""


def rows_of(conn: psycopg.Connection, table: str, columns: list[str]) -> bytes:
    """``columns`` of every row of ``table`` as binary COPY data."""
    out = bytearray()
    query = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT BINARY)").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
    )
    with conn.cursor() as cur, cur.copy(query) as copy:
        for block in copy:
            out += block
    return bytes(out)


def copy_in(conn: psycopg.Connection, table: str, columns: list[str], data: bytes) -> None:
    query = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(query) as copy:
        copy.write(data)


def timed(pid: int, spent: dict[str, list[float]], part: str, run: Callable[[], object]) -> None:
    """Run ``run`` and add the backend's CPU seconds for it to ``spent[part]``."""
    before = backend_cpu(pid)
    run()
    spent.setdefault(part, []).append(backend_cpu(pid) - before)


def replay_import(
    conn: psycopg.Connection, plots: bytes, blocks: bytes, columns: list[str]
) -> dict:
    """The import's statements on emptied plots and blocks tables, rolled back: CPU per part."""
    pid, spent = conn.info.backend_pid, {}
    try:
        with conn.transaction():
            conn.execute("SET LOCAL jit = off")
            indexes = secondary_indexes(conn, "plots")
            # emptied as new tables (rolled back with the rest): no dead rows to step over
            conn.execute(f"TRUNCATE {BLOCKS}, plots")
            for name, _ in indexes:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
            timed(pid, spent, "plots COPY", lambda: copy_in(conn, "plots", columns, plots))
            conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for name, definition in indexes:
                timed(pid, spent, f"index {name}", lambda d=definition: conn.execute(d))
            timed(pid, spent, "ANALYZE (what the import runs)", lambda: analyse(conn, "plots"))
            every = "reference: ANALYZE of every column (not summed)"
            timed(pid, spent, every, lambda: conn.execute("ANALYZE plots"))
            timed(
                pid, spent, "blocks COPY", lambda: copy_in(conn, BLOCKS, [*BLOCK_COLUMNS], blocks)
            )
            raise Rollback
    except Rollback:
        pass
    return spent


def replay_derived(conn: psycopg.Connection, plots: bytes, columns: list[str]) -> dict:
    """The plots COPY into new tables with no derived column, then with each alone (no
    index but a primary key, as the load keeps it), rolled back: CPU per table."""
    pid, spent = conn.info.backend_pid, {}
    try:
        with conn.transaction():
            conn.execute("SET LOCAL jit = off")
            for keep in (None, *DERIVED):
                name = f"floor_{keep or 'plain'}"
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {} (LIKE plots INCLUDING GENERATED INCLUDING IDENTITY)"
                    ).format(sql.Identifier(name))
                )
                for other in DERIVED:
                    if other != keep:
                        conn.execute(
                            sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(
                                sql.Identifier(name), sql.Identifier(other)
                            )
                        )
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (fid)").format(sql.Identifier(name))
                )
                timed(
                    pid,
                    spent,
                    f"COPY with {keep or 'no derived column'}",
                    lambda n=name: copy_in(conn, n, columns, plots),
                )
            raise Rollback
    except Rollback:
        pass
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a PostGIS store holding imported plots")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    columns = [f.name for f in get_layer("plots").fields if f.name != "fid"] + ["geom"]
    with psycopg.connect(args.db) as conn:
        n = conn.execute("SELECT count(*) FROM plots").fetchone()[0]
        plots = rows_of(conn, "plots", columns)
        blocks = rows_of(conn, BLOCKS, [*BLOCK_COLUMNS])
        conn.commit()
        rounds: dict[str, list[float]] = {}
        loads = []
        for _ in range(args.rounds):
            loads.append(round(os.getloadavg()[0], 2))
            for spent in (
                replay_import(conn, plots, blocks, columns),
                replay_derived(conn, plots, columns),
            ):
                for part, cpu in spent.items():
                    rounds.setdefault(part, []).append(sum(cpu))
    median = {part: round(statistics.median(cpu), 3) for part, cpu in rounds.items()}
    import_parts = [p for p in median if not p.startswith(("COPY with", "reference"))]
    plain = median["COPY with no derived column"]
    report = {
        "plots": n,
        "rounds": args.rounds,
        "load_average_before_each": loads,
        "cpu_s_median": median,
        "import_statements_cpu_s": round(sum(median[p] for p in import_parts), 3),
        "derived_columns_cpu_s": {d: round(median[f"COPY with {d}"] - plain, 3) for d in DERIVED},
        "not_analysed": list(OUTPUT_ONLY),
        "wall_s_allowed_at_50000_rows_per_s": round(n / 50_000, 2),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
