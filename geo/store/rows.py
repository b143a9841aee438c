"""What both SQL backends share: typed rows and frames, reads over one connection, and the
write rules (validation, versions, audit) of a session."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import overview
from geo.layers import Layer, get_layer
from geo.store.base import (
    Bbox,
    Conflict,
    Invalid,
    NotFound,
    Prefix,
    Range,
    Rows,
    Session,
    Store,
    StoreError,
    Where,
    audit_changes,
    now_iso,
)
from geo.store.checks import (
    CheckedRows,
    diff,
    prepare_changes,
    prepare_rows,
    stored_rows,
)
from geo.store.columns import plain_value, typed_column
from geo.validate import Problem

#: The geometry column of every feature table (both backends).
GEOM = "geom"
#: A column of :meth:`Reader.select` that is no field: how many rows match in all
#: (``count(*) OVER ()``), so one query pages and counts.
MATCHED = "*matched"

Order = tuple[str, bool, bool]
"""A field to sort by, whether descending, and whether by its search key
(:func:`geo.store.base.search_key`, as the search-key index holds it)."""


def check_crs(where: str, have: int, want: int | None) -> int:
    """The store's CRS ``have``, refused when the caller expects another (``want``,
    from ``ZONEPLAN_EPSG`` at the edge): a store is never relabelled.

    Raises
    ------
    StoreError
        When ``want`` is given and differs.
    """
    if want is not None and int(want) != int(have):
        raise StoreError(
            f"the store {where} keeps geometries in EPSG:{have}, but the working CRS is "
            f"EPSG:{want} (ZONEPLAN_EPSG); open it with the CRS it was made with"
        )
    return int(have)


def order_of(lyr: Layer, order_by: str | None) -> Order:
    """``order_by`` (a field, ``-field`` for descending; the key by default) checked.

    Raises
    ------
    Invalid
        When ``lyr`` has no such field.
    """
    order = order_by or lyr.key
    name = order.lstrip("-")
    if not lyr.has(name):
        raise Invalid([Problem(None, None, "sort", f"{lyr.name} has no field {name!r}")])
    return name, order.startswith("-"), False


class Reader(ABC):
    """One backend's read queries on one open connection (a pooled one for the store's
    reads, the transaction's for a session's); the rows become the store's typed frames
    and dicts here, so both backends read alike.

    Parameters
    ----------
    epsg : int
        The store's CRS, given to the frames read.
    """

    #: Whether the driver hands dates as ``date``/``datetime`` (else as ISO text).
    native_dates: ClassVar[bool] = False

    def __init__(self, epsg: int):
        self.epsg = epsg

    @abstractmethod
    def select(
        self,
        lyr: Layer,
        columns: Sequence[str],
        *,
        bbox: Bbox | None = None,
        where: Where | None = None,
        exact: bool = False,
        order: Order | None = None,
        limit: int | None = None,
        offset: int = 0,
        for_update: bool = False,
        then_key: bool = False,
    ) -> list[tuple[Any, ...]]:
        """Raw rows of ``columns`` (fields, and :data:`GEOM` for the geometry in the form
        :meth:`decode` takes); ``order`` None leaves the order to the database; with ``then_key``
        missing values sort last and ties by the layer key ascending (not by ``fid``)."""

    @abstractmethod
    def count(
        self,
        lyr: Layer,
        *,
        bbox: Bbox | None = None,
        where: Where | None = None,
        exact: bool = False,
    ) -> int:
        """How many rows of ``lyr`` match."""

    @abstractmethod
    def decode(self, blobs: list[Any]) -> np.ndarray:
        """Shapely geometries from the :data:`GEOM` column as :meth:`select` gives it."""

    @abstractmethod
    def revision(self, layers: Sequence[str] | None = None) -> str:
        """See :meth:`geo.store.base.Store.revision`."""

    def revisions(self, layers: Sequence[str]) -> dict[str, str]:
        """See :meth:`geo.store.base.Store.revisions`."""
        return {name: self.revision([name]) for name in layers}

    def read(
        self,
        lyr: Layer,
        *,
        bbox: Bbox | None = None,
        where: Where | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        exact: bool = False,
    ) -> pd.DataFrame:
        """Rows of ``lyr`` as the store's typed frame (see :meth:`Store.read`)."""
        columns = lyr.names + ([GEOM] if lyr.is_feature else [])
        order = order_of(lyr, order_by)
        rows = self.select(
            lyr,
            columns,
            bbox=bbox,
            where=where,
            exact=exact,
            order=order,
            limit=limit,
            offset=offset,
        )
        return self.frame(lyr, rows, columns)

    def frame(self, lyr: Layer, rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
        """Rows of ``columns`` (every field, then :data:`GEOM` for features) as a typed frame."""
        # Built column by column from the rows: pandas' record parsing and string inference
        # cost more than the query on small pages.
        cols = dict(zip(columns, zip(*rows))) if rows else {c: () for c in columns}
        frame = pd.DataFrame(
            {
                f.name: typed_column(f, cols[f.name], native_dates=self.native_dates)
                for f in lyr.fields
            }
        )
        if lyr.is_feature:
            return gpd.GeoDataFrame(frame, geometry=self.decode(list(cols[GEOM])), crs=self.epsg)
        return frame

    def rows(
        self,
        lyr: Layer,
        columns: Sequence[str],
        *,
        bbox: Bbox | None = None,
        where: Where | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        matched: bool = False,
    ) -> Rows:
        """See :meth:`geo.store.base.Store.rows`: plain values straight from the rows."""
        fields = [lyr.field(name) for name in columns]
        selected = (
            list(columns) + ([GEOM] if lyr.is_feature else []) + ([MATCHED] if matched else [])
        )
        raw = self.select(
            lyr,
            selected,
            bbox=bbox,
            where=where,
            order=order_of(lyr, order_by),
            limit=limit,
            offset=offset,
            then_key=True,
        )
        cols = list(zip(*raw)) if raw else [() for _ in selected]
        total = None
        if matched:  # on every row; a page past the end has none to say it
            counts = cols.pop()
            total = (
                int(counts[0])
                if counts
                else (self.count(lyr, bbox=bbox, where=where) if offset else 0)
            )
        out: dict[str, list[Any]] = {}
        for fld, values in zip(fields, cols):
            if fld.type in ("bool", "date", "datetime"):
                out[fld.name] = [plain_value(fld, v) for v in values]
            elif fld.type == "float":  # NaN is no value (a GeoPackage may hold one)
                out[fld.name] = [None if v is None or v != v else v for v in values]
            else:
                out[fld.name] = list(values)
        geoms = self.decode(list(cols[len(columns)])) if lyr.is_feature else None
        return Rows(out, geoms, total)

    def find(
        self, lyr: Layer, field: str, text: str, *, where: Where | None, limit: int
    ) -> pd.DataFrame:
        """See :meth:`geo.store.base.Store.find`."""
        if field in (where or {}):
            raise Invalid([Problem(None, None, field, "searched and filtered at once")])
        columns = lyr.names + ([GEOM] if lyr.is_feature else [])
        rows = self.select(
            lyr,
            columns,
            where={**(where or {}), field: Prefix(text)},
            order=(field, False, True),
            limit=limit,
        )
        return self.frame(lyr, rows, columns)

    def keys(self, lyr: Layer, *, where: Where | None = None) -> list[str]:
        """The ids of the matching rows (nothing else read nor decoded)."""
        return [str(r[0]) for r in self.select(lyr, [lyr.key], where=where)]

    def fetch(self, lyr: Layer, key: str, *, for_update: bool = False) -> dict[str, Any] | None:
        """One row as plain Python values (``geometry`` as shapely), or None."""
        columns = lyr.names + ([GEOM] if lyr.is_feature else [])
        rows = self.select(lyr, columns, where={lyr.key: key}, for_update=for_update)
        if not rows:
            return None
        out = {f.name: plain_value(f, v) for f, v in zip(lyr.fields, rows[0])}
        if lyr.is_feature:
            out["geometry"] = self.decode([rows[0][-1]])[0]
        return out


# Above this many rows one summary audit record stands for a bulk write.
AUDIT_ROW_LIMIT = 1000


class RowSession(Session):
    """The rules every backend shares: validation, versions, audit records, and reads
    through the backend's :class:`geo.store.rows.Reader` on the transaction's connection.

    A backend supplies the reader and the row primitives (``_existing``, ``_write_rows``,
    ``_set``, ``_remove``, ``_remove_all``, ``_write_audit``, ``_touch``); this class
    decides what is written and what is audited, so both backends audit alike.
    """

    def __init__(self, user: str, reader: Reader):
        self.user = user
        self.reader = reader
        self.epsg = reader.epsg
        self._touched: set[str] = set()
        self._reshaped: set[str] = set()  # layers whose geometries (so extent) changed
        self._audit: list[tuple[Any, ...]] = []
        # Boxes of plots written (old and new), whose overview cells are re-merged before
        # commit; None after a clear or restore: the overview is rebuilt.
        self._plot_boxes: list[np.ndarray] | None = []
        # The statuses and geometries of plots inserted, while no plot was otherwise
        # changed (None after): their cells are re-merged from them and the stored blocks.
        self._plots_added: list[tuple[np.ndarray, np.ndarray]] | None = []
        self._ahead: overview.MergeAhead | None = None  # the first of them, merged apart

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
        return self.reader.read(
            get_layer(layer), bbox=bbox, where=where, order_by=order_by, limit=limit, offset=offset
        )

    def count(self, layer: str, *, bbox: Bbox | None = None, where: Where | None = None) -> int:
        return self.reader.count(get_layer(layer), bbox=bbox, where=where)

    def keys(self, layer: str, *, where: Where | None = None) -> list[str]:
        return self.reader.keys(get_layer(layer), where=where)

    def revision(self, layers: Sequence[str] | None = None) -> str:
        return self.reader.revision(layers)

    def get(self, layer: str, key: str, *, for_update: bool = False) -> dict[str, Any]:
        return self._row(get_layer(layer), key, for_update)

    @abstractmethod
    def _existing(self, lyr: Layer, keys: list[Any]) -> list[Any]:
        """Which of ``keys`` are already stored."""

    @abstractmethod
    def _write_rows(self, lyr: Layer, typed: pd.DataFrame, geoms: np.ndarray | None) -> None:
        """Insert typed rows (every column of ``typed`` is a field)."""

    @abstractmethod
    def _set(self, lyr: Layer, key: str, sets: Mapping[str, Any]) -> None:
        """Update fields (and ``geometry``) of one row."""

    @abstractmethod
    def _remove(self, lyr: Layer, key: str) -> None:
        """Delete one row."""

    @abstractmethod
    def _remove_all(self, lyr: Layer) -> int:
        """Delete every row; return how many."""

    @abstractmethod
    def _write_audit(self, records: list[tuple[Any, ...]]) -> None:
        """Append ``(at, username, action, layer, feat_id, changes)`` records."""

    @abstractmethod
    def _touch(self, layers: set[str], reshaped: set[str]) -> None:
        """Mark layers changed (their revisions move on commit); ``reshaped`` ones had
        geometries added, moved or removed."""

    def _row(self, lyr: Layer, key: str, for_update: bool = True) -> dict[str, Any]:
        row = self.reader.fetch(lyr, key, for_update=for_update)
        if row is None:
            raise NotFound(f"{lyr.label or lyr.name} {key!r} does not exist")
        return row

    def insert(self, layer: str, frame: pd.DataFrame | CheckedRows) -> list[str]:
        lyr = get_layer(layer)
        if len(frame) == 0:
            return []
        if isinstance(frame, CheckedRows):  # checked once by the caller (an import plan)
            if frame.epsg is not None and frame.epsg != self.reader.epsg:
                raise StoreError(
                    f"rows checked in EPSG:{frame.epsg} given to a store in EPSG:{self.epsg}"
                )
            typed, geoms = stored_rows(lyr, frame)
        else:
            typed, geoms = prepare_rows(lyr, self._in_store_crs(frame))
        keys = typed[lyr.key].tolist()
        present: list[Any] = []
        for start in range(0, len(keys), 10_000):
            present += self._existing(lyr, keys[start : start + 10_000])
        if present:
            shown = ", ".join(map(str, present[:10]))
            raise Conflict(f"{lyr.name}: {len(present)} id(s) already in the store: {shown}")
        typed["version"] = 1
        typed = typed[[c for c in lyr.names if c in typed.columns]]
        first = lyr.name == "plots" and self._plot_boxes == []
        if first and geoms is not None and (table := self.overview_table()):
            self._ahead = overview.MergeAhead(table, typed["status"].to_numpy(object), geoms)
        self._write_rows(lyr, typed, geoms)
        self._touched.add(lyr.name)
        self._reshaped.add(lyr.name)
        self._plots_written(lyr, geoms, typed["status"] if lyr.name == "plots" else None)
        self._log_bulk(lyr, "insert", keys, typed)
        return [str(k) for k in keys]

    def _in_store_crs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A GeoDataFrame that declares another CRS reprojected to the store's (one that
        declares none is taken as in it)."""
        if not isinstance(frame, gpd.GeoDataFrame) or frame.crs is None:
            return frame
        if frame.crs.to_epsg() == self.reader.epsg:
            return frame
        moved: pd.DataFrame = frame.to_crs(self.reader.epsg)
        return moved

    @staticmethod
    def _check_version(lyr: Layer, key: str, row: Mapping[str, Any], version: int | None) -> None:
        if version is not None and int(version) != int(row.get("version") or 0):
            raise Conflict(
                f"{lyr.name} {key} was changed by someone else (now version "
                f"{row.get('version')}, your copy is version {version}); "
                "reload it and apply your change again"
            )

    def update(
        self, layer: str, key: str, changes: Mapping[str, Any], *, version: int | None = None
    ) -> int:
        lyr = get_layer(layer)
        row = self._row(lyr, key)
        self._check_version(lyr, key, row, version)
        new = prepare_changes(lyr, changes)
        changed = diff(row, new)
        if not changed:
            return int(row.get("version") or 0)
        next_version = int(row.get("version") or 0) + 1
        self._set(lyr, key, {**new, "version": next_version})
        self._touched.add(lyr.name)
        if "geometry" in changed or "status" in changed:
            self._plots_written(
                lyr, [row.get("geometry"), new.get("geometry", row.get("geometry"))]
            )
        if "geometry" in changed:
            self._reshaped.add(lyr.name)
        self._log(lyr, "update", key, changed)
        return next_version

    def delete(self, layer: str, key: str, *, version: int | None = None) -> None:
        lyr = get_layer(layer)
        row = self._row(lyr, key)
        self._check_version(lyr, key, row, version)
        self._remove(lyr, key)
        self._touched.add(lyr.name)
        self._reshaped.add(lyr.name)
        self._plots_written(lyr, [row.get("geometry")])
        self._log(lyr, "delete", key, diff(row, {k: None for k in row if k != "version"}))

    def clear(self, layer: str) -> int:
        lyr = get_layer(layer)
        n = self._remove_all(lyr)
        self._touched.add(lyr.name)
        self._reshaped.add(lyr.name)
        self._plots_written(lyr, None)
        if n:
            self._log(lyr, "delete", "*", {"count": [n, 0]})
        return n

    def restore(self, layer: str, frame: pd.DataFrame) -> int:
        """Insert rows exactly as another store holds them (versions, computed fields and
        audit ids kept), auditing nothing: for ``zoneplan migrate``."""
        lyr = get_layer(layer)
        if len(frame) == 0:
            return 0
        typed = pd.DataFrame(
            {
                f.name: frame[f.name].astype(object).where(frame[f.name].notna(), None)
                for f in lyr.fields
            }
        )
        geoms = np.asarray(frame.geometry.values, dtype=object) if lyr.is_feature else None
        self._write_rows(lyr, typed, geoms)
        self._touched.add(lyr.name)
        self._reshaped.add(lyr.name)
        self._plots_written(lyr, None)
        return len(typed)

    def _log(self, lyr: Layer, action: str, key: str, changes: Mapping[str, Any]) -> None:
        if lyr.audited:
            self._audit.append(
                (now_iso(), self.user, action, lyr.name, str(key), audit_changes(changes))
            )

    def _log_bulk(self, lyr: Layer, action: str, keys: list[Any], typed: pd.DataFrame) -> None:
        if not lyr.audited:
            return
        if len(keys) > AUDIT_ROW_LIMIT:
            self._log(
                lyr,
                action,
                "*",
                {
                    "count": [0, len(keys)],
                    "first": [None, str(keys[0])],
                    "last": [None, str(keys[-1])],
                },
            )
            return
        for record in typed.to_dict("records"):
            values = {
                str(k): [None, v] for k, v in record.items() if v is not None and k != "version"
            }
            self._log(lyr, action, record[lyr.key], values)

    def _plots_written(self, lyr: Layer, geoms: Any, added: Any = None) -> None:
        """Note plots written with these geometries (None: the whole layer); ``added``:
        they are new plots with these statuses."""
        if lyr.name != "plots" or self._plot_boxes is None:
            return
        if geoms is None:
            self._plot_boxes = None
            return
        geoms = np.asarray(list(geoms), dtype=object)
        self._plot_boxes.append(shapely.bounds(geoms))
        if added is None or self._plots_added is None:
            self._plots_added = None
        else:
            self._plots_added.append((np.asarray(added, dtype=object), geoms))

    def overview_table(self) -> overview.OverviewTable | None:
        """The plot overview's table on this transaction (None: the store has none)."""
        return None

    def _one_insert_alone(self) -> bool:
        """Whether the transaction's only plot write so far is one insert."""
        return self._plot_boxes is not None and len(self._plots_added or ()) == 1

    def finish(self) -> None:
        """Write the audit records and mark the changed layers; called before commit."""
        if self._plot_boxes is None or self._plot_boxes:
            table = self.overview_table()
            ahead, self._ahead = self._ahead, None
            # an insert alone: the plots' cells are merged from the rows in hand
            alone = self._one_insert_alone()
            if ahead is not None and not alone:
                ahead.cancel()  # stale: other plot writes followed
            if table is not None and ahead is not None and alone:
                ahead.write(table)
            elif table is not None and self._plot_boxes is not None and self._plots_added:
                statuses, geoms = (np.concatenate(part) for part in zip(*self._plots_added))
                overview.refresh_added(table, statuses, geoms)
            elif table is not None:
                overview.refresh(
                    table, None if self._plot_boxes is None else np.concatenate(self._plot_boxes)
                )
        if self._audit:
            self._write_audit(self._audit)
            self._touched.add("audit")
        if self._touched:
            self._touch(self._touched, self._reshaped)


class SqlStore(Store):
    """The reads of a store whose backend answers them through a :class:`Reader`."""

    @abstractmethod
    def _reader(self, what: str) -> AbstractContextManager[Reader]:
        """A reader on a connection for reads outside transactions; ``what`` names the
        read in error messages."""

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
        lyr = get_layer(layer)
        with self._reader(f"reading {layer}") as reader:
            return reader.read(
                lyr,
                bbox=bbox,
                where=where,
                order_by=order_by,
                limit=limit,
                offset=offset,
                exact=exact,
            )

    def count(
        self,
        layer: str,
        *,
        bbox: Bbox | None = None,
        where: Where | None = None,
        exact: bool = False,
    ) -> int:
        lyr = get_layer(layer)
        with self._reader(f"counting {layer}") as reader:
            return reader.count(lyr, bbox=bbox, where=where, exact=exact)

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
        lyr = get_layer(layer)
        with self._reader(f"reading {layer}") as reader:
            return reader.rows(
                lyr,
                columns,
                bbox=bbox,
                where=where,
                order_by=order_by,
                limit=limit,
                offset=offset,
                matched=matched,
            )

    def find(
        self, layer: str, field: str, text: str, *, where: Where | None = None, limit: int = 10
    ) -> pd.DataFrame:
        lyr = get_layer(layer)
        with self._reader(f"searching {layer}") as reader:
            return reader.find(lyr, field, text, where=where, limit=limit)

    def keys(self, layer: str, *, where: Where | None = None) -> list[str]:
        lyr = get_layer(layer)
        with self._reader(f"reading the ids of {layer}") as reader:
            return reader.keys(lyr, where=where)

    def revision(self, layers: Sequence[str] | None = None) -> str:
        with self._reader("reading revisions") as reader:
            return reader.revision(layers)

    def revisions(self, layers: Sequence[str]) -> dict[str, str]:
        with self._reader("reading revisions") as reader:
            return reader.revisions(layers)

    def changes_since(self, audit_id: int, also: Sequence[int] = ()) -> list[tuple[int, str, str]]:
        """``(audit_id, layer, feat_id)`` of the audit records after ``audit_id`` and of
        the ids ``also`` (seen late), in id order."""
        # Three columns through the audit key's unique index, no frame: a reader after a
        # write pays for the records since, not for typing them.
        lyr = get_layer("audit")
        columns = ["audit_id", "layer", "feat_id"]
        with self._reader("reading the audit trail") as reader:
            rows = reader.select(lyr, columns, where={"audit_id": Range(audit_id + 1, None)})
            if len(also):
                rows += reader.select(lyr, columns, where={"audit_id": sorted(map(int, also))})
        return sorted((int(a), str(lyr_), str(f)) for a, lyr_, f in rows)
