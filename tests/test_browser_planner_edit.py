"""Drawing and editing in the planner's workspace in a real browser (Chromium): a parcel drawn
near a plot snaps onto its corners; parcels from typed corners in UTM 43N and WGS84 (and an
outline corrected by typed corners), bad corners refused with nothing written; plot
attributes edited, audited, refused when stale or invalid (in Russian too); geoman's and
Leaflet's controls in Russian.

Screenshots of each step go to test-artifacts/planner-edit-*.png.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from conftest import ARTIFACTS
from test_browser_planner import csrf, login, open_workspace, pixels, plot_ids, view
from test_planner_parcels import free_square, to_geojson

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer

pytestmark = pytest.mark.browser


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"planner-edit-{name}.png"))


@pytest.fixture
def planner_page(page, live_server):
    page.set_default_timeout(20_000)  # a busy machine: logging in alone can take 10 s
    login(page, live_server, "planner")
    page.zp_base = live_server
    return page


def create_plot(page, polygon) -> str:
    response = page.request.post(
        page.zp_base + "/api/plots",
        headers={"X-CSRFToken": csrf(page)},
        data={"type": "Feature", "geometry": to_geojson(polygon), "properties": {}},
    )
    assert response.status == 201, response.text()
    return response.json()["id"]


def select_plot(page, polygon, pid: str) -> None:
    view(page, polygon.centroid.coords[0], 17.5)
    page.wait_for_function("(id) => !!zpPlanner.index.plots[id]", arg=pid)
    page.evaluate("(id) => zpPlanner.select('plots', id)", pid)
    page.locator("#zp-pl-title").filter(has_text=pid).wait_for()


def corners_of(polygon) -> np.ndarray:
    return np.asarray(polygon.exterior.coords)[:-1]


# --------------------------------------------------------------------------- snapping
def test_a_parcel_drawn_near_a_plot_snaps_onto_its_corners(planner_page, store):
    page = planner_page
    room = free_square(store.snapshot(), half_m=43)  # asserts 61 m of free room around
    cx, cy = room.centroid.x, room.centroid.y
    west = shapely.box(cx - 50, cy - 32, cx, cy + 32)  # 0.32 ha
    open_workspace(page, page.zp_base)
    pid = create_plot(page, west)
    view(page, (cx, cy), 18)
    page.wait_for_function("(id) => !!zpPlanner.index.plots[id]", arg=pid)
    # the east parcel's west corners are clicked 3-4 m (7-10 px at zoom 18) off the plot's
    # corners: snapping puts them on the corners exactly
    clicks = [(cx + 50, cy - 32), (cx + 50, cy + 32), (cx + 3, cy + 35), (cx + 3, cy - 34)]
    page.click(".leaflet-pm-icon-polygon")
    points = pixels(page, clicks)
    for x, y in points:
        page.mouse.move(x - 4, y - 4)
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        page.wait_for_timeout(80)
    page.mouse.click(*points[0])
    verdict = page.locator("#zp-pl-verdict")
    verdict.wait_for()
    shot(page, "1-snapped")
    assert "can be stored" in verdict.inner_text(), verdict.inner_text()
    page.click("#zp-pl-save")
    page.locator("#zp-pl-message").filter(has_text="Stored as candidate plot").wait_for()
    new_id = page.inner_text("#zp-pl-title").split()[0]
    east = store.get("plots", new_id)["geometry"]
    west = store.get("plots", pid)["geometry"]  # as stored (the API took 7 decimals)
    stored = corners_of(east)
    for corner in corners_of(west):
        if corner[0] < cx - 1:  # the west side of the west plot: far from the clicks
            continue
        gap = np.hypot(*(stored - corner).T).min()
        assert gap < 0.001, f"corner {corner} missed by {gap:.4f} m"  # not the 3 m clicked
    assert east.intersection(west).area < 1e-4 and east.distance(west) < 0.001
    assert page.zp_errors == [], page.zp_errors[:3]


def test_drawing_zoomed_out_asks_to_zoom_in_then_snaps(planner_page, store):
    page = planner_page
    room = free_square(store.snapshot(), half_m=95)
    cx, cy = room.centroid.x, room.centroid.y
    west = shapely.box(cx - 90, cy - 30, cx - 20, cy + 30)
    open_workspace(page, page.zp_base)
    pid = create_plot(page, west)
    # zoomed out the plots are tiles only: nothing to snap to, so no drawing yet
    view(page, (cx, cy), 12)
    page.wait_for_selector("#zp-planner[data-plots=tiles]")
    page.click(".leaflet-pm-icon-polygon")
    message = page.locator("#zp-pl-message")
    message.filter(has_text="Zoom in to draw a parcel").wait_for()
    assert "snap to the plots' outlines" in message.inner_text()
    assert not page.evaluate("() => zpPlanner.map.pm.globalDrawModeEnabled()")
    shot(page, "0-zoom-to-draw")
    # one click zooms in; once the outlines are there the same tool is on
    message.get_by_role("button", name="Zoom in").click()
    page.wait_for_function("() => zpPlanner.map.pm.globalDrawModeEnabled()")
    assert page.evaluate("() => zpPlanner.map.getZoom()") >= 14
    assert page.get_attribute("#zp-planner", "data-plots") == "outlines"
    assert page.evaluate("(id) => !!zpPlanner.index.plots[id]", pid)
    # the first corner, clicked 4 px (about 30 m at zoom 14) off the plot's north-east
    # corner, lands on it
    corner, east, south_east = pixels(
        page, [(cx - 20, cy + 30), (cx + 150, cy + 30), (cx + 150, cy - 100)]
    )
    for x, y in [(corner[0] + 3, corner[1] - 3), east, south_east]:
        page.mouse.move(x - 4, y - 4)
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        page.wait_for_timeout(80)
    # zoomed out in the middle of the drawing, the outlines stay until it ends
    view(page, (cx, cy), 12)
    page.wait_for_selector("#zp-planner[data-plots=tiles]")
    assert page.evaluate("(id) => !!zpPlanner.index.plots[id]", pid)
    page.locator(".button-container.active .action-cancel").click()
    page.wait_for_function("(id) => !zpPlanner.index.plots[id]", arg=pid)
    view(page, (cx, cy), 14)
    page.wait_for_selector("#zp-planner[data-plots=outlines]")
    page.click(".leaflet-pm-icon-polygon")
    for x, y in [(corner[0] + 3, corner[1] - 3), east, south_east]:
        page.mouse.move(x - 4, y - 4)
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        page.wait_for_timeout(80)
    page.mouse.click(corner[0] + 3, corner[1] - 3)
    page.locator("#zp-pl-verdict").wait_for()
    first = page.evaluate(
        "() => { const p = zpPlanner.draft().getLatLngs()[0]; "
        "return p.map(ll => [ll.lng, ll.lat]); }"
    )
    stored = corners_of(store.get("plots", pid)["geometry"])
    lon, lat = transformer(WORKING_EPSG, WGS84_EPSG).transform(*stored.T)
    gaps = [min(np.hypot(lon - a, lat - b)) for a, b in first]
    assert min(gaps) < 1e-8, gaps  # a stored corner exactly (degrees), not 30 m off
    assert page.zp_errors == [], page.zp_errors[:3]


# --------------------------------------------------------------------------- typed corners
def type_corners(page, crs: str, text: str) -> None:
    page.select_option("#zp-pl-coords-crs", crs)
    page.fill("#zp-pl-coords-text", text)
    page.click("#zp-pl-coords-apply")


def test_parcels_from_typed_corners_in_utm_and_wgs84(planner_page, store):
    page = planner_page
    base = page.zp_base
    open_workspace(page, base)
    before = plot_ids(page)
    # bad corners: each line named, no draft, nothing written
    page.click("#zp-pl-coords-open")
    type_corners(page, "EPSG:4326", "43.3 76.9\n76.91 abc\n76.9")
    errors = page.locator("#zp-pl-coords-errors li")
    errors.first.wait_for()
    assert errors.all_inner_texts() == [
        "line 1: 43.3 76.9 looks like latitude, longitude; give longitude first",
        "line 2: “abc” is not a number",
        "line 3: give two numbers (found 1: “76.9”)",
    ]
    assert page.get_attribute("#zp-pl-coords-text", "aria-invalid") == "true"
    shot(page, "2-bad-corners")
    assert page.evaluate("() => zpPlanner.draft()") is None and plot_ids(page) == before

    # UTM 43N metres, as a survey gives them
    utm = free_square(store.snapshot(), half_m=35)
    x0, y0, x1, y1 = (round(v, 2) for v in utm.bounds)
    text = f"{x0} {y0}\n{x1} {y0}\n{x1} {y1}\n{x0} {y1}"
    type_corners(page, "EPSG:32643", text)
    page.locator("#zp-pl-verdict").filter(has_text="can be stored").wait_for()
    assert page.is_hidden("#zp-pl-coords")
    shot(page, "3-utm-corners")
    page.click("#zp-pl-save")
    page.locator("#zp-pl-message").filter(has_text="Stored as candidate plot").wait_for()
    utm_id = page.inner_text("#zp-pl-title").split()[0]
    stored = store.get("plots", utm_id)["geometry"]
    typed = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    assert np.hypot(*(corners_of(stored)[:, None, :] - typed).T).min(axis=1).max() < 0.002

    # the same plot's outline corrected by typed corners: its corners come in the chosen
    # system, one moves 10 m east, the check runs, the outline is saved
    page.click("#zp-pl-edit-coords")
    page.select_option("#zp-pl-coords-crs", "EPSG:32643")
    page.wait_for_function("() => document.querySelector('#zp-pl-coords-text').value.length > 20")
    lines = page.input_value("#zp-pl-coords-text").splitlines()
    assert len(lines) == 4 and f"{x1:.2f} {y1:.2f}" in lines
    lines[lines.index(f"{x1:.2f} {y1:.2f}")] = f"{x1 + 10:.2f} {y1:.2f}"
    # the planner opens the form again and types before the plot's corners arrive: their
    # late answer must not overwrite what was typed (it did: the outline was saved unchanged)
    page.click("#zp-pl-coords-close")
    held = []
    page.route("**/api/coordinates/text", lambda route: held.append(route))
    page.click("#zp-pl-edit-coords")
    page.wait_for_function("() => !document.querySelector('#zp-pl-coords').hidden")
    while not held:
        page.wait_for_timeout(50)
    page.fill("#zp-pl-coords-text", "\n".join(lines))
    with page.expect_response("**/api/coordinates/text") as late:
        held.pop().continue_()
    late.value.finished()
    page.wait_for_timeout(300)  # the page has read the late answer
    page.unroute("**/api/coordinates/text")
    assert page.input_value("#zp-pl-coords-text") == "\n".join(lines)
    page.click("#zp-pl-coords-apply")
    page.locator("#zp-pl-edit-area").wait_for()
    page.click("#zp-pl-save-outline")
    page.locator("#zp-pl-message").filter(has_text=f"Outline of {utm_id} saved").wait_for()
    moved = store.get("plots", utm_id)["geometry"]
    assert moved.area == pytest.approx(stored.area + 10 * (y1 - y0) / 2, abs=0.5)

    # WGS84 degrees, longitude first, with a decimal comma and a closing corner
    wgs = free_square(store.snapshot(), half_m=30)
    lon, lat = transformer(WORKING_EPSG, WGS84_EPSG).transform(*corners_of(wgs).T)
    rows = [f"{a:.8f}; {b:.8f}".replace(".", ",") for a, b in zip(lon, lat)]
    page.evaluate("() => zpPlanner.deselect()")
    page.click("#zp-pl-coords-open")
    type_corners(page, "EPSG:4326", "\n".join(rows + rows[:1]))
    page.locator("#zp-pl-verdict").filter(has_text="can be stored").wait_for()
    page.click("#zp-pl-save")
    page.locator("#zp-pl-message").filter(has_text="Stored as candidate plot").wait_for()
    wgs_id = page.inner_text("#zp-pl-title").split()[0]
    assert store.get("plots", wgs_id)["geometry"].hausdorff_distance(wgs) < 0.01
    assert plot_ids(page) == before | {utm_id, wgs_id}
    shot(page, "4-wgs84-saved")
    errors = [e for e in page.zp_errors if "status of 422" not in e]
    assert errors == [], errors[:3]


# --------------------------------------------------------------------------- attributes
def test_plot_attributes_are_edited_audited_and_refused_when_stale(planner_page, store):
    page = planner_page
    base = page.zp_base
    square = free_square(store.snapshot(), half_m=30)
    open_workspace(page, base)
    pid = create_plot(page, square)
    select_plot(page, square, pid)
    page.click("#zp-pl-attrs summary")
    page.fill("#zp-pl-attr-cadastre", "20-311-777")
    page.check("#zp-pl-attr-sectors input[data-sector=food]")
    page.check("#zp-pl-attr-sectors input[data-sector=light]")
    page.fill("#zp-pl-attr-hazard_ok", "3")
    page.select_option("#zp-pl-attr-rail_need", "true")
    shot(page, "5-attributes")
    page.click("#zp-pl-attrs-save")
    page.locator("#zp-pl-message").filter(has_text=f"Attributes of {pid} saved.").wait_for()
    row = store.get("plots", pid)
    assert (row["cadastre"], row["sectors"], row["hazard_ok"], bool(row["rail_need"])) == (
        "20-311-777",
        "food,light",
        3,
        True,
    )
    audit = store.read("audit", where={"feat_id": pid, "action": "update"}).iloc[-1]
    assert audit["username"] == "planner"
    assert json.loads(audit["changes"])["cadastre"] == [None, "20-311-777"]
    assert "20-311-777" in page.inner_text("#zp-pl-selected .zp-pl-facts")

    # invalid values: each message next to its field, nothing written
    page.click("#zp-pl-attrs summary")
    page.fill("#zp-pl-attr-hazard_ok", "7")
    page.fill("#zp-pl-attr-power_kw", "a lot")
    page.click("#zp-pl-attrs-save")
    hazard = page.locator("#zp-pl-attr-hazard_ok-error")
    hazard.wait_for()
    assert hazard.inner_text() == "must be at most 5"
    assert page.inner_text("#zp-pl-attr-power_kw-error") == "give a number (not “a lot”)"
    assert page.get_attribute("#zp-pl-attr-hazard_ok", "aria-invalid") == "true"
    shot(page, "6-attributes-invalid")
    assert store.get("plots", pid)["version"] == row["version"]

    # someone else changes the plot meanwhile: 409, the page offers a reload
    other = page.request.patch(
        f"{base}/api/plots/{pid}",
        headers={"X-CSRFToken": csrf(page)},
        data={"version": int(row["version"]), "cadastre": "20-311-888"},
    )
    assert other.status == 200, other.text()
    page.fill("#zp-pl-attr-hazard_ok", "2")
    page.fill("#zp-pl-attr-power_kw", "")
    page.click("#zp-pl-attrs-save")
    stale = page.locator("#zp-pl-message.zp-pl-message-error")
    stale.filter(has_text="Someone else changed this feature").wait_for()
    shot(page, "7-attributes-stale")
    assert store.get("plots", pid)["hazard_ok"] == 3
    stale.get_by_role("button", name="Reload it").click()
    page.locator("#zp-pl-message").filter(has_text="Reloaded").wait_for()
    assert "20-311-888" in page.inner_text("#zp-pl-selected .zp-pl-facts")

    # in Russian: labels and the server's messages
    page.goto(f"{base}/lang/ru?next=/planner", wait_until="domcontentloaded")
    page.wait_for_selector("#zp-planner[data-ready=true]")
    select_plot(page, square, pid)
    page.click("#zp-pl-attrs summary")
    assert page.inner_text("#zp-pl-attrs summary") == "Атрибуты"
    page.fill("#zp-pl-attr-hazard_ok", "0")
    page.click("#zp-pl-attrs-save")
    hazard.wait_for()
    assert hazard.inner_text() == "должно быть не меньше 1"
    shot(page, "8-attributes-ru")
    errors = [e for e in page.zp_errors if "status of 409" not in e and "status of 422" not in e]
    assert errors == [], errors[:3]


# --------------------------------------------------------------------------- languages
def test_drawing_controls_speak_russian(planner_page):
    page = planner_page
    page.goto(f"{page.zp_base}/lang/ru?next=/planner", wait_until="domcontentloaded")
    page.wait_for_selector("#zp-planner[data-ready=true]")
    polygon = page.locator(".button-container", has=page.locator(".leaflet-pm-icon-polygon"))
    assert polygon.get_attribute("title") == "Нарисовать многоугольник"
    rectangle = page.locator(".button-container", has=page.locator(".leaflet-pm-icon-rectangle"))
    assert rectangle.get_attribute("title") == "Нарисовать прямоугольник"
    assert page.get_attribute(".leaflet-control-zoom-in", "title") == "Приблизить"
    assert page.get_attribute(".leaflet-control-layers-toggle", "title") == "Слои"
    assert page.inner_text(".leaflet-control-scale-line").split()[-1] in ("м", "км")
    page.evaluate("() => zpPlanner.map.setZoom(15, {animate: false})")  # drawing zoom
    page.wait_for_selector("#zp-planner[data-plots=outlines]")
    page.click(".leaflet-pm-icon-polygon")
    box = page.locator("#zp-planner-map").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    hint = page.locator(".leaflet-tooltip")
    hint.filter(has_text="Щёлкните, чтобы поставить первую вершину").wait_for()
    assert page.inner_text(".button-container.active .action-cancel") == "Отмена"
    shot(page, "9-controls-ru")
    page.keyboard.press("Escape")
    page.goto(f"{page.zp_base}/lang/kk?next=/planner", wait_until="domcontentloaded")
    page.wait_for_selector("#zp-planner[data-ready=true]")
    assert polygon.get_attribute("title") == "Көпбұрыш сызу"
    assert page.zp_errors == [], page.zp_errors[:3]
