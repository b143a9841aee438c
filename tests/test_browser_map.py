"""Browser smoke test: the map page in headless Chromium against a real waitress server."""
from __future__ import annotations

import pytest

from conftest import ARTIFACTS, PASSWORDS

pytestmark = pytest.mark.browser


def _expected_counts(store):
    from web.maps import LAYER_STYLES
    points = sum(store.count(s.name) for s in LAYER_STYLES if s.radius)
    shapes = sum(store.count(s.name) for s in LAYER_STYLES if not s.radius and s.show)
    return points, shapes


def test_map_renders_every_layer_offline_without_errors(live_server, page, store):
    response = page.goto(live_server + "/lang/en?next=/", wait_until="networkidle")
    assert response.ok
    page.wait_for_selector(".leaflet-overlay-pane svg path")
    points, shapes = _expected_counts(store)
    paths = page.locator(".leaflet-overlay-pane svg path").count()
    # every shown polygon and line is a path, and each point is a circle marker path
    assert paths >= points + shapes, (paths, points, shapes)
    assert page.locator(".leaflet-control-layers-overlays label").count() >= 10
    assert page.locator(".zp-legend li").count() >= 10
    # the map was fitted to the zone: the zone's outline lies within the viewport
    box = page.locator(".leaflet-overlay-pane svg").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 300
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "map.png"), full_page=False)
    assert page.zp_blocked == [], f"the page asked other hosts: {page.zp_blocked[:3]}"
    assert page.zp_errors == [], f"console errors: {page.zp_errors[:3]}"


def test_popup_shows_plot_attributes_as_text(live_server, page, store):
    page.goto(live_server + "/lang/en?next=/", wait_until="networkidle")
    page.wait_for_selector(".leaflet-overlay-pane svg path")
    # open a plot's popup through Leaflet (clicking a path could hit an overlapping layer)
    page.evaluate("""() => {
        const map = window[document.getElementById('zp-map').dataset.map];
        let opened = false;
        map.eachLayer(l => {
            if (!opened && l.feature && l.getPopup && l.getPopup() &&
                String(l.getPopup().getContent()).includes('<h6>Plot ')) { l.openPopup(); opened = true; }
        });
    }""")
    popup = page.locator(".leaflet-popup-content .zp-popup")
    popup.wait_for()
    text = popup.inner_text()
    assert "Status" in text and "Area, ha" in text and text.startswith("Plot ")
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(500)  # let the pan and fade-in finish
    page.screenshot(path=str(ARTIFACTS / "map-popup.png"))
    assert page.zp_errors == []


def test_planner_page_loads_drawing_tools(live_server, page):
    page.goto(live_server + "/login", wait_until="domcontentloaded")
    page.fill("#username", "planner")
    page.fill("#password", PASSWORDS["planner"])
    page.click("button[type=submit]")
    page.goto(live_server + "/planner", wait_until="networkidle")
    page.wait_for_selector(".leaflet-draw-toolbar")
    assert page.locator(".leaflet-draw-draw-polygon").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "planner.png"))
    assert page.zp_blocked == [] and page.zp_errors == [], page.zp_errors[:3]
