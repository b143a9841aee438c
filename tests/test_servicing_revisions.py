"""Revisions of the servicing model after writes: patched, not copied, and never shared.

A plot write patches the kept evaluations and per-plot arrays at the written rows
(:mod:`planner.servicing.patches`). These tests write to copies of the sample zone
(synthetic) on GeoPackage and PostGIS: after each kind of write (a plot moved, its status
or demand changed, plots inserted and deleted, an asset's status changed) and after many
writes in a row with no reader between them, the live model answers exactly as one built
afresh from the store; and a reader holding the model of an earlier revision keeps
getting that revision's answers while writes land, on other threads too.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
from shapely import affinity
from test_servicing_incremental import TODAY, fresh, same_answers

from geo.store import open_store
from planner.servicing import patches
from planner.servicing.patches import (
    PatchedArray,
    PatchedMap,
    PlotIndex,
    patched,
    patched_map,
    swap_removed,
    swap_removed_map,
)
from usecases.servicing import LiveServicing


def _plot(store, pid: str):
    return store.read("plots", where={"plot_id": pid}).geometry.iloc[0]


def _writes(store) -> list[tuple[str, Any]]:
    """One write of each kind, as callables (named for failure messages)."""
    plots = store.read("plots").sort_values("plot_id")
    ids = plots["plot_id"].astype(str).tolist()
    a, b, c = ids[3], ids[10], ids[20]
    new = plots.loc[plots["plot_id"] == a].copy()
    new["plot_id"] = "Q-NEW"
    new["geometry"] = [affinity.translate(new.geometry.iloc[0], 150.0, -150.0)]
    return [
        (
            "move",
            lambda: store.update(
                "plots", a, {"geometry": affinity.translate(_plot(store, a), 60, 0)}
            ),
        ),
        ("status", lambda: store.update("plots", b, {"status": "reserved"})),
        ("demand", lambda: store.update("plots", b, {"power_kw": 2750.5, "water_m3d": 40.0})),
        ("substation", lambda: store.update("substations", "SS-14", {"status": "under_repair"})),
        ("insert", lambda: store.insert("plots", new.drop(columns=["version"], errors="ignore"))),
        (
            "move the new one",
            lambda: store.update(
                "plots", "Q-NEW", {"geometry": affinity.translate(_plot(store, "Q-NEW"), 0, 80)}
            ),
        ),
        ("delete", lambda: store.delete("plots", c)),
        (
            "substation back",
            lambda: store.update("substations", "SS-14", {"status": "operational"}),
        ),
    ]


def test_each_kind_of_write_equals_a_rebuild(sample_location):
    """After each write (read in between), the live model equals a fresh one."""
    store = open_store(sample_location)
    live = LiveServicing()
    model = live.model(store, TODAY)
    model.answer(as_of="2022-11-01")
    model.facts()
    for name, write in _writes(store):
        write()
        model = live.model(store, TODAY)
        try:
            same_answers(model, fresh(store))
        except AssertionError as err:
            raise AssertionError(f"after {name}: {err}") from None
    store.close()


def test_many_edits_without_a_reader_between_them(sample_location, monkeypatch):
    """Edits stacked on unread revisions (patches of patches, a plots frame merged late)
    and patches folded into new bases (a small threshold here) answer as a rebuild."""
    monkeypatch.setattr(patches, "FOLD_MIN", 3)
    monkeypatch.setattr(patches, "FOLD_SHARE", 10_000)
    store = open_store(sample_location)
    live = LiveServicing()
    model = live.model(store, TODAY)
    model.answer()
    model.facts(plot_ids=model.plot_ids[:5].tolist())
    ids = sorted(model.plot_ids.tolist())[::9][:12]
    for k, pid in enumerate(ids):
        change = {"power_kw": 100.0 + k, "status": ("reserved", "available", "allocated")[k % 3]}
        if k % 2:
            change["geometry"] = affinity.translate(_plot(store, pid), 30.0, -20.0)
        store.update("plots", pid, change)
        if k % 4 == 3:  # a reader now and then: the others stack up
            model = live.model(store, TODAY)
    model = live.model(store, TODAY)
    same_answers(model, fresh(store))
    frame = model.layers["plots"].set_index("plot_id").sort_index()
    stored = store.read("plots").set_index("plot_id").sort_index()
    for column in ("power_kw", "status"):
        assert frame[column].astype(object).equals(stored[column].astype(object)), column
    store.close()


def _seen(model, pids: list[str]) -> tuple:
    """What a reader gets from ``model``: records, a page's facts, headroom, plot rows."""
    records = model.answer(pids)
    facts = model.facts(plot_ids=pids)
    frame = model.layers["plots"]
    rows = frame.loc[frame["plot_id"].isin(pids)].sort_values("plot_id")
    return records, facts, model.headroom(), rows[["plot_id", "power_kw", "status"]]


def _same(a: tuple, b: tuple) -> None:
    assert a[0] == b[0]
    pd.testing.assert_frame_equal(a[1], b[1])
    pd.testing.assert_frame_equal(a[2], b[2])
    pd.testing.assert_frame_equal(a[3].reset_index(drop=True), b[3].reset_index(drop=True))


def test_a_reader_of_the_old_revision_keeps_its_answers(sample_location):
    """The model a reader took before a write answers as it did, after the write and
    after its patched evaluations are read through the new model."""
    store = open_store(sample_location)
    live = LiveServicing()
    old = live.model(store, TODAY)
    pids = sorted(old.plot_ids.tolist())[:40:4]
    before = _seen(old, pids)
    target = pids[2]
    store.update(
        "plots",
        target,
        {"geometry": affinity.translate(_plot(store, target), 250, 0), "power_kw": 2999.0},
    )
    store.update("substations", "SS-14", {"status": "under_repair"})
    new = live.model(store, TODAY)
    assert new is not old
    after = _seen(new, pids)
    _same(_seen(old, pids), before)
    assert after[0] != before[0]  # the write is seen by the new revision
    same_answers(new, fresh(store))
    store.close()


def test_readers_on_other_threads_see_one_revision_each(sample_location):
    """Threads reading the model they hold while another thread writes and updates:
    every answer a thread gets is the answer of the revision it holds."""
    store = open_store(sample_location)
    live = LiveServicing()
    held = live.model(store, TODAY)
    pids = sorted(held.plot_ids.tolist())[5:60:5]
    expected = _seen(held, pids)
    stop = threading.Event()
    problems: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                _same(_seen(held, pids), expected)
        except BaseException as err:  # reported by the main thread
            problems.append(err)
            stop.set()

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for k, pid in enumerate(pids * 2):
            change = {"power_kw": 500.0 + k, "status": ("reserved", "available")[k % 2]}
            if k % 3 == 0:
                change["geometry"] = affinity.translate(_plot(store, pid), 15.0, 15.0)
            store.update("plots", pid, change)
            live.model(store, TODAY).facts(plot_ids=pids)  # the new revision is read
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not problems, problems[0]
    _same(_seen(held, pids), expected)
    same_answers(live.model(store, TODAY), fresh(store))
    store.close()


# ------------------------------------------------------------- the patches themselves
def test_a_patched_array_reads_as_the_array_it_stands_for():
    base = np.arange(20.0).reshape(2, 10)
    p = patched(base, np.array([7, 2]), np.array([[-7.0, -2.0], [-17.0, -12.0]]))
    q = patched(p, np.array([2, 10, 11]), np.array([[1.5, 10.0, 11.0], [2.5, 20.0, 21.0]]))
    want_p = base.copy()
    want_p[:, [7, 2]] = [[-7.0, -2.0], [-17.0, -12.0]]
    want_q = np.concatenate([want_p, [[10.0, 11.0], [20.0, 21.0]]], axis=1)
    want_q[:, 2] = [1.5, 2.5]
    assert isinstance(p, PatchedArray) and isinstance(q, PatchedArray)
    assert np.array_equal(np.asarray(p), want_p) and np.array_equal(
        base, np.arange(20.0).reshape(2, 10)
    )
    assert np.array_equal(np.asarray(q), want_q) and q.shape == (2, 12)
    idx = np.array([11, 0, 2, 7])
    assert np.array_equal(q[:, idx], want_q[:, idx])
    assert np.array_equal(q[1], want_q[1]) and np.array_equal(q[np.array([0])], want_q[[0]])
    assert np.array_equal(q < 3, want_q < 3) and float((q * 2).sum()) == float((want_q * 2).sum())
    one = patched(np.arange(10), np.array([4]), np.array([40]))
    mask = np.arange(10) % 2 == 0
    assert one[mask].tolist() == [0, 2, 40, 6, 8] and one[np.array([4, 5])].tolist() == [40, 5]
    with pytest.raises(ValueError):
        np.asarray(one)[0] = 1  # the materialised array is shared: read-only


def test_a_patched_map_reads_as_the_map_it_stands_for():
    base = {1: "a", 2: "b", 5: "c"}
    m = patched_map(base, np.array([2, 7]), {1: "x"})  # site 2 cleared, site 7 written
    assert isinstance(m, PatchedMap) and dict(m) == {1: "a", 5: "c", 7: "x"} and len(m) == 3
    m2 = patched_map(m, np.array([7, 1]), {0: "y"})
    assert dict(m2) == {5: "c", 7: "y"} and dict(m) == {1: "a", 5: "c", 7: "x"}
    assert base == {1: "a", 2: "b", 5: "c"} and m2.get(1) is None


def _copy_of(store, pid: str, new_id: str, dx: float = 0.0, dy: float = 0.0):
    row = store.read("plots", where={"plot_id": pid})
    row["plot_id"] = new_id
    row["geometry"] = [affinity.translate(row.geometry.iloc[0], dx, dy)]
    return row.drop(columns=["version"], errors="ignore")


def test_a_plot_insert_or_delete_costs_that_plot(sample_location, monkeypatch):
    """An inserted plot is appended (only it is joined and evaluated), a deleted one's
    place is taken by the last plot; the other plots keep their positions and the id
    index of every plot is not built again; the answers equal a rebuild's."""
    from planner.servicing import incremental

    store = open_store(sample_location)
    live = LiveServicing()
    model = live.model(store, TODAY)
    model.answer()
    model.headroom()
    seen: list[int] = []
    real = incremental.evaluate

    def counted(m, sites, scen, **kw):
        seen.append(sites.n)
        return real(m, sites, scen, **kw)

    monkeypatch.setattr(incremental, "evaluate", counted)
    ids = sorted(model.plot_ids.tolist())
    store.insert("plots", _copy_of(store, ids[3], "Q-NEW", 150.0, -150.0))
    added = live.model(store, TODAY)
    assert added._plot_index._base is model._plot_index._base
    assert added.plot_ids[-1] == "Q-NEW" and added.plot_ids[:-1].tolist() == model.plot_ids.tolist()
    added.answer()
    added.headroom()
    assert seen and set(seen) == {1}
    victim = ids[10]
    p = int(np.flatnonzero(added.plot_ids == victim)[0])
    store.delete("plots", victim)
    gone = live.model(store, TODAY)
    assert gone._plot_index._base is model._plot_index._base
    assert gone.plot_ids[p] == "Q-NEW" and len(gone.plot_ids) == len(model.plot_ids)
    assert not gone.has_plot(victim) and gone.has_plot("Q-NEW")
    others = np.flatnonzero(gone.plot_ids != "Q-NEW")
    assert gone.plot_ids[others].tolist() == added.plot_ids[others].tolist()
    gone.answer()
    gone.headroom()
    assert set(seen) == {1}
    same_answers(gone, fresh(store))
    assert gone.layers["plots"]["plot_id"].astype(str).tolist() == gone.plot_ids.tolist()
    store.close()


def test_inserts_deletes_and_edits_without_a_reader_between_them(sample_location):
    """Stacked inserts, deletes and edits (the plots frame merged only at the end): it is in
    the model's order (KPIs read both) and the answers equal a rebuild's; a reader of
    the old revision keeps its answers."""
    store = open_store(sample_location)
    live = LiveServicing()
    old = live.model(store, TODAY)
    old.answer()
    ids = sorted(old.plot_ids.tolist())
    a, b, c = ids[2], ids[7], ids[12]
    pids = [p for p in ids[:30:3] if p not in (a, b, c)]
    before = _seen(old, pids)
    gone_b = _copy_of(store, b, b)
    writes = [
        lambda: store.delete("plots", a),
        lambda: store.insert("plots", _copy_of(store, b, "Q-ONE", 150.0, -150.0)),
        lambda: store.insert("plots", _copy_of(store, c, "Q-TWO", -150.0, 150.0)),
        lambda: store.update("plots", "Q-ONE", {"power_kw": 1234.5, "status": "reserved"}),
        lambda: store.delete("plots", b),
        lambda: store.insert("plots", _copy_of(store, c, "Q-THREE", 150.0, 150.0)),
        lambda: store.delete("plots", "Q-TWO"),
        lambda: store.insert("plots", gone_b),  # back again: a new plot to the model
    ]
    for k, write in enumerate(writes):
        write()
        if k % 3 != 1:  # a reader of answers (never of the frame) now and then
            live.model(store, TODAY).answer(pids[:2])
    new = live.model(store, TODAY)
    assert new.layers["plots"]["plot_id"].astype(str).tolist() == new.plot_ids.tolist()
    same_answers(new, fresh(store))
    _same(_seen(old, pids), before)
    store.close()


def test_the_first_popup_after_a_write_answers_its_own_plot(sample_location):
    """A plot's record after a write reads that plot's readiness, not every plot's."""
    store = open_store(sample_location)
    live = LiveServicing()
    model = live.model(store, TODAY)
    model.answer()
    pid = sorted(model.plot_ids.tolist())[4]
    store.update("plots", pid, {"power_kw": 321.0})
    after = live.model(store, TODAY)
    record = after.answer([pid])[0]
    assert not [k for k in after._derived if isinstance(k, tuple) and k[0] == "ready"]
    assert record == fresh(store).answer([pid])[0]
    store.close()


def test_a_patched_array_cut_and_a_site_swapped_out():
    base = np.arange(20.0).reshape(2, 10)
    p = patched(base, np.array([3]), np.array([[-3.0], [-13.0]]))
    cut = patched(p, np.zeros(0, np.intp), np.zeros((2, 0)), size=6)
    want = base[:, :6].copy()
    want[:, 3] = [-3.0, -13.0]
    assert cut.shape == (2, 6) and np.array_equal(np.asarray(cut), want)
    swapped = swap_removed(p, 2)  # the last site (9) takes site 2's place
    want = np.asarray(p)[:, :9].copy()
    want[:, 2] = base[:, 9]
    assert np.array_equal(np.asarray(swapped), want) and np.array_equal(
        swapped[:, np.array([2, 3])], want[:, [2, 3]]
    )
    assert np.array_equal(np.asarray(swap_removed(np.arange(5), 4)), np.arange(4))
    m = swap_removed_map({1: "a", 4: "e"}, 1, 4)
    assert dict(m) == {1: "e"}
    index = PlotIndex.of(np.array(["a", "b", "c"], dtype=object))
    moved = index.placed({"a": -1, "c": 0, "d": 2}, np.array(["c", "b", "d"], dtype=object))
    assert moved.get_indexer(pd.Index(["a", "b", "c", "d", "x"])).tolist() == [-1, 1, 0, 2, -1]
    assert "a" not in moved and "d" in moved and "a" in index
