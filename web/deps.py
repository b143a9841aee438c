"""Per-app access to the store, its snapshot and the servicing model, cached by store revision."""
from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

import pandas as pd
from flask import Flask, current_app

from geo.layers import FEATURE_LAYERS, LAYERS
from geo.store import Store, open_store
from usecases.jobs import JobRunner

from planner import servicing as _servicing

EXTENSION = "zoneplan"
# What derived values are built from: log-ins, jobs and settings change nothing drawn.
DATA_LAYERS = tuple(name for name, layer in LAYERS.items() if not layer.internal)


class RevisionCache:
    """Values derived from a store, keyed by ``(store revision, name)``, least recently used out.

    One per app by default. Apps over byte-identical copies of one store (the test suite's)
    may share one, since equal revision tokens there mean equal content.
    """

    def __init__(self, max_entries: int = 64):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The value under ``key``, built once even when many threads ask at the same time."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            gate = self._building.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._values:
                    return self._values[key]
            value = build()
            with self._lock:
                self._values[key] = value
                while len(self._values) > self.max_entries:
                    self._values.popitem(last=False)
                self._building.pop(key, None)
            return value


class Deps:
    """What the views share: one store, its job runner, and values derived from it per revision.

    Values built by :meth:`cached` are kept until the store's revision token
    changes (any write), so every request sees fresh data without re-reading
    the layers on each page.
    """

    def __init__(self, store: Store, cache: RevisionCache | None = None):
        self.store = store
        self.cache = cache or RevisionCache()
        self._jobs: JobRunner | None = None
        self._jobs_lock = threading.Lock()

    @property
    def jobs(self) -> JobRunner:
        """The app's job runner, started on first use (its threads only when jobs are run)."""
        with self._jobs_lock:
            if self._jobs is None:
                self._jobs = JobRunner(self.store)
            return self._jobs

    def cached(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """``build()`` once per store revision and ``key``; concurrent callers wait for it."""
        return self.cache.get_or_build((self.store.revision(DATA_LAYERS), key), build)


def init_app(app: Flask, store: Store | None = None) -> Deps:
    """Open the store named by ``ZONEPLAN_DB`` (unless given) and attach it to ``app``.

    ``app.config["ZONEPLAN_CACHE"]`` may hold a :class:`RevisionCache` to share.
    """
    deps = Deps(store or open_store(app.config["ZONEPLAN_DB"]), app.config.get("ZONEPLAN_CACHE"))
    app.extensions[EXTENSION] = deps
    return deps


def deps() -> Deps:
    """The current app's :class:`Deps`."""
    return current_app.extensions[EXTENSION]


def get_store() -> Store:
    """The current app's store."""
    return deps().store


def get_jobs() -> JobRunner:
    """The current app's job runner."""
    return deps().jobs


def snapshot() -> dict[str, pd.DataFrame]:
    """Every feature layer, read once per store revision (treat as read-only)."""
    return deps().cached("snapshot", lambda: get_store().snapshot(FEATURE_LAYERS))


def servicing_model(today: dt.date | None = None) -> _servicing.ServicingModel:
    """A ``planner.servicing.ServicingModel`` over the current snapshot."""
    today = today or dt.date.today()
    return deps().cached(("servicing_model", today),
                         lambda: _servicing.ServicingModel(snapshot(), today=today))


def servicing_records(today: dt.date | None = None) -> dict[str, dict[str, Any]]:
    """Today's servicing answer of every plot, by plot id."""
    model = servicing_model(today)
    today = today or dt.date.today()

    def build() -> dict[str, dict[str, Any]]:
        return {str(r["plot_id"]): r for r in model.answer()}
    return deps().cached(("servicing_records", today), build)


def explain(record: dict[str, Any], translate: Callable[[str], str] | None = None) -> list[str]:
    """Sentences for one servicing record, via ``planner.servicing.explain``."""
    return list(_servicing.explain(record, translate=translate))
