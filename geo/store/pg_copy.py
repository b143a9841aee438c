"""Rows as PostgreSQL binary ``COPY ... FROM STDIN (FORMAT BINARY)`` data, built column by
column in Arrow."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from psycopg import sql

from geo.layers import Field
from geo.store.pg_derived import OUTPUT_ONLY

# Rows per block: small enough that the server parses one block while the next is built
# (Arrow binary arrays hold at most 2 GiB; a block stays far below).
BLOCK_ROWS = 25_000
_ARROW_TYPES = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
#: A load of at least this many rows into a table holding no more rows than it adds
#: drops the table's secondary indexes and builds them again afterwards (see
#: :func:`indexes_rebuilt`).
REBUILD_ROWS = 10_000
# Memory for those index builds (sorting 1M keys in memory instead of on disk).
_BUILD_MEMORY = "256MB"


@contextmanager
def indexes_rebuilt(conn: psycopg.Connection, table: str, rows: int) -> Iterator[bool]:
    """Around a load of ``rows`` rows into ``table`` inside the open transaction: when the
    load at least doubles the table, its secondary indexes are dropped first and built
    again after it (a sorted build costs about half the server time of inserting each row
    into five indexes), and the table is analysed (:func:`analyse`), so the queries that
    follow plan with the new rows; yields whether it did.

    Dropping an index locks the table until the transaction ends: readers of this table
    wait for the load instead of reading the rows before it. Smaller loads leave the
    indexes alone (rebuilding a large table's indexes for a few rows would cost more).
    Indexes that back a constraint (the primary key) are kept.
    """
    ident = sql.Identifier(table)
    held = 0
    if rows >= REBUILD_ROWS:
        count = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT %s) s").format(ident)
        found = conn.execute(count, (rows,)).fetchone()
        held = rows if found is None else int(found[0])
    if rows < REBUILD_ROWS or held >= rows:
        yield False
        return
    indexes = secondary_indexes(conn, table)
    for name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
    yield True
    conn.execute(sql.SQL("SET LOCAL maintenance_work_mem = {}").format(sql.Literal(_BUILD_MEMORY)))
    for _, definition in indexes:
        conn.execute(definition)
    analyse(conn, table)


def secondary_indexes(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    """The name (quoted, and qualified unless on the search path) and definition of each
    index of ``table`` that backs no constraint: what a bulk load drops and builds again."""
    return conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
        "ORDER BY 1",
        (table,),
    ).fetchall()


def analyse(conn: psycopg.Connection, table: str) -> None:
    """``ANALYZE`` the columns of ``table`` that queries compare (all but
    :data:`~geo.store.pg_derived.OUTPUT_ONLY`)."""
    columns = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped AND attname <> ALL(%s) ORDER BY attnum",
        (table, list(OUTPUT_ONLY)),
    ).fetchall()
    names = sql.SQL(", ").join(sql.Identifier(name) for (name,) in columns)
    conn.execute(sql.SQL("ANALYZE {} ({})").format(sql.Identifier(table), names))


# COPY's binary format (PostgreSQL docs, "COPY: Binary Format"): a signature, flags and
# header extension length, then per row a 16-bit field count and per field a 32-bit length
# (-1 for NULL) and the value in the type's binary (network byte order) form; -1 ends it.
BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
BINARY_TRAILER = b"\xff\xff"
# Fixed-width values: numpy's big-endian form of each field type.
_FIXED = {"int": ">i8", "float": ">f8", "bool": "u1", "date": ">i4", "datetime": ">i8"}
# Days (dates) and microseconds (timestamps) count from PostgreSQL's epoch.
_PG_EPOCH = np.datetime64("2000-01-01")


def _fixed_payload(fld: Field, values: list[Any], convert: Callable[[Field, Any], Any]) -> pa.Array:
    """Values of a fixed-width type as binary values (None stays null)."""
    if fld.type == "date":
        when = np.array(values, dtype="datetime64[D]")
        missing = np.isnat(when)
        numbers: np.ndarray = (when - _PG_EPOCH).astype(np.int64)
    elif fld.type == "datetime":  # aware times to UTC, per value (rare, short columns)
        when = np.array([None if v is None else convert(fld, v) for v in values], "datetime64[us]")
        missing = np.isnat(when)
        numbers = (when - _PG_EPOCH.astype("datetime64[us]")).astype(np.int64)
    else:
        typed = pa.array(values, type=_ARROW_TYPES[fld.type], from_pandas=True)
        missing = typed.is_null().to_numpy(zero_copy_only=False)
        numbers = typed.fill_null(False if fld.type == "bool" else 0).to_numpy(zero_copy_only=False)
    payload = _fixed_width(numbers.astype(_FIXED[fld.type]))
    return pc.if_else(pa.array(missing, pa.bool_()), pa.scalar(None, pa.binary()), payload)


def _fixed_width(values: np.ndarray) -> pa.Array:
    """Each value of a numpy array as a binary value of its bytes (in the array's order)."""
    data = np.ascontiguousarray(values)
    width = data.itemsize
    offsets = np.arange(0, (len(data) + 1) * width, width, dtype=np.int32)
    return pa.BinaryArray.from_buffers(
        pa.binary(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())]
    )


def _framed(payload: pa.Array) -> pa.Array:
    """Binary values with their 32-bit big-endian length in front (-1 alone for null)."""
    lengths = pc.binary_length(payload).fill_null(-1).to_numpy(zero_copy_only=False)
    heads = _fixed_width(lengths.astype(">i4"))
    return pc.binary_join_element_wise(heads, payload.fill_null(b""), b"")


def _binary_field(fld: Field, values: list[Any], convert: Callable[[Field, Any], Any]) -> pa.Array:
    if fld.type in _FIXED:
        return _framed(_fixed_payload(fld, values, convert))
    texts = pa.array(values, type=pa.string(), from_pandas=True)
    return _framed(pc.cast(texts, pa.binary()))


def _ewkb(geoms: np.ndarray, srid: int) -> pa.Array:
    """EWKB with ``srid`` (what the geometry type's binary input takes): little-endian ISO
    WKB of 2-D geometries with the SRID flag set and the SRID spliced in after the type."""
    wkb = pa.array(shapely.to_wkb(geoms, byte_order=1, flavor="iso"), pa.binary())
    order_and_type = pc.binary_slice(wkb, 0, 4)  # the type's low bytes: 2-D codes fit
    rest = pc.binary_slice(wkb, 5, 2**31 - 1)
    flag = b"\x20" + srid.to_bytes(4, "little")  # type's high byte 0x20: an SRID follows
    return pc.binary_join_element_wise(order_and_type, flag, rest, b"")


def copy_binary_blocks(
    fields: list[Field],
    typed: pd.DataFrame,
    geoms: np.ndarray | None,
    srid: int,
    convert: Callable[[Field, Any], Any],
) -> Iterator[memoryview]:
    """The rows of ``typed`` (columns ``fields``, then ``geoms``) as blocks of binary COPY
    data, header first and trailer last (``COPY ... FROM STDIN (FORMAT BINARY)``).

    Text goes as UTF-8 (the connection's encoding must be UTF8); integers as ``bigint``,
    floats as ``double precision``, booleans, dates and times as PostgreSQL keeps them.

    Parameters
    ----------
    fields : list of Field
        The schema fields of the columns of ``typed``, in order.
    typed : DataFrame
        Values as the store's validation types them (plain Python, None for missing).
    geoms : array of geometries, optional
        2-D geometries, written last as EWKB with ``srid``.
    srid : int
    convert : callable
        ``convert(field, value)``: a datetime value as a naive UTC ``datetime``.
    """
    if geoms is not None and shapely.has_z(geoms).any():
        raise ValueError("COPY takes 2-D geometries here")
    yield memoryview(BINARY_HEADER)
    for start in range(0, len(typed), BLOCK_ROWS):
        part = typed.iloc[start : start + BLOCK_ROWS]
        columns = [_binary_field(f, part[f.name].tolist(), convert) for f in fields]
        if geoms is not None:
            columns.append(framed_geometries(geoms[start : start + BLOCK_ROWS], srid))
        yield _binary_rows(columns)
    yield memoryview(BINARY_TRAILER)


def framed_integers(values: np.ndarray) -> pa.Array:
    """Whole numbers as binary COPY values of ``integer`` (4 bytes; no nulls)."""
    return _framed(_fixed_width(np.asarray(values).astype(">i4")))


def framed_texts(values: list[str]) -> pa.Array:
    """Texts as binary COPY values (UTF-8; no nulls)."""
    return _framed(pc.cast(pa.array(values, type=pa.string()), pa.binary()))


def framed_geometries(geoms: np.ndarray, srid: int) -> pa.Array:
    """2-D geometries as binary COPY values of ``geometry`` (EWKB with ``srid``)."""
    return _framed(_ewkb(geoms, srid))


def copy_binary_columns(columns: list[pa.Array]) -> Iterator[memoryview]:
    """Columns of framed values (``framed_*``, aligned) as blocks of binary COPY data,
    header first and trailer last."""
    yield memoryview(BINARY_HEADER)
    for start in range(0, len(columns[0]) if columns else 0, BLOCK_ROWS):
        yield _binary_rows([c.slice(start, BLOCK_ROWS) for c in columns])
    yield memoryview(BINARY_TRAILER)


def _binary_rows(columns: list[pa.Array]) -> memoryview:
    """Rows of binary COPY data (no header) from aligned columns of framed values."""
    head = _fixed_width(np.full(len(columns[0]), len(columns), dtype=">i2"))
    rows = pc.binary_join_element_wise(head, *columns, b"")
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)
    first, last = offsets[rows.offset], offsets[rows.offset + len(rows)]
    return memoryview(rows.buffers()[2])[first:last]
