"""Browser test: the OGC API's HTML pages in headless Chromium (Leaflet maps under the CSP)."""

from __future__ import annotations

import pytest
from conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def test_ogc_pages_browse_from_landing_to_a_feature_map(live_server, page, store):
    page.goto(live_server + "/ogc", wait_until="networkidle")  # a browser's Accept: HTML
    main = page.locator("main")
    main.get_by_role("link", name="Collections", exact=True).first.click()
    main.get_by_role("link", name="plots", exact=True).click()
    page.wait_for_selector("#zp-ogc-map .leaflet-overlay-pane svg path")  # the extent
    main.get_by_role("link", name="Features as HTML", exact=True).click()
    page.wait_for_selector("#zp-ogc-map .leaflet-overlay-pane svg path")
    shown = page.locator("#zp-ogc-map .leaflet-overlay-pane svg path").count()
    rows = page.locator("table tbody tr").count()
    assert (
        shown
        == rows
        == min(
            100,
            store.count(
                "plots", where={"status": ["available", "reserved", "allocated", "occupied"]}
            ),
        )
    )
    page.locator("table tbody tr a").first.click()
    page.wait_for_selector("#zp-ogc-map .leaflet-overlay-pane svg path")
    assert page.locator("#zp-ogc-map .leaflet-overlay-pane svg path").count() == 1
    assert "plot_id" in page.locator("table").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ogc-feature.png"))
    assert page.zp_blocked == [] and page.zp_errors == [], (page.zp_blocked, page.zp_errors)
