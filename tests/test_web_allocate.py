"""/planner/allocate and /api/allocations over a real GeoPackage: the job lifecycle (start,
poll, result, busy, cancel), accepting a selection, stale and concurrent accepts refused
with nothing half-applied, and batch intake of applications from CSV."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from geo.store import open_store
from planner.servicing import ServicingModel
from usecases import accounts, allocation
from usecases import applications as app_usecases
from usecases.jobs import Cancelled
from web import deps


def _bearer(store, username):
    return {
        "Authorization": f"Bearer {accounts.issue_token(store, username)}",
        "Accept-Language": "en",
    }


@pytest.fixture
def planner(client, store):
    client.zp_headers = _bearer(store, "planner")
    return client


def wait(client, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/allocations/{job_id}", headers=client.zp_headers).get_json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"allocation {job_id} did not finish")


def run(client, **body) -> dict:
    r = client.post("/api/allocations", json=body, headers=client.zp_headers)
    assert r.status_code == 202, r.get_json()
    job = wait(client, r.get_json()["job_id"])
    assert job["state"] == "done", job.get("error")
    result = client.get(f"/api/allocations/{job['job_id']}/result", headers=client.zp_headers)
    assert result.status_code == 200
    return result.get_json()


def test_page_is_for_planners(client, investor_client, planner_client, admin_client):
    assert client.get("/planner/allocate").status_code == 302
    assert investor_client.get("/planner/allocate").status_code == 403
    assert admin_client.get("/planner/allocate").status_code == 200
    html = planner_client.get("/planner/allocate", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )
    assert "allocate.js" in html and "zp.js" in html and "<script>" not in html
    assert 'value="A-001"' in html and "EXP-1" in html
    for words in ("35% its investment", "The most jobs", "As many applications"):
        assert words in html  # every objective explained in words


def test_a_run_proposes_plots_beside_first_come_first_served(planner, store):
    doc = run(planner, objective="weighted", time_limit=20)
    s = doc["summary"]
    assert s["method"] == "milp" and s["status"] == "optimal" and s["gap"] <= 1e-6
    assert s["applications"] == 30 and s["plots"] == 52 and s["placed"] == len(doc["proposals"])
    assert doc["comparison"]["optimised"]["value"] >= doc["comparison"]["fcfs"]["value"]
    assert {p["app_id"] for p in doc["proposals"]}.isdisjoint(a["app_id"] for a in doc["left_out"])
    assert len(doc["proposals"]) + len(doc["left_out"]) == 30
    plots = [p["plot_id"] for p in doc["proposals"]]
    assert len(set(plots)) == len(plots)
    assert {f["properties"]["plot_id"] for f in doc["features"]["features"]} == set(plots)
    assert all(store.get("plots", p)["status"] == "available" for p in plots)  # nothing written
    a005 = next(a for a in doc["left_out"] if a["app_id"] == "A-005")
    assert "SS-14" in a005["reason"]
    assert a005["rules"] == [
        {
            "rule": "power_headroom",
            "message": "SS-14 has 970 kW left, the application needs 13,160 kW",
        }
    ]
    assert all(a["reason"] for a in doc["left_out"])
    runs = planner.get("/api/allocations", headers=planner.zp_headers).get_json()["runs"]
    assert runs[0]["state"] == "done" and runs[0]["result"] is None


def test_objectives_change_the_proposal(planner):
    jobs = run(planner, objective="jobs", time_limit=20)["comparison"]["optimised"]
    count = run(planner, objective="count", time_limit=20)["comparison"]["optimised"]
    assert jobs["value"] == jobs["jobs"] and count["value"] == count["count"]


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"objective": "luck"}, 422, "objective"),
        ({"time_limit": 0}, 422, "time_limit"),
        ({"time_limit": 601}, 422, "time_limit"),
        ({"area": "EXP-9"}, 422, "no expansion area"),
        ({"app_ids": ["A-001", "A-404"]}, 422, "no application A-404"),
        ({"app_ids": []}, 422, "at least one"),
        ({"colour": "red"}, 422, "colour"),
    ],
)
def test_bad_runs_are_refused_before_a_job_starts(planner, store, body, status, words):
    r = planner.post("/api/allocations", json=body, headers=planner.zp_headers)
    assert r.status_code == status and words in r.get_json()["error"], r.get_json()
    assert store.count("jobs") == 0


def test_an_area_without_available_plots_fails_the_run_in_words(planner):
    r = planner.post("/api/allocations", json={"area": "EXP-1"}, headers=planner.zp_headers)
    job = wait(planner, r.get_json()["job_id"])
    assert job["state"] == "failed" and "EXP-1 has no available plots" in job["error"]


def test_roles_and_csrf(client, investor_client, planner_client, store, csrf_token):
    assert client.post("/api/allocations", json={}).status_code == 401
    investor = _bearer(store, "investor")
    assert client.post("/api/allocations", json={}, headers=investor).status_code == 403
    assert client.get("/api/allocations", headers=investor).status_code == 403
    assert planner_client.post("/api/allocations", json={}).status_code == 400  # no CSRF token
    token = {"X-CSRFToken": csrf_token(planner_client, "/planner/allocate")}
    assert planner_client.post("/api/allocations", json={}, headers=token).status_code == 202


def test_one_allocation_at_a_time_and_cancel(app, planner, store):
    """A run waiting for the worker (held by another job) counts: a second start is 409."""
    release = threading.Event()
    with app.app_context():
        runner = deps.get_jobs()
        hold = runner.submit("hold", {}, lambda ctx: release.wait(60) and {}, user="test")
    try:
        first = planner.post("/api/allocations", json={}, headers=planner.zp_headers)
        assert first.status_code == 202
        job_id = first.get_json()["job_id"]
        assert (
            planner.get(f"/api/allocations/{job_id}", headers=planner.zp_headers).get_json()[
                "state"
            ]
            == "queued"
        )
        second = planner.post("/api/allocations", json={}, headers=planner.zp_headers)
        assert second.status_code == 409
        assert (
            "already running" in second.get_json()["error"] and job_id in second.get_json()["error"]
        )
        cancelled = planner.post(f"/api/allocations/{job_id}/cancel", headers=planner.zp_headers)
        assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "cancelled"
        result = planner.get(f"/api/allocations/{job_id}/result", headers=planner.zp_headers)
        assert result.status_code == 409 and "cancelled" in result.get_json()["error"]
    finally:
        release.set()
        with app.app_context():
            runner.wait(hold)
    assert planner.post("/api/allocations", json={}, headers=planner.zp_headers).status_code == 202


def test_a_running_allocation_stops_when_cancelled(store):
    """The run reports through the job's progress at each phase, solving included; a cancel
    seen there stops it with nothing kept (the runner's side: tests/test_jobs.py)."""
    said: list[str] = []

    def progress(fraction, message="", interim=None):
        said.append(message)
        if message.startswith("solving"):
            raise Cancelled("allocation")

    with pytest.raises(Cancelled):
        allocation.run(store, allocation.RunRequest(time_limit=60), progress)
    assert said[:2] == ["reading the store", "building the tables"]
    assert said[-1] == "solving 30 applications × 52 plots"


def test_unknown_runs_are_404(planner):
    assert planner.get("/api/allocations/nope", headers=planner.zp_headers).status_code == 404
    r = planner.post("/api/allocations/nope/accept", json={}, headers=planner.zp_headers)
    assert r.status_code == 404


def test_accept_a_selection_reserves_plots_with_demand(planner, store):
    doc = run(planner)
    chosen = doc["proposals"][:3]
    r = planner.post(
        f"/api/allocations/{doc['job_id']}/accept",
        json={"app_ids": [p["app_id"] for p in chosen]},
        headers=planner.zp_headers,
    )
    assert r.status_code == 200, r.get_json()
    assert [a["assigned"] for a in r.get_json()["accepted"]] == [p["plot_id"] for p in chosen]
    for p in chosen:
        app = store.get("applications", p["app_id"])
        plot = store.get("plots", p["plot_id"])
        assert app["status"] == "reserved" and app["assigned"] == p["plot_id"]
        assert plot["status"] == "reserved" and plot["power_kw"] == app["power_kw"]
        assert plot["invest"] == app["invest"] and plot["project"] == app["project"]
    again = planner.get(f"/api/allocations/{doc['job_id']}/result", headers=planner.zp_headers)
    status = {p["app_id"]: p["status_now"] for p in again.get_json()["proposals"]}
    assert [status[p["app_id"]] for p in chosen] == ["reserved"] * 3
    twice = planner.post(
        f"/api/allocations/{doc['job_id']}/accept",
        json={"app_ids": [chosen[0]["app_id"]]},
        headers=planner.zp_headers,
    )
    assert twice.status_code == 409 and "reserved now" in twice.get_json()["error"]
    foreign = planner.post(
        f"/api/allocations/{doc['job_id']}/accept",
        json={"app_ids": ["A-005"]},
        headers=planner.zp_headers,
    )
    assert foreign.status_code == 422 and "not in this proposal" in foreign.get_json()["error"]


def test_a_stale_accept_is_refused_and_nothing_is_half_applied(planner, store):
    doc = run(planner)
    proposals = doc["proposals"]
    gone, taken = proposals[0], proposals[1]
    app_usecases.withdraw(store, gone["app_id"], user="investor", role="investor")
    store.update("plots", taken["plot_id"], {"status": "candidate"}, user="planner")
    audit = store.count("audit")
    r = planner.post(
        f"/api/allocations/{doc['job_id']}/accept", json={}, headers=planner.zp_headers
    )
    assert r.status_code == 409
    body = r.get_json()
    stale = {s["app_id"]: s["message"] for s in body["stale"]}
    assert stale == {
        gone["app_id"]: f"application {gone['app_id']} is withdrawn now, no longer pending",
        taken["app_id"]: f"plot {taken['plot_id']} is candidate now, no longer available",
    }
    assert f"2 of {len(proposals)} can no longer be accepted" in body["error"]
    assert store.count("audit") == audit  # nothing written
    assert all(
        store.get("applications", p["app_id"])["status"] in ("submitted", "withdrawn")
        for p in proposals
    )
    rest = [p["app_id"] for p in proposals[2:]]
    r = planner.post(
        f"/api/allocations/{doc['job_id']}/accept",
        json={"app_ids": rest},
        headers=planner.zp_headers,
    )
    assert r.status_code == 200 and len(r.get_json()["accepted"]) == len(rest)


def test_an_asset_out_of_service_since_the_run_refuses_its_plots(planner, store):
    doc = run(planner)
    fed = {  # proposals drawing power
        p["app_id"]: p
        for p in doc["proposals"]
        if (p["power_kw"] or 0) > 0 and store.get("plots", p["plot_id"])["status"] == "available"
    }
    model = ServicingModel(store.snapshot())
    subs = {a: model.answer([p["plot_id"]])[0]["power"].get("substation") for a, p in fed.items()}
    target = next(iter(sorted(set(subs.values()))))
    store.update("substations", target, {"status": "under_repair"}, user="planner")
    r = planner.post(
        f"/api/allocations/{doc['job_id']}/accept", json={}, headers=planner.zp_headers
    )
    assert r.status_code == 409
    stale = r.get_json()["stale"]
    # its plots fall back on neighbouring substations, whose headroom now runs short
    assert stale and {s["app_id"] for s in stale} <= set(fed)
    assert {rule["rule"] for s in stale for rule in s["rules"]} <= {"power", "power_headroom"}
    assert all(s["rules"] for s in stale)
    assert store.count("plots", where={"status": "reserved"}) == 10  # the sample's, unchanged


def test_two_planners_accepting_overlapping_proposals_one_wins(live_server, store_path):
    store = open_store(store_path)
    headers = _bearer(store, "planner")
    r = requests.post(f"{live_server}/api/allocations", json={}, headers=headers, timeout=60)
    job_id = r.json()["job_id"]
    deadline = time.time() + 120
    while requests.get(f"{live_server}/api/allocations/{job_id}", headers=headers).json()[
        "state"
    ] in ("queued", "running"):
        assert time.time() < deadline
        time.sleep(0.1)
    doc = requests.get(f"{live_server}/api/allocations/{job_id}/result", headers=headers).json()
    ids = [p["app_id"] for p in doc["proposals"]]
    selections = [ids[:4], ids[2:6]]  # overlapping in two applications
    start = threading.Barrier(2)

    def accept(selection):
        start.wait()
        return requests.post(
            f"{live_server}/api/allocations/{job_id}/accept",
            json={"app_ids": selection},
            headers=headers,
            timeout=120,
        )

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(accept, selections))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409], [a.text for a in answers]
    winner = selections[[a.status_code for a in answers].index(200)]
    reserved = store.read("applications", where={"status": "reserved"})["app_id"].tolist()
    assert set(reserved) == set(winner)


# ------------------------------------------------------------------ batch intake
GOOD = (
    "app_id,company,project,sector,plot_id,min_ha,max_ha,power_kw,water_m3d,rail_need,hazard,"
    "invest,jobs,priority\n"
    "B-001,ТОО «Мыс»,Cable plant,machine,,1,3,200,10,no,2,1500000000,40,1\n"
    "B-002,Kaspi Foods LLP,Bakery,food,P-155,0.5,3,150,20,no,1,800000000,25,0\n"
)
BAD = (
    "app_id,company,project,sector,plot_id,min_ha,max_ha,power_kw,water_m3d,rail_need,hazard,"
    "invest,jobs,priority\n"
    "B-001,ТОО «Мыс»,Cable plant,machine,,1,3,200,10,no,2,1500000000,40,1\n"
    "\n"
    "B-002,Kaspi Foods LLP,,food,,0.5,2,150,20,no,1,800000000,25,0\n"
    "A-001,X,Y,spaceships,,2,3,1,1,no,3,1,1,1\n"
    "B-004,X,Y,food,P-999,1,2,1,1,no,1,1,1,1\n"
)


def _upload(client, text: str, headers: dict):
    import io

    return client.post(
        "/api/applications/import",
        data={"file": (io.BytesIO(text.encode("utf-8")), "mail.csv")},
        headers=headers,
        content_type="multipart/form-data",
    )


def test_a_csv_of_applications_joins_the_pending_list(planner, store):
    r = _upload(planner, GOOD, planner.zp_headers)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["app_ids"] == ["B-001", "B-002"]
    b1 = store.get("applications", "B-001")
    assert b1["status"] == "submitted" and b1["investor"] == "planner"
    assert b1["company"] == "ТОО «Мыс»" and b1["power_kw"] == 200
    assert store.get("applications", "B-002")["plot_id"] == "P-155"
    doc = run(planner)
    assert doc["summary"]["applications"] == 32


def test_bad_rows_are_reported_by_line_and_nothing_is_stored(planner, store):
    before = store.count("applications")
    r = _upload(planner, BAD, planner.zp_headers)
    assert r.status_code == 422
    problems = [(p["index"], p["reason"]) for p in r.get_json()["problems"]]
    assert (4, "project is empty") in problems
    assert (5, "app_id A-001 is already stored") in problems
    assert any(line == 5 and "spaceships" in text for line, text in problems)
    assert (6, "plot_id: there is no plot P-999") in problems
    assert all(line != 2 for line, _ in problems)
    assert store.count("applications") == before
    unreadable = _upload(planner, BAD.replace("150,20", "abc,20"), planner.zp_headers)
    assert unreadable.status_code == 422
    assert [(p["index"], p["reason"]) for p in unreadable.get_json()["problems"]] == [
        (4, "power_kw 'abc' is not a number")
    ]
    wrong_area = GOOD.replace("P-155,0.5,3", "P-155,5,9")
    r = _upload(planner, wrong_area, planner.zp_headers)
    assert r.status_code == 422
    assert r.get_json()["problems"][0]["index"] == 3
    assert "outside the 5–9 ha applied for" in r.get_json()["problems"][0]["reason"]
    latin1 = planner.post(
        "/api/applications/import",
        data={"file": (__import__("io").BytesIO("app_id\nÄ".encode("latin-1")), "x.csv")},
        headers=planner.zp_headers,
        content_type="multipart/form-data",
    )
    assert latin1.status_code == 422 and "not UTF-8" in latin1.get_json()["error"]
    assert store.count("applications") == before


def test_intake_is_for_planners(client, store):
    assert _upload(client, GOOD, _bearer(store, "investor")).status_code == 403
    assert _upload(client, GOOD, {}).status_code == 401


def test_the_api_is_documented(client):
    doc = client.get("/api/openapi.json").get_json()
    for path in (
        "/allocations",
        "/allocations/{job_id}",
        "/allocations/{job_id}/result",
        "/allocations/{job_id}/accept",
        "/allocations/{job_id}/cancel",
        "/applications/import",
    ):
        assert any(p.endswith(path) for p in doc["paths"]), path


def test_reasons_are_said_in_the_readers_language(planner):
    doc = run(planner)
    ru = planner.get(
        f"/api/allocations/{doc['job_id']}/result",
        headers={**planner.zp_headers, "Accept-Language": "ru"},
    ).get_json()
    english = {a["app_id"]: a["reason"] for a in doc["left_out"]}
    russian = {a["app_id"]: a["reason"] for a in ru["left_out"]}
    assert english.keys() == russian.keys() and english
    assert "SS-14" in russian["A-005"] and "substation" not in russian["A-005"]
    assert "подстанция" in russian["A-005"]
    assert all(russian[a] != english[a] for a in english)
