"""The maps at 100,000 plots in a real browser: the zone map stays a small page and a click on
a plot drawn only in the tiles opens its popup; the planner selects and edits such a plot."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ARTIFACTS, PASSWORDS
from test_tiles import grid_plots

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N_PLOTS = 100_000


@pytest.fixture(scope="module")
def big_db(sample_db, tmp_path_factory) -> Path:
    """The sample zone plus 100,000 plots on a grid south of it, built once for the module."""
    from geo.store import open_store

    path = tmp_path_factory.mktemp("big") / "zone.gpkg"
    shutil.copy2(sample_db, path)
    store = open_store(path)
    store.insert("plots", grid_plots(store, N_PLOTS - len(store.read("plots"))))
    return path


@pytest.fixture
def store_path(big_db, tmp_path) -> Path:
    """Overrides conftest's: the live server of these tests serves the 100k-plot store."""
    path = tmp_path / "zone.gpkg"
    shutil.copy2(big_db, path)
    return path


def _centre_of(store, plot_id: str) -> list[float]:
    plot = store.get("plots", plot_id)
    inner = plot["geometry"].representative_point()
    lon, lat = transformer(WORKING_EPSG, WGS84_EPSG).transform(inner.x, inner.y)
    return [float(lat), float(lon)]


def _click_centre(page, map_selector: str) -> None:
    box = page.locator(map_selector).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_zone_map_at_100k_plots_is_small_and_a_tile_plot_opens_its_popup(live_server, page, store):
    assert store.count("plots") >= N_PLOTS
    # the first popup waits for the servicing model of 100k plots (minutes on a loaded machine)
    page.set_default_timeout(400_000)
    response = page.goto(live_server + "/lang/en?next=/", wait_until="networkidle")
    assert len(response.body()) < 300_000
    target = "G-12345"
    page.evaluate(
        "(c) => window[document.getElementById('zp-map').dataset.map]"
        ".setView(c, 18, {animate: false})",
        _centre_of(store, target),
    )
    page.wait_for_function("() => window.zpMapTiles && !window.zpMapTiles.grid._loading")
    _click_centre(page, "#zp-map .folium-map")
    popup = page.locator(".leaflet-popup-content .zp-popup")
    popup.wait_for()
    assert popup.inner_text().startswith(f"Plot {target}"), popup.inner_text()[:80]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "scale-map-popup.png"))
    assert page.zp_errors == [], page.zp_errors[:3]


def test_planner_selects_and_edits_a_plot_that_lives_only_in_tiles(live_server, page, store):
    page.set_default_timeout(400_000)
    page.goto(live_server + "/login", wait_until="domcontentloaded")
    page.fill("#username", "planner")
    page.fill("#password", PASSWORDS["planner"])
    with page.expect_navigation():
        page.click("button[type=submit]")
    response = page.goto(live_server + "/planner", wait_until="domcontentloaded")
    assert len(response.body()) < 300_000
    page.wait_for_selector("#zp-planner[data-ready=true]")
    # a plot big enough to be drawn on its own at z13, where the planner has tiles only
    target = "P-150"
    page.evaluate(
        "(c) => zpPlanner.map.setView(c, 13, {animate: false})", _centre_of(store, target)
    )
    page.wait_for_selector("#zp-planner[data-plots=tiles]")
    page.wait_for_function("() => !zpPlanner.tiles._loading")
    _click_centre(page, "#zp-planner-map")
    page.locator("#zp-pl-title").filter(has_text=target).wait_for()
    page.click("#zp-pl-selected .zp-pl-move[data-status=reserved]")
    page.locator("#zp-pl-message").filter(has_text=f"Plot {target} is now").wait_for()
    assert store.get("plots", target)["status"] == "reserved"
    # the 30 m grid plots are merged into blocks at z13 (geo/overview.py): a click zooms
    # in towards the block, and the same spot clicked again picks the plot
    small = "G-54321"
    page.evaluate("(c) => zpPlanner.map.setView(c, 13, {animate: false})", _centre_of(store, small))
    page.wait_for_function("() => !zpPlanner.tiles._loading")
    _click_centre(page, "#zp-planner-map")
    page.wait_for_function("() => zpPlanner.map.getZoom() >= 15")
    # more grid plots are in view than a page of outlines holds: still tiles, still pickable
    page.wait_for_selector("#zp-planner[data-plots=tiles]")
    page.wait_for_function("() => !zpPlanner.tiles._loading")
    _click_centre(page, "#zp-planner-map")
    page.locator("#zp-pl-title").filter(has_text=small).wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "scale-planner-edit.png"))
    assert page.zp_errors == [], page.zp_errors[:3]
