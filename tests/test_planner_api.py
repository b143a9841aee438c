"""The planners' JSON edits: /api/check, /api/plots (POST, PATCH, DELETE), /api/assets; roles,
CSRF, validation in words, the lifecycle, versions (409), audit rows, OpenAPI entries.
The planner's HTML pages over the same edits are in test_planner_pages."""

from __future__ import annotations

import json

import pytest
import shapely
from shapely.geometry import box
from test_planner_parcels import free_square, to_geojson

from geo.layers import PLOT_TRANSITIONS

FEATURE = {"type": "Feature", "properties": {}}


# --------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def snap(sample_db):
    """The sample as every test's store copy starts (read once)."""
    from geo.store import open_store

    return open_store(sample_db).snapshot()


@pytest.fixture(scope="module")
def spot(snap):
    return free_square(snap)


@pytest.fixture
def planner(planner_client, csrf_token):
    """The planner's client and the CSRF header its JSON writes need."""
    planner_client.zp_headers = {"X-CSRFToken": csrf_token(planner_client, "/account")}
    return planner_client


def post(client, path, body, **kw):
    return client.post(path, json=body, headers=getattr(client, "zp_headers", {}), **kw)


def patch(client, path, body):
    return client.patch(path, json=body, headers=getattr(client, "zp_headers", {}))


def delete(client, path):
    return client.delete(path, headers=getattr(client, "zp_headers", {}))


def audit(store, **where):
    rows = store.read("audit", where=where or None, order_by="audit_id")
    return [{**r, "changes": json.loads(r["changes"] or "{}")} for r in rows.to_dict("records")]


def feature(polygon, **properties):
    return {"type": "Feature", "geometry": to_geojson(polygon), "properties": properties}


def a_plot(snap, status):
    plots = snap["plots"]
    return plots[plots["status"] == status].iloc[0]


# --------------------------------------------------------------------------- roles and CSRF
WRITES = [
    ("post", "/api/check", {"geometry": {"type": "Polygon", "coordinates": []}}),
    ("post", "/api/plots", FEATURE),
    ("patch", "/api/plots/P-001", {"version": 1, "cadastre": "x"}),
    ("delete", "/api/plots/P-001?version=1", None),
    ("patch", "/api/assets/substations/SS-12", {"version": 1, "status": "operational"}),
]


def test_anonymous_get_401_and_investors_403(client, investor_client, csrf_token, store):
    before = store.revision()
    headers = {"X-CSRFToken": csrf_token(investor_client, "/account")}
    for method, path, body in WRITES:
        response = getattr(client, method)(path, json=body)
        assert response.status_code == 401 and response.get_json()["error"], path
        response = getattr(investor_client, method)(path, json=body, headers=headers)
        assert response.status_code == 403, path
        assert "planner" in response.get_json()["error"]
    assert store.revision() == before


def test_session_writes_need_the_csrf_header(planner_client, spot, store):
    response = planner_client.post("/api/plots", json=feature(spot))
    assert response.status_code == 400 and "CSRF" in response.get_json()["error"]
    assert (
        store.count("plots", where={"status": "candidate"})
        == store.snapshot()["plots"]["status"].eq("candidate").sum()
    )


def test_admin_may_edit_too(admin_client, csrf_token, spot):
    headers = {"X-CSRFToken": csrf_token(admin_client, "/account")}
    response = admin_client.post("/api/check", json={"geometry": to_geojson(spot)}, headers=headers)
    assert response.status_code == 200 and response.get_json()["valid"]


def test_bearer_token_writes_skip_csrf(client, store, spot):
    from usecases import accounts

    token = accounts.issue_token(store, "planner")
    response = client.post(
        "/api/plots", json=feature(spot), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201
    assert audit(store, feat_id=response.get_json()["id"])[0]["username"] == "planner"


# --------------------------------------------------------------------------- /api/check
def test_check_a_free_parcel_gives_area_and_servicing_in_words(planner, spot):
    response = post(planner, "/api/check", {"geometry": to_geojson(spot)})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["valid"] is True and body["problems"] == []
    assert body["area_ha"] == pytest.approx(spot.area / 10_000, abs=0.001)
    assert body["servicing"]["power"]["code"]
    assert any(line.startswith(("power:", "электроэнергия:")) for line in body["explain"])
    assert any("ready" in line or "готов" in line for line in body["explain"])


def test_check_speaks_the_session_language(planner, spot):
    planner.get("/lang/en")
    far = box(600_000, 4_700_000, 600_100, 4_700_100)
    body = post(planner, "/api/check", {"geometry": to_geojson(far)}).get_json()
    assert (
        body["problems"][0]["message"] == "the parcel lies outside the zone and its expansion areas"
    )


def _problem_cases(snap, spot):
    x0, y0, x1, y1 = spot.bounds
    plot = a_plot(snap, "occupied")
    zones = snap["prot_zones"]
    return {
        "invalid": shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)]),
        "outside": box(600_000, 4_700_000, 600_100, 4_700_100),
        "overlaps_plot": plot.geometry.centroid.buffer(40),
        "overlaps_protection": zones.geometry.iloc[0].centroid.buffer(25),
        "too_small": spot.centroid.buffer(15),
    }


def test_check_explains_each_problem_and_create_refuses_it(planner, snap, spot, store):
    planner.get("/lang/en")
    plots, revision = store.count("plots"), store.revision()
    for code, polygon in _problem_cases(snap, spot).items():
        body = post(planner, "/api/check", {"geometry": to_geojson(polygon)}).get_json()
        assert body["valid"] is False
        assert code in [p["code"] for p in body["problems"]], body["problems"]
        message = next(p["message"] for p in body["problems"] if p["code"] == code)
        response = post(planner, "/api/plots", feature(polygon))
        assert response.status_code == 422, code
        error = response.get_json()
        assert error["field"] == "geometry"
        assert message in [p["reason"] for p in error["problems"]]
    assert store.count("plots") == plots and store.revision() == revision


UNREADABLE = [
    ({"type": "Point", "coordinates": [76.85, 43.33]}, "geometry.type"),
    (
        {
            "type": "Polygon",
            "coordinates": [[[76.85, 43.33], [76.86, 43.33], [76.86, "x"], [76.85, 43.33]]],
        },
        "geometry.coordinates[0][2]",
    ),
    (
        {
            "type": "Polygon",
            "coordinates": [[[76.85, 43.33], [276.86, 43.33], [76.86, 43.34], [76.85, 43.33]]],
        },
        "geometry.coordinates[0][1]",
    ),
    (
        {"type": "Polygon", "coordinates": [[[76.85, 43.33], [76.86, 43.33], [76.86, 43.34]]]},
        "geometry.coordinates[0]",
    ),
    ("not geojson", "geometry"),
]


def test_unreadable_geometry_is_422_naming_the_coordinate(planner, store):
    revision = store.revision()
    for geometry, field in UNREADABLE:
        for path, body in (
            ("/api/check", {"geometry": geometry}),
            ("/api/plots", {"type": "Feature", "geometry": geometry}),
        ):
            response = post(planner, path, body)
            assert response.status_code == 422, (path, response.get_json())
            assert response.get_json()["field"] == field
    assert store.revision() == revision


def test_malformed_bodies(planner, spot, store):
    revision = store.revision()
    response = planner.post(
        "/api/plots", data="{not json", content_type="application/json", headers=planner.zp_headers
    )
    assert response.status_code == 400 and "not valid JSON" in response.get_json()["error"]
    response = planner.post(
        "/api/plots", data="x", content_type="text/plain", headers=planner.zp_headers
    )
    assert response.status_code == 400
    assert post(planner, "/api/plots", [1, 2]).status_code == 422
    response = post(planner, "/api/plots", {"type": "Feature"})
    assert response.status_code == 422 and response.get_json()["field"] == "geometry"
    response = post(
        planner, "/api/plots", {"type": "FeatureCollection", "geometry": to_geojson(spot)}
    )
    assert response.status_code == 422 and response.get_json()["field"] == "type"
    response = post(planner, "/api/plots", feature(spot, colour="red"))
    assert response.status_code == 422 and response.get_json()["field"] == "properties"
    response = post(planner, "/api/plots", feature(spot, hazard_ok=9))
    assert response.status_code == 422
    response = post(planner, "/api/check", {"geometry": to_geojson(spot), "extra": 1})
    assert response.status_code == 422 and response.get_json()["field"] == "extra"
    assert store.revision() == revision


# --------------------------------------------------------------------------- create
def test_create_stores_a_candidate_in_one_audited_transaction(planner, spot, store, snap):
    response = post(planner, "/api/plots", feature(spot, cadastre="20-311-999", power_kw=300))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    ids = snap["plots"]["plot_id"].tolist()
    expected = f"P-{max(int(i.split('-')[1]) for i in ids if i.startswith('P-')) + 1:03d}"
    assert body["id"] == expected and body["type"] == "Feature"
    props = body["properties"]
    assert props["status"] == "candidate" and props["version"] == 1
    assert props["cadastre"] == "20-311-999" and props["power_kw"] == 300
    assert props["area_ha"] == pytest.approx(spot.area / 10_000, abs=0.001)
    stored = store.get("plots", expected)
    assert stored["geometry"].equals_exact(spot, tolerance=0.05)
    rows = audit(store, feat_id=expected)
    assert [(r["action"], r["username"], r["layer"]) for r in rows] == [
        ("insert", "planner", "plots")
    ]
    assert rows[0]["changes"]["status"] == [None, "candidate"]
    assert rows[0]["changes"]["area_ha"][1] == props["area_ha"]
    listed = planner.get("/api/plots?status=candidate&limit=1000").get_json()
    assert expected in [f["id"] for f in listed["features"]]
    # the same land cannot be taken twice
    again = post(planner, "/api/plots", feature(spot))
    assert again.status_code == 422 and expected in again.get_json()["error"]


def test_parcel_in_an_expansion_area_records_it(planner, snap):
    polygon = free_square(snap, inside="expansion")
    body = post(planner, "/api/plots", feature(polygon)).get_json()
    exp = snap["expansion"]
    assert body["properties"]["exp_id"] in set(exp["exp_id"])


# --------------------------------------------------------------------------- patch
def create_plot(planner, spot):
    response = post(planner, "/api/plots", feature(spot))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_reshape_changes_area_and_is_audited_with_old_and_new(planner, spot, store):
    plot = create_plot(planner, spot)
    pid = plot["id"]
    bigger = shapely.affinity.scale(spot, 1.2, 1.0)
    response = patch(planner, f"/api/plots/{pid}", {"version": 1, "geometry": to_geojson(bigger)})
    assert response.status_code == 200, response.get_json()
    props = response.get_json()["properties"]
    assert props["version"] == 2
    assert props["area_ha"] == pytest.approx(bigger.area / 10_000, abs=0.001)
    row = audit(store, feat_id=pid, action="update")[-1]
    assert row["username"] == "planner"
    old, new = row["changes"]["area_ha"]
    assert old == plot["properties"]["area_ha"] and new == props["area_ha"]
    assert row["changes"]["geometry"][0].startswith("POLYGON")


def test_stale_version_is_409_and_nothing_changes(planner, spot, store):
    plot = create_plot(planner, spot)
    pid = plot["id"]
    assert patch(planner, f"/api/plots/{pid}", {"version": 1, "cadastre": "A"}).status_code == 200
    revision = store.revision()
    response = patch(planner, f"/api/plots/{pid}", {"version": 1, "cadastre": "B"})
    assert response.status_code == 409
    assert "changed by someone else" in response.get_json()["error"]
    assert store.get("plots", pid)["cadastre"] == "A" and store.revision() == revision
    response = delete(planner, f"/api/plots/{pid}?version=1")
    assert response.status_code == 409 and store.get("plots", pid)
    response = patch(planner, f"/api/plots/{pid}", {"cadastre": "C"})
    assert response.status_code == 422 and response.get_json()["field"] == "version"
    planner.get("/lang/en")
    response = patch(planner, f"/api/plots/{pid}", {"version": 2})
    assert response.status_code == 422 and "nothing to change" in response.get_json()["error"]


def test_promote_a_candidate_and_walk_the_lifecycle(planner, spot, store):
    pid = create_plot(planner, spot)["id"]
    version = 1
    # the drawn spot has no road or water main within reach: publishing it needs a confirmation
    response = patch(planner, f"/api/plots/{pid}", {"version": version, "status": "available"})
    body = response.get_json()
    assert response.status_code == 409 and body["field"] == "confirm", body
    assert [p["field"] for p in body["problems"]] == ["road", "water"]
    assert store.get("plots", pid)["status"] == "candidate"
    for status in ("available", "reserved", "allocated", "occupied", "available", "candidate"):
        response = patch(
            planner, f"/api/plots/{pid}", {"version": version, "status": status, "confirm": True}
        )
        assert response.status_code == 200, (status, response.get_json())
        version = response.get_json()["properties"]["version"]
    statuses = [r["changes"]["status"] for r in audit(store, feat_id=pid, action="update")]
    assert statuses == [
        ["candidate", "available"],
        ["available", "reserved"],
        ["reserved", "allocated"],
        ["allocated", "occupied"],
        ["occupied", "available"],
        ["available", "candidate"],
    ]


def test_illegal_jumps_are_409_naming_the_allowed_moves(planner, snap, store):
    revision = store.revision()
    for old, new in [
        ("occupied", "candidate"),
        ("candidate", "reserved"),
        ("available", "occupied"),
        ("reserved", "candidate"),
    ]:
        row = a_plot(snap, old)
        response = patch(
            planner, f"/api/plots/{row.plot_id}", {"version": int(row.version), "status": new}
        )
        assert response.status_code == 409
        body = response.get_json()
        assert body["field"] == "status"
        assert f"from {old} to {new}" in body["error"]
        assert all(s in body["error"] for s in PLOT_TRANSITIONS[old])
    assert store.revision() == revision


def test_held_plots_keep_their_outline(planner, snap, store):
    row = a_plot(snap, "reserved")
    moved = shapely.affinity.translate(row.geometry, 1, 0)
    response = patch(
        planner,
        f"/api/plots/{row.plot_id}",
        {"version": int(row.version), "geometry": to_geojson(moved)},
    )
    assert response.status_code == 409 and response.get_json()["field"] == "geometry"
    assert store.get("plots", row.plot_id)["geometry"].equals(row.geometry)


def test_reshape_onto_a_neighbour_is_refused(planner, snap, store):
    row = a_plot(snap, "candidate")
    plots = snap["plots"]
    others = plots[plots["plot_id"] != row.plot_id]
    near = others.iloc[shapely.distance(others.geometry.values, row.geometry).argmin()]
    grown = shapely.union_all([row.geometry, near.geometry.centroid.buffer(30)]).convex_hull
    response = patch(
        planner,
        f"/api/plots/{row.plot_id}",
        {"version": int(row.version), "geometry": to_geojson(grown)},
    )
    assert response.status_code == 422
    assert near.plot_id in response.get_json()["error"]
    assert row.plot_id not in response.get_json()["problems"][0]["reason"]


def test_attribute_edits_are_validated_and_audited(planner, snap, store):
    row = a_plot(snap, "available")
    response = patch(
        planner,
        f"/api/plots/{row.plot_id}",
        {"version": int(row.version), "sectors": "food,logistics", "hazard_ok": 2},
    )
    assert response.status_code == 200, response.get_json()
    changes = audit(store, feat_id=row.plot_id)[-1]["changes"]
    assert changes["sectors"] == [row.sectors, "food,logistics"]
    response = patch(
        planner,
        f"/api/plots/{row.plot_id}",
        {"version": int(row.version) + 1, "sectors": "spaceships"},
    )
    assert response.status_code == 422 and response.get_json()["field"] == "sectors"
    response = patch(
        planner, f"/api/plots/{row.plot_id}", {"version": int(row.version) + 1, "area_ha": 3}
    )
    assert response.status_code == 422 and response.get_json()["field"] == "area_ha"
    assert patch(planner, "/api/plots/P-NOPE", {"version": 1, "cadastre": "x"}).status_code == 404


# --------------------------------------------------------------------------- delete
def test_delete_candidates_only_with_version(planner, spot, snap, store):
    pid = create_plot(planner, spot)["id"]
    response = delete(planner, f"/api/plots/{pid}")
    assert response.status_code == 400 and response.get_json()["field"] == "version"
    response = delete(planner, f"/api/plots/{pid}?version=1")
    assert response.status_code == 204 and response.data == b""
    assert store.count("plots", where={"plot_id": pid}) == 0
    assert [r["action"] for r in audit(store, feat_id=pid)] == ["insert", "delete"]
    assert audit(store, feat_id=pid)[-1]["changes"]["status"] == ["candidate", None]
    assert delete(planner, f"/api/plots/{pid}?version=1").status_code == 404
    row = a_plot(snap, "available")
    response = delete(planner, f"/api/plots/{row.plot_id}?version={int(row.version)}")
    assert response.status_code == 409 and "only candidate" in response.get_json()["error"]
    assert store.count("plots", where={"plot_id": row.plot_id}) == 1


# --------------------------------------------------------------------------- assets
def nearby_plot_relying_on(snap, asset_id="SS-12"):
    """The plot nearest the substation whose power answer passes it over today."""
    from planner.servicing import ServicingModel

    records = ServicingModel(snap).answer()
    passed = [
        r["plot_id"]
        for r in records
        if any(b["asset_id"] == asset_id for b in r["power"].get("bypassed") or [])
    ]
    subs = snap["substations"]
    where = subs[subs["asset_id"] == asset_id].geometry.iloc[0]
    plots = snap["plots"].set_index("plot_id").loc[passed]
    return str(plots.index[shapely.distance(plots.geometry.values, where).argmin()])


def test_mark_substation_repaired_changes_servicing_and_is_audited(planner, snap, store):
    sub = store.get("substations", "SS-12")
    assert sub["status"] == "under_repair"
    pid = nearby_plot_relying_on(snap)
    planner.get("/lang/en")
    before = planner.get(f"/api/servicing/{pid}").get_json()
    assert before["record"]["power"]["substation"] != "SS-12"
    response = patch(
        planner,
        "/api/assets/substations/SS-12",
        {
            "version": sub["version"],
            "status": "operational",
            "due": None,
            "note": "repaired; supports replaced",
        },
    )
    assert response.status_code == 200, response.get_json()
    props = response.get_json()["properties"]
    import datetime as dt

    assert props["status"] == "operational" and props["since"] == dt.date.today().isoformat()
    assert props["due"] is None and props["version"] == sub["version"] + 1
    row = audit(store, layer="substations", feat_id="SS-12")[-1]
    assert row["username"] == "planner" and row["action"] == "update"
    assert row["changes"]["status"] == ["under_repair", "operational"]
    assert row["changes"]["due"] == [sub["due"], None]
    after = planner.get(f"/api/servicing/{pid}").get_json()
    assert after["record"]["power"]["substation"] == "SS-12"
    assert any("SS-12" in line for line in after["explain"] if line.startswith("power"))


def test_asset_edit_rules(planner, store):
    sub = store.get("substations", "SS-12")
    url = "/api/assets/substations/SS-12"
    assert patch(planner, url, {"version": sub["version"], "status": "fixed"}).status_code == 422
    response = patch(planner, url, {"version": sub["version"], "due": "30.10.2022"})
    assert response.status_code == 422 and response.get_json()["field"] == "due"
    response = patch(planner, url, {"version": sub["version"] + 5, "note": "x"})
    assert response.status_code == 409
    assert patch(planner, "/api/assets/plots/P-001", {"version": 1, "note": "x"}).status_code == 404
    assert (
        patch(planner, "/api/assets/substations/SS-99", {"version": 1, "note": "x"}).status_code
        == 404
    )
    response = patch(planner, url, {"version": sub["version"], "since": "2022-11-02"})
    assert response.status_code == 200
    assert response.get_json()["properties"]["status"] == "under_repair"
    assert store.get("substations", "SS-12")["since"] == "2022-11-02"


# --------------------------------------------------------------------------- OpenAPI
def test_edits_are_in_the_openapi_document(client):
    doc = client.get("/api/openapi.json").get_json()
    paths = doc["paths"]
    assert "post" in paths["/api/check"] and "post" in paths["/api/plots"]
    assert {"get", "patch", "delete"} <= set(paths["/api/plots/{plot_id}"])
    assert "patch" in paths["/api/assets/{layer}/{asset_id}"]
    create = paths["/api/plots"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PlotIn"
    )
    assert {"201", "401", "403", "409", "422"} <= set(create["responses"])
    schemas = doc["components"]["schemas"]
    assert "version" in schemas["PlotPatch"]["required"]
    assert schemas["PlotIn"]["properties"]["geometry"]["properties"]["type"]["enum"] == ["Polygon"]
    removal = paths["/api/plots/{plot_id}"]["delete"]
    assert any(p["name"] == "version" and p["required"] for p in removal["parameters"])


# --------------------------------------------------------------------------- concurrency
def test_two_planners_storing_the_same_land_at_once_get_one_plot(
    app, login, csrf_token, spot, store
):
    from concurrent.futures import ThreadPoolExecutor

    clients = []
    for _ in range(2):
        c = app.test_client()
        assert login(c, "planner").status_code == 302
        c.zp_headers = {"X-CSRFToken": csrf_token(c, "/account")}
        clients.append(c)
    before = store.count("plots")
    with ThreadPoolExecutor(2) as pool:
        codes = sorted(
            pool.map(lambda c: post(c, "/api/plots", feature(spot)).status_code, clients)
        )
    assert codes == [201, 422]
    assert store.count("plots") == before + 1
