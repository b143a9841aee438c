"""Uploads read for import: a file's layer as a frame in the working CRS, and what
went wrong feature by feature."""

from __future__ import annotations

import codecs
import re
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError, ProjError

from geo.crs import WGS84_EPSG, WORKING_EPSG, parse_epsg
from geo.io.formats import CLI_OPTIONS, NOT_IMPORTABLE, Source, first_line
from geo.io.sources import Raw, materialise, read_path
from geo.layers import Layer, get_layer
from geo.validate import (
    Problem,
    ValidationError,
    format_coordinate,
    not_finite,
)

# Problems listed one by one before the rest are counted (a whole file in the wrong
# encoding has one per row).
_SHOWN_TEXT_PROBLEMS = 20


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
        raise ValueError(f"{desc}: its CRS is not understood ({first_line(err)})") from None
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
                reasons.append((int(i), f"geometry does not parse: {first_line(err)}"))
        if shapely.has_z(geoms).any():
            geoms = shapely.force_2d(geoms)
    for i in np.flatnonzero(not_finite(geoms)):
        reasons.append(
            (int(i), "invalid geometry: coordinates that are not numbers (NaN or infinite)")
        )
        geoms[i] = None
    return geoms, sorted(reasons)


def _not_degrees(geoms: np.ndarray) -> np.ndarray:
    b = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        out = (np.abs(b[:, [0, 2]]) > 180).any(axis=1) | (np.abs(b[:, [1, 3]]) > 90).any(axis=1)
    return np.asarray(out)


def _rename_columns(layer: Layer, attrs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Schema letter case for known columns; the list of columns that will be ignored."""
    lower = {f.name.lower(): f.name for f in layer.fields}
    attrs = attrs.rename(
        columns={c: lower[str(c).lower()] for c in attrs.columns if str(c).lower() in lower}
    )
    return attrs, [str(c) for c in attrs.columns if not layer.has(str(c))]


def _text_problems(layer: Layer, raw: Raw, options: Mapping[str, str]) -> list[Problem]:
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
    epsg: int = WORKING_EPSG,
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
    epsg : int
        The CRS to reproject to: the target store's (``store.epsg``).

    Returns
    -------
    Upload
        Geometries are reprojected to ``epsg``.

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
        path = materialise(source, filename, Path(tmp))
        raw = read_path(path, lyr, src_layer, encoding, options, Path(tmp))
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
                gpd.GeoDataFrame(attrs, geometry=[], crs=epsg),
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
                    _key_at(lyr, attrs, int(i)),
                    "geometry",
                    f"coordinates ({format_coordinate(b[0])}, "
                    f"{format_coordinate(b[1])}) are not degrees although "
                    f"the file says {src.name}: projected coordinates labelled "
                    "as WGS84? give the right CRS",
                )
            )
            geoms[i] = None
    series = gpd.GeoSeries(geoms, crs=src)
    if src.to_epsg() != epsg:
        try:
            series = series.to_crs(epsg)
        except ProjError as err:
            raise ValueError(
                f"{desc}: cannot reproject from {src.name} to EPSG:{epsg} ({first_line(err)})"
            ) from None
    # copy=False: geopandas copies a DataFrame it is given (every column, ~0.2 s per 200k rows)
    frame = gpd.GeoDataFrame(
        attrs.reset_index(drop=True), geometry=series.values, crs=epsg, copy=False
    )
    return Upload(
        lyr.name, frame, sorted(problems, key=problem_order), desc, src.to_string(), ignored
    )


def load_upload(
    source: Source,
    layer: str,
    *,
    src_layer: str | None = None,
    crs: int | str | None = None,
    filename: str | None = None,
    epsg: int = WORKING_EPSG,
) -> pd.DataFrame:
    """Read a file for ``layer`` into a frame in CRS ``epsg``, or refuse it.

    See :func:`read_upload` for the parameters.

    Raises
    ------
    ValidationError
        Listing every feature whose geometry could not be read or placed.
    """
    upload = read_upload(source, layer, src_layer=src_layer, crs=crs, filename=filename, epsg=epsg)
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


def problem_order(p: Problem) -> tuple[int, str]:
    return (-1 if p.index is None else p.index, p.field or "")
