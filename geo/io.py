"""Shapefile, GeoPackage and GeoJSON files in and out, typed by the layer schemas.

Imports go ``read_upload``/``load_upload`` (any supported file -> frame in the
working CRS) -> ``plan_import`` (every check, nothing written; a preview) ->
``apply_import`` (one transaction). Exports go ``export_layers`` (a file written
beside its destination and renamed into place) or ``export_bytes`` for HTTP.
None of these functions know about the CLI or Flask.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Mapping, Sequence, Union

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
from geo.layers import LAYERS, Field, Layer, get_layer
from geo.validate import (
    ZONE_ENVELOPE, Problem, ValidationError, check_geometries, coerce_attributes, coerce_value,
    overlaps, single_part,
)

Source = Union[str, Path, bytes, IO[bytes]]
FORMATS: tuple[str, ...] = ("shp", "gpkg", "geojson")
MEDIA_TYPES = {"shp": "application/zip", "gpkg": "application/geopackage+sqlite3",
               "geojson": "application/geo+json", "zip": "application/zip"}
# Layers never imported or exported by these functions (users: credentials;
# audit: written by the store alone).
NEVER_EXPORTED: tuple[str, ...] = ("users",)
NOT_IMPORTABLE: tuple[str, ...] = ("users", "audit")
# 9 decimals of a degree are ~0.1 mm: a GeoJSON round trip moves shared plot edges
# far less than the 1 m² overlap tolerance (7 decimals, ~1 cm, did not).
GEOJSON_DECIMALS = 9
_DBF_MAX_WIDTH = 254
# Imports must lie within this distance (metres) of the zone and its expansion areas.
ZONE_MARGIN_M = 5_000.0
_ID_CHUNK = 500
_PYOGRIO_ERRORS = (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
                   pyogrio.errors.FieldError, pyogrio.errors.GeometryError,
                   pyogrio.errors.CRSError, pyogrio.errors.FeatureError)

_ARROW_TYPES = {
    "str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
    "date": pa.date32(), "datetime": pa.string(),
}


# ---------------------------------------------------------------------------
# Arrow tables typed by the schema

def _arrow_column_slow(fld: Field, values: pd.Series) -> pa.Array:
    items = [None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA
             or v is pd.NaT else v for v in values.tolist()]
    if fld.type == "date":
        items = [dt.date.fromisoformat(v[:10]) if isinstance(v, str)
                 else v.date() if isinstance(v, dt.datetime) else v for v in items]
    elif fld.type in ("datetime", "str"):
        items = [v if v is None or isinstance(v, str) else
                 v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else str(v) for v in items]
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


def to_arrow(layer: Layer, frame: pd.DataFrame, fields: tuple[Field, ...] | None = None,
             ) -> pa.Table:
    """An Arrow table of ``frame`` typed by the schema, geometry as ISO WKB.

    Missing optional columns are written as nulls so every file carries the
    full schema.
    """
    fields = layer.export_fields if fields is None else fields
    data = {}
    for fld in fields:
        column = (frame[fld.name].reset_index(drop=True) if fld.name in frame.columns
                  else pd.Series([None] * len(frame), dtype=object))
        data[fld.name] = _arrow_column(fld, column)
    if layer.is_feature:
        data["geometry"] = pa.array(shapely.to_wkb(np.asarray(frame.geometry.values), flavor="iso"),
                                    type=pa.binary())
    return pa.table(data)


class ShapefileLimitWarning(UserWarning):
    """A shapefile was written although it cannot hold some values in full
    (text longer than the DBF's 254 bytes is cut)."""


def _epsg(frame: pd.DataFrame) -> int:
    crs = getattr(frame, "crs", None)
    return crs.to_epsg() if crs is not None else WORKING_EPSG


def _sized_for_dbf(table: pa.Table) -> pa.Table:
    """Tag text and integer columns with the DBF width their data needs.

    GDAL reads the ``GDAL:OGR:width`` field metadata when it creates a field,
    so the ``.dbf`` is written once at the right widths instead of being
    rewritten by the ``RESIZE`` option (which costs a second pass).
    """
    schema = table.schema
    for i, fld in enumerate(schema):
        col = table.column(i)
        if pa.types.is_string(fld.type):
            longest = pc.max(pc.binary_length(col.cast(pa.binary()))).as_py()
        elif pa.types.is_integer(fld.type):
            lo, hi = pc.min_max(col).values()
            longest = max(len(str(v.as_py())) for v in (lo, hi)) if lo.is_valid else 1
        else:
            continue
        width = str(min(max(int(longest or 1), 1), _DBF_MAX_WIDTH))
        schema = schema.set(i, fld.with_metadata({"GDAL:OGR:width": width}))
    return table.cast(schema)


def _warn_long_text(layer: Layer, frame: pd.DataFrame, table: pa.Table) -> None:
    """Warn (ShapefileLimitWarning) per text field holding values the DBF will cut."""
    keys = frame[layer.key].reset_index(drop=True) if layer.key in frame.columns else None
    for i, fld in enumerate(table.schema):
        if not pa.types.is_string(fld.type):
            continue
        lengths = pc.binary_length(table.column(i).cast(pa.binary()))
        over = np.flatnonzero(pc.fill_null(pc.greater(lengths, _DBF_MAX_WIDTH), False)
                              .to_numpy(zero_copy_only=False))
        if not len(over):
            continue
        first = keys.iloc[int(over[0])] if keys is not None else f"row {int(over[0])}"
        warnings.warn(
            f"{layer.name}.{fld.name}: {len(over)} value(s) longer than the shapefile limit of "
            f"{_DBF_MAX_WIDTH} bytes (first: {layer.key} {first}) were cut short in the .dbf; "
            "use --format gpkg to keep them whole",
            ShapefileLimitWarning, stacklevel=3)


def write_shapefile(layer: Layer | str, frame: gpd.GeoDataFrame, directory: Path | str,
                    *, name: str | None = None) -> Path:
    """Write one layer as a shapefile with ``.prj`` and a UTF-8 ``.cpg``.

    Text and integer field widths are sized to the data in one pass (see
    ``_sized_for_dbf``); dates are DBF dates. A table (no geometry) is written
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
        warnings.filterwarnings("ignore", message=r"(?s).*has been truncated",
                                category=RuntimeWarning)
        pyogrio.write_arrow(
            _sized_for_dbf(table), path, driver="ESRI Shapefile",
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
    by_suffix = {".zip": "zip", ".shp": "shp", ".gpkg": "gpkg", ".geojson": "geojson",
                 ".json": "geojson", ".dbf": "dbf", ".csv": "csv"}
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
    raise ValueError(f"{path.name}: unknown file type; give a zipped shapefile (.zip), a .shp, "
                     "a GeoPackage (.gpkg) or GeoJSON (.geojson)")


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
    path = tmp / _safe_name(filename or getattr(source, "filename", None)
                            or getattr(source, "name", None), "upload")
    path.write_bytes(data)
    return path


_KIND_NAMES = {"geojson": "GeoJSON", "gpkg": "GeoPackage", "shp": "shapefile",
               "dbf": "dBASE table (.dbf)", "csv": "CSV table"}


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


def _read_raw(path: Path, *, layer_name: str | None = None, encoding: str | None = None,
              kind: str = "") -> tuple[pd.DataFrame, np.ndarray | None, str | None]:
    """Attributes, raw WKB (None for tables) and CRS text of one layer of a file."""
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
    return table.to_pandas(), wkb, meta.get("crs")


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


def _gpkg_layer(path: Path, layer: str, src_layer: str | None) -> str:
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
            raise ValueError(f"{path.name} has no layer {src_layer!r}; it holds: {', '.join(names)}")
        return match[0]
    if len(names) == 1:
        return names[0]
    if layer in names:
        return layer
    raise ValueError(f"{path.name} holds several layers ({', '.join(names)}); "
                     "choose one with --src-layer NAME")


def _read_path(path: Path, layer: Layer, src_layer: str | None,
               ) -> tuple[pd.DataFrame, np.ndarray | None, str | None, str, str]:
    """Read any supported file: (attributes, wkb, crs, kind, description)."""
    kind = _kind(path)
    if kind == "zip":
        with archive.extracted(path) as folder:
            member = archive.find_dataset(folder, layer=layer.name, src_layer=src_layer)
            attrs, wkb, crs, kind, _ = _read_path(member, layer, None if member.suffix.lower()
                                                  == ".shp" else src_layer)
            return attrs, wkb, crs, kind, f"{path.name}:{member.name}"
    if kind == "shp":
        archive.require_siblings(path)
        enc = None if archive.sibling(path, ".cpg") else _dbf_encoding(archive.sibling(path, ".dbf"))
        attrs, wkb, crs = _read_raw(path, encoding=enc, kind=kind)
        if archive.sibling(path, ".prj") is None:
            crs = None
        return attrs, wkb, crs, kind, path.name
    if kind == "gpkg":
        name = _gpkg_layer(path, layer.name, src_layer)
        attrs, wkb, crs = _read_raw(path, layer_name=name, kind=kind)
        return attrs, wkb, crs, kind, f"{path.name}:{name}"
    if kind == "dbf":
        enc = None if archive.sibling(path, ".cpg") else _dbf_encoding(path)
        attrs, wkb, crs = _read_raw(path, encoding=enc, kind=kind)
        return attrs, wkb, crs, kind, path.name
    attrs, wkb, crs = _read_raw(path, kind=kind)
    return attrs, wkb, crs, kind, path.name


def _source_crs(file_crs: str | None, given: int | None, kind: str, desc: str) -> CRS:
    """The CRS the coordinates are in: the file's, or ``--crs`` when it has none."""
    if kind == "geojson" and given is not None and (
            file_crs is None or CRS.from_user_input(file_crs).to_epsg() == WGS84_EPSG):
        return CRS.from_epsg(given)  # WGS84 is only RFC 7946's default, not a declaration
    if file_crs is None:
        if given is None:
            what = "has no .prj file" if kind == "shp" else "carries no CRS"
            raise ValidationError([Problem(None, None, "crs",
                                           f"{desc} {what}, so its coordinates cannot be placed; "
                                           "give the CRS with --crs EPSG (e.g. --crs 32643 or 4326)")])
        return CRS.from_epsg(given)
    try:
        crs = CRS.from_user_input(file_crs)
    except CRSError as err:
        raise ValueError(f"{desc}: its CRS is not understood ({_first_line(err)})") from None
    if given is not None and crs.to_epsg(min_confidence=70) != given:
        raise ValidationError([Problem(None, None, "crs",
                                       f"{desc} declares {crs.name} but --crs says EPSG:{given}; "
                                       "--crs is only for files that carry no CRS")])
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
        failed = np.flatnonzero(shapely.is_missing(geoms)
                                & pd.notna(pd.Series(wkb, dtype=object)).to_numpy())
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
        reasons.append((int(i), "invalid geometry: coordinates that are not numbers "
                                "(NaN or infinite)"))
        geoms[i] = None
    return geoms, sorted(reasons)


def _not_degrees(geoms: np.ndarray) -> np.ndarray:
    b = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        return (np.abs(b[:, [0, 2]]) > 180).any(axis=1) | (np.abs(b[:, [1, 3]]) > 90).any(axis=1)


def _rename_columns(layer: Layer, attrs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Schema letter case for known columns; the list of columns that will be ignored."""
    lower = {f.name.lower(): f.name for f in layer.fields}
    attrs = attrs.rename(columns={c: lower[str(c).lower()] for c in attrs.columns
                                  if str(c).lower() in lower})
    return attrs, [str(c) for c in attrs.columns if not layer.has(str(c))]


def read_upload(source: Source, layer: str, *, src_layer: str | None = None,
                crs: int | str | None = None, filename: str | None = None) -> Upload:
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

    Returns
    -------
    Upload
        Geometries are reprojected to the working CRS.

    Raises
    ------
    ValidationError
        When the file as a whole cannot be placed (no CRS, contradicting CRS).
    ValueError, OSError
        When the file cannot be read, with the reason.
    """
    lyr = importable_layer(layer)
    given = None if crs is None else parse_epsg(crs)
    with tempfile.TemporaryDirectory(prefix="zoneplan-upload-") as tmp:
        path = _materialise(source, filename, Path(tmp))
        attrs, wkb, file_crs, kind, desc = _read_path(path, lyr, src_layer)
    attrs, ignored = _rename_columns(lyr, attrs)
    if not lyr.is_feature:
        return Upload(lyr.name, attrs, [], desc, None, ignored)
    if wkb is None:
        raise ValidationError([Problem(None, None, "geometry",
                                       f"{desc} has no geometry; {lyr.name} holds {lyr.geometry}s")])
    src = _source_crs(file_crs, given, kind, desc)
    geoms, failures = _parse_geometries(wkb)
    if kind == "geojson" and given is not None and given != WGS84_EPSG \
            and _undeclared_wgs84(file_crs) and not _not_degrees(geoms).any():
        raise ValidationError([Problem(
            None, None, "crs",
            f"{desc}: GeoJSON is WGS84 by definition (RFC 7946); --crs is only for files "
            f"that carry no CRS (its coordinates are degrees; --crs {given} would misread "
            "them); leave --crs out")])
    problems = [Problem(i, _key_at(lyr, attrs, i), "geometry", why) for i, why in failures]
    if src.is_geographic:
        for i in np.flatnonzero(_not_degrees(geoms)):
            b = shapely.bounds(geoms[i])
            problems.append(Problem(int(i), _key_at(lyr, attrs, i), "geometry",
                                    f"coordinates ({b[0]:.1f}, {b[1]:.1f}) are not degrees although "
                                    f"the file says {src.name}: projected coordinates labelled "
                                    "as WGS84? give the right CRS"))
            geoms[i] = None
    series = gpd.GeoSeries(geoms, crs=src)
    if src.to_epsg() != WORKING_EPSG:
        try:
            series = series.to_crs(WORKING_EPSG)
        except ProjError as err:
            raise ValueError(f"{desc}: cannot reproject from {src.name} to "
                             f"EPSG:{WORKING_EPSG} ({_first_line(err)})") from None
    frame = gpd.GeoDataFrame(attrs.reset_index(drop=True), geometry=series.values, crs=WORKING_EPSG)
    return Upload(lyr.name, frame, sorted(problems, key=_order), desc,
                  src.to_string(), ignored)


def load_upload(source: Source, layer: str, *, src_layer: str | None = None,
                crs: int | str | None = None, filename: str | None = None) -> pd.DataFrame:
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

@dataclass
class ImportPlan:
    """A validated import: what would be written, and why it may not be.

    Attributes
    ----------
    layer : str
    frame : DataFrame
        Schema-typed attributes (and geometry, working CRS) ready to insert.
    replace : bool
        Whether the layer's content is replaced rather than added to.
    adds : int
        Features whose id is new to the store.
    replacements : int
        Features replacing a stored one with the same id (``replace`` only).
    removals : int
        Stored features that disappear because the file lacks them (``replace``).
    problems : list of Problem
        Every reason to refuse; the plan may be applied only when empty.
    source : str
    ignored_columns : list of str
    revision : str
        The store's revision the checks were made against.
    """

    layer: str
    frame: pd.DataFrame
    replace: bool
    adds: int
    replacements: int
    removals: int
    problems: list[Problem]
    source: str = ""
    ignored_columns: list[str] = dc_field(default_factory=list)
    revision: str = ""

    @property
    def ok(self) -> bool:
        """Whether the plan may be applied."""
        return not self.problems

    @property
    def bad_features(self) -> int:
        """How many features have at least one problem."""
        return len({p.index for p in self.problems if p.index is not None})

    def summary(self) -> str:
        """One line: what the import would do."""
        text = f"{self.layer}: {len(self.frame)} feature(s) from {self.source or 'input'}: " \
               f"{self.adds} new"
        if self.replace:
            text += f", {self.replacements} replaced, {self.removals} removed"
        return text

    def to_dict(self, *, limit: int = 100) -> dict[str, Any]:
        """A JSON-ready preview (problems capped at ``limit``)."""
        return {"layer": self.layer, "source": self.source, "features": len(self.frame),
                "replace": self.replace, "adds": self.adds, "replacements": self.replacements,
                "removals": self.removals, "ok": self.ok, "problem_count": len(self.problems),
                "problems": [dataclasses.asdict(p) for p in self.problems[:limit]],
                "ignored_columns": self.ignored_columns}


def plan_import(store: Any, layer: str, data: pd.DataFrame | Upload, *,
                replace: bool = False) -> ImportPlan:
    """Check an import against the schema and the store; write nothing.

    Checks, per feature: the read problems of an :class:`Upload`; attribute
    types and vocabularies; geometry valid, of the layer's type, not
    degenerate and within 5 km of the stored zone and expansion areas (see
    :func:`import_envelope`); ids unique in the input and (unless ``replace``) new
    to the store; for plots, no overlap with each other or (unless
    ``replace``) with stored plots.

    Parameters
    ----------
    store : Store
    layer : str
    data : DataFrame or Upload
        A frame in the working CRS, or what :func:`read_upload` returned.
    replace : bool
        Plan to replace the layer's content instead of adding to it.
    """
    lyr = importable_layer(layer)
    upload = data if isinstance(data, Upload) else Upload(lyr.name, data)
    frame = upload.frame.reset_index(drop=True)
    typed, problems = coerce_attributes(lyr, frame)
    problems = list(upload.problems) + _missing_columns(lyr, frame, problems)
    ids = typed[lyr.key].tolist()
    out: pd.DataFrame = typed
    if lyr.is_feature:
        geoms = single_part(gpd.GeoSeries(frame.geometry.values, crs=WORKING_EPSG)).values
        unread = {p.index for p in upload.problems if p.field == "geometry"}
        envelope, note = import_envelope(store, lyr.name)
        geo_problems = [p for p in check_geometries(lyr, geoms, ids, envelope=envelope,
                                                    envelope_note=note)
                        if p.index not in unread]
        problems += geo_problems
        usable = np.ones(len(frame), dtype=bool)
        usable[list(unread | {p.index for p in geo_problems})] = False
        out = gpd.GeoDataFrame(typed, geometry=np.asarray(geoms), crs=WORKING_EPSG)
        if lyr.name == "plots":
            problems += _self_overlaps(out, usable)
    revision = store.revision()
    present = _present_ids(store, lyr, ids)
    problems += _store_problems(store, lyr, out, replace, present)
    existing = store.count(lyr.name) if replace else 0
    return ImportPlan(lyr.name, out, replace,
                      adds=len(out) - (len(present) if replace else 0),
                      replacements=len(present) if replace else 0,
                      removals=existing - len(present) if replace else 0,
                      problems=sorted(problems, key=_order), source=upload.source,
                      ignored_columns=upload.ignored_columns, revision=revision)


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
    env = (min(b[0] for b in boxes) - m, min(b[1] for b in boxes) - m,
           max(b[2] for b in boxes) + m, max(b[3] for b in boxes) + m)
    return env, (f"more than {m / 1000:g} km from the zone: wrong CRS, metres read as "
                 "degrees, or data from elsewhere?")


def _missing_columns(layer: Layer, frame: pd.DataFrame, problems: list[Problem]) -> list[Problem]:
    """One input-level problem per absent required column instead of one per feature."""
    absent = [f.name for f in layer.input_fields if f.required and f.name not in frame.columns]
    if not absent:
        return problems
    have = ", ".join(str(c) for c in frame.columns if c != "geometry") or "none"
    head = [Problem(None, None, name, f"the input has no column {name!r}, which {layer.name} "
                                      f"requires (its columns: {have})") for name in absent]
    return head + [p for p in problems if p.field not in absent]


def _present_ids(store: Any, layer: Layer, ids: list[Any]) -> set[str]:
    """The ids of ``ids`` already in the store (queried in chunks, by value)."""
    wanted = sorted({str(i) for i in ids if i is not None})
    found: set[str] = set()
    for start in range(0, len(wanted), _ID_CHUNK):
        chunk = wanted[start:start + _ID_CHUNK]
        rows = store.read(layer.name, where={layer.key: chunk})
        found |= {str(v) for v in rows[layer.key].tolist()}
    return found


def _store_problems(store: Any, layer: Layer, frame: pd.DataFrame, replace: bool,
                    present: set[str] | None = None) -> list[Problem]:
    """Collisions with what is stored: existing ids and (plots) overlaps."""
    if replace:
        return []
    keys = frame[layer.key].tolist()
    present = _present_ids(store, layer, keys) if present is None else present
    problems = [Problem(i, str(k), layer.key,
                        f"id {k} is already in the store (use --replace to replace the layer)")
                for i, k in enumerate(keys) if k is not None and str(k) in present]
    if layer.name == "plots" and len(frame):
        problems += _overlaps_with_store(store, frame, present)
    return problems


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
        out.append(Problem(j, keys[j], "geometry",
                           f"overlaps plot {keys[i]} (feature {i} of the input) by {area:.1f} m²"))
    return out


def _overlaps_with_store(store: Any, frame: gpd.GeoDataFrame, present: set[str]) -> list[Problem]:
    idx = _usable_geoms(frame)
    if not len(idx):
        return []
    sub = gpd.GeoSeries(frame.geometry.values[idx])
    stored = store.read("plots", bbox=tuple(sub.total_bounds))
    keys = frame["plot_id"].tolist()
    stored_keys = stored["plot_id"].tolist()
    out = []
    for a, b, area in overlaps(sub, gpd.GeoSeries(stored.geometry.values)):
        i = int(idx[a])
        if keys[i] is not None and str(keys[i]) in present and keys[i] == stored_keys[b]:
            continue  # the id problem already says it
        out.append(Problem(i, keys[i], "geometry",
                           f"overlaps existing plot {stored_keys[b]} by {area:.1f} m²"))
    return out


def apply_import(store: Any, plan: ImportPlan, *, user: str = "system") -> list[str]:
    """Write a checked plan in one transaction; return the ids written.

    If the store changed since the plan was made, collisions are checked
    again inside the transaction (other writers wait meanwhile).

    Raises
    ------
    ValidationError
        When the plan has problems, or new collisions appeared; nothing is written.
    """
    if plan.problems:
        raise ValidationError(plan.problems)
    lyr = importable_layer(plan.layer)
    with store.transaction(user) as tx:
        tx.lock(lyr.name)  # writers that check this layer (new parcels) wait for the import
        if store.revision() != plan.revision:
            fresh = _store_problems(tx, lyr, plan.frame, plan.replace)
            if fresh:
                raise ValidationError(sorted(fresh, key=_order))
        if plan.replace:
            return tx.replace(lyr.name, plan.frame)
        return tx.insert(lyr.name, plan.frame)


def import_file(store: Any, layer: str, source: Source, *, replace: bool = False,
                src_layer: str | None = None, crs: int | str | None = None,
                user: str = "system", filename: str | None = None) -> ImportPlan:
    """Read, plan and apply an import in one call; return the applied plan.

    Raises
    ------
    ValidationError
        With every problem found; nothing is written.
    """
    upload = read_upload(source, layer, src_layer=src_layer, crs=crs, filename=filename)
    plan = plan_import(store, layer, upload, replace=replace)
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
        fld = dataclasses.replace(lyr.field(name), required=True)
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        typed = []
        for v in values:
            try:
                typed.append(coerce_value(fld, v))
            except ValueError as err:
                raise ValueError(f"{lyr.name}.{name} = {v!r}: {err}") from None
        out[name] = typed if len(typed) > 1 else typed[0]
    return out


def _default_crs(fmt: str, crs: int | str | None) -> int:
    if crs is not None:
        return parse_epsg(crs)
    return WGS84_EPSG if fmt == "geojson" else WORKING_EPSG


def _frame_for_export(store: Any, name: str, where: Mapping[str, Any] | None, epsg: int,
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


def _write_geojson_arrow(layer: Layer, frame: pd.DataFrame, path: Path, epsg: int,
                         options: dict[str, Any]) -> None:
    pyogrio.write_arrow(
        to_arrow(layer, frame), path, driver="GeoJSON", layer=layer.name,
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
        to_arrow(layer, frame), path, driver="GPKG", layer=layer.name,
        geometry_name="geometry" if layer.is_feature else None,
        geometry_type=layer.geometry if layer.is_feature else None,
        crs=f"EPSG:{epsg}" if layer.is_feature else None,
        layer_options=options, append=path.exists(),
    )


def _shapefile_members(layer: Layer, folder: Path) -> list[tuple[Path, str]]:
    parts = archive.SHAPEFILE_PARTS if layer.is_feature else (".dbf", ".cpg")
    return [(folder / f"{layer.name}{s}", f"{layer.name}{s}") for s in parts
            if (folder / f"{layer.name}{s}").exists()]


def export_layers(store: Any, layers: str | Sequence[str], fmt: str, out_path: Path | str, *,
                  crs: int | str | None = None, where: Mapping[str, Any] | None = None,
                  include_private: bool = True, fields: Sequence[str] | None = None,
                  zip_level: int = 6, progress: Callable[[str], None] | None = None) -> Path:
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
    targets = ([out.with_suffix(s) for s in archive.SHAPEFILE_PARTS] if plain_shp else [out])
    _refuse_store_file(store, targets)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if plain_shp:
            return _export_plain_shapefile(store, schemas[names[0]], work, out, epsg, where,
                                           progress)
        result = _export_into(store, list(schemas.values()), fmt, work, epsg, where, zip_level,
                              progress)
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
            raise ValueError(f"{target} is the store itself (--db {db}); writing the export "
                             "there would destroy every other layer. Choose another output "
                             "file; nothing was written")


_STALE_SHAPEFILE_SIDECARS = (".qix", ".sbn", ".sbx", ".shp.xml", ".cpg", ".prj")


def _export_plain_shapefile(store: Any, lyr: Layer, work: Path, out: Path, epsg: int,
                            where: Mapping[str, Any] | None,
                            progress: Callable[[str], None] | None) -> Path:
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


def _export_into(store: Any, schemas: list[Layer], fmt: str, work: Path, epsg: int,
                 where: Mapping[str, Any] | None, zip_level: int,
                 progress: Callable[[str], None] | None) -> Path:
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


def export_bytes(store: Any, layers: str | Sequence[str], fmt: str, *,
                 crs: int | str | None = None, where: Mapping[str, Any] | None = None,
                 include_private: bool = False) -> tuple[bytes, str, str]:
    """An export as ``(content, download file name, media type)`` for HTTP.

    Private layers are refused unless ``include_private``; see
    :func:`export_layers` for the rest.
    """
    name = export_filename(layers, fmt)
    with tempfile.TemporaryDirectory(prefix="zoneplan-export-") as tmp:
        path = export_layers(store, layers, fmt, Path(tmp) / name, crs=crs, where=where,
                             include_private=include_private)
        data = path.read_bytes()
    media = MEDIA_TYPES["zip" if name.endswith(".zip") else fmt]
    return data, name, media


__all__ = [
    "FORMATS", "ImportPlan", "Upload", "apply_import", "check_where", "export_bytes",
    "ShapefileLimitWarning", "export_filename", "export_layer_names", "export_layers",
    "import_envelope", "import_file", "importable_layer",
    "load_upload", "parse_where", "plan_import", "read_file", "read_upload", "to_arrow",
    "write_shapefile",
]
