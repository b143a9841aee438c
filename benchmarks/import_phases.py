"""Where ``zoneplan import`` spends its time: wall and CPU seconds per phase, no profiler.

Runs the command in this process with timers wrapped around the functions of each phase
(start-up, read, plan and its checks, the write, the overview refresh and its parts) and
prints one line per phase to stderr; PostgreSQL statements over 0.15 s are printed as they
finish. ``PYTHONPATH=CHECKOUT`` times another checkout's code. Not part of CI.

    .venv/bin/python benchmarks/import_phases.py import plots FILE.gpkg --db STORE
"""

from __future__ import annotations

import functools
import os
import sys
import time
from typing import Any

T0, C0 = time.perf_counter(), time.process_time()
TIMES: list[tuple[str, float, float]] = []


def wrap(owner: Any, name: str, label: str) -> None:
    """Time every call of ``owner.name`` under ``label``."""
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t, c = time.perf_counter(), time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            TIMES.append((label, time.perf_counter() - t, time.process_time() - c))

    setattr(owner, name, timed)


def slow_statements() -> None:
    """Print PostgreSQL statements slower than 0.15 s."""
    import psycopg

    execute = psycopg.Connection.execute

    def timed(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return execute(self, query, *args, **kwargs)
        finally:
            if (spent := time.perf_counter() - t) > 0.15:
                text = query.as_string(self) if hasattr(query, "as_string") else str(query)
                print(f"  SQL {spent:6.2f}s {text[:110]}", file=sys.stderr)

    psycopg.Connection.execute = timed  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    import geo.io as gio
    import geo.io.imports as imports
    import geo.io.read as read
    import geo.store.checks as checks
    import zoneplan.cli as cli
    from geo import overview
    from geo.store import gpkg, overview_sql, postgis, rows

    TIMES.append(("start-up (imports)", time.perf_counter() - T0, time.process_time() - C0))
    for owner, name, label in [
        (read, "read_upload", "read"),
        (imports, "plan_import", "plan"),
        (checks, "coerce_attributes", "  typing + duplicates"),
        (checks, "check_geometries", "  geometry checks"),
        (imports, "_self_overlaps", "  overlaps in the input"),
        (imports, "_overlaps_with_store", "  overlaps with the store"),
        (imports, "write_import", "write"),
        (overview.MergeAhead, "__init__", "  overview merge inputs"),
        (gpkg, "encode_geometries", "  GeoPackage blobs"),
        (gpkg.GpkgSession, "_insert_many", "  GeoPackage INSERTs"),
        (gpkg, "add_entries", "  GeoPackage R-tree"),
        (postgis.PostgisSession, "_write_rows", "  PostGIS COPY + indexes"),
        (rows.RowSession, "finish", "finish (overview, audit)"),
        (overview, "blocks", "  overview blocks"),
        (overview_sql.GpkgOverview, "blocks_in", "  overview stored blocks"),
        (overview_sql.PgOverview, "blocks_in", "  overview stored blocks"),
        (overview_sql.GpkgOverview, "small_plots", "  overview re-read"),
        (overview_sql.PgOverview, "small_plots", "  overview re-read"),
        (overview_sql.GpkgOverview, "replace", "  overview replace"),
        (overview_sql.PgOverview, "replace", "  overview replace"),
    ]:
        wrap(owner, name, label)
    gio.read_upload, gio.plan_import = read.read_upload, imports.plan_import
    slow_statements()
    code = cli.main(argv)
    total: dict[str, list[float]] = {}
    for label, wall, cpu in TIMES:
        sums = total.setdefault(label, [0.0, 0.0])
        sums[0] += wall
        sums[1] += cpu
    for label, (wall, cpu) in total.items():
        print(f"{label:28s} wall {wall:7.2f}  cpu {cpu:7.2f}", file=sys.stderr)
    print(
        f"{'total':28s} wall {time.perf_counter() - T0:7.2f}  cpu {time.process_time() - C0:7.2f}"
        f"  load {os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
