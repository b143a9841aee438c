"""GeoPackage binary geometries, and connections with the SQL functions its R-tree triggers
and the store's exact box test call (their errors as the store's)."""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import shapely

from geo.store.base import Conflict, StoreError, list_has, search_key

BUSY_TIMEOUT_S = 60.0
_ENVELOPE_BYTES = (0, 32, 48, 48, 64)


_HEADER = np.dtype(
    [("magic", "S2"), ("version", "u1"), ("flags", "u1"), ("srs", "<i4"), ("env", "<f8", 4)]
)


def encode_geometries(geoms: np.ndarray, srs_id: int) -> list[bytes | None]:
    """GeoPackage binary blobs (header with XY envelope, then ISO WKB); the headers are
    packed for all geometries at once."""
    wkb = shapely.to_wkb(geoms, byte_order=1, flavor="iso")
    bounds = shapely.bounds(geoms)
    empty = np.isnan(bounds[:, 0])
    head = np.zeros(len(wkb), dtype=_HEADER)
    head["magic"], head["srs"] = b"GP", srs_id
    head["flags"] = np.where(empty, 0x11, 0x03)
    head["env"] = bounds[:, [0, 2, 1, 3]]  # minx, maxx, miny, maxy
    raw = head.tobytes()
    size = _HEADER.itemsize
    return [
        None
        if blob is None
        else raw[i * size : i * size + 8] + blob
        if empty[i]
        else raw[i * size : (i + 1) * size] + blob
        for i, blob in enumerate(wkb.tolist())
    ]


def _wkb_part(blob: bytes | None) -> bytes | None:
    if blob is None:
        return None
    return blob[8 + _ENVELOPE_BYTES[(blob[3] >> 1) & 7] :]


def decode_geometries(blobs: list[bytes | None]) -> np.ndarray:
    """Shapely geometries from GeoPackage binary blobs."""
    return np.asarray(shapely.from_wkb([_wkb_part(b) for b in blobs]))


def _envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    if blob is None or blob[3] & 0x10:
        return None
    if (blob[3] >> 1) & 7:
        order = "<" if blob[3] & 1 else ">"
        minx, maxx, miny, maxy = struct.unpack_from(order + "4d", blob, 8)
        return minx, maxx, miny, maxy
    minx, miny, maxx, maxy = shapely.bounds(shapely.from_wkb(_wkb_part(blob)))
    return minx, maxx, miny, maxy


def _bound(i: int) -> Callable[[bytes | None], float | None]:
    def fn(blob: bytes | None) -> float | None:
        env = _envelope(blob)
        return None if env is None else env[i]

    return fn


def _intersects_box(
    blob: bytes | None, minx: float, miny: float, maxx: float, maxy: float
) -> int | None:
    """Whether a GeoPackage geometry meets the box: decided from the blob's envelope when
    it lies inside or outside the box, from the geometry itself only when it straddles."""
    if blob is None:
        return None
    env = _envelope(blob)  # minx, maxx, miny, maxy
    if env is None:
        return 0
    if env[1] < minx or env[0] > maxx or env[3] < miny or env[2] > maxy:
        return 0
    if env[0] >= minx and env[1] <= maxx and env[2] >= miny and env[3] <= maxy:
        return 1
    geom = shapely.from_wkb(_wkb_part(blob))
    return int(shapely.intersects(geom, shapely.box(minx, miny, maxx, maxy)))


def _is_empty(blob: bytes | None) -> int | None:
    return None if blob is None else int(bool(blob[3] & 0x10) or _envelope(blob) is None)


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection with the SQL functions GeoPackage R-tree triggers call, and the store's
    own for queries (never in triggers or indexes, so other tools can still write)."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, _bound(i), deterministic=True)
    conn.create_function("ST_IsEmpty", 1, _is_empty, deterministic=True)
    conn.create_function("ZP_Intersects", 5, _intersects_box, deterministic=True)
    conn.create_function("ZP_SearchKey", 1, _search_key, deterministic=True)
    conn.create_function("ZP_ListHas", 3, list_has, deterministic=True)
    return conn


def _search_key(text: str | None) -> str | None:
    return None if text is None else search_key(text)


@contextmanager
def wrapped(what: str) -> Iterator[None]:
    """Turn sqlite3's errors into the store's typed errors."""
    try:
        yield
    except sqlite3.IntegrityError as err:
        raise Conflict(f"{what}: {err}") from None
    except sqlite3.OperationalError as err:
        raise StoreError(f"{what}: the store is busy or unwritable ({err}); try again") from None
    except sqlite3.Error as err:
        raise StoreError(f"{what}: {err}") from None
