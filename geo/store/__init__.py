"""zoneplan storage backends behind one Store interface."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from geo.crs import DEFAULT_EPSG
from geo.store.base import (
    Conflict,
    Contains,
    Invalid,
    ListHas,
    NotFound,
    Null,
    Prefix,
    Range,
    Session,
    Store,
    StoreError,
    is_url,
)
from geo.store.rows import RowSession

DEFAULT_DB = "data/zone.gpkg"

__all__ = [
    "Conflict",
    "Contains",
    "Invalid",
    "ListHas",
    "NotFound",
    "Null",
    "Prefix",
    "Range",
    "Session",
    "Store",
    "StoreError",
    "default_db",
    "is_url",
    "open_store",
    "create_store",
    "store_exists",
]


def default_db() -> str:
    """The store location when none is given: ``data/zone.gpkg`` (the command line and the
    web app read ``ZONEPLAN_DB`` themselves)."""
    return DEFAULT_DB


def open_store(location: str | Path | None = None, *, epsg: int | None = None) -> Store:
    """Open an existing store: ``postgresql://…`` is a PostGIS database, anything else a
    GeoPackage file. The store works in the CRS it was made with (:attr:`Store.epsg`).

    Parameters
    ----------
    location : str or path, optional
        The store (default: :func:`default_db`).
    epsg : int, optional
        The CRS the caller expects (``ZONEPLAN_EPSG`` at the edge); a store in another is
        refused rather than relabelled.

    Raises
    ------
    NotFound
        When there is no zoneplan store there.
    StoreError
        When it cannot be reached or its CRS is not ``epsg``.
    """
    location = location or default_db()
    if is_url(location):
        from geo.store.postgis import PostgisStore

        return PostgisStore(str(location), epsg=epsg)
    from geo.store.gpkg import GpkgStore

    return GpkgStore(location, epsg=epsg)


def store_exists(location: str | Path) -> bool:
    """Whether a zoneplan store (or any file) is at ``location`` already."""
    if is_url(location):
        from geo.store.postgis import has_schema

        return has_schema(str(location))
    return Path(location).exists()


def create_store(
    location: str | Path | None = None,
    *,
    force: bool = False,
    fill: Callable[[RowSession], None] | None = None,
    epsg: int = DEFAULT_EPSG,
) -> Store:
    """Create a store with every layer of the schema (either backend) in CRS ``epsg``,
    empty or written by ``fill`` in the same step: a failing ``fill`` leaves no store
    behind (and an existing one as it was).

    Raises
    ------
    Conflict
        When a store is there already and ``force`` is false.
    """
    location = location or default_db()
    if is_url(location):
        from geo.store.postgis import PostgisStore

        return PostgisStore.create(str(location), force=force, fill=fill, epsg=epsg)
    from geo.store.gpkg import GpkgStore

    return GpkgStore.create(location, force=force, fill=fill, epsg=epsg)
