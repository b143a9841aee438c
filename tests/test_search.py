"""Plot search (planner.search and GET /api/search): what each role may find, through the
access policy, on both backends; prefix matching through the store's search index; ranking;
bad queries."""

from __future__ import annotations

import pytest

from geo.layers import LAYERS
from geo.store.base import Prefix
from planner.search import SearchQuery, find_plots, searchable_fields
from planner.visibility import plot_view


@pytest.fixture
def any_store(sample_location):
    """The sample store on each backend."""
    from geo.store import open_store

    store = open_store(sample_location)
    yield store
    store.close()


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


def test_exact_id_comes_first_and_case_and_spaces_do_not_matter(any_store):
    plot = any_store.read("plots", where={"status": ["available"]}).iloc[0]
    pid = str(plot["plot_id"])
    hits = find_plots(any_store, SearchQuery(q=f"  {pid.lower()} "), role="public")
    assert hits[0].plot_id == pid and hits[0].exact and hits[0].field == "plot_id"
    assert hits[0].geometry["type"] in ("Polygon", "MultiPolygon")
    west, south, east, north = hits[0].bbox
    assert 76 < west < east < 78 and 43 < south < north < 44  # WGS84, around Almaty


def test_cadastral_number_finds_its_plot(any_store):
    plots = any_store.read("plots", where={"status": ["available"]})
    plot = plots[plots["cadastre"].notna()].iloc[0]
    hits = find_plots(any_store, SearchQuery(q=str(plot["cadastre"])), role="investor")
    assert hits[0].plot_id == plot["plot_id"] and hits[0].field == "cadastre"
    assert hits[0].text == plot["cadastre"] and hits[0].exact


def test_public_search_never_finds_a_candidate_or_a_resident(any_store):
    candidate = _candidate(any_store)
    occupied = _resident(any_store)
    for role in (None, "investor"):
        for text in (candidate["plot_id"], candidate["cadastre"]):
            if text:
                found = find_plots(any_store, SearchQuery(q=str(text)), role=role)
                assert candidate["plot_id"] not in [h.plot_id for h in found]
        found = find_plots(any_store, SearchQuery(q=occupied["resident"]), role=role)
        assert all(h.field != "resident" for h in found)
        assert occupied["plot_id"] not in [h.plot_id for h in found]
    staff = find_plots(any_store, SearchQuery(q=str(candidate["plot_id"])), role="planner")
    assert staff[0].plot_id == candidate["plot_id"] and staff[0].status == "candidate"
    by_resident = find_plots(any_store, SearchQuery(q=occupied["resident"][:6]), role="planner")
    assert occupied["plot_id"] in [h.plot_id for h in by_resident]
    assert {h.field for h in by_resident} == {"resident"}


def test_limit_and_no_match(any_store):
    assert len(find_plots(any_store, SearchQuery(q="P", limit=3), role="planner")) == 3
    assert find_plots(any_store, SearchQuery(q="no such plot anywhere"), role="planner") == []


def test_ids_and_cadastral_numbers_match_from_their_start(any_store):
    """A prefix search: the start of an id finds it, its middle does not."""
    plots = any_store.read("plots", where={"status": ["available"]})
    pid = str(plots["plot_id"].iloc[0])
    assert len(pid) > 3
    start = find_plots(any_store, SearchQuery(q=pid[:-1].lower(), limit=50), role="public")
    assert pid in [h.plot_id for h in start]
    middle = pid[1:]
    hits = find_plots(any_store, SearchQuery(q=middle, limit=50), role="planner")
    assert pid not in [h.plot_id for h in hits if h.field == "plot_id"]
    assert all(
        "".join(h.text.split()).lower().startswith("".join(middle.split()).lower())
        for h in hits
        if h.field != "resident"
    )


def test_a_search_reads_through_the_search_index(any_store, backend):
    """The id and cadastral number prefix query is a range on the search-key index."""
    if backend == "gpkg":
        from geo.store.gpkg import _select, connect

        layer = LAYERS["plots"]
        for name in ("plot_id", "cadastre"):
            sql, params = _select(layer, None, {name: Prefix("P-1")}, "t.plot_id")
            with connect(any_store.path) as conn:
                plan = " ".join(str(r) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert f"plots_{name}_search" in plan, plan
        return
    import psycopg

    from geo.store.postgis import _select

    with psycopg.connect(any_store.url) as conn:
        conn.execute("SET enable_seqscan = off")
        for name in ("plot_id", "cadastre"):
            query, params = _select(
                LAYERS["plots"],
                psycopg.sql.SQL("t.plot_id"),
                None,
                {name: Prefix("P-1")},
                epsg=any_store.epsg,
            )
            plan = " ".join(r[0] for r in conn.execute(psycopg.sql.SQL("EXPLAIN ") + query, params))
            assert f"plots_{name}_search" in plan, plan


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


def test_a_store_in_another_crs_is_searched_and_answered_in_wgs84(tmp_path):
    """The CRS is the store's own: a plot stored in EPSG:32642 is found and outlined where it
    lies."""
    import geopandas as gpd
    import shapely

    from geo.crs import transformer
    from geo.store import create_store

    store = create_store(tmp_path / "z42.gpkg", epsg=32642)
    box = shapely.box(650_000, 4_799_000, 650_100, 4_799_100)  # in EPSG:32643
    store.insert(
        "plots",
        gpd.GeoDataFrame({"plot_id": ["Q-1"], "status": ["available"]}, geometry=[box], crs=32643),
    )
    hit = find_plots(store, SearchQuery(q="q-1"), role="public")[0]
    assert hit.plot_id == "Q-1" and hit.exact
    assert hit.bbox == pytest.approx(
        transformer(32643, 4326).transform_bounds(*box.bounds), abs=1e-6
    )
    store.close()
