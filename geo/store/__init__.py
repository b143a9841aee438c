"""zoneplan storage backends behind one Store interface."""
from __future__ import annotations

import os
from pathlib import Path

from geo.store.base import (Between, Conflict, Invalid, ListHas, NotFound, Session, Store,
                            StoreError)

DEFAULT_DB = "data/zone.gpkg"

__all__ = ["Between", "Conflict", "Invalid", "ListHas", "NotFound", "Session", "Store",
           "StoreError", "default_db", "open_store", "create_store"]


def default_db() -> str:
    """The store location: ``ZONEPLAN_DB`` or ``data/zone.gpkg``."""
    return os.environ.get("ZONEPLAN_DB") or DEFAULT_DB


def open_store(location: str | Path | None = None) -> Store:
    """Open an existing store (a GeoPackage path; other backends by URL later)."""
    from geo.store.gpkg import GpkgStore
    return GpkgStore(location or default_db())


def create_store(location: str | Path | None = None, *, force: bool = False) -> Store:
    """Create an empty store with every layer of the schema."""
    from geo.store.gpkg import GpkgStore
    return GpkgStore.create(location or default_db(), force=force)
