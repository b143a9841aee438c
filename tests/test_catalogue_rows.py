"""The catalogue's row path (``Store.rows``, the sector in SQL) against the rules it replaces:
``geo.layers.parse_list`` for the allowed sectors, and the in-memory search (whole layer
read into a frame, filtered, sorted by key then plot_id, paged) on real stores."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pytest
import shapely

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer
from geo.layers import PLOT_STATUSES, SECTORS, parse_sectors
from geo.store import ListHas, create_store, is_url, open_store
from geo.store.base import LIST_SPACE, list_has
from geo.store.gpkg_geom import connect
from planner import catalogue as cat
from planner.catalogue import Forbidden, parse_filters, search
from planner.visibility import plot_view

E, N = 650_000.0, 4_799_000.0
#: Allowed-sectors texts the import accepts (items stripped) and some it would refuse,
#: written straight into the stores: both backends' SQL must read them as parse_list does.
TRICKY = [
    None,
    "",
    "   ",
    "*",
    " * ",
    "\t*\n",
    "food",
    "food,pharma",
    " food , pharma ",
    "food,\tpharma",
    "pharma,\u00a0food",
    "\u3000food\u2028",
    "food\x1f,light",
    "fo od",
    "*,food",
    ",food,",
    ",,",
    "FOOD",
    "food;pharma",
    "pharmafood",
    "food pharma",
    "еда,food",
    "light,еда",
    "light, \u2003food \u205f",
]
ASKED = ["food", "pharma", "light", "fo od", "еда", "*", "", "food,pharma", "FOOD"]


def test_list_space_is_what_strip_removes():
    assert all(ch.isspace() for ch in LIST_SPACE)
    assert not any(chr(c).isspace() for c in range(0x3001, 0x110000))
    assert "x".join(LIST_SPACE).strip(LIST_SPACE) == "x".join(LIST_SPACE).strip()


def _raw_sectors(location: str, values: dict[str, str | None]) -> None:
    """Write allowed-sectors texts past the store's validation (as another tool could)."""
    if is_url(location):
        import psycopg

        with psycopg.connect(location.split("?")[0], autocommit=True) as conn:
            if "search_path" in location:
                schema = location.split("search_path%3D")[1].split(",")[0]
                conn.execute(f'SET search_path TO "{schema}", public')
            for pid, text in values.items():
                conn.execute("UPDATE plots SET sectors = %s WHERE plot_id = %s", (text, pid))
        return
    conn = connect(location)  # with the functions the GeoPackage's triggers call
    try:
        conn.executemany(
            "UPDATE plots SET sectors = ? WHERE plot_id = ?",
            [(text, pid) for pid, text in values.items()],
        )
    finally:
        conn.close()


def _plots(n: int) -> gpd.GeoDataFrame:
    """``n`` plots on a grid, areas repeating (ties), statuses and sectors mixed."""
    rng = np.random.default_rng(7)
    geoms, ids, statuses, sectors = [], [], [], []
    side = int(np.ceil(np.sqrt(n)))
    choices = ["*", "food,light", " food , pharma ", "chemicals", None, "light,\tmachine"]
    for i in range(n):
        x, y = E + (i % side) * 150.0, N + (i // side) * 150.0
        width = 50.0 + 10.0 * (i % 4)  # four areas only: sorts by area tie often
        geoms.append(shapely.box(x, y, x + width, y + 100.0))
        # ids not in insertion order, so ties by plot_id differ from ties by fid
        ids.append(f"S-{(i * 37) % 1000:03d}")
        statuses.append(PLOT_STATUSES[int(rng.integers(len(PLOT_STATUSES)))])
        sectors.append(choices[i % len(choices)])
    return gpd.GeoDataFrame(
        {"plot_id": ids, "status": statuses, "sectors": sectors},
        geometry=geoms,
        crs=WORKING_EPSG,
    )


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def synthetic(request, tmp_path_factory):
    """A small synthetic zone on each backend (read-only for the tests)."""
    location = (
        str(tmp_path_factory.mktemp("rows") / "z.gpkg")
        if request.param == "gpkg"
        else request.getfixturevalue("new_database")()
    )
    store = create_store(location)
    store.insert("plots", _plots(90))
    store.close()
    store = open_store(location)
    yield location, store
    store.close()


def test_sector_sql_agrees_with_parse_list(synthetic):
    location, store = synthetic
    ids = sorted(store.keys("plots"))[: len(TRICKY)]
    _raw_sectors(location, dict(zip(ids, TRICKY)))
    try:
        texts = dict(zip(ids, TRICKY))
        for asked in ASKED + list(SECTORS):
            got = sorted(store.keys("plots", where={"sectors": ListHas(asked)}))
            want = sorted(
                pid
                for pid in store.keys("plots")
                if list_has(texts.get(pid, _stored(store, pid)), asked.strip(), everything="*")
            )
            assert got == want, asked
            # the rule is parse_sectors' for the real codes
            if asked in SECTORS:
                assert [p for p in got if p in texts] == sorted(
                    p for p, t in texts.items() if _allows(t, asked)
                )
    finally:
        _raw_sectors(location, {pid: "*" for pid in ids})


def _allows(text: str | None, sector: str) -> bool:
    allowed = parse_sectors(text)
    return allowed is None or sector in allowed


def _stored(store, pid: str) -> str | None:
    value = store.get("plots", pid)["sectors"]
    return None if value is None else str(value)


def _reference(store, filters, role) -> tuple[int, list[str], list[dict]]:
    """What the catalogue answered before the row path: the layer (or the bbox's R-tree
    hits) in a frame, filters in pandas, sorted by key then plot_id (missing last), paged."""
    view = plot_view(role)
    statuses = view.check_statuses(filters.status)
    bbox = cat.working_bbox(filters.bbox, store.epsg)
    frame = store.read("plots", bbox=bbox) if bbox != () else store.read("plots").iloc[:0]
    mask = frame["status"].isin(statuses).to_numpy().copy()
    if filters.min_area is not None:
        mask &= (frame["area_ha"] >= filters.min_area).to_numpy()
    if filters.max_area is not None:
        mask &= (frame["area_ha"] <= filters.max_area).to_numpy()
    if filters.sector is not None:
        mask &= np.array([_allows(t, filters.sector) for t in frame["sectors"]], dtype=bool)
    frame = frame[mask]
    key, ascending = filters.sort.lstrip("-"), not filters.sort.startswith("-")
    if key == "plot_id":
        frame = frame.sort_values("plot_id", ascending=ascending)
    else:
        frame = frame.sort_values(
            [key, "plot_id"], ascending=[ascending, True], na_position="last", kind="stable"
        )
    page = frame.iloc[filters.offset : filters.offset + filters.limit]
    records = [
        cat.plot_properties(row, view)
        for row in cat._join_facts(page, None, None).drop(columns="geometry").to_dict("records")
    ]
    return len(frame), page["plot_id"].tolist(), records


def _box(store, frac: tuple[float, float, float, float]) -> str:
    minx, miny, maxx, maxy = store.extent("plots")
    w, h = maxx - minx, maxy - miny
    box = (minx + frac[0] * w, miny + frac[1] * h, minx + frac[2] * w, miny + frac[3] * h)
    b = transformer(WORKING_EPSG, WGS84_EPSG).transform_bounds(*box)
    return ",".join(f"{v:.6f}" for v in b)


QUERIES = [
    {},
    {"limit": "7"},
    {"limit": "5", "offset": "3", "sort": "-plot_id"},
    {"sector": "food", "limit": "1000"},
    {"sector": "pharma", "sort": "area_ha", "limit": "9", "offset": "2"},
    {"sector": "chemicals", "sort": "-area_ha", "limit": "6"},
    {"status": "available,reserved", "sort": "status", "limit": "11", "offset": "4"},
    {"status": "available,reserved", "sort": "-status", "sector": "light"},
    {"min_area": "0.55", "max_area": "0.7", "sort": "-area_ha", "limit": "1000"},
    {"min_area": "0.6", "sector": "food", "status": "reserved,available", "sort": "area_ha"},
    {"offset": "1000"},
    {"sector": "machine", "min_area": "5"},
]
BOXES = [None, (0.0, 0.0, 1.0, 1.0), (0.1, 0.2, 0.6, 0.7), (0.5, 0.5, 0.52, 0.52)]


@pytest.mark.parametrize("role", [None, "investor", "planner"])
def test_row_path_answers_as_before(synthetic, role):
    _, store = synthetic
    for frac in BOXES:
        for query in QUERIES:
            params = dict(query)
            if frac is not None:
                params["bbox"] = _box(store, frac)
            filters = parse_filters(params)
            matched, ids, records = _reference(store, filters, role)
            page = search(store, filters, role=role)
            assert page.matched == matched, params
            assert page.rows["plot_id"].tolist() == ids, params
            assert page.records() == records, params
            fc = page.feature_collection()
            assert [f["id"] for f in fc["features"]] == ids
            assert fc["numberMatched"] == matched and fc["numberReturned"] == len(ids)
            # the API's encoding (geometries as GeoJSON text fragments) is the same JSON
            fast = page.feature_collection(fragments=True)
            fast["timeStamp"] = fc["timeStamp"]
            assert orjson.dumps(fast) == orjson.dumps(fc), params


def test_hidden_statuses_follow_the_policy(synthetic):
    _, store = synthetic
    asked = parse_filters({"status": "candidate", "limit": "1000"})
    with pytest.raises(Forbidden):
        search(store, asked)
    with pytest.raises(Forbidden):
        search(store, asked, role="investor")
    drafts = search(store, asked, role="planner")
    want = store.read("plots", where={"status": "candidate"})["plot_id"]
    assert sorted(drafts.rows["plot_id"]) == sorted(want) and drafts.matched == len(want)
    # the public's records carry exactly the policy's fields, plus the facts
    public = search(store, parse_filters({"limit": "3"}))
    assert set(public.records()[0]) == set(plot_view(None).fields) | set(cat.FACT_COLUMNS)
    assert set(drafts.records()[0]) == set(plot_view("planner").fields) | set(cat.FACT_COLUMNS)


def test_whole_zone_count_is_kept_per_revision(synthetic):
    location, store = synthetic
    filters = parse_filters({"limit": "2", "status": "available,reserved"})
    before = search(store, filters, role="planner").matched
    assert search(store, filters, role="planner").matched == before
    other = open_store(location)  # a write through another connection, as another process
    try:
        pid = other.read("plots", where={"status": "available"})["plot_id"].iloc[0]
        other.update("plots", pid, {"status": "candidate"})
        try:
            assert search(store, filters, role="planner").matched == before - 1
        finally:
            other.update("plots", pid, {"status": "available"})
    finally:
        other.close()
    assert search(store, filters, role="planner").matched == before


def test_sample_zone_with_its_servicing_model(sample_location):
    from usecases.servicing import LiveServicing

    store = open_store(sample_location)
    try:
        model = LiveServicing().model(store, dt.date(2024, 6, 1))
        for query in (
            {},
            {"sector": "food", "sort": "-area_ha", "limit": "20", "offset": "3"},
            {"min_area": "1", "sector": "logistics", "limit": "1000"},
            {"bbox": _box(store, (0.2, 0.2, 0.8, 0.8)), "sector": "light", "limit": "50"},
        ):
            filters = parse_filters(query)
            matched, ids, _ = _reference(store, filters, "planner")
            page = search(store, filters, role="planner", servicing=model)
            assert (page.matched, page.rows["plot_id"].tolist()) == (matched, ids), query
            facts = cat.facts_for(model, ids, None)
            for record, pid in zip(page.records(), ids):
                for column in cat.FACT_COLUMNS:
                    want = facts.loc[pid, column]
                    if isinstance(want, float) and np.isnan(want):
                        want = None
                    elif column in ("rail", "power", "water"):
                        want = bool(want)
                    assert record[column] == (list(want) if column == "waits_for" else want)
        # the servicing filters (columnar path) still page alike
        a = search(store, parse_filters({"min_power": "0", "limit": "5"}), servicing=model)
        b = search(store, parse_filters({"min_power": "0", "limit": "1000"}), servicing=model)
        assert a.rows["plot_id"].tolist() == b.rows["plot_id"].tolist()[:5]
        assert not pd.isna(a.matched)
    finally:
        store.close()


def test_a_sector_only_export_is_the_catalogues_answer(synthetic):
    from usecases.exports import ExportQuery, export_where

    _, store = synthetic
    where = export_where(store, "plots", ExportQuery(sector="pharma"), role="investor")
    want = search(
        store,
        parse_filters({"sector": "pharma", "status": ",".join(plot_view(None).statuses)}),
        role="investor",
    )
    assert where is not None and sorted(where["plot_id"]) == sorted(want.rows["plot_id"])
    assert 0 < want.matched < len(store.read("plots"))
