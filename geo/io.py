"""Shapefile, GeoPackage and GeoJSON files in and out, typed by the layer schemas.

Imports go ``read_upload``/``load_upload`` (any supported file -> frame in the
working CRS) -> ``plan_import`` (every check, nothing written; a preview) ->
``apply_import`` (one transaction). Exports go ``export_layers`` (a file written
beside its destination and renamed into place) or ``export_bytes`` for HTTP.
None of these functions know about the CLI or Flask.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import IO, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import pyogrio.errors
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError, ProjError

from geo import archive
from geo.crs import WGS84_EPSG, WORKING_EPSG, parse_epsg
from geo.layers import INTERNAL_LAYERS, LAYERS, Field, Layer, get_layer
from geo.store import Null, Range
from geo.validate import (
    ZONE_ENVELOPE,
    Problem,
    ValidationError,
    check_geometries,
    coerce_attributes,
    coerce_value,
    format_coordinate,
    overlaps,
    single_part,
)

#: The oldest GeoPackage version with everything stores and exports use (attribute tables,
#: R-trees): GDAL 3.6 (Debian 12, many QGIS installs) warns that 1.4 "may only be partially
#: supported".
GPKG_VERSION = "1.2"

Source = str | Path | bytes | IO[bytes]
FORMATS: tuple[str, ...] = ("shp", "gpkg", "geojson")
MEDIA_TYPES = {
    "shp": "application/zip",
    "gpkg": "application/geopackage+sqlite3",
    "geojson": "application/geo+json",
    "zip": "application/zip",
}
# Layers never imported or exported by these functions (users: credentials;
# audit: written by the store alone).
NEVER_EXPORTED: tuple[str, ...] = ("users", *INTERNAL_LAYERS)
NOT_IMPORTABLE: tuple[str, ...] = ("users", "audit", *INTERNAL_LAYERS)
# 9 decimals of a degree are ~0.1 mm: a GeoJSON round trip moves shared plot edges
# far less than the 1 m² overlap tolerance (7 decimals, ~1 cm, did not).
GEOJSON_DECIMALS = 9
_DBF_MAX_WIDTH = 254
# Imports must lie within this distance (metres) of the zone and its expansion areas.
ZONE_MARGIN_M = 5_000.0
_ID_CHUNK = 500
_PYOGRIO_ERRORS = (
    pyogrio.errors.DataSourceError,
    pyogrio.errors.DataLayerError,
    pyogrio.errors.FieldError,
    pyogrio.errors.GeometryError,
    pyogrio.errors.CRSError,
    pyogrio.errors.FeatureError,
)

# How each import option is called where the person gave the file, for messages that
# tell them what to do (the web passes the names of its form fields).
CLI_OPTIONS: Mapping[str, str] = {
    "crs": "--crs EPSG",
    "src_layer": "--src-layer NAME",
    "encoding": "--encoding NAME",
}
# Problems listed one by one before the rest are counted (a whole file in the wrong
# encoding has one per row).
_SHOWN_TEXT_PROBLEMS = 20

_ARROW_TYPES = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.string(),
}


# ---------------------------------------------------------------------------
# Arrow tables typed by the schema


def _arrow_column_slow(fld: Field, values: pd.Series) -> pa.Array:
    items = [
        None
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT
        else v
        for v in values.tolist()
    ]
    if fld.type == "date":
        items = [
            dt.date.fromisoformat(v[:10])
            if isinstance(v, str)
            else v.date()
            if isinstance(v, dt.datetime)
            else v
            for v in items
        ]
    elif fld.type in ("datetime", "str"):
        items = [
            v
            if v is None or isinstance(v, str)
            else v.isoformat()
            if isinstance(v, (dt.date, dt.datetime))
            else str(v)
            for v in items
        ]
    return pa.array(items, type=_ARROW_TYPES[fld.type])


def _arrow_column(fld: Field, values: pd.Series) -> pa.Array:
    """One column as Arrow: a vectorised path for the store's own dtypes, a
    per-value fallback for anything else (dates as objects, mixed types)."""
    try:
        if fld.type in ("date", "datetime", "str"):
            arr = pa.array(values, type=pa.string(), from_pandas=True)
            return arr.cast(pa.date32()) if fld.type == "date" else arr
        return pa.array(values, type=_ARROW_TYPES[fld.type], from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
        return _arrow_column_slow(fld, values)


def to_arrow(
    layer: Layer, frame: pd.DataFrame, fields: tuple[Field, ...] | None = None
) -> pa.Table:
    """An Arrow table of ``frame`` typed by the schema, geometry as ISO WKB.

    Missing optional columns are written as nulls so every file carries the
    full schema.
    """
    fields = layer.export_fields if fields is None else fields
    data = {}
    for fld in fields:
        column = (
            frame[fld.name].reset_index(drop=True)
            if fld.name in frame.columns
            else pd.Series([None] * len(frame), dtype=object)
        )
        data[fld.name] = _arrow_column(fld, column)
    if layer.is_feature:
        data["geometry"] = pa.array(
            shapely.to_wkb(np.asarray(frame.geometry.values), flavor="iso"), type=pa.binary()
        )
    return pa.table(data)


class ShapefileLimitWarning(UserWarning):
    """A shapefile was written although it cannot hold some values in full
    (text longer than the DBF's 254 bytes is cut)."""


def _epsg(frame: pd.DataFrame) -> int:
    crs = getattr(frame, "crs", None)
    return crs.to_epsg() if crs is not None else WORKING_EPSG


# Bytes a character of the zone's text takes in UTF-8 (Cyrillic and Kazakh letters: 2).
_UTF8_BYTES_PER_CHAR = 2
# GDAL's width for a 64-bit integer field.
_DBF_INT64_WIDTH = 18


def dbf_width(fld: Field) -> int | None:
    """The DBF width a field is written with, from the schema (never from the data, so
    a value typed later in QGIS fits): the longest choice, the id or text limit in
    UTF-8 bytes up to the DBF's 254, the digits of an integer's maximum. None for
    types the driver sizes itself (reals, dates)."""
    if fld.type == "str":
        if fld.choices:
            return max(len(c.encode("utf-8")) for c in fld.choices)
        limit = fld.text_limit
        return (
            _DBF_MAX_WIDTH if limit is None else min(_DBF_MAX_WIDTH, limit * _UTF8_BYTES_PER_CHAR)
        )
    if fld.type == "int":
        if fld.maximum is None:
            return _DBF_INT64_WIDTH
        sign = 1 if fld.minimum is not None and fld.minimum < 0 else 0
        return len(str(int(fld.maximum))) + sign
    return None


def _sized_for_dbf(layer: Layer, table: pa.Table) -> pa.Table:
    """Tag text and integer columns with the DBF width the schema gives them.

    GDAL reads the ``GDAL:OGR:width`` field metadata when it creates a field,
    so the ``.dbf`` is written once at its final widths.
    """
    schema = table.schema
    for i, column in enumerate(schema):
        width = dbf_width(layer.field(column.name)) if layer.has(column.name) else None
        if width is not None:
            schema = schema.set(i, column.with_metadata({"GDAL:OGR:width": str(width)}))
    return table.cast(schema)


def _warn_long_text(layer: Layer, frame: pd.DataFrame, table: pa.Table) -> None:
    """Warn (ShapefileLimitWarning) per text field holding values the DBF will cut."""
    keys = frame[layer.key].reset_index(drop=True) if layer.key in frame.columns else None
    for i, fld in enumerate(table.schema):
        if not pa.types.is_string(fld.type):
            continue
        lengths = pc.binary_length(table.column(i).cast(pa.binary()))
        over = np.flatnonzero(
            pc.fill_null(pc.greater(lengths, _DBF_MAX_WIDTH), False).to_numpy(zero_copy_only=False)
        )
        if not len(over):
            continue
        first = keys.iloc[int(over[0])] if keys is not None else f"row {int(over[0])}"
        warnings.warn(
            f"{layer.name}.{fld.name}: {len(over)} value(s) longer than the shapefile limit of "
            f"{_DBF_MAX_WIDTH} bytes (first: {layer.key} {first}) were cut short in the .dbf; "
            "use --format gpkg to keep them whole",
            ShapefileLimitWarning,
            stacklevel=3,
        )


def write_shapefile(
    layer: Layer | str, frame: gpd.GeoDataFrame, directory: Path | str, *, name: str | None = None
) -> Path:
    """Write one layer as a shapefile with ``.prj`` and a UTF-8 ``.cpg``.

    Text and integer field widths come from the schema (see :func:`dbf_width`),
    so values typed later fit; dates are DBF dates. A table (no geometry) is written
    as a lone ``.dbf`` (with ``.cpg``). Text longer than the DBF's 254 bytes is
    cut by the format; a :class:`ShapefileLimitWarning` names the layer, field,
    count and first feature.

    Returns
    -------
    Path
        The ``.shp`` written (the ``.dbf`` for tables).
    """
    layer = get_layer(layer) if isinstance(layer, str) else layer
    path = Path(directory) / f"{name or layer.name}.shp"
    table = to_arrow(layer, frame)
    _warn_long_text(layer, frame, table)
    with warnings.catch_warnings():
        # GDAL's own "... has been truncated to 254 characters" (said above, clearly)
        warnings.filterwarnings(
            "ignore", message=r"(?s).*has been truncated", category=RuntimeWarning
        )
        pyogrio.write_arrow(
            _sized_for_dbf(layer, table),
            path,
            driver="ESRI Shapefile",
            geometry_name="geometry" if layer.is_feature else None,
            geometry_type=layer.geometry if layer.is_feature else None,
            crs=f"EPSG:{_epsg(frame)}" if layer.is_feature else None,
            encoding="UTF-8",
        )
    return path if layer.is_feature else path.with_suffix(".dbf")


def read_file(path: Path | str, *, layer: str | None = None) -> pd.DataFrame:
    """Read a vector file or table (shapefile, GeoPackage layer, GeoJSON, DBF) as is.

    Returns a GeoDataFrame in the file's own CRS (``crs`` None when it has
    none), or a DataFrame for files without geometry.
    """
    return pyogrio.read_dataframe(path, layer=layer, use_arrow=True)


# ---------------------------------------------------------------------------
# Reading uploads


@dataclass
class Upload:
    """A file read for import: the frame in the working CRS and what went wrong.

    Attributes
    ----------
    layer : str
        The target layer.
    frame : DataFrame
        Attributes as read (columns renamed to the schema's letter case) and,
        for feature layers, geometries in the working CRS; features whose
        geometry could not be used hold None and are named in ``problems``.
    problems : list of Problem
        Per-feature read problems (unparseable geometry, coordinates that are
        not degrees although the file says so).
    source : str
        What was read (file name and layer), for messages.
    source_crs : str or None
        The CRS the coordinates were read in.
    ignored_columns : list of str
        Input columns the schema does not know (dropped; computed fields such
        as ``area_ha`` are silently re-derived by the store).
    """

    layer: str
    frame: pd.DataFrame
    problems: list[Problem] = dc_field(default_factory=list)
    source: str = ""
    source_crs: str | None = None
    ignored_columns: list[str] = dc_field(default_factory=list)


def importable_layer(name: str) -> Layer:
    """The schema of a layer that may be imported.

    Raises
    ------
    KeyError
        For unknown layers (listing the known ones).
    ValueError
        For ``users`` and ``audit``, which only the service itself writes.
    """
    layer = get_layer(name)
    if layer.name in NOT_IMPORTABLE:
        raise ValueError(f"{layer.name} cannot be imported from a file")
    return layer


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    by_suffix = {
        ".zip": "zip",
        ".shp": "shp",
        ".gpkg": "gpkg",
        ".geojson": "geojson",
        ".json": "geojson",
        ".dbf": "dbf",
        ".csv": "csv",
    }
    if suffix in by_suffix:
        return by_suffix[suffix]
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    if head.startswith(b"PK"):
        return "zip"
    if head.lstrip()[:1] == b"{":
        return "geojson"
    raise ValueError(
        f"{path.name}: unknown file type; give a zipped shapefile (.zip), a .shp, "
        "a GeoPackage (.gpkg) or GeoJSON (.geojson)"
    )


def _safe_name(filename: str | None, default: str) -> str:
    base = re.sub(r"[^\w.\-]+", "_", Path(str(filename or "")).name).lstrip(".")
    return base or default


def _materialise(source: Source, filename: str | None, tmp: Path) -> Path:
    """A path on disk for ``source`` (uploads are written into ``tmp``)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            raise ValueError(f"{source} is a folder; give a file")
        if not path.is_file():
            raise FileNotFoundError(f"no file {path}")
        return path
    data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else source.read()
    path = tmp / _safe_name(
        filename or getattr(source, "filename", None) or getattr(source, "name", None), "upload"
    )
    path.write_bytes(data)
    return path


_KIND_NAMES = {
    "geojson": "GeoJSON",
    "gpkg": "GeoPackage",
    "shp": "shapefile",
    "dbf": "dBASE table (.dbf)",
    "csv": "CSV table",
}


def _unreadable(path: Path, kind: str, err: Exception) -> ValueError:
    """``FILE is not a readable GeoJSON (GDAL: <its first sentence>)``, without GDAL's
    advice about driver prefixes (which means nothing to our users)."""
    text = str(err).strip().replace(str(path), path.name)
    text = re.sub(r"^sqlite3_\w+\(.*\)\s*failed:\s*", "", text, flags=re.S)  # SQL GDAL ran
    first = re.split(r"(?<=\.)[;\s]", text, maxsplit=1)[0].strip() if text else type(err).__name__
    parts = first.split("; ")
    if all(p.startswith(parts[0]) for p in parts):  # "not a database; not a database: ..."
        first = parts[0]
    what = _KIND_NAMES.get(kind, "vector file")
    return ValueError(f"{path.name} is not a readable {what} (GDAL: {first})")


@dataclass
class _Raw:
    """One layer of a file as read: attributes, raw WKB (None for tables), CRS text, what
    kind of file it was, a description for messages, and text that is not UTF-8."""

    attrs: pd.DataFrame
    wkb: np.ndarray | None
    crs: str | None
    kind: str
    desc: str
    bad_text: list[tuple[str, int, bytes]] = dc_field(default_factory=list)
    encoding: str | None = None


def _read_raw(
    path: Path,
    *,
    layer_name: str | None = None,
    encoding: str | None = None,
    kind: str = "",
    desc: str = "",
) -> _Raw:
    """Read one layer of a file; text columns that are not UTF-8 are kept as read
    (with U+FFFD) and listed in ``bad_text`` by field and row."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # GDAL's notes (unclosed rings)
            meta, table = pyogrio.read_arrow(path, layer=layer_name, encoding=encoding)
    except _PYOGRIO_ERRORS as err:
        raise _unreadable(path, kind, err) from None
    geom_col = meta.get("geometry_name") or "wkb_geometry"
    wkb = None
    if meta.get("geometry_type") and geom_col in table.column_names:
        wkb = table[geom_col].to_numpy(zero_copy_only=False)
        table = table.drop_columns([geom_col])
    table, bad = _utf8_columns(table)
    return _Raw(table.to_pandas(), wkb, meta.get("crs"), kind, desc or path.name, bad, encoding)


def _utf8_columns(table: pa.Table) -> tuple[pa.Table, list[tuple[str, int, bytes]]]:
    """The table with text that is not UTF-8 decoded leniently, and where it was."""
    bad: list[tuple[str, int, bytes]] = []
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if not pa.types.is_string(column.type):
            continue
        try:
            column.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        raw = column.cast(pa.binary()).to_pylist()
        texts = []
        for row, value in enumerate(raw):
            try:
                texts.append(None if value is None else value.decode("utf-8"))
            except UnicodeDecodeError:
                bad.append((name, row, value))
                texts.append(value.decode("utf-8", errors="replace"))
        table = table.set_column(i, name, pa.array(texts, type=pa.string()))
    return table, bad


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _dbf_encoding(dbf: Path | None) -> str | None:
    """UTF-8 for a ``.dbf`` without ``.cpg`` or code-page byte whose text is UTF-8."""
    if dbf is None:
        return None
    with open(dbf, "rb") as fh:
        head = fh.read(4 << 20)
    if len(head) > 29 and head[29] != 0:
        return None  # GDAL honours the language-driver byte
    try:
        head[:-4].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "UTF-8"


_DBF_VERSIONS = {0x02, 0x03, 0x04, 0x05, 0x30, 0x31, 0x32, 0x43, 0x63, 0x83, 0x8B, 0xCB, 0xF5, 0xFB}


def _check_dbf(dbf: Path | None, desc: str) -> None:
    """Refuse a ``.dbf`` whose header is damaged (GDAL would read no fields at all).

    A dBASE header is a version byte, a record count, the header length
    (32 bytes per field plus 33) and the record length; together they fix the
    file's size.
    """
    if dbf is None:
        return
    with open(dbf, "rb") as fh:
        head = fh.read(32)
    size = dbf.stat().st_size
    ok = len(head) == 32 and head[0] in _DBF_VERSIONS
    if ok:
        records = int.from_bytes(head[4:8], "little")
        header = int.from_bytes(head[8:10], "little")
        record = int.from_bytes(head[10:12], "little")
        ok = (
            header >= 33
            and (header - 33) % 32 in (0, 31)
            and record >= 1
            and header + records * record <= size <= header + records * record + 1 + 1
        )
    if not ok:
        raise ValueError(
            f"{desc}: its attribute table {dbf.name} is damaged (not a dBASE "
            "header, or its size does not match the records it declares); "
            "export the layer again"
        )


def _gpkg_layer(
    path: Path, layer: str, src_layer: str | None, options: Mapping[str, str] = CLI_OPTIONS
) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            names = [str(n) for n, _ in pyogrio.list_layers(path)]
    except _PYOGRIO_ERRORS as err:
        raise _unreadable(path, "gpkg", err) from None
    if not names:
        raise ValueError(f"{path.name} holds no layers")
    if src_layer is not None:
        match = [n for n in names if n.lower() == src_layer.lower()]
        if not match:
            raise ValueError(
                f"{path.name} has no layer {src_layer!r}; it holds: {', '.join(names)}"
            )
        return match[0]
    if len(names) == 1:
        return names[0]
    if layer in names:
        return layer
    raise ValueError(
        f"{path.name} holds several layers ({', '.join(names)}); "
        f"choose one with {options['src_layer']}"
    )


def _read_path(
    path: Path,
    layer: Layer,
    src_layer: str | None,
    encoding: str | None,
    options: Mapping[str, str],
    tmp: Path,
) -> _Raw:
    """Read any supported file (``encoding`` overrides what the file says of its text)."""
    kind = _kind(path)
    if kind == "zip":
        with archive.extracted(path) as folder:
            member = archive.find_dataset(
                folder, layer=layer.name, src_layer=src_layer, choose=options["src_layer"]
            )
            raw = _read_path(
                member,
                layer,
                None if member.suffix.lower() == ".shp" else src_layer,
                encoding,
                options,
                tmp,
            )
            raw.desc = f"{path.name}:{member.name}"
            return raw
    if kind in ("shp", "dbf"):
        if kind == "shp":
            archive.require_siblings(path)
        dbf = archive.sibling(path, ".dbf") if kind == "shp" else path
        _check_dbf(dbf, path.name)
        enc = encoding or (None if archive.sibling(path, ".cpg") else _dbf_encoding(dbf))
        prj = archive.sibling(path, ".prj") if kind == "shp" else None
        try:
            raw = _read_raw(path, encoding=enc, kind=kind)
        except ValueError:
            if prj is not None and not _parses_as_crs(prj):
                raise _bad_prj(path, prj, options) from None
            raise
        if kind == "shp" and prj is None:
            raw.crs = None
        elif prj is not None and raw.crs is None:
            raise _bad_prj(path, prj, options)
        return raw
    if kind == "gpkg":
        name = _gpkg_layer(path, layer.name, src_layer, options)
        return _read_raw(path, layer_name=name, kind=kind, desc=f"{path.name}:{name}")
    if kind == "geojson":
        _refuse_control_characters(path, layer)
        if encoding and codecs.lookup(encoding).name != "utf-8":
            return _read_raw(_as_utf8(path, encoding, tmp), kind=kind, desc=path.name)
    return _read_raw(path, kind=kind)


def _parses_as_crs(prj: Path) -> bool:
    try:
        CRS.from_user_input(prj.read_text(encoding="utf-8", errors="replace"))
        return True
    except CRSError:
        return False


def _bad_prj(path: Path, prj: Path, options: Mapping[str, str]) -> ValueError:
    text = prj.read_bytes()[:60].decode("utf-8", errors="replace").strip()
    return ValueError(
        f"{path.name}: its {prj.name} cannot be understood as a coordinate "
        f"system (it starts {text!r}); replace it with the layer's .prj, or "
        f"delete it and give the CRS with {options['crs']}"
    )


def _as_utf8(path: Path, encoding: str, tmp: Path) -> Path:
    """A UTF-8 copy of a text file written in ``encoding`` (GDAL reads JSON as UTF-8)."""
    try:
        text = path.read_bytes().decode(encoding)
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path.name} is not {encoding} text either (byte {err.start}: "
            f"{err.object[err.start : err.start + 4]!r})"
        ) from None
    out = tmp / f"utf8-{path.name}"
    out.write_text(text, encoding="utf-8")
    return out


_JSON_CONTROL = re.compile(rb"\\u00[01][0-9a-fA-F]|\\u007[fF]")


def _refuse_control_characters(path: Path, layer: Layer) -> None:
    """Refuse GeoJSON text holding control characters (``\\u0000`` would be cut by GDAL:
    ``B-0\\u000058`` read as ``B-0``); names the feature and field."""
    with open(path, "rb") as fh:
        data = fh.read()
    if not _JSON_CONTROL.search(data):
        return
    try:
        features = json.loads(data).get("features") or []
    except (ValueError, AttributeError):
        return  # not JSON we can walk: GDAL's own message follows
    problems = []
    for i, feature in enumerate(features):
        props = (feature or {}).get("properties") or {}
        for name, value in props.items():
            if isinstance(value, str) and _CONTROL_TEXT.search(value):
                key = props.get(layer.key)
                problems.append(
                    Problem(
                        i,
                        None if key is None else repr(key)[1:-1],
                        str(name),
                        f"{value[:40]!r} holds a control character (such as NUL); remove it",
                    )
                )
    if problems:
        raise ValidationError(problems)


_CONTROL_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _source_crs(
    file_crs: str | None,
    given: int | None,
    kind: str,
    desc: str,
    options: Mapping[str, str] = CLI_OPTIONS,
) -> CRS:
    """The CRS the coordinates are in: the file's, or ``--crs`` when it has none."""
    if (
        kind == "geojson"
        and given is not None
        and (file_crs is None or CRS.from_user_input(file_crs).to_epsg() == WGS84_EPSG)
    ):
        return CRS.from_epsg(given)  # WGS84 is only RFC 7946's default, not a declaration
    if file_crs is None:
        if given is None:
            what = "has no .prj file" if kind == "shp" else "carries no CRS"
            raise ValidationError(
                [
                    Problem(
                        None,
                        None,
                        "crs",
                        f"{desc} {what}, so its coordinates cannot be placed; "
                        f"give the CRS with {options['crs']} "
                        "(e.g. 32643 or 4326)",
                    )
                ]
            )
        return CRS.from_epsg(given)
    try:
        crs = CRS.from_user_input(file_crs)
    except CRSError as err:
        raise ValueError(f"{desc}: its CRS is not understood ({_first_line(err)})") from None
    if given is not None and crs.to_epsg(min_confidence=70) != given:
        raise ValidationError(
            [
                Problem(
                    None,
                    None,
                    "crs",
                    f"{desc} declares {crs.name} but the CRS given says "
                    f"EPSG:{given}; {options['crs']} is only for files "
                    "that carry no CRS",
                )
            ]
        )
    return crs


def _undeclared_wgs84(file_crs: str | None) -> bool:
    """Whether a GeoJSON's CRS is WGS84 (RFC 7946's only CRS) or not given at all."""
    if file_crs is None:
        return True
    try:
        return CRS.from_user_input(file_crs).to_epsg() == WGS84_EPSG
    except CRSError:
        return False


def _parse_geometries(wkb: np.ndarray) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Shapely geometries (2D) from WKB; unparseable ones, and those with NaN or
    infinite coordinates, become None with a reason."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "invalid value encountered"
        geoms = shapely.from_wkb(wkb, on_invalid="ignore")
        failed = np.flatnonzero(
            shapely.is_missing(geoms) & pd.notna(pd.Series(wkb, dtype=object)).to_numpy()
        )
        reasons = []
        for i in failed:
            try:
                shapely.from_wkb(wkb[i])
                reasons.append((int(i), "geometry does not parse"))
            except Exception as err:  # GEOSException: unclosed ring, too few points, ...
                reasons.append((int(i), f"geometry does not parse: {_first_line(err)}"))
        geoms = shapely.force_2d(geoms)
        coords, owner = shapely.get_coordinates(geoms, return_index=True)
    for i in np.unique(owner[~np.isfinite(coords).all(axis=1)]):
        reasons.append(
            (int(i), "invalid geometry: coordinates that are not numbers (NaN or infinite)")
        )
        geoms[i] = None
    return geoms, sorted(reasons)


def _not_degrees(geoms: np.ndarray) -> np.ndarray:
    b = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        return (np.abs(b[:, [0, 2]]) > 180).any(axis=1) | (np.abs(b[:, [1, 3]]) > 90).any(axis=1)


def _rename_columns(layer: Layer, attrs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Schema letter case for known columns; the list of columns that will be ignored."""
    lower = {f.name.lower(): f.name for f in layer.fields}
    attrs = attrs.rename(
        columns={c: lower[str(c).lower()] for c in attrs.columns if str(c).lower() in lower}
    )
    return attrs, [str(c) for c in attrs.columns if not layer.has(str(c))]


def _text_problems(layer: Layer, raw: _Raw, options: Mapping[str, str]) -> list[Problem]:
    """One problem per value that is not UTF-8, saying which encoding to give."""
    if not raw.bad_text:
        return []
    attrs, _ = _rename_columns(layer, raw.attrs)
    lower = {f.name.lower(): f.name for f in layer.fields}
    problems = []
    for name, row, data in raw.bad_text[:_SHOWN_TEXT_PROBLEMS]:
        guess = _guess_encoding(data)
        hint = f" (it reads as {guess[0]}: {guess[1]!r})" if guess else ""
        which = f"its encoding ({guess[0]})" if guess else "its encoding"
        if raw.kind == "geojson":
            how = (
                f"GeoJSON is UTF-8 by definition (RFC 8259): save it as UTF-8, or give "
                f"{which} with {options['encoding']}"
            )
        elif raw.encoding:
            how = f"it is not {raw.encoding} either: give {which} with {options['encoding']}"
        else:
            how = (
                f"give {which} with {options['encoding']}, or put a .cpg file beside the "
                f".dbf holding the encoding's name (e.g. {guess[0] if guess else 'cp1251'})"
            )
        problems.append(
            Problem(
                row,
                _key_at(layer, attrs, row),
                lower.get(name.lower(), name),
                f"text {data[:24]!r} is not UTF-8{hint}; {how}",
            )
        )
    if len(raw.bad_text) > _SHOWN_TEXT_PROBLEMS:
        problems.append(
            Problem(
                None,
                None,
                None,
                f"{len(raw.bad_text) - _SHOWN_TEXT_PROBLEMS} more value(s) are not UTF-8 either",
            )
        )
    return problems


# Single-byte encodings of the region, tried in turn on text that is not UTF-8.
_LIKELY_ENCODINGS = ("cp1251", "cp866", "koi8_r")


def _guess_encoding(data: bytes) -> tuple[str, str] | None:
    """The first regional encoding that reads ``data`` as mostly letters, and the text."""
    for name in _LIKELY_ENCODINGS:
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        letters = sum(ch.isalpha() or ch.isspace() or ch in ".,-\"'()№0123456789" for ch in text)
        if text and letters / len(text) > 0.9 and re.search(r"[\u0400-\u04ff]", text):
            return name, text[:40]
    return None


def read_upload(
    source: Source,
    layer: str,
    *,
    src_layer: str | None = None,
    crs: int | str | None = None,
    filename: str | None = None,
    encoding: str | None = None,
    options: Mapping[str, str] = CLI_OPTIONS,
) -> Upload:
    """Read an uploaded or local file for import into ``layer``.

    Parameters
    ----------
    source : path, bytes or binary file
        A zipped shapefile, a ``.shp`` with its siblings, a GeoPackage, GeoJSON
        (or for tables a ``.dbf``/``.csv``).
    layer : str
        The target layer.
    src_layer : str, optional
        The layer of a GeoPackage or the shapefile of a zip holding several.
    crs : int or str, optional
        EPSG code of the coordinates, for files that carry no CRS.
    filename : str, optional
        The original name of an upload given as bytes or a file object.
    encoding : str, optional
        The encoding of the file's text (a ``.dbf`` without a right ``.cpg``,
        GeoJSON saved in a legacy code page); default: what the file says, else UTF-8.
    options : mapping
        How ``crs``, ``src_layer`` and ``encoding`` are called where the person
        gave the file, for messages (default: the CLI's options).

    Returns
    -------
    Upload
        Geometries are reprojected to the working CRS.

    Raises
    ------
    ValidationError
        When the file as a whole cannot be placed (no CRS, contradicting CRS),
        or holds text that is not in its encoding or control characters.
    ValueError, OSError
        When the file cannot be read, with the reason.
    """
    lyr = importable_layer(layer)
    given = None if crs is None else parse_epsg(crs)
    if encoding:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            raise ValidationError(
                [
                    Problem(
                        None,
                        None,
                        "encoding",
                        f"unknown encoding {encoding!r}; give one such as cp1251, utf-8 or latin1",
                    )
                ]
            ) from None
    with tempfile.TemporaryDirectory(prefix="zoneplan-upload-") as tmp:
        path = _materialise(source, filename, Path(tmp))
        raw = _read_path(path, lyr, src_layer, encoding, options, Path(tmp))
    text_problems = _text_problems(lyr, raw, options)
    if text_problems:
        raise ValidationError(text_problems)
    attrs, ignored = _rename_columns(lyr, raw.attrs)
    desc = raw.desc
    if not lyr.is_feature:
        return Upload(lyr.name, attrs, [], desc, None, ignored)
    if raw.wkb is None:
        if len(attrs) == 0:
            return Upload(
                lyr.name,
                gpd.GeoDataFrame(attrs, geometry=[], crs=WORKING_EPSG),
                [],
                desc,
                None,
                ignored,
            )
        raise ValidationError(
            [
                Problem(
                    None,
                    None,
                    "geometry",
                    f"{desc} has no geometry; {lyr.name} holds {lyr.geometry}s",
                )
            ]
        )
    src = _source_crs(raw.crs, given, raw.kind, desc, options)
    geoms, failures = _parse_geometries(raw.wkb)
    if (
        raw.kind == "geojson"
        and given is not None
        and given != WGS84_EPSG
        and _undeclared_wgs84(raw.crs)
        and not _not_degrees(geoms).any()
    ):
        raise ValidationError(
            [
                Problem(
                    None,
                    None,
                    "crs",
                    f"{desc}: GeoJSON is WGS84 by definition (RFC 7946); {options['crs']} is only for "
                    f"files that carry no CRS (its coordinates are degrees; EPSG:{given} would misread "
                    "them); leave it out",
                )
            ]
        )
    problems = [Problem(i, _key_at(lyr, attrs, i), "geometry", why) for i, why in failures]
    if src.is_geographic:
        for i in np.flatnonzero(_not_degrees(geoms)):
            b = shapely.bounds(geoms[i])
            problems.append(
                Problem(
                    int(i),
                    _key_at(lyr, attrs, i),
                    "geometry",
                    f"coordinates ({format_coordinate(b[0])}, "
                    f"{format_coordinate(b[1])}) are not degrees although "
                    f"the file says {src.name}: projected coordinates labelled "
                    "as WGS84? give the right CRS",
                )
            )
            geoms[i] = None
    series = gpd.GeoSeries(geoms, crs=src)
    if src.to_epsg() != WORKING_EPSG:
        try:
            series = series.to_crs(WORKING_EPSG)
        except ProjError as err:
            raise ValueError(
                f"{desc}: cannot reproject from {src.name} to "
                f"EPSG:{WORKING_EPSG} ({_first_line(err)})"
            ) from None
    frame = gpd.GeoDataFrame(attrs.reset_index(drop=True), geometry=series.values, crs=WORKING_EPSG)
    return Upload(lyr.name, frame, sorted(problems, key=_order), desc, src.to_string(), ignored)


def load_upload(
    source: Source,
    layer: str,
    *,
    src_layer: str | None = None,
    crs: int | str | None = None,
    filename: str | None = None,
) -> pd.DataFrame:
    """Read a file for ``layer`` into a frame in the working CRS, or refuse it.

    See :func:`read_upload` for the parameters.

    Raises
    ------
    ValidationError
        Listing every feature whose geometry could not be read or placed.
    """
    upload = read_upload(source, layer, src_layer=src_layer, crs=crs, filename=filename)
    if upload.problems:
        raise ValidationError(upload.problems)
    return upload.frame


def _key_at(layer: Layer, attrs: pd.DataFrame, i: int) -> str | None:
    if layer.key not in attrs.columns:
        return None
    value = attrs[layer.key].iloc[i]
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _order(p: Problem) -> tuple[int, str]:
    return (-1 if p.index is None else p.index, p.field or "")


# ---------------------------------------------------------------------------
# Planning and applying imports

MODES: tuple[str, ...] = ("update", "replace")
# Plots a replace never removes: someone holds them.
COMMITTED_STATUSES: tuple[str, ...] = ("reserved", "allocated", "occupied")
# Vertices closer than this (metres) are the same geometry: a GeoJSON round trip at
# 9 decimals moves them ~0.1 mm, a shapefile may turn rings the other way.
SAME_GEOMETRY_M = 0.001
# Ids named one by one in a refusal before the rest are counted.
SHOWN_IDS = 200


@dataclass
class ImportPlan:
    """A validated import: what would be written, and why it may not be.

    Attributes
    ----------
    layer : str
    frame : DataFrame
        Schema-typed attributes (and geometry, working CRS), one row per input feature.
    mode : {"update", "replace"}
        ``update`` changes the stored features whose id is in the file and adds
        the new ids; ``replace`` also removes the stored features the file lacks.
    columns : tuple of str
        The input fields the file carries; updates change only these and the geometry.
    new_ids : list of str
        Ids new to the store (inserted).
    updates : dict
        ``{id: {field: new value}}`` of stored features the file changes.
    before : dict
        ``{id: {field: stored value}}`` of the same fields (for "cadastre 101 → 999").
    versions : dict
        ``{id: version}`` the updates were planned against; a later edit is refused.
    unchanged : int
        Stored features the file repeats as they are.
    removed : dict
        ``{id: status or None}`` of the stored features a replace removes, in id order.
    problems : list of Problem
        Every reason to refuse; the plan may be applied only when empty.
    source : str
    ignored_columns : list of str
    revision : str
        The store's revision the checks were made against.
    """

    layer: str
    frame: pd.DataFrame
    mode: str = "update"
    columns: tuple[str, ...] = ()
    new_ids: list[str] = dc_field(default_factory=list)
    updates: dict[str, dict[str, Any]] = dc_field(default_factory=dict)
    before: dict[str, dict[str, Any]] = dc_field(default_factory=dict)
    versions: dict[str, int] = dc_field(default_factory=dict)
    unchanged: int = 0
    removed: dict[str, str | None] = dc_field(default_factory=dict)
    problems: list[Problem] = dc_field(default_factory=list)
    source: str = ""
    ignored_columns: list[str] = dc_field(default_factory=list)
    revision: str = ""

    @property
    def ok(self) -> bool:
        """Whether the plan may be applied."""
        return not self.problems

    @property
    def replace(self) -> bool:
        """Whether stored features the file lacks are removed."""
        return self.mode == "replace"

    @property
    def adds(self) -> int:
        """Features whose id is new to the store."""
        return len(self.new_ids)

    @property
    def removals(self) -> int:
        """Stored features a replace removes."""
        return len(self.removed)

    @property
    def removals_by_status(self) -> dict[str, int]:
        """How many removals per status (the layer's status order; ``-`` without one)."""
        lyr = get_layer(self.layer)
        order = list(lyr.field("status").choices or ()) if lyr.has("status") else []
        counts: dict[str, int] = {}
        for status in self.removed.values():
            counts[status or "-"] = counts.get(status or "-", 0) + 1
        return dict(
            sorted(
                counts.items(),
                key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]),
            )
        )

    @property
    def bad_features(self) -> int:
        """How many features have at least one problem."""
        return len({p.index for p in self.problems if p.index is not None})

    def changes(self, key: str) -> list[tuple[str, Any, Any]]:
        """``(field, before, after)`` of one update, geometry shown as ``changed``."""
        return [
            (
                name,
                "…" if name == "geometry" else self.before[key].get(name),
                "changed" if name == "geometry" else value,
            )
            for name, value in self.updates[key].items()
        ]

    def summary(self) -> str:
        """One line: what the import would do."""
        text = (
            f"{self.layer}: {len(self.frame)} feature(s) from {self.source or 'input'}: "
            f"{self.adds} new, {len(self.updates)} updated, {self.unchanged} unchanged"
        )
        if self.replace:
            by_status = ", ".join(f"{n} {s}" for s, n in self.removals_by_status.items())
            text += f", {self.removals} removed" + (f" ({by_status})" if by_status else "")
        return text

    def input_frame(self) -> pd.DataFrame:
        """The input as the file gave it (its columns only), to plan again."""
        columns = list(self.columns) + (["geometry"] if "geometry" in self.frame.columns else [])
        return self.frame[columns]

    def to_dict(self, *, limit: int = 100) -> dict[str, Any]:
        """A JSON-ready preview (problems, updates and removals capped at ``limit``)."""
        return {
            "layer": self.layer,
            "source": self.source,
            "features": len(self.frame),
            "mode": self.mode,
            "replace": self.replace,
            "adds": self.adds,
            "updates": len(self.updates),
            "unchanged": self.unchanged,
            "removals": self.removals,
            "removals_by_status": self.removals_by_status,
            "removed": [{"id": k, "status": s} for k, s in list(self.removed.items())[:limit]],
            "updated": [
                {
                    "id": k,
                    "changes": {
                        f: [str(a), str(b)] if f == "geometry" else [a, b]
                        for f, a, b in self.changes(k)
                    },
                }
                for k in list(self.updates)[:limit]
            ],
            "ok": self.ok,
            "problem_count": len(self.problems),
            "problems": [dataclasses.asdict(p) for p in self.problems[:limit]],
            "ignored_columns": self.ignored_columns,
        }


def plan_import(
    store: Any, layer: str, data: pd.DataFrame | Upload, *, mode: str = "update"
) -> ImportPlan:
    """Check an import against the schema and the store; write nothing.

    Checks, per feature: the read problems of an :class:`Upload`; attribute
    types, vocabularies, id syntax and text lengths; geometry valid, of the
    layer's type, not degenerate and within 5 km of the stored zone and
    expansion areas (see :func:`import_envelope`); ids unique in the input;
    for plots, no overlap with each other or with stored plots the file does
    not mention. A replace may not remove committed plots (reserved,
    allocated, occupied) nor plots an application names.

    Parameters
    ----------
    store : Store
    layer : str
    data : DataFrame or Upload
        A frame in the working CRS, or what :func:`read_upload` returned.
    mode : {"update", "replace"}
        ``update`` (default): features whose id is stored are updated (only the
        fields the file carries, and the geometry), new ids are added, nothing
        is removed. ``replace``: the same, and stored features the file lacks
        are removed.

    Raises
    ------
    ValueError
        For an unknown mode or a layer that may not be imported.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use {' or '.join(MODES)}")
    lyr = importable_layer(layer)
    upload = data if isinstance(data, Upload) else Upload(lyr.name, data)
    frame = upload.frame.reset_index(drop=True)
    revision = store.revision(_checked_layers(lyr))
    plan = ImportPlan(
        lyr.name,
        frame,
        mode,
        source=upload.source,
        ignored_columns=upload.ignored_columns,
        revision=revision,
    )
    if len(frame) == 0:
        plan.problems = [
            Problem(
                None,
                None,
                None,
                f"{upload.source or 'the input'} holds no features; nothing to import",
            )
        ]
        return plan
    typed, problems = coerce_attributes(lyr, frame)
    problems = list(upload.problems) + _missing_columns(lyr, frame, problems)
    plan.columns = tuple(f.name for f in lyr.input_fields if f.name in frame.columns)
    ids = typed[lyr.key].tolist()
    plan.frame = typed
    if lyr.is_feature:
        geoms = single_part(gpd.GeoSeries(frame.geometry.values, crs=WORKING_EPSG)).values
        unread = {p.index for p in upload.problems if p.field == "geometry"}
        envelope, note = import_envelope(store, lyr.name)
        geo_problems = [
            p
            for p in check_geometries(lyr, geoms, ids, envelope=envelope, envelope_note=note)
            if p.index not in unread
        ]
        problems += geo_problems
        usable = np.ones(len(frame), dtype=bool)
        usable[list(unread | {p.index for p in geo_problems})] = False
        plan.frame = gpd.GeoDataFrame(typed, geometry=np.asarray(geoms), crs=WORKING_EPSG)
        if lyr.name == "plots":
            problems += _self_overlaps(plan.frame, usable)
    stored = _stored_rows(store, lyr, ids)
    _plan_updates(plan, lyr, stored)
    if plan.replace:
        plan.removed = _removals(store, lyr, {str(k) for k in ids if k is not None})
        problems += _committed_removals(store, lyr, plan.removed)
    elif lyr.name == "plots":
        problems += _overlaps_with_store(store, plan.frame, {str(k) for k in ids if k is not None})
    plan.problems = sorted(problems, key=_order)
    return plan


def _checked_layers(layer: Layer) -> list[str]:
    """The layers a plan reads: the target, where the zone is, who holds plots."""
    return list(dict.fromkeys([layer.name, "zone", "expansion", "applications"]))


def import_envelope(store: Any, layer: str) -> tuple[tuple[float, float, float, float], str]:
    """The box imported features must lie in, and how to describe it.

    The extent of the stored zone and expansion areas grown by
    ``ZONE_MARGIN_M`` (5 km); the fixed ``ZONE_ENVELOPE`` when the store has no
    zone yet, and for imports of ``zone`` and ``expansion`` themselves (they
    define where the zone is).
    """
    fallback = (ZONE_ENVELOPE, "wrong CRS, or metres read as degrees?")
    if layer in ("zone", "expansion"):
        return fallback
    zone = store.extent("zone")
    if zone is None:
        return fallback
    boxes = [zone] + [b for b in [store.extent("expansion")] if b is not None]
    m = ZONE_MARGIN_M
    env = (
        min(b[0] for b in boxes) - m,
        min(b[1] for b in boxes) - m,
        max(b[2] for b in boxes) + m,
        max(b[3] for b in boxes) + m,
    )
    return env, (
        f"more than {m / 1000:g} km from the zone: wrong CRS, metres read as "
        "degrees, or data from elsewhere?"
    )


def _missing_columns(layer: Layer, frame: pd.DataFrame, problems: list[Problem]) -> list[Problem]:
    """One input-level problem per absent required column instead of one per feature."""
    absent = [f.name for f in layer.input_fields if f.required and f.name not in frame.columns]
    if not absent:
        return problems
    have = ", ".join(str(c) for c in frame.columns if c != "geometry") or "none"
    head = [
        Problem(
            None,
            None,
            name,
            f"the input has no column {name!r}, which {layer.name} requires (its columns: {have})",
        )
        for name in absent
    ]
    return head + [p for p in problems if p.field not in absent]


def _stored_rows(store: Any, layer: Layer, ids: list[Any]) -> pd.DataFrame:
    """The stored rows whose id is in ``ids`` (queried in chunks, by value), by id."""
    wanted = sorted({str(i) for i in ids if i is not None})
    parts = [
        store.read(layer.name, where={layer.key: wanted[start : start + _ID_CHUNK]})
        for start in range(0, len(wanted), _ID_CHUNK)
    ]
    rows = pd.concat(parts, ignore_index=True) if parts else store.read(layer.name, limit=0)
    return rows.set_index(rows[layer.key].astype(str), drop=False)


def _plain(value: Any) -> Any:
    """A stored value as the schema's coercion gives it (None for missing, plain Python)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _plan_updates(plan: ImportPlan, lyr: Layer, stored: pd.DataFrame) -> None:
    """Sort the input into new ids and updates of stored features (fields that differ)."""
    keys = [None if k is None else str(k) for k in plan.frame[lyr.key].tolist()]
    rows = [i for i, k in enumerate(keys) if k is not None and k in stored.index]
    plan.new_ids = [k for k in keys if k is not None and k not in stored.index]
    if not rows:
        return
    old = stored.loc[[keys[i] for i in rows]]
    after: list[dict[str, Any]] = [{} for _ in rows]
    for name in plan.columns:
        if name == lyr.key:
            continue
        new_values = plan.frame[name].iloc[rows].tolist()
        for n, (a, b) in enumerate(zip(old[name].tolist(), new_values)):
            if _plain(a) != b:
                after[n][name] = b
    if lyr.is_feature:
        new_geoms = np.asarray(plan.frame.geometry.values, dtype=object)[rows]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            same = shapely.equals_exact(
                shapely.normalize(new_geoms),
                shapely.normalize(np.asarray(old.geometry.values)),
                tolerance=SAME_GEOMETRY_M,
            )
        for n in np.flatnonzero(~same):
            after[n]["geometry"] = new_geoms[n]
    for n, i in enumerate(rows):
        key = keys[i]
        if not after[n]:
            plan.unchanged += 1
            continue
        plan.updates[key] = after[n]
        plan.before[key] = {
            f: (old.geometry.iloc[n] if f == "geometry" else _plain(old[f].iloc[n]))
            for f in after[n]
        }
        plan.versions[key] = int(_plain(old["version"].iloc[n]) or 0)


def _removals(store: Any, layer: Layer, keep: set[str]) -> dict[str, str | None]:
    """``{id: status}`` of the stored features not in ``keep``, in id order."""
    stored = store.read(layer.name)
    keys = stored[layer.key].astype(str)
    gone = ~keys.isin(keep)
    status = (
        stored.loc[gone, "status"].tolist() if layer.has("status") else [None] * int(gone.sum())
    )
    return dict(zip(keys[gone].tolist(), status))


def _committed_removals(store: Any, layer: Layer, removed: dict[str, str | None]) -> list[Problem]:
    """Refuse a replace that would remove plots someone holds or an application names."""
    if layer.name != "plots" or not removed:
        return []
    apps = store.read("applications")
    named = set(apps["plot_id"].dropna().astype(str)) | set(apps["assigned"].dropna().astype(str))
    held = [k for k, status in removed.items() if status in COMMITTED_STATUSES or k in named]
    if not held:
        return []
    shown = ", ".join(
        f"{k} ({removed[k]}{', named by an application' if k in named else ''})"
        for k in held[:SHOWN_IDS]
    )
    more = f" and {len(held) - SHOWN_IDS} more" if len(held) > SHOWN_IDS else ""
    return [
        Problem(
            None,
            None,
            layer.key,
            f"a replace never removes committed plots, and the file lacks {len(held)} "
            f"of them: {shown}{more}. Put them in the file, or update instead of "
            "replacing (nothing is then removed)",
        )
    ]


def _usable_geoms(frame: gpd.GeoDataFrame, usable: np.ndarray | None = None) -> np.ndarray:
    geoms = np.asarray(frame.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    ok[ok] = shapely.is_valid(geoms[ok])
    return np.flatnonzero(ok if usable is None else ok & usable)


def _self_overlaps(frame: gpd.GeoDataFrame, usable: np.ndarray) -> list[Problem]:
    idx = _usable_geoms(frame, usable)
    sub = gpd.GeoSeries(frame.geometry.values[idx])
    keys = frame["plot_id"].tolist()
    out = []
    for a, b, area in overlaps(sub):
        i, j = int(idx[a]), int(idx[b])
        out.append(
            Problem(
                j,
                keys[j],
                "geometry",
                f"overlaps plot {keys[i]} (feature {i} of the input) by {area:.1f} m²",
            )
        )
    return out


def _overlaps_with_store(store: Any, frame: gpd.GeoDataFrame, in_file: set[str]) -> list[Problem]:
    """Overlaps with stored plots the file does not mention (those it mentions get the
    file's geometry, checked among the input)."""
    idx = _usable_geoms(frame)
    if not len(idx):
        return []
    sub = gpd.GeoSeries(frame.geometry.values[idx])
    stored = store.read("plots", bbox=tuple(sub.total_bounds))
    stored = stored[~stored["plot_id"].astype(str).isin(in_file)]
    keys = frame["plot_id"].tolist()
    stored_keys = stored["plot_id"].tolist()
    out = []
    for a, b, area in overlaps(sub, gpd.GeoSeries(stored.geometry.values)):
        i = int(idx[a])
        out.append(
            Problem(
                i, keys[i], "geometry", f"overlaps existing plot {stored_keys[b]} by {area:.1f} m²"
            )
        )
    return out


def apply_import(store: Any, plan: ImportPlan, *, user: str = "system") -> list[str]:
    """Write a checked plan in one transaction; return the ids added or updated.

    Removals, then updates (each a versioned ``Session.update``, so the audit
    trail holds field by field what changed), then one insert of the new ids.
    If the store changed since the plan was made, the import is planned again
    inside the transaction (other writers wait meanwhile) and refused when it
    now finds problems or would remove other features.

    Raises
    ------
    ValidationError
        When the plan has problems, or the fresh plan differs; nothing is written.
    """
    if plan.problems:
        raise ValidationError(plan.problems)
    with store.transaction(user) as tx:
        return write_import(tx, store, plan)


def write_import(tx: Any, store: Any, plan: ImportPlan) -> list[str]:
    """Write a checked plan inside the open transaction ``tx`` of ``store`` (see
    :func:`apply_import`); return the ids added or updated."""
    if plan.problems:
        raise ValidationError(plan.problems)
    lyr = importable_layer(plan.layer)
    # Writers that check this layer (new parcels, other imports) wait until this commits,
    # so the plan checked below is what the rows are written next to.
    tx.lock(lyr.name)
    if store.revision(_checked_layers(lyr)) != plan.revision:
        plan = _plan_again(store, plan)
    for key in plan.removed:
        tx.delete(lyr.name, key)
    for key, changes in plan.updates.items():
        tx.update(lyr.name, key, changes, version=plan.versions[key])
    new = plan.frame[plan.frame[lyr.key].astype(str).isin(set(plan.new_ids))]
    added = tx.insert(lyr.name, new) if len(new) else []
    return [*added, *plan.updates]


def _plan_again(store: Any, plan: ImportPlan) -> ImportPlan:
    """The same import planned against the store as it is now; refused if it changed
    what was checked (new problems, other removals)."""
    fresh = plan_import(
        store,
        plan.layer,
        Upload(plan.layer, plan.input_frame(), source=plan.source),
        mode=plan.mode,
    )
    if fresh.problems:
        raise ValidationError(fresh.problems)
    if list(fresh.removed) != list(plan.removed):
        raise ValidationError(
            [
                Problem(
                    None,
                    None,
                    None,
                    f"{plan.layer} changed since the file was checked: the "
                    f"replace would now remove {fresh.removals} feature(s), "
                    f"not {plan.removals}; check the file again",
                )
            ]
        )
    # Features someone edited meanwhile would be overwritten (ids another writer just
    # added as the file has them are merely unchanged now).
    moved = sorted(
        k
        for k in set(fresh.updates) | set(plan.updates)
        if set(fresh.updates.get(k, ())) != set(plan.updates.get(k, ()))
    )
    if moved:
        raise ValidationError(
            [
                Problem(
                    None,
                    None,
                    None,
                    f"{plan.layer} changed since the file was checked "
                    f"({', '.join(moved[:20])}); check the file again",
                )
            ]
        )
    return fresh


def import_file(
    store: Any,
    layer: str,
    source: Source,
    *,
    mode: str = "update",
    src_layer: str | None = None,
    crs: int | str | None = None,
    encoding: str | None = None,
    user: str = "system",
    filename: str | None = None,
) -> ImportPlan:
    """Read, plan and apply an import in one call; return the applied plan.

    Raises
    ------
    ValidationError
        With every problem found; nothing is written.
    """
    upload = read_upload(
        source, layer, src_layer=src_layer, crs=crs, filename=filename, encoding=encoding
    )
    plan = plan_import(store, layer, upload, mode=mode)
    apply_import(store, plan, user=user)
    return plan


# ---------------------------------------------------------------------------
# Exports


def export_layer_names(layers: str | Sequence[str], *, include_private: bool = True) -> list[str]:
    """Resolve ``"all"`` or names into the layers to export.

    ``all`` means every public layer: the feature layers and ``targets``
    (never ``users``, ``applications`` or ``audit``). Naming a private layer
    explicitly exports it only when ``include_private`` (the CLI, which has
    the store file anyway); ``users`` is never exported.

    Raises
    ------
    KeyError, ValueError
        For unknown layers or layers that may not be exported.
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    if names == ["all"]:
        return [n for n, lyr in LAYERS.items() if lyr.public]
    out = []
    for name in names:
        lyr = get_layer(name)
        if lyr.name in NEVER_EXPORTED or (not lyr.public and not include_private):
            raise ValueError(f"{lyr.name} is never exported")
        out.append(lyr.name)
    return out


def parse_where(layer: str, items: Iterable[str]) -> dict[str, Any]:
    """Turn ``FIELD=VALUE`` strings into a typed ``where`` for ``Store.read``.

    Different fields are ANDed; a field given twice matches either value.

    Raises
    ------
    ValueError
        For malformed items, unknown fields, or values the field cannot hold.
    """
    pairs: list[tuple[str, str]] = []
    for item in items:
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--where {item!r}: use FIELD=VALUE")
        pairs.append((name.strip(), value))
    where: dict[str, list[Any]] = {}
    for name, value in pairs:
        where.setdefault(name, []).append(value)
    return check_where(layer, where)


def check_where(layer: str, where: Mapping[str, Any]) -> dict[str, Any]:
    """Type the values of a ``{field: value or [values]}`` filter by the schema.

    Raises
    ------
    ValueError
        Naming the unknown field (and the known ones) or the bad value.
    """
    lyr = get_layer(layer)
    out: dict[str, Any] = {}
    fields = [f.name for f in lyr.export_fields]
    for name, value in where.items():
        if name not in fields:
            raise ValueError(f"{lyr.name} has no field {name!r}; its fields: {', '.join(fields)}")
        if isinstance(value, (Null, Range)):  # already a typed store condition
            out[name] = value
            continue
        fld = dataclasses.replace(lyr.field(name), required=True)
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        typed = []
        for v in values:
            try:
                typed.append(coerce_value(fld, v))
            except ValueError as err:
                raise ValueError(f"{lyr.name}.{name} = {v!r}: {err}") from None
        out[name] = typed if len(typed) != 1 else typed[0]  # [] matches nothing
    return out


def _default_crs(fmt: str, crs: int | str | None) -> int:
    if crs is not None:
        return parse_epsg(crs)
    return WGS84_EPSG if fmt == "geojson" else WORKING_EPSG


def _frame_for_export(
    store: Any, name: str, where: Mapping[str, Any] | None, epsg: int
) -> pd.DataFrame:
    frame = store.read(name, where=where)
    if get_layer(name).is_feature and epsg != WORKING_EPSG:
        frame = frame.to_crs(epsg)
    return frame


def _write_geojson(layer: Layer, frame: pd.DataFrame, path: Path, epsg: int) -> Path:
    rfc = epsg == WGS84_EPSG
    options = {"RFC7946": "YES", "COORDINATE_PRECISION": GEOJSON_DECIMALS} if rfc else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "no SRS" for tables
        _write_geojson_arrow(layer, frame, path, epsg, options)
    return path


def _write_geojson_arrow(
    layer: Layer, frame: pd.DataFrame, path: Path, epsg: int, options: dict[str, Any]
) -> None:
    pyogrio.write_arrow(
        to_arrow(layer, frame),
        path,
        driver="GeoJSON",
        layer=layer.name,
        geometry_name="geometry" if layer.is_feature else None,
        geometry_type=layer.geometry if layer.is_feature else None,
        crs=f"EPSG:{epsg}" if layer.is_feature else None,
        layer_options={**options, "WRITE_NAME": "YES"},
    )


def _write_gpkg_layer(layer: Layer, frame: pd.DataFrame, path: Path, epsg: int) -> None:
    options = {"DESCRIPTION": layer.label, "IDENTIFIER": layer.name}
    if layer.is_feature:
        options.update(SPATIAL_INDEX="YES", GEOMETRY_NAME="geom")
    pyogrio.write_arrow(
        to_arrow(layer, frame),
        path,
        driver="GPKG",
        layer=layer.name,
        geometry_name="geometry" if layer.is_feature else None,
        geometry_type=layer.geometry if layer.is_feature else None,
        crs=f"EPSG:{epsg}" if layer.is_feature else None,
        layer_options=options,
        append=path.exists(),
        dataset_options=None if path.exists() else {"VERSION": GPKG_VERSION},
    )


def _shapefile_members(layer: Layer, folder: Path) -> list[tuple[Path, str]]:
    parts = archive.SHAPEFILE_PARTS if layer.is_feature else (".dbf", ".cpg")
    return [
        (folder / f"{layer.name}{s}", f"{layer.name}{s}")
        for s in parts
        if (folder / f"{layer.name}{s}").exists()
    ]


def export_layers(
    store: Any,
    layers: str | Sequence[str],
    fmt: str,
    out_path: Path | str,
    *,
    crs: int | str | None = None,
    where: Mapping[str, Any] | None = None,
    include_private: bool = True,
    fields: Sequence[str] | None = None,
    zip_level: int = 6,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Export layers of the store to one file, written atomically.

    Parameters
    ----------
    store : Store
    layers : str or sequence of str
        Layer names, or ``"all"`` (see :func:`export_layer_names`).
    fmt : {"shp", "gpkg", "geojson"}
        ``shp``: a zip of ``<layer>.shp/.shx/.dbf/.prj/.cpg`` at its top level
        (tables as ``<layer>.dbf`` + ``.cpg``), or, when ``out_path`` ends in
        ``.shp`` and one layer is exported, the plain files ``<stem>.shp``,
        ``.shx``, ``.dbf``, ``.prj``, ``.cpg`` beside each other (a table:
        ``<stem>.dbf`` + ``.cpg``); ``gpkg``: one GeoPackage with
        every layer; ``geojson``: one FeatureCollection for a single layer, a
        zip of ``<layer>.geojson`` files for several.
    out_path : path-like
        The file to write; it appears only once complete (temporary file
        beside it, then a rename), so a failure leaves nothing half-written.
        An existing file is overwritten, except the store's own file (refused).
    crs : int or str, optional
        EPSG code of the output. Default: the working CRS, and WGS84 (RFC
        7946, 9 decimals) for GeoJSON; GeoJSON in another CRS carries a
        ``crs`` member.
    where : mapping, optional
        ``{field: value or [values]}`` typed by :func:`check_where`; only with
        a single layer.
    include_private : bool
        Allow naming ``applications`` or ``audit`` explicitly.
    fields : sequence of str, optional
        Write only these fields (the key always); only with a single layer.
    zip_level : int
        Deflate level of zip outputs (1 fastest, 9 smallest).
    progress : callable, optional
        Called with a short message per layer written.

    Returns
    -------
    Path
        ``out_path`` (for a table written as a plain shapefile: its ``.dbf``).

    Raises
    ------
    ValueError
        Unknown format or layer, a ``where`` on several layers, bad CRS, a
        ``.shp`` for several layers, ``out_path`` being the store's own file.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    names = export_layer_names(layers, include_private=include_private)
    if where and len(names) != 1:
        raise ValueError("--where filters one layer; name the layer instead of 'all'")
    where = check_where(names[0], where) if where else None
    if fields is not None and len(names) != 1:
        raise ValueError("fields narrow one layer; name the layer instead of 'all'")
    schemas = {name: _export_schema(name, fields) for name in names}
    epsg = _default_crs(fmt, crs)
    out = Path(out_path)
    plain_shp = fmt == "shp" and out.suffix.lower() == ".shp"
    if plain_shp and len(names) > 1:
        raise ValueError(f"{out.name}: a .shp holds one layer; use a .zip for several layers")
    targets = [out.with_suffix(s) for s in archive.SHAPEFILE_PARTS] if plain_shp else [out]
    _refuse_store_file(store, targets)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if plain_shp:
            return _export_plain_shapefile(
                store, schemas[names[0]], work, out, epsg, where, progress
            )
        result = _export_into(
            store, list(schemas.values()), fmt, work, epsg, where, zip_level, progress
        )
        os.replace(result, out)
    except _PYOGRIO_ERRORS as err:
        raise ValueError(f"could not write {out.name}: {_first_line(err)}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _export_schema(name: str, fields: Sequence[str] | None) -> Layer:
    """Layer ``name``'s schema narrowed to ``fields`` (and its key) when given."""
    lyr = get_layer(name)
    if fields is None:
        return lyr
    keep = {*fields, lyr.key}
    return dataclasses.replace(lyr, fields=tuple(f for f in lyr.fields if f.name in keep))


def _refuse_store_file(store: Any, targets: list[Path]) -> None:
    """Refuse to write over the store's own file (it would lose every other layer)."""
    from geo.store import is_url

    if is_url(store.describe()):
        return
    db = Path(store.describe())
    for target in targets:
        try:
            same = target.exists() and db.exists() and os.path.samefile(target, db)
        except OSError:
            same = False
        if same or target.resolve() == db.resolve():
            raise ValueError(
                f"{target} is the store itself (--db {db}); writing the export "
                "there would destroy every other layer. Choose another output "
                "file; nothing was written"
            )


_STALE_SHAPEFILE_SIDECARS = (".qix", ".sbn", ".sbx", ".shp.xml", ".cpg", ".prj")


def _export_plain_shapefile(
    store: Any,
    lyr: Layer,
    work: Path,
    out: Path,
    epsg: int,
    where: Mapping[str, Any] | None,
    progress: Callable[[str], None] | None,
) -> Path:
    """Write one layer as ``<stem>.shp/.shx/.dbf/.prj/.cpg`` beside ``out``.

    The files are written in ``work`` and renamed into place, ``.shp`` (or the
    table's ``.dbf``) last; sidecars of an earlier file of that name (spatial
    indexes, an old ``.prj``) are removed so they cannot describe the new one.
    """
    name = lyr.name
    frame = _frame_for_export(store, name, where, epsg)
    written = write_shapefile(lyr, frame, work, name=out.stem)
    for suffix in _STALE_SHAPEFILE_SIDECARS:
        stale = out.parent / f"{out.stem}{suffix}"
        if stale.is_file():
            stale.unlink()
    parts = sorted(work.glob(f"{out.stem}.*"), key=lambda p: p == written)
    for part in parts:
        os.replace(part, out.parent / part.name)
    (progress or (lambda _msg: None))(f"{name}: {len(frame)} row(s)")
    return out.parent / written.name


def _export_into(
    store: Any,
    schemas: list[Layer],
    fmt: str,
    work: Path,
    epsg: int,
    where: Mapping[str, Any] | None,
    zip_level: int,
    progress: Callable[[str], None] | None,
) -> Path:
    """Write the export inside ``work``; return the finished file."""
    say = progress or (lambda _msg: None)
    members: list[tuple[Path, str]] = []
    target = work / "export.part"
    for lyr in schemas:
        name = lyr.name
        frame = _frame_for_export(store, name, where, epsg)
        if fmt == "shp":
            write_shapefile(lyr, frame, work)
            members += _shapefile_members(lyr, work)
        elif fmt == "gpkg":
            target = work / "export.gpkg"
            _write_gpkg_layer(lyr, frame, target, epsg)
        else:
            path = _write_geojson(lyr, frame, work / f"{name}.geojson", epsg)
            members.append((path, path.name))
        say(f"{name}: {len(frame)} row(s)")
    if fmt == "gpkg":
        return target
    if fmt == "geojson" and len(schemas) == 1:
        return members[0][0]
    return archive.write_zip(target, members, level=zip_level)


def export_filename(layers: str | Sequence[str], fmt: str) -> str:
    """The download name of an export: ``plots.zip``, ``all.gpkg``, ``roads.geojson``..."""
    names = [layers] if isinstance(layers, str) else list(layers)
    stem = names[0] if len(names) == 1 else "layers"
    if fmt == "shp" or (fmt == "geojson" and (len(names) > 1 or stem == "all")):
        return f"{stem}.zip"
    return f"{stem}.{fmt}"


def export_bytes(
    store: Any,
    layers: str | Sequence[str],
    fmt: str,
    *,
    crs: int | str | None = None,
    where: Mapping[str, Any] | None = None,
    include_private: bool = False,
) -> tuple[bytes, str, str]:
    """An export as ``(content, download file name, media type)`` for HTTP.

    Private layers are refused unless ``include_private``; see
    :func:`export_layers` for the rest.
    """
    name = export_filename(layers, fmt)
    with tempfile.TemporaryDirectory(prefix="zoneplan-export-") as tmp:
        path = export_layers(
            store,
            layers,
            fmt,
            Path(tmp) / name,
            crs=crs,
            where=where,
            include_private=include_private,
        )
        data = path.read_bytes()
    media = MEDIA_TYPES["zip" if name.endswith(".zip") else fmt]
    return data, name, media


__all__ = [
    "CLI_OPTIONS",
    "COMMITTED_STATUSES",
    "FORMATS",
    "ImportPlan",
    "MODES",
    "Upload",
    "apply_import",
    "check_where",
    "export_bytes",
    "ShapefileLimitWarning",
    "export_filename",
    "write_import",
    "export_layer_names",
    "export_layers",
    "import_envelope",
    "import_file",
    "importable_layer",
    "load_upload",
    "parse_where",
    "plan_import",
    "read_file",
    "read_upload",
    "to_arrow",
    "write_shapefile",
]
