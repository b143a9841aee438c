"""Plan progress: accepting an application moves the targets it counts towards, the
month-by-month progress is served by the API and the CLI alike, and the optimiser's
reasons are said in the reader's language."""

from __future__ import annotations

import json
import sqlite3

import pytest

from geo.store import open_store
from planner.allocation.reasons import HEADROOM, Reason
from planner.kpi import target_progress
from usecases import accounts
from usecases import applications as usecase
from zoneplan.cli import main

PLOT = "P-001"  # available, 1.6 ha, every sector, no utility asked of it below


def _targets(store) -> dict[str, float]:
    return {
        t["target_id"]: t["actual"]
        for t in target_progress(store.read("plots"), store.read("targets"))
    }


def _apply(store, **fields):
    needs = {
        "project": "Кирпичный завод",
        "company": "ТОО «Кирпич»",
        "sector": "materials",
        "plot_id": PLOT,
        "min_ha": 1.0,
        "max_ha": 2.0,
        "invest": 2.0e9,
        "jobs": 40,
        **fields,
    }
    return usecase.apply(store, needs, user="investor", role="investor").application


def test_an_accepted_application_counts_towards_the_plan_targets(store):
    before = _targets(store)
    app = _apply(store, start_yr=2022, floor_m2=6000)
    assert app["start_yr"] == 2022 and app["floor_m2"] == 6000
    usecase.accept(store, app["app_id"], user="planner", role="planner")
    plot = store.get("plots", PLOT)
    assert plot["status"] == "reserved" and plot["start_yr"] == 2022 and plot["floor_m2"] == 6000
    after = _targets(store)
    assert after["T-01"] == before["T-01"] + 1  # projects started in 2022
    assert after["T-02"] == pytest.approx(before["T-02"] + 2.0e9)  # their investment
    # Parks count occupied or allocated plots: a reservation is not a park yet.
    assert after["T-03"] == before["T-03"] and after["T-04"] == before["T-04"]
    store.update("plots", PLOT, {"status": "allocated"}, version=plot["version"], user="planner")
    allocated = _targets(store)
    assert allocated["T-03"] == before["T-03"] + 1
    assert allocated["T-04"] == pytest.approx(before["T-04"] + 6000)
    usecase.reject(store, app["app_id"], "the investor left", user="planner", role="planner")
    assert store.get("plots", PLOT)["start_yr"] is None  # released with the rest of the demand


def test_a_start_year_outside_the_schema_is_refused_and_nothing_is_written(store):
    count = store.count("applications")
    with pytest.raises(Exception, match="start_yr"):
        _apply(store, start_yr=1200)
    assert store.count("applications") == count


def test_monthly_progress_is_the_same_in_the_api_and_the_cli(client, store, store_path, capsys):
    _apply(store, start_yr=2022, floor_m2=6000)
    url = "/api/kpi/timeline"
    assert client.get(url).status_code == 401
    investor = {"Authorization": f"Bearer {accounts.issue_token(store, 'investor')}"}
    assert client.get(url, headers=investor).status_code == 403
    planner = {"Authorization": f"Bearer {accounts.issue_token(store, 'planner')}"}
    served = client.get(url, headers=planner)
    assert served.status_code == 200
    doc = served.get_json()
    assert main(["kpi", "--db", str(store_path), "--monthly", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == doc
    assert doc["months"][0] == "2022-01" and len(doc["months"]) >= 12 * 4
    assert all(len(t["actual"]) == len(doc["months"]) for t in doc["targets"])
    assert doc["applications"]["filed"][-1] == store.count("applications")
    # The last month of a target already due is what /api/kpi reports now.
    now = {t["target_id"]: t["actual"] for t in _kpi_targets(client, planner)}
    for t in doc["targets"]:
        if t["year"] < int(doc["months"][-1][:4]):
            assert t["actual"][-1] == pytest.approx(now[t["target_id"]]), t["target_id"]


def _kpi_targets(client, headers):
    r = client.get("/api/kpi", headers=headers)
    assert r.status_code == 200
    return r.get_json()["targets"]


def test_the_monthly_table_reads_in_human_units(capsys, sample_db):
    assert main(["kpi", "--db", str(sample_db), "--monthly"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["month", "T-01", "projects"]
    assert "13.3 bn ₸ by 2022" in out[1] and "250,000 m² by 2025" in out[1]
    assert out[2].startswith("2022-01 ")
    assert main(["kpi", "--db", str(sample_db), "--monthly", "--as-of", "2023-01-01"]) == 1
    assert "leave out --as-of" in capsys.readouterr().err


def test_a_store_made_before_the_new_fields_gains_them_on_opening(store_path):
    with sqlite3.connect(store_path) as conn:
        conn.execute("ALTER TABLE applications DROP COLUMN start_yr")
        conn.execute("ALTER TABLE applications DROP COLUMN floor_m2")
    store = open_store(store_path)
    apps = store.read("applications")
    assert {"start_yr", "floor_m2"} <= set(apps.columns) and len(apps) == 30
    app = _apply(store, start_yr=2024, floor_m2=1)
    assert store.get("applications", app["app_id"])["start_yr"] == 2024


def test_a_reason_keeps_its_words_for_another_language():
    reason = Reason(
        "substation {names} {word} {left} kW < {need} kW needed",
        names="SS-14",
        word=Reason(HEADROOM),
        left="970",
        need="13,160",
    )
    assert reason == "substation SS-14 headroom 970 kW < 13,160 kW needed"
    again = Reason.from_json(json.loads(json.dumps(reason.to_json())))
    assert again == reason and again.template == reason.template
    words = {HEADROOM: "резерв", reason.template: "подстанция {names}: {word} {left} кВт"}
    assert again.say(lambda s: words.get(s, s)) == "подстанция SS-14: резерв 970 кВт"
