"""Exports: layers of the store to a zipped shapefile, a GeoPackage or GeoJSON, written
atomically."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyogrio
import pyogrio.errors

from geo import archive
from geo.crs import WGS84_EPSG, parse_epsg
from geo.io.formats import (
    FORMATS,
    GEOJSON_DECIMALS,
    GPKG_VERSION,
    MEDIA_TYPES,
    NEVER_EXPORTED,
    PYOGRIO_ERRORS,
    first_line,
    to_arrow,
)
from geo.io.shapefile import shapefile_parts, write_parts
from geo.layers import LAYERS, Layer, get_layer
from geo.store import Null, Range
from geo.validate import (
    coerce_value,
)


def export_layer_names(layers: str | Sequence[str], *, include_private: bool = True) -> list[str]:
    """Resolve ``"all"`` or names into the layers to export.

    ``all`` means every public layer: the feature layers and ``targets``
    (never ``users``, ``applications`` or ``audit``). Naming a private layer
    explicitly exports it only when ``include_private`` (the CLI, which has
    the store file anyway); ``users`` is never exported.

    Raises
    ------
    KeyError, ValueError
        For unknown layers or layers that may not be exported.
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    if names == ["all"]:
        return [n for n, lyr in LAYERS.items() if lyr.public]
    out = []
    for name in names:
        lyr = get_layer(name)
        if lyr.name in NEVER_EXPORTED or (not lyr.public and not include_private):
            raise ValueError(f"{lyr.name} is never exported")
        out.append(lyr.name)
    return out


def parse_where(layer: str, items: Iterable[str]) -> dict[str, Any]:
    """Turn ``FIELD=VALUE`` strings into a typed ``where`` for ``Store.read``.

    Different fields are ANDed; a field given twice matches either value.

    Raises
    ------
    ValueError
        For malformed items, unknown fields, or values the field cannot hold.
    """
    pairs: list[tuple[str, str]] = []
    for item in items:
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--where {item!r}: use FIELD=VALUE")
        pairs.append((name.strip(), value))
    where: dict[str, list[Any]] = {}
    for name, value in pairs:
        where.setdefault(name, []).append(value)
    return check_where(layer, where)


def check_where(layer: str, where: Mapping[str, Any]) -> dict[str, Any]:
    """Type the values of a ``{field: value or [values]}`` filter by the schema.

    Raises
    ------
    ValueError
        Naming the unknown field (and the known ones) or the bad value.
    """
    lyr = get_layer(layer)
    out: dict[str, Any] = {}
    fields = [f.name for f in lyr.export_fields]
    for name, value in where.items():
        if name not in fields:
            raise ValueError(f"{lyr.name} has no field {name!r}; its fields: {', '.join(fields)}")
        if isinstance(value, (Null, Range)):  # already a typed store condition
            out[name] = value
            continue
        fld = dataclasses.replace(lyr.field(name), required=True)
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        typed = []
        for v in values:
            try:
                typed.append(coerce_value(fld, v))
            except ValueError as err:
                raise ValueError(f"{lyr.name}.{name} = {v!r}: {err}") from None
        out[name] = typed if len(typed) != 1 else typed[0]  # [] matches nothing
    return out


def _default_crs(fmt: str, crs: int | str | None, store_epsg: int) -> int:
    if crs is not None:
        return parse_epsg(crs)
    return WGS84_EPSG if fmt == "geojson" else store_epsg


def _frame_for_export(
    store: Any, name: str, where: Mapping[str, Any] | None, epsg: int, schema: Layer | None = None
) -> pd.DataFrame | pa.Table:
    """The rows to export: straight from the store's file as Arrow when the store can
    hand them over that way (a GeoPackage read by GDAL, no per-row Python), else a frame."""
    if where is None and epsg == store.epsg and hasattr(store, "read_arrow"):
        table = store.read_arrow(name, schema or get_layer(name))
        if table is not None:
            return table
    frame = store.read(name, where=where)
    if get_layer(name).is_feature and epsg != store.epsg:
        frame = frame.to_crs(epsg)
    return frame


def _as_table(layer: Layer, frame: pd.DataFrame | pa.Table) -> pa.Table:
    return frame if isinstance(frame, pa.Table) else to_arrow(layer, frame)


def _write_geojson(layer: Layer, frame: pd.DataFrame | pa.Table, path: Path, epsg: int) -> Path:
    rfc = epsg == WGS84_EPSG
    options = {"RFC7946": "YES", "COORDINATE_PRECISION": GEOJSON_DECIMALS} if rfc else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "no SRS" for tables
        _write_geojson_arrow(layer, frame, path, epsg, options)
    return path


def _write_geojson_arrow(
    layer: Layer, frame: pd.DataFrame | pa.Table, path: Path, epsg: int, options: dict[str, Any]
) -> None:
    pyogrio.write_arrow(
        _as_table(layer, frame),
        path,
        driver="GeoJSON",
        layer=layer.name,
        geometry_name="geometry" if layer.is_feature else None,
        geometry_type=layer.geometry if layer.is_feature else None,
        crs=f"EPSG:{epsg}" if layer.is_feature else None,
        layer_options={**options, "WRITE_NAME": "YES"},
    )


def _write_gpkg_layer(layer: Layer, frame: pd.DataFrame | pa.Table, path: Path, epsg: int) -> None:
    options = {"DESCRIPTION": layer.label, "IDENTIFIER": layer.name}
    if layer.is_feature:
        options.update(SPATIAL_INDEX="YES", GEOMETRY_NAME="geom")
    pyogrio.write_arrow(
        _as_table(layer, frame),
        path,
        driver="GPKG",
        layer=layer.name,
        geometry_name="geometry" if layer.is_feature else None,
        geometry_type=layer.geometry if layer.is_feature else None,
        crs=f"EPSG:{epsg}" if layer.is_feature else None,
        layer_options=options,
        append=path.exists(),
        dataset_options=None if path.exists() else {"VERSION": GPKG_VERSION},
    )


def export_layers(
    store: Any,
    layers: str | Sequence[str],
    fmt: str,
    out_path: Path | str,
    *,
    crs: int | str | None = None,
    where: Mapping[str, Any] | None = None,
    include_private: bool = True,
    fields: Sequence[str] | None = None,
    zip_level: int = archive.DEFAULT_ZIP_LEVEL,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Export layers of the store to one file, written atomically.

    Parameters
    ----------
    store : Store
    layers : str or sequence of str
        Layer names, or ``"all"`` (see :func:`export_layer_names`).
    fmt : {"shp", "gpkg", "geojson"}
        ``shp``: a zip of ``<layer>.shp/.shx/.dbf/.prj/.cpg`` at its top level
        (tables as ``<layer>.dbf`` + ``.cpg``), or, when ``out_path`` ends in
        ``.shp`` and one layer is exported, the plain files ``<stem>.shp``,
        ``.shx``, ``.dbf``, ``.prj``, ``.cpg`` beside each other (a table:
        ``<stem>.dbf`` + ``.cpg``); ``gpkg``: one GeoPackage with
        every layer; ``geojson``: one FeatureCollection for a single layer, a
        zip of ``<layer>.geojson`` files for several.
    out_path : path-like
        The file to write; it appears only once complete (temporary file
        beside it, then a rename), so a failure leaves nothing half-written.
        An existing file is overwritten, except the store's own file (refused).
    crs : int or str, optional
        EPSG code of the output. Default: the store's CRS, and WGS84 (RFC
        7946, 9 decimals) for GeoJSON; GeoJSON in another CRS carries a
        ``crs`` member.
    where : mapping, optional
        ``{field: value or [values]}`` typed by :func:`check_where`; only with
        a single layer.
    include_private : bool
        Allow naming ``applications`` or ``audit`` explicitly.
    fields : sequence of str, optional
        Write only these fields (the key always); only with a single layer.
    zip_level : int
        Deflate level of zip outputs (1 fastest, 9 smallest).
    progress : callable, optional
        Called with a short message per layer written.

    Returns
    -------
    Path
        ``out_path`` (for a table written as a plain shapefile: its ``.dbf``).

    Raises
    ------
    ValueError
        Unknown format or layer, a ``where`` on several layers, bad CRS, a
        ``.shp`` for several layers, ``out_path`` being the store's own file.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    names = export_layer_names(layers, include_private=include_private)
    if where and len(names) != 1:
        raise ValueError("--where filters one layer; name the layer instead of 'all'")
    where = check_where(names[0], where) if where else None
    if fields is not None and len(names) != 1:
        raise ValueError("fields narrow one layer; name the layer instead of 'all'")
    schemas = {name: _export_schema(name, fields) for name in names}
    epsg = _default_crs(fmt, crs, store.epsg)
    out = Path(out_path)
    plain_shp = fmt == "shp" and out.suffix.lower() == ".shp"
    if plain_shp and len(names) > 1:
        raise ValueError(f"{out.name}: a .shp holds one layer; use a .zip for several layers")
    targets = [out.with_suffix(s) for s in archive.SHAPEFILE_PARTS] if plain_shp else [out]
    _refuse_store_file(store, targets)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if plain_shp:
            return _export_plain_shapefile(
                store, schemas[names[0]], work, out, epsg, where, progress
            )
        result = _export_into(
            store, list(schemas.values()), fmt, work, epsg, where, zip_level, progress
        )
        os.replace(result, out)
    except PYOGRIO_ERRORS as err:
        raise ValueError(f"could not write {out.name}: {first_line(err)}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _export_schema(name: str, fields: Sequence[str] | None) -> Layer:
    """Layer ``name``'s schema narrowed to ``fields`` (and its key) when given."""
    lyr = get_layer(name)
    if fields is None:
        return lyr
    keep = {*fields, lyr.key}
    return dataclasses.replace(lyr, fields=tuple(f for f in lyr.fields if f.name in keep))


def _refuse_store_file(store: Any, targets: list[Path]) -> None:
    """Refuse to write over the store's own file (it would lose every other layer)."""
    from geo.store import is_url

    if is_url(store.describe()):
        return
    db = Path(store.describe())
    for target in targets:
        try:
            same = target.exists() and db.exists() and os.path.samefile(target, db)
        except OSError:
            same = False
        if same or target.resolve() == db.resolve():
            raise ValueError(
                f"{target} is the store itself (--db {db}); writing the export "
                "there would destroy every other layer. Choose another output "
                "file; nothing was written"
            )


_STALE_SHAPEFILE_SIDECARS = (".qix", ".sbn", ".sbx", ".shp.xml", ".cpg", ".prj")


def _export_plain_shapefile(
    store: Any,
    lyr: Layer,
    work: Path,
    out: Path,
    epsg: int,
    where: Mapping[str, Any] | None,
    progress: Callable[[str], None] | None,
) -> Path:
    """Write one layer as ``<stem>.shp/.shx/.dbf/.prj/.cpg`` beside ``out``.

    The files are written in ``work`` and renamed into place, ``.shp`` (or the
    table's ``.dbf``) last; sidecars of an earlier file of that name (spatial
    indexes, an old ``.prj``) are removed so they cannot describe the new one.
    """
    name = lyr.name
    table = _as_table(lyr, _frame_for_export(store, name, where, epsg, lyr))
    written = write_parts(shapefile_parts(lyr, table, epsg=epsg), work, out.stem)[0]
    for suffix in _STALE_SHAPEFILE_SIDECARS:
        stale = out.parent / f"{out.stem}{suffix}"
        if stale.is_file():
            stale.unlink()
    parts = sorted(work.glob(f"{out.stem}.*"), key=lambda p: p == written)
    for part in parts:
        os.replace(part, out.parent / part.name)
    (progress or (lambda _msg: None))(f"{name}: {table.num_rows} row(s)")
    return out.parent / written.name


def _export_into(
    store: Any,
    schemas: list[Layer],
    fmt: str,
    work: Path,
    epsg: int,
    where: Mapping[str, Any] | None,
    zip_level: int,
    progress: Callable[[str], None] | None,
) -> Path:
    """Write the export inside ``work``; return the finished file."""
    say = progress or (lambda _msg: None)
    if fmt == "shp":
        # each layer's files go straight from memory into the zip, read one layer at a time
        members = _shapefile_members(store, schemas, where, epsg, say)
        return archive.write_zip_streams(work / "export.part", members, level=zip_level)
    files: list[tuple[Path, str]] = []
    target = work / "export.gpkg"
    for lyr in schemas:
        name = lyr.name
        frame = _frame_for_export(store, name, where, epsg, lyr)
        if fmt == "gpkg":
            _write_gpkg_layer(lyr, frame, target, epsg)
        else:
            path = _write_geojson(lyr, frame, work / f"{name}.geojson", epsg)
            files.append((path, path.name))
        say(f"{name}: {len(frame)} row(s)")
    if fmt == "gpkg":
        return target
    if len(schemas) == 1:
        return files[0][0]
    return archive.write_zip(work / "export.part", files, level=zip_level)


def _shapefile_members(
    store: Any,
    schemas: list[Layer],
    where: Mapping[str, Any] | None,
    epsg: int,
    say: Callable[[str], None],
) -> Iterator[tuple[str, int, Iterable[Any]]]:
    """``(name in the zip, size, blocks)`` of every layer's shapefile parts, a layer
    read only when the zip reaches it."""
    for lyr in schemas:
        table = _as_table(lyr, _frame_for_export(store, lyr.name, where, epsg, lyr))
        for part in shapefile_parts(lyr, table, epsg=epsg):
            yield f"{lyr.name}{part.suffix}", part.size, part.blocks
        say(f"{lyr.name}: {table.num_rows} row(s)")


def export_filename(layers: str | Sequence[str], fmt: str) -> str:
    """The download name of an export: ``plots.zip``, ``all.gpkg``, ``roads.geojson``..."""
    names = [layers] if isinstance(layers, str) else list(layers)
    stem = names[0] if len(names) == 1 else "layers"
    if fmt == "shp" or (fmt == "geojson" and (len(names) > 1 or stem == "all")):
        return f"{stem}.zip"
    return f"{stem}.{fmt}"


def export_bytes(
    store: Any,
    layers: str | Sequence[str],
    fmt: str,
    *,
    crs: int | str | None = None,
    where: Mapping[str, Any] | None = None,
    include_private: bool = False,
) -> tuple[bytes, str, str]:
    """An export as ``(content, download file name, media type)`` for HTTP.

    Private layers are refused unless ``include_private``; see
    :func:`export_layers` for the rest.
    """
    name = export_filename(layers, fmt)
    with tempfile.TemporaryDirectory(prefix="zoneplan-export-") as tmp:
        path = export_layers(
            store,
            layers,
            fmt,
            Path(tmp) / name,
            crs=crs,
            where=where,
            include_private=include_private,
        )
        data = path.read_bytes()
    media = MEDIA_TYPES["zip" if name.endswith(".zip") else fmt]
    return data, name, media
