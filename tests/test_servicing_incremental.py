"""The servicing model kept current after writes equals one built afresh from the store.

Random sequences of plot edits (moves, status, demand), asset status and due changes,
plots added and removed and mains moved, written to a copy of the sample zone (synthetic)
on each backend; after every write the live model (updated from the changed layers only)
must answer exactly as a model built from a fresh read: every record, as recorded, as of a
date and under a what-if, the catalogue facts and the headroom table.
"""

from __future__ import annotations

import datetime as dt
import json
import random

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import affinity

from geo.layers import ASSET_STATUSES, PLOT_STATUSES
from geo.store import open_store
from planner.servicing import ServicingModel
from usecases.servicing import SERVICING_LAYERS, LiveServicing

TODAY = dt.date(2026, 1, 1)
#: Layers whose status the sequences change (power lines and zones serve no plot).
STATUS_LAYERS = (
    "roads",
    "gates",
    "rail_lines",
    "rail_stations",
    "substations",
    "water_mains",
    "storm_sewers",
    "gas_mains",
    "power_lines",
)


def fresh(store) -> ServicingModel:
    return ServicingModel({n: store.read(n) for n in SERVICING_LAYERS}, today=TODAY)


def same_answers(live: ServicingModel, full: ServicingModel) -> None:
    """Everything a reader sees, compared as JSON (exact floats)."""

    def dump(records: list[dict]) -> str:  # the live model appends new plots at the end
        return json.dumps(sorted(records, key=lambda r: r["plot_id"]), sort_keys=True, default=str)

    assert sorted(live.plot_ids) == sorted(full.plot_ids)
    assert dump(live.answer()) == dump(full.answer())
    assert dump(live.answer(as_of="2022-11-01")) == dump(full.answer(as_of="2022-11-01"))
    what_if = {("substations", "SS-14"): "under_repair", ("roads", "R-01"): "closed"}
    known = {k: v for k, v in what_if.items() if (k[0], k[1]) in full._asset_pos}
    assert dump(live.answer(what_if=known)) == dump(full.answer(what_if=known))
    for as_of in (None, "2023-01-01"):
        every = full.facts(as_of)
        pd.testing.assert_frame_equal(live.facts(as_of).sort_index(), every.sort_index())
        # A page's facts, from its rows alone (as the first page after a write gets them)
        page = [*sorted(full.plot_ids)[::37], "NO-SUCH-PLOT"]
        pd.testing.assert_frame_equal(live.updated().facts(as_of, page), every.reindex(page))
    pd.testing.assert_frame_equal(live.headroom(), full.headroom())


def random_write(store, rng: random.Random, step: int) -> str:
    """One random write to the store; returns what it did (for the failure message)."""
    plots = store.read("plots")
    kind = rng.choice(
        ["move", "plot_status", "demand", "asset_status", "asset_status", "due", "add", "delete"]
        + ["move_main"] * (step % 5 == 4)
    )
    pid = str(rng.choice(plots["plot_id"].tolist()))
    if kind == "move":
        geom = plots.set_index("plot_id").loc[pid, "geometry"]
        moved = affinity.translate(geom, rng.uniform(-400, 400), rng.uniform(-400, 400))
        store.update("plots", pid, {"geometry": moved})
    elif kind == "plot_status":
        store.update("plots", pid, {"status": rng.choice(PLOT_STATUSES)})
    elif kind == "demand":
        store.update("plots", pid, {"power_kw": round(rng.uniform(0, 3000), 1)})
    elif kind in ("asset_status", "due"):
        layer = rng.choice(STATUS_LAYERS)
        frame = store.read(layer)
        if not len(frame):
            return f"{kind}: {layer} is empty"
        key = "asset_id" if "asset_id" in frame.columns else frame.columns[0]
        aid = str(rng.choice(frame[key].tolist()))
        if kind == "due":
            change = {"due": rng.choice([None, "2022-10-30", "2023-06-01", "2027-01-01"])}
        else:
            change = {"status": rng.choice(ASSET_STATUSES)}
        store.update(layer, aid, change)
        return f"{kind} {layer}:{aid} {change}"
    elif kind == "add":
        row = plots.set_index("plot_id").loc[[pid]].reset_index()
        row["plot_id"] = f"Q-{step:03d}"
        row["geometry"] = [affinity.translate(row.geometry.iloc[0], 150.0, -150.0)]
        store.insert("plots", row.drop(columns=["version"], errors="ignore"))
        return f"add Q-{step:03d} near {pid}"
    elif kind == "delete":
        store.delete("plots", pid)
    else:  # a main moved: the networks change, the model is built again from what it holds
        mains = store.read("water_mains")
        aid = str(rng.choice(mains["asset_id"].tolist()))
        geom = mains.set_index("asset_id").loc[aid, "geometry"]
        store.update("water_mains", aid, {"geometry": affinity.translate(geom, 60.0, 0.0)})
        return f"move_main {aid}"
    return f"{kind} {pid}"


@pytest.mark.parametrize("seed", [1, 2])
def test_live_model_equals_a_fresh_one_after_random_writes(sample_location, seed):
    store = open_store(sample_location)
    live = LiveServicing()
    rng = random.Random(seed)
    model = live.model(store, TODAY)
    model.answer(as_of="2022-11-01")  # warm more than one evaluation, as readers do
    done = []
    for step in range(10):
        done.append(random_write(store, rng, step))
        model = live.model(store, TODAY)
        try:
            same_answers(model, fresh(store))
        except AssertionError as err:
            raise AssertionError(f"after {done}: {err}") from None
    store.close()


class CountingStore:
    """The real store, counting whole-layer reads of the plots."""

    def __init__(self, store):
        self.store, self.whole_plots = store, 0

    def read(self, layer, **kw):
        if layer == "plots" and not kw:
            self.whole_plots += 1
        return self.store.read(layer, **kw)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_a_plot_write_reads_the_audited_rows_only(sample_location):
    store = open_store(sample_location)
    spy = CountingStore(store)
    live = LiveServicing()
    live.model(spy, TODAY)
    assert spy.whole_plots == 1
    rng = random.Random(5)
    for step in range(6):
        what = random_write(store, rng, step)
        model = live.model(spy, TODAY)
        same_answers(model, fresh(store))
    assert spy.whole_plots == 1, f"plots were read whole again (last: {what})"
    store.close()


def test_unrelated_writes_and_a_new_day(sample_location):
    store = open_store(sample_location)
    live = LiveServicing()
    model = live.model(store, TODAY)
    store.insert(
        "applications",
        pd.DataFrame(
            [
                {
                    "app_id": "A-X1",
                    "investor": "investor",
                    "project": "p",
                    "sector": "food",
                    "min_ha": 0.0,
                    "max_ha": 1.0,
                    "status": "submitted",
                }
            ]
        ),
    )
    assert live.model(store, TODAY) is model
    later = live.model(store, TODAY.replace(year=2020))
    assert later is not model and later.today.year == 2020
    same = ServicingModel(
        {n: store.read(n) for n in SERVICING_LAYERS}, today=TODAY.replace(year=2020)
    )
    assert json.dumps(later.answer(), default=str) == json.dumps(same.answer(), default=str)
    store.close()


def test_an_asset_change_reevaluates_what_it_serves_only(store):
    """A water main's status re-evaluates the plots within reach of it, nothing else."""
    model = fresh(store)
    before = model.plot_eval(model.scenario())
    mains = store.read("water_mains")
    aid = mains["asset_id"].iloc[0]
    store.update("water_mains", aid, {"status": "closed"})
    after = model.updated(assets={"water_mains": store.read("water_mains")})
    ev = after.plot_eval(after.scenario())
    for u in ("road", "rail", "power", "storm", "gas"):
        assert ev[u] is before[u]  # untouched: the very same arrays
    untouched = np.setdiff1d(
        np.arange(len(model.plot_ids)), model._plot_sites.main_pairs["water"][0]
    )
    assert np.array_equal(ev["water"]["main"][untouched], before["water"]["main"][untouched])
    same_answers(after, fresh(store))


@pytest.mark.parametrize("status", ["under_repair", "operational"])
def test_a_substation_status_rechooses_the_plots_it_serves_or_could(store, status):
    """Power is chosen again only for the plots the substation serves, or is as near to
    as what serves them; the corridor distances are the same arrays."""
    subs = store.read("substations")
    aid = str(subs["asset_id"].iloc[0])
    store.update(
        "substations", aid, {"status": "planned" if status == "operational" else "operational"}
    )
    model = fresh(store)
    before = model.plot_eval(model.scenario())["power"]
    store.update("substations", aid, {"status": status})
    after = model.updated(assets={"substations": store.read("substations")})
    power = after.plot_eval(after.scenario())["power"]
    assert power["sub_dist"] is before["sub_dist"]
    k = int(np.flatnonzero(subs["asset_id"].astype(str).to_numpy() == aid)[0])
    chosen = (before["sub"] == k) | (power["sub"] == k)
    assert chosen.any()  # the change matters to some plots
    assert np.array_equal(power["sub"][~chosen], before["sub"][~chosen])
    same_answers(after, fresh(store))


def test_a_plot_edit_evaluates_that_plot_only(store, monkeypatch):
    from planner.servicing import incremental

    model = fresh(store)
    model.answer()
    pid = str(model.plot_ids[3])
    geom = store.read("plots", where={"plot_id": pid}).geometry.iloc[0]
    store.update("plots", pid, {"geometry": affinity.translate(geom, 30.0, 0.0)})
    seen = []
    real = incremental.evaluate
    monkeypatch.setattr(
        incremental, "evaluate", lambda m, sites, scen: seen.append(sites.n) or real(m, sites, scen)
    )
    after = model.updated(plots=store.read("plots"))
    assert seen and set(seen) == {1}  # one site, once per cached evaluation
    moved = after.layers["plots"].set_index("plot_id").loc[pid, "geometry"]
    assert not shapely.equals(moved, geom)
    same_answers(after, fresh(store))


def test_an_edited_row_is_patched_into_the_evaluations_readers_ask_for(store, monkeypatch):
    """An edit of one plot (the audited row only) evaluates that plot once per evaluation
    a reader then asks for, and none before."""
    from planner.servicing import incremental

    model = fresh(store)
    model.answer()
    model.answer(as_of="2022-11-01")
    kept = len(model._evals)
    pid = str(model.plot_ids[5])
    geom = store.read("plots", where={"plot_id": pid}).geometry.iloc[0]
    store.update("plots", pid, {"geometry": affinity.translate(geom, 40.0, 0.0), "power_kw": 7.5})
    seen = []
    real = incremental.evaluate
    monkeypatch.setattr(
        incremental, "evaluate", lambda m, sites, scen: seen.append(sites.n) or real(m, sites, scen)
    )
    after = model.updated(plot_rows=store.read("plots", where={"plot_id": pid}))
    assert seen == [] and len(after._pending) == kept and after.plot_ids is model.plot_ids
    after.plot_eval(after.scenario())
    assert seen == [1]
    assert model.plot_eval(model.scenario()) is not after.plot_eval(after.scenario())
    same_answers(after, fresh(store))
    assert set(seen) == {1}


def test_another_process_writes_are_seen(sample_location):
    """Two apps with their own caches and store connections (as two server processes)
    over one store: a write through one is in the other's next answer."""
    from web import create_app

    apps = [
        create_app({"ZONEPLAN_DB": sample_location, "TESTING": True, "SECRET_KEY": "t"})
        for _ in range(2)
    ]
    clients = [a.test_client() for a in apps]
    store = open_store(sample_location)
    plots = store.read("plots", where={"status": "available"})
    pid = str(plots["plot_id"].iloc[0])
    before = [c.get(f"/api/servicing/{pid}").get_json()["record"] for c in clients]
    assert before[0] == before[1]
    sub = before[0]["power"]["substation"]
    assert sub, "the sample plot is served by a substation"
    writer = open_store(sample_location)  # a third connection: the other process
    writer.update("substations", sub, {"status": "under_repair"})
    writer.close()
    after = [c.get(f"/api/servicing/{pid}").get_json()["record"] for c in clients]
    assert after[0] == after[1]
    assert after[0]["power"]["substation"] != sub or after[0]["power"]["available"] is False
    assert after[0] != before[0]
    store.close()


def test_facts_by_column_match_the_records(store):
    """The catalogue's facts read by column equal those taken from every plot's record."""
    from planner.catalogue import servicing_facts

    model = fresh(store)
    for as_of in (None, "2022-11-01"):
        by_rows = servicing_facts(model.answer(as_of=as_of))
        by_columns = model.facts(as_of)
        assert by_columns["waits_for"].tolist() == by_rows["waits_for"].tolist()
        pd.testing.assert_frame_equal(
            by_columns.drop(columns="waits_for"),
            by_rows.drop(columns="waits_for"),
            check_dtype=False,
        )
