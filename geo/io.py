"""Shapefile, GeoPackage and GeoJSON files in and out, typed by the layer schemas."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely

from geo.crs import WORKING_EPSG
from geo.layers import Field, Layer, get_layer

_ARROW_TYPES = {
    "str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
    "date": pa.date32(), "datetime": pa.string(),
}


def _arrow_column(fld: Field, values: pd.Series) -> pa.Array:
    items = [None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA
             else v for v in values.tolist()]
    if fld.type == "date":
        items = [dt.date.fromisoformat(v) if isinstance(v, str) else v for v in items]
    elif fld.type == "datetime":
        items = [v if v is None else str(v) for v in items]
    return pa.array(items, type=_ARROW_TYPES[fld.type])


def to_arrow(layer: Layer, frame: pd.DataFrame, fields: tuple[Field, ...] | None = None,
             ) -> pa.Table:
    """An Arrow table of ``frame`` typed by the schema, geometry as ISO WKB.

    Missing optional columns are written as nulls so every file carries the
    full schema.
    """
    fields = layer.export_fields if fields is None else fields
    data = {}
    for fld in fields:
        column = frame[fld.name] if fld.name in frame.columns else pd.Series([None] * len(frame))
        data[fld.name] = _arrow_column(fld, column)
    if layer.is_feature:
        data["geometry"] = pa.array(shapely.to_wkb(np.asarray(frame.geometry.values), flavor="iso"))
    return pa.table(data)


def _epsg(frame: pd.DataFrame) -> int:
    crs = getattr(frame, "crs", None)
    return crs.to_epsg() if crs is not None else WORKING_EPSG


def write_shapefile(layer: Layer | str, frame: gpd.GeoDataFrame, directory: Path | str,
                    *, name: str | None = None) -> Path:
    """Write one layer as a shapefile with ``.prj`` and a UTF-8 ``.cpg``.

    Field widths are shrunk to the data (GDAL's ``RESIZE``); dates are DBF dates.

    Returns
    -------
    Path
        The ``.shp`` written.
    """
    layer = get_layer(layer) if isinstance(layer, str) else layer
    path = Path(directory) / f"{name or layer.name}.shp"
    pyogrio.write_arrow(
        to_arrow(layer, frame), path, geometry_name="geometry" if layer.is_feature else None,
        geometry_type=layer.geometry if layer.is_feature else None,
        crs=f"EPSG:{_epsg(frame)}" if layer.is_feature else None,
        encoding="UTF-8", layer_options={"RESIZE": "YES"},
    )
    return path


def read_file(path: Path | str, *, layer: str | None = None) -> pd.DataFrame:
    """Read a vector file or table (shapefile, GeoPackage layer, GeoJSON, DBF) as is.

    Returns a GeoDataFrame in the file's own CRS (``crs`` None when it has
    none), or a DataFrame for files without geometry.
    """
    return pyogrio.read_dataframe(path, layer=layer, use_arrow=True)
