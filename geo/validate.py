"""Geometry and attribute checks that turn raw frames into schema-typed ones or reasons."""

from __future__ import annotations

import datetime as dt
import math
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from geo.crs import DEFAULT_EPSG, transformer
from geo.layers import ID_PATTERN, ID_RULE, SECTORS, Field, Layer
from geo.texts import stripped

OVERLAP_TOLERANCE_M2 = 1.0
# Smaller polygons and shorter lines are slivers or typing slips, not features.
MIN_POLYGON_AREA_M2 = 1.0
MIN_LINE_LENGTH_M = 0.01
# A generous box around the Almaty zone in UTM 43N: catches degrees read as metres,
# metres labelled as degrees and data from another city.
ZONE_ENVELOPE = (625_000.0, 4_775_000.0, 675_000.0, 4_825_000.0)


def zone_envelope(epsg: int) -> tuple[float, float, float, float]:
    """:data:`ZONE_ENVELOPE` (UTM 43N) as a box in the CRS ``epsg`` (a store's)."""
    if epsg == DEFAULT_EPSG:
        return ZONE_ENVELOPE
    x0, y0, x1, y1 = transformer(DEFAULT_EPSG, epsg).transform_bounds(*ZONE_ENVELOPE)
    return (float(x0), float(y0), float(x1), float(y1))


@dataclass(frozen=True)
class Problem:
    """Why one feature (or the whole input, when ``index`` is None) was refused."""

    index: int | None
    feature_id: str | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = "input" if self.index is None else f"feature {self.index}"
        if self.feature_id:
            where += f" ({self.feature_id})"
        return f"{where}: {self.field + ': ' if self.field else ''}{self.reason}"


class ValidationError(ValueError):
    """Input refused; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s): {shown}{more}")


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def coerce_value(fld: Field, value: Any) -> Any:
    """Convert ``value`` to the Python type of ``fld`` (None for missing).

    Raises
    ------
    ValueError
        With a short reason when the value does not fit the field.
    """
    if _is_missing(value):
        if fld.required:
            raise ValueError("a value is required")
        return None
    out = _CONVERTERS[fld.type](value)
    if fld.type == "str":
        _check_text(fld, str(out))
    if fld.choices is not None and out not in fld.choices:
        raise ValueError(f"{out!r} is not one of {', '.join(fld.choices)}")
    if fld.minimum is not None and out < fld.minimum:
        raise ValueError(f"{out} is below the minimum {fld.minimum:g}")
    if fld.maximum is not None and out > fld.maximum:
        raise ValueError(f"{out} is above the maximum {fld.maximum:g}")
    return out


_ID = re.compile(ID_PATTERN)


def _check_text(fld: Field, text: str) -> None:
    """The schema's one rule for ids and text lengths (ValueError when broken)."""
    limit = fld.text_limit
    if fld.ident and not _ID.match(text):
        raise ValueError(f"{text[:80]!r} is not a usable id: an id is {ID_RULE}")
    if limit is not None and len(text) > limit:
        raise ValueError(f"{len(text):,} characters, more than the {limit:,} this field takes")


def _to_str(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # ids such as 12.0 read from DBF numerics
    return str(value).strip()


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a whole number") from None
    if not number.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _to_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text.endswith(".0"):
        text = text[:-2]
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not true or false")


def _to_date(value: Any) -> str:
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.datetime.fromisoformat(str(value).strip()).date().isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _to_datetime(value: Any) -> str:
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return value.isoformat(timespec="seconds")
    try:
        return dt.datetime.fromisoformat(str(value).strip()).isoformat(timespec="seconds")
    except ValueError:
        raise ValueError(f"{value!r} is not a date and time (ISO 8601)") from None


# Values of every field type: the converters return Any so that range checks compare numbers.
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "date": _to_date,
    "datetime": _to_datetime,
}


def parse_date(text: str) -> dt.date:
    """Parse a ``YYYY-MM-DD`` date given by a person.

    Raises
    ------
    ValueError
        Naming the text and the expected format.
    """
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def _row_id(layer: Layer, frame: pd.DataFrame, i: int) -> str | None:
    if layer.key not in frame.columns:
        return None
    value = frame[layer.key].iloc[i]
    return None if _is_missing(value) else _to_str(value)


def coerce_attributes(layer: Layer, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem]]:
    """Type every input field of ``frame`` by the schema of ``layer``.

    Unknown columns are dropped, missing optional columns become None, computed
    and system columns are ignored (the store derives them).

    Returns
    -------
    (DataFrame, list of Problem)
        The typed attribute columns (object dtype, positional index) and the
        problems found; callers must refuse the input when the list is not empty.
    """
    problems: list[Problem] = []
    fields = layer.input_fields
    # One object block, a row per field, becomes the frame as it is: pandas neither copies
    # nor inspects the columns (a frame built from lists did both, ~0.2 s per 200k rows).
    block = np.full((len(fields), len(frame)), None, dtype=object)
    for row, fld in enumerate(fields):
        if fld.name not in frame.columns and not fld.required:
            continue  # None throughout
        column = frame[fld.name] if fld.name in frame.columns else pd.Series([None] * len(frame))
        values, errors = _fast_column(fld, column) or _slow_column(fld, column)
        block[row] = values
        problems += [Problem(i, _row_id(layer, frame, i), fld.name, reason) for i, reason in errors]
    names = [f.name for f in fields]
    if layer.has("sectors") and "sectors" in names:
        problems += _sector_problems(layer, frame, block[names.index("sectors")])
    typed = pd.DataFrame(block.T, columns=names, dtype=object, copy=False)
    problems += _duplicate_keys(layer, typed)
    return typed, problems


def _slow_column(fld: Field, column: pd.Series) -> tuple[list[Any], list[tuple[int, str]]]:
    values: list[Any] = []
    errors: list[tuple[int, str]] = []
    for i, value in enumerate(column.tolist()):
        try:
            values.append(coerce_value(fld, value))
        except ValueError as err:
            errors.append((i, str(err)))
            values.append(None)
    return values, errors


def _fast_column(fld: Field, column: pd.Series) -> tuple[np.ndarray, list[tuple[int, str]]] | None:
    """Vectorised typing of a clean numeric, boolean or text column (bulk imports), as an
    object array of plain Python values; None when the column needs the value-by-value
    path to explain its problems."""
    if not fld.required and column.isna().all():
        return np.full(len(column), None, dtype=object), []
    if column.dtype == object:  # already typed rows (a store insert after a plan), or mixed
        column = _inferred(fld, column)
    dtype = column.dtype
    if fld.type == "bool" and pd.api.types.is_bool_dtype(dtype):
        missing = column.isna().to_numpy()
        if fld.required and missing.any():
            return None
        # numpy's bool_ turn into Python's True and False in an object array
        out = column.to_numpy(dtype=bool, na_value=False).astype(object)
        out[missing] = None
        return out, []
    if (
        fld.type in ("int", "float")
        and pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
    ):
        return _numbers(fld, column)
    if fld.type == "str" and (
        pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)
    ):
        return _texts(fld, column)
    return None


def _inferred(fld: Field, column: pd.Series) -> pd.Series:
    """An object column as numbers or booleans when every value present is one (C-level
    inference; anything mixed stays object and takes the value-by-value path)."""
    kind = pd.api.types.infer_dtype(column, skipna=True)
    if fld.type in ("int", "float") and kind in ("floating", "integer", "mixed-integer-float"):
        return pd.to_numeric(column)
    if fld.type == "bool" and kind == "boolean":
        return column.astype("boolean")
    return column


def _numbers(fld: Field, column: pd.Series) -> tuple[np.ndarray, list[tuple[int, str]]] | None:
    numbers = column.to_numpy(dtype=float, na_value=np.nan)
    missing = np.isnan(numbers)
    present = numbers[~missing]
    if (
        (fld.required and missing.any())
        or not np.isfinite(present).all()
        or (fld.type == "int" and not (present == np.round(present)).all())
        or (fld.minimum is not None and (present < fld.minimum).any())
        or (fld.maximum is not None and (present > fld.maximum).any())
    ):
        return None
    if fld.type == "float":
        out = numbers.astype(object)
    else:
        out = np.where(missing, 0, numbers).astype(np.int64).astype(object)
    out[missing] = None
    return out, []


def _texts(fld: Field, column: pd.Series) -> tuple[np.ndarray, list[tuple[int, str]]] | None:
    """A text column checked in Arrow (C++): stripped as ``str.strip`` does, blanks as
    missing, vocabulary, length and id rule; None when any value breaks a rule (the
    value-by-value path then explains it)."""
    texts = _arrow_texts(column)
    if texts is None:
        return None
    texts = stripped(texts)
    texts = pc.if_else(pc.equal(texts, ""), pa.scalar(None, texts.type), texts)
    present = texts.drop_null()
    limit = fld.text_limit
    if (
        (fld.required and texts.null_count)
        or (fld.choices is not None and not set(pc.unique(present).to_pylist()) <= set(fld.choices))
        or (limit is not None and len(present) and pc.max(pc.utf8_length(present)).as_py() > limit)
        or (
            fld.ident
            and len(present)
            and not pc.all(pc.match_substring_regex(present, _ID_RE2)).as_py()
        )
    ):
        return None
    out: np.ndarray = texts.to_numpy(zero_copy_only=False)
    return out, []


def _arrow_texts(column: pd.Series) -> pa.Array | None:
    """The column as Arrow text: Arrow-backed strings as they are (no round trip through
    Python objects), other text columns converted; None when a value is not text."""
    if (
        isinstance(column.dtype, (pd.StringDtype, pd.ArrowDtype))
        and getattr(column.dtype, "storage", "pyarrow") == "pyarrow"
    ):
        texts = pa.array(column.array)
        if pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type):
            return texts
    if not pd.api.types.is_string_dtype(column.dtype) or column.dtype == object:
        if pd.api.types.infer_dtype(column, skipna=True) not in ("string", "empty"):
            return None
    try:
        return pa.array(column.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


# ID_PATTERN in RE2 (Arrow's regex engine), which reads ``\s`` as ASCII whitespace only.
# Applied to stripped text (first and last characters not whitespace by ``str.isspace``)
# it accepts exactly what ``ID_PATTERN`` accepts with Python's ``re``.
_ID_RE2 = ID_PATTERN


def _sector_problems(layer: Layer, frame: pd.DataFrame, values: np.ndarray) -> list[Problem]:
    texts = pd.Series(values, dtype=object)
    unknown: dict[str, list[str]] = {}
    for text in texts.dropna().unique():  # a file repeats a few sector lists: check each once
        if text.strip() != "*":
            bad = sorted({s.strip() for s in text.split(",")} - set(SECTORS))
            if bad:
                unknown[text] = bad
    if not unknown:
        return []
    return [
        Problem(
            int(i),
            _row_id(layer, frame, int(i)),
            "sectors",
            f"unknown sector code(s) {', '.join(unknown[values[i]])}; "
            f"use {', '.join(SECTORS)} or *",
        )
        for i in np.flatnonzero(texts.isin(list(unknown)).to_numpy())
    ]


def _duplicate_keys(layer: Layer, typed: pd.DataFrame) -> list[Problem]:
    keys = typed[layer.key]
    values = keys.tolist()
    if len(set(values)) == len(values):  # the usual case, decided by one set of the ids
        return []
    dup = keys.notna() & keys.duplicated(keep="first")
    return [
        Problem(int(i), keys.iloc[i], layer.key, "duplicate id in the input")
        for i in np.flatnonzero(dup.to_numpy())
    ]


def check_geometries(
    layer: Layer,
    geoms: Iterable[Any],
    ids: list[str | None] | None = None,
    *,
    envelope: tuple[float, float, float, float] | None = ZONE_ENVELOPE,
    envelope_note: str = "wrong CRS, or metres read as degrees?",
) -> list[Problem]:
    """Check that geometries (in the working CRS) exist, have finite coordinates, are
    valid, of the layer's type, not degenerate (polygons of at least
    ``MIN_POLYGON_AREA_M2``, lines of at least ``MIN_LINE_LENGTH_M``) and inside the
    sane envelope around the zone (``envelope_note`` says what it is and why).

    One-part multi-geometries are accepted as their part; several parts are refused.
    """
    if layer.geometry is None:
        raise ValueError(f"layer {layer.name!r} is a table: it has no geometries to check")
    # Arrays (numpy, GeometryArray, GeoSeries) convert in C; other iterables one by one.
    arr = np.asarray(geoms if hasattr(geoms, "__array__") else list(geoms), dtype=object)
    ids = ids or [None] * len(arr)
    problems: list[Problem] = []
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # GEOS on NaN coordinates
        missing = shapely.is_missing(arr) | shapely.is_empty(arr)
        types = shapely.get_type_id(arr)
        parts = shapely.get_num_geometries(arr)
        valid = shapely.is_valid(arr)
        # GEOS finds coordinates that are not numbers invalid: only those are looked into.
        bad_coords = np.zeros(len(arr), dtype=bool)
        suspect_coords = np.flatnonzero(~valid & ~missing)
        bad_coords[suspect_coords] = not_finite(arr[suspect_coords])
        bounds = shapely.bounds(arr)
        area = shapely.area(arr)
        length = shapely.length(arr)
    want = {"Polygon": (3, 6), "LineString": (1, 5), "Point": (0, 4)}[str(layer.geometry)]
    degenerate = (
        area < MIN_POLYGON_AREA_M2
        if layer.geometry == "Polygon"
        else length < MIN_LINE_LENGTH_M
        if layer.geometry == "LineString"
        else np.zeros(len(arr), dtype=bool)
    )
    outside = np.zeros(len(arr), dtype=bool)
    if envelope is not None:
        with np.errstate(invalid="ignore"):
            outside = ~(
                (bounds[:, 0] >= envelope[0])
                & (bounds[:, 1] >= envelope[1])
                & (bounds[:, 2] <= envelope[2])
                & (bounds[:, 3] <= envelope[3])
            )
    # Messages are written only for the features with a problem (the clean bulk is
    # decided by the arrays above).
    suspect = missing | ~np.isin(types, want) | (parts > 1) | bad_coords | ~valid
    suspect |= degenerate | outside
    for i in np.flatnonzero(suspect).tolist():
        if missing[i]:
            problems.append(Problem(i, ids[i], "geometry", "geometry is missing or empty"))
        elif types[i] not in want:
            problems.append(
                Problem(
                    i,
                    ids[i],
                    "geometry",
                    f"{arr[i].geom_type} given where the layer holds {layer.geometry}",
                )
            )
        elif types[i] == want[1] and parts[i] > 1:
            problems.append(
                Problem(
                    i,
                    ids[i],
                    "geometry",
                    f"{arr[i].geom_type} with {parts[i]} parts where the layer "
                    f"holds one {layer.geometry} per feature; split it",
                )
            )
        elif bad_coords[i]:
            problems.append(
                Problem(
                    i,
                    ids[i],
                    "geometry",
                    "invalid geometry: coordinates that are not numbers (NaN or infinite)",
                )
            )
        elif not valid[i]:
            reason = shapely.is_valid_reason(arr[i])
            problems.append(Problem(i, ids[i], "geometry", f"invalid geometry: {reason}"))
        elif layer.geometry == "Polygon" and area[i] < MIN_POLYGON_AREA_M2:
            problems.append(
                Problem(
                    i,
                    ids[i],
                    "geometry",
                    f"degenerate polygon: area {area[i]:.2f} m² (< {MIN_POLYGON_AREA_M2:g} m²)",
                )
            )
        elif layer.geometry == "LineString" and length[i] < MIN_LINE_LENGTH_M:
            problems.append(
                Problem(
                    i,
                    ids[i],
                    "geometry",
                    f"degenerate line: length {length[i]:.3f} m (< {MIN_LINE_LENGTH_M:g} m)",
                )
            )
        elif envelope is not None and not _inside(bounds[i], envelope):
            problems.append(
                Problem(
                    i,
                    ids[i],
                    "geometry",
                    f"lies outside the zone's area ({envelope_note}) — bounds "
                    + ", ".join(format_coordinate(b) for b in bounds[i]),
                )
            )
    return problems


def not_finite(geoms: np.ndarray) -> np.ndarray:
    """Which of ``geoms`` hold a coordinate that is not a number (NaN or infinite): every
    coordinate tested at once, and which geometry owns it worked out only when one is
    (rare, and 4x the cost)."""
    out = np.zeros(len(geoms), dtype=bool)
    if np.isfinite(shapely.get_coordinates(geoms)).all():
        return out
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    out[owner[~np.isfinite(coords).all(axis=1)]] = True
    return out


def format_coordinate(value: float) -> str:
    """A coordinate for messages: metres to 0.1, absurd magnitudes (1e300) in short form."""
    if not math.isfinite(value) or abs(value) >= 1e9:
        return f"{value:.3g}"
    return f"{value:.1f}"


def _inside(b: np.ndarray, env: tuple[float, float, float, float]) -> bool:
    return bool(b[0] >= env[0] and b[1] >= env[1] and b[2] <= env[2] and b[3] <= env[3])


def single_part(geoms: gpd.GeoSeries) -> gpd.GeoSeries:
    """Turn one-part multi-geometries into their single part (shapefiles write multis)."""
    arr = geoms.values
    multi = np.isin(shapely.get_type_id(arr), (4, 5, 6)) & (shapely.get_num_geometries(arr) == 1)
    if not multi.any():
        return geoms
    out = np.array(arr, dtype=object)
    out[multi] = shapely.get_geometry(np.asarray(arr)[multi], 0)
    return gpd.GeoSeries(out, index=geoms.index, crs=geoms.crs)


def overlaps(
    geoms: gpd.GeoSeries,
    others: gpd.GeoSeries | None = None,
    *,
    tolerance_m2: float = OVERLAP_TOLERANCE_M2,
    tree: shapely.STRtree | None = None,
) -> list[tuple[int, int | None, float]]:
    """Pairs of overlapping polygons (intersection area above ``tolerance_m2``).

    Returns ``(i, j, area)`` sorted by ``i`` then ``j``, where ``j`` indexes ``others``
    when given, else ``geoms`` itself (with ``i < j``). Uses the GEOS STRtree (built over
    the larger set), never a double loop; ``tree``, an STRtree over ``geoms`` already
    built (a caller testing the same geometries twice), is used instead of a new one.
    """
    target = geoms if others is None else others
    if len(geoms) == 0 or len(target) == 0:
        return []
    if others is None:
        left, right = _pairs_within(geoms.values, tree)
    elif len(others) < len(geoms):  # the tree over the larger set
        over_geoms = tree if tree is not None else shapely.STRtree(geoms.values)
        right, left = over_geoms.query(target.values, predicate="intersects")
    else:
        left, right = shapely.STRtree(target.values).query(geoms.values, predicate="intersects")
    order = np.lexsort((right, left))  # by i, then j
    left, right = left[order], right[order]
    mine, theirs = np.asarray(geoms.values)[left], np.asarray(target.values)[right]
    # Every pair intersects; those that only touch (an edge or a corner: most pairs in a
    # subdivision) have no area in common, told at ~40% of the cost of intersecting them.
    inner = ~shapely.touches(mine, theirs) | (tolerance_m2 < 0)
    areas = np.zeros(len(left))
    areas[inner] = shapely.area(shapely.intersection(mine[inner], theirs[inner]))
    hit = areas > tolerance_m2
    return [(int(a), int(b), float(c)) for a, b, c in zip(left[hit], right[hit], areas[hit])]


def _pairs_within(geoms: Any, tree: shapely.STRtree | None) -> tuple[np.ndarray, np.ndarray]:
    """The pairs ``(i, j)``, ``i < j``, of ``geoms`` that intersect: boxes from the tree,
    then the test on each pair once (the tree's own test would also run it on every
    geometry against itself and on both orders of each pair: ~2x the work)."""
    geoms = np.asarray(geoms)
    right, left = (tree if tree is not None else shapely.STRtree(geoms)).query(geoms)
    keep = left < right
    left, right = left[keep], right[keep]
    meet = shapely.intersects(geoms[left], geoms[right])
    return left[meet], right[meet]
