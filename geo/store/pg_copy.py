"""Rows as PostgreSQL ``COPY ... FROM STDIN`` text, built column by column in Arrow."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from geo.layers import Field

# Rows per block of COPY text (Arrow strings hold at most 2 GiB; a block stays far below).
BLOCK_ROWS = 100_000
_NULL = "\\N"
# COPY's text format escapes these in values (the delimiter, row ends, the escape).
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
_NEEDS_ESCAPE = r"[\\\t\n\r]"
_ARROW_TYPES = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


def _text(values: pa.Array) -> pa.Array:
    """Strings escaped for COPY, missing values as ``\\N``."""
    if pc.any(pc.match_substring_regex(values, _NEEDS_ESCAPE)).as_py():
        for plain, escaped in _ESCAPES:
            values = pc.replace_substring(values, plain, escaped)
    return pc.fill_null(values, _NULL)


def _column(fld: Field, values: list[Any], convert: Callable[[Field, Any], Any]) -> pa.Array:
    """One column of typed values (plain Python, None for missing) as COPY text."""
    if fld.type in _ARROW_TYPES:
        typed = pa.array(values, type=_ARROW_TYPES[fld.type], from_pandas=True)
        return pc.fill_null(pc.cast(typed, pa.string()), _NULL)
    if fld.type == "datetime":  # aware times to UTC, per value (rare, short columns)
        values = [None if v is None else str(convert(fld, v)) for v in values]
    return _text(pa.array(values, type=pa.string(), from_pandas=True))


_HEX = np.array([f"{b:02X}".encode() for b in range(256)], dtype="S2").view(np.uint16)


def _hex(values: pa.Array) -> pa.Array:
    """Binary values as upper-case hex strings (one table lookup per byte, in numpy)."""
    values = pc.cast(values, pa.binary())
    if values.offset:  # a slice: its validity bits start mid-byte
        values = pa.concat_arrays([values])
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[
        values.offset : values.offset + len(values) + 1
    ]
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    text = _HEX[data]
    return pa.StringArray.from_buffers(
        len(values),
        pa.py_buffer((2 * (offsets - offsets[0])).astype(np.int32)),
        pa.py_buffer(text),
        values.buffers()[0],
        values.null_count,
    )


def _ewkb_hex(geoms: np.ndarray, srid: int) -> pa.Array:
    """Hex EWKB with ``srid`` (what COPY takes for a geometry column): little-endian ISO
    WKB of 2-D geometries with the SRID flag and the SRID spliced in after the type."""
    wkb = _hex(pa.array(shapely.to_wkb(geoms, byte_order=1, flavor="iso"), pa.binary()))
    head = pc.utf8_slice_codeunits(wkb, 0, 4)  # byte order, type code
    rest = pc.utf8_slice_codeunits(wkb, 10, 2**31 - 1)
    flag = "000020" + srid.to_bytes(4, "little").hex().upper()
    return pc.fill_null(pc.binary_join_element_wise(head, flag, rest, ""), _NULL)


def copy_blocks(
    fields: list[Field],
    typed: pd.DataFrame,
    geoms: np.ndarray | None,
    srid: int,
    convert: Callable[[Field, Any], Any],
) -> Iterator[memoryview]:
    """The rows of ``typed`` (columns ``fields``, then ``geoms``) as blocks of COPY text.

    Parameters
    ----------
    fields : list of Field
        The schema fields of the columns of ``typed``, in order.
    typed : DataFrame
        Values as the store's validation types them (plain Python, None for missing).
    geoms : array of geometries, optional
        2-D geometries, written last as hex EWKB with ``srid``.
    convert : callable
        ``convert(field, value)``: a datetime value as PostgreSQL takes it.
    """
    if geoms is not None and shapely.has_z(geoms).any():
        raise ValueError("COPY text takes 2-D geometries")
    for start in range(0, len(typed), BLOCK_ROWS):
        part = typed.iloc[start : start + BLOCK_ROWS]
        columns = [_column(f, part[f.name].tolist(), convert) for f in fields]
        if geoms is not None:
            columns.append(_ewkb_hex(geoms[start : start + BLOCK_ROWS], srid))
        rows = pc.binary_join_element_wise(*columns, "\t")
        rows = pc.binary_join_element_wise(rows, "\n", "")
        if isinstance(rows, pa.ChunkedArray):
            rows = rows.combine_chunks()
        offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)
        first, last = offsets[rows.offset], offsets[rows.offset + len(rows)]
        yield memoryview(rows.buffers()[2])[first:last]
