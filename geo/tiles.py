"""Vector tiles: XYZ tile maths in Web Mercator and Mapbox Vector Tile encoding of store rows."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mapbox_vector_tile
import numpy as np
import pandas as pd
import shapely

from geo.crs import transformer

WEB_MERCATOR_EPSG = 3857
EXTENT = 4096
#: Extent units kept around a tile so strokes and outlines join seamlessly at its edges.
BUFFER = 64
MAX_ZOOM = 22
#: Half the width of the Web Mercator square, metres.
HALF_WORLD = 20037508.342789244
#: Douglas-Peucker tolerance in extent units (a 16th of a screen pixel at 256 px tiles).
SIMPLIFY_UNITS = 1.0
_ENCODE_OPTIONS = {"extents": EXTENT, "y_coord_down": True, "check_winding_order": False}


class TileError(ValueError):
    """A tile address outside the XYZ pyramid (zoom 0..MAX_ZOOM, 0 <= x, y < 2**z)."""


@dataclass(frozen=True)
class Tile:
    """One XYZ tile of the Web Mercator pyramid (y counted from the north, as slippy maps do).

    Raises
    ------
    TileError
        When the address lies outside the pyramid.
    """

    z: int
    x: int
    y: int

    def __post_init__(self) -> None:
        if not 0 <= self.z <= MAX_ZOOM:
            raise TileError(f"zoom {self.z} is outside 0..{MAX_ZOOM}")
        n = 1 << self.z
        if not (0 <= self.x < n and 0 <= self.y < n):
            raise TileError(f"tile {self.x}/{self.y} does not exist at zoom {self.z} (0..{n - 1})")

    @property
    def size(self) -> float:
        """The tile's width in Web Mercator metres."""
        return 2 * HALF_WORLD / (1 << self.z)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` in EPSG:3857."""
        minx = -HALF_WORLD + self.x * self.size
        maxy = HALF_WORLD - self.y * self.size
        return minx, maxy - self.size, minx + self.size, maxy

    def working_bbox(self, epsg: int, buffer: float = BUFFER) -> tuple[float, float, float, float]:
        """The tile (grown by ``buffer`` extent units) as a box in CRS ``epsg`` (a store's)."""
        pad = self.size * buffer / EXTENT
        minx, miny, maxx, maxy = self.bounds
        x0, y0, x1, y1 = transformer(WEB_MERCATOR_EPSG, epsg).transform_bounds(
            minx - pad, miny - pad, maxx + pad, maxy + pad
        )
        return (float(x0), float(y0), float(x1), float(y1))


def feature_ids(keys: Sequence[Any]) -> list[int]:
    """Stable integer ids for text keys (MVT feature ids are unsigned integers).

    The first 53 bits of the key's MD5 digest (not a security use: a spread-out number):
    the same on every tile and every backend (PostGIS computes it in SQL with ``md5()``,
    see :data:`FEATURE_ID_SQL`), exact as a JavaScript number.
    """
    return [
        int(hashlib.md5(str(k).encode("utf-8"), usedforsecurity=False).hexdigest()[:14], 16) >> 3
        for k in keys
    ]


#: :func:`feature_ids` in PostgreSQL, ``{}`` standing for the key column.
FEATURE_ID_SQL = "(('x' || left(md5({}), 14))::bit(56)::bigint >> 3)"


def to_tile_coords(geoms: np.ndarray, tile: Tile, epsg: int) -> np.ndarray:
    """Geometries in CRS ``epsg`` on the tile's integer grid: x right, y down, 0..EXTENT."""
    minx, _, _, maxy = tile.bounds
    scale = EXTENT / tile.size
    to_mercator = transformer(epsg, WEB_MERCATOR_EPSG)

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = to_mercator.transform(xy[:, 0], xy[:, 1])
        return np.round(
            np.column_stack([(np.asarray(x) - minx) * scale, (maxy - np.asarray(y)) * scale])
        )

    return np.asarray(shapely.transform(geoms, project))


def prepare_geometries(geoms: np.ndarray, tile: Tile, epsg: int) -> np.ndarray:
    """Project onto the tile's grid, clip to the buffered tile and simplify (vectorised).

    Features that collapse below one grid unit come back empty (they are not drawn at this
    zoom); polygons are oriented as MVT wants them (exterior clockwise on screen).
    """
    local = to_tile_coords(np.asarray(geoms, dtype=object), tile, epsg)
    local = shapely.clip_by_rect(local, -BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)
    local = shapely.simplify(local, SIMPLIFY_UNITS, preserve_topology=False)
    dims = shapely.get_dimensions(local)
    collapsed = ((dims == 2) & (shapely.area(local) == 0)) | (
        (dims == 1) & (shapely.length(local) == 0)
    )
    local[collapsed] = None
    # y points down here, so GEOS's counter-clockwise is clockwise on screen
    return np.asarray(shapely.orient_polygons(local, exterior_cw=False))


def encode(
    layer: str,
    geoms: np.ndarray,
    tile: Tile,
    *,
    key: str,
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    epsg: int,
    ids: Sequence[str] | None = None,
) -> bytes:
    """One Mapbox Vector Tile (one layer named ``layer``) of features that may touch ``tile``.

    Parameters
    ----------
    layer : str
        The MVT layer's name (the store layer's).
    geoms : array of shapely geometries
        In CRS ``epsg`` (an R-tree read of :meth:`Tile.working_bbox`).
    tile : Tile
        The tile to cut.
    key : str
        The text id column of ``columns``; its value becomes the integer feature id
        (:func:`feature_ids`) and stays a property under its own name.
    columns : mapping of str to sequence
        Property columns aligned with ``geoms`` (None values are left out).
    epsg : int
        The CRS of ``geoms`` (the store's).
    ids : sequence of str, optional
        The text each feature's integer id is made from, when not ``key``'s value (a
        block of the plot overview has no key: :func:`geo.overview.block_key`).

    Returns
    -------
    bytes
        The encoded tile; empty when no feature lies in it.
    """
    if len(geoms) == 0:
        return b""
    local = prepare_geometries(geoms, tile, epsg)
    keep = np.flatnonzero(~(shapely.is_missing(local) | shapely.is_empty(local)))
    if len(keep) == 0:
        return b""
    names = list(columns)
    values = [np.asarray(columns[n], dtype=object)[keep].tolist() for n in names]
    texts = (
        values[names.index(key)] if ids is None else np.asarray(ids, dtype=object)[keep].tolist()
    )
    fids = feature_ids(texts)
    features = [
        {
            "geometry": geom,
            "id": fid,
            "properties": {n: _mvt_value(v) for n, v in zip(names, row) if _present(v)},
        }
        for geom, fid, row in zip(local[keep], fids, zip(*values))
    ]
    return bytes(
        mapbox_vector_tile.encode(
            [{"name": layer, "features": features}], default_options=_ENCODE_OPTIONS
        )
    )


def encode_frame(
    layer: str, frame: pd.DataFrame, tile: Tile, *, key: str, properties: Sequence[str]
) -> bytes:
    """:func:`encode` of a GeoDataFrame's rows (in the CRS it declares) with the
    ``properties`` columns (and ``key``)."""
    names = [key, *(p for p in properties if p != key)]
    epsg = frame.crs.to_epsg() if frame.crs is not None else None
    if epsg is None:
        raise ValueError("the frame carries no EPSG CRS")
    return encode(
        layer,
        np.asarray(frame.geometry.values, dtype=object),
        tile,
        key=key,
        columns={n: frame[n].to_numpy(dtype=object) for n in names},
        epsg=epsg,
    )


def _present(value: Any) -> bool:
    return (
        value is not None
        and value is not pd.NA
        and not (isinstance(value, float) and np.isnan(value))
    )


def _mvt_value(value: Any) -> Any:
    """A property value as MVT carries it (numpy scalars become Python numbers)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


class TileCache:
    """Encoded tiles of the current revision of each (layer, view), least recently used out.

    A tile is kept under ``(layer, view, z, x, y)`` with the revision it was cut from;
    when a layer's revision moves on, that layer's older tiles are dropped at once, so
    memory holds one revision per layer and never more than ``max_bytes`` of tiles.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._tiles: OrderedDict[tuple[str, str, int, int, int], bytes] = OrderedDict()
        self._revisions: dict[tuple[str, str], str] = {}
        self._bytes = 0

    def get_or_build(
        self, layer: str, view: str, revision: str, tile: Tile, build: Callable[[], bytes]
    ) -> bytes:
        """The tile of ``layer`` as ``view`` sees it at ``revision``, built on a miss.

        Read ``revision`` before the rows ``build`` reads: a tile cut from newer rows
        under an older revision is replaced as soon as the newer revision is asked for.
        """
        key = (layer, view, tile.z, tile.x, tile.y)
        with self._lock:
            if self._revisions.get((layer, view)) != revision:
                self._drop(layer, view)
                self._revisions[(layer, view)] = revision
            elif key in self._tiles:
                self._tiles.move_to_end(key)
                return self._tiles[key]
        data = build()
        with self._lock:
            if self._revisions.get((layer, view)) == revision and key not in self._tiles:
                self._tiles[key] = data
                self._bytes += len(data)
                while self._bytes > self.max_bytes and self._tiles:
                    self._bytes -= len(self._tiles.popitem(last=False)[1])
        return data

    def _drop(self, layer: str, view: str) -> None:
        stale = [k for k in self._tiles if k[0] == layer and k[1] == view]
        for k in stale:
            self._bytes -= len(self._tiles.pop(k))

    @property
    def size(self) -> tuple[int, int]:
        """``(tiles, bytes)`` held."""
        with self._lock:
            return len(self._tiles), self._bytes


def metres_per_pixel(z: int, lat: float, tile_px: int = 256) -> float:
    """Ground metres one screen pixel covers at zoom ``z`` and latitude ``lat`` (degrees)."""
    return 2 * HALF_WORLD / (tile_px * (1 << z)) * float(np.cos(np.radians(lat)))


def nearest_within(geoms: np.ndarray, point: shapely.Point, tolerance: float) -> int | None:
    """The index of the geometry nearest ``point`` if within ``tolerance`` (inside a polygon
    is distance 0), else None."""
    if len(geoms) == 0:
        return None
    distance = shapely.distance(np.asarray(geoms, dtype=object), point)
    i = int(np.nanargmin(distance)) if not np.isnan(distance).all() else None
    return i if i is not None and distance[i] <= tolerance else None
