"""File formats: the constants every reader and writer shares, and Arrow tables typed by
the layer schemas."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pyogrio.errors
import shapely

from geo.layers import INTERNAL_LAYERS, Field, Layer

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
