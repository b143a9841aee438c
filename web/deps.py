"""Per-app access to the store, its snapshot and the servicing model, cached by the revision of
the layers each reads."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import pandas as pd
from flask import Flask, current_app

from geo.layers import FEATURE_LAYERS, LAYERS
from geo.store import Store, open_store, plot_boxes
from planner import servicing as _servicing
from planner.catalogue_facts import facts_for
from planner.servicing import ServicingModel
from usecases.jobs import JobRunner
from usecases.servicing import LiveServicing

EXTENSION = "zoneplan"
# What derived values are built from: log-ins, jobs and settings change nothing drawn.
DATA_LAYERS = tuple(name for name, layer in LAYERS.items() if not layer.internal)


class RevisionCache:
    """Values derived from a store, one per key, each kept with the revision it was built at.

    Asking for a key at another revision rebuilds it and drops the superseded value, so
    memory holds one value per key; the least recently used keys go beyond
    ``max_entries``. One per app by default. Apps over byte-identical copies of one store
    (the test suite's) may share one, since equal revision tokens there mean equal content.
    """

    def __init__(self, max_entries: int = 64):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._values: OrderedDict[Hashable, tuple[str | None, Any]] = OrderedDict()
        #: The servicing model, kept current by updates rather than rebuilt per revision.
        self.servicing = LiveServicing()
        self._building: dict[tuple[Hashable, str | None], threading.Lock] = {}

    def get_or_build(
        self, key: Hashable, build: Callable[[], Any], revision: str | None = None
    ) -> Any:
        """The value under ``key`` at ``revision``, built once even when many threads ask.

        Callers that put the revision in ``key`` itself leave ``revision`` out (their
        superseded values then age out of the LRU instead of being dropped at once).
        """
        with self._lock:
            entry = self._values.get(key)
            if entry is not None and entry[0] == revision:
                self._values.move_to_end(key)
                return entry[1]
            gate = self._building.setdefault((key, revision), threading.Lock())
        with gate:
            with self._lock:
                entry = self._values.get(key)
                if entry is not None and entry[0] == revision:
                    return entry[1]
            value = build()
            with self._lock:
                self._values[key] = (revision, value)
                self._values.move_to_end(key)
                while len(self._values) > self.max_entries:
                    self._values.popitem(last=False)
                self._building.pop((key, revision), None)
            return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)


class Deps:
    """What the views share: one store, its job runner, and values derived from it per revision.

    Values built by :meth:`cached` are kept until one of the layers they read changes,
    so every request sees fresh data and a write elsewhere (an application filed, a
    language chosen) keeps them warm.
    """

    def __init__(
        self,
        store: Store,
        cache: RevisionCache | None = None,
        today: Callable[[], dt.date] = dt.date.today,
    ):
        self.store = store
        self.cache = cache or RevisionCache()
        self.today = today
        self._jobs: JobRunner | None = None
        self._jobs_lock = threading.Lock()

    @property
    def jobs(self) -> JobRunner:
        """The app's job runner, started on first use (its threads only when jobs are run)."""
        with self._jobs_lock:
            if self._jobs is None:
                self._jobs = JobRunner(self.store)
            return self._jobs

    def warm_up(self) -> threading.Thread:
        """Build the servicing model, today's catalogue facts and the plots' boxes
        (:mod:`geo.store.plot_boxes`) in a background thread.

        A server calls this at start-up, so its first catalogue request finds them built
        (or waits only for what is left) instead of building them itself; requests that
        need neither (pages, tiles, popups) answer meanwhile. Returns the started thread.
        """

        def build() -> None:
            model = self.cache.servicing.model(self.store, self.today())
            if len(model.plot_ids):
                facts_for(model, [str(model.plot_ids[0])], None)
            plot_boxes.current(self.store, wait=True)

        thread = threading.Thread(target=build, name="zoneplan-warm-up", daemon=True)
        thread.start()
        return thread

    def cached(
        self, key: Hashable, build: Callable[[], Any], layers: Sequence[str] | None = None
    ) -> Any:
        """``build()`` once per revision of ``layers`` (default: every data layer) and ``key``;
        concurrent callers wait for it."""
        return self.cache.get_or_build(key, build, self.store.revision(layers or DATA_LAYERS))


def init_app(app: Flask, store: Store | None = None) -> Deps:
    """Open the store named by ``ZONEPLAN_DB`` (unless given; checked against
    ``ZONEPLAN_EPSG`` when that is configured) and attach it to ``app``.

    ``app.config["ZONEPLAN_CACHE"]`` may hold a :class:`RevisionCache` to share.
    """
    fixed = app.config.get("ZONEPLAN_TODAY")
    deps = Deps(
        store or open_store(app.config["ZONEPLAN_DB"], epsg=app.config.get("ZONEPLAN_EPSG")),
        app.config.get("ZONEPLAN_CACHE"),
        (lambda: fixed) if fixed else dt.date.today,
    )
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
    return deps().cached("snapshot", lambda: get_store().snapshot(FEATURE_LAYERS), FEATURE_LAYERS)


def servicing_model() -> ServicingModel:
    """The store's servicing model as it is now (kept per app, updated from what changed);
    overdue flags compare with ``ZONEPLAN_TODAY`` from the app's config, else the date."""
    d = deps()
    return d.cache.servicing.model(d.store, d.today())


def servicing_record(plot_id: str) -> dict[str, Any] | None:
    """Today's servicing answer of one plot (None for a plot the model does not hold)."""
    model = servicing_model()
    return model.answer([str(plot_id)])[0] if model.has_plot(str(plot_id)) else None


def explain(record: dict[str, Any], translate: Callable[[str], str] | None = None) -> list[str]:
    """Sentences for one servicing record, via ``planner.servicing.explain``."""
    return list(_servicing.explain(record, translate=translate))
