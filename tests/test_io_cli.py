"""``zoneplan import`` / ``export`` in-process: a corpus of bad inputs, each refused with a
specific message and the store byte-for-byte unchanged; the acceptance check of exports."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapefile
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from test_io_support import X0, Y0, db, geojson_text, make_store, plots_frame, sha256, template  # noqa: F401

from geo.io import write_shapefile
from geo.layers import FEATURE_LAYERS
from geo.store import open_store
from zoneplan.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "shapefiles"
LON, LAT = 76.85, 43.33  # inside the zone


def run(*argv: str) -> int:
    return main([str(a) for a in argv])


def plot_feature(coords, **props) -> dict:
    base = {"plot_id": "N-1", "status": "available"}
    geom = coords if isinstance(coords, dict) else {"type": "Polygon", "coordinates": coords}
    return {"type": "Feature", "properties": {**base, **props}, "geometry": geom}


def lonlat_square(lon: float, lat: float, d: float = 0.0005) -> list:
    return [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]]


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def shp_parts(folder: Path, frame, layer: str = "plots", name: str = "plots") -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    write_shapefile(layer, frame, folder, name=name)
    return {p.name: p.read_bytes() for p in sorted(folder.glob(f"{name}.*"))}


# ---------------------------------------------------------------------------
# the corpus: (layer, builder(tmp) -> file, extra args, expected message fragments)


def _self_intersecting(tmp: Path) -> Path:
    bow = [
        [[LON, LAT], [LON + 0.001, LAT + 0.001], [LON + 0.001, LAT], [LON, LAT + 0.001], [LON, LAT]]
    ]
    return write(tmp / "bow.geojson", geojson_text([plot_feature(bow, plot_id="BOW")]))


def _point_for_polygon(tmp: Path) -> Path:
    pt = {"type": "Point", "coordinates": [LON, LAT]}
    return write(
        tmp / "pt.geojson",
        geojson_text([plot_feature(lonlat_square(LON, LAT)), plot_feature(pt, plot_id="PT")]),
    )


def _unclosed_ring(tmp: Path) -> Path:
    text = (
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
        '{"plot_id": "OPEN", "status": "available"}, "geometry": {"type": "Polygon", '
        f'"coordinates": [[[{LON}, {LAT}], [{LON + 0.001}, {LAT}], [{LON + 0.001}, '
        f"{LAT + 0.001}], [{LON}, {LAT + 0.001}]]]}}}}]}}"
    )
    return write(tmp / "open.geojson", text)


def _metres_as_degrees(tmp: Path) -> Path:
    sq = [[[X0, Y0], [X0 + 50, Y0], [X0 + 50, Y0 + 50], [X0, Y0 + 50], [X0, Y0]]]
    return write(tmp / "utm.geojson", geojson_text([plot_feature(sq, plot_id="UTM")]))


def _far_away(tmp: Path) -> Path:  # Astana
    return write(
        tmp / "far.geojson",
        geojson_text([plot_feature(lonlat_square(71.43, 51.13), plot_id="AST")]),
    )


def _wrong_types(tmp: Path) -> Path:
    feats = [
        plot_feature(lonlat_square(LON, LAT), plot_id="T-1", jobs="many"),
        plot_feature(lonlat_square(LON + 0.002, LAT), plot_id="T-2", status="sold"),
        plot_feature(
            lonlat_square(LON + 0.004, LAT),
            plot_id="T-3",
            hazard=9,
            rail_need="perhaps",
            sectors="machine,spaceships",
        ),
    ]
    return write(tmp / "types.geojson", geojson_text(feats))


def _overlaps_existing(tmp: Path) -> Path:
    frame = plots_frame(1, start=50)
    frame.geometry = [box(X0 + 50, Y0 + 50, X0 + 150, Y0 + 150)]  # over P-000 (and P-001)
    return zip_of(tmp / "over.zip", shp_parts(tmp / "o", frame))


def _overlap_each_other(tmp: Path) -> Path:
    frame = plots_frame(2, start=60, y0=Y0 + 1000)
    frame.geometry = [
        box(X0, Y0 + 1000, X0 + 100, Y0 + 1100),
        box(X0 + 90, Y0 + 1000, X0 + 190, Y0 + 1100),
    ]
    return zip_of(tmp / "pair.zip", shp_parts(tmp / "p", frame))


def _multipart(tmp: Path) -> Path:
    frame = plots_frame(1, start=70, y0=Y0 + 1500)
    frame.geometry = [
        MultiPolygon(
            [box(X0, Y0 + 1500, X0 + 10, Y0 + 1510), box(X0 + 20, Y0 + 1500, X0 + 30, Y0 + 1510)]
        )
    ]
    return write_shapefile_file(tmp, frame)


def write_shapefile_file(tmp: Path, frame) -> Path:
    gpd.GeoDataFrame(frame).to_file(tmp / "multi.gpkg", layer="plots", driver="GPKG")
    return tmp / "multi.gpkg"


def _empty(tmp: Path) -> Path:
    return write(tmp / "empty.geojson", "")


def _truncated(tmp: Path) -> Path:
    text = geojson_text([plot_feature(lonlat_square(LON, LAT))])
    return write(tmp / "trunc.geojson", text[: len(text) // 2])


def _random_zip(tmp: Path) -> Path:
    return write(tmp / "random.zip", os.urandom(2048))


def _escaping_zip(tmp: Path) -> Path:
    parts = shp_parts(tmp / "e", plots_frame(1, start=80))
    return zip_of(tmp / "escape.zip", {f"../{k}": v for k, v in parts.items()})


def _zip_without_shp(tmp: Path) -> Path:
    return zip_of(tmp / "noshp.zip", {"readme.txt": b"plots", "plots.csv": b"plot_id\nA\n"})


def _zip_with_two(tmp: Path) -> Path:
    parts = shp_parts(tmp / "a", plots_frame(1, start=90), name="north")
    parts.update(shp_parts(tmp / "b", plots_frame(1, start=91), name="south"))
    return zip_of(tmp / "two.zip", parts)


def _gpkg_with_two(tmp: Path) -> Path:
    path = tmp / "two.gpkg"
    plots_frame(1, start=92).to_file(path, layer="north", driver="GPKG")
    plots_frame(1, start=93).to_file(path, layer="south", driver="GPKG")
    return path


def _missing_column(tmp: Path) -> Path:
    feats = [
        {
            "type": "Feature",
            "properties": {"name": "Без номера", "status": "available"},
            "geometry": {"type": "Polygon", "coordinates": lonlat_square(LON, LAT)},
        }
    ]
    return write(tmp / "nokey.geojson", geojson_text(feats))


def _contradicting_crs(tmp: Path) -> Path:
    return zip_of(tmp / "utm.zip", shp_parts(tmp / "u", plots_frame(1, start=95, y0=Y0 + 4000)))


def _crc_broken(tmp: Path) -> Path:
    good = zip_of(tmp / "good.zip", shp_parts(tmp / "c", plots_frame(1, start=96)))
    data = bytearray(good.read_bytes())
    data[120] ^= 0xFF  # inside plots.cpg/.dbf compressed data
    return write(tmp / "crc.zip", bytes(data))


def _random_gpkg(tmp: Path) -> Path:
    return write(tmp / "random.gpkg", b"SQLite format 3\x00" + os.urandom(4096))


CORPUS = {
    "self-intersecting polygon": (
        "plots",
        _self_intersecting,
        (),
        ["feature 0 (BOW)", "invalid geometry: Self-intersection"],
    ),
    "point for a polygon layer": (
        "plots",
        _point_for_polygon,
        (),
        ["feature 1 (PT)", "Point given where the layer holds Polygon"],
    ),
    "unclosed ring": (
        "plots",
        _unclosed_ring,
        (),
        ["feature 0 (OPEN)", "geometry does not parse", "closed"],
    ),
    "metres labelled as WGS84": (
        "plots",
        _metres_as_degrees,
        (),
        ["feature 0 (UTM)", "are not degrees", "labelled as WGS84"],
    ),
    "far outside the zone": (
        "plots",
        _far_away,
        (),
        ["feature 0 (AST)", "lies outside the zone's area"],
    ),
    "wrong attribute types": (
        "plots",
        _wrong_types,
        (),
        [
            "feature 0 (T-1): jobs: 'many' is not a whole number",
            "feature 1 (T-2): status: 'sold' is not one of",
            "hazard: 9 is above the maximum 5",
            "rail_need: 'perhaps' is not true or false",
            "unknown sector code(s) spaceships",
            "3 feature(s)",
        ],
    ),
    "overlaps an existing plot": (
        "plots",
        _overlaps_existing,
        (),
        ["feature 0 (P-050)", "overlaps existing plot P-000 by 2500.0 m²"],
    ),
    "plots overlap each other": (
        "plots",
        _overlap_each_other,
        (),
        ["feature 1 (P-061)", "overlaps plot P-060 (feature 0 of the input) by 1000.0 m²"],
    ),
    "multi-part polygon": (
        "plots",
        _multipart,
        (),
        ["feature 0 (P-070)", "MultiPolygon with 2 parts where the layer holds one Polygon"],
    ),
    "empty file": (
        "plots",
        _empty,
        (),
        [
            "empty.geojson is not a readable GeoJSON (GDAL: 'empty.geojson' not "
            "recognized as being in a supported file format.)"
        ],
    ),
    "truncated GeoJSON": (
        "plots",
        _truncated,
        (),
        ["trunc.geojson is not a readable GeoJSON (GDAL: "],
    ),
    "random bytes named .zip": (
        "plots",
        _random_zip,
        (),
        ["random.zip is not a readable zip archive"],
    ),
    "zip with ../ members": (
        "plots",
        _escaping_zip,
        (),
        ["'../plots.cpg'", "outside the extraction folder"],
    ),
    "zip without a shapefile": (
        "plots",
        _zip_without_shp,
        (),
        ["holds no shapefile (.shp)", "plots.csv", "readme.txt"],
    ),
    "zip with two shapefiles": (
        "plots",
        _zip_with_two,
        (),
        ["holds 2 files (north, south)", "--src-layer"],
    ),
    "GeoPackage with two layers": (
        "plots",
        _gpkg_with_two,
        (),
        ["two.gpkg holds several layers (north, south)", "--src-layer NAME"],
    ),
    "no id column": (
        "plots",
        _missing_column,
        (),
        ["input: plot_id: the input has no column 'plot_id'"],
    ),
    "CRS contradicting --crs": (
        "plots",
        _contradicting_crs,
        ("--crs", "4326"),
        ["declares WGS 84 / UTM zone 43N but the CRS given says EPSG:4326"],
    ),
    "CRC-corrupt zip": ("plots", _crc_broken, (), ["crc.zip"]),
    "random bytes named .gpkg": (
        "plots",
        _random_gpkg,
        (),
        ["random.gpkg is not a readable GeoPackage (GDAL: "],
    ),
}


@pytest.mark.parametrize("case", list(CORPUS))
def test_bad_input_refused_and_store_unchanged(case, db, tmp_path, capsys):
    layer, build, extra, fragments = CORPUS[case]
    path = build(tmp_path)
    before = sha256(db)
    assert run("import", layer, path, "--db", db, *extra) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (case, err)
    assert sha256(db) == before
    assert not Path(f"{db}-journal").exists()


def test_shapefile_without_prj_refused_then_accepted_with_crs(db, tmp_path, capsys):
    parts = shp_parts(tmp_path / "n", plots_frame(2, start=100, y0=Y0 + 2000))
    folder = tmp_path / "noprj"
    folder.mkdir()
    for name, data in parts.items():
        if not name.endswith(".prj"):
            (folder / name).write_bytes(data)
    before = sha256(db)
    assert run("import", "plots", folder / "plots.shp", "--db", db) == 1
    assert "plots.shp has no .prj file" in capsys.readouterr().err
    assert sha256(db) == before
    assert run("import", "plots", folder / "plots.shp", "--db", db, "--crs", "EPSG:32643") == 0
    assert open_store(db).count("plots") == 8


def test_shapefile_without_cpg_keeps_utf8_cyrillic(db, tmp_path):
    parts = shp_parts(tmp_path / "c", plots_frame(2, start=110, y0=Y0 + 2500))
    path = zip_of(
        tmp_path / "nocpg.zip", {k: v for k, v in parts.items() if not k.endswith(".cpg")}
    )
    assert run("import", "plots", path, "--db", db) == 0
    assert open_store(db).get("plots", "P-111")["resident"] == "ТОО «Алматы Металл»"


def test_oversized_archive_refused(db, tmp_path, capsys, monkeypatch):
    big = plots_frame(400, start=200, y0=Y0 + 5000, size=5)
    path = zip_of(tmp_path / "big.zip", shp_parts(tmp_path / "b", big))
    monkeypatch.setenv("ZONEPLAN_MAX_UNZIP_MB", "0.05")
    before = sha256(db)
    assert run("import", "plots", path, "--db", db) == 1
    assert "above the limit of 0 MiB (ZONEPLAN_MAX_UNZIP_MB)" in capsys.readouterr().err
    assert sha256(db) == before
    monkeypatch.setenv("ZONEPLAN_MAX_UNZIP_MB", "50")
    assert run("import", "plots", path, "--db", db) == 0


def test_many_bad_features_listing_is_capped(db, tmp_path, capsys):
    frame = plots_frame(120, start=300, y0=Y0 + 6000, size=5)
    frame["status"] = "sold"
    path = zip_of(tmp_path / "many.zip", shp_parts(tmp_path / "m", frame))
    assert run("import", "plots", path, "--db", db) == 1
    err = capsys.readouterr().err
    # 120 near-identical problems read as one line with a count and the first few ids
    assert err.count("is not one of") == 1
    assert re.search(
        r"120 features: status: 'sold' is not one of .* \(P-300, P-301, P-302 and 117 more\)", err
    )
    assert "120 problem(s) in 120 feature(s); nothing was written" in err


def test_import_add_replace_src_layer_and_dry_run(db, tmp_path, capsys):
    path = _zip_with_two(tmp_path)
    assert run("import", "plots", path, "--db", db, "--src-layer", "south", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "plots: 1 feature(s) from two.zip:south.shp: 1 new" in out
    assert "dry run, nothing written" in out
    assert open_store(db).count("plots") == 6
    assert run("import", "plots", path, "--db", db, "--src-layer", "south") == 0
    assert open_store(db).get("plots", "P-091")["status"] == "candidate"
    gp = _gpkg_with_two(tmp_path)
    assert run("import", "plots", gp, "--db", db, "--src-layer", "north") == 0
    capsys.readouterr()
    assert (
        run(
            "import",
            "plots",
            gp,
            "--db",
            db,
            "--src-layer",
            "south",
            "--replace",
            "--yes",
            "--user",
            "gis",
        )
        == 1
    )  # P-001, P-003, P-005 are occupied
    assert "P-001 (occupied)" in capsys.readouterr().err
    for key in ("P-001", "P-003", "P-005"):
        open_store(db).update("plots", key, {"status": "available"})
    assert (
        run("import", "plots", gp, "--db", db, "--src-layer", "south", "--replace", "--user", "gis")
        == 1
    )  # the removals need --yes
    assert "run it again with --yes" in capsys.readouterr().err
    assert (
        run(
            "import",
            "plots",
            gp,
            "--db",
            db,
            "--src-layer",
            "south",
            "--replace",
            "--yes",
            "--user",
            "gis",
        )
        == 0
    )
    store = open_store(db)
    assert store.read("plots")["plot_id"].tolist() == ["P-093"]
    audit = store.read("audit")
    assert "gis" in set(audit["username"])


def test_geojson_import_in_wgs84_is_reprojected(db, tmp_path):
    feats = [
        plot_feature(
            lonlat_square(LON + 0.01, LAT + 0.01),
            plot_id="G-1",
            resident="Қазақ компаниясы",
            jobs=7,
            rail_need=True,
            since="2024-01-01",
        )
    ]
    path = write(tmp_path / "one.geojson", geojson_text(feats))
    assert run("import", "plots", path, "--db", db) == 0
    row = open_store(db).get("plots", "G-1")
    assert row["resident"] == "Қазақ компаниясы" and row["jobs"] == 7 and row["rail_need"] is True
    assert 600_000 < row["geometry"].centroid.x < 700_000
    assert abs(row["area_ha"] - row["geometry"].area / 10_000) < 1e-4


def test_projected_geojson_with_crs_option(db, tmp_path):
    sq = [
        [
            [X0, Y0 + 7000],
            [X0 + 50, Y0 + 7000],
            [X0 + 50, Y0 + 7050],
            [X0, Y0 + 7050],
            [X0, Y0 + 7000],
        ]
    ]
    path = write(tmp_path / "legacy.geojson", geojson_text([plot_feature(sq, plot_id="L-1")]))
    assert run("import", "plots", path, "--db", db, "--crs", "32643") == 0
    geom = open_store(db).get("plots", "L-1")["geometry"]
    assert shapely.equals_exact(geom, Polygon(sq[0]), tolerance=1e-6)


def test_export_errors_are_messages(db, tmp_path, capsys):
    out = tmp_path / "x.zip"
    assert run("export", "plots", "--db", db, "-o", out, "--where", "colour=red") == 1
    assert "plots has no field 'colour'" in capsys.readouterr().err
    assert run("export", "plots", "--db", db, "-o", out, "--where", "jobs=ten") == 1
    assert "'ten' is not a whole number" in capsys.readouterr().err
    assert run("export", "all", "--db", db, "-o", out, "--where", "status=closed") == 1
    assert "name the layer instead of 'all'" in capsys.readouterr().err
    assert run("export", "plots", "--db", db, "-o", tmp_path / "x.dat") == 1
    assert "cannot tell the format" in capsys.readouterr().err
    assert run("export", "plots", "--db", db, "-f", "shp", "-o", tmp_path / "x.dat") == 1
    assert "name the output <name>.zip" in capsys.readouterr().err
    assert run("export", "plots", "--db", tmp_path / "nope.gpkg", "-o", out) == 1
    assert "no store at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("export", "users", "--db", db, "-o", out)
    assert not out.exists()


def test_export_where_and_crs(db, tmp_path):
    out = tmp_path / "occ.zip"
    assert (
        run(
            "export",
            "plots",
            "--db",
            db,
            "-o",
            out,
            "--where",
            "status=occupied",
            "--where",
            "jobs=11",
            "--crs",
            "4326",
        )
        == 0
    )
    with zipfile.ZipFile(out) as zf:
        zf.extractall(tmp_path / "x")
    reader = shapefile.Reader(str(tmp_path / "x" / "plots.shp"), encoding="utf-8")
    assert [r["plot_id"] for r in reader.records()] == ["P-001"]
    assert 76 < reader.bbox[0] < 77
    assert "GEOGCS" in (tmp_path / "x" / "plots.prj").read_text()[:10]
    reader.close()


def acceptance_check(zip_path: Path, tmp: Path) -> dict[str, list]:
    """The acceptance check of the issue: each feature layer's shapefile in the zip,
    opened with pyshp (UTF-8), with .prj and a UTF-8 .cpg, Cyrillic and statuses present."""
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp)
    records = {}
    for layer in FEATURE_LAYERS:
        for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            assert f"{layer}{suffix}" in names, f"{layer}{suffix}"
        assert (tmp / f"{layer}.cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
        with shapefile.Reader(str(tmp / f"{layer}.shp"), encoding="utf-8") as reader:
            records[layer] = [r.as_dict() for r in reader.records()]
    text = json.dumps(records, ensure_ascii=False, default=str)
    assert any("\u0400" <= ch <= "\u04ff" for ch in text), "no Cyrillic"
    assert any(r["status"] == "closed" for r in records["rail_stations"])
    assert any(r["status"] == "under_repair" for r in records["substations"])
    assert any(r["status"] == "not_commissioned" for r in records["storm_sewers"])
    return records


def test_acceptance_export_all_shp_small_zone(db, tmp_path):
    out = tmp_path / "all.zip"
    assert run("export", "all", "--db", db, "--format", "shp", "-o", out) == 0
    acceptance_check(out, tmp_path / "x")


@pytest.mark.skipif(not (SAMPLE / "plots.shp").exists(), reason="sample zone not generated yet")
def test_acceptance_on_the_sample_zone(tmp_path):
    db = tmp_path / "sample.gpkg"
    assert run("init", "--db", db, "--force") == 0
    out = tmp_path / "all.zip"
    assert run("export", "all", "--db", db, "--format", "shp", "-o", out) == 0
    records = acceptance_check(out, tmp_path / "x")
    store = open_store(db)
    for layer in FEATURE_LAYERS:
        assert len(records[layer]) == store.count(layer), layer
    # and back: the exported plots import into a fresh store unchanged
    fresh = tmp_path / "fresh.gpkg"
    make_store(fresh, {})
    assert run("import", "plots", out, "--db", fresh) == 0
    a, b = store.read("plots"), open_store(fresh).read("plots")
    assert a.drop(columns=["geometry", "version"]).equals(b.drop(columns=["geometry", "version"]))
    assert (a.geometry.hausdorff_distance(b.geometry, align=False) < 0.001).all()
    conn = sqlite3.connect(fresh)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
