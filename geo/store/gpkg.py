"""The embedded default store: one GeoPackage file that QGIS and GDAL open directly."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely

from geo import overview, tiles
from geo.crs import DEFAULT_EPSG
from geo.io.formats import typed_table
from geo.layers import LAYERS, Layer, get_layer
from geo.store import base, gpkg_boxes, overview_sql
from geo.store.base import (
    Bbox,
    Conflict,
    Invalid,
    NotFound,
    StoreError,
    Where,
    compile_where,
)
from geo.store.gpkg_geom import connect, decode_geometries, encode_geometries, wrapped
from geo.store.gpkg_schema import (
    add_fields,
    add_search_indexes,
    create_indexes,
    create_layer,
    search_key,
)
from geo.store.gpkg_schema import quote as _q
from geo.store.rows import GEOM, MATCHED, Order, Reader, RowSession, SqlStore, check_crs
from geo.store.rtree_pack import add_entries
from geo.validate import Problem

#: Inserts of at least this many features fill the R-tree in one pass (see _bulk_insert).
BULK_ROWS = 1_000
#: The page cache of a bulk insert, KiB (the default 2 MB spills to the journal mid-way).
BULK_CACHE_KIB = 256 * 1024
#: Rows per INSERT statement of a bulk insert (within SQLite's limit of bound parameters).
MULTI_ROWS = 1_000


def _sql_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _column_values(layer: Layer, name: str, column: pd.Series) -> list[Any]:
    values = column.tolist()
    if layer.has(name) and layer.field(name).type == "bool":
        return [None if v is None else int(v) for v in values]
    return list(values)


def _select(
    layer: Layer, bbox: Bbox | None, where: Where | None, what: str, exact: bool = False
) -> tuple[str, list[Any]]:
    sql = f"SELECT {what} FROM {_q(layer.name)} t"
    params: list[Any] = []
    if bbox is not None:
        if not layer.is_feature:
            raise Invalid([Problem(None, None, "bbox", f"{layer.name} has no geometry")])
        rtree = _q(f"rtree_{layer.name}_{GEOM}")
        sql += (
            f" JOIN {rtree} r ON r.id = t.fid AND r.minx <= ? AND r.maxx >= ?"
            " AND r.miny <= ? AND r.maxy >= ?"
        )
        params += [bbox[2], bbox[0], bbox[3], bbox[1]]
    clauses = []
    if bbox is not None and exact:
        clauses.append(f"ZP_Intersects(t.{_q(GEOM)}, ?, ?, ?, ?)")
        params += [float(v) for v in bbox]
    for name, op, value in compile_where(layer, where):
        column = f"t.{_q(name)}"
        if op in ("null", "notnull"):
            clauses.append(f"{column} IS {'NOT ' if op == 'notnull' else ''}NULL")
        elif op == "in":
            clauses.append(f"{column} IN ({', '.join('?' * len(value))})" if value else "0")
            params += [_sql_value(v) for v in value]
        elif op == "listhas":
            everything, item = value
            clauses.append(_list_has(column, item))
            given = [] if item is None else [item]
            params += [*given, everything, everything, *given]
        elif op == "range|null":
            tests = [f"{column} {sign} ?" for sign, v in zip((">=", "<="), value) if v is not None]
            clauses.append(f"({column} IS NULL OR ({' AND '.join(tests or ['1'])}))")
            params += [_sql_value(v) for v in value if v is not None]
        elif op == "prefix":  # a range on the search index
            clauses.append(f"{search_key(column)} >= ?")
            if value[1] is not None:
                clauses.append(f"{search_key(column)} < ?")
            params += [v for v in value if v is not None]
        elif op == "contains":
            # NULLs first, so the Python search key runs only on text
            clauses.append(f"({column} IS NOT NULL AND instr(ZP_SearchKey({column}), ?) > 0)")
            params.append(value)
        else:
            clauses.append(f"{column} {op} ?")
            params.append(_sql_value(value))
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    return sql, params


def _list_has(column: str, item: str | None) -> str:
    """SQL for ``list_has(column, item, everything)``, taking as parameters ``item`` (unless
    None: no item matches), ``everything`` twice, then ``item`` again. Text of printable ASCII without spaces
    is answered in SQL; anything else (whitespace to strip, other scripts) by the rule
    itself, ``ZP_ListHas`` (:func:`geo.store.base.list_has`)."""
    item_test = "0" if item is None else f"instr(',' || {column} || ',', ',' || ? || ',') > 0"
    return (
        f"(CASE WHEN {column} IS NULL THEN 1 WHEN {column} GLOB '*[^!-~]*' "
        f"THEN ZP_ListHas({column}, {'NULL' if item is None else '?'}, ?) "
        f"ELSE ({column} IN ('', ?) OR {item_test}) END)"
    )


def _revision(conn: sqlite3.Connection, layers: Sequence[str] | None) -> str:
    names = list(LAYERS) if layers is None else [get_layer(n).name for n in layers]
    stamps = _stamps(conn, names)
    return "|".join(str(stamps.get(n)) for n in names)


def _stamps(conn: sqlite3.Connection, names: Sequence[str]) -> dict[str, Any]:
    return dict(
        conn.execute(
            f"SELECT table_name, last_change FROM gpkg_contents WHERE table_name IN "
            f"({', '.join('?' * len(names))})",
            list(names),
        ).fetchall()
    )


class GpkgReader(Reader):
    """The read queries of a GeoPackage (SQLite) connection."""

    def __init__(self, conn: sqlite3.Connection, epsg: int):
        super().__init__(epsg)
        self.conn = conn

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
        """Rows as SQLite gives them (a writer's transaction already locks the file, so
        ``for_update`` needs nothing more)."""
        what = ", ".join("count(*) OVER ()" if c == MATCHED else f"t.{_q(c)}" for c in columns)
        sql, params = _select(lyr, bbox, where, what, exact)
        if order is not None and then_key:
            column, direction = f"t.{_q(order[0])}", "DESC" if order[1] else "ASC"
            sql += (
                f" ORDER BY {column} {direction}"
                if order[0] == lyr.key
                else f" ORDER BY {column} IS NULL, {column} {direction}, t.{_q(lyr.key)}"
            )
        elif order is not None and order[2]:
            sql += (
                f" ORDER BY {search_key(f't.{_q(order[0])}')} {'DESC' if order[1] else 'ASC'}, "
                f"t.{_q(lyr.key)}"
            )
        elif order is not None:
            sql += f" ORDER BY t.{_q(order[0])} {'DESC' if order[1] else 'ASC'}, t.fid"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else int(limit), int(offset)]
        return self.conn.execute(sql, params).fetchall()

    def count(
        self,
        lyr: Layer,
        *,
        bbox: Bbox | None = None,
        where: Where | None = None,
        exact: bool = False,
    ) -> int:
        sql, params = _select(lyr, bbox, where, "count(*)", exact)
        return int(self.conn.execute(sql, params).fetchone()[0])

    def decode(self, blobs: list[Any]) -> np.ndarray:
        return decode_geometries(blobs)

    def revision(self, layers: Sequence[str] | None = None) -> str:
        return _revision(self.conn, layers)

    def revisions(self, layers: Sequence[str]) -> dict[str, str]:
        stamps = _stamps(self.conn, [get_layer(n).name for n in layers])
        return {name: str(stamps.get(get_layer(name).name)) for name in layers}


class GpkgStore(SqlStore):
    """A store in one GeoPackage file.

    Parameters
    ----------
    path : path-like
        An existing store made by :meth:`create`.
    epsg : int, optional
        The CRS the caller works in; a store in another is refused.

    Raises
    ------
    NotFound
        When the file does not exist or is not a zoneplan GeoPackage.
    StoreError
        When the store's CRS is not ``epsg``.
    """

    def __init__(self, path: Path | str, *, epsg: int | None = None):
        self.path = Path(path)
        self._readers = threading.local()
        if not self.path.is_file():
            raise NotFound(f"no store at {self.path}; run `zoneplan init` first")
        with self._conn() as conn:
            try:
                have = {r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents")}
            except sqlite3.DatabaseError as err:
                raise NotFound(f"{self.path} is not a GeoPackage ({err})") from None
        missing = [name for name in LAYERS if name not in have]
        if "plots" not in have:
            raise NotFound(f"{self.path} is not a zoneplan store: it lacks {', '.join(missing)}")
        with self._conn() as conn:
            srs = sorted(
                r[0] for r in conn.execute("SELECT DISTINCT srs_id FROM gpkg_geometry_columns")
            )
        if len(srs) != 1:
            raise StoreError(
                f"the store {self.path} keeps geometries in "
                f"{', '.join(f'EPSG:{c}' for c in srs) or 'no CRS'}; a store has one CRS"
            )
        #: The CRS every geometry of this store is in (its GeoPackage metadata).
        self.epsg = check_crs(str(self.path), srs[0], epsg)
        if missing:
            self._add_tables(missing)
        with self._conn() as conn, wrapped(f"upgrading {self.path}"):
            add_fields(conn)
            add_search_indexes(conn)

    def close(self) -> None:
        """Drop every thread's reading connection (each closes when no read holds it)."""
        self._readers = threading.local()

    def _add_tables(self, names: list[str]) -> None:
        """Create the tables a newer schema added (a store made by an older version)."""
        for name in names:
            try:
                create_layer(str(self.path), get_layer(name), self.epsg)
                with self._conn() as conn:
                    create_indexes(conn, get_layer(name))
            except Exception as err:  # another process may have created it meanwhile
                with self._conn() as conn:
                    made = conn.execute(
                        "SELECT 1 FROM gpkg_contents WHERE table_name = ?", (name,)
                    ).fetchone()
                if not made:
                    raise StoreError(f"cannot add table {name} to {self.path}: {err}") from None

    def describe(self) -> str:
        return str(self.path)

    @classmethod
    def create(
        cls,
        path: Path | str,
        *,
        force: bool = False,
        fill: Callable[[RowSession], None] | None = None,
        epsg: int = DEFAULT_EPSG,
    ) -> GpkgStore:
        """Make a new store with every layer of the schema in CRS ``epsg``, empty or written
        by ``fill``.

        The file is built beside ``path`` (``fill`` writes into it in one transaction)
        and renamed into place, so a failure never leaves a half-made store.

        Raises
        ------
        Conflict
            When ``path`` exists and ``force`` is false.
        """
        path = Path(path)
        if path.exists() and not force:
            raise Conflict(f"{path} exists; use --force to replace it")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".zoneplan-", suffix=".gpkg", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)
        try:
            for layer in LAYERS.values():
                create_layer(tmp, layer, epsg)
            with connect(tmp) as conn:
                for layer in LAYERS.values():
                    create_indexes(conn, layer)
            if fill is not None:
                with cls(tmp).transaction("system") as session:
                    fill(session)
            cls(tmp).build_overview()
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return cls(path)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        with wrapped(f"reading {self.path}"):
            conn = connect(self.path)
            try:
                yield conn
            finally:
                conn.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection for reads outside transactions, kept open: opening one
        parses the GeoPackage schema (~6 ms), more than most reads cost. Reopened when the
        file was replaced (``zoneplan init --force``)."""
        with wrapped(f"reading {self.path}"):
            stat = os.stat(self.path)
            held = getattr(self._readers, "held", None)
            if held is None or held[1] != (stat.st_dev, stat.st_ino):
                if held is not None:
                    held[0].close()
                held = self._readers.held = (connect(self.path), (stat.st_dev, stat.st_ino))
            yield held[0]

    @contextmanager
    def _reader(self, what: str) -> Iterator[GpkgReader]:
        with self._reading() as conn:
            yield GpkgReader(conn, self.epsg)

    def vector_tile(
        self, layer: str, tile: tiles.Tile, *, properties: Sequence[str], where: Where | None = None
    ) -> bytes:
        """The rows under the tile straight from the R-tree into the encoder (no DataFrame);
        plots too small to see at the tile's zoom come as the overview's blocks."""
        lyr = get_layer(layer)
        names = [lyr.key, *(p for p in properties if p != lyr.key)]
        box = tile.working_bbox(self.epsg)
        sql, params = _select(lyr, box, where, ", ".join(f"t.{_q(c)}" for c in [*names, GEOM]))
        level = overview.level_of(tile.z) if layer == "plots" else None
        usable, statuses = overview.statuses_of(where)
        with self._reading() as conn:
            found = (
                overview_sql.gpkg_blocks(conn, self.epsg, level, box, statuses)
                if level is not None and usable
                else None
            )
            if found is not None and level is not None:
                sql += (
                    " AND " if " WHERE " in sql else " WHERE "
                ) + overview_sql.GPKG_SIZE.predicate(level, self.epsg)
                if level in overview_sql.GPKG_INDEXED_LEVELS:  # the big plots' own R-tree
                    sql = sql.replace(
                        _q(f"rtree_{lyr.name}_{GEOM}"), _q(overview_sql.gpkg_big_rtree(level))
                    )
            rows = conn.execute(sql, params).fetchall()
        if not rows and not found:
            return b""
        columns, geoms, ids = overview_sql.gpkg_tile_rows(
            names, rows, found or [], decode_geometries, f"{tile.z}/{tile.x}/{tile.y}"
        )
        return tiles.encode(
            layer, geoms, tile, key=lyr.key, columns=columns, epsg=self.epsg, ids=ids
        )

    plot_size = overview_sql.GPKG_SIZE

    def plot_boxes(self, keys: Sequence[str] | None = None) -> base.PlotBoxRows:
        return gpkg_boxes.read(self._reading, keys)

    def plot_blocks(
        self, level: int, box: Bbox, statuses: Sequence[str] | None
    ) -> list[overview.Block] | None:
        """The overview's blocks of ``level`` in the cells ``box`` meets (None: not built)."""
        with self._reading() as conn:
            return overview_sql.gpkg_blocks(conn, self.epsg, level, box, statuses)

    def build_overview(self) -> int:
        """(Re)build the plot overview from every plot; returns the blocks written."""
        with self.transaction("system") as session:
            table = overview_sql.GpkgOverview(session.conn, self.epsg, decode_geometries)
            table.create()
            session._plot_boxes = []  # built here; the plots' revision moves on commit
            session._touched.add("plots")
            return overview.refresh(table, None)

    def read_arrow(self, layer: str, schema: Layer | None = None) -> pa.Table:
        """A whole layer as Arrow, read by GDAL (C all the way: no per-row Python), its
        export fields typed as :func:`geo.io.formats.to_arrow` types them (``schema``, a
        narrowing of the layer's, picks them), geometry as ISO WKB, in key order like
        :meth:`read`."""
        lyr = schema or get_layer(layer)
        names = [f.name for f in lyr.export_fields]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            meta, table = pyogrio.read_arrow(self.path, layer=layer, columns=names)
        table = typed_table(lyr, table, meta.get("geometry_name") or None)
        keys = table.column(lyr.key)
        if len(keys) < 2 or pc.all(pc.greater(keys[1:], keys[:-1])).as_py():
            return table  # already in key order (rows written in order): no copy
        # on one chunk: Arrow's take over many chunks is ~3x slower
        table = table.combine_chunks()
        return table.take(pc.sort_indices(table, sort_keys=[(lyr.key, "ascending")]))

    def extent(self, layer: str) -> Bbox | None:
        lyr = get_layer(layer)
        if not lyr.is_feature:
            return None
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM "
                f"{_q(f'rtree_{lyr.name}_{GEOM}')}"
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))

    @contextmanager
    def transaction(self, user: str = "system") -> Iterator[GpkgSession]:
        with self._conn() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as err:
                raise StoreError(f"the store is busy ({err}); try again") from None
            session = GpkgSession(conn, user, self.epsg)
            try:
                with wrapped(f"writing {self.path}"):
                    yield session
                    session.finish()
                    conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


class GpkgSession(RowSession):
    """Reads and writes inside one SQLite transaction on a GeoPackage."""

    def __init__(self, conn: sqlite3.Connection, user: str, epsg: int):
        super().__init__(user, GpkgReader(conn, epsg))
        self.conn = conn
        self._bulk_plots: tuple[np.ndarray, np.ndarray] | None = None  # fids, bounds

    def overview_table(self) -> overview_sql.GpkgOverview | None:
        if not overview_sql.gpkg_exists(self.conn):
            return None
        added = self._bulk_plots if self._one_insert_alone() else None
        return overview_sql.GpkgOverview(self.conn, self.reader.epsg, decode_geometries, added)

    def lock(self, layer: str) -> None:
        """Writers already run one at a time (``BEGIN IMMEDIATE`` locks the file)."""
        get_layer(layer)

    def _existing(self, lyr: Layer, keys: list[Any]) -> list[Any]:
        """The ``keys`` already stored: one query, the keys handed over as a JSON array."""
        listed = json.dumps([k if type(k) is str else _sql_value(k) for k in keys])
        return [
            r[0]
            for r in self.conn.execute(
                f"SELECT {_q(lyr.key)} FROM {_q(lyr.name)} WHERE {_q(lyr.key)} IN "
                "(SELECT value FROM json_each(?))",
                (listed,),
            )
        ]

    def _write_rows(self, lyr: Layer, typed: pd.DataFrame, geoms: np.ndarray | None) -> None:
        # Columns with no value at all are left out (they are NULL by default; SQLite
        # stores a NaN as NULL too).
        every = {c: _column_values(lyr, c, typed[c]) for c in typed.columns}
        columns = [c for c, v in every.items() if v.count(None) < len(v)]
        values = [every[c] for c in columns]
        if geoms is not None:
            columns.append(GEOM)
            values.append(encode_geometries(geoms, self.reader.epsg))
        if geoms is not None and len(typed) >= BULK_ROWS:
            self._bulk_insert(lyr, columns, values, geoms)
            return
        self.conn.executemany(_insert_sql(lyr.name, columns), zip(*values))

    def _bulk_insert(
        self, lyr: Layer, columns: list[str], values: list[list[Any]], geoms: np.ndarray
    ) -> None:
        """Many rows at once, with what GeoPackage's per-row insert triggers do done once
        for them all: the R-tree filled from bounds computed in one vectorised pass (the
        trigger calls back into Python five times per row) and the layer's feature count
        moved on by the number of rows. The triggers are dropped and made again from their
        own SQL inside this transaction, so a rollback restores them and other connections
        never see them missing."""
        rtree = f"rtree_{lyr.name}_{GEOM}"
        triggers = self.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? "
            "AND name IN (?, ?)",
            (lyr.name, f"{rtree}_insert", f"trigger_insert_feature_count_{lyr.name}"),
        ).fetchall()
        for name, _ in triggers:
            self.conn.execute(f"DROP TRIGGER {_q(name)}")
        cache = self.conn.execute("PRAGMA cache_size").fetchone()[0]
        self.conn.execute(f"PRAGMA cache_size = {-BULK_CACHE_KIB}")  # no spills mid-way
        try:
            start = self.conn.execute(
                f"SELECT coalesce(max(fid), 0) FROM {_q(lyr.name)}"
            ).fetchone()[0]
            fids = range(start + 1, start + 1 + len(geoms))
            self._insert_many(lyr.name, ["fid", *columns], zip(fids, *values), len(geoms))
            bounds = shapely.bounds(geoms)
            drawn = np.flatnonzero(~np.isnan(bounds[:, 0]))
            add_entries(self.conn, rtree, drawn + start + 1, bounds[drawn])
            if lyr.name == "plots":
                self._bulk_plots = (drawn + start + 1, bounds[drawn])
        finally:
            self.conn.execute(f"PRAGMA cache_size = {int(cache)}")
        if any(name.startswith("trigger_insert_feature_count") for name, _ in triggers):
            self.conn.execute(
                "UPDATE gpkg_ogr_contents SET feature_count = feature_count + ? "
                "WHERE lower(table_name) = lower(?)",
                (len(geoms), lyr.name),
            )
        for _, text in triggers:
            self.conn.execute(text)

    def _insert_many(
        self, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]], count: int
    ) -> None:
        """Insert ``count`` rows with many rows per statement (``VALUES (…), (…), …``): a
        third less CPU than a statement per row, whose reset and bookkeeping then dominate."""
        limit = self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        per = max(1, min(MULTI_ROWS, limit // len(columns)))
        full = count - count % per
        width = per * len(columns)
        flat = itertools.chain.from_iterable(itertools.islice(rows, full))
        if full:
            self.conn.executemany(
                _insert_sql(table, columns, per),
                iter(lambda: list(itertools.islice(flat, width)), []),
            )
        self.conn.executemany(_insert_sql(table, columns), rows)

    def _set(self, lyr: Layer, key: str, sets: Mapping[str, Any]) -> None:
        values = {(GEOM if k == "geometry" else k): v for k, v in sets.items()}
        if "geometry" in sets:
            values[GEOM] = encode_geometries(
                np.array([sets["geometry"]], dtype=object), self.reader.epsg
            )[0]
        self.conn.execute(
            f"UPDATE {_q(lyr.name)} SET {', '.join(f'{_q(k)} = ?' for k in values)} "
            f"WHERE {_q(lyr.key)} = ?",
            [*map(_sql_value, values.values()), key],
        )

    def _remove(self, lyr: Layer, key: str) -> None:
        self.conn.execute(f"DELETE FROM {_q(lyr.name)} WHERE {_q(lyr.key)} = ?", (key,))

    def _remove_all(self, lyr: Layer) -> int:
        return self.conn.execute(f"DELETE FROM {_q(lyr.name)}").rowcount

    def _write_audit(self, records: list[tuple[Any, ...]]) -> None:
        start = self.conn.execute("SELECT coalesce(max(audit_id), 0) FROM audit").fetchone()[0]
        self.conn.executemany(
            "INSERT INTO audit (audit_id, at, username, action, layer, feat_id, changes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(start + i + 1, *rec) for i, rec in enumerate(records)],
        )

    def _touch(self, layers: set[str], reshaped: set[str]) -> None:
        """Move each changed layer's last_change (its revision) on, and refresh the extent
        of those whose geometries changed (a scan of the R-tree, skipped for attribute edits)."""
        for name in layers:
            self._refresh_contents(get_layer(name), name in reshaped)

    def _refresh_contents(self, lyr: Layer, reshaped: bool) -> None:
        # Strictly increasing, even for two commits within one millisecond, since
        # caches key on it.
        stamp = (
            "last_change = CASE "
            "WHEN strftime('%Y-%m-%dT%H:%M:%fZ','now') > coalesce(last_change, '') "
            "THEN strftime('%Y-%m-%dT%H:%M:%fZ','now') "
            "ELSE strftime('%Y-%m-%dT%H:%M:%fZ', julianday(last_change) + 1.0 / 86400000) END"
        )
        if not (lyr.is_feature and reshaped):
            self.conn.execute(f"UPDATE gpkg_contents SET {stamp} WHERE table_name = ?", (lyr.name,))
            return
        bounds = self.conn.execute(
            f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM "
            f"{_q(f'rtree_{lyr.name}_{GEOM}')}"
        ).fetchone()
        self.conn.execute(
            f"UPDATE gpkg_contents SET {stamp}, min_x = ?, min_y = ?, max_x = ?, max_y = ? "
            "WHERE table_name = ?",
            (*bounds, lyr.name),
        )


def _insert_sql(table: str, columns: list[str], rows: int = 1) -> str:
    values = f"({', '.join('?' * len(columns))})"
    return f"INSERT INTO {_q(table)} ({', '.join(map(_q, columns))}) VALUES " + ", ".join(
        [values] * rows
    )
