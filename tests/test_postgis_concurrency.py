"""Many clients at once on one PostGIS database: row locks, the plots lock and MVCC reads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from test_planner_parcels import free_square

import planner.parcels as parcels
from geo.crs import WORKING_EPSG
from geo.store import Conflict, Invalid, StoreError, open_store
from geo.store.postgis import PostgisStore
from usecases import applications

CLIENTS = 50
# Connections the racing store may open: the shared server's max_connections (100) also
# serves other suites, so the 50 callers queue for 20 connections and race at the database.
CONNECTIONS = 20


@pytest.fixture
def sample(new_database, sample_pg):
    """A private copy of the sample in its own database; its URL."""
    return new_database(sample_pg)


def _race(n: int, work) -> list[object]:
    """Run ``work(i)`` in ``n`` threads released together; results or the raised errors."""
    gate = threading.Barrier(n)

    def run(i: int) -> object:
        gate.wait()
        try:
            return work(i)
        except Exception as err:  # noqa: BLE001 - the race's outcome is what we check
            return err

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_fifty_planners_accepting_one_plot_leave_exactly_one_winner(sample, monkeypatch):
    import geo.store.postgis as pg

    # Accepts run one at a time (plots lock), each building a servicing model: on a busy
    # machine the last callers wait longer for a connection than the default 30 s.
    monkeypatch.setattr(pg, "POOL_TIMEOUT_S", 600.0)
    store = PostgisStore(sample, pool_size=CONNECTIONS)
    plot = store.read("plots", where={"status": "available", "sectors": "*"}, limit=1).iloc[0]
    apps = pd.DataFrame(
        {
            "app_id": [f"RACE-{i:02d}" for i in range(CLIENTS)],
            "investor": ["investor"] * CLIENTS,
            "project": ["Склад"] * CLIENTS,
            "sector": ["logistics"] * CLIENTS,
            "plot_id": [plot["plot_id"]] * CLIENTS,
            "min_ha": [0.1] * CLIENTS,
            "max_ha": [1000.0] * CLIENTS,
            "status": ["submitted"] * CLIENTS,
        }
    )
    store.insert("applications", apps)
    outcomes = _race(
        CLIENTS,
        lambda i: applications.accept(store, f"RACE-{i:02d}", user="planner", role="planner"),
    )
    winners = [o for o in outcomes if isinstance(o, dict)]
    assert len(winners) == 1, [o for o in outcomes if not isinstance(o, dict)][:3]
    assert all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, dict)), [
        repr(o) for o in outcomes if not isinstance(o, (dict, Conflict))
    ]
    assert store.get("plots", plot["plot_id"])["status"] == "reserved"
    reserved = store.read("applications", where={"status": "reserved", "assigned": plot["plot_id"]})
    assert reserved["app_id"].tolist() == [winners[0]["app_id"]]
    assert store.get("plots", plot["plot_id"])["version"] == plot["version"] + 1
    store.close()


def test_two_planners_saving_overlapping_parcels_at_once_store_one(sample, monkeypatch):
    store = PostgisStore(sample, pool_size=4)
    snap = store.snapshot()
    spot = free_square(snap)
    shifted = shapely.affinity.translate(spot, 20, 20)  # overlaps the first by far over 1 m²
    real_check = parcels.check_parcel

    def slow_check(*args, **kwargs):
        # Widen the window between the check and the insert, where a race would slip in.
        result = real_check(*args, **kwargs)
        time.sleep(0.5)
        return result

    monkeypatch.setattr(parcels, "check_parcel", slow_check)
    before = store.count("plots")
    outcomes = _race(2, lambda i: parcels.create_candidate(store, (spot, shifted)[i], user=f"p{i}"))
    stored = [o for o in outcomes if isinstance(o, tuple)]
    refused = [o for o in outcomes if isinstance(o, Invalid)]
    assert len(stored) == 1 and len(refused) == 1, outcomes
    assert "overlaps" in str(refused[0].problems[0])
    assert store.count("plots") == before + 1
    store.close()


def test_readers_during_a_large_import_see_the_old_or_the_new_state(sample):
    store = PostgisStore(sample, pool_size=4)
    old = store.count("plots")
    n, side = 20_000, 40.0
    i = np.arange(n)
    x, y = 650_000 + (i % 200) * side, 4_790_000 + (i // 200) * side
    new = gpd.GeoDataFrame(
        {"plot_id": [f"N-{k:05d}" for k in i], "status": ["candidate"] * n},
        geometry=shapely.box(x, y, x + side - 5, y + side - 5),
        crs=WORKING_EPSG,
    )
    seen: set[int] = set()
    done = threading.Event()

    def read_all_the_time() -> None:
        reader = open_store(sample)
        while not done.is_set():
            seen.add(reader.count("plots"))
            seen.add(
                reader.count(
                    "plots",
                    where={
                        "status": ["candidate", "available", "reserved", "allocated", "occupied"]
                    },
                )
            )
        reader.close()

    readers = [threading.Thread(target=read_all_the_time) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        with store.transaction("importer") as tx:
            tx.clear("plots")
            for start in range(0, n, 5_000):
                tx.insert("plots", new.iloc[start : start + 5_000])
                time.sleep(0.2)  # readers keep reading while the import is half done
    finally:
        done.set()
        for t in readers:
            t.join()
    assert seen <= {old, n} and old in seen, seen
    assert store.count("plots") == n
    store.close()


def test_a_pool_that_cannot_serve_in_time_is_a_store_error(sample, monkeypatch):
    import geo.store.postgis as pg

    monkeypatch.setattr(pg, "POOL_TIMEOUT_S", 1.0)
    store = PostgisStore(sample, pool_size=1)
    with store.transaction("holder"):
        with pytest.raises(StoreError, match="no database connection free"):
            store.count("plots")
    store.close()
