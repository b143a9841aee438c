"""Shapefiles: a layer's Arrow table as ``.shp``/``.shx``/``.dbf``/``.prj``/``.cpg``, built
column by column with numpy and Arrow (no per-row Python) and handed out in blocks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyproj import CRS

from geo.io import wkb
from geo.io.formats import to_arrow
from geo.io.wkb import Rings
from geo.layers import Field, Layer, get_layer

#: The DBF's widest text or number field.
DBF_MAX_WIDTH = 254
#: Beyond this a ``.shp``/``.shx`` cannot be addressed at all (offsets count 16-bit words in
#: a signed 32-bit integer); beyond ``SHP_PORTABLE_BYTES`` ArcGIS and older GDAL refuse it.
SHP_MAX_BYTES = 2**32 - 2
SHP_PORTABLE_BYTES = 2**31 - 1
# GDAL's width for a 64-bit integer field, and its width.precision for reals.
_DBF_INT64_WIDTH = 18
_DBF_REAL = (24, 15)
# Rows per block handed to the writer or the zip (bounded memory, deflate in parallel).
BLOCK_ROWS = 65_536
_SPACE, _STAR = 0x20, 0x2A
_SHAPE_TYPES = {"Point": 1, "LineString": 3, "Polygon": 5}


class ShapefileLimitWarning(UserWarning):
    """A shapefile was written although it cannot hold some values in full
    (text longer than the DBF's 254 bytes is cut), or is larger than some programs open."""


def dbf_width(fld: Field, longest: int = 0) -> int | None:
    """The DBF width a field is written with.

    Free text and ids are as wide as their longest value in UTF-8 bytes (``longest``; at
    least 1, at most the DBF's 254), as GIS programs expect and as GDAL writes them; GDAL
    widens a field when a longer value is written later (an edit, ``ogr2ogr -append``).
    Fields with a vocabulary are as wide as their longest choice, integers as the digits of
    the schema's maximum (18 without one), grown if a value needs more, so the columns
    that classify features keep one width from export to export. None for reals and
    dates (written at GDAL's 24.15 and 8).
    """
    if fld.type == "str":
        if fld.choices:
            return min(max(longest, *(len(c.encode("utf-8")) for c in fld.choices)), DBF_MAX_WIDTH)
        return min(max(longest, 1), DBF_MAX_WIDTH)
    if fld.type == "int":
        if fld.maximum is None:
            return max(_DBF_INT64_WIDTH, longest)
        sign = 1 if fld.minimum is not None and fld.minimum < 0 else 0
        return min(max(len(str(int(fld.maximum))) + sign, longest), DBF_MAX_WIDTH)
    return None


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # DBF type: C, N, L, D
    width: int
    decimals: int
    values: pa.ChunkedArray


@dataclass(frozen=True)
class Part:
    """One file of a shapefile: its suffix, its size in bytes, and its bytes in blocks."""

    suffix: str
    size: int
    blocks: Iterator[bytes | memoryview | np.ndarray]


def _byte_lengths(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.binary_length(values.cast(pa.binary()))


def _dbf_columns(layer: Layer, table: pa.Table) -> list[_Column]:
    columns = []
    for name in table.column_names:
        if name == "geometry" and layer.is_feature:
            continue
        if len(name.encode("utf-8")) > 10:
            raise ValueError(f"{layer.name}.{name}: a DBF field name holds at most 10 bytes")
        values = table.column(name)
        fld = layer.field(name) if layer.has(name) else None
        kind = values.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            longest = pc.max(_byte_lengths(values)).as_py() or 0
            width = dbf_width(fld, longest) if fld is not None and fld.type == "str" else None
            columns.append(
                _Column(name, "C", width or min(max(longest, 1), DBF_MAX_WIDTH), 0, values)
            )
        elif pa.types.is_integer(kind):
            digits = _digits(values)
            width = dbf_width(fld, digits) if fld is not None and fld.type == "int" else None
            columns.append(_Column(name, "N", width or max(_DBF_INT64_WIDTH, digits), 0, values))
        elif pa.types.is_floating(kind):
            columns.append(_Column(name, "N", *_DBF_REAL, values.cast(pa.float64())))
        elif pa.types.is_boolean(kind):
            columns.append(_Column(name, "L", 1, 0, values))
        elif pa.types.is_date(kind):
            columns.append(_Column(name, "D", 8, 0, values.cast(pa.date32())))
        else:
            raise ValueError(f"{layer.name}.{name}: no DBF type for {kind}")
    return columns


def _digits(values: pa.ChunkedArray) -> int:
    low, high = pc.min_max(values).values()
    if not low.is_valid:
        return 0
    return max(len(str(low.as_py())), len(str(high.as_py())))


def _warn_long_text(layer: Layer, table: pa.Table, columns: list[_Column]) -> None:
    """Warn (ShapefileLimitWarning) per text field holding values the DBF will cut."""
    keys = table.column(layer.key) if layer.key in table.column_names else None
    for col in columns:
        if col.kind != "C":
            continue
        over = pc.fill_null(pc.greater(_byte_lengths(col.values), DBF_MAX_WIDTH), False)
        indices = np.flatnonzero(over.to_numpy(zero_copy_only=False))
        if not len(indices):
            continue
        first = keys[int(indices[0])].as_py() if keys is not None else f"row {int(indices[0])}"
        warnings.warn(
            f"{layer.name}.{col.name}: {len(indices)} value(s) longer than the shapefile limit "
            f"of {DBF_MAX_WIDTH} bytes (first: {layer.key} {first}) were cut short in the .dbf; "
            "use --format gpkg to keep them whole",
            ShapefileLimitWarning,
            stacklevel=4,
        )


def _dbf_header(columns: list[_Column], rows: int, today: dt.date) -> bytes:
    record = 1 + sum(c.width for c in columns)
    if record > 0xFFFF:
        raise ValueError(f"a .dbf record holds at most 65,535 bytes; these fields need {record}")
    head = bytearray(32)
    head[0] = 0x03
    head[1:4] = bytes((today.year - 1900, today.month, today.day))
    head[4:8] = rows.to_bytes(4, "little")
    head[8:10] = (32 + 32 * len(columns) + 1).to_bytes(2, "little")
    head[10:12] = record.to_bytes(2, "little")
    for col in columns:
        desc = bytearray(32)
        desc[0:11] = col.name.encode("utf-8").ljust(11, b"\0")
        desc[11] = ord(col.kind)
        desc[16], desc[17] = col.width, col.decimals
        head += desc
    return bytes(head + b"\r")


def _fixed(values: pa.Array, width: int, *, right: bool) -> np.ndarray:
    """``values`` (strings, no nulls, each at most ``width`` bytes) as an ``(n, width)``
    byte matrix padded with spaces: after padding every value is ``width`` bytes, so the
    Arrow data buffer is the matrix itself."""
    pad = pc.ascii_lpad if right else pc.ascii_rpad
    padded = pad(values, width=width, padding=" ").cast(pa.binary())
    if isinstance(padded, pa.ChunkedArray):
        padded = padded.combine_chunks()
    offsets = np.frombuffer(padded.buffers()[1], dtype=np.int32, count=len(padded) + 1)
    data = np.frombuffer(padded.buffers()[2], dtype=np.uint8)
    start = offsets[padded.offset]
    return data[start : start + len(padded) * width].reshape(len(padded), width)


def _cut_utf8(values: pa.Array, width: int) -> pa.Array:
    """Values longer than ``width`` bytes cut at the last whole UTF-8 character that fits
    (the few rows warned about; the rest untouched)."""
    lengths = pc.fill_null(pc.binary_length(values.cast(pa.binary())), 0)
    over = np.flatnonzero(lengths.to_numpy(zero_copy_only=False) > width)
    if not len(over):
        return values
    items = values.to_pylist()
    for i in over.tolist():
        items[i] = items[i].encode("utf-8")[:width].decode("utf-8", "ignore")
    return pa.array(items, type=pa.string())


def _numbers_as_text(values: pa.Array) -> pa.Array:
    """Reals as their shortest round-trip decimal text, positional where it fits the field
    (Arrow writes ``1e-7``; DBF readers expect digits); NaN and infinities as nulls."""
    finite = pc.is_finite(values)
    text = pc.if_else(finite, values, pa.scalar(None, pa.float64())).cast(pa.string())
    expo = pc.fill_null(pc.match_substring(text, "e"), False)
    rows = np.flatnonzero(expo.to_numpy(zero_copy_only=False))
    if len(rows):
        items = text.to_pylist()
        for i in rows.tolist():
            plain = np.format_float_positional(float(values[i].as_py()), trim="-")
            if len(plain) <= _DBF_REAL[0]:
                items[i] = plain
        text = pa.array(items, type=pa.string())
    return text


def _field_bytes(col: _Column, values: pa.Array) -> np.ndarray:
    """One column of a block as its ``(rows, width)`` DBF bytes (GDAL's null markers:
    ``*`` for numbers, ``?`` for booleans, zeros for dates, spaces for text)."""
    if col.kind == "C":
        text = _cut_utf8(values, col.width)
        return _fixed(pc.fill_null(text, ""), col.width, right=False)
    if col.kind == "L":
        flags = pc.if_else(values, "T", "F")
        return _fixed(pc.fill_null(flags, "?"), 1, right=False)
    if col.kind == "D":
        text = pc.replace_substring(values.cast(pa.string()), "-", "")
        return _fixed(pc.fill_null(text, "00000000"), 8, right=False)
    text = _numbers_as_text(values) if col.decimals else values.cast(pa.string())
    return _fixed(pc.fill_null(text, "*" * col.width), col.width, right=True)


def _dbf_blocks(columns: list[_Column], rows: int, header: bytes) -> Iterator[np.ndarray | bytes]:
    yield header
    record = 1 + sum(c.width for c in columns)
    for start in range(0, rows, BLOCK_ROWS):
        count = min(BLOCK_ROWS, rows - start)
        block = np.empty((count, record), dtype=np.uint8)
        block[:, 0] = _SPACE  # not deleted
        at = 1
        for col in columns:
            values = col.values.slice(start, count).combine_chunks()
            block[:, at : at + col.width] = _field_bytes(col, values)
            at += col.width
        yield block
    yield b"\x1a"


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _Shapes:
    """The ``.shp`` laid out: record ``i`` starts ``starts[i]`` 4-byte words into the file
    and holds ``lengths[i]`` words after its 2-word header."""

    shape_type: int
    starts: np.ndarray
    lengths: np.ndarray
    parts: np.ndarray  # per row
    points: np.ndarray  # per row
    box: np.ndarray  # (rows, 4) xmin, ymin, xmax, ymax; zeros for null shapes
    rings: Rings  # polygon rings oriented as shapefiles have them

    @property
    def size(self) -> int:
        return int(4 * (self.starts[-1] + 2 + self.lengths[-1])) if len(self.starts) else 100

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        drawn = self.box[self.points > 0]
        if not len(drawn):
            return (0.0, 0.0, 0.0, 0.0)
        low, high = drawn[:, :2].min(axis=0), drawn[:, 2:].max(axis=0)
        return (float(low[0]), float(low[1]), float(high[0]), float(high[1]))


def _ring_orientation_fixed(
    coords: np.ndarray, offsets: np.ndarray, exterior: np.ndarray
) -> np.ndarray:
    """Coordinates with exteriors clockwise and holes counter-clockwise, as the shapefile
    specification has them (shapely and GeoJSON draw exteriors counter-clockwise)."""
    if not len(coords):
        return coords
    starts, sizes = offsets[:-1], np.diff(offsets)
    # relative to each ring's first point: large UTM coordinates would cancel otherwise
    local = coords - np.repeat(coords[starts], sizes, axis=0)
    x, y = local[:, 0], local[:, 1]
    cross = np.empty(len(coords))
    cross[:-1] = x[:-1] * y[1:] - x[1:] * y[:-1]
    cross[-1] = 0.0
    area2 = np.add.reduceat(cross, starts) - cross[offsets[1:] - 1]  # without the wrap term
    flip = np.flatnonzero((area2 > 0) == exterior)  # an exterior drawn CCW, a hole CW
    if not len(flip):
        return coords
    index = np.arange(len(coords))
    lengths = sizes[flip]
    first = np.repeat(starts[flip], lengths)
    offset = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    index[first + offset] = first + np.repeat(lengths, lengths) - 1 - offset
    return coords[index]


def _shapes(layer: Layer, column: pa.ChunkedArray) -> _Shapes:
    geometry = str(layer.geometry)
    kind = _SHAPE_TYPES[geometry]
    found = wkb.rings(column, geometry)
    rows = len(column)
    parts, points = found.per_row(rows)
    if kind == 5:
        coords = _ring_orientation_fixed(found.coords, found.offsets, found.exterior)
        found = dataclasses.replace(found, coords=coords)
    present = points > 0
    lengths = np.where(present, 5 if kind == 1 else 11 + parts + 4 * points, 1)
    starts = 25 + np.concatenate(([0], np.cumsum(lengths[:-1] + 2))) if rows else np.zeros(0)
    box = np.zeros((rows, 4))
    if present.any():
        first = np.concatenate(([0], np.cumsum(points)))[:-1][present]
        x, y = found.coords[:, 0], found.coords[:, 1]
        box[present] = np.column_stack(
            [
                np.minimum.reduceat(x, first),
                np.minimum.reduceat(y, first),
                np.maximum.reduceat(x, first),
                np.maximum.reduceat(y, first),
            ]
        )
    return _Shapes(
        kind, starts.astype(np.int64), lengths.astype(np.int64), parts, points, box, found
    )


def _be(values: np.ndarray) -> np.ndarray:
    return np.asarray(values).astype(">i4").view("<i4")


def _shp_header(shapes: _Shapes, size: int) -> bytes:
    head = np.zeros(25, dtype="<i4")
    head[0] = _be(np.array([9994]))[0]
    head[6] = _be(np.array([size // 2]))[0]
    head[7], head[8] = 1000, shapes.shape_type
    head[9:17] = np.array(shapes.bounds, dtype="<f8").view("<i4")
    return head.tobytes()


def _shp_blocks(shapes: _Shapes) -> Iterator[bytes | np.ndarray]:
    yield _shp_header(shapes, shapes.size)
    rows = len(shapes.starts)
    point_first = np.concatenate(([0], np.cumsum(shapes.points)))
    part_first = np.concatenate(([0], np.cumsum(shapes.parts)))
    for start in range(0, rows, BLOCK_ROWS):
        stop = min(rows, start + BLOCK_ROWS)
        yield _shp_records(shapes, start, stop, point_first, part_first)


def _shp_records(
    shapes: _Shapes, start: int, stop: int, point_first: np.ndarray, part_first: np.ndarray
) -> np.ndarray:
    """Records ``start``..``stop`` as one int32 array, filled by scatters (no row loop)."""
    at = shapes.starts[start:stop] - shapes.starts[start]
    lengths = shapes.lengths[start:stop]
    words = np.zeros(int(at[-1] + 2 + lengths[-1]), dtype="<i4")
    words[at] = _be(np.arange(start + 1, stop + 1))
    words[at + 1] = _be(2 * lengths)
    present = lengths > 1
    words[at + 2] = np.where(present, shapes.shape_type, 0)
    at, rows = at[present], np.flatnonzero(present) + start
    p0, p1 = point_first[start], point_first[stop]
    coords = shapes.rings.coords[p0:p1].view("<i4").reshape(-1, 4)
    if shapes.shape_type == 1:
        words[at[:, None] + np.arange(3, 7)] = coords
        return words
    words[at[:, None] + np.arange(3, 11)] = shapes.box[rows].view("<i4")
    nparts, npoints = shapes.parts[rows], shapes.points[rows]
    words[at + 11] = nparts
    words[at + 12] = npoints
    q0, q1 = part_first[start], part_first[stop]
    part_row = np.repeat(np.arange(len(rows)), nparts)
    words[at[part_row] + 13 + np.arange(q1 - q0) - (part_first[rows] - q0)[part_row]] = (
        shapes.rings.offsets[q0:q1] - point_first[rows][part_row]
    )
    point_row = np.repeat(np.arange(len(rows)), npoints)
    point_index = np.arange(p1 - p0) - (point_first[rows] - p0)[point_row]
    dest = at[point_row] + 13 + nparts[point_row] + 4 * point_index
    words[dest[:, None] + np.arange(4)] = coords
    return words


def _shx_blocks(shapes: _Shapes) -> Iterator[bytes | np.ndarray]:
    yield _shp_header(shapes, 100 + 8 * len(shapes.starts))
    index = np.empty((len(shapes.starts), 2), dtype="<i4")
    index[:, 0] = _be(2 * shapes.starts)
    index[:, 1] = _be(2 * shapes.lengths)
    yield index


@functools.lru_cache(maxsize=32)
def prj_text(epsg: int) -> bytes:
    """The ``.prj`` of EPSG:``epsg``: ESRI WKT1 on one line, as GDAL writes it."""
    return CRS.from_epsg(epsg).to_wkt("WKT1_ESRI").encode("ascii")


def shapefile_parts(
    layer: Layer, table: pa.Table, *, epsg: int | None, today: dt.date | None = None
) -> list[Part]:
    """The files of ``table`` written as a shapefile, in the order they are to be written.

    ``table`` is typed by the layer schema (:func:`geo.io.formats.to_arrow`), geometry as
    ISO WKB in ``geometry``; ``epsg`` is its CRS (required for features). A table without
    geometry is a lone ``.dbf`` with its ``.cpg``. Warns (ShapefileLimitWarning) for text
    longer than 254 bytes and for a ``.shp`` or ``.dbf`` above 2 GiB.

    Raises
    ------
    ValueError
        For a ``.shp`` beyond the 4 GiB the format can address, a geometry the layer's
        shape type cannot hold, or fields a DBF cannot hold.
    """
    columns = _dbf_columns(layer, table)
    _warn_long_text(layer, table, columns)
    header = _dbf_header(columns, table.num_rows, today or dt.date.today())
    dbf_size = len(header) + table.num_rows * (1 + sum(c.width for c in columns)) + 1
    out = []
    if layer.is_feature:
        if epsg is None:
            raise ValueError("the rows carry no EPSG CRS; give the shapefile's epsg")
        shapes = _shapes(layer, table.column("geometry"))
        check_size(f"{layer.name}.shp", shapes.size)
        out += [
            Part(".shp", shapes.size, _shp_blocks(shapes)),
            Part(".shx", 100 + 8 * table.num_rows, _shx_blocks(shapes)),
        ]
    check_size(f"{layer.name}.dbf", dbf_size, addressed=False)
    out.append(Part(".dbf", dbf_size, _dbf_blocks(columns, table.num_rows, header)))
    if layer.is_feature:
        prj = prj_text(int(epsg))  # type: ignore[arg-type]
        out.append(Part(".prj", len(prj), iter([prj])))
    out.append(Part(".cpg", 5, iter([b"UTF-8"])))
    return out


def check_size(name: str, size: int, *, addressed: bool = True) -> None:
    """Refuse a ``.shp``/``.shx`` beyond what its 32-bit word offsets address (ValueError);
    warn (ShapefileLimitWarning) for any part above 2 GiB, which ArcGIS will not open."""
    if addressed and size > SHP_MAX_BYTES:
        raise ValueError(
            f"{name} would be {size / 2**30:.1f} GiB; a shapefile holds at most 4 GiB. "
            "Export as gpkg, or narrow the export with filters"
        )
    if size > SHP_PORTABLE_BYTES:
        warnings.warn(
            f"{name} is {size / 2**30:.1f} GiB; ArcGIS and some other programs open "
            "shapefiles of at most 2 GiB (use --format gpkg for them)",
            ShapefileLimitWarning,
            stacklevel=3,
        )


def write_parts(parts: list[Part], directory: Path, stem: str) -> list[Path]:
    """Write ``parts`` as ``<stem><suffix>`` files in ``directory``."""
    paths = []
    for part in parts:
        path = directory / f"{stem}{part.suffix}"
        with open(path, "wb") as fh:
            for block in part.blocks:
                fh.write(block.data if isinstance(block, np.ndarray) else block)
        paths.append(path)
    return paths


def _epsg(frame: pd.DataFrame | pa.Table, epsg: int | None) -> int:
    if epsg is not None:
        return epsg
    crs = None if isinstance(frame, pa.Table) else getattr(frame, "crs", None)
    code = crs.to_epsg() if crs is not None else None
    if code is None:
        raise ValueError("the rows carry no EPSG CRS; give the shapefile's epsg")
    return int(code)


def write_shapefile(
    layer: Layer | str,
    frame: pd.DataFrame | pa.Table,
    directory: Path | str,
    *,
    name: str | None = None,
    epsg: int | None = None,
) -> Path:
    """Write one layer as ``<name>.shp/.shx/.dbf/.prj/.cpg`` (UTF-8) in ``directory``.

    Field widths follow :func:`dbf_width`; dates are DBF dates. A table (no geometry) is
    written as a lone ``.dbf`` (with ``.cpg``). Text longer than the DBF's 254 bytes is
    cut; a :class:`ShapefileLimitWarning` names the layer, field, count and first feature.
    ``frame`` is a GeoDataFrame or an Arrow table already typed by the schema
    (:func:`geo.io.formats.typed_table`); ``epsg`` is the rows' CRS (default: the
    frame's; required for an Arrow table of features).

    Returns
    -------
    Path
        The ``.shp`` written (the ``.dbf`` for tables).
    """
    layer = get_layer(layer) if isinstance(layer, str) else layer
    table = frame if isinstance(frame, pa.Table) else to_arrow(layer, frame)
    code = _epsg(frame, epsg) if layer.is_feature else None
    parts = shapefile_parts(layer, table, epsg=code)
    return write_parts(parts, Path(directory), name or layer.name)[0]
