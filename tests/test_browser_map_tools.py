"""The zone map's and the catalogue's tools in headless Chromium: clicks that hit what they
aim at (the SS-12 substation 10 times in 10, no zone popup on an empty click), plot search
zoomed and highlighted, measuring distance and area, and the one-page print view."""

from __future__ import annotations

import math

import pytest
import shapely
from conftest import ARTIFACTS, PASSWORDS
from pyproj import Geod

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer

pytestmark = pytest.mark.browser

MAP = "window[document.getElementById('zp-map').dataset.map]"


def _tiles_drawn(page) -> None:
    page.wait_for_function("() => window.zpMapTiles && !window.zpMapTiles.grid._loading")


def _open_map(page, base, lang="en"):
    assert page.goto(f"{base}/lang/{lang}?next=/", wait_until="networkidle").ok
    _tiles_drawn(page)


def _lonlat(geom) -> tuple[float, float]:
    return transformer(WORKING_EPSG, WGS84_EPSG).transform(geom.x, geom.y)


def _view(page, lon: float, lat: float, zoom: int) -> None:
    page.evaluate(
        f"([lat, lon, z]) => {MAP}.setView([lat, lon], z, {{animate: false}})", [lat, lon, zoom]
    )
    _tiles_drawn(page)


def _screen(page, lon: float, lat: float) -> tuple[float, float]:
    box = page.locator("#zp-map .folium-map").bounding_box()
    x, y = page.evaluate(
        f"([lat, lon]) => {{ const p = {MAP}.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }}",
        [lat, lon],
    )
    return box["x"] + x, box["y"] + y


def _picked_after_click(page, x: float, y: float) -> str | None:
    """Click at (x, y) right after closing the popup; the ``layer/id`` whose popup opened, or
    None. The closed popup is still fading out (200 ms) when the click comes: it must not
    catch the click (zp.js marks it zp-closing)."""
    page.evaluate(
        f"() => {{ {MAP}.closePopup(); document.querySelector('#zp-map .folium-map')"
        ".removeAttribute('data-picked'); }"
    )
    with page.expect_response(lambda r: "/map/features?" in r.url):
        page.mouse.click(x, y)
    page.wait_for_timeout(50)
    return page.get_attribute("#zp-map .folium-map", "data-picked")


def test_substation_marker_opens_its_popup_ten_times_in_ten(live_server, page, store):
    subs = store.read("substations")
    ss12 = subs[subs["name"].fillna("").str.contains("12")].iloc[0]
    lon, lat = _lonlat(ss12.geometry)
    _open_map(page, live_server)
    _view(page, lon, lat, 16)
    cx, cy = _screen(page, lon, lat)
    # ten clicks spread over the drawn marker (radius 8 px, stroke 3 px): centre, rings, rim
    spots = [(0, 0)] + [
        (r * math.cos(a), r * math.sin(a))
        for r, a in zip((3, 5, 7, 9, 9, 6, 8, 4, 9), [k * 2 * math.pi / 9 for k in range(9)])
    ]
    hits = [_picked_after_click(page, cx + dx, cy + dy) for dx, dy in spots]
    assert hits == [f"substations/{ss12['asset_id']}"] * 10, hits
    # the popup closed before the last click fades out; then one popup is left
    page.wait_for_function("() => document.querySelectorAll('.leaflet-popup').length === 1")
    title = page.locator(".leaflet-popup-content .zp-popup h6").inner_text()
    assert title.count("Substation") == 1, title  # "Substation No. 12", not twice
    page.screenshot(path=str(ARTIFACTS / "map-substation.png"))
    assert page.zp_errors == [], page.zp_errors[:3]


def test_an_empty_click_inside_the_zone_opens_no_popup(live_server, page, store):
    zone = store.read("zone").geometry.union_all()
    taken = shapely.union_all(
        [
            store.read(name).geometry.buffer(20).union_all()
            for name in (
                "expansion",
                "plots",
                "roads",
                "gates",
                "rail_lines",
                "rail_stations",
                "substations",
                "power_lines",
                "water_mains",
                "storm_sewers",
                "gas_mains",
                "prot_zones",
            )
            if len(store.read(name))
        ]
    )
    free = zone.buffer(-20).difference(taken)  # 20 m: four times the 6 px reach at zoom 17
    if free.is_empty:
        pytest.fail("the sample zone has no empty ground 20 m from every feature")
    largest = max(getattr(free, "geoms", [free]), key=lambda g: g.area)
    lon, lat = _lonlat(largest.representative_point())
    _open_map(page, live_server)
    _view(page, lon, lat, 17)
    x, y = _screen(page, lon, lat)
    assert _picked_after_click(page, x, y) is None
    assert page.locator(".leaflet-popup").count() == 0


def _search(page, text: str) -> None:
    box = page.locator(".zp-search-input")
    box.fill(text)
    box.press("Enter")


def test_map_search_zooms_to_and_highlights_the_plot(live_server, page, store):
    plots = store.read("plots", where={"status": ["available"]})
    plot = plots[plots["cadastre"].notna()].iloc[-1]
    _open_map(page, live_server)
    _search(page, str(plot["cadastre"]))
    page.wait_for_function(
        f"() => document.querySelector('.zp-search').dataset.found === {plot['plot_id']!r}"
    )
    page.wait_for_selector(f"#zp-map .folium-map[data-picked='plots/{plot['plot_id']}']")
    assert page.locator("path.zp-search-hit").count() == 1
    assert page.evaluate(f"{MAP}.getZoom()") >= 16
    lon, lat = _lonlat(plot.geometry.representative_point())
    assert page.evaluate(f"([lat, lon]) => {MAP}.getBounds().contains([lat, lon])", [lat, lon])
    assert plot["plot_id"] in page.locator(".leaflet-popup-content").inner_text()
    page.screenshot(path=str(ARTIFACTS / "map-search.png"))
    # a candidate is a planner's secret: the public search does not find it
    candidate = store.read("plots", where={"status": ["candidate"]}).iloc[0]["plot_id"]
    page.locator(".zp-search-input").fill(candidate)
    page.wait_for_selector(".zp-search-none")
    assert page.zp_errors == [], page.zp_errors[:3]


def test_catalogue_search_selects_the_plot_and_puts_it_in_the_url(live_server, page, store):
    page.goto(live_server + "/login", wait_until="domcontentloaded")
    page.fill("input[name=username]", "planner")
    page.fill("input[name=password]", PASSWORDS["planner"])
    page.click("main form button[type=submit]")
    page.goto(live_server + "/lang/en?next=/plots", wait_until="domcontentloaded")
    page.wait_for_selector("#zp-plot-table tbody tr")
    occupied = store.read("plots", where={"status": ["occupied"]})
    occupied = occupied[occupied["resident"].fillna("") != ""].iloc[0]
    # planners find a plot by its resident; it is not in the (available) list: outlined only
    _search(page, occupied["resident"])
    page.wait_for_function(
        f"() => document.getElementById('zp-catalogue').dataset.selected === "
        f"{occupied['plot_id']!r}"
    )
    assert f"plot={occupied['plot_id']}" in page.url
    assert page.locator("path.zp-search-hit").count() == 1
    # the status filter shows it in the list; the shared link restores the selection
    page.click("#zp-statuses summary")
    page.check("input[name=status][value=occupied]")
    page.wait_for_selector(f"tr.zp-selected[data-plot='{occupied['plot_id']}']")
    assert "status=available%2Coccupied" in page.url or "status=available,occupied" in page.url
    shared = page.url
    page.goto(shared, wait_until="domcontentloaded")
    page.wait_for_selector(f"tr.zp-selected[data-plot='{occupied['plot_id']}']")
    assert page.is_checked("input[name=status][value=occupied]")
    page.screenshot(path=str(ARTIFACTS / "catalogue-search.png"))
    assert page.zp_errors == [], page.zp_errors[:3]


def test_measuring_distance_and_area(live_server, page, app):
    _open_map(page, live_server)
    page.click(".zp-measure-button")
    box = page.locator("#zp-map .folium-map").bounding_box()
    corners = [(300, 300), (700, 300), (700, 600)]
    for x, y in corners:
        page.mouse.click(box["x"] + x, box["y"] + y)
    page.mouse.dblclick(box["x"] + 700, box["y"] + 600)
    lonlat = page.evaluate(
        f"(pts) => pts.map(p => {{ const l = {MAP}.containerPointToLatLng(p); return [l.lng, l.lat]; }})",
        [list(c) for c in corners],
    )
    geod = Geod(ellps="WGS84")
    lons, lats = zip(*lonlat)
    area, perimeter = geod.polygon_area_perimeter(lons, lats)
    tool = page.locator(".zp-measure")
    assert tool.get_attribute("data-points") == "3"
    assert float(tool.get_attribute("data-distance-m")) == pytest.approx(perimeter, rel=0.01)
    assert float(tool.get_attribute("data-area-m2")) == pytest.approx(abs(area), rel=0.01)
    result = page.locator(".zp-measure-result").inner_text()
    assert "Distance:" in result and "Area:" in result and (" ha" in result or " m²" in result)
    # measuring opens no popup; switching the tool off clears the shape
    assert page.get_attribute("#zp-map .folium-map", "data-picked") is None
    page.screenshot(path=str(ARTIFACTS / "map-measure.png"))
    page.click(".zp-measure-button")
    assert tool.get_attribute("data-points") == "0"
    # the catalogue has the same tool, in the reader's language
    page.goto(live_server + "/lang/ru?next=/plots", wait_until="domcontentloaded")
    assert page.get_attribute(".zp-measure-button", "title") == _in_russian(
        app, "Measure distance and area"
    )
    assert page.zp_errors == [], page.zp_errors[:3]


def _in_russian(app, msgid: str) -> str:
    from flask_babel import force_locale, gettext

    with app.test_request_context(), force_locale("ru"):
        return gettext(msgid)


def test_print_view_is_one_page_with_legend_and_scale(live_server, page):
    _open_map(page, live_server)
    page.evaluate(
        "() => { window.zpPrinted = 0; window.print = () => { window.zpPrinted += 1; }; }"
    )
    page.evaluate("() => document.querySelector('details.zp-legend').removeAttribute('open')")
    page.click(".zp-print-button")
    assert page.evaluate("window.zpPrinted") == 1
    assert page.get_attribute("details.zp-legend", "open") is not None  # printed open
    page.emulate_media(media="print")
    assert not page.locator("header.zp-header").is_visible()
    assert page.locator(".zp-print-title").is_visible()
    assert page.locator(".zp-legend li").first.is_visible()
    assert page.locator(".leaflet-control-scale-line").is_visible()
    assert not page.locator(".zp-search, .leaflet-control-layers").first.is_visible()
    page.set_viewport_size({"width": 1123, "height": 794})  # A4 landscape at 96 dpi
    page.screenshot(path=str(ARTIFACTS / "map-print.png"))
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    (ARTIFACTS / "map-print.pdf").write_bytes(pdf)
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert pages == 1, pages


@pytest.mark.parametrize("path", ["/", "/plots", "/plots/P-001"])
def test_zoom_buttons_and_scale_speak_the_readers_language(live_server, page, path):
    assert page.goto(f"{live_server}/lang/ru?next={path}", wait_until="networkidle").ok
    page.wait_for_selector(".leaflet-control-scale-line")
    assert page.get_attribute(".leaflet-control-zoom-in", "title") == "Приблизить"
    assert page.get_attribute(".leaflet-control-zoom-out", "title") == "Отдалить"
    scale = page.inner_text(".leaflet-control-scale-line").strip()
    assert scale.endswith((" м", " км")), scale
    assert page.locator(".leaflet-control-scale-line").count() == 1  # no English twin
