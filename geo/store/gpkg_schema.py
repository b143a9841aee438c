"""The GeoPackage store's schema: its layers made by GDAL, their key and search indexes,
and the upgrades a store made by an older version gets when opened."""

from __future__ import annotations

import os
import sqlite3

import geopandas as gpd
import pandas as pd
import pyogrio

from geo.io.formats import GPKG_VERSION, to_arrow
from geo.layers import LAYERS, Layer, get_layer
from geo.store.base import SEARCH_KEYS, StoreError
from geo.store.rows import GEOM


def quote(name: str) -> str:
    """Quote an identifier that comes from the schema (never from a request)."""
    return '"' + name.replace('"', '""') + '"'


_q = quote


def search_key(column: str) -> str:
    """A text column's search key in SQL, as the search index holds it (Latin case folded)."""
    return f"lower(replace({column}, ' ', ''))"


def search_indexes(layer: Layer) -> list[str]:
    """``CREATE INDEX`` statements of ``layer``'s search keys (:data:`SEARCH_KEYS`)."""
    return [
        f"CREATE INDEX IF NOT EXISTS {_q(f'{layer.name}_{name}_search')} ON {_q(layer.name)} "
        f"({search_key(_q(name))}, {_q(layer.key)})"
        for name in SEARCH_KEYS.get(layer.name, ())
    ]


def create_indexes(conn: sqlite3.Connection, layer: Layer) -> None:
    """The unique key index and the search-key indexes of ``layer``."""
    conn.execute(
        f"CREATE UNIQUE INDEX IF NOT EXISTS {_q(layer.name + '_key')} "
        f"ON {_q(layer.name)} ({_q(layer.key)})"
    )
    for statement in search_indexes(layer):
        conn.execute(statement)


def add_search_indexes(conn: sqlite3.Connection) -> None:
    """Index the search keys of a store made before they were (one pass per field)."""
    wanted = [f"{layer}_{name}_search" for layer, names in SEARCH_KEYS.items() for name in names]
    have = {
        r[0]
        for r in conn.execute(
            f"SELECT name FROM sqlite_master WHERE type = 'index' AND name IN "
            f"({', '.join('?' * len(wanted))})",
            wanted,
        )
    }
    if have != set(wanted):
        for layer in SEARCH_KEYS:
            for statement in search_indexes(get_layer(layer)):
                conn.execute(statement)


#: SQLite column types of the schema's field types, as GDAL writes them in a GeoPackage.
_SQLITE_TYPES = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "REAL",
    "bool": "BOOLEAN",
    "date": "DATE",
    "datetime": "DATETIME",
}


def add_fields(conn: sqlite3.Connection) -> None:
    """Add the fields a newer schema gave a layer (a store made by an older version)."""
    for layer in LAYERS.values():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({_q(layer.name)})")}
        for fld in layer.fields:
            if fld.name not in have:
                try:
                    conn.execute(
                        f"ALTER TABLE {_q(layer.name)} ADD COLUMN {_q(fld.name)} "
                        + _SQLITE_TYPES[fld.type]
                    )
                except sqlite3.OperationalError as err:  # another process added it meanwhile
                    if "duplicate column" not in str(err):
                        raise StoreError(f"cannot add {layer.name}.{fld.name}: {err}") from None


def create_layer(path: str, layer: Layer, epsg: int) -> None:
    """One empty layer table of ``path`` in CRS ``epsg``, written by GDAL (a new file is made
    at the GeoPackage version every GDAL in use reads)."""
    empty = (
        gpd.GeoDataFrame({f.name: [] for f in layer.fields}, geometry=[], crs=epsg)
        if layer.is_feature
        else pd.DataFrame({f.name: [] for f in layer.fields})
    )
    table = to_arrow(layer, empty, layer.fields)
    options = {"GEOMETRY_NAME": GEOM, "SPATIAL_INDEX": "YES"} if layer.is_feature else {}
    pyogrio.write_arrow(
        table,
        path,
        layer=layer.name,
        driver="GPKG",
        geometry_name="geometry" if layer.is_feature else None,
        geometry_type=layer.geometry if layer.is_feature else None,
        crs=f"EPSG:{epsg}" if layer.is_feature else None,
        layer_options={**options, "DESCRIPTION": layer.label, "IDENTIFIER": layer.name},
        dataset_options=None if os.path.exists(path) else {"VERSION": GPKG_VERSION},
        append=os.path.exists(path),
    )
