"""OGC API - Features at /ogc through the WSGI app: the Core and GeoJSON assertions of the
standard's abstract test suite that can be read as tests, Parts 2 and 3, the access policy,
HTTP Basic, errors, HTML and the OpenAPI document (schemathesis)."""

from __future__ import annotations

import base64
import datetime as dt

import geopandas as gpd
import numpy as np
import pytest
import schemathesis
import shapely
from conftest import PASSWORDS
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from geo.crs import transformer
from geo.layers import parse_sectors
from planner import visibility
from usecases import accounts
from usecases.ogc import errors, metadata, queries

CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
UTM = "http://www.opengis.net/def/crs/EPSG/0/32643"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"


def basic(username: str, password: str | None = None) -> dict[str, str]:
    raw = f"{username}:{password or PASSWORDS[username]}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def get(client, url: str, status: int = 200, **kwargs):
    response = client.get(url, **kwargs)
    assert response.status_code == status, (url, response.get_data(as_text=True)[:300])
    return response


def visible_plots(store):
    plots = store.read("plots")
    return plots[plots["status"] != "candidate"]


# --------------------------------------------------------------------------- Part 1 Core
@pytest.mark.parametrize("path", ["/ogc", "/ogc/"])
def test_landing_answers_on_both_paths_without_redirect(client, path):
    doc = get(client, path).get_json()
    rels = {link["rel"] for link in doc["links"]}
    assert {"service-desc", "conformance", "data"} <= rels  # /conf/core/root-success
    for link in doc["links"]:
        assert link["href"].startswith("http://localhost/ogc")


def test_api_definition_is_openapi_30_and_linked(client):
    landing = get(client, "/ogc").get_json()
    desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    response = get(client, desc["href"].replace("http://localhost", ""))
    assert response.mimetype == "application/vnd.oai.openapi+json"
    doc = response.get_json()
    assert doc["openapi"].startswith("3.0")
    items = doc["paths"]["/collections/plots/items"]["get"]
    limit = next(p for p in items["parameters"] if p.get("name") == "limit")
    assert limit["schema"]["maximum"] == metadata.MAX_LIMIT  # GDAL reads it and pages by it
    assert {"sectors", "status", "bbox", "crs", "bbox-crs"} <= {
        p.get("name") for p in items["parameters"]
    }


def test_conformance_declares_the_classes(client):
    classes = get(client, "/ogc/conformance").get_json()["conformsTo"]
    assert CORE in classes
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables" in classes


def test_collections_list_what_the_public_may_read(client):
    doc = get(client, "/ogc/collections").get_json()
    ids = [c["id"] for c in doc["collections"]]
    assert ids == visibility.readable_layers(None)
    assert "applications" not in ids and "users" not in ids
    for c in doc["collections"]:  # /conf/core/fc-md-items
        assert any(link["rel"] == "items" for link in c["links"])
        bbox = c.get("extent", {}).get("spatial", {}).get("bbox")
        if bbox:  # /conf/core/fc-md-extent: CRS84 in range
            w, s, e, n = bbox[0]
            assert -180 <= w <= e <= 180 and -90 <= s <= n <= 90


def test_planners_see_every_collection_but_users(client):
    ids = [
        c["id"]
        for c in get(client, "/ogc/collections", headers=basic("planner")).get_json()["collections"]
    ]
    assert "applications" in ids and "audit" in ids and "users" not in ids


def test_collection_advertises_crs_and_storage_crs(client):
    doc = get(client, "/ogc/collections/plots").get_json()
    assert doc["id"] == "plots" and doc["itemType"] == "feature"
    assert doc["storageCrs"] == UTM
    assert set(doc["crs"]) == {metadata.CRS84, UTM, EPSG4326}
    roads = get(client, "/ogc/collections/roads").get_json()
    start, end = roads["extent"]["temporal"]["interval"][0]
    assert start.endswith("Z") and end is None  # roads without a due date: open-ended


def test_items_are_a_geojson_feature_collection_in_crs84(client, store):
    response = get(client, "/ogc/collections/plots/items?limit=7")
    assert response.mimetype == "application/geo+json"  # /conf/geojson/content
    assert response.headers["Content-Crs"] == f"<{metadata.CRS84}>"
    doc = response.get_json()
    assert doc["type"] == "FeatureCollection"
    assert doc["numberReturned"] == len(doc["features"]) == 7
    assert doc["numberMatched"] == len(visible_plots(store))
    dt.datetime.fromisoformat(doc["timeStamp"])
    rels = {link["rel"] for link in doc["links"]}
    assert {"self", "alternate", "next"} <= rels and "prev" not in rels
    first = doc["features"][0]
    lon, lat = first["geometry"]["coordinates"][0][0]
    assert 76 < lon < 78 and 43 < lat < 44
    assert first["id"] == first["properties"]["plot_id"]


def test_paging_follows_next_links_through_every_visible_plot(client, store):
    url, ids, pages = "/ogc/collections/plots/items?limit=40", [], 0
    while url:
        doc = get(client, url.replace("http://localhost", "")).get_json()
        ids += [f["id"] for f in doc["features"]]
        pages += 1
        url = next((link["href"] for link in doc["links"] if link["rel"] == "next"), None)
        if pages == 2:
            prev = next(link["href"] for link in doc["links"] if link["rel"] == "prev")
            assert "offset" not in prev  # back to the first page
    expected = visible_plots(store)["plot_id"]
    assert len(ids) == len(set(ids)) == len(expected)
    assert ids == sorted(expected)


def test_limit_above_the_maximum_is_capped_and_offset_past_the_end_is_empty(client, store):
    doc = get(client, f"/ogc/collections/plots/items?limit={metadata.MAX_LIMIT * 10}").get_json()
    assert doc["numberReturned"] == len(visible_plots(store))
    self_link = next(link["href"] for link in doc["links"] if link["rel"] == "self")
    assert f"limit={metadata.MAX_LIMIT}&" in self_link
    doc = get(client, "/ogc/collections/plots/items?offset=100000").get_json()
    assert doc["features"] == [] and doc["numberReturned"] == 0
    assert "next" not in {link["rel"] for link in doc["links"]}


def test_one_feature_with_links(client):
    response = get(client, "/ogc/collections/plots/items/P-044")
    assert response.mimetype == "application/geo+json"
    doc = response.get_json()
    assert doc["type"] == "Feature" and doc["id"] == "P-044"
    assert {"self", "alternate", "collection"} <= {link["rel"] for link in doc["links"]}


def test_bbox_selects_features_whose_geometry_meets_it(client, store):
    box = (76.84, 43.32, 76.85, 43.33)
    doc = get(
        client, "/ogc/collections/plots/items?limit=1000&bbox=" + ",".join(map(str, box))
    ).get_json()
    plots = visible_plots(store)
    utm = shapely.box(*transformer(4326, 32643).transform_bounds(*box))
    expected = set(plots["plot_id"][shapely.intersects(plots.geometry.values, utm)])
    assert expected and {f["id"] for f in doc["features"]} == expected
    assert doc["numberMatched"] == len(expected)


def test_bbox_leaves_out_a_feature_whose_envelope_meets_it_but_geometry_does_not(client, store):
    x0, y0, _, _ = store.extent("zone")
    road = gpd.GeoDataFrame(
        {"asset_id": ["R-DIAG"], "class": ["local"], "status": ["operational"]},
        geometry=[shapely.LineString([(x0, y0), (x0 + 1000, y0 + 1000)])],
        crs=32643,
    )
    store.insert("roads", road)
    corner = (x0, y0 + 900, x0 + 100, y0 + 1000)  # inside the road's envelope, off the road
    on_road = (x0 + 450, y0 + 450, x0 + 550, y0 + 550)
    for box, expected in ((corner, False), (on_road, True)):
        url = f"/ogc/collections/roads/items?limit=1000&bbox-crs={UTM}&bbox=" + ",".join(
            f"{v:.3f}" for v in box
        )
        doc = get(client, url).get_json()
        assert ("R-DIAG" in {f["id"] for f in doc["features"]}) is expected
        rows = store.read("roads", bbox=box, exact=True)
        assert doc["numberMatched"] == len(rows) == store.count("roads", bbox=box, exact=True)
    assert "R-DIAG" in set(store.read("roads", bbox=corner)["asset_id"])  # the envelope meets


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "path", ["/ogc", "/ogc/collections", "/ogc/collections/plots/items", "/ogc/items/x"]
)
def test_writes_are_not_allowed_and_say_so(client, method, path):
    response = client.open(path, method=method, json={"type": "Feature"})
    assert response.status_code == 405, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["code"] == "MethodNotAllowed" and method in body["description"]
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert "GET" in allowed and method not in allowed


def test_writes_elsewhere_keep_their_own_answer(client):
    response = client.open("/ogcx", method="DELETE")
    assert response.status_code in (404, 405) and b"MethodNotAllowed" not in response.data


def test_datetime_selects_assets_whose_status_interval_meets_it(client, store):
    day = "2022-06-01"
    doc = get(client, f"/ogc/collections/substations/items?datetime={day}").get_json()
    rows = store.read("substations")
    since, due = rows["since"].fillna(""), rows["due"].fillna("9999")
    expected = set(rows["asset_id"][(since <= day) & (due >= day)])
    assert {f["id"] for f in doc["features"]} == expected
    later = get(client, "/ogc/collections/substations/items?datetime=2023-01-01/..").get_json()
    assert later["numberMatched"] == int((due >= "2023-01-01").sum())


# --------------------------------------------------------------------------- Part 2 CRS
def test_crs_parameter_answers_in_utm_metres_and_in_lat_lon(client, store):
    stored = store.read("plots", where={"plot_id": "P-044"}).geometry.values[0]
    utm = get(client, f"/ogc/collections/plots/items/P-044?crs={UTM}")
    assert utm.headers["Content-Crs"] == f"<{UTM}>"
    xy = np.array(utm.get_json()["geometry"]["coordinates"][0])
    assert np.allclose(xy, shapely.get_coordinates(stored), atol=0.001)
    lonlat = np.array(
        get(client, "/ogc/collections/plots/items/P-044").get_json()["geometry"]["coordinates"][0]
    )
    latlon = np.array(
        get(client, f"/ogc/collections/plots/items/P-044?crs={EPSG4326}").get_json()["geometry"][
            "coordinates"
        ][0]
    )
    assert np.allclose(latlon[:, ::-1], lonlat)


def test_bbox_crs_in_metres_selects_the_same_plots(client, store):
    box = (76.84, 43.32, 76.85, 43.33)
    utm = transformer(4326, 32643).transform_bounds(*box)
    by_degrees = get(
        client, "/ogc/collections/plots/items?limit=1000&bbox=" + ",".join(map(str, box))
    ).get_json()
    by_metres = get(
        client,
        f"/ogc/collections/plots/items?limit=1000&bbox-crs={UTM}&bbox="
        + ",".join(f"{v:.3f}" for v in utm),
    ).get_json()
    assert {f["id"] for f in by_metres["features"]} == {f["id"] for f in by_degrees["features"]}


# --------------------------------------------------------------------------- Part 3 filters
def test_queryables_list_what_the_role_may_filter(client):
    props = get(client, "/ogc/collections/plots/queryables").get_json()["properties"]
    assert "resident" not in props and "version" not in props
    assert "candidate" not in props["status"]["enum"]
    staff = get(client, "/ogc/collections/plots/queryables", headers=basic("planner")).get_json()[
        "properties"
    ]
    assert "resident" in staff and "candidate" in staff["status"]["enum"]


def test_a_sector_filter_matches_plots_whose_list_holds_it(client, store):
    doc = get(client, "/ogc/collections/plots/items?limit=1000&sectors=food").get_json()
    plots = visible_plots(store)
    allowed = [parse_sectors(text) for text in plots["sectors"]]
    expected = {pid for pid, a in zip(plots["plot_id"], allowed) if a is None or "food" in a}
    assert expected and {f["id"] for f in doc["features"]} == expected
    assert len(expected) < len(plots)


def test_property_filters_combine(client, store):
    doc = get(
        client, "/ogc/collections/plots/items?limit=1000&status=available&hazard_ok=3"
    ).get_json()
    plots = store.read("plots")
    expected = set(plots["plot_id"][(plots["status"] == "available") & (plots["hazard_ok"] == 3)])
    assert {f["id"] for f in doc["features"]} == expected


def test_number_matched_follows_a_write(client, store):
    before = get(client, "/ogc/collections/plots/items?limit=1").get_json()["numberMatched"]
    candidate = store.read("plots", where={"status": "candidate"})["plot_id"].iloc[0]
    store.update("plots", candidate, {"status": "available"})
    after = get(client, "/ogc/collections/plots/items?limit=1").get_json()["numberMatched"]
    assert after == before + 1


# --------------------------------------------------------------------------- access
def test_anonymous_plots_hide_candidates_and_occupants(client, store):
    doc = get(client, "/ogc/collections/plots/items?limit=1000").get_json()
    assert {f["properties"]["status"] for f in doc["features"]} <= set(
        visibility.plot_view(None).statuses
    )
    for feature in doc["features"]:
        assert not set(feature["properties"]) & set(visibility.HIDDEN_PLOT_FIELDS)
    candidate = store.read("plots", where={"status": "candidate"})["plot_id"].iloc[0]
    missing = get(client, f"/ogc/collections/plots/items/{candidate}", 404).get_json()
    assert missing == get(client, "/ogc/collections/plots/items/NO-SUCH", 404).get_json() | {
        "description": missing["description"]
    }
    get(client, "/ogc/collections/plots/items?status=candidate", 400)


@pytest.mark.parametrize("who", ["basic", "bearer"])
def test_planner_credentials_give_the_whole_layer(client, store, who):
    headers = (
        basic("planner")
        if who == "basic"
        else {"Authorization": f"Bearer {accounts.issue_token(store, 'planner')}"}
    )
    doc = get(client, "/ogc/collections/plots/items?limit=1000", headers=headers).get_json()
    assert doc["numberMatched"] == len(store.read("plots"))
    assert "resident" in doc["features"][0]["properties"]
    get(client, "/ogc/collections/applications/items", headers=headers)


def test_private_collections_ask_anonymous_clients_for_credentials(client):
    response = get(client, "/ogc/collections/applications/items", 401)
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.get_json()["code"] == "Unauthorized"
    get(client, "/ogc/collections/applications/items", 403, headers=basic("investor"))
    get(client, "/ogc/collections/users/items", 404, headers=basic("admin"))
    get(client, "/ogc/collections/jobs", 404, headers=basic("admin"))


def test_wrong_basic_password_is_anonymous_and_throttled(client):
    for _ in range(6):
        get(
            client,
            "/ogc/collections/applications/items",
            401,
            headers=basic("planner", "wrong-password"),
        )
    # five failures lock the name for this address, even with the right password
    get(client, "/ogc/collections/applications/items", 401, headers=basic("planner"))


def test_basic_credentials_count_on_the_ogc_api_only(client):
    response = client.get("/api/kpi", headers=basic("planner"))
    assert response.status_code == 401


def test_verified_passwords_never_outlive_a_change(store):
    cache = accounts.VerifiedPasswords(ttl_s=300)
    assert cache.authenticate(store, "planner", PASSWORDS["planner"])["role"] == "planner"
    assert cache.authenticate(store, "planner", PASSWORDS["planner"]) is not None  # cached
    assert cache.authenticate(store, "planner", "wrong-password") is None
    accounts.set_active(store, "planner", False)
    assert cache.authenticate(store, "planner", PASSWORDS["planner"]) is None
    accounts.set_active(store, "planner", True)
    accounts.set_password(store, "planner", "a-new-password-1")
    assert cache.authenticate(store, "planner", PASSWORDS["planner"]) is None
    assert cache.authenticate(store, "planner", "a-new-password-1") is not None
    assert all(PASSWORDS["planner"].encode() not in key for key in cache._seen)


# --------------------------------------------------------------------------- bad requests
def test_a_filter_value_no_id_can_have_matches_nothing(client):
    body = client.get("/ogc/collections/plots/items?plot_id=%1B&f=json").get_json()
    assert body["features"] == [] and body["numberMatched"] == 0


@pytest.mark.parametrize(
    "url, status",
    [
        ("/ogc/collections/nope", 404),
        ("/ogc/collections/nope/items", 404),
        ("/ogc/collections/plots/items/NO-SUCH", 404),
        ("/ogc/collections/plots/items/%1B", 404),
        ("/ogc/collections/audit/items/abc", 401),
        ("/ogc/nothing/here", 404),
        ("/ogc/collections/plots/items?bbox=1,2,3", 400),
        ("/ogc/collections/plots/items?bbox=77,44,76,43", 400),
        ("/ogc/collections/plots/items?bbox=a,b,c,d", 400),
        ("/ogc/collections/plots/items?bbox=nan,1,2,3", 400),
        ("/ogc/collections/plots/items?limit=-1", 400),
        ("/ogc/collections/plots/items?limit=0", 400),
        ("/ogc/collections/plots/items?limit=ten", 400),
        ("/ogc/collections/plots/items?offset=-5", 400),
        ("/ogc/collections/plots/items?crs=EPSG:3857", 400),
        ("/ogc/collections/plots/items?bbox-crs=urn:nope&bbox=1,2,3,4", 400),
        ("/ogc/collections/targets/items?crs=" + UTM, 400),
        ("/ogc/collections/targets/items?bbox=1,2,3,4", 400),
        ("/ogc/collections/plots/items?colour=red", 400),
        ("/ogc/collections/plots/items?limit=1&limit=2", 400),
        ("/ogc/collections/plots/items?datetime=2022-01-01", 400),
        ("/ogc/collections/roads/items?datetime=yesterday", 400),
        ("/ogc/collections/roads/items?datetime=2023-01-01/2022-01-01", 400),
        ("/ogc/collections/roads/items?datetime=../..", 400),
        ("/ogc/collections/plots/items?hazard_ok=high", 400),
        ("/ogc/collections/plots/items?sectors=steel", 400),
        ("/ogc/collections/plots/items?f=xml", 400),
        ("/ogc/collections/plots/items/P-044?crs=EPSG:3857", 400),
        ("/ogc/collections/plots/items/P-044?limit=1", 400),
    ],
)
def test_bad_requests_get_an_ogc_exception(client, url, status):
    response = get(client, url, status)
    body = response.get_json()
    assert response.mimetype == "application/json"
    assert body["code"] and body["description"]


# --------------------------------------------------------------------------- HTML
def test_json_unless_accept_prefers_html(client):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert get(client, "/ogc/collections", headers={"Accept": browser}).mimetype == "text/html"
    assert get(client, "/ogc/collections", headers={"Accept": "*/*"}).mimetype == "application/json"
    assert (
        get(client, "/ogc/collections?f=json", headers={"Accept": browser}).mimetype
        == "application/json"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/ogc",
        "/ogc/conformance",
        "/ogc/api",
        "/ogc/collections",
        "/ogc/collections/plots",
        "/ogc/collections/plots/queryables",
        "/ogc/collections/plots/items",
        "/ogc/collections/roads/items",
        "/ogc/collections/plots/items/P-044",
    ],
)
def test_html_pages(client, path):
    response = get(client, path + "?f=html")
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    if "/collections/" in path and "queryables" not in path:
        nonce = response.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
        assert "vendor/leaflet/leaflet.js" in html and f'<script nonce="{nonce}">' in html


def test_html_escapes_stored_text(client, store):
    store.update("plots", "P-044", {"cadastre": "<script>alert(1)</script>"})
    html = get(client, "/ogc/collections/plots/items/P-044?f=html").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


# --------------------------------------------------------------------------- the document
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_ogc_api_honours_its_document(app):
    """schemathesis drives every operation of /ogc/api (a few examples each) as a planner."""
    schema = schemathesis.openapi.from_wsgi("/ogc/api", app)
    # the WSGI transport hands back bodies as sent: ask for them uncompressed
    headers = {**basic("planner"), "Accept-Encoding": "identity"}
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            derandomize=True,
            database=None,
            phases=(Phase.explicit, Phase.generate),  # report, don't shrink: CI time
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as err:  # noqa: BLE001 - collect them all
            failures.append(f"{operation.label}: {str(err)[:1500]}")
    assert operations == 4 * len(visibility.readable_layers("planner")) + 3
    assert not failures, "\n\n".join(failures)


def test_an_integer_filter_beyond_64_bits_is_a_bad_request():
    with pytest.raises(errors.InvalidParameter, match="jobs"):
        queries.parse_items_query("plots", {"jobs": ["9" * 20]}, role="planner")
