"""Plot search (planner.search and GET /api/search): what each role may find, through the
access policy; ranking; bad queries."""

from __future__ import annotations

import pytest

from planner.search import SearchQuery, find_plots, searchable_fields
from planner.visibility import plot_view


def _candidate(store):
    plots = store.read("plots", where={"status": ["candidate"]})
    assert len(plots), "the sample holds candidate plots"
    return plots.iloc[0]


def _resident(store):
    plots = store.read("plots")
    plots = plots[plots["resident"].fillna("").str.len() > 3]
    assert len(plots), "the sample holds occupied plots with a resident"
    return plots.iloc[0]


def test_resident_is_searched_for_staff_only():
    assert searchable_fields(plot_view("planner")) == ("plot_id", "cadastre", "resident")
    assert searchable_fields(plot_view("admin")) == ("plot_id", "cadastre", "resident")
    for role in (None, "public", "investor"):
        assert searchable_fields(plot_view(role)) == ("plot_id", "cadastre")


def test_exact_id_comes_first_and_case_and_spaces_do_not_matter(store):
    plot = store.read("plots", where={"status": ["available"]}).iloc[0]
    pid = str(plot["plot_id"])
    hits = find_plots(store, SearchQuery(q=f"  {pid.lower()} "), role="public")
    assert hits[0].plot_id == pid and hits[0].exact and hits[0].field == "plot_id"
    assert hits[0].geometry["type"] in ("Polygon", "MultiPolygon")
    west, south, east, north = hits[0].bbox
    assert 76 < west < east < 78 and 43 < south < north < 44  # WGS84, around Almaty


def test_cadastral_number_finds_its_plot(store):
    plots = store.read("plots", where={"status": ["available"]})
    plot = plots[plots["cadastre"].notna()].iloc[0]
    hits = find_plots(store, SearchQuery(q=str(plot["cadastre"])), role="investor")
    assert hits[0].plot_id == plot["plot_id"] and hits[0].field == "cadastre"
    assert hits[0].text == plot["cadastre"] and hits[0].exact


def test_public_search_never_finds_a_candidate_or_a_resident(store):
    candidate = _candidate(store)
    occupied = _resident(store)
    for role in (None, "investor"):
        for text in (candidate["plot_id"], candidate["cadastre"]):
            if text:
                found = find_plots(store, SearchQuery(q=str(text)), role=role)
                assert candidate["plot_id"] not in [h.plot_id for h in found]
        found = find_plots(store, SearchQuery(q=occupied["resident"]), role=role)
        assert all(h.field != "resident" for h in found)
        assert occupied["plot_id"] not in [h.plot_id for h in found]
    staff = find_plots(store, SearchQuery(q=str(candidate["plot_id"])), role="planner")
    assert staff[0].plot_id == candidate["plot_id"] and staff[0].status == "candidate"
    by_resident = find_plots(store, SearchQuery(q=occupied["resident"][:6]), role="planner")
    assert occupied["plot_id"] in [h.plot_id for h in by_resident]
    assert {h.field for h in by_resident} == {"resident"}


def test_limit_and_no_match(store):
    assert len(find_plots(store, SearchQuery(q="P", limit=3), role="planner")) == 3
    assert find_plots(store, SearchQuery(q="no such plot anywhere"), role="planner") == []


# --------------------------------------------------------------------------- the API
def test_api_search_follows_the_access_policy(client, planner_client, investor_client, store):
    candidate = _candidate(store)
    occupied = _resident(store)
    for anyone in (client, investor_client):
        r = anyone.get(f"/api/search?q={candidate['plot_id']}")
        assert r.status_code == 200
        assert candidate["plot_id"] not in [h["plot_id"] for h in r.get_json()["results"]]
        r = anyone.get("/api/search", query_string={"q": occupied["resident"]})
        assert r.status_code == 200 and r.get_json()["results"] == []
    r = planner_client.get(f"/api/search?q={candidate['plot_id']}")
    first = r.get_json()["results"][0]
    assert first["plot_id"] == candidate["plot_id"] and first["status"] == "candidate"
    assert first["geometry"]["type"] in ("Polygon", "MultiPolygon") and len(first["bbox"]) == 4
    r = planner_client.get("/api/search", query_string={"q": occupied["resident"]})
    assert occupied["plot_id"] in [h["plot_id"] for h in r.get_json()["results"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "q"),
        ("q=", "q"),
        ("q=x&limit=0", "limit"),
        ("q=x&limit=51", "limit"),
        ("q=x&resident=y", "resident"),
        ("q=" + "x" * 101, "q"),
    ],
)
def test_api_search_refuses_bad_queries(client, query, field):
    r = client.get("/api/search?" + query)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["field"] == field


def test_api_search_is_in_the_openapi_document(client):
    doc = client.get("/api/openapi.json").get_json()
    op = doc["paths"]["/api/search"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"q", "limit"}
    assert "SearchResults" in doc["components"]["schemas"]
