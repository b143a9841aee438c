"""The framework-free catalogue: filter validation, store + servicing queries, GeoJSON."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pytest
import shapely

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer
from geo.store import NotFound, create_store
from planner import catalogue as cat
from planner.catalogue import Forbidden, QueryError, parse_filters, search

E, N = 650_000.0, 4_799_000.0
REPAIRED = dt.date(2022, 10, 30)


class FakeServicing:
    """The ServicingModel interface: answers per plot, rail only after the repairs."""

    def __init__(self, plots: gpd.GeoDataFrame):
        self.plots = plots.set_index("plot_id")
        self.calls: list[tuple[int, dt.date]] = []

    def answer(self, plot_ids=None, *, as_of=None, what_if=None):
        ids = list(self.plots.index) if plot_ids is None else list(plot_ids)
        self.calls.append((len(ids), as_of))
        out = []
        for pid in ids:
            n = int(pid.split("-")[1])
            rail = n % 2 == 0 and as_of is not None and as_of > REPAIRED
            out.append(
                {
                    "plot_id": pid,
                    "road": {"available": True},
                    "rail": {"available": rail, "distance_m": 100.0 * n},
                    "power": {"available": n % 3 != 0, "headroom_kw": 500.0 * n, "fits": True},
                    "water": {"available": True, "headroom_m3d": 10.0 * n},
                    "ready": "now"
                    if n % 4 == 0
                    else ("unknown" if n % 4 == 1 else f"2023-0{n % 9 + 1}-15"),
                }
            )
        return out

    def facts(self, as_of=None, plot_ids=None):
        """Every plot's (or ``plot_ids``') catalogue facts, by column (from the records,
        as the model's are)."""
        if plot_ids is None:
            return cat.servicing_facts(self.answer(None, as_of=as_of))
        known = [p for p in plot_ids if p in self.plots.index]
        return cat.servicing_facts(self.answer(known, as_of=as_of)).reindex(list(plot_ids))


def _plots(n: int = 12) -> gpd.GeoDataFrame:
    """A row of plots P-01..P-n, 100 m deep, i ha each (10 * i m wide x 100 m... scaled)."""
    geoms, x = [], 0.0
    for i in range(1, n + 1):
        width = 100.0 * i  # i hectares
        geoms.append(shapely.box(E + x, N, E + x + width, N + 100.0))
        x += width + 20.0
    return gpd.GeoDataFrame(
        {
            "plot_id": [f"P-{i:02d}" for i in range(1, n + 1)],
            "status": ["reserved" if i in (3, 7) else "available" for i in range(1, n + 1)],
            "sectors": [
                "*" if i % 2 else ("food,light" if i % 4 else "chemicals") for i in range(1, n + 1)
            ],
            "resident": ["ТОО «Алатау»" if i == 3 else None for i in range(1, n + 1)],
        },
        geometry=geoms,
        crs=WORKING_EPSG,
    )


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def zone(request, tmp_path_factory):
    """Twelve plots in a row on each backend; the catalogue only reads, so one store
    serves the module."""
    location = (
        str(tmp_path_factory.mktemp("catalogue") / "z.gpkg")
        if request.param == "gpkg"
        else request.getfixturevalue("new_database")()
    )
    zone = create_store(location)
    zone.insert("plots", _plots())
    yield zone
    zone.close()


@pytest.fixture()
def model(zone):
    return FakeServicing(zone.read("plots"))


def ids(page) -> list[str]:
    return page.rows["plot_id"].tolist()


AVAILABLE = [f"P-{i:02d}" for i in range(1, 13) if i not in (3, 7)]


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "params, field",
    [
        ({"min_area": "-1"}, "min_area"),
        ({"max_area": "abc"}, "max_area"),
        ({"min_area": "nan"}, "min_area"),
        ({"min_area": "5", "max_area": "2"}, "max_area"),
        ({"sector": "oil"}, "sector"),
        ({"rail": "maybe"}, "rail"),
        ({"bbox": "76,43,77"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "77,43,76,44"}, "bbox"),
        ({"bbox": "76,-95,77,44"}, "bbox"),
        ({"limit": "10001"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"offset": "-3"}, "offset"),
        ({"ready_by": "2024-02-30"}, "ready_by"),
        ({"status": "available,sold"}, "status"),
        ({"sort": "price"}, "sort"),
        ({"min_are": "5"}, "min_are"),
    ],
)
def test_bad_parameters_name_the_field(params, field):
    with pytest.raises(QueryError) as err:
        parse_filters(params)
    assert err.value.field == field
    assert field in str(err.value)


def test_unknown_sector_lists_the_known_ones():
    with pytest.raises(QueryError, match="use one of machine, materials"):
        parse_filters({"sector": "oil"})


def test_filters_parse_query_strings_and_round_trip():
    f = parse_filters(
        {
            "min_area": "2.5",
            "rail": "true",
            "status": "available,reserved",
            "bbox": "76.8,43.2,77,43.4",
            "ready_by": "2023-05-01",
            "sort": "-area_ha",
        }
    )
    assert f.min_area == 2.5 and f.rail is True and f.status == ("available", "reserved")
    assert f.bbox == (76.8, 43.2, 77.0, 43.4) and f.ready_by == dt.date(2023, 5, 1)
    assert parse_filters(f.query_string()) == f
    assert parse_filters({}).query_string() == {}
    assert parse_filters({}).limit == cat.DEFAULT_LIMIT


# ----------------------------------------------------------------- search


def test_default_lists_available_plots_in_id_order(zone, model):
    page = search(zone, parse_filters({}), servicing=model)
    assert ids(page) == AVAILABLE
    assert page.matched == page.returned == len(AVAILABLE)


def test_area_range_is_inclusive(zone, model):
    page = search(zone, parse_filters({"min_area": "4", "max_area": "9"}), servicing=model)
    assert ids(page) == ["P-04", "P-05", "P-06", "P-08", "P-09"]
    assert search(zone, parse_filters({"min_area": "5"}), servicing=model).matched == 7


def test_sector_filter_honours_star_and_lists(zone, model):
    food = ids(search(zone, parse_filters({"sector": "food"}), servicing=model))
    assert food == ["P-01", "P-02", "P-05", "P-06", "P-09", "P-10", "P-11"]
    chem = ids(search(zone, parse_filters({"sector": "chemicals"}), servicing=model))
    assert chem == ["P-01", "P-04", "P-05", "P-08", "P-09", "P-11", "P-12"]


def test_rail_depends_on_the_date(zone, model):
    today = search(zone, parse_filters({"rail": "true", "as_of": "2022-04-08"}), servicing=model)
    assert today.matched == 0
    later = search(zone, parse_filters({"rail": "true", "as_of": "2022-11-01"}), servicing=model)
    assert ids(later) == ["P-02", "P-04", "P-06", "P-08", "P-10", "P-12"]
    no_rail = search(zone, parse_filters({"rail": "false", "as_of": "2022-11-01"}), servicing=model)
    assert set(ids(no_rail)) == set(AVAILABLE) - set(ids(later))


def test_power_water_and_ready_filters(zone, model):
    power = ids(search(zone, parse_filters({"min_power": "2500"}), servicing=model))
    assert power == ["P-05", "P-08", "P-10", "P-11"]  # 6, 9, 12 have no power at all
    water = ids(search(zone, parse_filters({"min_water": "100"}), servicing=model))
    assert water == ["P-10", "P-11", "P-12"]
    ready = ids(search(zone, parse_filters({"ready_by": "2023-03-31"}), servicing=model))
    # now: 4, 8, 12; dated 2023-0(n%9+1): n=2 -> Mar, n=10 -> Feb, n=11 -> Mar; 1, 5, 9 unknown
    assert ready == ["P-02", "P-04", "P-08", "P-10", "P-11", "P-12"]


def test_filters_combine(zone, model):
    page = search(
        zone,
        parse_filters(
            {
                "min_area": "4",
                "sector": "chemicals",
                "min_power": "1000",
                "as_of": "2022-11-01",
                "rail": "true",
            }
        ),
        servicing=model,
    )
    assert ids(page) == ["P-04", "P-08"]


def test_bbox_uses_wgs84_and_the_index(zone, model):
    tr = transformer(WORKING_EPSG, WGS84_EPSG)
    # a box around the first 3 plots (0..620 m east of the origin)
    lon0, lat0 = tr.transform(E + 10, N + 10)
    lon1, lat1 = tr.transform(E + 500, N + 90)
    page = search(zone, parse_filters({"bbox": f"{lon0},{lat0},{lon1},{lat1}"}), servicing=model)
    assert ids(page) == ["P-01", "P-02"]
    far = search(zone, parse_filters({"bbox": "-10,-10,-9,-9"}), servicing=model)
    assert far.matched == 0 and far.feature_collection()["features"] == []


def test_paging_and_sorting(zone, model):
    page = search(
        zone, parse_filters({"limit": "3", "offset": "2", "sort": "-area_ha"}), servicing=model
    )
    assert ids(page) == ["P-10", "P-09", "P-08"] and page.matched == len(AVAILABLE)
    # the same through the in-memory path (an attribute filter forces it)
    page2 = search(
        zone,
        parse_filters({"limit": "3", "offset": "2", "sort": "-area_ha", "min_area": "0"}),
        servicing=model,
    )
    assert ids(page2) == ids(page) and page2.matched == page.matched
    power = ids(search(zone, parse_filters({"sort": "-power", "limit": "2"}), servicing=model))
    assert power == ["P-11", "P-10"]
    ready = ids(search(zone, parse_filters({"sort": "ready", "limit": "3"}), servicing=model))
    assert ready == ["P-04", "P-08", "P-12"]  # "now" first
    beyond = search(zone, parse_filters({"offset": "50"}), servicing=model)
    assert beyond.returned == 0 and beyond.matched == len(AVAILABLE)


def test_any_visible_status_may_be_asked_candidates_for_planners_only(zone, model):
    for role in (None, "investor", "planner"):
        page = search(zone, parse_filters({"status": "reserved"}), role=role, servicing=model)
        assert ids(page) == ["P-03", "P-07"]
    with pytest.raises(Forbidden) as err:
        search(zone, parse_filters({"status": "candidate"}), role="investor", servicing=model)
    assert err.value.field == "status"
    with pytest.raises(Forbidden):
        search(zone, parse_filters({"status": "available,candidate"}), role=None, servicing=model)
    public = search(zone, parse_filters({"status": "reserved"}), servicing=model).records()
    staff = search(
        zone, parse_filters({"status": "reserved"}), role="admin", servicing=model
    ).records()
    assert "resident" not in public[0] and "project" not in public[0]
    assert "resident" in staff[0] and "power_kw" in staff[0]


def test_servicing_answers_are_cached_per_model_and_date(zone, model):
    f = parse_filters({"rail": "true", "as_of": "2022-11-01"})
    search(zone, f, servicing=model)
    search(zone, f, servicing=model)
    search(zone, parse_filters({"min_power": "1", "as_of": "2022-11-01"}), servicing=model)
    search(zone, parse_filters({"min_power": "1"}), servicing=model)
    assert [c[1] for c in model.calls] == [dt.date(2022, 11, 1), None]
    search(zone, parse_filters({"rail": "true", "as_of": "2023-01-01"}), servicing=model)
    assert len(model.calls) == 3


def test_a_page_asks_for_its_own_plots_until_every_plots_facts_are_built(zone, model):
    """The first page after a write costs that page (the model has nothing built yet);
    once a filter has built every plot's facts, pages read them."""
    first = search(zone, parse_filters({"limit": "3"}), servicing=model)
    assert first.returned == 3 and model.calls == [(3, None)]
    assert list(first.rows["power_headroom_kw"]) == [500.0 * int(i[2:]) for i in ids(first)]
    search(zone, parse_filters({"min_power": "1"}), servicing=model)
    assert model.calls[-1] == (len(model.plots), None)
    again = search(zone, parse_filters({"limit": "3"}), servicing=model)
    assert len(model.calls) == 2 and ids(again) == ids(first)


def test_nothing_in_the_box_needs_no_answers(zone, model):
    assert (
        search(
            zone,
            parse_filters({"bbox": "76.0,43.0,76.001,43.001", "rail": "true"}),
            servicing=model,
        ).matched
        == 0
    )
    assert cat.facts_for(model, [], None).empty


def test_servicing_filters_need_a_model(zone):
    assert search(zone, parse_filters({"min_area": "3"})).matched == 8  # facts missing is fine
    with pytest.raises(ValueError, match="servicing model"):
        search(zone, parse_filters({"rail": "true"}))


def test_feature_collection_is_wgs84_geojson_with_counts(zone, model):
    fc = search(
        zone, parse_filters({"limit": "2", "as_of": "2022-11-01"}), servicing=model
    ).feature_collection()
    assert fc["type"] == "FeatureCollection"
    assert fc["numberMatched"] == len(AVAILABLE) and fc["numberReturned"] == 2
    first = fc["features"][0]
    assert first["id"] == first["properties"]["plot_id"] == "P-01"
    ring = first["geometry"]["coordinates"][0]
    assert all(76 < x < 78 and 43 < y < 44 for x, y in ring)
    assert all(len(str(x).split(".")[1]) <= 6 for x, _ in ring)
    props = fc["features"][1]["properties"]
    assert props["sectors"] == ["food", "light"] and props["area_ha"] == 2.0
    assert props["rail"] is True and props["power_headroom_kw"] == 1000.0
    assert fc["features"][0]["properties"]["sectors"] == list(cat.SECTORS)  # "*"


def test_get_plot_shows_each_role_its_fields(zone, model):
    for role in (None, "investor", "planner"):
        with pytest.raises(NotFound):
            cat.get_plot(zone, "nope", role=role)
    public = cat.plot_feature(
        cat.get_plot(zone, "P-03", role="investor", servicing=model), "investor"
    )
    assert public["id"] == "P-03" and public["properties"]["status"] == "reserved"
    assert "resident" not in public["properties"] and "rail" in public["properties"]
    rows = cat.get_plot(zone, "P-03", role="planner", servicing=model)
    feature = cat.plot_feature(rows, "planner")
    assert feature["properties"]["resident"] == "ТОО «Алатау»"


def test_layers_respect_public_flags_and_never_serve_users(zone):
    assert "users" not in cat.readable_layers("admin")
    assert "applications" not in cat.readable_layers(None)
    assert "applications" in cat.readable_layers("planner")
    summary = {s["name"]: s for s in cat.layer_summary(zone, None)}
    assert summary["plots"]["count"] == 12 and summary["plots"]["public"] is True
    staff = {s["name"]: s for s in cat.layer_summary(zone, "planner")}
    assert staff["plots"]["count"] == 12
    with pytest.raises(Forbidden):
        cat.layer_collection(zone, "applications", cat.LayerQuery(), role="investor")
    with pytest.raises(NotFound):
        cat.layer_collection(zone, "users", cat.LayerQuery(), role="admin")
    with pytest.raises(NotFound):
        cat.layer_collection(zone, "../etc", cat.LayerQuery(), role="admin")


def test_layer_collection_pages_and_keeps_cyrillic(zone):
    fc = cat.layer_collection(zone, "plots", cat.LayerQuery(limit=2, offset=1), role="planner")
    assert fc["numberMatched"] == 12 and [f["id"] for f in fc["features"]] == ["P-02", "P-03"]
    assert fc["features"][1]["properties"]["resident"] == "ТОО «Алатау»"
    public = cat.layer_collection(zone, "plots", cat.LayerQuery(limit=100), role=None)
    reserved = [f for f in public["features"] if f["id"] == "P-03"][0]["properties"]
    assert reserved["status"] == "reserved" and "resident" not in reserved
    boxed = cat.layer_collection(zone, "targets", cat.LayerQuery(bbox="76,43,77,44"), role=None)
    assert boxed["numberMatched"] == 0 and boxed["features"] == []  # no geometry in any box


# ----------------------------------------------------------------- the pages (web/catalogue.py)
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402


def _external_assets(html: str) -> list[str]:
    urls = re.findall(r'<(?:script|link)[^>]+(?:src|href)=["\']([^"\']+)', html)
    return [u for u in urls if re.match(r"(https?:)?//", u)]


def test_catalogue_page_holds_the_filters_and_loads_only_local_assets(client):
    r = client.get("/plots?min_area=5&sector=food&rail=true")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and _external_assets(html) == []
    assert 'name="min_area"' in html and 'value="5"' in html
    assert re.search(r'<option value="food"\s+selected', html)
    assert re.search(r'<option value="true"\s+selected', html)
    assert "/static/vendor/leaflet/leaflet.js" in html and "/static/catalogue.js" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # no inline scripts at all
    config = json.loads(
        re.search(r'data-config="([^"]+)"', html)
        .group(1)
        .replace("&#34;", '"')
        .replace("&quot;", '"')
        .replace("&amp;", "&")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
    )
    assert config["api"] == "/api/plots" and "__FMT__" in config["export_url"]
    bad = client.get("/plots?min_area=-4").get_data(as_text=True)
    assert "min_area" in bad and "zp-error" in bad


def test_plot_page_facts_servicing_and_apply_form(client, investor_client, planner_client, store):
    pid = store.read("plots", where={"status": "available"})["plot_id"].iloc[0]
    html = client.get(f"/plots/{pid}").get_data(as_text=True)
    assert pid in html and "zp-plot-map" in html and "/login?next=" in html
    assert "road:" in html or "дорога" in html.lower() or "zp-explain" in html
    form = investor_client.get(f"/plots/{pid}").get_data(as_text=True)
    assert f'action="/plots/{pid}/apply"' in form and 'name="csrf_token"' in form
    taken = store.read("plots", where={"status": "occupied"})["plot_id"].iloc[0]
    seen = investor_client.get(f"/plots/{taken}")
    assert seen.status_code == 200 and f'action="/plots/{taken}/apply"' not in seen.get_data(
        as_text=True
    )
    draft = store.read("plots", where={"status": "candidate"})["plot_id"].iloc[0]
    assert investor_client.get(f"/plots/{draft}").status_code == 404
    assert planner_client.get(f"/plots/{draft}").status_code == 200
    staff = planner_client.get(f"/plots/{taken}")
    assert staff.status_code == 200 and f'action="/plots/{taken}/apply"' not in staff.get_data(
        as_text=True
    )


def _token(client, path):
    from conftest import scrape_csrf

    return scrape_csrf(client.get(path).get_data(as_text=True))


def test_investor_applies_from_the_plot_page(investor_client, store):
    rows = store.read("plots", where={"status": "available"})
    pid = next(
        p
        for p, s in zip(rows["plot_id"], rows["sectors"])
        if s in (None, "*") or "food" in s.split(",")
    )
    area = float(rows.set_index("plot_id").loc[pid, "area_ha"])
    form = {
        "project": "Теплица",
        "company": "ТОО «Жасыл»",
        "sector": "food",
        "min_ha": f"{area - 0.1:.2f}",
        "max_ha": f"{area + 0.1:.2f}",
        "power_kw": "300",
        "water_m3d": "",
        "rail_need": "on",
        "jobs": "40",
    }
    assert investor_client.post(f"/plots/{pid}/apply", data=form).status_code == 400  # no CSRF
    token = _token(investor_client, f"/plots/{pid}")
    # no plot has rail today: the investor is warned first and nothing is filed
    r = investor_client.post(f"/plots/{pid}/apply", data={**form, "csrf_token": token})
    assert r.status_code == 200 and 'data-rule="rail"' in r.get_data(as_text=True)
    assert store.count("applications", where={"plot_id": pid}) == 0
    r = investor_client.post(
        f"/plots/{pid}/apply", data={**form, "csrf_token": token, "confirm": "1"}
    )
    assert r.status_code == 302 and r.headers["Location"].endswith("/applications")
    app = store.read("applications", where={"plot_id": pid}).iloc[-1]
    assert (
        app["project"] == "Теплица"
        and bool(app["rail_need"])
        and app["water_m3d"] != app["water_m3d"]
    )
    r = investor_client.post(
        f"/plots/{pid}/apply", data={**form, "min_ha": "9", "max_ha": "1", "csrf_token": token}
    )
    assert r.status_code == 422 and "below the minimum" in r.get_data(as_text=True)


def test_downloads_page_links_every_readable_layer(client, planner_client):
    html = client.get("/downloads").get_data(as_text=True)
    assert "/api/export/roads.shp.zip" in html and "/api/export/plots.gpkg" in html
    assert "applications" not in re.findall(r"/api/export/(\w+)\.", html)
    staff = planner_client.get("/downloads").get_data(as_text=True)
    assert "/api/export/applications.geojson" in staff and "/upload" in staff
    assert "/api/export/users" not in staff


def _plots_file(store, ids=("UP-1", "UP-2")) -> bytes:
    from geo.crs import WORKING_EPSG, transformer

    minx, miny, maxx, maxy = store.extent("plots")
    tr = transformer(WORKING_EPSG, 4326)
    feats = []
    for i, pid in enumerate(ids):
        x0 = maxx + 400 + 150 * i
        ring = [
            list(tr.transform(x, y))
            for x, y in (
                (x0, miny),
                (x0 + 90, miny),
                (x0 + 90, miny + 90),
                (x0, miny + 90),
                (x0, miny),
            )
        ]
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"plot_id": pid, "status": "candidate", "sectors": "*"},
            }
        )
    return json.dumps({"type": "FeatureCollection", "features": feats}).encode()


def test_upload_page_previews_then_writes_on_confirm(planner_client, investor_client, store):
    assert investor_client.get("/upload").status_code == 403
    token = _token(planner_client, "/upload")
    before = store.count("plots")
    r = planner_client.post(
        "/upload",
        content_type="multipart/form-data",
        data={
            "csrf_token": token,
            "layer": "plots",
            "file": (io.BytesIO(_plots_file(store)), "new.geojson"),
        },
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="zp-preview"' in html and store.count("plots") == before
    assert "/upload/confirm" in html
    r = planner_client.post("/upload/confirm", data={"csrf_token": token})
    assert r.status_code == 302 and store.count("plots") == before + 2
    r = planner_client.post("/upload/confirm", data={"csrf_token": token})  # nothing kept now
    assert r.status_code == 302 and store.count("plots") == before + 2


def test_upload_page_lists_rejected_features(app, planner_client, store):
    token = _token(planner_client, "/upload")
    bad = json.loads(_plots_file(store, ("UP-3", "UP-3")))
    bad["features"][0]["properties"]["status"] = "sold"
    r = planner_client.post(
        "/upload",
        content_type="multipart/form-data",
        data={
            "csrf_token": token,
            "layer": "plots",
            "file": (io.BytesIO(json.dumps(bad).encode()), "b.geojson"),
        },
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and 'id="zp-rejected"' in html and "/upload/confirm" not in html
    assert "duplicate id" in html and "sold" in html
    r = planner_client.post(
        "/upload",
        content_type="multipart/form-data",
        data={"csrf_token": token, "layer": "plots", "file": (io.BytesIO(b"garbage"), "x.gpkg")},
    )
    assert r.status_code == 422
    r = planner_client.post("/upload/cancel", data={"csrf_token": token})
    assert r.status_code == 302
    app.config["ZONEPLAN_UPLOAD_MAX_BYTES"] = 500
    r = planner_client.post(
        "/upload",
        content_type="multipart/form-data",
        data={
            "csrf_token": token,
            "layer": "plots",
            "file": (io.BytesIO(_plots_file(store)), "n.geojson"),
        },
    )
    assert r.status_code == 413
