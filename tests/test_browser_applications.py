"""Browser test of reservation as a contract (Debian's Chromium, a real waitress server): an
investor asking too much power is warned before filing; the planner's accept is refused
naming the rule; a fitting application is accepted and another plot on the same substation
shows less headroom."""

from __future__ import annotations

import re

import pytest
from conftest import ARTIFACTS, PASSWORDS

pytestmark = pytest.mark.browser
TOO_MUCH = "SS-14 has 970 kW left, the application needs 5,000 kW"


def log_in(page, base, user):
    page.goto(base + "/login?next=/lang/en", wait_until="domcontentloaded")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("form button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    page.goto(base + "/lang/en?next=/", wait_until="domcontentloaded")


def apply(page, base, plot_id, project, power_kw):
    page.goto(f"{base}/plots/{plot_id}", wait_until="domcontentloaded")
    page.fill("input[name=project]", project)
    page.select_option("select[name=sector]", "logistics")
    page.fill("input[name=min_ha]", "0.5")
    page.fill("input[name=max_ha]", "7")
    page.fill("input[name=power_kw]", str(power_kw))
    page.click(".zp-apply button[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def power_headroom(page, base, plot_id) -> str:
    page.goto(f"{base}/plots/{plot_id}", wait_until="domcontentloaded")
    return (
        page.locator("dt", has_text="Power headroom")
        .locator("xpath=following-sibling::dd[1]")
        .inner_text()
    )


def test_capacity_is_checked_before_filing_and_at_accept(live_server, page):
    log_in(page, live_server, "investor")
    assert power_headroom(page, live_server, "P-040") == "970 kW"
    # too much power: warned on the form, nothing filed yet
    apply(page, live_server, "P-104", "Data centre", 5000)
    assert page.url.endswith("/plots/P-104/apply")
    warning = page.locator("#zp-app-warnings")
    assert TOO_MUCH in warning.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "apply-warning.png"), full_page=True)
    page.goto(live_server + "/applications", wait_until="domcontentloaded")
    assert page.locator("tr", has_text="Data centre").count() == 0
    # ... filed once the investor submits it anyway
    apply(page, live_server, "P-104", "Data centre", 5000)
    page.click("button[name=confirm]")
    page.wait_for_url("**/applications")
    assert TOO_MUCH in page.locator(".zp-flashes").inner_text()
    assert "submitted" in page.locator("tr", has_text="Data centre").inner_text()
    # a fitting one goes straight through
    apply(page, live_server, "P-040", "Parcel depot", 600)
    page.wait_for_url("**/applications")
    assert "submitted" in page.locator("tr", has_text="Parcel depot").inner_text()
    page.click("form[action$='/logout'] button")
    page.wait_for_load_state("domcontentloaded")

    log_in(page, live_server, "planner")
    page.goto(live_server + "/applications", wait_until="domcontentloaded")
    big = page.locator("tr", has_text="Data centre")
    assert big.locator("select[name=plot_id]").input_value() == "P-104"
    big.locator("button", has_text="Accept").click()
    page.wait_for_load_state("domcontentloaded")
    refusal = page.locator(".zp-flashes .alert-danger").inner_text()
    assert TOO_MUCH in refusal and "cannot take plot P-104" in refusal
    page.screenshot(path=str(ARTIFACTS / "accept-refused.png"), full_page=True)
    assert "submitted" in page.locator("tr", has_text="Data centre").inner_text()
    fits = page.locator("tr", has_text="Parcel depot")
    fits.locator("select[name=plot_id]").select_option("P-040")
    fits.locator("button", has_text="Accept").click()
    page.wait_for_load_state("domcontentloaded")
    assert "plot P-040 is reserved" in page.locator(".zp-flashes").inner_text()
    assert re.search(r"reserved", page.locator("tr", has_text="Parcel depot").inner_text())
    # another plot on SS-14 shows the 600 kW taken
    assert power_headroom(page, live_server, "P-104") == "370 kW"
    assert page.zp_blocked == [] and page.zp_errors == []
