"""Reading one layer of any supported file as it is: kinds of file, zipped shapefiles,
DBF headers and encodings, GeoPackage layers, GeoJSON text."""

from __future__ import annotations

import codecs
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import pyogrio.errors
from pyproj import CRS
from pyproj.exceptions import CRSError

from geo import archive
from geo.io.formats import CLI_OPTIONS, PYOGRIO_ERRORS, Source
from geo.layers import Layer
from geo.validate import (
    Problem,
    ValidationError,
)


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    by_suffix = {
        ".zip": "zip",
        ".shp": "shp",
        ".gpkg": "gpkg",
        ".geojson": "geojson",
        ".json": "geojson",
        ".dbf": "dbf",
        ".csv": "csv",
    }
    if suffix in by_suffix:
        return by_suffix[suffix]
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    if head.startswith(b"PK"):
        return "zip"
    if head.lstrip()[:1] == b"{":
        return "geojson"
    raise ValueError(
        f"{path.name}: unknown file type; give a zipped shapefile (.zip), a .shp, "
        "a GeoPackage (.gpkg) or GeoJSON (.geojson)"
    )


def _safe_name(filename: str | None, default: str) -> str:
    base = re.sub(r"[^\w.\-]+", "_", Path(str(filename or "")).name).lstrip(".")
    return base or default


def materialise(source: Source, filename: str | None, tmp: Path) -> Path:
    """A path on disk for ``source`` (uploads are written into ``tmp``)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            raise ValueError(f"{source} is a folder; give a file")
        if not path.is_file():
            raise FileNotFoundError(f"no file {path}")
        return path
    data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else source.read()
    path = tmp / _safe_name(
        filename or getattr(source, "filename", None) or getattr(source, "name", None), "upload"
    )
    path.write_bytes(data)
    return path


_KIND_NAMES = {
    "geojson": "GeoJSON",
    "gpkg": "GeoPackage",
    "shp": "shapefile",
    "dbf": "dBASE table (.dbf)",
    "csv": "CSV table",
}


def _unreadable(path: Path, kind: str, err: Exception) -> ValueError:
    """``FILE is not a readable GeoJSON (GDAL: <its first sentence>)``, without GDAL's
    advice about driver prefixes (which means nothing to our users)."""
    text = str(err).strip().replace(str(path), path.name)
    text = re.sub(r"^sqlite3_\w+\(.*\)\s*failed:\s*", "", text, flags=re.S)  # SQL GDAL ran
    first = re.split(r"(?<=\.)[;\s]", text, maxsplit=1)[0].strip() if text else type(err).__name__
    parts = first.split("; ")
    if all(p.startswith(parts[0]) for p in parts):  # "not a database; not a database: ..."
        first = parts[0]
    what = _KIND_NAMES.get(kind, "vector file")
    return ValueError(f"{path.name} is not a readable {what} (GDAL: {first})")


@dataclass
class Raw:
    """One layer of a file as read: attributes, raw WKB (None for tables), CRS text, what
    kind of file it was, a description for messages, and text that is not UTF-8."""

    attrs: pd.DataFrame
    wkb: np.ndarray | None
    crs: str | None
    kind: str
    desc: str
    bad_text: list[tuple[str, int, bytes]] = dc_field(default_factory=list)
    encoding: str | None = None


def _read_raw(
    path: Path,
    *,
    layer_name: str | None = None,
    encoding: str | None = None,
    kind: str = "",
    desc: str = "",
) -> Raw:
    """Read one layer of a file; text columns that are not UTF-8 are kept as read
    (with U+FFFD) and listed in ``bad_text`` by field and row."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # GDAL's notes (unclosed rings)
            meta, table = pyogrio.read_arrow(path, layer=layer_name, encoding=encoding)
    except PYOGRIO_ERRORS as err:
        raise _unreadable(path, kind, err) from None
    geom_col = meta.get("geometry_name") or "wkb_geometry"
    wkb = None
    if meta.get("geometry_type") and geom_col in table.column_names:
        wkb = table[geom_col].to_numpy(zero_copy_only=False)
        table = table.drop_columns([geom_col])
    table, bad = _utf8_columns(table)
    return Raw(table.to_pandas(), wkb, meta.get("crs"), kind, desc or path.name, bad, encoding)


def _utf8_columns(table: pa.Table) -> tuple[pa.Table, list[tuple[str, int, bytes]]]:
    """The table with text that is not UTF-8 decoded leniently, and where it was."""
    bad: list[tuple[str, int, bytes]] = []
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if not pa.types.is_string(column.type):
            continue
        try:
            column.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        raw = column.cast(pa.binary()).to_pylist()
        texts = []
        for row, value in enumerate(raw):
            try:
                texts.append(None if value is None else value.decode("utf-8"))
            except UnicodeDecodeError:
                bad.append((name, row, value))
                texts.append(value.decode("utf-8", errors="replace"))
        table = table.set_column(i, name, pa.array(texts, type=pa.string()))
    return table, bad


def _dbf_encoding(dbf: Path | None) -> str | None:
    """UTF-8 for a ``.dbf`` without ``.cpg`` or code-page byte whose text is UTF-8."""
    if dbf is None:
        return None
    with open(dbf, "rb") as fh:
        head = fh.read(4 << 20)
    if len(head) > 29 and head[29] != 0:
        return None  # GDAL honours the language-driver byte
    try:
        head[:-4].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "UTF-8"


_DBF_VERSIONS = {0x02, 0x03, 0x04, 0x05, 0x30, 0x31, 0x32, 0x43, 0x63, 0x83, 0x8B, 0xCB, 0xF5, 0xFB}


def _check_dbf(dbf: Path | None, desc: str) -> None:
    """Refuse a ``.dbf`` whose header is damaged (GDAL would read no fields at all).

    A dBASE header is a version byte, a record count, the header length
    (32 bytes per field plus 33) and the record length; together they fix the
    file's size.
    """
    if dbf is None:
        return
    with open(dbf, "rb") as fh:
        head = fh.read(32)
    size = dbf.stat().st_size
    ok = len(head) == 32 and head[0] in _DBF_VERSIONS
    if ok:
        records = int.from_bytes(head[4:8], "little")
        header = int.from_bytes(head[8:10], "little")
        record = int.from_bytes(head[10:12], "little")
        ok = (
            header >= 33
            and (header - 33) % 32 in (0, 31)
            and record >= 1
            and header + records * record <= size <= header + records * record + 1 + 1
        )
    if not ok:
        raise ValueError(
            f"{desc}: its attribute table {dbf.name} is damaged (not a dBASE "
            "header, or its size does not match the records it declares); "
            "export the layer again"
        )


def _gpkg_layer(
    path: Path, layer: str, src_layer: str | None, options: Mapping[str, str] = CLI_OPTIONS
) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            names = [str(n) for n, _ in pyogrio.list_layers(path)]
    except PYOGRIO_ERRORS as err:
        raise _unreadable(path, "gpkg", err) from None
    if not names:
        raise ValueError(f"{path.name} holds no layers")
    if src_layer is not None:
        match = [n for n in names if n.lower() == src_layer.lower()]
        if not match:
            raise ValueError(
                f"{path.name} has no layer {src_layer!r}; it holds: {', '.join(names)}"
            )
        return match[0]
    if len(names) == 1:
        return names[0]
    if layer in names:
        return layer
    raise ValueError(
        f"{path.name} holds several layers ({', '.join(names)}); "
        f"choose one with {options['src_layer']}"
    )


def read_path(
    path: Path,
    layer: Layer,
    src_layer: str | None,
    encoding: str | None,
    options: Mapping[str, str],
    tmp: Path,
) -> Raw:
    """Read any supported file (``encoding`` overrides what the file says of its text)."""
    kind = _kind(path)
    if kind == "zip":
        with archive.extracted(path) as folder:
            member = archive.find_dataset(
                folder, layer=layer.name, src_layer=src_layer, choose=options["src_layer"]
            )
            raw = read_path(
                member,
                layer,
                None if member.suffix.lower() == ".shp" else src_layer,
                encoding,
                options,
                tmp,
            )
            raw.desc = f"{path.name}:{member.name}"
            return raw
    if kind in ("shp", "dbf"):
        if kind == "shp":
            archive.require_siblings(path)
        dbf = archive.sibling(path, ".dbf") if kind == "shp" else path
        _check_dbf(dbf, path.name)
        enc = encoding or (None if archive.sibling(path, ".cpg") else _dbf_encoding(dbf))
        prj = archive.sibling(path, ".prj") if kind == "shp" else None
        try:
            raw = _read_raw(path, encoding=enc, kind=kind)
        except ValueError:
            if prj is not None and not _parses_as_crs(prj):
                raise _bad_prj(path, prj, options) from None
            raise
        if kind == "shp" and prj is None:
            raw.crs = None
        elif prj is not None and raw.crs is None:
            raise _bad_prj(path, prj, options)
        return raw
    if kind == "gpkg":
        name = _gpkg_layer(path, layer.name, src_layer, options)
        return _read_raw(path, layer_name=name, kind=kind, desc=f"{path.name}:{name}")
    if kind == "geojson":
        _refuse_control_characters(path, layer)
        if encoding and codecs.lookup(encoding).name != "utf-8":
            return _read_raw(_as_utf8(path, encoding, tmp), kind=kind, desc=path.name)
    return _read_raw(path, kind=kind)


def _parses_as_crs(prj: Path) -> bool:
    try:
        CRS.from_user_input(prj.read_text(encoding="utf-8", errors="replace"))
        return True
    except CRSError:
        return False


def _bad_prj(path: Path, prj: Path, options: Mapping[str, str]) -> ValueError:
    text = prj.read_bytes()[:60].decode("utf-8", errors="replace").strip()
    return ValueError(
        f"{path.name}: its {prj.name} cannot be understood as a coordinate "
        f"system (it starts {text!r}); replace it with the layer's .prj, or "
        f"delete it and give the CRS with {options['crs']}"
    )


def _as_utf8(path: Path, encoding: str, tmp: Path) -> Path:
    """A UTF-8 copy of a text file written in ``encoding`` (GDAL reads JSON as UTF-8)."""
    try:
        text = path.read_bytes().decode(encoding)
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path.name} is not {encoding} text either (byte {err.start}: "
            f"{err.object[err.start : err.start + 4]!r})"
        ) from None
    out = tmp / f"utf8-{path.name}"
    out.write_text(text, encoding="utf-8")
    return out


_JSON_CONTROL = re.compile(rb"\\u00[01][0-9a-fA-F]|\\u007[fF]")


def _refuse_control_characters(path: Path, layer: Layer) -> None:
    """Refuse GeoJSON text holding control characters (``\\u0000`` would be cut by GDAL:
    ``B-0\\u000058`` read as ``B-0``); names the feature and field."""
    with open(path, "rb") as fh:
        data = fh.read()
    if not _JSON_CONTROL.search(data):
        return
    try:
        features = json.loads(data).get("features") or []
    except (ValueError, AttributeError):
        return  # not JSON we can walk: GDAL's own message follows
    problems = []
    for i, feature in enumerate(features):
        props = (feature or {}).get("properties") or {}
        for name, value in props.items():
            if isinstance(value, str) and _CONTROL_TEXT.search(value):
                key = props.get(layer.key)
                problems.append(
                    Problem(
                        i,
                        None if key is None else repr(key)[1:-1],
                        str(name),
                        f"{value[:40]!r} holds a control character (such as NUL); remove it",
                    )
                )
    if problems:
        raise ValidationError(problems)


_CONTROL_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
