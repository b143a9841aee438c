"""Publishing is checked: a plot goes to investors without road or water within reach only
when a planner confirms it, having seen the servicing answer (API, feature page)."""

from __future__ import annotations

import pytest

from planner import parcels
from planner.servicing import ServicingModel

NO_ROAD = "P-193"  # a candidate 42 m from road R-018, with a water main in reach
NO_ROAD_NOR_WATER = "P-189"  # a candidate 214 m from the nearest road, no water main in reach


@pytest.fixture
def planner(planner_client, csrf_token):
    planner_client.get("/lang/en")
    planner_client.zp_headers = {"X-CSRFToken": csrf_token(planner_client, "/account")}
    return planner_client


def test_publishing_gaps_are_road_and_water_within_reach(store):
    model = ServicingModel(store.snapshot())
    records = {r["plot_id"]: r for r in model.answer([NO_ROAD, NO_ROAD_NOR_WATER, "P-104"])}
    assert [u for u, _ in parcels.publishing_gaps(records[NO_ROAD])] == ["road"]
    assert [u for u, _ in parcels.publishing_gaps(records[NO_ROAD_NOR_WATER])] == ["road", "water"]
    assert parcels.publishing_gaps(records["P-104"]) == []
    err = parcels.PublishUnconfirmed(NO_ROAD, parcels.publishing_gaps(records[NO_ROAD]))
    assert err.message() == (
        f"plot {NO_ROAD} has no road within reach (road: does not front a "
        "road (nearest R-018 at 42 m, then 473 m along roads to gate "
        "G-2)); publish it only with a confirmation"
    )


def test_api_publishing_needs_confirm_and_writes_nothing_before(planner, store):
    version = store.get("plots", NO_ROAD_NOR_WATER)["version"]
    r = planner.patch(
        f"/api/plots/{NO_ROAD_NOR_WATER}",
        json={"version": version, "status": "available"},
        headers=planner.zp_headers,
    )
    body = r.get_json()
    assert r.status_code == 409 and body["field"] == "confirm"
    assert [(p["field"], p["feature_id"]) for p in body["problems"]] == [
        ("road", NO_ROAD_NOR_WATER),
        ("water", NO_ROAD_NOR_WATER),
    ]
    assert store.get("plots", NO_ROAD_NOR_WATER)["version"] == version
    r = planner.patch(
        f"/api/plots/{NO_ROAD_NOR_WATER}",
        json={"version": version, "status": "available", "confirm": True},
        headers=planner.zp_headers,
    )
    assert r.status_code == 200 and r.get_json()["properties"]["status"] == "available"
    # a confirm alone changes nothing
    planner.get("/lang/en")
    r = planner.patch(
        f"/api/plots/{NO_ROAD_NOR_WATER}",
        json={"version": version + 1, "confirm": True},
        headers=planner.zp_headers,
    )
    assert r.status_code == 422 and "nothing to change" in r.get_json()["error"]


def test_feature_page_shows_the_gap_and_needs_the_tick(planner, store, csrf_token):
    url = f"/planner/features/plots/{NO_ROAD}"
    page = planner.get(url).get_data(as_text=True)
    assert 'id="zp-publish-gaps"' in page and "does not front a road (nearest R-018 at 42 m" in page
    token = csrf_token(planner, url)
    version = store.get("plots", NO_ROAD)["version"]
    page = planner.post(
        url,
        data={"csrf_token": token, "version": version, "status": "available"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert f"plot {NO_ROAD} has no road within reach" in page
    assert store.get("plots", NO_ROAD)["status"] == "candidate"
    page = planner.post(
        url,
        data={"csrf_token": token, "version": version, "status": "available", "confirm": "1"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert f"Plot {NO_ROAD} is now available." in page
    assert store.get("plots", NO_ROAD)["status"] == "available"
