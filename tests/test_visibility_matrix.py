"""Role x surface: every surface shows a role the same plots and the same plot fields.

Surfaces: the map at /, /api/plots, /api/plots/<id>, /api/layers/plots, the OGC API, the plot
page, the downloads page and the plots download, the planners' feature page and the error answers
(a plot the role may not see answers exactly like a missing one). The expected sets come
from the store itself and the policy's rule, written out here (not from planner.visibility).
"""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
import shapefile  # pyshp: an independent reader
from test_tiles import features as tile_features
from test_tiles import tile_of

from geo.crs import WGS84_EPSG, transformer
from geo.layers import LAYERS
from geo.tiles import Tile
from usecases import accounts

PRIVATE = ("resident", "project", "invest", "jobs", "power_kw", "water_m3d")
PUBLIC_FIELDS = {"plot_id", "cadastre", "status", "sectors", "hazard_ok", "exp_id", "area_ha"}
FACTS = {
    "rail",
    "rail_distance_m",
    "power",
    "power_headroom_kw",
    "water",
    "water_headroom_m3d",
    "ready",
    "waits_for",
}
# English popup labels of the private fields (the map is asked for in English).
PRIVATE_LABELS = (
    "<th>Resident</th>",
    "<th>Project</th>",
    "<th>Investment, tenge</th>",
    "<th>Jobs</th>",
    "<th>Power demand, kW</th>",
)
ROLES = ("public", "investor", "planner", "admin")
EN = {"Accept-Language": "en"}


@pytest.fixture
def reader(request, app, login):
    """(role, a test client logged in as that role, bearer headers for the API)."""
    role = request.param
    client = app.test_client()
    if role == "public":
        return role, client, {}
    assert login(client, role).status_code == 302
    from geo.store import open_store

    token = accounts.issue_token(open_store(app.config["ZONEPLAN_DB"]), role)
    return role, client, {"Authorization": f"Bearer {token}"}


def expected(store, role: str) -> tuple[set[str], set[str]]:
    """The plot ids and plot fields the policy gives ``role`` (from the store, by the rule)."""
    plots = store.read("plots")
    staff = role in ("planner", "admin")
    ids = set(plots["plot_id"] if staff else plots.loc[plots["status"] != "candidate", "plot_id"])
    fields = set(LAYERS["plots"].names) if staff else PUBLIC_FIELDS
    return ids, fields


def sample_ids(store) -> list[str]:
    """Every candidate and three plots of each other status: the ids probed one by one."""
    plots = store.read("plots").sort_values("plot_id")
    return [
        pid
        for _, group in plots.groupby("status")
        for pid in (
            group["plot_id"] if group["status"].iloc[0] == "candidate" else group["plot_id"][:3]
        )
    ]


def tiles_over(store, layer: str, z: int) -> list[Tile]:
    """The tiles at zoom ``z`` covering the layer's extent."""
    minx, miny, maxx, maxy = store.extent(layer)
    w, s, e, n = transformer(32643, WGS84_EPSG).transform_bounds(minx, miny, maxx, maxy)
    top_left, bottom_right = tile_of(w, n, z), tile_of(e, s, z)
    return [
        Tile(z, x, y)
        for x in range(top_left.x, bottom_right.x + 1)
        for y in range(top_left.y, bottom_right.y + 1)
    ]


def private_values(store) -> list[str]:
    """Distinctive private values of plots that everyone may see (residents, projects)."""
    plots = store.read("plots", where={"status": ["reserved", "allocated", "occupied"]})
    return sorted(
        {str(v) for col in ("resident", "project") for v in plots[col].dropna() if len(str(v)) > 6}
    )[:10]


@pytest.mark.parametrize("reader", ROLES, indirect=True)
def test_every_surface_shows_a_role_the_same_plots_and_fields(reader, store):
    role, client, api = reader
    want_ids, want_fields = expected(store, role)
    staff = role in ("planner", "admin")
    assert want_ids and store.count("plots", where={"status": "candidate"}) > 0

    # /api/plots: the default is the available plots; any visible status may be asked for.
    statuses = ",".join(
        sorted({s for s in store.read("plots")["status"] if staff or s != "candidate"})
    )
    listed = client.get(f"/api/plots?status={statuses}&limit=1000").get_json()["features"]
    assert {f["id"] for f in listed} == want_ids
    assert all(
        set(f["properties"]) == want_fields - {"version"} | FACTS
        or set(f["properties"]) == want_fields | FACTS
        for f in listed
    )
    default = client.get("/api/plots?limit=1000").get_json()["features"]
    assert {f["properties"]["status"] for f in default} == {"available"}

    # /api/layers/plots: the layer as the role sees it.
    layer = client.get("/api/layers/plots?limit=10000").get_json()
    assert {f["id"] for f in layer["features"]} == want_ids
    assert {k for f in layer["features"] for k in f["properties"]} == want_fields

    # The OGC API (what GIS clients read): the same plots and fields.
    ogc = client.get("/ogc/collections/plots/items?limit=10000&f=json", headers=api)
    assert ogc.status_code == 200, ogc.get_data(as_text=True)[:300]
    features = ogc.get_json()["features"]
    assert {f["id"] for f in features} == want_ids
    assert {k for f in features for k in f["properties"]} <= want_fields
    assert not staff or {"resident", "project"} <= {k for f in features for k in f["properties"]}

    # The map at /: the plots its tiles carry, and each plot's popup (fetched on click).
    assert client.get("/", headers=EN).status_code == 200
    on_map, tile_fields = set(), set()
    for tile in tiles_over(store, "plots", 14):
        for f in tile_features(
            client.get(f"/tiles/plots/{tile.z}/{tile.x}/{tile.y}.mvt").data, "plots"
        ):
            on_map.add(f["properties"]["plot_id"])
            tile_fields |= set(f["properties"])
    assert on_map == want_ids
    assert not tile_fields & set(PRIVATE)  # tiles carry what the map styles on, nothing private
    secrets = private_values(store)
    assert secrets
    held = store.read("plots", where={"status": ["reserved", "allocated", "occupied"]})
    popups = " ".join(
        client.get(f"/map/features/plots/{pid}", headers=EN).get_json()["html"]
        for pid in held["plot_id"].head(40)
    )
    for text in (
        *PRIVATE_LABELS,
        *[
            v
            for v in secrets
            if v in set(held.head(40)[["resident", "project"]].astype(str).values.ravel())
        ],
    ):
        assert (text in popups) == staff, text

    # The download the downloads page offers: the same plots and fields, and the page's count.
    exported = json.loads(client.get("/api/export/plots.geojson").data)["features"]
    assert {f["properties"]["plot_id"] for f in exported} == want_ids
    assert set(exported[0]["properties"]) == want_fields - {"version"}
    page = client.get("/downloads", headers=EN).get_data(as_text=True)
    count = re.search(r"<code>plots</code>.*?<td class=\"num\">(\d+)</td>", page, re.S)
    assert int(count.group(1)) == len(want_ids)
    assert ("every plot except candidates" in page) == (not staff)
    shp = client.get("/api/export/plots.shp.zip")
    with zipfile.ZipFile(io.BytesIO(shp.data)) as zf:
        dbf = shapefile.Reader(dbf=io.BytesIO(zf.read("plots.dbf")), encoding="utf-8")
        assert {f[0] for f in dbf.fields[1:]} == want_fields - {"version"}
        assert {r["plot_id"] for r in dbf.records()} == want_ids

    # One plot at a time: API, servicing answer, plot page; hidden plots answer like missing ones.
    missing_api = client.get("/api/plots/NO-SUCH-PLOT").get_json()
    for pid in sample_ids(store):
        one = client.get(f"/api/plots/{pid}")
        plot_page = client.get(f"/plots/{pid}", headers=EN)
        if pid in want_ids:
            assert one.status_code == 200 and plot_page.status_code == 200, pid
            assert set(one.get_json()["properties"]) - FACTS <= want_fields
            body = plot_page.get_data(as_text=True)
            row = store.get("plots", pid)
            hidden = [row[n] for n in PRIVATE if isinstance(row.get(n), str) and len(row[n]) > 6]
            assert staff or not [v for v in hidden if v in body], pid
        else:
            assert one.status_code == 404 and plot_page.status_code == 404, pid
            assert one.get_json() == {**missing_api, "error": f"no plot {pid!r}"}
            assert client.get(f"/api/servicing/{pid}").status_code == 404

    # The planners' feature page: every field for staff, nothing for anyone else.
    some = sample_ids(store)[0]
    feature = client.get(f"/planner/features/plots/{some}")
    assert feature.status_code == (200 if staff else 302 if role == "public" else 403)


def test_applying_for_a_hidden_plot_answers_like_a_missing_one(client, store):
    token = {"Authorization": f"Bearer {accounts.issue_token(store, 'investor')}"}
    draft = store.read("plots", where={"status": "candidate"})["plot_id"].iloc[0]
    taken = store.read("plots", where={"status": "occupied"})["plot_id"].iloc[0]
    body = {"project": "Plant", "sector": "food", "min_ha": 0.1, "max_ha": 500}
    before = store.count("applications")
    hidden = client.post("/api/applications", json={**body, "plot_id": draft}, headers=token)
    missing = client.post("/api/applications", json={**body, "plot_id": "NO-SUCH"}, headers=token)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.get_json() == {**missing.get_json(), "error": f"no plot {draft!r}"}
    assert "candidate" not in hidden.get_data(as_text=True)
    # A plot the investor may see but not take says why (nothing hidden there).
    seen = client.post("/api/applications", json={**body, "plot_id": taken}, headers=token)
    assert seen.status_code == 409 and "occupied" in seen.get_json()["error"]
    assert store.count("applications") == before


def test_apply_form_for_a_hidden_plot_is_404(investor_client, store, csrf_token):
    available = store.read("plots", where={"status": "available"})["plot_id"].iloc[0]
    token = csrf_token(investor_client, f"/plots/{available}")
    draft = store.read("plots", where={"status": "candidate"})["plot_id"].iloc[0]
    r = investor_client.post(
        f"/plots/{draft}/apply",
        data={
            "csrf_token": token,
            "project": "Plant",
            "sector": "food",
            "min_ha": "0.1",
            "max_ha": "500",
        },
    )
    assert r.status_code == 404
