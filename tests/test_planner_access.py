"""The access design page: runs through the job runner, bad input refused, a commit stored;
and the page in a real browser (Debian's Chromium): run, compare two runs, commit one.

Screenshots go to test-artifacts/access-*.png.
"""

from __future__ import annotations

import time

import pytest
from conftest import ARTIFACTS, PASSWORDS


@pytest.fixture
def planner(planner_client, csrf_token):
    planner_client.zp_headers = {"X-CSRFToken": csrf_token(planner_client, "/planner/access")}
    return planner_client


def _wait(client, job_id, timeout=120.0):
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").get_json()
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, "the design job did not finish"
        time.sleep(0.2)


def test_page_is_for_planners_only(planner, investor_client, client, csrf_token):
    page = planner.get("/planner/access")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "EXP-1" in html and "access.js" in html and "csrf-token" in html
    assert investor_client.get("/planner/access").status_code == 403
    assert client.get("/planner/access").status_code == 302
    token = {"X-CSRFToken": csrf_token(investor_client, "/account")}
    assert investor_client.post("/planner/access/run", json={}, headers=token).status_code == 403


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"area": "EXP-9", "kind": "road"}, 400, "unknown expansion area"),
        ({"area": "EXP-1", "kind": "canal"}, 400, "kind must be one of"),
        ({"area": "EXP-1", "kind": "road", "time_limit": -1}, 400, "time_limit"),
        ({"area": "EXP-1", "kind": "power", "freight_years": 5}, 400, "not to power feeders"),
        ({"area": "EXP-1", "kind": "road", "targets": "P-1,P-2"}, 400, "targets must be one of"),
        ("not an object", 400, "JSON object"),
    ],
)
def test_bad_runs_are_refused_in_words(planner, body, status, words):
    r = planner.post("/planner/access/run", json=body, headers=planner.zp_headers)
    assert r.status_code == status and words in r.get_json()["error"]


def test_run_needs_the_csrf_token(planner):
    r = planner.post("/planner/access/run", json={"area": "EXP-1", "kind": "road"})
    assert r.status_code == 400


def test_run_then_commit_stores_planned_roads(planner, store):
    r = planner.post(
        "/planner/access/run",
        json={"area": "EXP-1", "kind": "road", "time_limit": 20},
        headers=planner.zp_headers,
    )
    assert r.status_code == 202
    job_id = r.get_json()["job_id"]
    job = _wait(planner, job_id)
    assert job["state"] == "done", job.get("error")
    doc = job["result"]
    assert doc["summary"]["cost"] == pytest.approx(
        sum(f["properties"]["cost"] for f in doc["features"])
    )
    assert not doc["summary"]["unreachable"]
    bad = planner.post(
        "/planner/access/commit",
        json={"job_id": job_id, "due": "2027-13-01"},
        headers=planner.zp_headers,
    )
    assert bad.status_code == 400 and "due" in bad.get_json()["error"]
    assert (
        planner.post(
            "/planner/access/commit",
            json={"job_id": "nope", "due": "2027-05-01"},
            headers=planner.zp_headers,
        ).status_code
        == 404
    )
    before = len(store.read("roads"))
    ok = planner.post(
        "/planner/access/commit",
        json={"job_id": job_id, "due": "2027-05-01"},
        headers=planner.zp_headers,
    )
    assert ok.status_code == 201
    ids = ok.get_json()["asset_ids"]
    roads = store.read("roads")
    assert len(roads) == before + len(doc["features"]) == before + len(ids)
    new = roads.loc[roads["asset_id"].isin(ids)]
    assert set(new["status"]) == {"planned"} and {str(d)[:10] for d in new["due"]} == {"2027-05-01"}
    audit = store.read("audit")
    assert set(audit.loc[audit["feat_id"].isin(ids), "username"]) == {"planner"}


# --------------------------------------------------------------------------- the browser
def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"access-{name}.png"))


@pytest.mark.browser
def test_run_compare_and_commit_in_the_browser(page, live_server):
    page.set_default_timeout(20_000)
    page.goto(live_server + "/login", wait_until="domcontentloaded")
    page.fill("#username", "planner")
    page.fill("#password", PASSWORDS["planner"])
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.goto(live_server + "/planner/access", wait_until="domcontentloaded")
    page.select_option("#zp-access-area", "EXP-1")
    page.select_option("#zp-access-kind", "road")
    page.fill("#zp-access-time", "15")
    page.click("#zp-access-run")
    page.wait_for_selector("#zp-access-cancel:not([hidden])")
    page.wait_for_function("() => window.zpAccess.runs.length === 1", timeout=120_000)
    _shot(page, "one-run")
    # a second run with freight, then the comparison shows both
    page.fill("#zp-access-freight", "25")
    page.click("#zp-access-run")
    page.wait_for_function("() => window.zpAccess.runs.length === 2", timeout=120_000)
    headers = page.locator("#zp-access-table tr").first.locator("th").all_inner_texts()
    assert "Run 1" in headers[1] and "Run 2" in headers[2]
    table = page.inner_text("#zp-access-table")
    assert "Freight cost" in table and "Saving against construction alone" in table
    assert page.locator("#zp-access-segments li").count() >= 1
    drawn = page.evaluate("() => window.zpAccess.runs.map(r => r.layer.getLayers().length)")
    assert all(n >= 1 for n in drawn)
    _shot(page, "compare")
    # a run can be cancelled while it works
    page.fill("#zp-access-freight", "")
    page.fill("#zp-access-time", "30")
    page.select_option("#zp-access-kind", "power")
    page.click("#zp-access-run")
    page.wait_for_selector("#zp-access-cancel:not([hidden])")
    page.click("#zp-access-cancel")
    page.wait_for_function(
        "() => document.getElementById('zp-access-status').textContent.includes('cancelled')",
        timeout=120_000,
    )
    # commit run 1 without a due date: asked for one; with it: stored
    page.click("button[data-run='1']")
    assert "due date" in page.inner_text("#zp-access-commit-status")
    page.fill("#zp-access-due", "2027-05-01")
    page.click("button[data-run='1']")
    page.wait_for_function(
        "() => document.getElementById('zp-access-commit-status').textContent.includes('RD-')"
    )
    assert "Stored as planned roads" in page.inner_text("#zp-access-commit-status")
    _shot(page, "committed")
    assert not page.zp_blocked and not page.zp_errors
