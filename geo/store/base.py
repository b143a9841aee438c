"""The Store interface every storage backend implements, and its typed errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from geo import tiles
from geo.layers import FEATURE_LAYERS, LAYERS, Layer, get_layer, parse_list
from geo.overview import SizeTest
from geo.validate import Problem, ValidationError, coerce_value

if TYPE_CHECKING:
    from geo.store.checks import CheckedRows

Bbox = tuple[float, float, float, float]
Where = Mapping[str, Any]
"""``{field: condition}`` ANDed; a condition is a value (``=``), a list, tuple or set of
values (``IN``), a :class:`Range` (``>=`` and/or ``<=``), a :class:`Null` or a
:class:`ListHas`."""


@dataclasses.dataclass(frozen=True)
class Range:
    """``low <= field <= high``; an end left as None is open.

    ``or_null`` lets NULL match too (an unknown bound, e.g. an asset status without a due date).
    """

    low: Any = None
    high: Any = None
    or_null: bool = False


@dataclasses.dataclass(frozen=True)
class ListHas:
    """Comma-list text (``"food,pharma"``) holding ``value``; text equal to ``everything``
    (``"*"``), empty text and NULL mean "every value" and match too (how
    ``geo.layers.parse_sectors`` reads the allowed sectors)."""

    value: str
    everything: str = "*"


def list_has(text: str | None, value: str | None, everything: str = "*") -> bool:
    """Whether comma-list ``text`` holds ``value`` as :class:`ListHas` means it (the
    reading of :func:`geo.layers.parse_list`); the backends' SQL renders this rule."""
    items = parse_list(text, everything)
    return items is None or value in items


def list_token(value: str) -> bool:
    """Whether ``value`` can be an item of a comma list (non-empty, no comma, no
    surrounding whitespace): any other value matches only "every value" lists."""
    return bool(value) and "," not in value and value == value.strip()


#: Every character ``str.strip()`` removes (no whitespace lies beyond U+3000), for the SQL
#: renderings of :class:`ListHas`.
LIST_SPACE = "".join(ch for ch in map(chr, range(0x3001)) if ch.isspace())


@dataclasses.dataclass(frozen=True)
class Null:
    """``field IS NULL`` (``IS NOT NULL`` when ``negate``)."""

    negate: bool = False


@dataclasses.dataclass(frozen=True)
class Prefix:
    """The field's :func:`search_key` starts with ``text``'s: a range on the index each
    backend keeps for the fields of :data:`SEARCH_KEYS` (other fields are refused)."""

    text: str


@dataclasses.dataclass(frozen=True)
class Contains:
    """The field's :func:`search_key` holds ``text``'s anywhere (a scan, not indexed)."""

    text: str


#: Text fields each backend keeps an index of search keys on (lowercase, spaces removed,
#: then the layer key), for :class:`Prefix` filters and :meth:`Store.find`.
SEARCH_KEYS: dict[str, tuple[str, ...]] = {"plots": ("plot_id", "cadastre")}


def search_key(text: object) -> str:
    """Text as searches compare it: lowercase, without whitespace.

    The indexed :class:`Prefix` search folds stored values in SQL (``lower``, spaces
    removed), which on GeoPackage folds the case of Latin letters only.
    """
    return "".join(str(text).split()).lower()


def prefix_range(text: str) -> tuple[str, str | None]:
    """The search keys starting with ``text``'s as a half-open range ``[low, high)`` in code
    point (bytewise UTF-8) order; ``high`` None when there is no end."""
    low = search_key(text)
    for i in range(len(low) - 1, -1, -1):
        code = ord(low[i]) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates are no text
            code = 0xE000
        if code <= 0x10FFFF:
            return low, low[:i] + chr(code)
    return low, None


Condition = tuple[str, str, Any]
"""One compiled test: ``(field, op, value)`` with op one of ``= in >= <= null notnull``,
``range|null`` (value ``(low, high)``, either None when open: NULL or within), ``prefix``
(value :func:`prefix_range`), ``contains`` (value a search key) or ``listhas``
(value ``(everything, item)``)."""
MAX_WHERE_VALUES = 30_000  # below SQLite's limit of bound parameters


class StoreError(Exception):
    """Base class of the errors a store raises on purpose."""


class NotFound(StoreError, KeyError):
    """The layer or feature does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class Conflict(StoreError):
    """The write collides with existing data (duplicate id, stale version)."""


class Invalid(StoreError, ValidationError):
    """The data breaks the schema; ``problems`` names each reason."""


def is_url(location: object) -> bool:
    """Whether ``location`` names a PostgreSQL database rather than a GeoPackage file."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def redact(location: str | object) -> str:
    """A store location fit to print: a URL's password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", str(location))


def now_iso() -> str:
    """The current UTC time as ISO 8601 seconds (audit and application stamps)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")


@cache
def _filter_field(layer: str, name: str) -> Any:
    """The field with its vocabulary, limits and id rule dropped: a filter value outside
    them simply matches nothing."""
    return dataclasses.replace(
        get_layer(layer).field(name),
        required=False,
        choices=None,
        minimum=None,
        maximum=None,
        ident=False,
        max_length=None,
    )


def compile_where(layer: Layer, where: Where | None) -> list[Condition]:
    """Check a ``where`` mapping against the schema and type every value by its field.

    Both backends render the result into SQL with bound parameters.

    Raises
    ------
    Invalid
        For an unknown field, a value of the wrong type or too many values.
    """
    out: list[Condition] = []
    for name, cond in (where or {}).items():
        if not layer.has(name):
            raise Invalid([Problem(None, None, name, f"{layer.name} has no field {name!r}")])
        fld = _filter_field(layer.name, name)
        try:
            if isinstance(cond, Null):
                out.append((name, "notnull" if cond.negate else "null", None))
            elif isinstance(cond, Prefix):
                if name not in SEARCH_KEYS.get(layer.name, ()):
                    raise ValueError(f"{layer.name}.{name} has no search index")
                out.append((name, "prefix", prefix_range(cond.text)))
            elif isinstance(cond, Contains):
                if fld.type != "str":
                    raise ValueError(f"{name} is not text")
                out.append((name, "contains", search_key(cond.text)))
            elif isinstance(cond, ListHas):
                item = str(cond.value).strip()
                everything = str(cond.everything).strip()
                out.append((name, "listhas", (everything, item if list_token(item) else None)))
            elif isinstance(cond, Range) and cond.or_null:
                out.append(
                    (
                        name,
                        "range|null",
                        tuple(
                            None if v is None else coerce_value(fld, v)
                            for v in (cond.low, cond.high)
                        ),
                    )
                )
            elif isinstance(cond, Range):
                if cond.low is not None:
                    out.append((name, ">=", coerce_value(fld, cond.low)))
                if cond.high is not None:
                    out.append((name, "<=", coerce_value(fld, cond.high)))
            elif isinstance(cond, (list, tuple, set, frozenset)):
                if len(cond) > MAX_WHERE_VALUES:
                    raise ValueError(
                        f"more than {MAX_WHERE_VALUES:,} values to match; filter in smaller batches"
                    )
                out.append((name, "in", [coerce_value(fld, v) for v in cond]))
            elif cond is None:
                out.append((name, "null", None))
            else:
                out.append((name, "=", coerce_value(fld, cond)))
        except ValueError as err:
            raise Invalid([Problem(None, None, name, str(err))]) from None
    return out


@dataclasses.dataclass
class Rows:
    """A page of a layer as plain columns, without a DataFrame (the request path's read).

    Attributes
    ----------
    columns : dict of str to list
        Each asked field's values in row order, as plain Python values of the Store
        contract: str (text, ISO dates), int, float, bool or None (never NaN).
    geometry : ndarray or None
        The shapely geometries (working CRS) of a feature layer, None for tables.
    """

    columns: dict[str, list[Any]]
    geometry: np.ndarray | None
    #: How many rows match in all (without limit and offset), when asked for.
    matched: int | None = None

    def __len__(self) -> int:
        first = next(iter(self.columns.values()), None)
        return (
            len(first)
            if first is not None
            else (0 if self.geometry is None else len(self.geometry))
        )


@dataclasses.dataclass
class PlotBoxRows:
    """Plots' filter columns and index boxes, in the backend's key order.

    Attributes
    ----------
    ids, status, sectors : list
        ``plot_id``, ``status`` and ``sectors`` of each plot (None for NULL).
    area : ndarray of float
        ``area_ha``, NaN for NULL (PostgreSQL's NaN as +inf: it sorts above every number).
    boxes : ndarray, shape (n, 4)
        minx, maxx, miny, maxy as the backend's bbox test compares them; NaN: no geometry.
    round_query : bool
        Whether the backend rounds a query box outward to float32 too (PostGIS).
    code_order : bool
        Whether the backend orders keys by code point (numpy's order), so a new key's
        place among others can be found without asking it.
    """

    ids: list[str]
    status: list[Any]
    area: np.ndarray
    sectors: list[Any]
    boxes: np.ndarray
    round_query: bool
    code_order: bool


class Session(ABC):
    """Reads and writes inside one transaction; every change to a feature layer is audited.

    Reads see the transaction's own writes, so a check and the write it guards run on one
    connection and no other writer can slip in between.
    """

    user: str
    #: The store's CRS (see :attr:`Store.epsg`).
    epsg: int

    @abstractmethod
    def read(
        self,
        layer: str,
        *,
        bbox: Bbox | None = None,
        where: Where | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Rows of ``layer`` as :meth:`Store.read` returns them, inside this transaction."""

    @abstractmethod
    def count(self, layer: str, *, bbox: Bbox | None = None, where: Where | None = None) -> int:
        """How many rows :meth:`read` would return without limit."""

    @abstractmethod
    def revision(self, layers: Sequence[str] | None = None) -> str:
        """:meth:`Store.revision` as this transaction sees it (on its own connection)."""

    @abstractmethod
    def get(self, layer: str, key: str, *, for_update: bool = False) -> dict[str, Any]:
        """One row as a dict (``geometry`` included for features). Raises NotFound.

        ``for_update`` locks the row until the transaction ends (backends whose
        transactions already hold a write lock need do nothing more).
        """

    @abstractmethod
    def insert(self, layer: str, frame: pd.DataFrame | CheckedRows) -> list[str]:
        """Insert rows (a GeoDataFrame in the working CRS for feature layers), checked here;
        or rows :func:`check_rows` already checked, inserted as they are.

        Returns the keys written. Raises Invalid or Conflict (duplicate key).
        """

    @abstractmethod
    def update(
        self, layer: str, key: str, changes: Mapping[str, Any], *, version: int | None = None
    ) -> int:
        """Change some fields (``geometry`` included) of one row; return its new version.

        Raises NotFound, Invalid, or Conflict when ``version`` is given and stale.
        """

    @abstractmethod
    def delete(self, layer: str, key: str, *, version: int | None = None) -> None:
        """Delete one row. Raises NotFound, or Conflict when ``version`` is stale."""

    @abstractmethod
    def keys(self, layer: str, *, where: Where | None = None) -> list[str]:
        """The ids of the matching rows (nothing else read nor decoded)."""

    @abstractmethod
    def lock(self, layer: str) -> None:
        """Hold other writers that lock ``layer`` until this transaction ends.

        Call it before reading what a check-then-write depends on (no new parcel
        overlaps another), so concurrent writers of that layer run one at a time.
        """

    @abstractmethod
    def clear(self, layer: str) -> int:
        """Delete every row of ``layer`` (for replacing imports); return how many."""

    def replace(self, layer: str, frame: pd.DataFrame) -> list[str]:
        """Replace a layer's whole content."""
        self.clear(layer)
        return self.insert(layer, frame)


class Store(ABC):
    """A zone store: the layers of ``geo.layers`` kept in one backend.

    Reads return GeoDataFrames in the working CRS for feature layers and
    DataFrames for tables, columns in schema order with ``fid`` dropped:
    text, dates and datetimes as ``object`` (ISO strings or None), integers as
    ``Int64``, floats as ``float64`` (NaN for missing), booleans as ``boolean``.
    """

    #: The CRS (EPSG code) every geometry of the store is in, recorded in the store itself
    #: when it is made; reads are in it and writes must be.
    epsg: int
    #: How the backend sizes plots for its overview (:class:`geo.overview.SizeTest`; None:
    #: it keeps no overview).
    plot_size: SizeTest | None = None

    @abstractmethod
    def read(
        self,
        layer: str,
        *,
        bbox: Bbox | None = None,
        where: Where | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        exact: bool = False,
    ) -> pd.DataFrame:
        """Rows of ``layer``, optionally within ``bbox`` (working CRS, by index) and
        matching ``where`` (``{field: value}`` or ``{field: [values]}``, ANDed).

        ``bbox`` selects the rows whose bounding box meets it (what the spatial index
        answers); with ``exact`` only those whose geometry itself meets the box."""

    @abstractmethod
    def count(
        self,
        layer: str,
        *,
        bbox: Bbox | None = None,
        where: Where | None = None,
        exact: bool = False,
    ) -> int:
        """How many rows ``read`` would return without limit."""

    def rows(
        self,
        layer: str,
        columns: Sequence[str],
        *,
        bbox: Bbox | None = None,
        where: Where | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        matched: bool = False,
    ) -> Rows:
        """A page of ``columns`` (fields of ``layer``) as :class:`Rows`, with the geometry of a
        feature layer: what :meth:`read` selects, without building a frame.

        Sorted by ``order_by`` (a field, ``-field`` descending; missing values last) then
        the layer key ascending. With ``matched`` the rows also tell how many match in all
        (:meth:`count`), counted by the same query where the backend can. Backends read
        the rows straight from SQL; this default goes through :meth:`read`.
        """
        lyr = get_layer(layer)
        frame = self.read(layer, bbox=bbox, where=where)
        order = order_by or lyr.key
        name = order.lstrip("-")
        if not lyr.has(name):
            raise Invalid([Problem(None, None, "sort", f"{lyr.name} has no field {name!r}")])
        if name == lyr.key:
            frame = frame.sort_values(lyr.key, ascending=not order.startswith("-"), kind="stable")
        else:
            frame = frame.sort_values(
                [name, lyr.key],
                ascending=[not order.startswith("-"), True],
                kind="stable",
                na_position="last",
            )
        total = len(frame)
        end = None if limit is None else offset + limit
        frame = frame.iloc[offset:end]
        out = {name: [_plain({"v": v})["v"] for v in frame[name].tolist()] for name in columns}
        geoms = np.asarray(frame.geometry.values, dtype=object) if lyr.is_feature else None
        return Rows(out, geoms, total if matched else None)

    @abstractmethod
    def extent(self, layer: str) -> Bbox | None:
        """The bounds of a feature layer (None when empty)."""

    @abstractmethod
    def find(
        self, layer: str, field: str, text: str, *, where: Where | None = None, limit: int = 10
    ) -> pd.DataFrame:
        """At most ``limit`` rows (as :meth:`read` gives them) matching ``where`` whose
        ``field`` starts with ``text`` (:class:`Prefix`: case and spaces ignored), in the
        order of that field's search key, then the layer key: an exact match first.

        Read through the search-key index (:data:`SEARCH_KEYS`), so the time does not grow
        with the layer.

        Raises
        ------
        Invalid
            When ``field`` has no search index.
        """

    @abstractmethod
    def revision(self, layers: Sequence[str] | None = None) -> str:
        """A token that changes whenever one of ``layers`` (default: every layer) changes.

        Caches key on the layers they read, so a write elsewhere keeps them warm.
        """

    def revisions(self, layers: Sequence[str]) -> dict[str, str]:
        """Each layer's own :meth:`revision` token (``revision([name])``), read at once
        where the backend can (a map tile of many layers asks for all of them)."""
        return {name: self.revision([name]) for name in layers}

    @abstractmethod
    def describe(self) -> str:
        """The store's name for messages (a file path, a URL without its password)."""

    @abstractmethod
    def transaction(self, user: str = "system") -> AbstractContextManager[Session]:
        """A context manager: all writes inside commit together or not at all."""

    def get(self, layer: str, key: str) -> dict[str, Any]:
        """One row as a dict (``geometry`` included for features). Raises NotFound."""
        lyr = get_layer(layer)
        rows = self.read(layer, where={lyr.key: key})
        if rows.empty:
            raise NotFound(f"{lyr.label or layer} {key!r} does not exist")
        return _plain({str(k): v for k, v in rows.iloc[0].to_dict().items()})

    def insert(
        self, layer: str, frame: pd.DataFrame | CheckedRows, *, user: str = "system"
    ) -> list[str]:
        """Insert in a transaction of its own."""
        with self.transaction(user) as tx:
            return tx.insert(layer, frame)

    def update(
        self,
        layer: str,
        key: str,
        changes: Mapping[str, Any],
        *,
        version: int | None = None,
        user: str = "system",
    ) -> int:
        """Update in a transaction of its own."""
        with self.transaction(user) as tx:
            return tx.update(layer, key, changes, version=version)

    def delete(
        self, layer: str, key: str, *, version: int | None = None, user: str = "system"
    ) -> None:
        """Delete in a transaction of its own."""
        with self.transaction(user) as tx:
            tx.delete(layer, key, version=version)

    def keys(self, layer: str, *, where: Where | None = None) -> list[str]:
        """The ids of the matching rows (backends read nothing else)."""
        keys = self.read(layer, where=where)[get_layer(layer).key].tolist()
        return [str(k) for k in keys]

    def changes_since(self, audit_id: int, also: Sequence[int] = ()) -> list[tuple[int, str, str]]:
        """``(audit_id, layer, feat_id)`` of the audit records after ``audit_id`` and of
        the ids ``also`` (seen late), in id order (from the audit layer as read; the SQL
        stores read three columns through its key's index)."""
        frame = self.read("audit", where={"audit_id": Range(audit_id + 1, None)})
        if len(also):
            late = self.read("audit", where={"audit_id": sorted(map(int, also))})
            frame = pd.concat([frame, late], ignore_index=True)
        rows = zip(frame["audit_id"].tolist(), frame["layer"].tolist(), frame["feat_id"].tolist())
        return sorted((int(a), str(layer), str(f)) for a, layer, f in rows)

    def snapshot(self, layers: Sequence[str] = FEATURE_LAYERS) -> dict[str, pd.DataFrame]:
        """Every named layer read in full, for the planner's pure functions."""
        return {name: self.read(name) for name in layers}

    def vector_tile(
        self, layer: str, tile: tiles.Tile, *, properties: Sequence[str], where: Where | None = None
    ) -> bytes:
        """One Mapbox Vector Tile of ``layer``: the rows matching ``where`` that touch ``tile``,
        with the ``properties`` columns (see :func:`geo.tiles.encode`; empty bytes when none).

        Backends with a native encoder (PostGIS: ``ST_AsMVT``) override this.
        """
        rows = self.read(layer, bbox=tile.working_bbox(self.epsg), where=where)
        return tiles.encode_frame(
            layer, rows, tile, key=get_layer(layer).key, properties=properties
        )

    def plot_blocks(
        self, level: int, box: Bbox, statuses: Sequence[str] | None
    ) -> list[Any] | None:
        """The plot overview's blocks (:class:`geo.overview.Block`) of ``level`` in the
        cells ``box`` meets, of ``statuses`` (every one when None); None when the store
        keeps no overview (backends that keep one override this)."""
        return None

    def plot_boxes(self, keys: Sequence[str] | None = None) -> PlotBoxRows | None:
        """The plots ``keys`` (every plot when None; absent keys left out) with their index
        boxes, in key order; None when the backend keeps no box index to answer a bbox
        from (backends that keep one override this)."""
        return None

    def drawn_alone(self, level: int, bounds: np.ndarray) -> np.ndarray:
        """Which plots with these exact bounds (``n x 4``) the store's tiles of block
        ``level`` draw one by one (the rest are in its blocks): its overview's own size test.

        Raises
        ------
        StoreError
            When the store keeps no overview.
        """
        if self.plot_size is None:
            raise StoreError(f"{self.describe()} keeps no plot overview")
        return self.plot_size.big(level, self.epsg, bounds)

    def build_overview(self) -> int:
        """(Re)build the plot overview (:mod:`geo.overview`) from every plot; return the
        number of blocks. A store made before the overview existed has none until this
        runs (``zoneplan overview``); its writes keep it current after."""
        raise StoreError(f"{self.describe()} keeps no plot overview")

    def layers(self) -> list[str]:
        """The layers this store holds."""
        return list(LAYERS)

    def close(self) -> None:
        """Release resources (connections); the default holds none."""

    def reopen(self) -> None:
        """Open connections again after :meth:`close`: a forked server worker calls this,
        since connections never cross a fork (the default opens them as reads need them)."""


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Turn pandas scalars (NA, numpy numbers) into plain Python values."""
    out = {}
    for name, value in row.items():
        if value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            value = None
        elif isinstance(value, np.generic):
            value = value.item()
        out[name] = value
    return out


def audit_changes(changes: Mapping[str, Any]) -> str:
    """Serialise an audit record's changes as compact JSON (Cyrillic kept readable)."""
    return json.dumps(changes, ensure_ascii=False, default=str, sort_keys=True)
