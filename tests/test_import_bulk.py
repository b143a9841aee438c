"""Bulk imports on both backends: rows checked once by the plan and inserted as checked,
PostGIS binary COPY with its index rebuild, what a bulk write keeps (indexes, revisions)."""

from __future__ import annotations

import sqlite3

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely

from geo.io.imports import apply_import, plan_import
from geo.layers import get_layer
from geo.store import Invalid, create_store, overview_sql, pg_copy
from geo.store.checks import CheckedRows, check_rows

E, N = 650_000.0, 4_799_000.0


def grid(n: int, prefix: str = "G", x0: float = 0.0) -> gpd.GeoDataFrame:
    """``n`` 20 m plots in a row of 30 m cells, east of the zone origin."""
    xs = E + x0 + 30.0 * np.arange(n)
    return gpd.GeoDataFrame(
        {
            "plot_id": [f"{prefix}-{i}" for i in range(n)],
            "status": ["available"] * n,
            "cadastre": [f"20-311-{i}" for i in range(n)],
            "rail_need": [i % 2 == 0 for i in range(n)],
        },
        geometry=shapely.box(xs, N, xs + 20.0, N + 20.0),
        crs=32643,
    )


@pytest.fixture
def store(empty_location):
    store = create_store(empty_location)
    yield store
    store.close()


def test_a_plan_hands_its_checked_rows_to_the_store(store):
    frame = grid(30)
    plan = plan_import(store, "plots", frame)
    assert plan.ok and isinstance(plan.rows, CheckedRows) and len(plan.rows) == 30
    before = store.revision(["plots"])
    assert sorted(apply_import(store, plan)) == sorted(frame["plot_id"])
    back = store.read("plots").set_index("plot_id").loc[frame["plot_id"]]
    # the computed field is derived as the store's own insert derives it
    assert back["area_ha"].tolist() == [0.04] * 30
    assert back["version"].tolist() == [1] * 30
    assert store.revision(["plots"]) != before
    # a second import of some new and some known ids inserts only the new ones, as checked
    more = grid(40)
    more.loc[:29, "status"] = "reserved"
    again = plan_import(store, "plots", more)
    assert again.ok and again.adds == 10 and len(again.updates) == 30
    apply_import(store, again)
    assert store.count("plots", where={"status": "reserved"}) == 30
    assert store.count("plots") == 40


def test_the_store_refuses_checked_rows_with_problems_or_of_another_layer(store):
    frame = grid(3)
    frame.loc[1, "status"] = "sold"
    rows = check_rows(get_layer("plots"), frame)
    assert [p.field for p in rows.problems] == ["status"]
    with pytest.raises(Invalid):
        store.insert("plots", rows)
    with pytest.raises(ValueError):
        rows.take(np.array([0, 2]))
    clean = check_rows(get_layer("plots"), grid(2))
    with pytest.raises(Invalid):
        store.insert("zone", clean)
    assert store.count("plots") == 0
    # the public insert of a frame still checks it
    with pytest.raises(Invalid):
        store.insert("plots", frame)
    assert store.count("plots") == 0


def _index_definitions(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return sorted(
            r[0]
            for r in conn.execute(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'plots'::regclass"
            )
        )


def test_postgis_bulk_loads_rebuild_the_indexes_they_drop(new_schema, monkeypatch):
    url = new_schema()
    store = create_store(url)
    try:
        monkeypatch.setattr(pg_copy, "REBUILD_ROWS", 200)
        indexes = _index_definitions(url)
        assert len(indexes) >= 4  # key, geometry, search keys, primary key
        big = grid(500)
        store.insert("plots", big)  # the table held no rows: indexes dropped and rebuilt
        assert _index_definitions(url) == indexes
        with psycopg.connect(url) as conn:
            analysed = conn.execute(
                "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                "WHERE relid = 'plots'::regclass"
            ).fetchone()
        assert analysed == (True,)
        box = (E + 30 * 100 - 1, N - 1, E + 30 * 110 + 21, N + 21)
        assert store.count("plots", bbox=box) == 11
        assert store.find("plots", "cadastre", "20-311-42")["plot_id"].iloc[0] == "G-42"
        store.insert("plots", grid(250, "H", x0=30 * 600))  # smaller than the table: kept
        assert _index_definitions(url) == indexes
        with pytest.raises(Exception, match="already"):
            store.insert("plots", grid(300, "G"))  # duplicates refused, nothing written
        assert store.count("plots") == 750
    finally:
        store.close()


def _big_plots(n: int, prefix: str, x0: float, y0: float = 0.0) -> gpd.GeoDataFrame:
    """``n`` 120 m plots in a row: drawn alone at every overview level with an R-tree."""
    xs = E + x0 + 150.0 * np.arange(n)
    return gpd.GeoDataFrame(
        {"plot_id": [f"{prefix}-{i}" for i in range(n)], "status": ["available"] * n},
        geometry=shapely.box(xs, N + y0, xs + 120.0, N + y0 + 120.0),
        crs=32643,
    )


def _big_rtrees(path) -> dict[int, list[int]]:
    """GeoPackage: each indexed level's R-tree of big plots, checked by SQLite."""
    with sqlite3.connect(path) as conn:
        out = {}
        for level in overview_sql.GPKG_INDEXED_LEVELS:
            name = overview_sql.gpkg_big_rtree(level)
            assert conn.execute("SELECT rtreecheck(?)", (name,)).fetchone() == ("ok",)
            out[level] = sorted(r[0] for r in conn.execute(f"SELECT id FROM {name}"))
        return out


def test_a_bulk_import_packs_the_big_plots_trees_with_the_entries_kept(tmp_path):
    path = tmp_path / "z.gpkg"
    store = create_store(str(path))
    try:
        # old plots far west (outside what the next import re-indexes: kept) and near
        first = pd.concat([_big_plots(6, "W", -9000.0), _big_plots(6, "A", 0.0)])
        apply_import(store, plan_import(store, "plots", first.reset_index(drop=True)))
        # many new plots, some beside the near ones (their cells are re-indexed), some east
        more = pd.concat([_big_plots(20, "B", 0.0, 150.0), _big_plots(20, "C", 9000.0)])
        apply_import(store, plan_import(store, "plots", more.reset_index(drop=True)))
        every = list(range(1, 53))  # the plots' fids: every one is big
        assert _big_rtrees(path) == {level: every for level in overview_sql.GPKG_INDEXED_LEVELS}
        box = (E - 9001, N - 1, E - 9000 + 150 * 3 - 1, N + 121)  # the first three of W
        with sqlite3.connect(path) as conn:
            found = conn.execute(
                f"SELECT id FROM {overview_sql.gpkg_big_rtree(12)} "
                "WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?",
                (box[2], box[0], box[3], box[1]),
            ).fetchall()
        assert sorted(r[0] for r in found) == [1, 2, 3]
        store.build_overview()  # a rebuild from scratch holds the same entries
        assert _big_rtrees(path)[12] == every
    finally:
        store.close()
