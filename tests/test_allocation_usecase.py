"""The allocation use cases on a real GeoPackage: shared headroom when a selection is checked
(planner.reservation.check_many), accept_many all or nothing, and batch intake through the
use case and `zoneplan applications import`."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from geo.store import open_store
from planner import reservation
from planner.servicing import ServicingModel
from usecases import applications as usecase
from usecases import intake
from zoneplan.cli import main

SS14 = ("P-018", "P-021", "P-022", "P-025", "P-032", "P-035", "P-040", "P-061")  # all on SS-14
NEEDS = {
    "project": "Cold store",
    "company": "Bar LLP",
    "sector": "logistics",
    "min_ha": 0,
    "max_ha": 20,
    "invest": 1e9,
    "jobs": 40,
}


def _file(store, plot_id, power_kw):
    return usecase.apply(
        store, {**NEEDS, "plot_id": plot_id, "power_kw": power_kw}, user="investor", role="investor"
    ).application


def test_a_selection_shares_the_headroom_of_its_substation(store):
    """SS-14 has 970 kW: alone each 600 kW pair fits, together the second does not."""
    model = ServicingModel(store.snapshot())
    pairs = [(store.get("plots", p), {**NEEDS, "power_kw": 600}) for p in SS14[:2]]
    assert reservation.check_many(pairs, model, shared=False) == [[], []]
    first, second = reservation.check_many(pairs, model)
    assert first == []
    assert [b.message() for b in second] == ["SS-14 has 370 kW left, the application needs 600 kW"]
    with pytest.raises(ValueError, match="listed twice"):
        reservation.check_many([pairs[0], pairs[0]], model)
    assert reservation.check(*pairs[0], model) == []


def test_accept_many_is_all_or_nothing(store):
    apps = [_file(store, p, 400) for p in SS14[:3]]  # 3 × 400 kW on SS-14's 970 kW
    pairs = [(a["app_id"], a["plot_id"]) for a in apps]
    audit = store.count("audit")
    with pytest.raises(usecase.SelectionRefused) as refused:
        usecase.accept_many(store, pairs, user="planner", role="planner")
    (stale,) = refused.value.stale
    assert stale.app_id == apps[2]["app_id"]
    assert "SS-14 has 170 kW left, the application needs 400 kW" in stale.message()
    assert "1 of 3 can no longer be accepted" in str(refused.value)
    assert store.count("audit") == audit
    done = usecase.accept_many(store, pairs[:2], user="planner", role="planner")
    assert [d["status"] for d in done] == ["reserved", "reserved"]
    assert store.get("plots", SS14[0])["power_kw"] == 400
    with pytest.raises(usecase.Forbidden):
        usecase.accept_many(store, pairs[2:], user="investor", role="investor")
    with pytest.raises(usecase.Invalid, match="listed twice"):
        usecase.accept_many(store, [pairs[2], pairs[2]], user="planner", role="planner")


HEADER = "app_id,project,sector,min_ha,max_ha,rail_need,power_kw,invest,jobs,investor\n"


def test_intake_files_every_row_or_none(store):
    with pytest.raises(intake.IntakeRefused) as refused:
        intake.import_csv(
            store,
            (HEADER + "C-1,Mill,food,1,2,no,10,1,1,\nC-2,Mill,food,1,2,no,10,1,1,ghost\n").encode(),
            user="planner",
        )
    assert refused.value.problems == [(3, "investor 'ghost' is not a user of this service")]
    assert store.count("applications", where={"app_id": ["C-1", "C-2"]}) == 0
    done = intake.import_csv(
        store, (HEADER + "C-1,Mill,food,1,2,no,10,1,1,investor\n").encode(), user="planner"
    )
    assert done.app_ids == ["C-1"]
    assert store.get("applications", "C-1")["investor"] == "investor"
    with pytest.raises(intake.IntakeRefused) as missing:
        intake.import_csv(store, b"app_id,sector\nC-9,food\n", user="planner")
    assert missing.value.problems[0] == (1, "missing column(s) project")


def test_the_command_line_imports_and_refuses(store_path, tmp_path, capsys):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(HEADER + "D-1,Mill,food,1,2,no,10,1,1,\n", encoding="utf-8")
    bad.write_text(HEADER + "D-2,Mill,food,1,2,perhaps,10,1,1,\n", encoding="utf-8")
    cli = ["applications", "import", "--db", str(store_path)]
    assert main([*cli, str(bad)]) == 1
    err = capsys.readouterr().err
    assert "line 2: rail_need 'perhaps' is not yes/no" in err and "nothing was imported" in err
    assert main([*cli, str(good), "--investor", "investor"]) == 0
    assert "imported 1 applications (pending): D-1" in capsys.readouterr().out
    assert open_store(store_path).get("applications", "D-1")["status"] == "submitted"


def test_overlapping_selections_at_once_one_wins_on_both_backends(sample_location):
    """Two planners accept overlapping selections at the same moment: the accepts take the
    plots' lock in turn, so the second sees the first's reservations and is refused whole."""
    store = open_store(sample_location)
    apps = [_file(store, p, 100) for p in SS14[:4]]
    pairs = [(a["app_id"], a["plot_id"]) for a in apps]
    selections = [pairs[:3], pairs[1:]]
    start = threading.Barrier(2)

    def accept(selection):
        start.wait()
        try:
            return usecase.accept_many(
                open_store(sample_location), selection, user="p", role="planner"
            )
        except usecase.SelectionRefused as err:
            return err

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(accept, selections))
    refused = [a for a in answers if isinstance(a, usecase.SelectionRefused)]
    assert len(refused) == 1, answers
    assert {s.app_id for s in refused[0].stale} == {pairs[1][0], pairs[2][0]}
    winner = selections[answers.index(next(a for a in answers if isinstance(a, list)))]
    reserved = set(store.read("applications", where={"status": "reserved"})["app_id"])
    assert reserved == {a for a, _ in winner}
