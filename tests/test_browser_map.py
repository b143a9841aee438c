"""Browser smoke test: the map page in headless Chromium against a real waitress server."""

from __future__ import annotations

import pytest
from conftest import ARTIFACTS, PASSWORDS

pytestmark = pytest.mark.browser


def _tiles_drawn(page) -> None:
    """Wait until every shown tile layer has loaded its tiles."""
    page.wait_for_function("() => window.zpMapTiles && !window.zpMapTiles.grid._loading")


def _open(page, base):
    response = page.goto(base + "/lang/en?next=/", wait_until="networkidle")
    assert response.ok
    page.wait_for_selector(".leaflet-tile-container canvas")
    _tiles_drawn(page)


def test_map_draws_every_layer_from_tiles_offline_without_errors(live_server, page, store):
    tiles = []
    page.on("response", lambda r: tiles.append((r.url, r.status)) if "/tiles/" in r.url else None)
    _open(page, live_server)
    # one request per tile for every layer, bottom first
    from web.maps import LAYER_STYLES

    asked = {url.split("/tiles/")[1].split("/")[0] for url, _ in tiles}
    assert asked == {",".join(s.name for s in LAYER_STYLES)}, asked
    assert 0 < len(tiles) < 60
    assert all(status in (200, 304) for _, status in tiles), tiles[:5]
    # the page holds no features: every plot id is absent from the HTML
    html = page.content()
    assert not any(pid in html for pid in store.read("plots")["plot_id"].head(20))
    assert page.locator(".leaflet-control-layers-overlays label").count() >= 10
    assert page.locator(".zp-legend li").count() >= 10
    canvases = page.locator(".zp-tiles canvas").count()
    assert canvases >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "map.png"), full_page=False)
    assert page.zp_blocked == [], f"the page asked other hosts: {page.zp_blocked[:3]}"
    assert page.zp_errors == [], f"console errors: {page.zp_errors[:3]}"


def _plot_point(page, store, status: str = "available"):
    """A screen point inside a plot of ``status`` that lies in the view, and its id."""
    from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer

    plots = store.read("plots", where={"status": [status]})
    inner = plots.geometry.representative_point()
    lon, lat = transformer(WORKING_EPSG, WGS84_EPSG).transform(
        inner.x.to_numpy(), inner.y.to_numpy()
    )
    box = page.locator("#zp-map .folium-map").bounding_box()
    for pid, x, y in zip(plots["plot_id"], lon, lat):
        pt = page.evaluate(
            "([lat, lon]) => { const m = window[document.getElementById('zp-map')"
            ".dataset.map]; const p = m.latLngToContainerPoint([lat, lon]); "
            "return [p.x, p.y]; }",
            [float(y), float(x)],
        )
        if 60 < pt[0] < box["width"] - 320 and 60 < pt[1] < box["height"] - 60:
            return pid, box["x"] + pt[0], box["y"] + pt[1]
    raise AssertionError("no plot in view")


def test_clicking_a_plot_on_the_tiles_opens_its_popup(live_server, page, store):
    _open(page, live_server)
    scale = page.locator(".leaflet-control-scale-line")
    assert scale.count() == 1 and scale.inner_text().endswith(" m")  # metres, no feet
    # zoom in so roads and other lines do not cover the plot under the pointer
    page.evaluate(
        "() => window[document.getElementById('zp-map').dataset.map].setZoom(17, {animate: false})"
    )
    _tiles_drawn(page)
    pid, x, y = _plot_point(page, store)
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content .zp-popup")
    popup.wait_for()
    text = popup.inner_text()
    assert text.startswith(f"Plot {pid}"), text[:80]
    assert "Status" in text and "Area, ha" in text
    # the public popup carries no private field
    assert "Resident" not in text and "Investment" not in text
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "map-popup.png"))
    # hiding the plots in the layer control hides them from clicks too
    page.locator(".leaflet-popup-close-button").click()
    page.locator(".leaflet-control-layers-overlays label", has_text="Plots").locator(
        "input"
    ).uncheck()
    page.wait_for_function("() => !window.zpMapTiles.shown().includes('plots')")
    page.evaluate(
        "() => document.querySelector('#zp-map .folium-map').removeAttribute('data-picked')"
    )
    with page.expect_response(lambda r: "/map/features?" in r.url) as asked:
        page.mouse.click(x, y)
    layers = asked.value.url.split("layers=")[1].split("&")[0].split(",")
    assert "plots" not in layers and "zone" not in layers  # the zone never answers a click
    page.wait_for_timeout(100)
    picked = page.get_attribute("#zp-map .folium-map", "data-picked") or ""
    assert not picked.startswith("plots/"), picked
    assert page.zp_errors == []


def test_planner_page_loads_drawing_tools(live_server, page):
    page.goto(live_server + "/login", wait_until="domcontentloaded")
    page.fill("#username", "planner")
    page.fill("#password", PASSWORDS["planner"])
    page.click("button[type=submit]")
    page.goto(live_server + "/planner", wait_until="networkidle")
    page.wait_for_selector(".leaflet-pm-toolbar")
    assert page.locator(".leaflet-pm-icon-polygon").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "planner.png"))
    assert page.zp_blocked == [] and page.zp_errors == [], page.zp_errors[:3]


def test_a_click_on_a_block_of_small_plots_offers_to_zoom_in(live_server, page, store):
    """Plots too small to see at z12 come as blocks (geo.overview): a click says how many
    plots the block holds and its button zooms in towards the click."""
    import geopandas as gpd
    import shapely

    from geo.crs import WGS84_EPSG, transformer

    minx, miny, maxx, maxy = store.extent("zone")
    x0, y0 = maxx + 300.0, (miny + maxy) / 2
    cells = [(i % 6, i // 6) for i in range(36)]
    store.insert(
        "plots",
        gpd.GeoDataFrame(
            {
                "plot_id": [f"B-{i:03d}" for i in range(36)],
                "status": ["available"] * 36,
                "geometry": [
                    shapely.box(x0 + c * 25, y0 + r * 25, x0 + c * 25 + 20, y0 + r * 25 + 20)
                    for c, r in cells
                ],
            },
            crs=store.epsg,
        ),
    )
    lon, lat = transformer(store.epsg, WGS84_EPSG).transform(x0 + 72.0, y0 + 72.0)
    _open(page, live_server)
    page.evaluate(
        "([lat, lon]) => window[document.getElementById('zp-map').dataset.map]"
        ".setView([lat, lon], 12, {animate: false})",
        [lat, lon],
    )
    _tiles_drawn(page)
    box = page.locator("#zp-map .folium-map").bounding_box()
    pt = page.evaluate(
        "([lat, lon]) => { const m = window[document.getElementById('zp-map').dataset.map]; "
        "const p = m.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [lat, lon],
    )
    page.mouse.click(box["x"] + pt[0], box["y"] + pt[1])
    note = page.locator(".leaflet-popup-content .zp-block")
    note.wait_for()
    assert "36 plots" in note.inner_text() and "zoom in" in note.inner_text().lower()
    assert page.get_attribute("#zp-map .folium-map", "data-picked") == "plots/block"
    page.locator(".leaflet-popup-content .zp-block-zoom").click()
    page.wait_for_function(
        "() => window[document.getElementById('zp-map').dataset.map].getZoom() === 14"
    )
    _tiles_drawn(page)
    assert page.zp_errors == [], f"console errors: {page.zp_errors[:3]}"
