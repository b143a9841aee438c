"""Benchmark the map's plot search (``/api/search``, :func:`planner.search.find_plots`) on
synthetic stores: the indexed prefix search against the scan it replaced, on both backends.

Baselines, measured in the same run on the same store:

- ``scan``: what ``find_plots`` did before (every plot the role may see read into a frame, then
  matched in pandas) — what the map's search box cost until now;
- ``no index``: the same prefix query in the database with the search index switched off
  (a sequential scan in SQL: what a GIS user's ``ILIKE 'x%'`` filter costs).

Run by hand (a million plots take minutes to build; the stores are kept)::

    .venv/bin/python benchmarks/bench_search.py --n 1000000 \\
        --gpkg /work/bench/store/m1.gpkg --pg postgresql://postgres@127.0.0.1:5432/zp_bench

A store that does not exist yet is built with ``benchmarks/synth.py`` (zoneplan init and
import). Results in RESULTS_search.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth  # noqa: E402

from geo.layers import LAYERS  # noqa: E402
from geo.store import Prefix, Store, open_store, store_exists  # noqa: E402
from planner.search import SearchQuery, find_plots, searchable_fields  # noqa: E402
from planner.visibility import plot_view  # noqa: E402

#: (label, text): an exact id, an id prefix (100 ids), a cadastral number (and its 10
#: longer ones), nothing.
QUERIES = [
    ("exact id", "S-0500000"),
    ("id prefix", "s-05000"),
    ("cadastral number", "20-311-77777"),
    ("no match", "zz-9"),
]


def _norm(values: pd.Series) -> pd.Series:
    return values.fillna("").astype(str).str.casefold().str.replace(r"\s+", "", regex=True)


def scan_find(store: Store, text: str, role: str | None, limit: int = 10) -> list[str]:
    """The baseline: ``find_plots`` as it was before the search index (read every plot the
    role may see, match in pandas, rank exact first, then by field, then by id)."""
    view = plot_view(role, None)
    needle = "".join(text.split()).casefold()
    fields = searchable_fields(view)
    frame = store.read("plots", where=view.where())
    field = np.full(len(frame), "", dtype=object)
    exact = np.zeros(len(frame), dtype=bool)
    for name in reversed(fields):
        norm = _norm(frame[name])
        hit = norm.str.contains(needle, regex=False).to_numpy()
        field[hit] = name
        exact[hit] = (norm == needle).to_numpy()[hit]
    found = frame.assign(_field=field, _exact=exact)
    found = found[found["_field"] != ""]
    order = {name: i for i, name in enumerate(fields)}
    found = found.assign(_rank=found["_field"].map(order)).sort_values(
        ["_exact", "_rank", "plot_id"], ascending=[False, True, True], kind="stable"
    )
    return [str(p) for p in found.head(limit)["plot_id"]]


def no_index_find(store: Store, text: str, role: str | None, limit: int = 10) -> list[str]:
    """The prefix query of :meth:`Store.find` on the plot id, its search index disabled."""
    view = plot_view(role, None)
    where = {**(view.where() or {}), "plot_id": Prefix(text)}
    lyr = LAYERS["plots"]
    if hasattr(store, "url"):
        from geo.store.pg_schema import search_key
        from geo.store.postgis import _select

        query, params = _select(lyr, sql.SQL("t.plot_id"), None, where, epsg=store.epsg)
        query += sql.SQL(" ORDER BY {}, t.plot_id LIMIT %s").format(
            search_key(sql.SQL("t.plot_id"))
        )
        with psycopg.connect(store.url) as conn, conn.transaction():
            conn.execute("SET LOCAL enable_indexscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
            return [r[0] for r in conn.execute(query, [*params, limit])]
    from geo.store.gpkg import _select, connect

    text_sql, params = _select(lyr, None, where, "t.plot_id")
    text_sql = text_sql.replace('FROM "plots" t', 'FROM "plots" t NOT INDEXED')
    text_sql += " ORDER BY lower(replace(t.plot_id, ' ', '')), t.plot_id LIMIT ?"
    with connect(store.path) as conn:  # type: ignore[attr-defined]
        return [r[0] for r in conn.execute(text_sql, [*params, limit])]


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    """Median wall time (ms) of ``repeat`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def bench(location: str, label: str, repeat: int, scans: int) -> list[dict[str, Any]]:
    t = time.perf_counter()
    store = open_store(location)  # adds the search indexes to a store made before them
    opened = time.perf_counter() - t
    print(f"{label}: opened in {opened:.1f} s, {store.count('plots'):,} plots", flush=True)
    rows = []
    for role in ("public", "planner"):
        for name, text in QUERIES:
            ms, hits = timed(
                lambda text=text, role=role: find_plots(
                    store, SearchQuery(q=text, limit=10), role=role
                ),
                repeat,
            )
            base_ms, base = None, None
            if scans and name in ("exact id", "cadastral number"):
                base_ms, base = timed(lambda text=text, role=role: scan_find(store, text, role), 1)
            raw_ms, raw = timed(lambda text=text, role=role: no_index_find(store, text, role), 3)
            got = [h.plot_id for h in hits]
            row = {
                "backend": label,
                "role": role,
                "query": name,
                "text": text,
                "hits": len(got),
                "indexed_ms": round(ms, 1),
                "scan_ms": None if base_ms is None else round(base_ms, 1),
                "scan_over_indexed": None if base_ms is None else round(base_ms / ms, 1),
                "no_index_ms": round(raw_ms, 1),
                "no_index_over_indexed": round(raw_ms / ms, 1),
                "same_first_hit_as_scan": None if base is None else (got[:1] == base[:1]),
                "load_average": [round(v, 2) for v in os.getloadavg()],
            }
            if name == "id prefix":
                row["same_ids_as_no_index"] = sorted(got) == sorted(raw)
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="synthetic plots")
    parser.add_argument("--gpkg", help="GeoPackage store (built when missing)")
    parser.add_argument("--pg", help="PostGIS store URL (built when it holds no store)")
    parser.add_argument("--repeat", type=int, default=7, help="indexed searches per query")
    parser.add_argument("--scans", type=int, default=1, help="0: skip the scan baseline")
    parser.add_argument("--folder", type=Path, default=Path("benchmarks/out/synth"))
    args = parser.parse_args()
    rows = []
    for label, location in (("GeoPackage", args.gpkg), ("PostGIS", args.pg)):
        if not location:
            continue
        if not store_exists(location):
            print(json.dumps(synth.build(location, args.n, args.folder)), flush=True)
        rows += bench(location, label, args.repeat, args.scans)
    print(pd.DataFrame(rows).drop(columns=["load_average", "text"]).to_string(index=False))


if __name__ == "__main__":
    main()
