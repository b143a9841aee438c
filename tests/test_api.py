"""The JSON API through the test client: every endpoint, filters, paging, roles, the
application lifecycle and the error contract (exports and uploads: test_api_files)."""

from __future__ import annotations

import json

import pytest

from geo.layers import LAYERS, SECTORS, parse_sectors


def token(store, username: str) -> dict[str, str]:
    from usecases import accounts

    return {"Authorization": f"Bearer {accounts.issue_token(store, username)}"}


@pytest.fixture
def planner(store):
    return token(store, "planner")


@pytest.fixture
def investor(store):
    return token(store, "investor")


def available(store):
    return store.read("plots", where={"status": "available"})


def ids(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [f["id"] for f in response.get_json()["features"]]


def coords(fc):
    for f in fc["features"]:
        geom = f["geometry"]
        rings = (
            geom["coordinates"]
            if geom["type"] == "Polygon"
            else [r for p in geom["coordinates"] for r in p]
        )
        for ring in rings:
            yield from ring


# --------------------------------------------------------------------------- /api/plots
def test_plots_are_wgs84_geojson_of_available_plots(client, store):
    r = client.get("/api/plots?limit=1000")
    assert r.status_code == 200 and r.mimetype == "application/json"
    fc = r.get_json()
    assert fc["type"] == "FeatureCollection"
    want = available(store)
    assert fc["numberMatched"] == fc["numberReturned"] == len(want)
    assert sorted(ids(r)) == sorted(want["plot_id"])
    assert all(76 < x < 78 and 43 < y < 44 for x, y in coords(fc))
    props = fc["features"][0]["properties"]
    assert {"plot_id", "area_ha", "sectors", "status", "rail", "power_headroom_kw", "ready"} <= set(
        props
    )
    assert all(
        f["id"] == f["properties"]["plot_id"] and f["properties"]["status"] == "available"
        for f in fc["features"]
    )


def test_area_filters_are_inclusive_and_combine(client, store):
    every = available(store)
    n_all = len(ids(client.get("/api/plots?limit=1000")))
    big = ids(client.get("/api/plots?min_area=5&limit=1000"))
    assert 0 < len(big) < n_all
    assert set(big) == set(every[every["area_ha"] >= 5]["plot_id"])
    area = float(every["area_ha"].iloc[0])
    exact = ids(client.get(f"/api/plots?min_area={area}&max_area={area}&limit=1000"))
    assert every["plot_id"].iloc[0] in exact
    band = ids(client.get("/api/plots?min_area=1&max_area=2&sort=-area_ha&limit=1000"))
    areas = every.set_index("plot_id").loc[band, "area_ha"].tolist()
    assert areas == sorted(areas, reverse=True) and all(1 <= a <= 2 for a in areas)


def test_sector_filter(client, store):
    every = available(store).set_index("plot_id")
    for sector in ("food", "chemicals"):
        got = ids(client.get(f"/api/plots?sector={sector}&limit=1000"))
        want = [
            pid
            for pid, text in every["sectors"].items()
            if parse_sectors(text) is None or sector in parse_sectors(text)
        ]
        assert sorted(got) == sorted(want)
        r = client.get(f"/api/plots?sector={sector}&limit=5")
        assert all(sector in f["properties"]["sectors"] for f in r.get_json()["features"])


def test_rail_as_recorded_and_by_a_date(client):
    assert ids(client.get("/api/plots?rail=true&limit=1000")) == []  # Industrialnaya is closed
    later = ids(client.get("/api/plots?rail=true&as_of=2022-11-01&limit=1000"))
    assert later
    no_rail = ids(client.get("/api/plots?rail=false&as_of=2022-11-01&limit=1000"))
    assert not set(later) & set(no_rail)
    assert len(later) + len(no_rail) == len(ids(client.get("/api/plots?limit=1000")))


def test_power_water_ready_filters_agree_with_the_properties(client):
    fc = client.get("/api/plots?min_power=1000&min_water=50&limit=1000").get_json()
    assert fc["numberMatched"] > 0
    for f in fc["features"]:
        p = f["properties"]
        assert p["power"] and p["power_headroom_kw"] >= 1000
        assert p["water"] and p["water_headroom_m3d"] >= 50
    ready = client.get("/api/plots?ready_by=2100-01-01&as_of=2023-01-01&limit=1000").get_json()
    assert all(f["properties"]["ready"] not in (None, "unknown") for f in ready["features"])
    power = [
        f["properties"]["power_headroom_kw"]
        for f in client.get("/api/plots?sort=-power&min_power=0&limit=50").get_json()["features"]
    ]
    assert power == sorted(power, reverse=True)


def test_bbox_filters_by_the_spatial_index(client):
    fc = client.get("/api/plots?limit=1000").get_json()
    xs, ys = zip(*coords(fc))
    mid = (min(xs) + max(xs)) / 2
    west = ids(
        client.get(
            f"/api/plots?bbox={min(xs) - 0.001},{min(ys) - 0.001},{mid},"
            f"{max(ys) + 0.001}&limit=1000"
        )
    )
    assert 0 < len(west) < fc["numberMatched"]
    assert ids(client.get("/api/plots?bbox=10,10,11,11")) == []
    assert ids(client.get("/api/plots?bbox=-180,-90,180,90&limit=1000")) == ids(
        client.get("/api/plots?limit=1000")
    )


def test_paging_is_stable_and_linked(client):
    every = ids(client.get("/api/plots?limit=1000"))
    pages = []
    for offset in range(0, len(every), 7):
        r = client.get(f"/api/plots?limit=7&offset={offset}&sort=plot_id")
        body = r.get_json()
        assert body["numberMatched"] == len(every) and body["numberReturned"] <= 7
        pages += ids(r)
        rels = {link["rel"] for link in body["links"]}
        assert ("next" in rels) == (offset + 7 < len(every)) and ("prev" in rels) == (offset > 0)
    assert pages == sorted(every)
    nxt = [
        link["href"]
        for link in client.get("/api/plots?limit=7&min_area=1").get_json()["links"]
        if link["rel"] == "next"
    ][0]
    assert "offset=7" in nxt and "min_area=1" in nxt
    assert ids(client.get(nxt))[0] == ids(client.get("/api/plots?limit=8&min_area=1"))[7]
    beyond = client.get("/api/plots?offset=100000").get_json()
    assert beyond["numberReturned"] == 0 and beyond["numberMatched"] == len(every)


@pytest.mark.parametrize(
    "query, field",
    [
        ("min_area=-1", "min_area"),
        ("max_area=lots", "max_area"),
        ("min_area=5&max_area=2", "max_area"),
        ("sector=oil", "sector"),
        ("rail=maybe", "rail"),
        ("bbox=76.8,43.3,76.9", "bbox"),
        ("bbox=76.9,43.3,76.8,43.4", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("limit=10001", "limit"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
        ("ready_by=2022-02-30", "ready_by"),
        ("as_of=yesterday", "as_of"),
        ("sort=price", "sort"),
        ("status=sold", "status"),
        ("min_power=nan", "min_power"),
        ("colour=green", "colour"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(client, query, field):
    r = client.get(f"/api/plots?{query}")
    assert r.status_code == 400, query
    body = r.get_json()
    assert body["field"] == field and field in body["error"]


def test_any_visible_status_candidates_for_planners_only(client, investor, planner, store):
    want = sorted(store.read("plots", where={"status": "reserved"})["plot_id"])
    for headers in ({}, investor, planner):
        assert (
            sorted(ids(client.get("/api/plots?status=reserved&limit=1000", headers=headers)))
            == want
        )
    assert client.get("/api/plots?status=candidate").status_code == 401
    r = client.get("/api/plots?status=available,candidate", headers=investor)
    assert r.status_code == 403 and r.get_json()["field"] == "status"
    assert "candidate" in r.get_json()["error"]
    drafts = ids(client.get("/api/plots?status=candidate&limit=1000", headers=planner))
    assert sorted(drafts) == sorted(store.read("plots", where={"status": "candidate"})["plot_id"])


def test_one_plot_and_what_investors_may_not_see(client, planner, store):
    pid = available(store)["plot_id"].iloc[0]
    r = client.get(f"/api/plots/{pid}")
    assert r.status_code == 200 and r.get_json()["id"] == pid
    assert r.get_json()["geometry"]["type"] == "Polygon"
    taken = store.read("plots", where={"status": "occupied"})["plot_id"].iloc[0]
    r = client.get(f"/api/plots/{taken}")
    assert r.status_code == 200 and "resident" not in r.get_json()["properties"]
    draft = store.read("plots", where={"status": "candidate"})["plot_id"].iloc[0]
    r = client.get(f"/api/plots/{draft}")
    assert r.status_code == 404 and r.get_json() == {"error": f"no plot {draft!r}", "field": None}
    assert client.get(f"/api/plots/{draft}", headers=planner).status_code == 200
    missing = client.get("/api/plots/does-not-exist")
    assert missing.status_code == 404 and missing.get_json()["error"] == "no plot 'does-not-exist'"
    assert client.get(f"/api/plots/{pid}?as_of=bad").status_code == 400


def test_servicing_answer_in_words(client, store):
    pid = available(store)["plot_id"].iloc[0]
    body = client.get(f"/api/servicing/{pid}").get_json()
    assert body["plot_id"] == pid and isinstance(body["record"]["rail"]["available"], bool)
    assert body["explain"] and all(isinstance(line, str) for line in body["explain"])
    later = client.get(f"/api/servicing/{pid}?as_of=2022-11-01").get_json()
    assert later["as_of"] == "2022-11-01"
    draft = store.read("plots", where={"status": "candidate"})["plot_id"].iloc[0]
    assert client.get(f"/api/servicing/{draft}").status_code == 404


def test_kpi_is_for_planners(client, investor, planner):
    assert client.get("/api/kpi").status_code == 401
    assert client.get("/api/kpi", headers=investor).status_code == 403
    r = client.get("/api/kpi", headers=planner)
    assert r.status_code in (200, 503) and isinstance(r.get_json(), dict)


# --------------------------------------------------------------------------- layers
def test_layers_listing_follows_public_flags(client, planner, store):
    public = {x["name"]: x for x in client.get("/api/layers").get_json()["layers"]}
    assert "applications" not in public and "users" not in public and "audit" not in public
    visible = store.count("plots") - store.count("plots", where={"status": "candidate"})
    assert public["plots"]["count"] == visible and public["plots"]["public"]
    assert public["roads"]["geometry"] == "LineString" and public["roads"]["label"] == "Roads"
    staff = {x["name"]: x for x in client.get("/api/layers", headers=planner).get_json()["layers"]}
    assert "applications" in staff and "users" not in staff
    assert staff["plots"]["count"] == store.count("plots")


def test_layer_features_paging_and_roles(client, investor, planner, store):
    fc = client.get("/api/layers/roads?limit=3&offset=1").get_json()
    assert fc["numberMatched"] == store.count("roads") and fc["numberReturned"] == 3
    assert all(
        76 < x < 78 and 43 < y < 44 for f in fc["features"] for x, y in f["geometry"]["coordinates"]
    )
    text = json.dumps(client.get("/api/layers/roads?limit=1000").get_json(), ensure_ascii=False)
    assert any("\u0400" <= ch <= "\u04ff" for ch in text)  # Cyrillic names as stored
    assert client.get("/api/layers/applications").status_code == 401
    assert client.get("/api/layers/applications", headers=investor).status_code == 403
    apps = client.get("/api/layers/applications?limit=5", headers=planner).get_json()
    assert apps["numberMatched"] == store.count("applications")
    assert apps["features"][0]["geometry"] is None
    for name in ("users", "nope"):
        assert client.get(f"/api/layers/{name}", headers=planner).status_code == 404
    boxed = client.get("/api/layers/targets?bbox=76,43,77,44")  # rows without geometry
    assert boxed.status_code == 200 and boxed.get_json()["numberMatched"] == 0
    assert client.get("/api/layers/roads?limit=0").status_code == 400


# --------------------------------------------------------------------------- applications
NEEDS = {
    "project": "Автокомпоненты",
    "company": "ТОО «Астана Моторс»",
    "sector": "machine",
    "min_ha": 1,
    "max_ha": 20,
    "power_kw": 500,
    "water_m3d": 10,
    "rail_need": False,
    "hazard": 2,
    "invest": 1.5e9,
    "jobs": 120,
}


def a_plot_for(store, sector="machine") -> str:
    rows = available(store)
    ok = [
        pid
        for pid, text in zip(rows["plot_id"], rows["sectors"])
        if parse_sectors(text) is None or sector in parse_sectors(text)
    ]
    return ok[0]


def test_application_lifecycle(client, investor, planner, store):
    before = client.get("/api/applications", headers=investor).get_json()["applications"]
    r = client.post("/api/applications", json=NEEDS, headers=investor)
    assert r.status_code == 201, r.get_json()
    app = r.get_json()
    assert app["status"] == "submitted" and app["investor"] == "investor" and app["plot_id"] is None
    mine = client.get("/api/applications", headers=investor).get_json()["applications"]
    assert [a["app_id"] for a in mine][0] == app["app_id"] and len(mine) == len(before) + 1
    # a planner accepts it for a plot: the plot is reserved in the same transaction
    pid = a_plot_for(store)
    r = client.post(
        f"/api/applications/{app['app_id']}/accept",
        json={"plot_id": pid, "version": 1},
        headers=planner,
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "reserved" and r.get_json()["assigned"] == pid
    assert store.get("plots", pid)["status"] == "reserved"
    assert pid not in ids(client.get("/api/plots?limit=1000"))
    seen = client.get(f"/api/applications/{app['app_id']}", headers=investor).get_json()
    assert seen["status"] == "reserved"
    # the plot is gone for the next one; a reason is required to reject
    second = client.post("/api/applications", json=NEEDS, headers=investor).get_json()
    r = client.post(
        f"/api/applications/{second['app_id']}/accept", json={"plot_id": pid}, headers=planner
    )
    assert r.status_code == 409 and "reserved" in r.get_json()["error"]
    r = client.post(
        f"/api/applications/{second['app_id']}/reject", json={"reason": ""}, headers=planner
    )
    assert r.status_code == 422 and r.get_json()["field"] == "reason"
    r = client.post(
        f"/api/applications/{second['app_id']}/reject",
        json={"reason": "Нет свободной мощности"},
        headers=planner,
    )
    assert r.status_code == 200 and r.get_json()["reason"] == "Нет свободной мощности"
    # withdraw: only submitted ones
    third = client.post(
        "/api/applications", json={**NEEDS, "plot_id": a_plot_for(store)}, headers=investor
    ).get_json()
    assert third["plot_id"]
    r = client.post(f"/api/applications/{third['app_id']}/withdraw", headers=investor)
    assert r.status_code == 200 and r.get_json()["status"] == "withdrawn"
    r = client.post(f"/api/applications/{second['app_id']}/withdraw", headers=investor)
    assert r.status_code == 409


def test_application_roles_and_ownership(client, investor, planner, store):
    from usecases import accounts

    accounts.create_user(store, "bolat", "investor", "bolat-pass-123")
    other = token(store, "bolat")
    app = client.post("/api/applications", json=NEEDS, headers=investor).get_json()
    assert client.post("/api/applications", json=NEEDS).status_code == 401
    assert client.post("/api/applications", json=NEEDS, headers=planner).status_code == 403
    assert client.get("/api/applications").status_code == 401
    theirs = client.get("/api/applications", headers=other).get_json()["applications"]
    assert app["app_id"] not in [a["app_id"] for a in theirs]
    assert client.get(f"/api/applications/{app['app_id']}", headers=other).status_code == 404
    assert (
        client.post(f"/api/applications/{app['app_id']}/withdraw", headers=other).status_code == 404
    )
    assert (
        client.post(
            f"/api/applications/{app['app_id']}/accept", json={"plot_id": "x"}, headers=investor
        ).status_code
        == 403
    )
    everyone = client.get("/api/applications?status=submitted", headers=planner).get_json()
    assert app["app_id"] in [a["app_id"] for a in everyone["applications"]]
    assert all(a["status"] == "submitted" for a in everyone["applications"])
    assert client.get("/api/applications?status=lost", headers=planner).status_code == 400


@pytest.mark.parametrize(
    "body, field",
    [
        ({**NEEDS, "sector": "oil"}, "sector"),
        ({**NEEDS, "min_ha": -1}, "min_ha"),
        ({**NEEDS, "min_ha": 9, "max_ha": 2}, "max_ha"),
        ({**NEEDS, "status": "reserved"}, "status"),
        ({k: v for k, v in NEEDS.items() if k != "project"}, "project"),
        ({**NEEDS, "jobs": "many"}, "jobs"),
        ([1, 2], None),
    ],
)
def test_bad_application_bodies_are_422_and_write_nothing(client, investor, store, body, field):
    before = store.count("applications")
    r = client.post("/api/applications", json=body, headers=investor)
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["field"] == field and r.get_json()["problems"]
    assert store.count("applications") == before


def test_stale_versions_conflict(client, investor, planner):
    app = client.post("/api/applications", json=NEEDS, headers=investor).get_json()
    r = client.post(
        f"/api/applications/{app['app_id']}/reject",
        json={"reason": "x", "version": 5},
        headers=planner,
    )
    assert r.status_code == 409 and "changed by someone else" in r.get_json()["error"]


def test_malformed_and_oversized_bodies(app, client, investor):
    r = client.post(
        "/api/applications",
        data="{not json",
        headers={**investor, "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.get_json()["field"] is None
    r = client.post(
        "/api/applications",
        data="project=x",
        headers={**investor, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and "JSON" in r.get_json()["error"]
    big = {**NEEDS, "company": "x" * 70_000}
    r = client.post("/api/applications", json=big, headers=investor)
    assert r.status_code == 413 and r.get_json()["error"]
    app.config["MAX_CONTENT_LENGTH"] = 1000  # the app-wide limit answers JSON too
    r = client.post(
        "/api/applications",
        data="x" * 5000,
        headers={**investor, "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.is_json


def test_session_clients_need_the_csrf_header(investor_client, csrf_token):
    r = investor_client.post("/api/applications", json=NEEDS)
    assert r.status_code == 400 and "CSRF" in r.get_json()["error"]
    tok = csrf_token(investor_client, "/applications")
    r = investor_client.post("/api/applications", json=NEEDS, headers={"X-CSRFToken": tok})
    assert r.status_code == 201


def test_anonymous_writes_and_unknown_routes_answer_json(client, planner):
    poly = {
        "type": "Feature",
        "properties": {},
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[76.85, 43.33], [76.851, 43.33], [76.851, 43.331], [76.85, 43.331], [76.85, 43.33]]
            ],
        },
    }
    assert client.post("/api/plots", json=poly).status_code in (401, 403)
    for headers in ({}, planner):  # a method the path never takes: 405 whoever asks
        r = client.delete("/api/layers/roads", headers=headers)
        assert r.status_code == 405 and r.is_json and "GET" in r.headers["Allow"]
    r = client.get("/api/nowhere")
    assert r.status_code == 404 and r.get_json()["field"] is None


# --------------------------------------------------------------------------- docs
def test_docs_page_lists_every_operation(client):
    page = client.get("/api/docs").get_data(as_text=True)
    for path in (
        "/api/plots",
        "/api/plots/{plot_id}",
        "/api/layers/{name}",
        "/api/applications",
        "/api/applications/{app_id}/accept",
        "/api/export/{layer}.{format}",
        "/api/uploads",
        "/api/kpi",
        "/api/servicing/{plot_id}",
    ):
        assert f"<code>{path}</code>" in page, path
    assert "min_area" in page and "one of " + ", ".join(SECTORS) in page
    assert "http://" not in page.replace("http://localhost", "") and "https://" not in page


def test_every_layer_is_known_to_the_api():
    from web.api import EXPORTABLE, IMPORTABLE

    assert "users" not in EXPORTABLE and {"users", "audit"}.isdisjoint(IMPORTABLE)
    assert set(EXPORTABLE) <= set(LAYERS)
