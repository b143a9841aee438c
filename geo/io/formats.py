"""File formats: the constants every reader and writer shares, Arrow tables typed by
the layer schemas, and the shapefile writer."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import pyogrio.errors
import shapely

from geo.layers import INTERNAL_LAYERS, Field, Layer, get_layer

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
PYOGRIO_ERRORS = (
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

_ARROW_TYPES = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.string(),
}


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


def _epsg(frame: pd.DataFrame | pa.Table, epsg: int | None) -> int:
    if epsg is not None:
        return epsg
    crs = None if isinstance(frame, pa.Table) else getattr(frame, "crs", None)
    code = crs.to_epsg() if crs is not None else None
    if code is None:
        raise ValueError("the rows carry no EPSG CRS; give the shapefile's epsg")
    return int(code)


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


def _warn_long_text(layer: Layer, table: pa.Table) -> None:
    """Warn (ShapefileLimitWarning) per text field holding values the DBF will cut."""
    keys = table.column(layer.key) if layer.key in table.column_names else None
    for i, fld in enumerate(table.schema):
        if not pa.types.is_string(fld.type):
            continue
        lengths = pc.binary_length(table.column(i).cast(pa.binary()))
        over = np.flatnonzero(
            pc.fill_null(pc.greater(lengths, _DBF_MAX_WIDTH), False).to_numpy(zero_copy_only=False)
        )
        if not len(over):
            continue
        first = keys[int(over[0])].as_py() if keys is not None else f"row {int(over[0])}"
        warnings.warn(
            f"{layer.name}.{fld.name}: {len(over)} value(s) longer than the shapefile limit of "
            f"{_DBF_MAX_WIDTH} bytes (first: {layer.key} {first}) were cut short in the .dbf; "
            "use --format gpkg to keep them whole",
            ShapefileLimitWarning,
            stacklevel=3,
        )


def write_shapefile(
    layer: Layer | str,
    frame: gpd.GeoDataFrame | pa.Table,
    directory: Path | str,
    *,
    name: str | None = None,
    epsg: int | None = None,
) -> Path:
    """Write one layer as a shapefile with ``.prj`` and a UTF-8 ``.cpg``.

    Text and integer field widths come from the schema (see :func:`dbf_width`),
    so values typed later fit; dates are DBF dates. A table (no geometry) is written
    as a lone ``.dbf`` (with ``.cpg``). Text longer than the DBF's 254 bytes is
    cut by the format; a :class:`ShapefileLimitWarning` names the layer, field,
    count and first feature. ``frame`` may also be an Arrow table already typed by
    the schema (:func:`typed_table`); ``epsg`` is the rows' CRS (default: the frame's;
    required for a table of features).

    Returns
    -------
    Path
        The ``.shp`` written (the ``.dbf`` for tables).
    """
    layer = get_layer(layer) if isinstance(layer, str) else layer
    path = Path(directory) / f"{name or layer.name}.shp"
    table = frame if isinstance(frame, pa.Table) else to_arrow(layer, frame)
    _warn_long_text(layer, table)
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
            crs=f"EPSG:{_epsg(frame, epsg)}" if layer.is_feature else None,
            encoding="UTF-8",
        )
    return path if layer.is_feature else path.with_suffix(".dbf")


def typed_table(layer: Layer, table: pa.Table, geometry: str | None) -> pa.Table:
    """A table as GDAL read it from a store, with the export fields cast to the schema's
    Arrow types (what :func:`to_arrow` gives) and its geometry column (``geometry``, ISO
    WKB) last."""
    data = {f.name: table.column(f.name).cast(_ARROW_TYPES[f.type]) for f in layer.export_fields}
    if layer.is_feature and geometry is not None:
        data["geometry"] = table.column(geometry).cast(pa.binary())
    return pa.table(data)


def read_file(path: Path | str, *, layer: str | None = None) -> pd.DataFrame:
    """Read a vector file or table (shapefile, GeoPackage layer, GeoJSON, DBF) as is.

    Returns a GeoDataFrame in the file's own CRS (``crs`` None when it has
    none), or a DataFrame for files without geometry.
    """
    return pyogrio.read_dataframe(path, layer=layer, use_arrow=True)


def first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
