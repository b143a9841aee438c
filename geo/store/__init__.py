"""zoneplan storage backends behind one Store interface."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from geo.store.base import (
    Conflict,
    Invalid,
    ListHas,
    NotFound,
    Null,
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
    "Invalid",
    "ListHas",
    "NotFound",
    "Null",
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
    """The store location: ``ZONEPLAN_DB`` or ``data/zone.gpkg``."""
    return os.environ.get("ZONEPLAN_DB") or DEFAULT_DB


def open_store(location: str | Path | None = None) -> Store:
    """Open an existing store: ``postgresql://…`` is a PostGIS database, anything else a
    GeoPackage file.

    Raises
    ------
    NotFound
        When there is no zoneplan store there.
    StoreError
        When it cannot be reached or its CRS is not the working CRS.
    """
    location = location or default_db()
    if is_url(location):
        from geo.store.postgis import PostgisStore

        return PostgisStore(str(location))
    from geo.store.gpkg import GpkgStore

    return GpkgStore(location)


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
) -> Store:
    """Create a store with every layer of the schema (either backend), empty or written
    by ``fill`` in the same step: a failing ``fill`` leaves no store behind (and an
    existing one as it was).

    Raises
    ------
    Conflict
        When a store is there already and ``force`` is false.
    """
    location = location or default_db()
    if is_url(location):
        from geo.store.postgis import PostgisStore

        return PostgisStore.create(str(location), force=force, fill=fill)
    from geo.store.gpkg import GpkgStore

    return GpkgStore.create(location, force=force, fill=fill)
