"""The GeoPackage store: a real file checked by independent readers, atomic typed writes."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from geo.layers import FEATURE_LAYERS, LAYERS
from geo.store import Conflict, Invalid, ListHas, NotFound, Range, create_store, open_store

E, N = 650_000.0, 4_799_000.0
SQLITE_TYPES = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "REAL",
    "bool": "BOOLEAN",
    "date": "DATE",
    "datetime": "TEXT",
}


def plots(*specs: tuple[str, float, float, float, float], **extra) -> gpd.GeoDataFrame:
    """Square-ish plots from (id, x0, y0, x1, y1) offsets in metres from the zone origin."""
    return gpd.GeoDataFrame(
        {
            "plot_id": [s[0] for s in specs],
            "status": ["available"] * len(specs),
            **{k: [v] * len(specs) for k, v in extra.items()},
        },
        geometry=[shapely.box(E + s[1], N + s[2], E + s[3], N + s[4]) for s in specs],
        crs=32643,
    )


@pytest.fixture()
def store(tmp_path):
    return create_store(tmp_path / "z.gpkg")


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_layer_is_a_geopackage_table_with_schema_types(store):
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    contents = dict(db.execute("SELECT table_name, data_type FROM gpkg_contents"))
    rtree = {
        r[0]
        for r in db.execute(
            "SELECT table_name FROM gpkg_extensions WHERE extension_name = 'gpkg_rtree_index'"
        )
    }
    for name, layer in LAYERS.items():
        assert contents[name] == ("features" if layer.is_feature else "attributes")
        columns = {r[1]: r[2] for r in db.execute(f'PRAGMA table_info("{name}")')}
        for fld in layer.fields:
            assert columns[fld.name] == SQLITE_TYPES[fld.type], (name, fld.name)
    assert rtree == set(FEATURE_LAYERS)
    srs = db.execute("SELECT srs_id FROM gpkg_geometry_columns WHERE table_name='plots'").fetchone()
    assert srs == (32643,)


def test_field_names_fit_a_shapefile():
    assert all(len(f.name) <= 10 for layer in LAYERS.values() for f in layer.fields)


def test_create_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "z.gpkg"
    create_store(path)
    before = digest(path)
    with pytest.raises(Conflict, match="--force"):
        create_store(path)
    assert digest(path) == before
    create_store(path, force=True)


def test_insert_read_round_trip_keeps_types_and_cyrillic(store):
    frame = plots(
        ("P-1", 0, 0, 100, 100),
        ("P-2", 200, 0, 300, 50),
        resident="ТОО «Алатау Металл»",
        rail_need=True,
        jobs=12,
    )
    store.insert("plots", frame)
    back = store.read("plots")
    assert back["plot_id"].tolist() == ["P-1", "P-2"]
    assert back["resident"].tolist() == ["ТОО «Алатау Металл»"] * 2
    assert back["area_ha"].tolist() == [1.0, 0.5]
    assert back["rail_need"].tolist() == [True, True]
    assert back["jobs"].tolist() == [12, 12]
    assert back.crs.to_epsg() == 32643
    assert back.geometry.iloc[0].equals(frame.geometry.iloc[0])


def test_bbox_and_attribute_filters_use_the_rtree(store):
    store.insert(
        "plots",
        plots(("P-1", 0, 0, 100, 100), ("P-2", 500, 0, 600, 100), ("P-3", 1000, 0, 1100, 100)),
    )
    store.update("plots", "P-3", {"status": "occupied"})
    assert store.read("plots", bbox=(E + 450, N - 10, E + 2000, N + 10))["plot_id"].tolist() == [
        "P-2",
        "P-3",
    ]
    assert store.count("plots", where={"status": ["available"]}) == 2
    assert store.read("plots", order_by="-plot_id", limit=1, offset=1)["plot_id"].tolist() == [
        "P-2"
    ]
    assert store.extent("plots") == (E, N, E + 1100, N + 100)


def test_list_and_range_filters(store):
    rows = plots(
        ("P-1", 0, 0, 100, 100),
        ("P-2", 500, 0, 600, 100),
        ("P-3", 1000, 0, 1100, 100),
        ("P-4", 2000, 0, 2100, 100),
    )
    rows["sectors"] = ["food, pharma", "chemicals,light", "*", None]
    rows["start_yr"] = [2020, 2022, None, 2030]
    store.insert("plots", rows)
    ids = lambda where: store.read("plots", where=where)["plot_id"].tolist()  # noqa: E731
    # a list holding the value; '*' and empty mean every sector
    assert ids({"sectors": ListHas("pharma")}) == ["P-1", "P-3", "P-4"]
    assert ids({"sectors": ListHas("light")}) == ["P-2", "P-3", "P-4"]
    assert store.count("plots", where={"sectors": ListHas("'; DROP TABLE plots; --")}) == 2
    assert ids({"start_yr": Range(2021, 2030)}) == ["P-2", "P-4"]
    assert ids({"start_yr": Range(high=2021)}) == ["P-1"]
    assert ids({"start_yr": Range(low=2025, or_null=True)}) == ["P-3", "P-4"]
    assert ids({"start_yr": Range(2021, None), "sectors": ListHas("pharma")}) == ["P-4"]


def test_bad_rows_are_refused_and_nothing_is_written(store):
    store.insert("plots", plots(("P-1", 0, 0, 100, 100)))
    before = digest(store.path)
    bowtie = shapely.Polygon([(E, N), (E + 100, N + 100), (E + 100, N), (E, N + 100)])
    bad = gpd.GeoDataFrame(
        {
            "plot_id": ["P-2", "P-3", "P-4"],
            "status": ["available", "sold", "available"],
            "hazard": [2, 3, 9],
        },
        geometry=[shapely.box(E, N, E + 1, N + 1), bowtie, shapely.Point(E, N)],
        crs=32643,
    )
    with pytest.raises(Invalid) as err:
        store.insert("plots", bad)
    reasons = {(p.index, p.field) for p in err.value.problems}
    assert reasons == {(1, "status"), (1, "geometry"), (2, "hazard"), (2, "geometry")}
    with pytest.raises(Conflict, match="P-1"):
        store.insert("plots", plots(("P-1", 0, 0, 10, 10)))
    assert digest(store.path) == before


def test_a_failure_inside_a_transaction_rolls_everything_back(store):
    before = digest(store.path)
    with pytest.raises(Conflict):
        with store.transaction("tester") as tx:
            tx.insert("plots", plots(("P-1", 0, 0, 100, 100)))
            tx.insert("plots", plots(("P-1", 200, 0, 300, 100)))
    assert store.count("plots") == 0
    assert digest(store.path) == before


def test_stale_versions_conflict_and_changes_are_audited(store):
    store.insert("plots", plots(("P-1", 0, 0, 100, 100)), user="anna")
    version = store.update("plots", "P-1", {"status": "reserved"}, version=1, user="anna")
    assert version == 2
    with pytest.raises(Conflict, match="version 2"):
        store.update("plots", "P-1", {"status": "allocated"}, version=1, user="boris")
    with pytest.raises(NotFound):
        store.delete("plots", "P-9")
    store.delete("plots", "P-1", version=2, user="boris")
    audit = store.read("audit")
    assert audit[["username", "action", "feat_id"]].values.tolist() == [
        ["anna", "insert", "P-1"],
        ["anna", "update", "P-1"],
        ["boris", "delete", "P-1"],
    ]
    assert '"status": ["available", "reserved"]' in audit["changes"].iloc[1]


def test_updates_recompute_area_and_refuse_unknown_fields(store):
    store.insert("plots", plots(("P-1", 0, 0, 100, 100)))
    store.update("plots", "P-1", {"geometry": shapely.box(E, N, E + 200, N + 100)})
    assert store.get("plots", "P-1")["area_ha"] == 2.0
    with pytest.raises(Invalid, match="area_ha"):
        store.update("plots", "P-1", {"area_ha": 5})
    with pytest.raises(Invalid, match="plot_id"):
        store.update("plots", "P-1", {"plot_id": "P-2"})


def test_open_refuses_files_that_are_not_stores(tmp_path):
    with pytest.raises(NotFound, match="zoneplan init"):
        open_store(tmp_path / "missing.gpkg")
    junk = tmp_path / "junk.gpkg"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(NotFound, match="not a GeoPackage"):
        open_store(junk)


@pytest.mark.skipif(
    shutil.which("ogrinfo") is None and not os.environ.get("CI"),
    reason="GDAL's ogrinfo is not installed (.ci/run installs gdal-bin)",
)
def test_ogrinfo_opens_the_store(store):
    store.insert("plots", plots(("P-1", 0, 0, 100, 100), resident="Индустриальная"))
    out = subprocess.run(["ogrinfo", "-so", str(store.path)], capture_output=True, text=True)
    assert out.returncode == 0
    assert "partially supported" not in out.stderr  # GeoPackage 1.2, which GDAL 3.6 reads fully
    assert sqlite3.connect(store.path).execute("PRAGMA user_version").fetchone()[0] == 10200
    for name, layer in LAYERS.items():
        assert f": {name} (" in out.stdout, name
    out = subprocess.run(
        ["ogrinfo", "-al", str(store.path), "plots"], capture_output=True, text=True
    )
    assert "Feature Count: 1" in out.stdout and "resident (String) = Индустриальная" in out.stdout
    assert "area_ha (Real) = 1" in out.stdout


def test_pyogrio_reads_what_the_store_wrote(store):
    import pyogrio

    store.insert("plots", plots(("P-1", 0, 0, 100, 100), resident="Индустриальная"))
    frame = pyogrio.read_dataframe(store.path, layer="plots")
    assert frame["resident"].tolist() == ["Индустриальная"]
    assert frame.crs.to_epsg() == 32643
    info = pyogrio.read_info(store.path, layer="plots")
    assert info["features"] == 1 and info["geometry_type"] == "Polygon"


def test_empty_inserts_and_tables(store):
    assert store.insert("plots", plots()) == []
    store.insert(
        "targets",
        pd.DataFrame({"target_id": ["T-1"], "metric": ["parks"], "value": [40], "year": [2025]}),
    )
    assert store.get("targets", "T-1")["value"] == 40.0


def test_clearing_a_layer_empties_its_extent_and_huge_filters_are_refused(store):
    store.insert("plots", plots(("P-1", 0, 0, 100, 100)))
    with store.transaction() as tx:
        assert tx.clear("plots") == 1
    db = sqlite3.connect(store.path)
    assert db.execute("SELECT min_x FROM gpkg_contents WHERE table_name='plots'").fetchone() == (
        None,
    )
    with pytest.raises(Invalid, match="smaller batches"):
        store.read("plots", where={"plot_id": [f"P-{i}" for i in range(40_000)]})


def test_multi_part_geometries_are_refused(store):
    two = shapely.MultiPolygon(
        [shapely.box(E, N, E + 10, N + 10), shapely.box(E + 20, N, E + 30, N + 10)]
    )
    frame = gpd.GeoDataFrame(
        {"plot_id": ["P-1"], "status": ["available"]}, geometry=[two], crs=32643
    )
    with pytest.raises(Invalid, match="2 parts"):
        store.insert("plots", frame)


def test_sessions_read_their_own_writes_and_others_wait(store):
    store.insert("plots", plots(("P-1", 0, 0, 100, 100)))
    with store.transaction("alice") as tx:
        tx.insert("plots", plots(("P-2", 200, 0, 300, 100)))
        tx.update("plots", "P-1", {"cadastre": "101"})
        assert tx.count("plots") == 2
        assert tx.get("plots", "P-1", for_update=True)["cadastre"] == "101"
        inside = tx.read("plots", bbox=(E + 150, N, E + 350, N + 50), where={"status": "available"})
        assert inside["plot_id"].tolist() == ["P-2"]
        assert store.count("plots") == 1  # outside readers see the committed state only
        with pytest.raises(NotFound):
            tx.get("plots", "P-9")
    assert store.get("plots", "P-1")["cadastre"] == "101" and store.count("plots") == 2


def test_revisions_change_per_layer_and_for_every_commit(store):
    plots_rev, roads_rev, everything = (
        store.revision(["plots"]),
        store.revision(["roads"]),
        store.revision(),
    )
    store.insert("plots", plots(("P-1", 0, 0, 100, 100)))
    assert store.revision(["plots"]) != plots_rev
    assert store.revision(["roads"]) == roads_rev
    assert store.revision() != everything
    seen = {store.revision(["plots"])}
    for i in range(5):  # commits within one millisecond still differ
        store.update("plots", "P-1", {"cadastre": str(i)})
        seen.add(store.revision(["plots"]))
    assert len(seen) == 6
    with pytest.raises(KeyError):
        store.revision(["nosuchlayer"])


def test_a_store_made_before_a_table_existed_gets_it_on_open(tmp_path):
    path = tmp_path / "old.gpkg"
    create_store(path).insert("plots", plots(("P-1", 0, 0, 100, 100)))
    db = sqlite3.connect(path)
    with db:
        db.execute("DROP TABLE jobs")
        db.execute("DELETE FROM gpkg_contents WHERE table_name = 'jobs'")
    db.close()
    store = open_store(path)
    assert store.count("jobs") == 0 and store.count("plots") == 1
    assert "jobs" in dict(sqlite3.connect(path).execute("SELECT table_name, 1 FROM gpkg_contents"))


def grid_plots(first: int, count: int, prefix: str = "G") -> gpd.GeoDataFrame:
    """``count`` 20 m squares on a 30 m grid, numbered from ``first`` (1 km east)."""
    i = pd.RangeIndex(first, first + count).to_numpy()
    x, y = E + 1_000 + (i % 200) * 30.0, N + (i // 200) * 30.0
    return gpd.GeoDataFrame(
        {"plot_id": [f"{prefix}-{k}" for k in i], "status": ["available"] * count},
        geometry=shapely.box(x, y, x + 20.0 + (i % 7) * 0.013, y + 20.0),
        crs=32643,
    )


def rtree_rows(path) -> set[tuple]:
    db = sqlite3.connect(path)
    assert db.execute("SELECT rtreecheck('rtree_plots_geom')").fetchone()[0] == "ok"
    return set(db.execute("SELECT id, minx, maxx, miny, maxy FROM rtree_plots_geom"))


def trigger_rtree(store) -> set[tuple]:
    """The R-tree SQLite itself would hold: every stored plot's bounds inserted one by one."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING rtree(id, minx, maxx, miny, maxy)")
    stored = sqlite3.connect(store.path).execute("SELECT fid, plot_id FROM plots").fetchall()
    fid = dict((k, f) for f, k in stored)
    frame = store.read("plots")
    b = shapely.bounds(frame.geometry.values)
    db.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        [(fid[k], r[0], r[2], r[1], r[3]) for k, r in zip(frame["plot_id"], b.tolist())],
    )
    return set(db.execute("SELECT * FROM t"))


def test_bulk_inserts_keep_the_rtree_what_sqlite_would_hold(store):
    """Large inserts write a packed R-tree (rebuilt over old and new entries) or insert
    through the R*Tree when they are few beside what is stored; either way SQLite's
    rtreecheck passes, the boxes are those SQLite stores, and GDAL's bbox reads agree."""
    store.insert("plots", grid_plots(0, 1_500))  # empty tree: packed
    assert rtree_rows(store.path) == trigger_rtree(store)
    store.insert("plots", grid_plots(1_500, 300))  # small insert: the triggers
    store.insert("plots", grid_plots(1_800, 5_400))  # many beside 1,800: rebuilt
    assert rtree_rows(store.path) == trigger_rtree(store)
    store.insert("plots", grid_plots(7_200, 1_000))  # few beside 7,200: one by one
    store.delete("plots", "G-5")
    store.update("plots", "G-7", {"geometry": shapely.box(E, N, E + 50, N + 50)})
    assert rtree_rows(store.path) == trigger_rtree(store)
    box = (E + 1_000 + 1_234.5, N + 300.2, E + 1_000 + 2_001.7, N + 1_111.1)
    mine = set(store.read("plots", bbox=box)["plot_id"])
    gdal = pyogrio.read_dataframe(store.path, layer="plots", bbox=box, columns=["plot_id"])
    every = store.read("plots")
    exact = set(every["plot_id"][every.intersects(shapely.box(*box))])
    assert mine == set(gdal["plot_id"]) == exact and len(exact) > 500
    meta = pyogrio.read_info(store.path, layer="plots")
    assert meta["features"] == 8_199
