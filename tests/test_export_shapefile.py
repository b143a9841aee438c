"""The numpy shapefile writer and the parallel zip: real files read back by GDAL (pyogrio),
compared with what GDAL itself writes for the same rows."""

from __future__ import annotations

import datetime as dt
import os
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio
import pytest
import shapely
from test_io_support import db, template  # noqa: F401

from geo import archive
from geo.io import ShapefileLimitWarning, export_layers, write_shapefile
from geo.io.formats import NEVER_EXPORTED
from geo.io.shapefile import SHP_MAX_BYTES, SHP_PORTABLE_BYTES, check_size, dbf_width
from geo.io.wkb import _direct, _through_shapely, rings
from geo.layers import LAYERS, get_layer
from geo.store import open_store

ARROW = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.string(),
}
X, Y = 650_000.0, 4_798_000.0  # UTM 43N: large coordinates, as stored
HOLED = shapely.Polygon(
    shapely.box(X, Y, X + 50, Y + 50).exterior.coords,
    [
        shapely.box(X + 5, Y + 5, X + 10, Y + 10).exterior.coords,
        [(X + 20, Y + 20), (X + 30, Y + 20), (X + 25, Y + 30)],
    ],
)
GEOMS = [
    shapely.box(X, Y, X + 40, Y + 40),  # counter-clockwise exterior (shapely's default)
    HOLED,
    shapely.MultiPolygon([shapely.box(X + 100, Y, X + 110, Y + 10, ccw=False), HOLED]),
    None,  # a null shape
    shapely.box(X + 200, Y, X + 201, Y + 1, ccw=False),  # already clockwise
    shapely.Polygon(),  # empty: a null shape too
]
TEXT = ["Завод «Алатау»", None, "", "Қазақстан: ғ ө ү ұ і ә ң һ", "x" * 254, "Ж" * 130]


def plots_table(geoms=GEOMS) -> pa.Table:
    """Every plot field filled with awkward values: Cyrillic and Kazakh text, NULLs in
    every type, the empty string, text at and over the DBF's 254 bytes."""
    lyr = get_layer("plots")
    n = len(geoms)
    data = {}
    for fld in lyr.export_fields:
        if fld.choices:
            values = [fld.choices[i % len(fld.choices)] for i in range(n)]
            values[1] = None if not fld.required else values[1]
        elif fld.type == "str":
            values = (TEXT * n)[:n]
        elif fld.type == "int":
            values = [None if i == 1 else (fld.minimum or 0) + i for i in range(n)]
        elif fld.type == "float":
            values = [1234.567, None, 1e-7, 0.1 + 0.2, 5e9, 123456789.12345679][:n]
        elif fld.type == "bool":
            values = [True, None, False, True, False, True][:n]
        else:
            values = [None] * n
        if fld.name == "plot_id":
            values = [f"П-{i}" for i in range(n)]
        data[fld.name] = pa.array(values, type=ARROW[fld.type])
    wkb = [None if g is None else shapely.to_wkb(g, flavor="iso") for g in geoms]
    data["geometry"] = pa.array(wkb, type=pa.binary())
    return pa.table(data)


def gdal_shapefile(lyr, table: pa.Table, folder: Path, widths: dict[str, int]) -> Path:
    """What GDAL writes for the same rows at the same text widths."""
    schema = table.schema
    for i, column in enumerate(schema):
        if column.name in widths:
            schema = schema.set(
                i, column.with_metadata({"GDAL:OGR:width": str(widths[column.name])})
            )
    folder.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pyogrio.write_arrow(
            table.cast(schema),
            folder / f"{lyr.name}.shp",
            driver="ESRI Shapefile",
            geometry_name="geometry",
            geometry_type=lyr.geometry,
            crs="EPSG:32643",
            encoding="UTF-8",
        )
    return folder / f"{lyr.name}.shp"


def dbf_fields(path: Path) -> dict[str, tuple[str, int, int]]:
    data = path.read_bytes()
    out, at = {}, 32
    while data[at] != 0x0D:
        name = data[at : at + 11].split(b"\0")[0].decode()
        out[name] = (chr(data[at + 11]), data[at + 16], data[at + 17])
        at += 32
    return out


def test_gdal_reads_back_every_value_and_shape(tmp_path):
    table = plots_table()
    with pytest.warns(ShapefileLimitWarning) as caught:
        shp = write_shapefile("plots", table, tmp_path, epsg=32643)
    said = sorted(str(w.message).split(":")[0] for w in caught)
    assert said == [f"plots.{f}" for f in ("cadastre", "exp_id", "project", "resident", "sectors")]
    assert "1 value(s) longer than the shapefile limit of 254 bytes" in str(caught[0].message)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"plots{s}" for s in (".cpg", ".dbf", ".prj", ".shp", ".shx")
    ]
    info = pyogrio.read_info(shp)
    assert info["crs"] == "EPSG:32643" and info["encoding"] == "UTF-8"
    back = pyogrio.read_dataframe(shp)
    for fld in get_layer("plots").export_fields:
        expected = table.column(fld.name).to_pylist()
        if fld.type == "str":  # the DBF has no NULL text: "" and NULL both read back NULL
            expected = [v.encode()[:254].decode("utf-8", "ignore") if v else None for v in expected]
        got = [None if v is None or v != v else v for v in back[fld.name].tolist()]
        if fld.type == "bool":
            got = [None if v is None else bool(v) for v in got]
        assert got == expected, fld.name
    assert back["project"][5] == "Ж" * 127  # 260 bytes cut at a whole letter
    assert back["invest"][3] == 0.1 + 0.2  # every bit of a real (GDAL's own 24.15 loses it)
    for got, wrote in zip(back.geometry, GEOMS):
        if wrote is None or wrote.is_empty:
            assert got is None
        else:
            assert shapely.normalize(got).equals_exact(shapely.normalize(wrote), 0), wrote.wkt


def test_geometry_files_are_byte_for_byte_what_gdal_writes(tmp_path):
    """Same rows, same widths: the .shp (ring order and orientation, null shapes, the
    bounding boxes), .shx, .prj and .cpg are GDAL's bytes; the .dbf has GDAL's field types."""
    lyr = get_layer("plots")
    table = plots_table()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShapefileLimitWarning)
        (tmp_path / "ours").mkdir()
        ours = write_shapefile(lyr, table, tmp_path / "ours", epsg=32643)
    fields = dbf_fields(ours.with_suffix(".dbf"))
    widths = {n: w for n, (kind, w, decimals) in fields.items() if kind == "C" or not decimals}
    theirs = gdal_shapefile(lyr, table, tmp_path / "gdal", widths)
    for suffix in (".shp", ".shx", ".prj", ".cpg"):
        assert ours.with_suffix(suffix).read_bytes() == theirs.with_suffix(suffix).read_bytes(), (
            suffix
        )
    assert dbf_fields(ours.with_suffix(".dbf")) == dbf_fields(theirs.with_suffix(".dbf"))
    ours_info, gdal_info = pyogrio.read_info(ours), pyogrio.read_info(theirs)
    assert ours_info["ogr_types"] == gdal_info["ogr_types"]
    assert ours_info["ogr_subtypes"] == gdal_info["ogr_subtypes"]


def test_text_widths_fit_the_data_and_gdal_widens_them_on_append(tmp_path):
    """Free text and ids are as wide as their longest value (GIS users expect it; a
    schema-wide 254 tripled the .dbf); vocabularies and integers keep the schema's width.
    A longer value appended later still fits: GDAL widens the field."""
    lyr = get_layer("plots")
    table = plots_table(GEOMS[:2])
    shp = write_shapefile(lyr, table, tmp_path, epsg=32643)
    fields = dbf_fields(shp.with_suffix(".dbf"))
    assert fields["resident"] == ("C", len("Завод «Алатау»".encode()), 0)
    assert fields["plot_id"] == ("C", len("П-0".encode()), 0)
    assert fields["status"] == ("C", len("available"), 0)  # the longest status
    assert fields["hazard"] == ("N", 1, 0) and fields["start_yr"] == ("N", 4, 0)
    assert fields["jobs"] == ("N", 18, 0) and fields["invest"] == ("N", 24, 15)
    assert dbf_width(lyr.field("cadastre"), 0) == 1  # all NULL: one blank byte
    longer = table.slice(0, 1).set_column(
        table.schema.get_field_index("resident"), "resident", pa.array(["Резидент " * 12])
    )
    pyogrio.write_arrow(
        longer.set_column(0, "plot_id", pa.array(["П-длинный-номер-участка"])),
        shp,
        driver="ESRI Shapefile",
        geometry_name="geometry",
        geometry_type="Polygon",
        crs="EPSG:32643",
        encoding="UTF-8",
        append=True,
    )
    back = pyogrio.read_dataframe(shp)
    assert back["resident"].iloc[-1] == ("Резидент " * 12).strip()
    assert back["plot_id"].tolist() == ["П-0", "П-1", "П-длинный-номер-участка"]


def test_every_exported_field_name_fits_a_dbf():
    for name, lyr in LAYERS.items():
        if name not in NEVER_EXPORTED:
            assert all(len(f.name.encode()) <= 10 for f in lyr.export_fields), name


def test_lines_points_z_and_tables(tmp_path):
    """Roads (lines and multilines, dates), gates (points), 3-D input (through shapely,
    written 2-D) and a table without geometry."""
    roads = get_layer("roads")
    lines = [
        shapely.LineString([(X, Y), (X + 10, Y + 5)]),
        shapely.MultiLineString(
            [[(X, Y), (X + 1, Y + 1)], [(X + 2, Y + 2), (X + 3, Y + 1), (X + 4, Y)]]
        ),
        shapely.LineString([(X, Y, 7.0), (X + 3, Y + 3, 8.0)]),
    ]
    data = {
        f.name: pa.array([f.choices[0] if f.choices else None] * 2 + [None], type=ARROW[f.type])
        for f in roads.export_fields
    }
    data["asset_id"] = pa.array(["R-1", "R-2", "R-3"])
    data["since"] = pa.array([dt.date(2024, 5, 6), None, dt.date(1999, 12, 31)])
    data["geometry"] = pa.array(shapely.to_wkb(lines, flavor="iso", output_dimension=3))
    shp = write_shapefile(roads, pa.table(data), tmp_path, epsg=32643)
    back = pyogrio.read_dataframe(shp)
    assert back["since"].astype(str).tolist()[0] == "2024-05-06" and back["since"].isna()[1]
    for got, wrote in zip(back.geometry, lines):
        assert got.equals(shapely.force_2d(wrote)) and not got.has_z
    gates = get_layer("gates")
    points = [shapely.Point(X, Y), None, shapely.Point(X + 1.5, Y - 2.25)]
    data = {f.name: pa.array([None] * 3, type=ARROW[f.type]) for f in gates.export_fields}
    data["asset_id"] = pa.array(["G-1", "G-2", "G-3"])
    data["geometry"] = pa.array([None if p is None else shapely.to_wkb(p) for p in points])
    back = pyogrio.read_dataframe(write_shapefile(gates, pa.table(data), tmp_path, epsg=4326))
    assert back.geometry[0].equals(points[0]) and back.geometry[2].equals(points[2])
    assert back.geometry[1] is None and back.crs.to_epsg() == 4326
    targets = get_layer("targets")
    table = pa.table({f.name: pa.array([None], type=ARROW[f.type]) for f in targets.export_fields})
    dbf = write_shapefile(targets, table, tmp_path)
    assert dbf.suffix == ".dbf" and len(pyogrio.read_dataframe(dbf)) == 1


def test_wkb_read_directly_agrees_with_shapely():
    wkb = pa.array([None if g is None else shapely.to_wkb(g, flavor="iso") for g in GEOMS])
    direct, through = (
        _direct(wkb.cast(pa.large_binary()), "Polygon"),
        _through_shapely(wkb, "Polygon"),
    )
    assert direct is not None
    for name in ("coords", "offsets", "row", "exterior"):
        assert np.array_equal(getattr(direct, name), getattr(through, name)), name
    big_endian = pa.array([shapely.to_wkb(GEOMS[0], byte_order=0)])
    assert _direct(big_endian.cast(pa.large_binary()), "Polygon") is None  # shapely reads it
    assert np.array_equal(rings(big_endian, "Polygon").coords, shapely.get_coordinates(GEOMS[0]))
    with pytest.raises(ValueError, match="cannot hold"):
        rings(pa.array([shapely.to_wkb(shapely.Point(1, 2))]), "Polygon")


def test_size_limits():
    check_size("p.shp", SHP_PORTABLE_BYTES)  # silent up to 2 GiB
    with pytest.warns(ShapefileLimitWarning, match="at most 2 GiB"):
        check_size("p.dbf", SHP_MAX_BYTES + 1, addressed=False)  # a .dbf has no hard limit
    with pytest.raises(ValueError, match="at most 4 GiB"):
        check_size("p.shp", SHP_MAX_BYTES + 1)


@pytest.mark.parametrize("threads, force_zip64", [(1, False), (2, False), (2, True)])
def test_streamed_zip_is_valid_in_one_thread_or_several(tmp_path, threads, force_zip64):
    rng = np.random.default_rng(5)
    big = (rng.integers(0, 4, size=9_500_000, dtype=np.uint8) + 0x30).tobytes()  # > 2 pieces
    members = [
        ("plots.shp", len(big), [big[:3_000_000], memoryview(big)[3_000_000:]]),
        ("пусто.txt", 0, []),
        ("plots.cpg", 5, [np.frombuffer(b"UTF-8", dtype=np.uint8)]),
    ]
    out = archive.write_zip_streams(
        tmp_path / "a.zip", members, threads=threads, force_zip64=force_zip64
    )
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == ["plots.shp", "пусто.txt", "plots.cpg"]
        assert zf.read("plots.shp") == big and zf.read("plots.cpg") == b"UTF-8"
        info = zf.getinfo("plots.shp")
        assert info.CRC == zlib.crc32(big) and info.compress_size < len(big) / 3
    assert archive.check_zip(out)  # the service's own reader accepts it


def test_zipped_export_opens_in_gdal_and_matches_plain_files(db, tmp_path):  # noqa: F811
    store = open_store(db)
    zipped = export_layers(store, "all", "shp", tmp_path / "all.zip")
    plain = export_layers(store, "plots", "shp", tmp_path / "plain" / "plots.shp")
    with zipfile.ZipFile(zipped) as zf:
        names = zf.namelist()
        assert names[:5] == [f"zone{s}" for s in archive.SHAPEFILE_PARTS]
        for suffix in archive.SHAPEFILE_PARTS:
            assert zf.read(f"plots{suffix}") == plain.with_suffix(suffix).read_bytes(), suffix
    from_zip = pyogrio.read_dataframe(f"/vsizip/{zipped}/plots.shp")
    assert len(from_zip) == store.count("plots") and from_zip.crs.to_epsg() == store.epsg
    stored = store.read("plots").set_index("plot_id")
    for row in from_zip.itertuples():
        assert row.geometry.equals(stored.geometry[row.plot_id])
        assert row.status == stored.status[row.plot_id]
    assert os.path.getsize(zipped) > 0


def test_an_empty_layer_is_a_valid_empty_shapefile(db, tmp_path):  # noqa: F811
    store = open_store(db)
    where = {"plot_id": []}  # matches nothing
    zipped = export_layers(store, "plots", "shp", tmp_path / "none.zip", where=where)
    plain = export_layers(store, "plots", "shp", tmp_path / "plain" / "none.shp", where=where)
    for path in (f"/vsizip/{zipped}/plots.shp", str(plain)):
        info = pyogrio.read_info(path)
        assert info["features"] == 0 and info["crs"] == f"EPSG:{store.epsg}", path
        assert list(info["fields"])[:3] == ["plot_id", "cadastre", "status"]
