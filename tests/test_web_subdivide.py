"""/planner/subdivide: roles and CSRF, a preview run by the job runner, commit and its conflicts
(test client over a real GeoPackage), and the page end to end in Chromium."""

from __future__ import annotations

import time

import pytest
import shapely
from conftest import ARTIFACTS, PASSWORDS

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer
from geo.store import open_store


@pytest.fixture
def planner(planner_client, csrf_token):
    planner_client.zp_headers = {"X-CSRFToken": csrf_token(planner_client, "/account")}
    return planner_client


def wait(client, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}").get_json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_page_is_for_planners(client, investor_client, planner_client):
    assert client.get("/planner/subdivide").status_code == 302
    assert investor_client.get("/planner/subdivide").status_code == 403
    page = planner_client.get("/planner/subdivide")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="csrf_token"' in html and "EXP-1" in html
    assert "<script>" not in html  # CSP: no inline scripts


def test_posts_need_the_csrf_header_and_the_planner_role(
    planner_client, investor_client, csrf_token
):
    body = {"exp_id": "EXP-1", "params": {}}
    assert planner_client.post("/planner/subdivide/preview", json=body).status_code == 400
    headers = {"X-CSRFToken": csrf_token(investor_client, "/account")}
    assert (
        investor_client.post("/planner/subdivide/preview", json=body, headers=headers).status_code
        == 403
    )


def test_bad_parameters_are_refused_before_a_job_starts(planner, store_path):
    response = planner.post(
        "/planner/subdivide/preview",
        headers=planner.zp_headers,
        json={"exp_id": "EXP-1", "params": {"min_ha": 6, "max_ha": 5}},
    )
    assert response.status_code == 422
    assert "must be smaller than the largest" in response.get_json()["error"]
    response = planner.post(
        "/planner/subdivide/preview",
        headers=planner.zp_headers,
        json={"geometry": {"type": "Point", "coordinates": [76.8, 43.3]}},
    )
    assert response.status_code == 422 and response.get_json()["field"] == "geometry.type"
    assert open_store(store_path).count("jobs") == 0


def test_preview_then_commit_then_commit_again(planner, store_path):
    store = open_store(store_path)
    plots_before = store.count("plots")
    response = planner.post(
        "/planner/subdivide/preview",
        headers=planner.zp_headers,
        json={"exp_id": "EXP-1", "params": {"method": "obb"}},
    )
    assert response.status_code == 202
    job = wait(planner, response.get_json()["job_id"])
    assert job["state"] == "done", job.get("error")
    preview = job["result"]["preview"]
    assert preview["metrics"]["method"] == "obb" and preview["metrics"]["frontage_share"] == 1
    assert store.count("plots") == plots_before  # a preview writes no plot
    committed = planner.post(
        "/planner/subdivide/commit", headers=planner.zp_headers, json={"job_id": job["job_id"]}
    )
    assert committed.status_code == 201
    done = committed.get_json()
    plots = sum(f["properties"]["kind"] == "plot" for f in preview["features"])
    assert len(done["plots"]) == plots and len(done["removed"]) == 18
    assert store.count("plots") == plots_before - 18 + plots
    again = planner.post(
        "/planner/subdivide/commit", headers=planner.zp_headers, json={"job_id": job["job_id"]}
    )
    assert again.status_code == 409 and "committed already" in again.get_json()["error"]
    missing = planner.post(
        "/planner/subdivide/commit", headers=planner.zp_headers, json={"job_id": "nope"}
    )
    assert missing.status_code == 404


def test_a_failed_preview_says_why(planner):
    ring = [[76.850, 43.316], [76.8502, 43.316], [76.8502, 43.3162], [76.850, 43.316]]
    response = planner.post(
        "/planner/subdivide/preview",
        headers=planner.zp_headers,
        json={"geometry": {"type": "Polygon", "coordinates": [ring]}},
    )
    job = wait(planner, response.get_json()["job_id"])
    assert job["state"] == "failed" and "less than one plot" in job["error"]


def login(page, base: str, username: str) -> None:
    page.goto(base + "/login", wait_until="domcontentloaded")
    page.fill("#username", username)
    page.fill("#password", PASSWORDS[username])
    with page.expect_navigation():
        page.click("button[type=submit]")


@pytest.mark.browser
def test_preview_regenerate_commit_and_find_the_plots(live_server, page):
    login(page, live_server, "planner")
    page.goto(f"{live_server}/planner/subdivide")
    page.select_option("#zp-sd-area", "EXP-1")
    page.click("#zp-sd-preview")
    page.wait_for_selector("#zp-sd-metrics:not([hidden])", timeout=120_000)
    first = page.text_content("#zp-sd-table tr[data-metric=plots] td.zp-sd-chosen")
    assert int(first) >= 10
    assert page.evaluate("window.zpSubdivide.preview.getLayers().length") > int(first)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "subdivide-preview.png"))

    # Regenerate with bigger plots and the other method: fewer plots, OBB chosen.
    page.fill("#zp-sd-min_ha", "2")
    page.fill("#zp-sd-max_ha", "8")
    page.select_option("#zp-sd-method", "obb")
    page.click("#zp-sd-preview")
    page.wait_for_selector("#zp-sd-table th.zp-sd-chosen[data-method=obb]", timeout=120_000)
    second = int(page.text_content("#zp-sd-table tr[data-metric=plots] td.zp-sd-chosen"))
    assert second < int(first)

    page.click("#zp-sd-commit")
    page.wait_for_selector("#zp-subdivide[data-committed]", timeout=60_000)
    assert f"Stored {second} candidate plots" in page.text_content("#zp-sd-status")
    new_ids = page.evaluate("window.zpSubdivide.state.committed.plots")
    assert len(new_ids) == second

    # The new plots are on the planner's workspace map.
    page.goto(f"{live_server}/planner", wait_until="domcontentloaded")
    page.wait_for_selector("#zp-planner[data-ready=true]", timeout=30_000)
    shown = page.evaluate("Object.keys(window.zpPlanner.index.plots)")
    assert set(new_ids) <= set(shown)
    assert not page.zp_errors and not page.zp_blocked


@pytest.mark.browser
def test_a_drawn_area_is_previewed(live_server, page, store_path):
    centre = shapely.centroid(open_store(store_path).get("expansion", "EXP-1")["geometry"])
    corners = [
        (centre.x + dx, centre.y + dy)
        for dx, dy in ((-300, -250), (300, -250), (300, 250), (-300, 250))
    ]
    lonlat = transformer(WORKING_EPSG, WGS84_EPSG)
    login(page, live_server, "planner")
    page.goto(f"{live_server}/planner/subdivide")
    page.wait_for_selector("#zp-subdivide[data-ready=true]", timeout=30_000)
    page.select_option("#zp-sd-area", "")
    page.click("#zp-sd-preview")
    assert "Draw the area" in page.text_content("#zp-sd-status")
    page.evaluate(
        "([lat, lon]) => zpSubdivide.map.setView([lat, lon], 15, {animate: false})",
        list(reversed(lonlat.transform(centre.x, centre.y))),
    )
    box = page.locator("#zp-sd-map").bounding_box()
    points = page.evaluate(
        """(lls) => lls.map(ll => {
        const p = zpSubdivide.map.latLngToContainerPoint(ll); return [p.x, p.y]; })""",
        [list(reversed(lonlat.transform(x, y))) for x, y in corners],
    )
    page.click(".leaflet-pm-icon-polygon")
    for x, y in points + points[:1]:
        page.mouse.click(box["x"] + x, box["y"] + y)
        page.wait_for_timeout(80)
    page.screenshot(path=str(ARTIFACTS / "subdivide-drawn.png"))
    page.click("#zp-sd-preview")
    page.wait_for_selector("#zp-sd-metrics:not([hidden])", timeout=120_000)
    plots = int(page.text_content("#zp-sd-table tr[data-metric=plots] td.zp-sd-chosen"))
    assert plots >= 5
    assert page.text_content(
        "#zp-sd-table tr[data-metric=frontage_share] td.zp-sd-chosen"
    ).startswith("100")
    assert not page.zp_errors and not page.zp_blocked
