"""/planner/allocate in a real browser (Debian's Chromium) over a live server and a real
GeoPackage: run an allocation on the sample zone, see the proposal on the map, accept a
selection and find the plots reserved with the demand recorded; a stale accept refused after a
concurrent change; applications imported from a CSV file.

Screenshots go to test-artifacts/allocate-*.png.
"""

from __future__ import annotations

import pytest
from conftest import ARTIFACTS, PASSWORDS

from geo.store import open_store
from usecases import applications as app_usecases

pytestmark = pytest.mark.browser


def login(page, base: str, username: str) -> None:
    page.goto(base + "/login", wait_until="domcontentloaded")
    page.fill("#username", username)
    page.fill("#password", PASSWORDS[username])
    with page.expect_navigation():
        page.click("button[type=submit]")


def run_allocation(page, base: str, objective: str = "weighted") -> list[str]:
    """Run from the form; the application ids of the proposal shown."""
    page.goto(f"{base}/planner/allocate", wait_until="domcontentloaded")
    page.check(f"input[name=objective][value={objective}]")
    page.fill("#zp-al-time", "15")
    page.click("#zp-al-run")
    page.wait_for_selector("#zp-al-result:not([hidden])", timeout=120_000)
    return page.eval_on_selector_all(".zp-al-row", "rows => rows.map(r => r.dataset.app)")


def test_run_see_the_proposal_accept_a_selection(live_server, page, store_path):
    login(page, live_server, "planner")
    ids = run_allocation(page, live_server)
    assert len(ids) >= 5
    # every proposed plot is on the map, labelled with its application
    labels = page.eval_on_selector_all(".zp-al-label", "ls => ls.map(l => l.textContent)")
    assert sorted(label.split(" → ")[0] for label in labels) == sorted(ids)
    compare = page.text_content("#zp-al-compare")
    assert "First come, first served" in compare and "Proven gap" in compare
    assert "proven optimal" in compare
    left_out = page.text_content("#zp-al-leftout")
    assert (
        "A-005" in left_out and "SS-14 has 970 kW left, the application needs 13,160 kW" in left_out
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "allocate-proposal.png"))

    keep = ids[:2]
    for app_id in ids[2:]:
        page.uncheck(f"input[name=accept][value='{app_id}']")
    page.click("#zp-al-accept")
    page.wait_for_selector("#zp-al-accept-status:has-text('accepted')", timeout=60_000)
    assert "2 applications accepted" in page.text_content("#zp-al-accept-status")
    store = open_store(store_path)
    for app_id in keep:
        app = store.get("applications", app_id)
        plot = store.get("plots", app["assigned"])
        assert app["status"] == "reserved" and plot["status"] == "reserved"
        assert plot["power_kw"] == app["power_kw"] and plot["jobs"] == app["jobs"]
    for app_id in ids[2:]:
        assert store.get("applications", app_id)["status"] == "submitted"
    # the accepted ones show as reserved and can no longer be ticked
    for app_id in keep:
        assert page.is_disabled(f"input[name=accept][value='{app_id}']")
    assert "now reserved" in page.text_content(f".zp-al-row[data-app='{keep[0]}']")
    # the run is listed and can be reopened
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("#zp-al-runlist li[data-job] button", timeout=30_000)
    page.click("#zp-al-runlist li[data-job] button")
    page.wait_for_selector("#zp-al-result:not([hidden])", timeout=30_000)
    assert page.is_disabled(f"input[name=accept][value='{keep[0]}']")
    page.screenshot(path=str(ARTIFACTS / "allocate-accepted.png"))
    assert not page.zp_errors and not page.zp_blocked


def test_a_stale_accept_is_refused_after_a_concurrent_change(live_server, page, store_path):
    login(page, live_server, "planner")
    ids = run_allocation(page, live_server, "investment")
    store = open_store(store_path)
    gone = ids[0]
    app_usecases.withdraw(store, gone, user="investor", role="investor")  # meanwhile
    page.click("#zp-al-accept-all")
    page.wait_for_selector(".zp-al-stale li", timeout=60_000)
    status = page.text_content("#zp-al-accept-status")
    assert "1 of " in status and "can no longer be accepted, so nothing was reserved" in status
    assert f"application {gone} is withdrawn now, no longer pending" in status
    assert store.count("applications", where={"status": "reserved"}) == 0
    page.screenshot(path=str(ARTIFACTS / "allocate-stale.png"))
    # the stale one is unticked: accepting the rest now works
    assert not page.is_checked(f"input[name=accept][value='{gone}']")
    page.click("#zp-al-accept")
    page.wait_for_selector("#zp-al-accept-status:has-text('accepted')", timeout=60_000)
    reserved = set(store.read("applications", where={"status": "reserved"})["app_id"])
    assert reserved == set(ids[1:])
    # the browser logs the refused accept (409) as a failed load; nothing else went wrong
    assert [e for e in page.zp_errors if "status of 409" not in e] == [] and not page.zp_blocked


def test_import_applications_from_a_csv_file(live_server, page, store_path, tmp_path):
    header = (
        "app_id,company,project,sector,min_ha,max_ha,power_kw,water_m3d,rail_need,hazard,"
        "invest,jobs\n"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "M-1,Co,Plant,food,1,2,10,1,no,1,1,1\nM-2,Co,,food,3,2,x,1,no,1,1,1\n")
    good = tmp_path / "good.csv"
    good.write_text(header + "M-1,Co,Plant,food,1,2,10,1,no,1,1000000,10\n")
    login(page, live_server, "planner")
    page.goto(f"{live_server}/planner/allocate", wait_until="domcontentloaded")
    page.set_input_files("#zp-al-file", str(bad))
    page.click("#zp-al-import-go")
    page.wait_for_selector(".zp-al-problems li", timeout=30_000)
    problems = page.eval_on_selector_all(".zp-al-problems li", "ls => ls.map(l => l.textContent)")
    assert any(p.startswith("line 3:") and "power_kw" in p for p in problems), problems
    store = open_store(store_path)
    assert store.count("applications", where={"app_id": "M-1"}) == 0
    page.set_input_files("#zp-al-file", str(good))
    page.click("#zp-al-import-go")
    page.wait_for_selector("#zp-al-import-status .zp-pl-good", timeout=30_000)
    assert "1 applications imported: M-1" in page.text_content("#zp-al-import-status")
    assert store.get("applications", "M-1")["status"] == "submitted"
    assert page.is_checked("input[name=app_id][value='M-1']")
    assert [e for e in page.zp_errors if "status of 422" not in e] == [] and not page.zp_blocked
