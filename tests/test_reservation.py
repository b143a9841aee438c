"""Reservation is a contract: accepting checks every rule and consumes capacity; releasing frees it.

The concurrency proof runs against a live server on the GeoPackage store, and on PostGIS
when a server answers on 127.0.0.1:5432.

On the sample zone: SS-14 feeds P-104 and many other available plots and has 970 kW left;
no available plot has rail today (the Industrialnaya station is closed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import psycopg
import pytest
import requests

from geo.store import open_store
from geo.store.migration import migrate
from planner import allocation, reservation
from planner.servicing import ServicingModel
from usecases import accounts
from usecases import applications as usecase

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


def _bearer(store, username):
    return {
        "Authorization": f"Bearer {accounts.issue_token(store, username)}",
        "Accept-Language": "en",
    }


def _headroom(client, headers, plot_id):
    r = client.get("/api/plots?status=available&limit=1000", headers=headers)
    assert r.status_code == 200
    found = [
        f["properties"] for f in r.get_json()["features"] if f["properties"]["plot_id"] == plot_id
    ]
    return found[0]["power_headroom_kw"] if found else None


# ------------------------------------------------------------------ the rules (pure)
def test_pair_rules_name_each_rule_a_pair_breaks():
    plots = pd.DataFrame(
        {
            "plot_id": ["P-1", "P-2"],
            "area_ha": [2.0, 5.0],
            "rail": [False, True],
            "node": ["SS-1", None],
            "water_node": ["W-1", "W-1"],
            "sectors": ["food", "*"],
            "hazard_ok": [2, None],
        }
    )
    apps = pd.DataFrame(
        {
            "app_id": ["A"],
            "min_ha": [1.0],
            "max_ha": [3.0],
            "sector": ["machine"],
            "rail_need": [True],
            "power_kw": [500.0],
            "water_m3d": [10.0],
            "hazard": [3.0],
            "invest": [1.0],
            "jobs": [1.0],
        }
    )
    caps = pd.DataFrame(
        {"node": ["SS-1", "W-1"], "power_kw": [400.0, 0.0], "water_m3d": [0.0, 50.0]}
    )
    rules = allocation.pair_rules(plots, apps, caps).set_index("plot_id")
    assert rules.loc["P-1"].drop("app_id").to_dict() == {
        "size": True,
        "sector": False,
        "rail": False,
        "hazard": False,
        "power": True,
        "water": True,
        "power_headroom": False,
        "water_headroom": True,
    }
    assert rules.loc["P-2"].drop("app_id").to_dict() == {
        "size": False,
        "sector": True,
        "rail": True,
        "hazard": True,
        "power": False,
        "water": True,
        "power_headroom": False,
        "water_headroom": True,
    }


def test_check_names_the_binding_rule_in_words(store):
    model = ServicingModel(store.snapshot())
    plot = store.get("plots", "P-104")
    breaches = reservation.check(
        plot, {**NEEDS, "power_kw": 5000, "rail_need": True, "min_ha": 7, "max_ha": 9}, model
    )
    words = {b.rule: b.message() for b in breaches}
    assert words["power_headroom"] == "SS-14 has 970 kW left, the application needs 5,000 kW"
    assert words["size"] == "plot P-104 has 6.25 ha, outside the 7–9 ha applied for"
    assert words["rail"].startswith("the application needs rail; plot P-104 has none — ")
    assert "Industrialnaya station closed" in words["rail"]
    assert reservation.check(plot, {**NEEDS, "power_kw": 970}, model) == []
    with pytest.raises(ValueError, match="not available"):
        reservation.check(store.get("plots", "P-002"), NEEDS, model)


def test_an_asset_not_operational_gives_no_capacity(store):
    """With SS-14 under repair its plots fall back to the next operational substation."""
    store.update("substations", "SS-14", {"status": "under_repair"})
    model = ServicingModel(store.snapshot())
    record = model.answer(["P-104"])[0]["power"]
    assert record["substation"] != "SS-14"
    (breach,) = reservation.check(
        store.get("plots", "P-104"), {**NEEDS, "power_kw": record["headroom_kw"] + 1}, model
    )
    assert breach.rule == "power_headroom" and breach.params["node"] == record["substation"]


# ------------------------------------------------------------------ the API scenario of the issue
def test_capacity_promised_is_capacity_consumed(client, store):
    investor, planner = _bearer(store, "investor"), _bearer(store, "planner")
    assert _headroom(client, planner, "P-040") == 970.0
    # the investor is warned, and may file anyway
    r = client.post(
        "/api/applications", json={**NEEDS, "plot_id": "P-104", "power_kw": 5000}, headers=investor
    )
    assert r.status_code == 201, r.get_json()
    too_big = r.get_json()
    assert too_big["warnings"] == [
        {
            "rule": "power_headroom",
            "message": "SS-14 has 970 kW left, the application needs 5,000 kW",
        }
    ]
    # the planner's accept is refused naming the rule; nothing changes
    before = store.read("plots")
    r = client.post(
        f"/api/applications/{too_big['app_id']}/accept",
        json={"version": too_big["version"]},
        headers=planner,
    )
    assert r.status_code == 409
    body = r.get_json()
    assert "SS-14 has 970 kW left, the application needs 5,000 kW" in body["error"]
    assert [(p["field"], p["feature_id"]) for p in body["problems"]] == [
        ("power_headroom", "P-104")
    ]
    pd.testing.assert_frame_equal(store.read("plots"), before)
    assert store.get("applications", too_big["app_id"])["status"] == "submitted"
    # a fitting one is accepted, and is written onto the plot
    r = client.post(
        "/api/applications",
        json={**NEEDS, "plot_id": "P-104", "power_kw": 600, "water_m3d": 30},
        headers=investor,
    )
    fits = r.get_json()
    assert r.status_code == 201 and fits["warnings"] == []
    r = client.post(
        f"/api/applications/{fits['app_id']}/accept", json={"plot_id": "P-104"}, headers=planner
    )
    assert r.status_code == 200 and r.get_json()["assigned"] == "P-104"
    plot = store.get("plots", "P-104")
    assert (
        plot["status"],
        plot["power_kw"],
        plot["water_m3d"],
        plot["resident"],
        plot["project"],
        plot["sector"],
        plot["invest"],
        plot["jobs"],
    ) == ("reserved", 600.0, 30.0, "Bar LLP", "Cold store", "logistics", 1e9, 40)
    # ... so every other plot on SS-14 shows 600 kW less at once, and its servicing says so
    assert _headroom(client, planner, "P-040") == 370.0
    rec = client.get("/api/servicing/P-040", headers=planner).get_json()["record"]
    assert rec["power"]["substation"] == "SS-14" and rec["power"]["headroom_kw"] == 370.0
    kpi = client.get("/api/kpi", headers=planner).get_json()
    ss14 = [h for h in kpi["headroom"] if h["asset_id"] == "SS-14"][0]
    assert (ss14["headroom"], ss14["committed"]) == (370.0, 9800.0)
    # the first application now breaks the rule by more; a second 400 kW one no longer fits
    r = client.post(
        "/api/applications", json={**NEEDS, "plot_id": "P-040", "power_kw": 400}, headers=investor
    )
    assert (
        r.get_json()["warnings"][0]["message"]
        == "SS-14 has 370 kW left, the application needs 400 kW"
    )
    # rejecting the accepted one releases the plot and its capacity
    r = client.post(
        f"/api/applications/{fits['app_id']}/reject",
        json={"reason": "The investor chose another zone"},
        headers=planner,
    )
    assert r.status_code == 200 and r.get_json()["status"] == "rejected"
    plot = store.get("plots", "P-104")
    assert plot["status"] == "available" and plot["power_kw"] is None and plot["resident"] is None
    assert _headroom(client, planner, "P-040") == 970.0


def test_apply_still_refuses_what_the_plot_can_never_give(client, store):
    investor = _bearer(store, "investor")
    before = store.count("applications")
    r = client.post(
        "/api/applications", json={**NEEDS, "plot_id": "P-104", "max_ha": 5}, headers=investor
    )
    assert r.status_code == 422 and r.get_json()["field"] == "max_ha"
    r = client.post(
        "/api/applications",
        json={**NEEDS, "plot_id": "P-022", "sector": "machine"},
        headers=investor,
    )
    assert r.status_code == 422 and r.get_json()["field"] == "sector"
    assert store.count("applications") == before


def test_accept_of_an_application_needing_rail_is_refused(client, store):
    investor, planner = _bearer(store, "investor"), _bearer(store, "planner")
    r = client.post(
        "/api/applications", json={**NEEDS, "plot_id": "P-104", "rail_need": True}, headers=investor
    )
    assert [w["rule"] for w in r.get_json()["warnings"]] == ["rail"]
    r = client.post(f"/api/applications/{r.get_json()['app_id']}/accept", headers=planner)
    assert r.status_code == 409 and "needs rail; plot P-104 has none" in r.get_json()["error"]
    assert store.get("plots", "P-104")["status"] == "available"


# ------------------------------------------------------------------ the command line
def _zoneplan(*args, db):
    return subprocess.run(
        [sys.executable, "-m", "zoneplan.cli", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_accept_refuses_naming_the_rule_and_reject_releases(store, store_path):
    too_big = usecase.apply(
        store, {**NEEDS, "plot_id": "P-104", "power_kw": 5000}, user="investor", role="investor"
    ).application["app_id"]
    fits = usecase.apply(
        store, {**NEEDS, "plot_id": "P-104", "power_kw": 900}, user="investor", role="investor"
    ).application["app_id"]
    before = store_path.read_bytes()
    r = _zoneplan("applications", "accept", too_big, db=store_path)
    assert r.returncode == 1 and r.stdout == ""
    assert "SS-14 has 970 kW left, the application needs 5,000 kW" in r.stderr
    assert store_path.read_bytes() == before
    r = _zoneplan("applications", "accept", fits, "--user", "operator", db=store_path)
    assert r.returncode == 0, r.stderr
    assert f"{fits} accepted: plot P-104 is reserved" in r.stdout
    assert store.get("plots", "P-104")["power_kw"] == 900.0
    assert store.read("audit", where={"feat_id": "P-104"})["username"].tolist()[-1] == "operator"
    r = _zoneplan("applications", "list", "--status", "reserved", "--json", db=store_path)
    assert [a["app_id"] for a in json.loads(r.stdout)] == [fits]
    r = _zoneplan("applications", "reject", fits, "--reason", "withdrawn by letter", db=store_path)
    assert r.returncode == 0 and "plot P-104 is released" in r.stdout
    assert store.get("plots", "P-104")["status"] == "available"
    r = _zoneplan("applications", "withdraw", fits, db=store_path)
    assert r.returncode == 1 and "is rejected" in r.stderr
    assert _zoneplan("applications", "accept", "A-none", db=store_path).returncode == 1
    assert _zoneplan("applications", "reject", fits, db=store_path).returncode == 2


# ------------------------------------------------------------------ concurrency
def test_parallel_accepts_on_one_substation_exactly_k_win(live_server, store_path):
    """Eight accepts of 300 kW at once onto eight SS-14 plots: 970 kW fits three."""
    store = open_store(store_path)
    ids = [
        usecase.apply(
            store, {**NEEDS, "plot_id": p, "power_kw": 300}, user="investor", role="investor"
        ).application["app_id"]
        for p in SS14
    ]
    headers = _bearer(store, "planner")
    start = threading.Barrier(len(ids))

    def accept(app_id):
        start.wait()
        return requests.post(
            f"{live_server}/api/applications/{app_id}/accept", json={}, headers=headers, timeout=120
        )

    with ThreadPoolExecutor(len(ids)) as pool:
        answers = list(pool.map(accept, ids))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 3 + [409] * 5, [r.text for r in answers]
    # the accepts ran one after the other: each loser saw what the three winners left
    messages = [r.json()["error"] for r in answers if r.status_code == 409]
    assert all("SS-14 has 70 kW left, the application needs 300 kW" in m for m in messages), (
        messages
    )
    plots = store.read("plots", where={"plot_id": list(SS14)}).set_index("plot_id")
    reserved = plots[plots["status"] == "reserved"]
    assert len(reserved) == 3 and (reserved["power_kw"] == 300).all()
    assert (plots.drop(reserved.index)["status"] == "available").all()
    apps = store.read("applications", where={"app_id": ids}).set_index("app_id")
    assert sorted(apps["status"]) == ["reserved"] * 3 + ["submitted"] * 5
    assert set(apps.loc[apps["status"] == "reserved", "assigned"]) == set(reserved.index)
    head = ServicingModel(store.snapshot()).headroom().set_index("asset_id").loc["SS-14"]
    assert head["headroom"] == pytest.approx(70.0) and head["committed_plots"] == 10 + 3


PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def postgis_zone(sample_db):
    """The sample migrated into a fresh PostGIS database (skipped without a local server)."""
    name = f"zp_reservation_{os.getpid()}"
    try:
        admin = psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as err:
        pytest.skip(f"no PostgreSQL server at {PG_SERVER}: {err}")
    with admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    url = f"{PG_SERVER}/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        migrate(sample_db, url)
        yield url
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_parallel_accepts_on_postgis_lock_the_substation(postgis_zone):
    """On PostGIS rows are locked one by one: the accepts onto different plots meet at the
    lock of SS-14's row, so again exactly three of eight win."""
    store = open_store(postgis_zone)
    ids = [
        usecase.apply(
            store, {**NEEDS, "plot_id": p, "power_kw": 300}, user="investor", role="investor"
        ).application["app_id"]
        for p in SS14
    ]
    start = threading.Barrier(len(ids))

    def accept(app_id):
        own = open_store(postgis_zone)
        start.wait()
        try:
            return usecase.accept(own, app_id, user="planner", role="planner")["status"]
        except usecase.Refused as err:
            return str(err)
        finally:
            own.close()

    with ThreadPoolExecutor(len(ids)) as pool:
        answers = list(pool.map(accept, ids))
    assert answers.count("reserved") == 3, answers
    assert all("SS-14 has 70 kW left" in a for a in answers if a != "reserved")
    head = ServicingModel(store.snapshot()).headroom().set_index("asset_id").loc["SS-14"]
    assert head["headroom"] == pytest.approx(70.0)
    store.close()
