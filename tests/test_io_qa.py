"""Regression tests for the QA findings on import/export (one section per finding)."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapefile  # pyshp
import shapely
from test_io_support import X0, Y0, db, geojson_text, make_store, plots_frame, sha256, template  # noqa: F401

from geo.io import (
    ShapefileLimitWarning,
    export_layer_names,
    export_layers,
    import_envelope,
    plan_import,
    write_shapefile,
)
from geo.layers import get_layer
from geo.store import open_store
from geo.validate import ZONE_ENVELOPE, ValidationError
from zoneplan.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "shapefiles"
needs_sample = pytest.mark.skipif(
    not (SAMPLE / "plots.shp").exists(), reason="sample zone not generated yet"
)


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sample") / "sample.gpkg"
    assert run("init", "--db", path, "--force") == 0
    return path


def run(*argv) -> int:
    return main([str(a) for a in argv])


# ---------------------------------------------------------------------------
# 1. export must never overwrite the store; the output folder must exist


def test_export_refuses_to_overwrite_the_store(db, tmp_path, capsys):
    before = sha256(db)
    assert run("export", "plots", "--db", db, "-o", db) == 1
    err = capsys.readouterr().err
    assert "is the store itself" in err and "nothing was written" in err
    # the same file by another spelling (relative path through ..)
    other = tmp_path / "sub" / ".." / db.name
    (tmp_path / "sub").mkdir()
    assert run("export", "all", "--db", db, "-f", "gpkg", "-o", other) == 1
    assert "is the store itself" in capsys.readouterr().err
    assert sha256(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", db.name]
    assert open_store(db).count("roads") == 1


def test_export_refuses_store_through_a_link(db, tmp_path):
    link = tmp_path / "link.gpkg"
    link.symlink_to(db)
    before = sha256(db)
    with pytest.raises(ValueError, match="is the store itself"):
        export_layers(open_store(db), "plots", "gpkg", link)
    assert sha256(db) == before and link.is_symlink()


def test_export_refuses_missing_folder_and_overwrites_plain_files(db, tmp_path, capsys):
    missing = tmp_path / "nonexistdir"
    assert run("export", "plots", "--db", db, "-o", missing / "x.geojson") == 1
    assert f"folder {missing} does not exist" in capsys.readouterr().err
    assert not missing.exists()
    assert run("export", "plots", "--db", db, "-o", tmp_path) == 1
    assert "is a folder; give a file name" in capsys.readouterr().err
    out = tmp_path / "p.geojson"
    out.write_text("old")
    assert run("export", "plots", "--db", db, "-o", out) == 0
    assert out.read_text().startswith("{")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.geojson", "zone.gpkg"]


# ---------------------------------------------------------------------------
# 2. our own GeoJSON imports back (shared plot edges do not turn into overlaps)


@needs_sample
def test_sample_geojson_exports_reimport_cleanly(sample_db, tmp_path, capsys):
    layers = export_layer_names("all")
    for layer in layers:
        out = tmp_path / f"{layer}.geojson"
        assert run("export", layer, "--db", sample_db, "-o", out) == 0
        capsys.readouterr()
        assert run("import", layer, out, "--db", sample_db, "--replace", "--dry-run") == 0, (
            layer,
            capsys.readouterr().err,
        )
        assert "dry run, nothing written" in capsys.readouterr().out
    every = tmp_path / "all.zip"
    assert run("export", "all", "--db", sample_db, "-f", "geojson", "-o", every) == 0
    for layer in layers:
        capsys.readouterr()
        assert (
            run(
                "import",
                layer,
                every,
                "--db",
                sample_db,
                "--src-layer",
                layer,
                "--replace",
                "--dry-run",
            )
            == 0
        ), (layer, capsys.readouterr().err)


# ---------------------------------------------------------------------------
# 3. text the DBF cannot hold is written cut, with a clear warning


def test_shapefile_warns_about_text_over_254_bytes(tmp_path):
    frame = plots_frame(4)
    frame["project"] = ["ok", "Ж" * 200, "x" * 254, "y" * 300]  # 400 bytes, 254, 300
    with pytest.warns(ShapefileLimitWarning) as caught:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # pyogrio's own note is silenced
            write_shapefile("plots", frame, tmp_path)
    assert len(caught) == 1
    text = str(caught[0].message)
    for part in ("plots.project", "2 value(s)", "254 bytes", "plot_id P-001", "--format gpkg"):
        assert part in text, text
    with shapefile.Reader(
        str(tmp_path / "plots.shp"), encoding="utf-8", encodingErrors="ignore"
    ) as reader:
        assert len(reader) == 4  # still written
        assert reader.record(2)["project"] == "x" * 254


def test_shapefile_export_without_long_text_is_silent(db, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export_layers(open_store(db), "all", "shp", tmp_path / "all.zip")


def test_export_command_warns_for_long_text(db, tmp_path):
    store = open_store(db)
    store.update("plots", "P-000", {"project": "Ц" * 150})
    with pytest.warns(ShapefileLimitWarning, match="plots.project: 1 value"):
        export_layers(store, "plots", "shp", tmp_path / "p.zip")
    assert (tmp_path / "p.zip").exists()


# ---------------------------------------------------------------------------
# 6. suffix and format agree; a single layer may be written as plain .shp files


@pytest.mark.parametrize(
    "fmt, name, layer, message",
    [
        ("geojson", "p.zip", "plots", "-o p.zip does not fit --format geojson for one layer"),
        ("gpkg", "p.geojson", "plots", "-o p.geojson does not fit --format gpkg; use .gpkg"),
        ("gpkg", "p.zip", "plots", "-o p.zip does not fit --format gpkg; use .gpkg"),
        ("geojson", "p.gpkg", "plots", "-o p.gpkg does not fit --format geojson; use .geojson"),
        ("shp", "p.gpkg", "plots", "name the output <name>.zip"),
        ("shp", "all.shp", "all", "use a .zip for several layers"),
        (None, "all.shp", "all", "use a .zip for several layers"),
    ],
)
def test_export_suffix_must_fit_format(db, tmp_path, capsys, fmt, name, layer, message):
    fmt_args = ("-f", fmt) if fmt else ()
    assert run("export", layer, "--db", db, *fmt_args, "-o", tmp_path / name) == 1
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zone.gpkg"]


def test_export_plain_shapefile_set(db, tmp_path, capsys):
    out = tmp_path / "plots.shp"
    (tmp_path / "plots.qix").write_bytes(b"stale index")
    assert run("export", "plots", "--db", db, "-o", out) == 0
    assert "wrote" in capsys.readouterr().out
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["plots.cpg", "plots.dbf", "plots.prj", "plots.shp", "plots.shx", "zone.gpkg"]
    with shapefile.Reader(str(out), encoding="utf-8") as reader:
        assert len(reader) == 6
    # and it imports back
    assert run("import", "plots", out, "--db", db, "--replace", "--dry-run") == 0
    # explicit format, another name, a geojson zip of several layers still fine
    assert run("export", "roads", "--db", db, "-f", "shp", "-o", tmp_path / "r.shp") == 0
    assert (tmp_path / "r.dbf").exists() and (tmp_path / "r.prj").exists()
    assert run("export", "all", "--db", db, "-f", "geojson", "-o", tmp_path / "g.zip") == 0
    with zipfile.ZipFile(tmp_path / "g.zip") as zf:
        assert "plots.geojson" in zf.namelist()


def test_export_table_as_plain_dbf(db, tmp_path):
    written = export_layers(open_store(db), "targets", "shp", tmp_path / "targets.shp")
    assert written == tmp_path / "targets.dbf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["targets.cpg", "targets.dbf", "zone.gpkg"]
    assert get_layer("targets").is_feature is False


# ---------------------------------------------------------------------------
# 4. degenerate geometries are refused

LON, LAT = 76.85, 43.33  # inside the small test zone's 5 km margin


def _feature(geom: dict, **props) -> dict:
    return {
        "type": "Feature",
        "geometry": geom,
        "properties": {"plot_id": "N-1", "status": "available", **props},
    }


def _square(lon: float, lat: float, d: float) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [
            [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
        ],
    }


def test_degenerate_polygons_and_lines_refused(db, tmp_path, capsys):
    path = tmp_path / "tiny.geojson"
    path.write_text(
        geojson_text(
            [
                _feature(_square(LON, LAT, 1e-6), plot_id="TINY"),
                _feature(_square(LON + 0.01, LAT, 0.0005), plot_id="OK"),
            ]
        )
    )
    before = sha256(db)
    assert run("import", "plots", path, "--db", db) == 1
    err = capsys.readouterr().err
    assert "feature 0 (TINY): geometry: degenerate polygon: area 0.01 m² (< 1 m²)" in err
    assert "(OK)" not in err
    assert sha256(db) == before
    short = tmp_path / "short.geojson"
    line = {"type": "LineString", "coordinates": [[LON, LAT], [LON + 1e-8, LAT]]}
    short.write_text(
        geojson_text(
            [
                {
                    "type": "Feature",
                    "geometry": line,
                    "properties": {
                        "asset_id": "R9",
                        "name": "stub",
                        "status": "operational",
                        "class": "local",
                    },
                }
            ]
        )
    )
    assert run("import", "roads", short, "--db", db) == 1
    assert "degenerate line: length 0.001 m (< 0.01 m)" in capsys.readouterr().err
    # the store refuses them too, whatever the caller
    tiny = plots_frame(1, start=40)
    tiny["geometry"] = shapely.box(X0, Y0 + 3000, X0 + 0.5, Y0 + 3000.5)
    with pytest.raises(ValidationError, match="degenerate polygon: area 0.25 m²"):
        open_store(db).insert("plots", tiny)


# ---------------------------------------------------------------------------
# 5. the outside-the-zone check follows the stored zone


def test_import_refused_far_from_the_stored_zone(db, tmp_path, capsys):
    store = open_store(db)
    env, note = import_envelope(store, "plots")
    zx0, zy0, zx1, zy1 = store.extent("zone")
    assert env[0] == zx0 - 5000 and env[1] == zy0 - 5000
    assert env[2] == store.extent("expansion")[2] + 5000
    far = plots_frame(2, start=50, x0=X0 - 23_500)  # ~17.5 km west: inside ZONE_ENVELOPE
    assert ZONE_ENVELOPE[0] < far.total_bounds[0]
    near = plots_frame(2, start=60, x0=X0 - 10_000)  # ~3 km west of the zone
    plan = plan_import(store, "plots", far)
    assert [p.index for p in plan.problems] == [0, 1]
    assert "lies outside the zone's area (more than 5 km from the zone" in plan.problems[0].reason
    assert plan_import(store, "plots", near).ok
    # no zone in the store: the fixed envelope applies
    bare = tmp_path / "bare.gpkg"
    make_store(bare, {})
    assert import_envelope(open_store(bare), "plots")[0] == ZONE_ENVELOPE
    assert plan_import(open_store(bare), "plots", far).ok
    # the zone's own layers are placed by the fixed envelope
    assert import_envelope(store, "zone")[0] == ZONE_ENVELOPE


# ---------------------------------------------------------------------------
# 7. unreadable files, folders and NaN coordinates explained without library noise


@pytest.mark.parametrize(
    "name, data, message",
    [
        (
            "empty.geojson",
            b"",
            "empty.geojson is not a readable GeoJSON (GDAL: 'empty.geojson' "
            "not recognized as being in a supported file format.)",
        ),
        ("junk.geojson", b"{ not json at all", "junk.geojson is not a readable GeoJSON (GDAL: "),
        ("empty.gpkg", b"", "empty.gpkg is not a readable GeoPackage (GDAL: "),
        (
            "junk.gpkg",
            b"SQLite format 3\x00" + bytes(range(256)) * 16,
            "junk.gpkg is not a readable GeoPackage (GDAL: file is not a database)",
        ),
        ("junk.shp", b"\x00" * 50, "junk.shp lacks its .shx and .dbf"),
    ],
)
def test_unreadable_files_are_explained(db, tmp_path, capsys, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    assert run("import", "plots", path, "--db", db) == 1
    err = capsys.readouterr().err
    assert message in err, err
    assert "DRIVER" not in err and "It might help" not in err and "sqlite3_prepare" not in err


def test_folder_given_as_file(db, tmp_path, capsys):
    folder = tmp_path / "plots.geojson"
    folder.mkdir()
    assert run("import", "plots", folder, "--db", db) == 1
    assert f"{folder} is a folder; give a file" in capsys.readouterr().err


def test_nan_coordinates_refused_without_warnings(db, tmp_path, capsys):
    ring = [[LON, LAT], [float("nan"), LAT], [LON + 0.001, LAT + 0.001], [LON, LAT]]
    text = geojson_text(
        [
            _feature({"type": "Polygon", "coordinates": [ring]}, plot_id="NAN"),
            _feature(_square(LON + 0.01, LAT, 0.0005), plot_id="FINE"),
        ]
    )
    path = tmp_path / "nan.geojson"
    path.write_text(text)
    frame = plots_frame(2, start=80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame.loc[1, "geometry"] = shapely.Polygon([(X0, Y0), (np.nan, Y0), (X0, Y0 + 10)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning from shapely/numpy fails the test
        assert run("import", "plots", path, "--db", db) == 1
        err = capsys.readouterr().err
        assert (
            "feature 0 (NAN): geometry: invalid geometry: coordinates that are not "
            "numbers (NaN or infinite)" in err
        )
        assert "FINE" not in err
        # a frame handed to plan_import directly is checked the same way
        plan = plan_import(open_store(db), "plots", frame)
        assert [(p.index, p.reason) for p in plan.problems] == [
            (1, "invalid geometry: coordinates that are not numbers (NaN or infinite)")
        ]


# ---------------------------------------------------------------------------
# 8. --crs is refused for GeoJSON in degrees (RFC 7946 is WGS84)


def test_crs_option_refused_for_geojson_in_degrees(db, tmp_path, capsys):
    path = tmp_path / "deg.geojson"
    path.write_text(geojson_text([_feature(_square(LON + 0.01, LAT, 0.0005), plot_id="D-1")]))
    before = sha256(db)
    assert run("import", "plots", path, "--db", db, "--crs", "32643") == 1
    err = capsys.readouterr().err
    assert (
        "GeoJSON is WGS84 by definition (RFC 7946); --crs EPSG is only for files that "
        "carry no CRS" in err
    )
    assert sha256(db) == before
    assert run("import", "plots", path, "--db", db, "--crs", "4326", "--dry-run") == 0
    assert run("import", "plots", path, "--db", db, "--dry-run") == 0


# ---------------------------------------------------------------------------
# 9. --src-layer accepts the file name with its suffix


def test_src_layer_accepts_file_suffix(db, tmp_path, capsys):
    folder = tmp_path / "parts"
    folder.mkdir()
    write_shapefile("plots", plots_frame(1, start=90, y0=Y0 + 1500), folder, name="north")
    write_shapefile("plots", plots_frame(1, start=91, y0=Y0 + 1700), folder, name="south")
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for part in sorted(folder.iterdir()):
            zf.write(part, f"data/{part.name}")
    for choice in ("south.shp", "SOUTH.SHP", "data/south.shp", "south"):
        assert run("import", "plots", path, "--db", db, "--src-layer", choice, "--dry-run") == 0, (
            capsys.readouterr().err
        )
        assert "two.zip:south.shp" in capsys.readouterr().out
    assert run("import", "plots", path, "--db", db, "--src-layer", "east.shp") == 1
    assert "the archive has no file 'east.shp'; it holds: north, south" in capsys.readouterr().err
