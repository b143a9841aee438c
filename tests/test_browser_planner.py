"""The planner's workspace in a real browser (Debian's Chromium, every other host blocked):
draw with the mouse, see the check, save, reload; a refused drawing; drag a vertex, delete,
read the history; mark SS-12 repaired and see a plot's servicing change; investors kept out.

Screenshots of each step go to test-artifacts/planner-*.png.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import shapely
from conftest import ARTIFACTS, PASSWORDS
from test_planner_parcels import free_square, to_geojson

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer

pytestmark = pytest.mark.browser


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"planner-{name}.png"))


def login(page, base: str, username: str) -> None:
    page.goto(base + "/login", wait_until="domcontentloaded")
    page.fill("#username", username)
    page.fill("#password", PASSWORDS[username])
    with page.expect_navigation():
        page.click("button[type=submit]")


def open_workspace(page, base: str) -> None:
    page.goto(base + "/planner", wait_until="domcontentloaded")
    page.wait_for_selector("#zp-planner[data-ready=true]", timeout=15_000)


def to_lonlat(xy):
    lon, lat = transformer(WORKING_EPSG, WGS84_EPSG).transform(*xy)
    return [float(lat), float(lon)]


def view(page, centre_xy, zoom: float) -> None:
    page.evaluate(
        "([c, z]) => zpPlanner.map.setView(c, z, {animate: false})", [to_lonlat(centre_xy), zoom]
    )


def pixels(page, points_xy) -> list[tuple[float, float]]:
    """Page pixels of working-CRS points (via the map's own latLngToContainerPoint)."""
    box = page.locator("#zp-planner-map").bounding_box()
    out = page.evaluate(
        """(lls) => lls.map(ll => {
        const p = zpPlanner.map.latLngToContainerPoint(ll); return [p.x, p.y]; })""",
        [to_lonlat(p) for p in points_xy],
    )
    return [(box["x"] + x, box["y"] + y) for x, y in out]


def draw_polygon(page, corners_xy) -> None:
    """Draw with geoman's polygon tool by clicking each corner, then the first again."""
    page.click(".leaflet-pm-icon-polygon")
    points = pixels(page, corners_xy)
    for x, y in points:
        page.mouse.click(x, y)
        page.wait_for_timeout(60)
    page.mouse.click(*points[0])


def csrf(page) -> str:
    return page.get_attribute('meta[name="csrf-token"]', "content")


def plot_ids(page, status: str = "candidate") -> set[str]:
    """Plot ids of a status, as the API lists them (the browser context's session)."""
    body = page.request.get(f"{page.zp_base}/api/plots?status={status}&limit=1000").json()
    return {f["id"] for f in body["features"]}


@pytest.fixture
def snap(store):
    return store.snapshot()


@pytest.fixture
def planner_page(page, live_server):
    page.set_default_timeout(20_000)  # a busy machine: logging in alone can take 10 s
    login(page, live_server, "planner")
    page.zp_base = live_server
    return page


# --------------------------------------------------------------------------- draw and save
def test_draw_check_save_and_find_it_after_reload(planner_page, snap):
    page = planner_page
    base = page.zp_base
    open_workspace(page, base)
    shot(page, "1-workspace")
    square = free_square(snap, half_m=45)
    view(page, square.centroid.coords[0], 17)
    corners = list(square.exterior.coords)[:-1]
    draw_polygon(page, corners)
    verdict = page.locator("#zp-pl-verdict")
    verdict.wait_for()
    assert "can be stored" in verdict.inner_text()
    area = float(page.inner_text("#zp-pl-area").replace(",", ""))
    assert area == pytest.approx(square.area / 10_000, abs=0.02)
    servicing = page.locator("#zp-pl-check .zp-pl-explain li")
    assert servicing.count() >= 5
    assert re.search(r"^power: ", servicing.nth(2).inner_text()), servicing.all_inner_texts()
    message = page.locator("#zp-pl-message.zp-pl-message-ok")
    assert message.is_visible() and "can be stored" in message.inner_text()
    shot(page, "2-drawn-and-checked")

    before = plot_ids(page)
    page.click("#zp-pl-save")
    message = page.locator("#zp-pl-message")
    message.filter(has_text="Stored as candidate plot").wait_for()
    new_id = re.search(r"candidate plot (\S+)\.", message.inner_text()).group(1)
    assert page.inner_text("#zp-pl-title").startswith(new_id)
    shot(page, "3-saved")

    open_workspace(page, base)
    assert page.evaluate("(id) => !!zpPlanner.index.plots[id]", new_id)
    assert plot_ids(page) == before | {new_id}
    # the same workspace in Russian, the new plot selected
    page.goto(f"{base}/lang/ru?next=/planner", wait_until="domcontentloaded")
    page.wait_for_selector("#zp-planner[data-ready=true]")
    page.evaluate("(id) => zpPlanner.select('plots', id)", new_id)
    page.locator("#zp-pl-servicing .zp-pl-explain").wait_for()
    shot(page, "3b-workspace-ru")
    assert page.zp_blocked == [] and page.zp_errors == [], page.zp_errors[:3]


def test_a_drawing_across_a_plot_is_refused_with_a_message(planner_page, snap):
    page = planner_page
    open_workspace(page, page.zp_base)
    plots = snap["plots"]
    target = plots[plots["status"] == "occupied"].iloc[0]
    c = target.geometry.centroid
    corners = [
        (c.x - 70, c.y - 60),
        (c.x + 70, c.y - 60),
        (c.x + 70, c.y + 60),
        (c.x - 70, c.y + 60),
    ]
    view(page, (c.x, c.y), 17)
    before = page.request.get(page.zp_base + "/api/layers/plots?limit=1").json()["numberMatched"]
    draw_polygon(page, corners)
    message = page.locator("#zp-pl-message.zp-pl-message-error")
    message.wait_for()
    assert "cannot be stored" in message.inner_text()
    assert (
        target.plot_id in message.inner_text() and "overlaps existing plot" in message.inner_text()
    )
    assert page.locator("#zp-pl-save").is_disabled()
    assert page.locator("#zp-pl-problems li, .zp-pl-problems li").first.get_attribute(
        "data-code"
    ) in ("overlaps_plot", "overlaps_protection", "outside")
    red = page.evaluate("(id) => zpPlanner.index.plots[id].options.color", target.plot_id)
    assert red == "#c62828"  # the plot in the way is outlined in red
    shot(page, "4-refused")
    after = page.request.get(page.zp_base + "/api/layers/plots?limit=1").json()["numberMatched"]
    assert after == before
    assert page.zp_errors == [], page.zp_errors[:3]


# --------------------------------------------------------------------------- edit, delete, audit
def test_drag_a_vertex_delete_and_read_the_history(planner_page, snap):
    page = planner_page
    base = page.zp_base
    open_workspace(page, base)
    square = free_square(snap, half_m=40)
    response = page.request.post(
        base + "/api/plots",
        headers={"X-CSRFToken": csrf(page)},
        data={"type": "Feature", "geometry": to_geojson(square), "properties": {}},
    )
    assert response.status == 201, response.text()
    pid = response.json()["id"]
    area0 = response.json()["properties"]["area_ha"]

    open_workspace(page, base)
    view(page, square.centroid.coords[0], 17.5)
    page.mouse.click(*pixels(page, [square.centroid.coords[0]])[0])
    page.locator("#zp-pl-title").filter(has_text=pid).wait_for()
    page.click("#zp-pl-edit")
    page.locator(".marker-icon:not(.marker-icon-middle)").first.wait_for()
    # drag the north-east corner 30 m further out, with the mouse
    x0, y0, x1, y1 = square.bounds
    start = pixels(page, [(x1, y1)])[0]
    end = pixels(page, [(x1 + 30, y1 + 30)])[0]
    page.mouse.move(*start)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(
            start[0] + (end[0] - start[0]) * i / 10, start[1] + (end[1] - start[1]) * i / 10
        )
    page.mouse.up()
    page.locator("#zp-pl-edit-area").wait_for()
    expected = shapely.Polygon([(x0, y0), (x1, y0), (x1 + 30, y1 + 30), (x0, y1)]).area / 10_000
    shown = float(page.inner_text("#zp-pl-edit-area"))
    assert shown == pytest.approx(expected, abs=0.03) and shown > area0
    shot(page, "5-vertex-dragged")
    page.click("#zp-pl-save-outline")
    page.locator("#zp-pl-message").filter(has_text=f"Outline of {pid} saved").wait_for()
    stored = page.request.get(f"{base}/api/plots/{pid}").json()["properties"]["area_ha"]
    assert stored == pytest.approx(expected, abs=0.03) and stored > area0

    # another planner changes the plot meanwhile: this page's copy is stale
    other = page.request.patch(
        f"{base}/api/plots/{pid}",
        headers={"X-CSRFToken": csrf(page)},
        data={"version": 2, "cadastre": "20-311-900"},
    )
    assert other.status == 200, other.text()
    page.click("#zp-pl-delete")
    page.locator("#zp-pl-delete.zp-pl-armed").wait_for()
    page.click("#zp-pl-delete")
    stale = page.locator("#zp-pl-message.zp-pl-message-error")
    stale.filter(has_text="Someone else changed this feature").wait_for()
    assert "current version is 3; you were working on version 2" in stale.inner_text()
    shot(page, "6-stale-refused")
    assert page.request.get(f"{base}/api/plots/{pid}").status == 200
    stale.get_by_role("button", name="Reload it").click()
    page.locator("#zp-pl-message").filter(has_text="Reloaded").wait_for()
    assert page.inner_text("#zp-pl-selected .zp-pl-facts").count("20-311-900") == 1
    page.click("#zp-pl-delete")
    page.locator("#zp-pl-delete.zp-pl-armed").wait_for()
    page.click("#zp-pl-delete")
    page.locator("#zp-pl-message").filter(has_text=f"Candidate plot {pid} deleted").wait_for()
    assert page.request.get(f"{base}/api/plots/{pid}").status == 404
    assert not page.evaluate("(id) => !!zpPlanner.index.plots[id]", pid)

    page.goto(f"{base}/planner/history?feature={pid}", wait_until="domcontentloaded")
    rows = page.locator("#zp-history-table tbody tr")
    assert [rows.nth(i).get_attribute("data-action") for i in range(rows.count())] == [
        "delete",
        "update",
        "update",
        "insert",
    ]
    assert "planner" in rows.nth(2).inner_text() and "Area, ha" in rows.nth(2).inner_text()
    shot(page, "6-history")
    # Chromium logs the refused (409) request itself; nothing else may go wrong
    errors = [e for e in page.zp_errors if "status of 409" not in e]
    assert errors == [], errors[:3]


# --------------------------------------------------------------------------- asset status
def test_mark_substation_operational_and_servicing_follows(planner_page, snap, store):
    from test_planner_api import nearby_plot_relying_on

    page = planner_page
    base = page.zp_base
    pid = nearby_plot_relying_on(snap, "SS-12")
    page.goto(f"{base}/planner/features/plots/{pid}", wait_until="domcontentloaded")
    power = page.locator("#zp-feature-servicing li").filter(has_text=re.compile(r"^power: "))
    before = power.inner_text()
    assert not before.startswith("power: SS-12") and "under repair" in before

    open_workspace(page, base)
    subs = snap["substations"]
    where = subs[subs["asset_id"] == "SS-12"].geometry.iloc[0]
    view(page, (where.x, where.y), 17)
    page.mouse.click(*pixels(page, [(where.x, where.y)])[0])
    page.locator("#zp-pl-title").filter(has_text="No. 12").wait_for()
    page.select_option("#zp-pl-asset-status", "operational")
    # the form asks when the status changed: today unless the planner says otherwise
    assert page.input_value("#zp-pl-asset-since") == dt.date.today().isoformat()
    page.fill("#zp-pl-asset-since", "2022-10-28")
    page.fill("#zp-pl-asset-due", "")
    page.fill("#zp-pl-asset-note", "Supports replaced; back in service")
    shot(page, "7-substation-form")
    page.click("#zp-pl-asset-save")
    page.locator("#zp-pl-message").filter(has_text="SS-12 saved").wait_for()
    assert "operational" in page.inner_text("#zp-pl-title").lower()
    assert store.get("substations", "SS-12")["since"] == "2022-10-28"
    shot(page, "8-substation-saved")

    page.goto(f"{base}/planner/features/plots/{pid}", wait_until="domcontentloaded")
    after = (
        page.locator("#zp-feature-servicing li")
        .filter(has_text=re.compile(r"^power: "))
        .inner_text()
    )
    assert after.startswith("power: SS-12") and after != before
    shot(page, "9-plot-servicing-after")
    page.goto(f"{base}/planner/features/substations/SS-12", wait_until="domcontentloaded")
    history = page.locator("#zp-history-table tbody tr").first
    assert history.get_attribute("data-action") == "update" and "planner" in history.inner_text()
    assert "operational" in history.inner_text()
    assert page.zp_errors == [], page.zp_errors[:3]


# --------------------------------------------------------------------------- publishing
def test_publishing_a_plot_without_road_asks_first(planner_page, snap, store):
    """P-193 lies 42 m from the nearest road: moving it to available shows the servicing
    answer and publishes only when the planner asks again."""
    page = planner_page
    base = page.zp_base
    open_workspace(page, base)
    plots = snap["plots"]
    centre = plots[plots["plot_id"] == "P-193"].geometry.iloc[0].representative_point()
    view(page, (centre.x, centre.y), 17.5)
    page.mouse.click(*pixels(page, [(centre.x, centre.y)])[0])
    page.locator("#zp-pl-title").filter(has_text="P-193").wait_for()
    page.click("button[data-status=available]")
    message = page.locator("#zp-pl-message")
    message.filter(has_text="P-193 lacks what investors need within reach").wait_for()
    assert "does not front a road (nearest R-018 at 42 m" in message.inner_text()
    assert store.get("plots", "P-193")["status"] == "candidate"
    shot(page, "10-publish-asks")
    message.locator("button", has_text="Publish it anyway").click()
    page.locator("#zp-pl-message").filter(has_text="P-193 is now available").wait_for()
    assert store.get("plots", "P-193")["status"] == "available"


# --------------------------------------------------------------------------- investors
def test_investors_get_no_planner_and_no_drawing_tools(page, live_server):
    login(page, live_server, "investor")
    response = page.goto(live_server + "/planner", wait_until="domcontentloaded")
    assert response.status == 403
    page.goto(live_server + "/", wait_until="networkidle")
    page.wait_for_selector(".leaflet-container")
    assert page.locator(".leaflet-pm-toolbar").count() == 0
    assert page.locator("a[href='/planner']").count() == 0
    shot(page, "10-investor-map")


# --------------------------------------------------------------------------- plots drawn as tiles
def test_a_plot_drawn_only_as_tiles_is_selected_and_moved(planner_page, snap):
    page = planner_page
    base = page.zp_base
    open_workspace(page, base)
    plots = snap["plots"]
    target = plots[plots["status"] == "available"].sort_values("area_ha").iloc[-1]
    inner = target.geometry.representative_point()
    view(page, (inner.x, inner.y), 13)
    page.wait_for_selector("#zp-planner[data-plots=tiles]")
    page.wait_for_function(
        "() => !zpPlanner.tiles._loading && Object.keys(zpPlanner.index.plots).length === 0"
    )
    assert page.is_visible("#zp-pl-zoom-hint")
    shot(page, "11-plots-as-tiles")
    page.mouse.click(*pixels(page, [(inner.x, inner.y)])[0])
    page.locator("#zp-pl-title").filter(has_text=target.plot_id).wait_for()
    assert page.evaluate("() => zpPlanner.map.getZoom()") >= 14
    assert page.get_attribute("#zp-planner", "data-plots") == "outlines"
    page.click("#zp-pl-selected .zp-pl-move[data-status=reserved]")
    page.locator("#zp-pl-message").filter(has_text=f"Plot {target.plot_id} is now").wait_for()
    staff = page.request.get(f"{base}/api/plots/{target.plot_id}").json()
    assert staff["properties"]["status"] == "reserved"
    shot(page, "12-tile-plot-moved")
    assert page.zp_errors == [], page.zp_errors[:3]


def test_a_click_on_a_block_of_small_plots_zooms_in_to_pick_one(planner_page, store):
    """Plots too small to see at z12 come as blocks (geo.overview): the planner's click on
    one zooms in towards it, to the outlines, where the same click selects the plot."""
    import geopandas as gpd

    minx, miny, maxx, maxy = store.extent("zone")
    x0, y0 = maxx + 300.0, (miny + maxy) / 2
    store.insert(
        "plots",
        gpd.GeoDataFrame(
            {
                "plot_id": [f"B-{i:03d}" for i in range(36)],
                "status": ["candidate"] * 36,
                "geometry": [
                    shapely.box(x0 + c * 25, y0 + r * 25, x0 + c * 25 + 20, y0 + r * 25 + 20)
                    for c, r in ((i % 6, i // 6) for i in range(36))
                ],
            },
            crs=store.epsg,
        ),
    )
    page = planner_page
    open_workspace(page, page.zp_base)
    centre = (x0 + 60.0, y0 + 60.0)  # inside plot B-014
    view(page, centre, 12)
    page.wait_for_selector("#zp-planner[data-plots=tiles]")
    page.wait_for_function("() => !zpPlanner.tiles._loading")
    with page.expect_response(lambda r: "/map/features?" in r.url) as asked:
        page.mouse.click(*pixels(page, [centre])[0])
    assert asked.value.json()["block"]["plots"] >= 1
    page.wait_for_function("() => zpPlanner.map.getZoom() >= 14")
    page.wait_for_selector("#zp-planner[data-plots=outlines]")
    page.mouse.click(*pixels(page, [centre])[0])
    page.locator("#zp-pl-title").filter(has_text="B-014").wait_for()
    shot(page, "13-block-zoomed-in")
    assert page.zp_errors == [], page.zp_errors[:3]
