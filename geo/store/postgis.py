"""The multi-user store: one PostGIS database, one table per layer, that QGIS and psql open directly."""

from __future__ import annotations

import codecs
import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import errors, sql
from psycopg.copy import QueuedLibpqWriter
from psycopg_pool import ConnectionPool, PoolTimeout

from geo import overview, tiles
from geo.crs import DEFAULT_EPSG
from geo.layers import LAYERS, Field, Layer, get_layer
from geo.store import base, overview_sql, pg_boxes, pg_tiles
from geo.store.base import (
    LIST_SPACE,
    Bbox,
    Condition,
    Conflict,
    Invalid,
    StoreError,
    Where,
    compile_where,
    redact,
)
from geo.store.pg_copy import copy_binary_blocks, indexes_rebuilt
from geo.store.pg_derived import PG_SIZE
from geo.store.pg_schema import (
    AUDIT_SEQUENCE,
    META,
    MIGRATIONS,
    REVISIONS,
    build_schema,
    check_schema,
    column_type,
    first_line,
    search_key,
    table_names,
    upgrade,
)
from geo.store.rows import GEOM, MATCHED, Order, Reader, RowSession, SqlStore, check_crs
from geo.validate import Problem

POOL_SIZE = 8
POOL_TIMEOUT_S = 30.0


@contextmanager
def wrapped(what: str) -> Iterator[None]:
    """Turn psycopg's errors into the store's typed errors."""
    try:
        yield
    except errors.UniqueViolation as err:
        raise Conflict(
            f"{what}: a row with that id already exists ({err.diag.message_detail})"
        ) from None
    except (errors.SerializationFailure, errors.DeadlockDetected, errors.LockNotAvailable):
        raise Conflict(f"{what}: another user changed the same data at once; try again") from None
    except (errors.CheckViolation, errors.NotNullViolation, errors.DataException) as err:
        raise Invalid([Problem(None, None, None, f"{what}: {first_line(err)}")]) from None
    except PoolTimeout:
        raise StoreError(
            f"{what}: no database connection free within {POOL_TIMEOUT_S:g} s; "
            "the server is overloaded"
        ) from None
    except psycopg.OperationalError as err:
        raise StoreError(f"{what}: the database is unreachable ({first_line(err)})") from None
    except psycopg.Error as err:
        raise StoreError(f"{what}: {first_line(err)}") from None


def _db_value(fld: Field | None, value: Any) -> Any:
    """A Python value as PostgreSQL takes it (numpy scalars unwrapped, aware times in UTC)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if fld is not None and fld.type == "datetime":
        stamp = dt.datetime.fromisoformat(str(value))
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
        return stamp
    return value


def _copy_column(fld: Field, column: pd.Series) -> list[Any]:
    """A column's values as COPY takes them, converted per value only where the plain
    Python values need it (times to UTC; numpy scalars and missing markers)."""
    if fld.type != "datetime" and column.dtype != object:
        values = column.astype(object).where(column.notna(), None).tolist()
        return [v.item() if isinstance(v, np.generic) else v for v in values]
    values = column.tolist()
    if fld.type != "datetime" and all(v is None or (type(v) in _PLAIN and v == v) for v in values):
        return list(values)
    return [_db_value(fld, v) for v in values]


_PLAIN = (str, int, float, bool)


def _ewkb_hex(geoms: np.ndarray, epsg: int) -> list[str | None]:
    """Hex EWKB (SRID included), the text form COPY takes for geometry columns."""
    with_srid = shapely.set_srid(np.asarray(geoms, dtype=object), epsg)
    return list(shapely.to_wkb(with_srid, hex=True, include_srid=True).tolist())


def _filter_value(fld: Field, value: Any) -> Any:
    """A filter value as PostgreSQL takes it; text with a NUL byte, which PostgreSQL cannot
    hold, becomes NULL and so matches nothing."""
    if isinstance(value, str) and "\x00" in value:
        return None
    return _db_value(fld, value)


def _condition(lyr: Layer, cond: Condition) -> tuple[sql.Composable, list[Any]]:
    name, op, value = cond
    column = sql.SQL("t.{}").format(sql.Identifier(name))
    fld = lyr.field(name)
    if op == "null":
        return sql.SQL("{} IS NULL").format(column), []
    if op == "notnull":
        return sql.SQL("{} IS NOT NULL").format(column), []
    if op == "in":
        return (
            sql.SQL("{} = ANY(%s::{}[])").format(column, column_type(fld)),
            [[_filter_value(fld, v) for v in value]],
        )
    if op == "listhas":
        return _list_has(column, *value)
    if op == "prefix":  # a range on the search index
        key = search_key(column)
        if value[1] is None:
            return sql.SQL("{} >= %s").format(key), [value[0]]
        return sql.SQL("{k} >= %s AND {k} < %s").format(k=key), list(value)
    if op == "contains":
        return (
            sql.SQL("strpos(lower(regexp_replace({}, '\\s', '', 'g')), %s) > 0").format(column),
            [value],
        )
    if op == "range|null":
        bounds = [(sign, v) for sign, v in zip((">=", "<="), value) if v is not None]
        tests = [sql.SQL("{} {} %s").format(column, sql.SQL(sign)) for sign, _ in bounds]
        return (
            sql.SQL("({} IS NULL OR ({}))").format(
                column, sql.SQL(" AND ").join(tests) if tests else sql.SQL("TRUE")
            ),
            [_filter_value(fld, v) for _, v in bounds],
        )
    return sql.SQL("{} {} %s").format(column, sql.SQL(op)), [_filter_value(fld, value)]


def _list_has(column: sql.Composable, everything: str, item: str | None) -> tuple[Any, list[Any]]:
    """``geo.store.base.list_has(column, item, everything)`` in SQL (``item`` None: no item
    matches): printable ASCII without spaces as it is, other text with the whitespace
    ``str.strip`` removes (:data:`LIST_SPACE`) stripped from each item first."""
    space = sql.Literal(LIST_SPACE)
    squeeze = sql.Literal(f"[{LIST_SPACE}]*,[{LIST_SPACE}]*")
    has = "FALSE" if item is None else "position(',' || %s || ',' IN ',' || {items} || ',') > 0"
    plain = sql.SQL(has).format(items=column)
    stripped = sql.SQL(has).format(
        items=sql.SQL("btrim(regexp_replace({}, {}, ',', 'g'), {})").format(column, squeeze, space)
    )
    query = sql.SQL(
        "(CASE WHEN {c} IS NULL THEN TRUE WHEN {c} ~ '[^!-~]' "
        "THEN (btrim({c}, {space}) IN ('', %s) OR {stripped}) "
        "ELSE ({c} IN ('', %s) OR {plain}) END)"
    ).format(c=column, space=space, stripped=stripped, plain=plain)
    given = [] if item is None else [item]
    return query, [everything, *given, everything, *given]


def _select(
    lyr: Layer,
    what: sql.Composable,
    bbox: Bbox | None,
    where: Where | None,
    exact: bool = False,
    *,
    epsg: int,
) -> tuple[sql.Composed, list[Any]]:
    """``SELECT what FROM lyr t WHERE …`` with ``bbox`` in CRS ``epsg`` and ``where``."""
    query = sql.SQL("SELECT {} FROM {} t").format(what, sql.Identifier(lyr.name))
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    if bbox is not None:
        if not lyr.is_feature:
            raise Invalid([Problem(None, None, "bbox", f"{lyr.name} has no geometry")])
        test = (
            "ST_Intersects(t.{}, ST_MakeEnvelope(%s, %s, %s, %s, {}))"
            if exact
            else ("t.{} && ST_MakeEnvelope(%s, %s, %s, %s, {})")
        )
        clauses.append(sql.SQL(test).format(sql.Identifier(GEOM), sql.Literal(epsg)))
        params += [float(v) for v in bbox]
    for cond in compile_where(lyr, where):
        clause, values = _condition(lyr, cond)
        clauses.append(clause)
        params += values
    if clauses:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses)
    return query, params


def _then_key(lyr: Layer, order: Order, alias: str) -> sql.Composable:
    """``ORDER BY`` the field ``order`` names on table ``alias``, missing values last and
    ties by the layer key."""
    column = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(order[0]))
    direction = sql.SQL("DESC" if order[1] else "ASC")
    if order[0] == lyr.key:  # the key's index reads either way
        return sql.SQL(" ORDER BY {} {}").format(column, direction)
    return sql.SQL(" ORDER BY {} {} NULLS LAST, {}.{}").format(
        column, direction, sql.Identifier(alias), sql.Identifier(lyr.key)
    )


def _columns(columns: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("count(*) OVER ()")
        if c == MATCHED
        else sql.SQL("ST_AsBinary(t.{})" if c == GEOM else "t.{}").format(sql.Identifier(c))
        for c in columns
    )


class PgReader(Reader):
    """The read queries of a PostgreSQL connection."""

    native_dates = True

    def __init__(self, conn: psycopg.Connection, epsg: int):
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
        """Rows as psycopg gives them; ``for_update`` locks them until the transaction ends."""
        if MATCHED in columns and order is not None and then_key:
            return self._counted_page(lyr, columns, bbox, where, exact, order, limit, offset)
        query, params = _select(lyr, _columns(columns), bbox, where, exact, epsg=self.epsg)
        if order is not None and then_key:
            query += _then_key(lyr, order, "t")
        elif order is not None:
            # Missing values sort as SQLite sorts them, so both backends page alike.
            direction = sql.SQL("DESC NULLS LAST" if order[1] else "ASC NULLS FIRST")
            column = sql.SQL("t.{}").format(sql.Identifier(order[0]))
            if order[2]:  # by search key, as the search index holds them
                query += sql.SQL(" ORDER BY {} {}, t.{}").format(
                    search_key(column), direction, sql.Identifier(lyr.key)
                )
            else:
                query += sql.SQL(" ORDER BY {} {}, t.fid").format(column, direction)
        if limit is not None:
            query += sql.SQL(" LIMIT %s")
            params.append(int(limit))
        if offset:
            query += sql.SQL(" OFFSET %s")
            params.append(int(offset))
        if for_update:
            query += sql.SQL(" FOR UPDATE")
        return self.conn.execute(query, params).fetchall()

    def _counted_page(
        self,
        lyr: Layer,
        columns: Sequence[str],
        bbox: Bbox | None,
        where: Where | None,
        exact: bool,
        order: Order,
        limit: int | None,
        offset: int,
    ) -> list[tuple[Any, ...]]:
        """A page and, on each row, how many match: the matches' ids and sort keys first
        (the only plan is then the filter's own: GiST for a bbox), counted and sorted, then
        the page's rows read by id. PostgreSQL 15 costs ``count(*) OVER ()`` as if the
        LIMIT stopped it early, so over one query its custom plans walk the whole key index
        (270 ms at 1M plots and a 5 km box, against 11 ms through GiST)."""
        keys = dict.fromkeys(("fid", order[0], lyr.key))  # stable text: one prepared plan
        hits, params = _select(
            lyr,
            sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in keys),
            bbox,
            where,
            exact,
            epsg=self.epsg,
        )
        page = sql.SQL("SELECT h.fid FROM hits h") + _then_key(lyr, order, "h")
        page += sql.SQL(" LIMIT %s OFFSET %s")
        params += [None if limit is None else int(limit), int(offset)]
        what = _columns([c for c in columns if c != MATCHED]) + sql.SQL(
            ", (SELECT count(*) FROM hits)"
        )
        query = sql.SQL(
            "WITH hits AS MATERIALIZED ({hits}) SELECT {what} FROM ({page}) p "
            "JOIN {table} t ON t.fid = p.fid"
        ).format(hits=hits, what=what, page=page, table=sql.Identifier(lyr.name))
        return self.conn.execute(query + _then_key(lyr, order, "t"), params).fetchall()

    def count(
        self,
        lyr: Layer,
        *,
        bbox: Bbox | None = None,
        where: Where | None = None,
        exact: bool = False,
    ) -> int:
        query, params = _select(lyr, sql.SQL("count(*)"), bbox, where, exact, epsg=self.epsg)
        row = self.conn.execute(query, params).fetchone()
        return int(row[0]) if row is not None else 0

    def decode(self, blobs: list[Any]) -> np.ndarray:
        return np.asarray(shapely.from_wkb([None if b is None else bytes(b) for b in blobs]))

    def revision(self, layers: Sequence[str] | None = None) -> str:
        return _revision(self.conn, layers)

    def revisions(self, layers: Sequence[str]) -> dict[str, str]:
        return _revisions(self.conn, layers)


class PostgisStore(SqlStore):
    """A store in a PostgreSQL database with PostGIS.

    Parameters
    ----------
    url : str
        ``postgresql://user@host:port/database`` holding a schema made by :meth:`create`.
    pool_size : int
        Most connections this process keeps open.

    Raises
    ------
    NotFound
        When the database has no zoneplan schema.
    StoreError
        When the database is unreachable or its CRS is not the working CRS.
    """

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE, epsg: int | None = None):
        self.url = url
        self.identity = redact(url)
        self._pool_size = pool_size
        self._pool = _open_pool(url, pool_size)
        try:
            with wrapped(f"opening {self.identity}"), self._pool.connection() as conn:
                #: The CRS every geometry of this store is in (its metadata).
                self.epsg = check_crs(self.identity, check_schema(conn, self.identity), epsg)
                upgrade(conn, self.epsg)
        except BaseException:
            self._pool.close()
            raise

    @classmethod
    def create(
        cls,
        url: str,
        *,
        force: bool = False,
        fill: Callable[[RowSession], None] | None = None,
        epsg: int = DEFAULT_EPSG,
    ) -> PostgisStore:
        """Create every layer of the schema in CRS ``epsg``, the metadata and the migrations
        table, and let ``fill`` write into them, all in one transaction.

        Raises
        ------
        Conflict
            When the database already holds a zoneplan schema and ``force`` is false.
        """
        with (
            wrapped(f"creating the store in {redact(url)}"),
            psycopg.connect(url, autocommit=False) as conn,
        ):
            build_schema(conn, force=force, where=redact(url), epsg=epsg)
            if fill is not None:
                session = PostgisSession(conn, "system", epsg)
                fill(session)
                session.finish()
            overview_sql.PgOverview(conn, epsg).create()
            overview.refresh(overview_sql.PgOverview(conn, epsg), None)
        return cls(url)

    def describe(self) -> str:
        return self.identity

    @contextmanager
    def _reader(self, what: str) -> Iterator[PgReader]:
        with wrapped(what), self._pool.connection() as conn:
            yield PgReader(conn, self.epsg)

    def extent(self, layer: str) -> Bbox | None:
        lyr = get_layer(layer)
        if not lyr.is_feature:
            return None
        query = sql.SQL(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent({}) AS e FROM {}) s"
        ).format(sql.Identifier(GEOM), sql.Identifier(lyr.name))
        with wrapped(f"reading the extent of {layer}"), self._pool.connection() as conn:
            row = conn.execute(query).fetchone()
        if row is None or row[0] is None:
            return None
        return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))

    def vector_tile(
        self, layer: str, tile: tiles.Tile, *, properties: Sequence[str], where: Where | None = None
    ) -> bytes:
        """The tile cut and encoded by PostGIS (``ST_AsMVT``; see :mod:`geo.store.pg_tiles`),
        plots too small to see at its zoom as the overview's blocks."""
        lyr = get_layer(layer)
        level = overview.level_of(tile.z) if layer == "plots" else None
        usable, statuses = overview.statuses_of(where)
        with wrapped(f"cutting a tile of {layer}"), self._pool.connection() as conn:
            built = pg_tiles.settle(conn)
            if level is not None and not (usable and built):
                level = None
            return pg_tiles.vector_tile(
                conn,
                lyr,
                tile,
                properties=properties,
                where=where,
                select=_select,
                epsg=self.epsg,
                level=level,
                statuses=statuses,
            )

    plot_size = PG_SIZE

    def plot_boxes(self, keys: Sequence[str] | None = None) -> base.PlotBoxRows:
        return pg_boxes.read(self._pool, keys)

    def plot_blocks(
        self, level: int, box: Bbox, statuses: Sequence[str] | None
    ) -> list[overview.Block] | None:
        """The overview's blocks of ``level`` in the cells ``box`` meets (None: not built)."""
        with wrapped("reading the plot overview"), self._pool.connection() as conn:
            return overview_sql.pg_blocks(conn, self.epsg, level, box, statuses)

    def build_overview(self) -> int:
        """(Re)build the plot overview (and the plots' partial indexes) from every plot;
        returns the blocks written."""
        with self.transaction("system") as session:
            table = overview_sql.PgOverview(session.conn, self.epsg)
            table.create()
            session._plot_boxes = []  # built here; the plots' revision moves on commit
            session._touched.add("plots")
            return overview.refresh(table, None)

    @contextmanager
    def transaction(self, user: str = "system") -> Iterator[PostgisSession]:
        with wrapped("writing"), self._pool.connection() as conn:
            with conn.transaction():
                session = PostgisSession(conn, user, self.epsg)
                yield session
                session.finish()

    def close(self) -> None:
        self._pool.close()

    def reopen(self) -> None:
        self._pool = _open_pool(self.url, self._pool_size)


def _open_pool(url: str, size: int) -> ConnectionPool:
    with wrapped(f"connecting to {redact(url)}"):
        # One plain connection first, so a wrong URL fails at once with the server's reason
        # instead of the pool retrying in the background.
        psycopg.connect(url, connect_timeout=10).close()
        pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, size),
            open=False,
            timeout=POOL_TIMEOUT_S,
            name="zoneplan",
        )
        pool.open(wait=True, timeout=POOL_TIMEOUT_S)
        return pool


def has_schema(url: str) -> bool:
    """Whether the database at ``url`` holds a zoneplan store."""
    with wrapped(f"connecting to {redact(url)}"), psycopg.connect(url, connect_timeout=10) as conn:
        return MIGRATIONS in table_names(conn)


def _revision(conn: psycopg.Connection, layers: Sequence[str] | None) -> str:
    names = list(LAYERS) if layers is None else [get_layer(n).name for n in layers]
    rows = _revision_rows(conn, names)
    if not rows:
        return "empty"
    return str(rows[0][2]) + ":" + ",".join(f"{layer}={rev}" for layer, rev, _ in rows)


def _revision_rows(conn: psycopg.Connection, names: Sequence[str]) -> list[Any]:
    return conn.execute(
        f"SELECT r.layer, r.rev, m.value FROM {REVISIONS} r, {META} m "
        "WHERE m.key = 'generation' AND r.layer = ANY(%s) ORDER BY r.layer",
        (list(names),),
    ).fetchall()


def _revisions(conn: psycopg.Connection, layers: Sequence[str]) -> dict[str, str]:
    """``{name: _revision(conn, [name])}`` in one query."""
    found = {
        layer: f"{generation}:{layer}={rev}"
        for layer, rev, generation in _revision_rows(conn, [get_layer(n).name for n in layers])
    }
    return {name: found.get(get_layer(name).name, "empty") for name in layers}


class PostgisSession(RowSession):
    """Reads and writes inside one PostgreSQL transaction."""

    def __init__(self, conn: psycopg.Connection, user: str, epsg: int):
        super().__init__(user, PgReader(conn, epsg))
        self.conn = conn

    def overview_table(self) -> overview_sql.PgOverview | None:
        if not overview_sql.pg_exists(self.conn):
            return None
        return overview_sql.PgOverview(self.conn, self.reader.epsg)

    def lock(self, layer: str) -> None:
        """Hold other writers that lock ``layer`` until this transaction ends.

        A check-then-write (no new parcel overlaps another) locks the layer before it
        reads, so two such writers run one after the other; plain readers never wait.
        """
        self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"zoneplan:{get_layer(layer).name}",)
        )

    def _existing(self, lyr: Layer, keys: list[Any]) -> list[Any]:
        """The ``keys`` already stored; the keys go as one JSON array (a list parameter is
        adapted value by value in Python)."""
        query = sql.SQL(
            "SELECT {k} FROM {t} WHERE {k} IN (SELECT jsonb_array_elements_text(%s::jsonb))"
        ).format(k=sql.Identifier(lyr.key), t=sql.Identifier(lyr.name))
        listed = json.dumps([k if type(k) is str else _db_value(None, k) for k in keys])
        return [r[0] for r in self.conn.execute(query, (listed,))]

    def _write_rows(self, lyr: Layer, typed: pd.DataFrame, geoms: np.ndarray | None) -> None:
        names = list(typed.columns)
        targets = [sql.Identifier(n) for n in names]
        if geoms is not None:
            targets.append(sql.Identifier(GEOM))
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(lyr.name), sql.SQL(", ").join(targets)
        )
        if codecs.lookup(self.conn.info.encoding).name == "utf-8":
            # Binary COPY built column by column in Arrow; a thread sends each block while
            # the next is built, so the server's work overlaps ours.
            fields = [lyr.field(n) for n in names]
            binary = copy_sql + sql.SQL(" (FORMAT BINARY)")
            with (
                indexes_rebuilt(self.conn, lyr.name, len(typed)),
                self.conn.cursor() as cur,
                cur.copy(binary, writer=QueuedLibpqWriter(cur)) as bc,
            ):
                for block in copy_binary_blocks(fields, typed, geoms, self.reader.epsg, _db_value):
                    bc.write(block)
                if self._ahead is not None:  # the rest is the server's: COPY, indexes
                    self._ahead.start()
            return
        with self.conn.cursor() as cur, cur.copy(copy_sql) as copy:
            columns = [_copy_column(lyr.field(n), typed[n]) for n in names]
            if geoms is not None:
                columns.append(_ewkb_hex(geoms, self.reader.epsg))
            for row in zip(*columns):
                copy.write_row(row)

    def _set(self, lyr: Layer, key: str, sets: Mapping[str, Any]) -> None:
        parts, params = [], []
        for name, value in sets.items():
            if name == "geometry":
                parts.append(
                    sql.SQL("{} = ST_GeomFromEWKB(decode(%s, 'hex'))").format(sql.Identifier(GEOM))
                )
                params.append(_ewkb_hex(np.array([value], dtype=object), self.reader.epsg)[0])
            else:
                parts.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
                params.append(_db_value(lyr.field(name), value))
        self.conn.execute(
            sql.SQL("UPDATE {} SET {} WHERE {} = %s").format(
                sql.Identifier(lyr.name), sql.SQL(", ").join(parts), sql.Identifier(lyr.key)
            ),
            [*params, key],
        )

    def _remove(self, lyr: Layer, key: str) -> None:
        self.conn.execute(
            sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                sql.Identifier(lyr.name), sql.Identifier(lyr.key)
            ),
            (key,),
        )

    def _remove_all(self, lyr: Layer) -> int:
        # DELETE, not TRUNCATE: readers keep seeing the old rows until this commits.
        return self.conn.execute(
            sql.SQL("DELETE FROM {}").format(sql.Identifier(lyr.name))
        ).rowcount

    def _write_audit(self, records: list[tuple[Any, ...]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO audit (audit_id, at, username, action, layer, feat_id, changes) "
                f"VALUES (nextval('{AUDIT_SEQUENCE}'), %s, %s, %s, %s, %s, %s)",
                [(_db_value(get_layer("audit").field("at"), rec[0]), *rec[1:]) for rec in records],
            )

    def restore(self, layer: str, frame: pd.DataFrame) -> int:
        n = super().restore(layer, frame)
        if layer == "audit" and n:
            self.conn.execute(
                f"SELECT setval('{AUDIT_SEQUENCE}', (SELECT max(audit_id) FROM audit))"
            )
        return n

    def _touch(self, layers: set[str], reshaped: set[str]) -> None:
        # Sorted, so two writers always lock revision rows in the same order.
        self.conn.execute(
            f"UPDATE {REVISIONS} SET rev = rev + 1 WHERE layer IN "
            f"(SELECT layer FROM {REVISIONS} WHERE layer = ANY(%s) ORDER BY layer FOR UPDATE)",
            (sorted(layers),),
        )
