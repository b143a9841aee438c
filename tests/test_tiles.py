"""Vector tiles and the map that draws them: tile maths, MVT contents against the API and the
store (decoded with mapbox_vector_tile), 404s, ETag/304 and per-layer revisions, the access
policy on tiles and popups, a bounded tile cache, page weight at 20,000 more plots, and
caches that survive unrelated writes."""

from __future__ import annotations

import gc
import math
import weakref

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.affinity
from markupsafe import escape

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer
from geo.tiles import (
    BUFFER,
    EXTENT,
    HALF_WORLD,
    MAX_ZOOM,
    Tile,
    TileCache,
    TileError,
    feature_ids,
    metres_per_pixel,
    nearest_within,
)

PRIVATE = {"resident", "project", "invest", "jobs", "power_kw", "water_m3d"}
PUBLIC_STATUSES = "available,reserved,allocated,occupied"


def token(store, username: str) -> dict[str, str]:
    from usecases import accounts

    return {"Authorization": f"Bearer {accounts.issue_token(store, username)}"}


def tile_of(lon: float, lat: float, z: int) -> Tile:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return Tile(z, x, y)


def lonlat_bounds(t: Tile) -> tuple[float, float, float, float]:
    return transformer(3857, WGS84_EPSG).transform_bounds(*t.bounds)


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True}) if data else {}


def features(data: bytes, layer: str) -> list[dict]:
    return decode(data).get(layer, {}).get("features", [])


def zone_centre(store) -> tuple[float, float]:
    minx, miny, maxx, maxy = store.extent("zone")
    return transformer(WORKING_EPSG, WGS84_EPSG).transform((minx + maxx) / 2, (miny + maxy) / 2)


def busiest_tile(client, store, z: int = 15, headers=None) -> tuple[Tile, list[dict]]:
    lon, lat = zone_centre(store)
    centre = tile_of(lon, lat, z)
    best = None
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            t = Tile(z, centre.x + dx, centre.y + dy)
            got = features(
                client.get(f"/tiles/plots/{z}/{t.x}/{t.y}.mvt", headers=headers).data, "plots"
            )
            if best is None or len(got) > len(best[1]):
                best = (t, got)
    return best


# --------------------------------------------------------------------------- tile maths
def test_tile_bounds_cover_the_web_mercator_square():
    assert Tile(0, 0, 0).bounds == pytest.approx((-HALF_WORLD, -HALF_WORLD, HALF_WORLD, HALF_WORLD))
    west, south, east, north = Tile(1, 1, 0).bounds  # the north-east quarter
    assert (west, south, east, north) == pytest.approx((0, 0, HALF_WORLD, HALF_WORLD))
    assert Tile(20, 5, 7).size == pytest.approx(2 * HALF_WORLD / 2**20)


@pytest.mark.parametrize(
    "z, x, y", [(-1, 0, 0), (MAX_ZOOM + 1, 0, 0), (3, 8, 0), (3, 0, 8), (3, -1, 0)]
)
def test_addresses_outside_the_pyramid_are_refused(z, x, y):
    with pytest.raises(TileError):
        Tile(z, x, y)


def test_feature_ids_are_stable_distinct_and_exact_in_javascript():
    ids = feature_ids([f"P-{i:05d}" for i in range(5000)])
    assert len(set(ids)) == 5000 and all(0 <= i < 2**53 for i in ids)
    assert feature_ids(["P-044"]) == feature_ids(["P-044"])


def test_metres_per_pixel_and_nearest_within():
    assert metres_per_pixel(0, 0.0) == pytest.approx(156543.03, rel=1e-6)
    assert metres_per_pixel(16, 60.0) == pytest.approx(156543.03 / 2**16 / 2, rel=1e-6)
    geoms = np.array([shapely.box(0, 0, 10, 10), shapely.LineString([(20, 0), (20, 10)])])
    assert nearest_within(geoms, shapely.Point(5, 5), 1.0) == 0  # inside the square
    assert nearest_within(geoms, shapely.Point(18, 5), 3.0) == 1  # 2 m from the line
    assert nearest_within(geoms, shapely.Point(15, 50), 3.0) is None
    assert nearest_within(np.array([], dtype=object), shapely.Point(0, 0), 3.0) is None


def test_tile_cache_keeps_one_revision_per_layer_view_within_its_bytes():
    cache = TileCache(max_bytes=10)
    built = []

    def build(data):
        return lambda: built.append(data) or data

    t1, t2 = Tile(15, 1, 1), Tile(15, 1, 2)
    assert cache.get_or_build("plots", "public", "r1", t1, build(b"aaaa")) == b"aaaa"
    assert cache.get_or_build("plots", "public", "r1", t1, build(b"zzzz")) == b"aaaa"  # a hit
    cache.get_or_build("plots", "public", "r1", t2, build(b"bbbb"))
    cache.get_or_build("roads", "public", "r7", t1, build(b"cc"))
    assert cache.size == (3, 10)
    # plots moved on: its older tiles go at once, roads' stay
    assert cache.get_or_build("plots", "public", "r2", t1, build(b"dd")) == b"dd"
    assert cache.size == (2, 4)
    # over the byte budget the least recently used tile goes
    cache.get_or_build("plots", "public", "r2", t2, build(b"eeeeeeee"))
    assert (
        cache.size[1] <= 10
        and cache.get_or_build("plots", "public", "r2", t2, build(b"x")) == b"eeeeeeee"
    )
    assert built == [b"aaaa", b"bbbb", b"cc", b"dd", b"eeeeeeee"]


# --------------------------------------------------------------------------- tile contents
def test_a_plot_tile_holds_what_the_api_lists_in_its_box(client, store):
    t, got = busiest_tile(client, store)
    assert got, "no plots in the tiles around the zone centre"
    w, s, e, n = lonlat_bounds(t)
    api = client.get(
        f"/api/plots?bbox={w},{s},{e},{n}&limit=1000&status={PUBLIC_STATUSES}"
    ).get_json()
    listed = {f["id"] for f in api["features"]}
    in_tile = {f["properties"]["plot_id"] for f in got}
    assert listed and listed <= in_tile
    # the rest lie in the buffer that makes outlines join across tile edges
    pad = (e - w) * BUFFER / EXTENT * 1.01
    near = client.get(
        f"/api/plots?bbox={w - pad},{s - pad},{e + pad},{n + pad}&limit=1000"
        f"&status={PUBLIC_STATUSES}"
    )
    assert in_tile <= {f["id"] for f in near.get_json()["features"]}
    # integer ids from the text id; properties for styling only
    for f in got:
        assert f["id"] == feature_ids([f["properties"]["plot_id"]])[0]
        assert set(f["properties"]) == {"plot_id", "status", "area_ha"}


def test_tile_geometry_lands_where_the_plot_is(client, store):
    t, got = busiest_tile(client, store, z=16)
    for f in got:
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
        rings = (
            f["geometry"]["coordinates"]
            if f["geometry"]["type"] == "Polygon"
            else [r for p in f["geometry"]["coordinates"] for r in p]
        )
        assert all(-BUFFER <= v <= EXTENT + BUFFER for r in rings for xy in r for v in xy)
    inside = [
        f
        for f in got
        if f["geometry"]["type"] == "Polygon"
        and all(0 < v < EXTENT for xy in f["geometry"]["coordinates"][0] for v in xy)
    ]
    assert inside, "no plot lies wholly inside the tile"
    f = inside[0]
    plot = store.get("plots", f["properties"]["plot_id"])["geometry"]
    minx, _, _, maxy = t.bounds
    scale = t.size / EXTENT
    ring = np.array(f["geometry"]["coordinates"][0], dtype=float)
    x, y = transformer(3857, WORKING_EPSG).transform(
        minx + ring[:, 0] * scale, maxy - ring[:, 1] * scale
    )
    back = shapely.Polygon(np.column_stack([x, y]))
    # the same outline within about a grid unit (0.15 m at z16, 0.11 m on the ground here)
    assert shapely.hausdorff_distance(back, plot) < 2 * scale
    assert back.area == pytest.approx(plot.area, rel=0.01)


def test_infrastructure_layers_are_tiled_with_their_status(client, store):
    lon, lat = zone_centre(store)
    t = tile_of(lon, lat, 13)
    for layer, key in (
        ("roads", "asset_id"),
        ("substations", "asset_id"),
        ("zone", "zone_id"),
        ("rail_lines", "asset_id"),
    ):
        got = features(client.get(f"/tiles/{layer}/13/{t.x}/{t.y}.mvt").data, layer)
        assert got, layer
        stored = store.read(layer).set_index(key)
        for f in got:
            props = f["properties"]
            if "status" in stored.columns:
                assert props["status"] == stored.loc[props[key], "status"]
    roads = features(client.get(f"/tiles/roads/13/{t.x}/{t.y}.mvt").data, "roads")
    assert {"class", "name", "status", "asset_id"} >= set(roads[0]["properties"])
    assert decode(client.get(f"/tiles/roads/13/{t.x}/{t.y}.mvt").data)["roads"]["extent"] == EXTENT


def test_an_empty_tile_is_200_with_no_body(client):
    r = client.get("/tiles/plots/10/0/0.mvt")
    assert r.status_code == 200 and r.data == b""
    assert r.mimetype == "application/vnd.mapbox-vector-tile"


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/nosuchlayer/15/1/1.mvt",
        "/tiles/users/1/0/0.mvt",
        "/tiles/applications/1/0/0.mvt",
        "/tiles/audit/1/0/0.mvt",
        "/tiles/plots/3/8/0.mvt",
        "/tiles/plots/3/0/8.mvt",
        "/tiles/plots/23/0/0.mvt",
        "/tiles/plots/3/-1/0.mvt",
        "/tiles/plots/a/0/0.mvt",
        "/tiles/..%2F..%2Fetc/1/0/0.mvt",
    ],
)
def test_unknown_layers_and_addresses_are_404(client, path):
    assert client.get(path).status_code == 404


# --------------------------------------------------------------------------- caching
def test_etag_revalidates_and_follows_only_the_tiles_layer(client, store):
    t, got = busiest_tile(client, store)
    url = f"/tiles/plots/{t.z}/{t.x}/{t.y}.mvt"
    first = client.get(url)
    etag = first.headers["ETag"]
    assert etag and first.headers["Cache-Control"] == "public, no-cache"
    assert {"Authorization", "Cookie"} <= set(first.vary)
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    # a write to another layer keeps the tile's validator
    road = store.read("roads", limit=1).iloc[0]
    store.update("roads", road["asset_id"], {"note": "resurfaced"})
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    # a write to the plots makes a new tile that shows it
    pid = got[0]["properties"]["plot_id"]
    store.update("plots", pid, {"status": "reserved"})
    fresh = client.get(url, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    assert (
        pid not in {f["properties"]["plot_id"] for f in features(fresh.data, "plots")}
        or {
            f["properties"]["plot_id"]: f["properties"]["status"]
            for f in features(fresh.data, "plots")
        }[pid]
        == "reserved"
    )


# --------------------------------------------------------------------------- the access policy
def test_public_tiles_hide_candidates_and_private_fields_planners_see_them(client, store):
    planner = token(store, "planner")
    candidates = store.read("plots", where={"status": "candidate"})
    assert len(candidates), "the sample has candidate plots"
    centre = candidates.geometry.iloc[0].representative_point()
    lon, lat = transformer(WORKING_EPSG, WGS84_EPSG).transform(centre.x, centre.y)
    t = tile_of(lon, lat, 15)
    url = f"/tiles/plots/15/{t.x}/{t.y}.mvt"
    public = features(client.get(url).data, "plots")
    staff = client.get(url, headers=planner)
    staff_features = features(staff.data, "plots")
    assert "candidate" not in {f["properties"]["status"] for f in public}
    assert candidates["plot_id"].iloc[0] in {f["properties"]["plot_id"] for f in staff_features}
    for f in public + staff_features:
        assert not PRIVATE & set(f["properties"])
    # a planner's answer is private and validates separately from the public one
    assert staff.headers["Cache-Control"] == "private, no-cache"
    assert staff.headers["ETag"] != client.get(url).headers["ETag"]
    assert client.get(url, headers={"If-None-Match": staff.headers["ETag"]}).status_code == 200


def test_popups_follow_the_policy(client, store):
    planner = token(store, "planner")
    candidate = store.read("plots", where={"status": "candidate"}).iloc[0]["plot_id"]
    assert client.get(f"/map/features/plots/{candidate}").status_code == 404
    assert client.get("/map/features/plots/NO-SUCH").status_code == 404
    assert client.get("/map/features/users/admin").status_code == 404
    staff = client.get(f"/map/features/plots/{candidate}", headers=planner)
    assert staff.status_code == 200 and staff.get_json()["id"] == candidate
    occupied = store.read("plots", where={"status": "occupied"}).iloc[0]
    assert occupied["resident"], "the sample's occupied plots name their residents"
    seen = client.get(f"/map/features/plots/{occupied['plot_id']}")
    assert seen.status_code == 200  # the public sees occupied plots, not who holds them
    assert str(escape(occupied["resident"])) not in seen.get_json()["html"]
    staff = client.get(f"/map/features/plots/{occupied['plot_id']}", headers=planner).get_json()
    assert str(escape(occupied["resident"])) in staff["html"]


def test_a_click_picks_the_topmost_feature_the_role_may_see(client, store):
    planner = token(store, "planner")
    plots = store.read("plots")
    for status in ("available", "candidate"):
        row = plots[plots["status"] == status].iloc[0]
        inner = row.geometry.representative_point()
        lon, lat = transformer(WORKING_EPSG, WGS84_EPSG).transform(inner.x, inner.y)
        q = f"/map/features?at={lon},{lat}&zoom=19&layers=plots,zone"
        staff = client.get(q, headers=planner).get_json()
        assert (staff["layer"], staff["id"]) == ("plots", row["plot_id"])
        public = client.get(q).get_json()
        if status == "candidate":  # the public sees the zone under it, never the candidate
            assert public["layer"] != "plots" and row["plot_id"] not in (public["html"] or "")
        else:
            assert public["id"] == row["plot_id"] and row["plot_id"] in public["html"]
    far = client.get("/map/features?at=10.0,10.0&zoom=15&layers=plots,zone").get_json()
    assert far == {"layer": None, "id": None, "bbox": None, "html": None}


@pytest.mark.parametrize(
    "query", ["", "at=1,2", "at=a,b&zoom=3", "at=1,2,3&zoom=3", "at=200,0&zoom=3", "at=0,0&zoom=40"]
)
def test_bad_picks_are_400(client, query):
    r = client.get("/map/features?" + query)
    assert r.status_code == 400 and r.get_json()["field"] == "at"


# --------------------------------------------------------------------------- page weight
def grid_plots(store, n: int) -> gpd.GeoDataFrame:
    """``n`` 30 m squares on a grid south of the zone (inside the import envelope)."""
    minx, miny, _, _ = store.extent("zone")
    side = int(math.ceil(math.sqrt(n)))
    i, j = np.divmod(np.arange(n), side)
    x, y = minx + i * 32.0, miny - 200.0 - j * 32.0
    return gpd.GeoDataFrame(
        {
            "plot_id": [f"G-{k:05d}" for k in range(n)],
            "status": "available",
            "sectors": "*",
            "hazard_ok": 5,
        },
        geometry=shapely.box(x - 30, y - 30, x, y),
        crs=WORKING_EPSG,
    )


def test_map_page_stays_small_whatever_the_store_holds(client, store):
    sample = client.get("/").data
    assert len(sample) < 300_000
    store.insert("plots", grid_plots(store, 20_000))
    big = client.get("/").data
    assert len(big) < 300_000 and len(big) < 1.5 * len(sample)
    assert b"G-00001" not in big
    # the new plots are in the tiles
    w, s, e, n = transformer(WORKING_EPSG, WGS84_EPSG).transform_bounds(*store.extent("plots"))
    t = tile_of(w + 0.002, s + 0.002, 15)
    got = features(client.get(f"/tiles/plots/15/{t.x}/{t.y}.mvt").data, "plots")
    assert any(f["properties"]["plot_id"].startswith("G-") for f in got)


def test_html_and_json_are_compressed(client):
    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert page.headers.get("Content-Encoding") == "gzip"
    api = client.get("/api/plots?limit=200", headers={"Accept-Encoding": "br, gzip"})
    assert api.headers.get("Content-Encoding") == "br" and "Accept-Encoding" in api.vary


# --------------------------------------------------------------------------- caches and writes
def test_unrelated_writes_keep_the_servicing_model(app, store):
    from web import deps

    with app.test_request_context("/"):
        model = deps.servicing_model()
        store.insert(
            "applications",
            pd.DataFrame(
                [
                    {
                        "app_id": "A-T1",
                        "investor": "investor",
                        "project": "bar",
                        "sector": "food",
                        "min_ha": 0.0,
                        "max_ha": 1.0,
                        "status": "submitted",
                    }
                ]
            ),
        )
        from usecases import accounts

        accounts.set_lang(store, "investor", "en")
        assert deps.servicing_model() is model
        pid = store.read("plots", limit=1).iloc[0]["plot_id"]
        store.update("plots", pid, {"cadastre": "999"})
        updated = deps.servicing_model()
        assert updated is not model and deps.servicing_model() is updated
        # the superseded model is dropped, not kept beside the new one
        superseded = weakref.ref(model)
        del model
        gc.collect()
        assert superseded() is None


def _drawn(data: bytes, layer: str) -> dict[int, tuple[dict, shapely.Geometry]]:
    out = {}
    for f in features(data, layer):
        out[f["id"]] = (f["properties"], shapely.geometry.shape(f["geometry"]))
    return out


@pytest.mark.parametrize("role", ["public", "investor", "planner"])
def test_postgis_cuts_the_features_the_generic_encoder_cuts(
    sample_db, sample_pg, new_database, role
):
    """ST_AsMVT (PostGIS's override of Store.vector_tile) against the generic encoder on the
    same database and on the GeoPackage: the same features, ids and attributes for the role,
    geometries alike up to the grid snapping each does."""
    from geo.store import open_store
    from geo.store.base import Store
    from web.tiles import layer_view

    gpkg, pg = open_store(sample_db), open_store(new_database(sample_pg))
    minx, miny, maxx, maxy = transformer(WORKING_EPSG, WGS84_EPSG).transform_bounds(
        *gpkg.extent("zone")
    )
    compared = 0
    for layer in ("plots", "roads", "substations", "prot_zones"):
        view = layer_view(layer, role)
        for z in (13, 15, 16):
            corners = {tile_of(lon, lat, z) for lon in (minx, maxx) for lat in (miny, maxy)}
            centre = tile_of((minx + maxx) / 2, (miny + maxy) / 2, z)
            for t in sorted(corners | {centre}, key=lambda t: (t.x, t.y)):
                kw = {"properties": view.properties(), "where": view.where}
                native = _drawn(pg.vector_tile(layer, t, **kw), layer)
                generic = _drawn(Store.vector_tile(pg, layer, t, **kw), layer)
                assert (
                    native.keys()
                    == generic.keys()
                    == _drawn(gpkg.vector_tile(layer, t, **kw), layer).keys()
                )
                for fid, (props, geom) in native.items():
                    assert props == pytest.approx(generic[fid][0]), (layer, fid)
                    # both snap to the grid; the generic encoder also simplifies by a unit
                    assert shapely.hausdorff_distance(geom, generic[fid][1]) <= 3.0, (
                        layer,
                        fid,
                        t,
                    )
                    compared += 1
    assert compared > 50
    statuses = {
        p.get("status")
        for p, _ in _drawn(
            pg.vector_tile(
                "plots",
                tile_of((minx + maxx) / 2, (miny + maxy) / 2, 12),
                properties=layer_view("plots", role).properties(),
                where=layer_view("plots", role).where,
            ),
            "plots",
        ).values()
    }
    assert ("candidate" in statuses) is (role == "planner")


def test_revisions_read_at_once_equal_each_layers_own(sample_location):
    from geo.store import open_store

    store = open_store(sample_location)
    names = ["plots", "roads", "substations", "zone"]
    assert store.revisions(names) == {name: store.revision([name]) for name in names}
    before = store.revisions(names)
    sub = store.read("substations", limit=1).iloc[0]
    with store.transaction() as tx:
        tx.update("substations", str(sub["asset_id"]), {"note": "revisions test"})
    after = store.revisions(names)
    assert after == {name: store.revision([name]) for name in names}
    assert [n for n in names if after[n] != before[n]] == ["substations"]


def _tile_columns_wrong(url: str) -> dict[str, int]:
    """Per table with the derived tile columns (geo.store.pg_derived): its rows, and those
    whose stored Web Mercator geometry or feature id disagree with the row itself."""
    import psycopg

    from geo.layers import LAYERS
    from geo.store.overview_sql import TABLE
    from geo.store.pg_derived import BLOCK_KEY, MERCATOR, TILE_ID
    from geo.tiles import FEATURE_ID_SQL

    keys = {name: f'"{lyr.key}"' for name, lyr in LAYERS.items() if lyr.is_feature}
    keys[TABLE] = BLOCK_KEY
    out = {}
    with psycopg.connect(url) as conn:
        for table, key in keys.items():
            rows, wrong = conn.execute(
                f"SELECT count(*), count(*) FILTER (WHERE {MERCATOR} IS DISTINCT FROM "
                f"ST_AsEWKB(ST_Transform(geom, 3857)) OR {TILE_ID} IS DISTINCT FROM "
                f"{FEATURE_ID_SQL.format(key)}) FROM {table}"
            ).fetchone()
            out[table] = (rows, wrong)
    return out


def test_postgis_keeps_each_rows_tile_geometry_and_id_through_every_write(sample_pg, new_database):
    """The Web Mercator geometry and feature id PostGIS stores beside each row follow a
    restore (the sample was copied in by COPY), inserts, status edits, moves, deletes and a
    layer replaced, and the tile draws a moved plot where it went, under its own id."""
    from geo.store import open_store

    url = new_database(sample_pg)
    store = open_store(url)

    def check() -> None:
        found = _tile_columns_wrong(url)
        assert found["plots"][0] > 0 and found["zoneplan_plot_overview"][0] > 0
        assert {t: w for t, (_, w) in found.items() if w} == {}

    check()
    minx, miny, maxx, maxy = store.extent("zone")
    grid = gpd.GeoDataFrame(
        {
            "plot_id": [f"D-{i}" for i in range(9)],
            "status": ["available", "candidate", "occupied"] * 3,
            "geometry": [
                shapely.box(
                    maxx + 300 + 25 * (i % 3),
                    miny + 25 * (i // 3),
                    maxx + 320 + 25 * (i % 3),
                    miny + 20 + 25 * (i // 3),
                )
                for i in range(9)
            ],
        },
        crs=store.epsg,
    )
    store.insert("plots", grid)
    check()
    store.update("plots", "D-0", {"status": "reserved"})
    moved = shapely.affinity.translate(store.get("plots", "D-1")["geometry"], 2000.0, 500.0)
    store.update("plots", "D-1", {"geometry": moved})
    store.delete("plots", "D-2")
    check()
    lon, lat = transformer(store.epsg, WGS84_EPSG).transform(*moved.centroid.coords[0])
    t = tile_of(lon, lat, 16)
    drawn = _drawn(store.vector_tile("plots", t, properties=("status",)), "plots")
    (props, geom) = drawn[feature_ids(["D-1"])[0]]
    x0, y0, x1, y1 = t.bounds
    mx, my = transformer(store.epsg, 3857).transform(*moved.centroid.coords[0])
    here = ((mx - x0) / (x1 - x0) * EXTENT, (y1 - my) / (y1 - y0) * EXTENT)
    assert props["plot_id"] == "D-1" and geom.distance(shapely.Point(here)) < 2.0
    with store.transaction() as tx:
        tx.replace("plots", grid)
    check()
    store.close()


def test_an_older_postgis_store_gains_the_tile_columns_and_cuts_the_same_tiles(
    sample_pg, new_database
):
    """A store made before the derived tile columns is migrated when opened (one numbered
    migration per table), its partial indexes of big plots are made again on the plots'
    size column, and its tiles keep every feature, id and attribute."""
    import psycopg

    from geo import overview
    from geo.store import open_store
    from geo.store.pg_derived import MERCATOR, READY_TYPE, SIZE, SIZE_SQL, TILE_ID
    from web.tiles import STYLE_PROPERTIES

    url = new_database(sample_pg)
    store = open_store(url)
    minx, miny, maxx, maxy = transformer(WORKING_EPSG, WGS84_EPSG).transform_bounds(
        *store.extent("zone")
    )
    tiles = [tile_of((minx + maxx) / 2, (miny + maxy) / 2, z) for z in (10, 12, 13, 14, 15)]
    layers = ("plots", "roads", "zone")

    def cut() -> dict:
        return {
            (layer, t): _drawn(
                store.vector_tile(layer, t, properties=STYLE_PROPERTIES[layer]), layer
            )
            for layer in layers
            for t in tiles
        }

    before = cut()
    store.close()
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.columns "
                "WHERE column_name = %s AND table_schema = current_schema()",
                (MERCATOR,),
            )
        ]
        for table in tables:
            conn.execute(f'ALTER TABLE "{table}" DROP COLUMN {MERCATOR}, DROP COLUMN {TILE_ID}')
        conn.execute(f"ALTER TABLE plots DROP COLUMN {SIZE}")  # and its partial indexes
        # the ready outlines of plots and blocks with their type, which the migration makes
        conn.execute(f"DROP DOMAIN {READY_TYPE} CASCADE")
        for level in (12, 13):  # the older indexes, on the geometry's box
            conn.execute(
                f"CREATE INDEX plots_geom_big{level} ON plots USING gist (geom) "
                f"WHERE {SIZE_SQL} >= {overview.min_size(level, store.epsg)}"
            )
    assert {"plots", "zone", "zoneplan_plot_overview"} <= set(tables)
    store = open_store(url)
    with psycopg.connect(url) as conn:
        notes = [r[0] for r in conn.execute("SELECT note FROM zoneplan_migrations")]
        indexed = [
            r[0]
            for r in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'plots_geom_big%'"
            )
        ]
    assert {f"derive the tile columns of {t}" for t in tables} <= set(notes)
    assert "index the big plots by their size" in notes
    assert len(indexed) == 2 and all(f"({SIZE} >=" in d for d in indexed), indexed
    after = cut()
    assert sum(len(v) for v in before.values()) > 20
    for where, drawn in before.items():
        assert after[where].keys() == drawn.keys(), where
        for fid, (props, geom) in drawn.items():
            assert after[where][fid][0] == props and after[where][fid][1].equals(geom), where
    store.close()
