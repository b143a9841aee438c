"""Validating the query parameters of items and single-feature requests."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from geo.layers import Field, Layer
from usecases.ogc.errors import InvalidParameter
from usecases.ogc.metadata import (
    CRS84,
    DEFAULT_LIMIT,
    JSON_TYPES,
    MAX_LIMIT,
    SUPPORTED_CRS,
    TEMPORAL,
    allowed_values,
    check_collection,
    crs_uri,
    visible_fields,
)

FIXED_PARAMETERS = ("f", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime")


# --------------------------------------------------------------------------- items query
@dataclass(frozen=True)
class ItemsQuery:
    """A validated items request.

    Attributes
    ----------
    limit, offset : int
        The page (``limit`` capped at ``MAX_LIMIT``).
    bbox : tuple of float or None
        In ``bbox_crs`` axis order, as given.
    bbox_crs, crs : str
        CRS URIs (``SUPPORTED_CRS``).
    datetime : tuple or None
        ``(start, end)`` naive UTC datetimes, either None when open.
    datetime_text : str or None
        ``datetime`` as given (for links).
    filters : tuple of (name, value)
        Typed property filters, as given.
    """

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: tuple[float, ...] | None = None
    bbox_crs: str = CRS84
    crs: str = CRS84
    datetime: tuple[dt.datetime | None, dt.datetime | None] | None = None
    datetime_text: str | None = None
    filters: tuple[tuple[str, Any], ...] = ()

    def parameters(self, **changes: Any) -> dict[str, str]:
        """The query string of this request (with ``changes``), for links."""
        query = replace(self, **changes)
        out: dict[str, str] = {"limit": str(query.limit)}
        if query.offset:
            out["offset"] = str(query.offset)
        if query.bbox is not None:
            out["bbox"] = ",".join(f"{v:g}" for v in query.bbox)
            if query.bbox_crs != CRS84:
                out["bbox-crs"] = query.bbox_crs
        if query.crs != CRS84:
            out["crs"] = query.crs
        if query.datetime_text is not None:
            out["datetime"] = query.datetime_text
        for name, value in query.filters:
            out[name] = _text(value)
        return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def single(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The one value of a parameter (None when absent)."""
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidParameter(f"{name}: give it once (got {len(values)} values)")
    return values[0]


def _integer(text: str | None, name: str, default: int, minimum: int) -> int:
    if text is None:
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidParameter(f"{name}: {text!r} is not a whole number") from None
    if value < minimum:
        raise InvalidParameter(f"{name}: must be at least {minimum} (got {value})")
    return value


def _crs_param(text: str | None, name: str, layer: Layer) -> str:
    if text is None:
        return CRS84
    uri = text.strip().strip("[]<>")
    if uri.upper() in ("OGC:CRS84", "CRS84"):
        uri = CRS84
    elif uri.upper().startswith("EPSG:"):
        uri = crs_uri(int(uri[5:])) if uri[5:].isdigit() else uri
    if uri not in SUPPORTED_CRS or (not layer.is_feature and uri != CRS84):
        offered = list(SUPPORTED_CRS) if layer.is_feature else [CRS84]
        raise InvalidParameter(f"{name}: {text!r} is not offered; use one of {', '.join(offered)}")
    return uri


def _bbox_param(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InvalidParameter(f"bbox: {text!r} is not 4 (or 6) comma-separated numbers") from None
    if len(values) not in (4, 6) or not all(math.isfinite(v) for v in values):
        raise InvalidParameter(f"bbox: {text!r} is not 4 (or 6) comma-separated finite numbers")
    if len(values) == 6:  # minx,miny,minz,maxx,maxy,maxz: heights do not matter here
        values = (values[0], values[1], values[3], values[4])
    if values[0] > values[2] or values[1] > values[3]:
        raise InvalidParameter(f"bbox: {text!r} has a lower corner above its upper corner")
    return values


def _moment(text: str, end: bool) -> dt.datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time.max if end else dt.time.min)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(f"datetime: {text!r} is not an RFC 3339 date or date-time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _datetime_param(
    text: str | None, layer: Layer
) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    if text is None:
        return None
    if layer.name not in TEMPORAL:
        raise InvalidParameter(f"datetime: {layer.name} has no dates to filter on")
    if "/" in text:
        first, _, second = text.partition("/")
        start, end = _moment(first, False), _moment(second, True)
        if first.strip() in ("", "..") and second.strip() in ("", ".."):
            raise InvalidParameter("datetime: an interval needs at least one end")
    else:
        start, end = _moment(text, False), _moment(text, True)
        if start is None:
            raise InvalidParameter("datetime: give a date, a date-time or an interval a/b")
    if start is not None and end is not None and start > end:
        raise InvalidParameter(f"datetime: {text!r} ends before it starts")
    return start, end


def _typed_filter(layer: Layer, fld: Field, text: str, role: str | None) -> Any:
    text = text.strip()
    try:
        if fld.type == "int":
            value: Any = int(text)
            if not -(2**63) <= value < 2**63:  # no stored integer is that large
                raise ValueError
        elif fld.type == "float":
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
        elif fld.type == "bool":
            value = {"true": True, "false": False, "1": True, "0": False}[text.lower()]
        elif fld.type == "date":
            value = dt.date.fromisoformat(text).isoformat()
        elif fld.type == "datetime":
            value = _moment(text, False).isoformat(timespec="seconds")  # type: ignore[union-attr]
        else:
            value = text
    except (ValueError, KeyError, AttributeError):
        raise InvalidParameter(
            f"{fld.name}: {text!r} is not a {JSON_TYPES[fld.type]}"
            + (" (YYYY-MM-DD)" if fld.type == "date" else "")
        ) from None
    choices = allowed_values(layer, fld, role)
    if choices and value not in choices:
        raise InvalidParameter(f"{fld.name}: {text!r} is not one of {', '.join(choices)}")
    return value


def parse_items_query(
    name: str, params: Mapping[str, Sequence[str]], *, role: str | None
) -> ItemsQuery:
    """Validate an items request's parameters (each name mapped to its values).

    A ``limit`` above ``MAX_LIMIT`` is capped to it (the standard's rule); unknown
    parameters are refused, as Part 1 requires.

    Raises
    ------
    CollectionNotFound, Forbidden
        For the collection.
    InvalidParameter
        Naming the parameter at fault.
    """
    layer = check_collection(name, role)
    queryable = {f.name: f for f in visible_fields(layer, role)}
    unknown = [k for k in params if k not in FIXED_PARAMETERS and k not in queryable]
    if unknown:
        raise InvalidParameter(
            f"unknown parameter {unknown[0]!r}; {name} takes "
            f"{', '.join(FIXED_PARAMETERS)} and its queryables "
            f"{', '.join(queryable)}"
        )
    fmt = single(params, "f")
    if fmt is not None and fmt not in ("json", "html"):
        raise InvalidParameter(f"f: {fmt!r} is not json or html")
    bbox = _bbox_param(single(params, "bbox"))
    if bbox is not None and not layer.is_feature:
        raise InvalidParameter(f"bbox: {name} is a table without geometry")
    when = single(params, "datetime")
    filters = tuple(
        (k, _typed_filter(layer, queryable[k], single(params, k) or "", role))
        for k in params
        if k in queryable
    )
    return ItemsQuery(
        limit=min(_integer(single(params, "limit"), "limit", DEFAULT_LIMIT, 1), MAX_LIMIT),
        offset=_integer(single(params, "offset"), "offset", 0, 0),
        bbox=bbox,
        bbox_crs=_crs_param(single(params, "bbox-crs"), "bbox-crs", layer),
        crs=_crs_param(single(params, "crs"), "crs", layer),
        datetime=_datetime_param(when, layer),
        datetime_text=when,
        filters=filters,
    )


def parse_crs(name: str, params: Mapping[str, Sequence[str]], *, role: str | None) -> str:
    """The ``crs`` of a single-feature request (its only parameters are ``crs`` and ``f``).

    Raises
    ------
    InvalidParameter, CollectionNotFound, Forbidden
    """
    layer = check_collection(name, role)
    unknown = [k for k in params if k not in ("f", "crs")]
    if unknown:
        raise InvalidParameter(f"unknown parameter {unknown[0]!r}; a feature takes f and crs")
    fmt = single(params, "f")
    if fmt is not None and fmt not in ("json", "html"):
        raise InvalidParameter(f"f: {fmt!r} is not json or html")
    return _crs_param(single(params, "crs"), "crs", layer)
