"""geo.io and geo.archive: round trips checked with independent readers, plans, exports."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import struct
import subprocess
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapefile  # pyshp: an independent shapefile reader
import shapely
from pyproj import Transformer
from shapely.geometry import shape
from test_io_support import X0, Y0, make_store, plots_frame, sha256, write_folder, zone_frames

from geo import archive
from geo.io import (
    ImportPlan,
    apply_import,
    check_where,
    export_bytes,
    export_layer_names,
    export_layers,
    load_upload,
    parse_where,
    plan_import,
    read_upload,
    to_arrow,
)
from geo.layers import FEATURE_LAYERS, get_layer
from geo.store import open_store
from geo.validate import ValidationError
from zoneplan.cli import main

PUBLIC = [*FEATURE_LAYERS, "targets"]


# ---------------------------------------------------------------------------
# helpers: canonical values, so files of every format compare equal


def canon(ftype: str, value):
    """One value in a comparable form (None for missing, ISO dates, rounded floats)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str) and value == "":
        return None
    if ftype == "date":
        return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)[:10]
    if ftype == "bool":
        return bool(value)
    if ftype == "int":
        return int(value)
    if ftype == "float":
        return round(float(value), 6)
    return str(value)


def canon_row(layer: str, row: dict, *, computed: bool = False) -> dict:
    lyr = get_layer(layer)
    fields = lyr.export_fields if computed else lyr.input_fields
    return {f.name: canon(f.type, row.get(f.name)) for f in fields}


def pyshp_rows(folder: Path, layer: str) -> dict[str, tuple[dict, object]]:
    """Rows of ``<layer>.shp`` (or ``.dbf``) read with pyshp, keyed by id."""
    lyr = get_layer(layer)
    if lyr.is_feature:
        reader = shapefile.Reader(str(folder / f"{layer}.shp"), encoding="utf-8")
        shapes = [shape(s.__geo_interface__) for s in reader.shapes()]
    else:
        reader = shapefile.Reader(dbf=open(folder / f"{layer}.dbf", "rb"), encoding="utf-8")
        shapes = [None] * len(reader)
    names = [f[0] for f in reader.fields[1:]]
    out = {}
    for rec, geom in zip(reader.records(), shapes):
        row = dict(zip(names, list(rec)))
        out[str(row[lyr.key])] = (row, geom)
    reader.close()
    return out


def gpkg_rows(path: Path, layer: str) -> dict[str, tuple[dict, object]]:
    """Rows of one GeoPackage table read with sqlite3 and a hand-written blob decoder."""
    lyr = get_layer(layer)
    conn = sqlite3.connect(path)
    cur = conn.execute(f'SELECT * FROM "{layer}"')
    names = [d[0] for d in cur.description]
    out = {}
    for values in cur.fetchall():
        row = dict(zip(names, values))
        geom = None
        if lyr.is_feature:
            blob = row.pop("geom")
            assert blob[:2] == b"GP"
            env = (0, 32, 48, 48, 64)[(blob[3] >> 1) & 7]
            srs = struct.unpack("<i" if blob[3] & 1 else ">i", blob[4:8])[0]
            row["_srs"] = srs
            geom = shapely.from_wkb(blob[8 + env :])
        out[str(row[lyr.key])] = (row, geom)
    conn.close()
    return out


def same_geometry(a, b, tol: float) -> bool:
    a, b = shapely.normalize(a), shapely.normalize(b)
    return shapely.equals_exact(a, b, tolerance=tol) or shapely.hausdorff_distance(a, b) <= tol


def assert_same(layer: str, expected: dict, got: dict, *, tol: float = 0.001):
    """Every feature of ``expected`` is in ``got`` with equal attributes and geometry."""
    assert set(got) == set(expected), layer
    for key, (row, geom) in expected.items():
        other_row, other_geom = got[key]
        assert canon_row(layer, other_row) == canon_row(layer, row), (layer, key)
        if geom is not None:
            assert same_geometry(geom, other_geom, tol), (layer, key, geom.wkt, other_geom.wkt)


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The small zone as shapefiles (written by geo.io.write_shapefile)."""
    return write_folder(tmp_path_factory.mktemp("src") / "shapefiles")


@pytest.fixture(scope="module")
def db(tmp_path_factory, source) -> Path:
    """A store built from ``source`` by ``zoneplan import`` (shp -> store), layer by layer."""
    path = make_store(tmp_path_factory.mktemp("db") / "zone.gpkg", {})
    for layer in PUBLIC:
        suffix = "shp" if get_layer(layer).is_feature else "dbf"
        assert main(["import", layer, str(source / f"{layer}.{suffix}"), "--db", str(path)]) == 0
    return path


# ---------------------------------------------------------------------------
# round trips


def test_shp_store_shp_round_trip_pyshp_and_geopandas(db, source, tmp_path):
    out = tmp_path / "all.zip"
    assert main(["export", "all", "--db", str(db), "--format", "shp", "-o", str(out)]) == 0
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "x")
    for layer in FEATURE_LAYERS:
        assert {f"{layer}{s}" for s in (".shp", ".shx", ".dbf", ".prj", ".cpg")} <= names
        assert (tmp_path / "x" / f"{layer}.cpg").read_text() == "UTF-8"
    assert {"targets.dbf", "targets.cpg"} <= names
    assert not any(n.startswith(("users", "audit", "applications")) for n in names)
    for layer in PUBLIC:
        assert_same(layer, pyshp_rows(source, layer), pyshp_rows(tmp_path / "x", layer))
    # geopandas agrees, and the computed area is exported
    plots = gpd.read_file(tmp_path / "x" / "plots.shp")
    assert plots.crs.to_epsg() == 32643
    assert np.allclose(plots["area_ha"], plots.area / 10_000)
    assert "ТОО «Алматы Металл»" in set(plots["resident"])


def test_store_to_gpkg_keeps_schema_types(db, source, tmp_path):
    out = tmp_path / "all.gpkg"
    assert main(["export", "all", "--db", str(db), "-o", str(out)]) == 0
    conn = sqlite3.connect(out)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 10200  # GeoPackage 1.2
    info = subprocess.run(["ogrinfo", "-so", str(out)], capture_output=True, text=True)
    assert info.returncode == 0 and "partially supported" not in info.stderr
    types = {r[1]: r[2] for r in conn.execute('PRAGMA table_info("plots")')}
    contents = {r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents")}
    conn.close()
    assert types["rail_need"] == "BOOLEAN" and types["jobs"].startswith("INT")
    assert types["invest"] in ("REAL", "DOUBLE") and types["plot_id"] == "TEXT"
    assert contents == set(PUBLIC)
    for layer in PUBLIC:
        got = gpkg_rows(out, layer)
        assert_same(layer, pyshp_rows(source, layer), got)
        if get_layer(layer).is_feature:
            assert {row["_srs"] for row, _ in got.values()} == {32643}
    stations = gpd.read_file(out, layer="rail_stations")
    assert stations.loc[0, "status"] == "closed" and stations.loc[0, "name"] == "Индустриальная"


def _geojson_rows(path: Path, layer: str, *, to_utm: bool) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    tr = Transformer.from_crs(4326, 32643, always_xy=True)
    out = {}
    for feat in doc["features"]:
        geom = feat["geometry"] and shape(feat["geometry"])
        if geom is not None and to_utm:
            geom = shapely.transform(
                geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))
            )
        out[str(feat["properties"][get_layer(layer).key])] = (feat["properties"], geom)
    return out


def test_store_to_geojson_wgs84_rfc7946(db, source, tmp_path):
    out = tmp_path / "all.zip"
    assert main(["export", "all", "--db", str(db), "--format", "geojson", "-o", str(out)]) == 0
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == sorted(f"{n}.geojson" for n in PUBLIC)
        zf.extractall(tmp_path / "x")
    for layer in PUBLIC:
        path = tmp_path / "x" / f"{layer}.geojson"
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert "crs" not in doc
        # 9 decimals of a degree are ~0.1 mm here
        assert_same(
            layer, pyshp_rows(source, layer), _geojson_rows(path, layer, to_utm=True), tol=0.001
        )
    text = (tmp_path / "x" / "plots.geojson").read_text(encoding="utf-8")
    coords = json.loads(text)["features"][0]["geometry"]["coordinates"][0]
    assert all(len(repr(c).split(".")[1]) <= 9 for xy in coords for c in xy)
    assert 76 < coords[0][0] < 78 and 43 < coords[0][1] < 44
    ring = shapely.LinearRing(coords)
    assert ring.is_ccw  # RFC 7946 exterior rings are counter-clockwise


def test_geojson_in_working_crs_carries_crs_member(db, source, tmp_path):
    out = tmp_path / "plots.geojson"
    assert main(["export", "plots", "--db", str(db), "-o", str(out), "--crs", "EPSG:32643"]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert "32643" in doc["crs"]["properties"]["name"]
    assert_same("plots", pyshp_rows(source, "plots"), _geojson_rows(out, "plots", to_utm=False))


def test_import_round_trip_every_format(db, tmp_path):
    """Files exported by the service import back into an empty store unchanged."""
    store = open_store(db)
    empty = tmp_path / "empty.gpkg"
    make_store(empty, {})
    target = open_store(empty)
    for fmt, name in (("shp", "a.zip"), ("gpkg", "a.gpkg"), ("geojson", "a.zip")):
        out = export_layers(store, "all", fmt, tmp_path / fmt / name)
        for layer in ("plots", "substations", "storm_sewers", "targets"):
            plan = plan_import(target, layer, read_upload(out, layer), mode="replace")
            assert plan.ok, plan.problems
            apply_import(target, plan, user="test")
            before, after = store.read(layer), target.read(layer)
            rows = {r[get_layer(layer).key]: r for r in before.to_dict("records")}
            for r in after.to_dict("records"):
                assert canon_row(layer, r, computed=True) == canon_row(
                    layer, rows[r[get_layer(layer).key]], computed=True
                ), (fmt, layer)
                if "geometry" in r:
                    tol = 0.02 if fmt == "geojson" else 0.001
                    assert same_geometry(
                        r["geometry"],
                        rows[r["plot_id" if layer == "plots" else "asset_id"]]["geometry"],
                        tol,
                    )


# ---------------------------------------------------------------------------
# planning


def test_plan_counts_and_preview(db, tmp_path):
    store = open_store(db)
    extra = plots_frame(3, start=10)
    plan = plan_import(store, "plots", extra)
    assert isinstance(plan, ImportPlan) and plan.ok
    assert (plan.adds, len(plan.updates), plan.removals) == (3, 0, 0)
    both = pd.concat([plots_frame(2), extra], ignore_index=True)
    both.loc[0, "cadastre"] = "999"
    plan = plan_import(store, "plots", gpd.GeoDataFrame(both, crs=32643), mode="replace")
    assert (plan.adds, len(plan.updates), plan.unchanged, plan.removals) == (3, 2, 0, 4)
    assert plan.removed == {
        "P-002": "available",
        "P-003": "occupied",
        "P-004": "available",
        "P-005": "occupied",
    }
    assert plan.removals_by_status == {"available": 2, "occupied": 2}
    assert plan.changes("P-000") == [("cadastre", plan.before["P-000"]["cadastre"], "999")]
    assert [p.reason for p in plan.problems] == [
        "a replace never removes committed plots, and the file lacks 2 of them: P-003 "
        "(occupied), P-005 (occupied). Put them in the file, or update instead of replacing "
        "(nothing is then removed)"
    ]
    preview = plan.to_dict()
    assert not preview["ok"] and preview["features"] == 5
    assert preview["removed"][1] == {"id": "P-003", "status": "occupied"}
    json.dumps(preview)


def test_plan_reports_every_problem_with_index_and_id(db):
    store = open_store(db)
    frame = plots_frame(3, start=20)
    frame.loc[1, "status"] = "sold"
    frame["jobs"] = frame["jobs"].astype(object)
    frame.loc[2, "jobs"] = "many"
    plan = plan_import(store, "plots", frame)
    assert not plan.ok and plan.bad_features == 2
    text = [str(p) for p in plan.problems]
    assert any(t.startswith("feature 1 (P-021): status: 'sold' is not one of") for t in text)
    assert any(t.startswith("feature 2 (P-022): jobs:") for t in text)
    with pytest.raises(ValidationError):
        apply_import(store, plan)


def test_apply_rechecks_when_store_changed(tmp_path):
    path = make_store(tmp_path / "z.gpkg")
    store = open_store(path)
    plan = plan_import(store, "plots", plots_frame(2, start=30))
    assert plan.ok
    other = plots_frame(1, start=30)
    other["plot_id"] = ["Q-030"]
    store.insert("plots", other, user="other")  # someone was faster, on the same land
    before = sha256(path)
    with pytest.raises(ValidationError, match="overlaps existing plot Q-030"):
        apply_import(store, plan)
    assert sha256(path) == before


def test_load_upload_accepts_bytes_and_reprojects(db, tmp_path):
    out = export_layers(open_store(db), "gates", "geojson", tmp_path / "gates.geojson")
    frame = load_upload(out.read_bytes(), "gates", filename="gates.geojson")
    assert frame.crs.to_epsg() == 32643
    assert frame.geometry.iloc[0].distance(shapely.Point(X0, Y0 - 100)) < 0.02


def test_where_is_typed_by_the_schema():
    assert parse_where("plots", ["status=available", "jobs=12"]) == {
        "status": "available",
        "jobs": 12,
    }
    assert parse_where("plots", ["status=available", "status=occupied"]) == {
        "status": ["available", "occupied"]
    }
    assert check_where("plots", {"rail_need": "yes"}) == {"rail_need": True}
    with pytest.raises(ValueError, match="has no field 'colour'"):
        parse_where("plots", ["colour=red"])
    with pytest.raises(ValueError, match="not a whole number"):
        parse_where("plots", ["jobs=lots"])
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_where("plots", ["status"])
    with pytest.raises(ValueError, match="version"):
        parse_where("plots", ["version=1"])


def test_export_where_filters_without_sql(db, tmp_path):
    store = open_store(db)
    out = export_layers(
        store,
        "plots",
        "gpkg",
        tmp_path / "p.gpkg",
        where=parse_where("plots", ["status=occupied", "rail_need=false"]),
    )
    rows = gpkg_rows(out, "plots")
    assert set(rows) == {"P-001", "P-003", "P-005"}
    odd = "x' OR '1'='1"
    out = export_layers(store, "plots", "gpkg", tmp_path / "q.gpkg", where={"plot_id": odd})
    assert gpkg_rows(out, "plots") == {}


def test_export_layer_names_and_bytes(db):
    assert export_layer_names("all") == PUBLIC
    with pytest.raises(ValueError, match="never exported"):
        export_layer_names("users")
    with pytest.raises(ValueError, match="never exported"):
        export_layer_names("applications", include_private=False)
    data, name, media = export_bytes(open_store(db), "plots", "shp")
    assert (name, media) == ("plots.zip", "application/zip") and data[:2] == b"PK"
    data, name, media = export_bytes(open_store(db), "roads", "geojson")
    assert name == "roads.geojson" and json.loads(data)["features"][0]["properties"]["class"]


def test_failed_export_leaves_no_file(db, tmp_path, monkeypatch):
    import geo.io.export as gio  # where export_layers looks its writer up

    calls = []

    def boom(layer, table, **kw):
        calls.append(layer)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(layer, table, **kw)

    real = gio.shapefile_parts
    monkeypatch.setattr(gio, "shapefile_parts", boom)
    out = tmp_path / "all.zip"
    out.write_bytes(b"previous export")
    with pytest.raises(OSError, match="disk full"):
        export_layers(open_store(db), "all", "shp", out)
    assert out.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.zip"]


def test_to_arrow_fast_and_fallback_paths_agree():
    lyr = get_layer("rail_stations")
    frame = pd.DataFrame(
        {
            "asset_id": ["A", "B"],
            "since": ["2024-01-02", None],
            "built_yr": pd.array([1970, None], dtype="Int64"),
            "status": ["closed", "operational"],
        }
    )
    odd = frame.assign(since=[dt.date(2024, 1, 2), None], built_yr=[1970.0, np.nan])
    a = to_arrow(lyr, frame.assign(geometry=[shapely.Point(0, 0)] * 2))
    b = to_arrow(lyr, odd.assign(geometry=[shapely.Point(0, 0)] * 2))
    assert a.equals(b)
    assert a.column("since").to_pylist() == [dt.date(2024, 1, 2), None]


# ---------------------------------------------------------------------------
# archives


def _zip(path: Path, members: dict[str, bytes], *, symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.create_system = 3
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    "members, symlink, message",
    [
        ({"../evil.txt": b"x"}, None, "outside the extraction folder"),
        ({"a/../../evil.txt": b"x"}, None, "outside the extraction folder"),
        ({"/etc/evil.txt": b"x"}, None, "absolute path"),
        ({"C:/evil.txt": b"x"}, None, "absolute path"),
        ({"ok.txt": b"x"}, "link.shp", "symbolic link"),
    ],
)
def test_unsafe_members_refused_before_extraction(tmp_path, members, symlink, message):
    path = _zip(tmp_path / "bad.zip", members, symlink=symlink)
    with pytest.raises(archive.ArchiveError, match=message):
        archive.extract_zip(path, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()


def test_limits_and_corruption(tmp_path, monkeypatch):
    big = _zip(tmp_path / "big.zip", {"a.bin": b"\0" * 3_000_000})
    monkeypatch.setenv("ZONEPLAN_MAX_UNZIP_MB", "1")
    with pytest.raises(archive.ArchiveError, match="above the limit of 1 MiB"):
        archive.check_zip(big)
    monkeypatch.setenv("ZONEPLAN_MAX_ZIP_MEMBERS", "5")
    many = _zip(tmp_path / "many.zip", {f"{i}.txt": b"x" for i in range(6)})
    with pytest.raises(archive.ArchiveError, match="6 members; at most 5"):
        archive.check_zip(many)
    # a member whose header understates its size is stopped while writing
    lying = bytearray(big.read_bytes())
    monkeypatch.setenv("ZONEPLAN_MAX_UNZIP_MB", "2")
    with pytest.raises(archive.ArchiveError):
        archive.extract_zip(big, tmp_path / "o1")
    # flipped bytes in the compressed data fail the CRC (or inflate) check
    good = _zip(tmp_path / "good.zip", {"a.txt": os.urandom(4096)})
    data = bytearray(good.read_bytes())
    data[60] ^= 0xFF
    (tmp_path / "crc.zip").write_bytes(bytes(data))
    with pytest.raises(archive.ArchiveError, match="corrupt|not a readable"):
        archive.extract_zip(tmp_path / "crc.zip", tmp_path / "o2")
    assert lying  # (kept for readability of the scenario above)


def test_find_dataset_choices(tmp_path):
    folder = write_folder(
        tmp_path / "f", {k: v for k, v in zone_frames().items() if k in ("roads", "gates")}
    )
    assert archive.find_dataset(folder, layer="gates").name == "gates.shp"
    with pytest.raises(archive.ArchiveError, match="choose one with --src-layer"):
        archive.find_dataset(folder, layer="plots")
    assert archive.find_dataset(folder, src_layer="ROADS").name == "roads.shp"
    (folder / "roads.shx").unlink()
    with pytest.raises(archive.ArchiveError, match="lacks its .shx"):
        archive.find_dataset(folder, src_layer="roads")
