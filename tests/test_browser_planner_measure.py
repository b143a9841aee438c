"""Measuring distance and area on the planner's maps (workspace, subdivision, access design,
allocation) in Chromium: one ruler on each map, in the reader's language, lengths and areas
as on the ellipsoid. In the workspace measuring selects nothing, starting a drawing turns the
ruler off, and drawing, reshaping and typed corners work as before.

Screenshots go to test-artifacts/planner-measure-*.png.
"""

from __future__ import annotations

import pytest
import shapely
from conftest import ARTIFACTS
from pyproj import Geod
from test_browser_planner import csrf, login, open_workspace, pixels, view
from test_planner_parcels import free_square, to_geojson

pytestmark = pytest.mark.browser

#: page, the global its script exposes the map on, what says the page is ready
PAGES = [
    ("/planner", "zpPlanner", "#zp-planner[data-ready=true]"),
    ("/planner/subdivide", "zpSubdivide", "#zp-subdivide[data-ready=true]"),
    ("/planner/access", "zpAccess", None),
    ("/planner/allocate", "zpAllocate", None),
]


@pytest.fixture
def planner_page(page, live_server):
    page.set_default_timeout(20_000)  # a busy machine: logging in alone can take 10 s
    login(page, live_server, "planner")
    page.zp_base = live_server
    return page


def measure(page, global_name: str, corners: list[tuple[float, float]]) -> dict:
    """Turn the ruler on, click ``corners`` (map container pixels), double-click the last;
    what the tool shows and what pyproj gives for the same points."""
    page.click(".zp-measure-button")
    box = page.evaluate(
        f"() => {{ const r = {global_name}.map.getContainer().getBoundingClientRect(); "
        "return [r.x, r.y]; }"
    )
    for x, y in corners:
        page.mouse.click(box[0] + x, box[1] + y)
    page.mouse.dblclick(box[0] + corners[-1][0], box[1] + corners[-1][1])
    lonlat = page.evaluate(
        f"(pts) => pts.map(p => {{ const l = {global_name}.map.containerPointToLatLng(p); "
        "return [l.lng, l.lat]; })",
        [list(c) for c in corners],
    )
    lons, lats = zip(*lonlat)
    area, perimeter = Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)
    tool = page.locator(".zp-measure")
    return {
        "points": int(tool.get_attribute("data-points")),
        "distance": float(tool.get_attribute("data-distance-m")),
        "area": float(tool.get_attribute("data-area-m2")),
        "expected_distance": perimeter,
        "expected_area": abs(area),
    }


@pytest.mark.parametrize("path, global_name, ready", PAGES)
def test_every_planner_map_measures_distance_and_area(planner_page, path, global_name, ready):
    page = planner_page
    page.goto(f"{page.zp_base}/lang/ru?next={path}", wait_until="networkidle")
    if ready:
        page.wait_for_selector(ready)
    page.wait_for_function(f"() => window.{global_name} && {global_name}.map._loaded")
    assert page.locator(".zp-measure-button").count() == 1  # one ruler on the one map
    assert page.get_attribute(".zp-measure-button", "title") == "Измерить расстояние и площадь"
    shown = measure(page, global_name, [(300, 250), (500, 250), (500, 420)])
    assert shown["points"] == 3
    assert shown["distance"] == pytest.approx(shown["expected_distance"], rel=0.01)
    assert shown["area"] == pytest.approx(shown["expected_area"], rel=0.01)
    result = page.inner_text(".zp-measure-result")
    assert "Расстояние:" in result and "Площадь:" in result, result
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(
        path=str(ARTIFACTS / f"planner-measure-{path.strip('/').replace('/', '-')}.png")
    )
    page.click(".zp-measure-button")  # off: the shape goes
    assert page.get_attribute(".zp-measure", "data-points") == "0"
    assert page.evaluate(f"() => !{global_name}.map.zpMeasuring")
    assert page.zp_errors == [], page.zp_errors[:3]


def test_measuring_in_the_workspace_leaves_selecting_drawing_and_reshaping_working(
    planner_page, store
):
    page = planner_page
    base = page.zp_base
    room = free_square(store.snapshot(), half_m=95)
    cx, cy = room.centroid.x, room.centroid.y
    west = shapely.box(cx - 90, cy - 30, cx - 20, cy + 30)  # 0.42 ha, stored
    east = shapely.box(cx + 20, cy - 30, cx + 90, cy + 30)  # 0.42 ha, drawn below
    open_workspace(page, base)
    response = page.request.post(
        base + "/api/plots",
        headers={"X-CSRFToken": csrf(page)},
        data={"type": "Feature", "geometry": to_geojson(west), "properties": {}},
    )
    assert response.status == 201, response.text()
    pid = response.json()["id"]
    open_workspace(page, base)
    view(page, (cx, cy), 17)
    page.wait_for_function("(id) => !!zpPlanner.index.plots[id]", arg=pid)

    # measuring across the stored plot: its clicks are points, not a selection
    box = page.locator("#zp-planner-map").bounding_box()
    inside, corner, outside = pixels(page, [(cx - 55, cy), (cx - 20, cy + 30), (cx + 40, cy + 20)])
    clicks = [(x - box["x"], y - box["y"]) for x, y in (inside, corner, outside)]
    shown = measure(page, "zpPlanner", clicks)
    assert shown["points"] == 3
    assert shown["area"] == pytest.approx(shown["expected_area"], rel=0.01)
    assert page.evaluate("() => zpPl.state.selected") is None
    assert page.is_hidden("#zp-pl-selected")
    page.screenshot(path=str(ARTIFACTS / "planner-measure-workspace.png"))
    # the ruler off, a click selects again
    page.click(".zp-measure-button")
    page.mouse.click(*inside)
    page.locator("#zp-pl-title").filter(has_text=pid).wait_for()

    # reshaping: the ruler on and off in between leaves the vertex editing on
    page.click("#zp-pl-edit")
    page.locator(".marker-icon:not(.marker-icon-middle)").first.wait_for()
    page.click(".zp-measure-button")
    page.mouse.click(*outside)
    assert page.get_attribute(".zp-measure", "data-points") == "1"
    page.click(".zp-measure-button")
    start, end = pixels(page, [(cx - 90, cy + 30), (cx - 100, cy + 45)])  # north-west corner
    page.mouse.move(*start)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(
            start[0] + (end[0] - start[0]) * i / 10, start[1] + (end[1] - start[1]) * i / 10
        )
    page.mouse.up()
    page.locator("#zp-pl-edit-area").wait_for()
    page.click("#zp-pl-save-outline")
    page.locator("#zp-pl-message").filter(has_text=f"Outline of {pid} saved").wait_for()
    reshaped = store.get("plots", pid)["geometry"]
    expected = shapely.Polygon(
        [(cx - 90, cy - 30), (cx - 20, cy - 30), (cx - 20, cy + 30), (cx - 100, cy + 45)]
    )
    assert reshaped.area == pytest.approx(expected.area, rel=0.03) and reshaped.area > west.area

    # drawing: picking geoman's polygon tool turns the ruler off; the parcel is drawn,
    # checked and stored as without the ruler
    page.evaluate("() => zpPlanner.deselect()")
    page.click(".zp-measure-button")
    page.mouse.click(*outside)
    page.click(".leaflet-pm-icon-polygon")
    assert page.evaluate("() => !zpPlanner.map.zpMeasuring")
    assert page.get_attribute(".zp-measure", "data-points") == "0"
    points = pixels(page, list(east.exterior.coords)[:-1])
    for x, y in points:
        page.mouse.click(x, y)
        page.wait_for_timeout(60)
    page.mouse.click(*points[0])
    page.locator("#zp-pl-verdict").filter(has_text="can be stored").wait_for()
    page.click("#zp-pl-save")
    page.locator("#zp-pl-message").filter(has_text="Stored as candidate plot").wait_for()
    new_id = page.inner_text("#zp-pl-title").split()[0]
    assert store.get("plots", new_id)["geometry"].hausdorff_distance(east) < 0.5
    # and the ruler on while drawing ends the drawing: no half-drawn parcel is left
    page.click(".leaflet-pm-icon-polygon")
    page.mouse.click(*pixels(page, [(cx, cy - 60)])[0])
    page.click(".zp-measure-button")
    assert page.evaluate("() => !zpPlanner.map.pm.globalDrawModeEnabled()")
    assert page.evaluate("() => zpPlanner.map.zpMeasuring === true")
    page.screenshot(path=str(ARTIFACTS / "planner-measure-workspace-drawn.png"))
    assert page.zp_errors == [], page.zp_errors[:3]
