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
from geo.store import Invalid, create_store, overview_sql, pg_copy, pg_derived
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


def _analysed_columns(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT attname FROM pg_stats WHERE schemaname = current_schema() "
            "AND tablename = 'plots'"
        )
        return {r[0] for r in rows}


def test_postgis_bulk_loads_rebuild_the_indexes_they_drop(new_schema, monkeypatch):
    url = new_schema()
    store = create_store(url)
    try:
        with psycopg.connect(url) as conn:  # only the load's own ANALYZE fills pg_stats
            conn.execute("ALTER TABLE plots SET (autovacuum_enabled = false)")
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
        assert _analysed_columns(url) >= {"plot_id", "status", "geom", "zp_size"}
        assert not _analysed_columns(url) & set(pg_derived.OUTPUT_ONLY)
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


def _mixed_plots(prefix: str, shift: float, statuses: tuple[str, ...]) -> gpd.GeoDataFrame:
    """Plots of every size that matters to the overview, 260 m apart: 20 m ones, boxes
    a few centimetres either side of each level's size test (where the R-tree's 4-byte
    boxes and the exact ones disagree) and big ones, statuses in turn."""
    from geo import overview

    edges = [overview.min_size(level, 32643) for level in overview.LEVELS]
    sides = [20.0, 20.0, 20.0] + [e + d for e in edges for d in (-0.05, -0.01, 0.01, 0.05)]
    sides += [120.0]
    n = 30 * len(sides)
    side = np.resize(np.asarray(sides), n)
    xs = E + shift + 260.0 * (np.arange(n) % 60)
    ys = N + 130.0 * (np.arange(n) // 60)
    return gpd.GeoDataFrame(
        {
            "plot_id": [f"{prefix}-{i}" for i in range(n)],
            "status": [statuses[i % len(statuses)] for i in range(n)],
        },
        geometry=shapely.box(xs, ys, xs + side, ys + side),
        crs=32643,
    )


def _blocks(store) -> list[tuple]:
    """Every block of every level, geometry as WKB: byte for byte comparable."""
    from geo import overview

    out = []
    for level in overview.LEVELS:
        for b in store.plot_blocks(level, (-1e9, -1e9, 1e9, 1e9), None) or []:
            out.append((b.level, b.cx, b.cy, b.status, b.plots, shapely.to_wkb(b.geometry)))
    return sorted(out)


def test_an_import_into_a_filled_store_merges_its_blocks_from_memory_as_a_rebuild_would(
    store, monkeypatch
):
    from geo import overview

    first = _mixed_plots("A", 0.0, ("available", "occupied"))
    apply_import(store, plan_import(store, "plots", first))
    added: list[int] = []
    from_rows = overview.added

    def counted(table, statuses, geoms):
        added.append(len(geoms))
        return from_rows(table, statuses, geoms)

    monkeypatch.setattr(overview, "added", counted)

    def after_the_write(table, statuses, geoms):
        raise AssertionError("an import alone merges its blocks apart from other writes")

    monkeypatch.setattr(overview, "refresh_added", after_the_write)
    # new plots between the old ones (same cells), a status new to those cells, and beyond
    more = _mixed_plots("B", 130.0, ("candidate", "available", "reserved"))
    apply_import(store, plan_import(store, "plots", more))
    assert added == [len(more)]  # the blocks came from the rows in hand, not a re-read
    kept = _blocks(store)
    mixed = {(b[0], b[1], b[2]) for b in kept if b[3] == "occupied"}
    assert {(b[0], b[1], b[2]) for b in kept if b[3] == "candidate"} & mixed
    store.build_overview()
    assert _blocks(store) == kept
    assert {b[0] for b in kept} == set(overview.LEVELS)


@pytest.mark.parametrize("then", ["update", "delete", "insert"])
def test_plot_writes_after_a_bulk_insert_in_its_transaction_give_the_blocks_of_a_rebuild(
    store, then
):
    # the insert reads what its blocks merge from (PostGIS: merges them on a thread);
    # what follows makes them stale
    apply_import(store, plan_import(store, "plots", _mixed_plots("A", 0.0, ("available",))))
    more = _mixed_plots("B", 130.0, ("candidate", "reserved"))
    with store.transaction("test") as tx:
        tx.insert("plots", more)
        if then == "update":
            tx.update("plots", "B-0", {"status": "occupied"})
            tx.update("plots", "A-1", {"status": "allocated"})
        elif then == "delete":
            tx.delete("plots", "B-1")
        else:
            last = _mixed_plots("C", 0.0, ("allocated",))
            tx.insert("plots", last.set_geometry(last.geometry.translate(0.0, 2_000.0)))
    kept = _blocks(store)
    assert ("allocated" in {b[3] for b in kept}) == (then != "delete")
    store.build_overview()
    assert _blocks(store) == kept


def _big_entries(path) -> dict[int, list[tuple]]:
    """GeoPackage: each indexed level's R-tree of big plots, entry by entry (boxes too)."""
    with sqlite3.connect(path) as conn:
        return {
            level: sorted(conn.execute(f"SELECT * FROM {overview_sql.gpkg_big_rtree(level)}"))
            for level in overview_sql.GPKG_INDEXED_LEVELS
        }


def _moved(plots: gpd.GeoDataFrame, dy: float) -> gpd.GeoDataFrame:
    return plots.set_geometry(plots.geometry.translate(0.0, dy))


@pytest.mark.parametrize("rows", [1_200, 4_000])  # few new entries per held one, and many
def test_a_bulk_insert_alone_adds_its_big_plots_from_the_bounds_in_hand(
    tmp_path, monkeypatch, rows
):
    from geo.store import gpkg

    path = tmp_path / "z.gpkg"
    store = create_store(str(path))
    try:
        base = [_mixed_plots(f"A{k}", 0.0, ("available",)) for k in range(8)]
        first = pd.concat([_moved(p, 1_100.0 * k) for k, p in enumerate(base)])
        apply_import(store, plan_import(store, "plots", first.reset_index(drop=True)))
        parts = [_mixed_plots(f"B{k}", 130.0, ("candidate",)) for k in range(-(-rows // 480))]
        more = pd.concat([_moved(p, 1_100.0 * k) for k, p in enumerate(parts)])
        more = more.iloc[:rows].reset_index(drop=True)
        assert len(more) >= gpkg.BULK_ROWS
        reread: list[bool] = []
        in_hand = overview_sql.GpkgOverview._index_big

        def index_big(self, level, box):
            reread.append(self._added is None)
            return in_hand(self, level, box)

        monkeypatch.setattr(overview_sql.GpkgOverview, "_index_big", index_big)
        apply_import(store, plan_import(store, "plots", more))
        assert reread == [False, False]  # both levels' trees from the bounds in hand
        kept = _big_entries(path)
        assert all(kept.values())
        store.build_overview()  # a rebuild from the plots' own index holds the same entries
        assert _big_entries(path) == kept
        _big_rtrees(path)  # and SQLite's check accepts the trees
    finally:
        store.close()
