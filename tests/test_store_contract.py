"""The Store contract, run on both backends: a real GeoPackage file and a real PostGIS database."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo.layers import LAYERS
from geo.store import (
    Conflict,
    Contains,
    Invalid,
    ListHas,
    NotFound,
    Null,
    Prefix,
    Range,
    StoreError,
    create_store,
    open_store,
)
from geo.store.migration import compare, migrate

E, N = 650_000.0, 4_799_000.0


def plots(*specs: tuple[str, float, float, float, float], **extra) -> gpd.GeoDataFrame:
    """Plots from (id, x0, y0, x1, y1) offsets in metres from the zone origin."""
    return gpd.GeoDataFrame(
        {
            "plot_id": [s[0] for s in specs],
            "status": ["available"] * len(specs),
            **{k: [v] * len(specs) for k, v in extra.items()},
        },
        geometry=[shapely.box(E + s[1], N + s[2], E + s[3], N + s[4]) for s in specs],
        crs=32643,
    )


@pytest.fixture
def store(empty_location):
    store = create_store(empty_location)
    yield store
    store.close()


def state(store) -> dict[str, pd.DataFrame]:
    """Everything the store holds, for before/after comparisons."""
    return {name: store.read(name) for name in LAYERS}


def same_state(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> bool:
    return all(a[n].equals(b[n]) for n in LAYERS)


# --------------------------------------------------------------------------- reads and types
def test_round_trip_keeps_types_order_and_cyrillic(store):
    frame = plots(
        ("P-2", 200, 0, 300, 50),
        ("P-1", 0, 0, 100, 100),
        resident="ТОО «Алатау Металл»",
        rail_need=True,
        jobs=12,
        invest=1.5e9,
    )
    assert store.insert("plots", frame) == ["P-2", "P-1"]
    back = store.read("plots")
    assert list(back.columns) == [*LAYERS["plots"].names, "geometry"]
    assert back["plot_id"].tolist() == ["P-1", "P-2"]
    assert back["resident"].tolist() == ["ТОО «Алатау Металл»"] * 2
    assert back["area_ha"].tolist() == [1.0, 0.5]
    assert str(back["jobs"].dtype) == "Int64" and back["jobs"].tolist() == [12, 12]
    assert str(back["rail_need"].dtype) == "boolean" and back["rail_need"].tolist() == [True, True]
    assert str(back["hazard"].dtype) == "Int64" and back["hazard"].isna().all()
    assert back["cadastre"].tolist() == [None, None]
    assert back["version"].tolist() == [1, 1]
    assert back.crs.to_epsg() == 32643
    assert back.geometry.iloc[1].equals_exact(frame.geometry.iloc[0], 0)


def test_dates_and_datetimes_read_as_iso_text(store):
    store.insert(
        "roads",
        gpd.GeoDataFrame(
            {"asset_id": ["R-1"], "class": ["local"], "status": ["planned"], "due": ["2027-03-01"]},
            geometry=[shapely.LineString([(E, N), (E + 100, N)])],
            crs=32643,
        ),
    )
    store.insert(
        "applications",
        pd.DataFrame(
            {
                "app_id": ["A-1"],
                "investor": ["inv"],
                "project": ["Завод"],
                "sector": ["food"],
                "min_ha": [1],
                "max_ha": [2],
                "status": ["submitted"],
                "created": ["2026-05-01T10:20:30"],
            }
        ),
    )
    assert store.get("roads", "R-1")["due"] == "2027-03-01"
    assert store.get("roads", "R-1")["since"] is None
    row = store.get("applications", "A-1")
    assert row["created"] == "2026-05-01T10:20:30" and row["updated"] is None
    assert store.count("applications", where={"created": Range("2026-05-01", None)}) == 1
    assert store.count("roads", where={"due": Range(None, "2027-02-28")}) == 0


def test_bbox_where_order_and_paging_agree_on_both_backends(store):
    store.insert(
        "plots",
        plots(
            ("P-1", 0, 0, 100, 100),
            ("P-2", 500, 0, 650, 100),
            ("P-3", 1000, 0, 1200, 100),
            ("P-4", 2000, 0, 2050, 100),
        ),
    )
    store.update("plots", "P-3", {"status": "occupied", "jobs": 40, "resident": "Б"})
    store.update("plots", "P-2", {"jobs": 5, "resident": "А"})
    ids = lambda **kw: store.read("plots", **kw)["plot_id"].tolist()  # noqa: E731
    assert ids(bbox=(E + 450, N - 10, E + 1500, N + 10)) == ["P-2", "P-3"]
    assert ids(where={"status": ["available"]}) == ["P-1", "P-2", "P-4"]
    assert ids(where={"status": "occupied"}) == ["P-3"]
    assert ids(where={"status": []}) == []
    assert ids(where={"area_ha": Range(1.2, 2.0)}) == ["P-2", "P-3"]
    assert ids(where={"area_ha": Range(1.0, 1.0)}) == ["P-1"]  # both ends inclusive
    assert ids(where={"jobs": Range(low=10)}) == ["P-3"]
    assert ids(where={"jobs": Null()}) == ["P-1", "P-4"]
    assert ids(where={"jobs": None}) == ["P-1", "P-4"]
    assert ids(where={"jobs": Null(negate=True), "status": ["available"]}) == ["P-2"]
    assert ids(where={"jobs": Range(1, 100)}, bbox=(E, N, E + 700, N + 50)) == ["P-2"]
    assert ids(order_by="-plot_id", limit=2, offset=1) == ["P-3", "P-2"]
    assert ids(order_by="resident") == ["P-1", "P-4", "P-2", "P-3"]  # missing first
    assert ids(order_by="-resident") == ["P-3", "P-2", "P-1", "P-4"]  # missing last
    assert (
        store.count(
            "plots", bbox=(E + 450, N - 10, E + 1500, N + 10), where={"status": "available"}
        )
        == 1
    )
    assert store.extent("plots") == (E, N, E + 2050, N + 100)
    assert store.extent("targets") is None


def test_list_and_range_or_null_filters(store):
    rows = plots(
        ("P-1", 0, 0, 100, 100),
        ("P-2", 500, 0, 600, 100),
        ("P-3", 1000, 0, 1100, 100),
        ("P-4", 2000, 0, 2100, 100),
        ("P-5", 3000, 0, 3100, 100),
    )
    rows["sectors"] = ["food, pharma", "chemicals,light", "*", None, ""]
    rows["start_yr"] = [2020, 2022, None, 2030, 2021]
    store.insert("plots", rows)
    ids = lambda where: store.read("plots", where=where)["plot_id"].tolist()  # noqa: E731
    assert ids({"sectors": ListHas("pharma")}) == ["P-1", "P-3", "P-4", "P-5"]
    assert ids({"sectors": ListHas("light")}) == ["P-2", "P-3", "P-4", "P-5"]
    assert store.count("plots", where={"sectors": ListHas("'; DROP TABLE plots; --")}) == 3
    assert ids({"start_yr": Range(low=2025, or_null=True)}) == ["P-3", "P-4"]
    assert ids({"start_yr": Range(or_null=True)}) == ["P-1", "P-2", "P-3", "P-4", "P-5"]
    assert ids({"start_yr": Range(2021, None), "sectors": ListHas("pharma")}) == ["P-4", "P-5"]
    assert store.count("plots") == 5


@pytest.mark.parametrize(
    "where, field",
    [
        ({"nosuch": 1}, "nosuch"),
        ({"jobs": "many"}, "jobs"),
        ({"area_ha": Range("big")}, "area_ha"),
        ({"plot_id": [f"P-{i}" for i in range(40_000)]}, "plot_id"),
    ],
)
def test_bad_filters_are_typed_errors(store, where, field):
    with pytest.raises(Invalid) as err:
        store.read("plots", where=where)
    assert err.value.problems[0].field == field


def test_unknown_layers_sorts_and_bboxes_on_tables_are_refused(store):
    with pytest.raises(KeyError, match="known layers"):
        store.read("nosuch")
    with pytest.raises(Invalid, match="no field"):
        store.read("plots", order_by="price")
    with pytest.raises(Invalid, match="no geometry"):
        store.read("targets", bbox=(0, 0, 1, 1))


# --------------------------------------------------------------------------- writes
def test_bad_rows_are_refused_and_nothing_is_written(store):
    store.insert("plots", plots(("P-1", 0, 0, 100, 100)))
    before = state(store)
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
    assert {(p.index, p.field) for p in err.value.problems} == {
        (1, "status"),
        (1, "geometry"),
        (2, "hazard"),
        (2, "geometry"),
    }
    with pytest.raises(Conflict, match="P-1"):
        store.insert("plots", plots(("P-1", 0, 0, 10, 10)))
    assert same_state(state(store), before)


def test_a_failure_inside_a_transaction_rolls_everything_back(store):
    store.insert("plots", plots(("P-1", 0, 0, 100, 100)))
    before, revision = state(store), store.revision()
    with pytest.raises(Conflict):
        with store.transaction("tester") as tx:
            tx.update("plots", "P-1", {"resident": "gone"})
            tx.insert("plots", plots(("P-2", 200, 0, 300, 100)))
            tx.insert("plots", plots(("P-2", 400, 0, 500, 100)))
    with pytest.raises(ZeroDivisionError):
        with store.transaction("tester") as tx:
            tx.delete("plots", "P-1")
            1 / 0
    assert same_state(state(store), before)
    assert store.revision() == revision


def test_versions_409s_and_audit_records(store):
    store.insert("plots", plots(("P-1", 0, 0, 100, 100)), user="anna")
    assert store.update("plots", "P-1", {"status": "reserved"}, version=1, user="anna") == 2
    assert (
        store.update("plots", "P-1", {"status": "reserved"}, version=2, user="anna") == 2
    )  # no change
    with pytest.raises(Conflict, match="version 2"):
        store.update("plots", "P-1", {"status": "allocated"}, version=1, user="boris")
    with pytest.raises(Conflict, match="version 2"):
        store.delete("plots", "P-1", version=1, user="boris")
    with pytest.raises(NotFound):
        store.update("plots", "P-9", {"status": "reserved"})
    with pytest.raises(NotFound):
        store.delete("plots", "P-9")
    with pytest.raises(Invalid, match="area_ha"):
        store.update("plots", "P-1", {"area_ha": 5})
    with pytest.raises(Invalid, match="plot_id"):
        store.update("plots", "P-1", {"plot_id": "P-2"})
    store.update("plots", "P-1", {"geometry": shapely.box(E, N, E + 200, N + 100)}, user="anna")
    assert store.get("plots", "P-1")["area_ha"] == 2.0
    store.delete("plots", "P-1", version=3, user="boris")
    with pytest.raises(NotFound):
        store.get("plots", "P-1")
    store.insert("users", pd.DataFrame({"username": ["u"], "pw_hash": ["x"], "role": ["admin"]}))
    audit = store.read("audit")
    assert audit[["username", "action", "layer", "feat_id"]].values.tolist() == [
        ["anna", "insert", "plots", "P-1"],
        ["anna", "update", "plots", "P-1"],
        ["anna", "update", "plots", "P-1"],
        ["boris", "delete", "plots", "P-1"],
    ]
    assert audit["audit_id"].is_monotonic_increasing and audit["audit_id"].is_unique
    assert json.loads(audit["changes"].iloc[1]) == {"status": ["available", "reserved"]}
    assert "POLYGON" in json.loads(audit["changes"].iloc[2])["geometry"][1]
    assert json.loads(audit["changes"].iloc[3])["status"] == ["reserved", None]
    assert all(len(at) == 19 for at in audit["at"])


def test_sessions_read_their_own_writes_lock_and_list_keys(store):
    store.insert("plots", plots(("P-1", 0, 0, 100, 100)))
    with store.transaction("alice") as tx:
        tx.lock("plots")
        tx.insert("plots", plots(("P-2", 200, 0, 300, 100)))
        tx.update("plots", "P-1", {"cadastre": "101"})
        assert tx.count("plots") == 2
        assert tx.get("plots", "P-1", for_update=True)["cadastre"] == "101"
        assert tx.read("plots", bbox=(E + 150, N, E + 350, N + 50))["plot_id"].tolist() == ["P-2"]
        assert sorted(tx.keys("plots")) == ["P-1", "P-2"]
        assert tx.keys("plots", where={"cadastre": Null()}) == ["P-2"]
        assert store.count("plots") == 1  # others see the committed state only
        with pytest.raises(NotFound):
            tx.get("plots", "P-9")
    assert store.get("plots", "P-1")["cadastre"] == "101" and store.count("plots") == 2


def test_clear_and_replace_audit_one_summary(store):
    store.insert("plots", plots(*[(f"P-{i}", i * 200, 0, i * 200 + 100, 100) for i in range(3)]))
    with store.transaction("imp") as tx:
        tx.replace("plots", plots(("Q-1", 0, 0, 50, 50)))
    assert store.read("plots")["plot_id"].tolist() == ["Q-1"]
    last = store.read("audit", order_by="-audit_id", limit=2)
    assert last["feat_id"].tolist() == ["Q-1", "*"]
    assert json.loads(last["changes"].iloc[1]) == {"count": [3, 0]}


def test_revisions_move_per_layer_and_only_on_commit(store):
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
    for i in range(5):
        store.update("plots", "P-1", {"cadastre": str(i)})
        seen.add(store.revision(["plots"]))
    assert len(seen) == 6
    with pytest.raises(KeyError):
        store.revision(["nosuchlayer"])


# --------------------------------------------------------------------------- search keys
def test_find_matches_the_start_of_a_search_key_in_key_order(store):
    store.insert(
        "plots",
        plots(
            ("AB-10", 0, 0, 10, 10),
            ("ab-1", 20, 0, 30, 10),
            ("AB-2", 40, 0, 50, 10),
            ("X-AB-1", 60, 0, 70, 10),
            cadastre="20 311 7",
        ),
    )
    store.update("plots", "AB-2", {"status": "candidate", "cadastre": "20-311-8"})
    assert store.find("plots", "plot_id", " a B-1")["plot_id"].tolist() == ["ab-1", "AB-10"]
    assert store.find("plots", "plot_id", "AB", limit=2)["plot_id"].tolist() == ["ab-1", "AB-10"]
    assert store.find("plots", "plot_id", "AB", where={"status": "candidate"})[
        "plot_id"
    ].tolist() == ["AB-2"]
    found = store.find("plots", "cadastre", "20311")  # spaces ignored; the hyphens are not
    assert found["plot_id"].tolist() == ["AB-10", "X-AB-1", "ab-1"]
    assert found.crs.to_epsg() == store.epsg and found["area_ha"].notna().all()
    assert store.find("plots", "cadastre", "20-311-8")["plot_id"].tolist() == ["AB-2"]
    assert store.find("plots", "plot_id", "zz").empty
    assert store.count("plots", where={"plot_id": Prefix("x-a")}) == 1
    assert sorted(store.keys("plots", where={"cadastre": Contains("3117")})) == [
        "AB-10",
        "X-AB-1",
        "ab-1",
    ]
    with pytest.raises(Invalid, match="search index"):
        store.find("plots", "resident", "x")
    with pytest.raises(Invalid, match="search index"):
        store.read("roads", where={"asset_id": Prefix("R")})


def test_a_store_without_search_indexes_gets_them_on_open(empty_location, backend):
    store = create_store(empty_location)
    store.insert("plots", plots(("P-1", 0, 0, 10, 10)))
    store.close()
    if backend == "gpkg":
        import sqlite3

        with sqlite3.connect(empty_location) as conn:
            conn.execute('DROP INDEX "plots_plot_id_search"')
    else:
        import psycopg

        with psycopg.connect(empty_location) as conn:
            conn.execute("DROP INDEX plots_plot_id_search")
    again = open_store(empty_location)
    assert again.find("plots", "plot_id", "p-")["plot_id"].tolist() == ["P-1"]
    again.close()
    if backend == "gpkg":
        with sqlite3.connect(empty_location) as conn:
            made = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'plots_plot_id_search'"
            ).fetchall()
    else:
        with psycopg.connect(empty_location) as conn:
            made = conn.execute(
                "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() "
                "AND indexname = 'plots_plot_id_search'"
            ).fetchall()
    assert made == [(1,)]


# --------------------------------------------------------------------------- identity, CRS
def test_describe_names_the_store(store, empty_location):
    assert store.describe() == empty_location


def test_a_store_made_in_one_crs_refuses_another(store, empty_location):
    store.insert("plots", plots(("P-1", 0, 0, 100, 100)))
    run = subprocess.run(
        [sys.executable, "-m", "zoneplan.cli", "info", "--db", empty_location],
        env={**os.environ, "ZONEPLAN_EPSG": "32642"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert "EPSG:32643" in run.stderr and "EPSG:32642" in run.stderr
    assert store.count("plots") == 1


def test_a_store_carries_the_crs_it_was_made_in(empty_location):
    """The CRS is the store's own (its metadata), given when it is made: reads come back in
    it, frames declaring another CRS are reprojected on the way in, and opening it while
    expecting another CRS is refused."""
    store = create_store(empty_location, epsg=32642)
    try:
        assert store.epsg == 32642
        frame = plots(("P-1", 0, 0, 100, 100))  # declared in EPSG:32643
        store.insert("plots", frame)
        back = store.read("plots")
        assert back.crs.to_epsg() == 32642
        want = frame.to_crs(32642).geometry.iloc[0]
        assert shapely.equals_exact(back.geometry.iloc[0], want, tolerance=1e-6)
        assert store.extent("plots") == pytest.approx(want.bounds)
        assert store.read("plots", bbox=want.bounds)["plot_id"].tolist() == ["P-1"]
        with store.transaction() as tx:
            assert tx.get("plots", "P-1")["geometry"].equals_exact(want, 1e-6)
    finally:
        store.close()
    again = open_store(empty_location)
    assert again.epsg == 32642 and open_store(empty_location, epsg=32642).epsg == 32642
    again.close()
    with pytest.raises(StoreError, match="EPSG:32642.*EPSG:32643"):
        open_store(empty_location, epsg=32643)


def test_a_second_create_refuses_without_force(store, empty_location):
    store.insert("plots", plots(("P-1", 0, 0, 100, 100)))
    with pytest.raises(Conflict, match="--force"):
        create_store(empty_location)
    assert store.count("plots") == 1
    create_store(empty_location, force=True).close()
    assert store.count("plots") == 0


# --------------------------------------------------------------------------- migrate
def test_migrate_copies_everything_both_ways_without_audit_of_its_own(
    sample_location, tmp_path, backend, request
):
    other = (
        request.getfixturevalue("new_schema")()
        if backend == "gpkg"
        else str(tmp_path / "copy.gpkg")
    )
    report = migrate(sample_location, other)
    assert all(r.ok for r in report) and {r.layer for r in report} == set(LAYERS)
    source, copy = open_store(sample_location), open_store(other)
    assert copy.count("audit") == source.count("audit") > 0
    assert copy.read("audit").equals(source.read("audit"))
    assert all(r.ok for r in compare(source, copy))
    # The copy is a working store: audit ids go on after the copied ones.
    copy.update(
        "plots", copy.read("plots", limit=1)["plot_id"].iloc[0], {"cadastre": "moved"}, user="t"
    )
    assert (
        copy.read("audit", order_by="-audit_id", limit=1)["audit_id"].iloc[0]
        > source.read("audit")["audit_id"].max()
    )
    with pytest.raises(Conflict, match="--force"):
        migrate(sample_location, other)
    source.close()
    copy.close()


# --------------------------------------------------------------------------- PostGIS schema
def test_postgis_tables_are_plain_postgis_layers_and_upgrade_themselves(new_schema):
    import psycopg

    url = new_schema()
    create_store(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        geometry = dict(
            conn.execute(
                "SELECT f_table_name, type || ':' || srid FROM geometry_columns "
                "WHERE f_table_schema = current_schema()"
            ).fetchall()
        )
        assert geometry["plots"] == "POLYGON:32643" and geometry["roads"] == "LINESTRING:32643"
        gist = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_indexes WHERE schemaname = current_schema() "
                "AND indexdef LIKE '%USING gist%'"
            )
        }
        assert gist == {n for n, lyr in LAYERS.items() if lyr.is_feature}
        # An older database: a layer and a field that geo/layers.py has since gained.
        conn.execute("DROP TABLE gates")
        conn.execute("ALTER TABLE targets DROP COLUMN source")
    open_store(url).close()
    with psycopg.connect(url) as conn:
        notes = [
            r[0] for r in conn.execute("SELECT note FROM zoneplan_migrations ORDER BY version")
        ]
        assert notes[1:] == ["add layer gates", "add field targets.source"]
    store = open_store(url)
    store.insert(
        "targets",
        pd.DataFrame(
            {
                "target_id": ["T-1"],
                "metric": ["parks"],
                "value": [4],
                "year": [2030],
                "source": ["plan"],
            }
        ),
    )
    assert store.get("targets", "T-1")["source"] == "plan" and store.count("gates") == 0
    store.close()


def test_postgis_errors_are_store_errors(postgis_server, new_schema):
    with pytest.raises(NotFound, match="zoneplan init"):
        open_store(new_schema())
    with pytest.raises(StoreError, match="unreachable"):
        open_store(f"{postgis_server}/zp_no_such_database")
    with pytest.raises(StoreError, match="unreachable"):
        open_store("postgresql://postgres@127.0.0.1:1/x")


def test_cli_init_refuses_a_second_time_and_migrate_prints_a_summary(new_schema, tmp_path, capsys):
    from zoneplan.cli import main

    url = new_schema()
    assert main(["init", "--db", url]) == 0
    assert "built postgresql://" in capsys.readouterr().out
    assert main(["init", "--db", url]) == 1
    assert "already holds a zoneplan store; use --force" in capsys.readouterr().err
    back = tmp_path / "back.gpkg"
    assert main(["migrate", "--from", url, "--to", str(back)]) == 0
    out = capsys.readouterr().out
    assert "checked feature by feature" in out and "DIFFERENT" not in out
    assert all(f"  {name} " in out for name in LAYERS)
    assert main(["migrate", "--from", url, "--to", str(back)]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["migrate", "--from", str(back), "--to", url, "--force"]) == 0


def test_migrate_refuses_to_copy_a_store_onto_itself(sample_location):
    with pytest.raises(StoreError, match="same store"):
        migrate(sample_location, sample_location, force=True)
    assert open_store(sample_location).count("plots") > 150


def test_filter_values_no_stored_row_could_hold_match_nothing(store):
    store.insert("plots", plots(("P-1", 0, 0, 100, 100)))
    for odd in ("\x00nothing", "a/b", "x" * 500):
        assert store.count("plots", where={"plot_id": odd}) == 0
        assert store.count("plots", where={"plot_id": [odd]}) == 0
    assert store.count("plots", where={"plot_id": ["\x00nothing", "P-1"]}) == 1


def test_bulk_inserted_values_come_back_exactly(store):
    """Bulk inserts (PostGIS: COPY text built in Arrow; GeoPackage: the packed path) keep
    text with tabs, newlines, backslashes and Cyrillic, floats to the last bit, booleans,
    missing values and geometries."""
    n = 1_200
    texts = ["a\tb", "line\nnext", "back\\slash", "cr\rlf", "ТОО «Алатау»", "\\N", "", None]
    frame = plots(*[(f"B-{i}", i * 30.0, 0, i * 30.0 + 20, 20) for i in range(n)])
    frame["resident"] = [texts[i % len(texts)] for i in range(n)]
    power = [None if i % 5 == 0 else 0.1 * i + 1e-7 for i in range(n)]
    jobs = [None if i % 3 == 0 else i * 1_000_003 for i in range(n)]
    rail = [None if i % 4 == 0 else i % 2 == 0 for i in range(n)]
    frame["power_kw"] = pd.Series(power, dtype=object)
    frame["jobs"] = pd.Series(jobs, dtype=object)
    frame["rail_need"] = pd.Series(rail, dtype=object)
    store.insert("plots", frame)
    back = store.read("plots").set_index("plot_id").loc[frame["plot_id"]]
    blank = {"", None}
    given = [texts[i % len(texts)] for i in range(n)]
    want_text = [None if t in blank else t.strip() for t in given]
    assert [None if pd.isna(v) else v for v in back["resident"]] == want_text
    assert [None if pd.isna(v) else float(v) for v in back["power_kw"]] == frame[
        "power_kw"
    ].tolist()
    assert [None if pd.isna(v) else int(v) for v in back["jobs"]] == jobs
    assert [None if pd.isna(v) else bool(v) for v in back["rail_need"]] == frame[
        "rail_need"
    ].tolist()
    assert all(a.equals_exact(b, 0) for a, b in zip(back.geometry, frame.geometry))
    assert back.crs.to_epsg() == 32643
