"""The plot overview (geo.overview) on real GeoPackage and PostGIS stores: blocks kept
current by every kind of plot write (each write's incremental result equals a rebuild from
scratch), tiles that carry blocks instead of small plots at low zooms and single plots
where they can be seen, the access policy on blocks, and clicks on blocks."""

from __future__ import annotations

import math

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pytest
import shapely

from geo import overview
from geo.crs import WGS84_EPSG, transformer
from geo.store import open_store
from geo.tiles import Tile

PITCH = 25.0  # metres: every small plot is ~20 m, under 3 px at z12 and z13
SIDE = 20.0


def small_plots(store, n: int = 6, statuses=("available", "candidate", "occupied")):
    """An ``n`` x ``n`` grid of 20 m plots east of the zone, statuses in turn."""
    minx, miny, maxx, maxy = store.extent("zone")
    x0, y0 = maxx + 300.0, (miny + maxy) / 2
    rows = []
    for i in range(n * n):
        x, y = x0 + (i % n) * PITCH, y0 + (i // n) * PITCH
        rows.append(
            {
                "plot_id": f"T-{i:03d}",
                "status": statuses[i % len(statuses)],
                "geometry": shapely.box(x, y, x + SIDE, y + SIDE),
            }
        )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=store.epsg)


def snapshot(store) -> list[tuple]:
    """Every block of every level, comparable across rebuilds."""
    out = []
    for level in overview.LEVELS:
        for b in store.plot_blocks(level, (-1e9, -1e9, 1e9, 1e9), None) or []:
            geom = shapely.normalize(shapely.set_precision(b.geometry, 0.01))
            out.append((b.level, b.cx, b.cy, b.status, b.plots, round(geom.area, 1)))
    return sorted(out)


def big_indexed(store) -> dict[int, set[int]] | None:
    """GeoPackage: the plots each level's own R-tree of big plots holds."""
    from geo.store import overview_sql

    if not hasattr(store, "path"):
        return None
    with store._reading() as conn:
        return {
            level: {
                r[0] for r in conn.execute(f"SELECT id FROM {overview_sql.gpkg_big_rtree(level)}")
            }
            for level in overview_sql.GPKG_INDEXED_LEVELS
        }


def assert_current(store) -> list[tuple]:
    """The incrementally kept overview (and GeoPackage's R-trees of big plots) equals one
    rebuilt from scratch."""
    kept, big = snapshot(store), big_indexed(store)
    store.build_overview()
    assert snapshot(store) == kept
    assert big_indexed(store) == big
    return kept


def counts(snap, level: int = 12) -> dict[str, int]:
    out: dict[str, int] = {}
    for lv, _cx, _cy, status, plots, _area in snap:
        if lv == level:
            out[status] = out.get(status, 0) + plots
    return out


def tile_at(store, x: float, y: float, z: int) -> Tile:
    lon, lat = transformer(store.epsg, WGS84_EPSG).transform(x, y)
    n = 1 << z
    return Tile(
        z,
        int((lon + 180) / 360 * n),
        int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n),
    )


def decoded(data: bytes) -> list[dict]:
    if not data:
        return []
    tile = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    return tile.get("plots", {}).get("features", [])


@pytest.fixture
def sample(sample_location):
    store = open_store(sample_location)
    yield store
    store.close()


def test_the_size_rule_and_levels():
    assert overview.level_of(16) is None and overview.level_of(15) is None
    assert overview.level_of(14) == 14 and overview.level_of(12) == 12
    assert overview.level_of(9) == overview.MIN_LEVEL  # further out: the coarsest blocks
    # UTM 43N: about cos(42 deg) store metres per Web Mercator metre at its area's centre
    assert overview.store_scale(32643) == pytest.approx(math.cos(math.radians(42)), rel=0.01)
    assert overview.store_scale(3857) == pytest.approx(1.0)
    # 3 px at z12 is ~85 m on the ground at this latitude: each zoom halves it
    assert 80 < overview.min_size(12, 32643) < 90
    assert overview.min_size(13, 32643) == pytest.approx(overview.min_size(12, 32643) / 2, rel=1e-4)


def test_blocks_follow_every_kind_of_plot_write(sample):
    store = sample
    before = assert_current(store)
    grid = small_plots(store)
    store.insert("plots", grid)
    after = assert_current(store)
    added = {s: counts(after).get(s, 0) - counts(before).get(s, 0) for s in set(grid["status"])}
    assert added == grid["status"].value_counts().to_dict()
    # a status change moves the plot from one status's block to another's
    store.update("plots", "T-000", {"status": "reserved"})
    snap = assert_current(store)
    assert counts(snap)["reserved"] == counts(after).get("reserved", 0) + 1
    assert counts(snap)["available"] == counts(after)["available"] - 1
    # a move far away: the old cell loses it, a new cell gains it
    moved = shapely.affinity.translate(store.get("plots", "T-001")["geometry"], 3000.0, 0.0)
    store.update("plots", "T-001", {"geometry": moved})
    snap = assert_current(store)
    here = [
        b
        for b in store.plot_blocks(12, moved.bounds, ["candidate"])
        if b.geometry.intersects(moved)
    ]
    assert len(here) == 1 and here[0].plots == 1
    # a big plot moved stays a single feature where it went (its own index follows it)
    big = store.read("plots", where={"status": ["available"]}).iloc[0]
    there = shapely.affinity.translate(big.geometry, 0.0, -2000.0)
    store.update("plots", big["plot_id"], {"geometry": there})
    snap = assert_current(store)
    cx, cy = there.centroid.coords[0]
    got = decoded(store.vector_tile("plots", tile_at(store, cx, cy, 12), properties=("status",)))
    assert big["plot_id"] in {f["properties"].get("plot_id") for f in got}
    # an attribute edit touches no block; a delete takes the plot out
    store.update("plots", "T-002", {"cadastre": "X-1"})
    assert assert_current(store) == snap
    store.delete("plots", "T-001")
    snap = assert_current(store)
    assert not [
        b for b in store.plot_blocks(12, moved.bounds, None) if b.geometry.intersects(moved)
    ]
    # replacing the layer (an import with --replace) rebuilds it
    with store.transaction() as tx:
        tx.replace("plots", grid)
    assert counts(assert_current(store)) == grid["status"].value_counts().to_dict()


def test_tiles_carry_blocks_at_low_zooms_and_plots_where_they_are_seen(sample):
    store = sample
    grid = small_plots(store)
    store.insert("plots", grid)
    x, y = grid.geometry.iloc[0].centroid.coords[0]
    props = ("status", "area_ha")
    for z in (12, 13):
        got = decoded(store.vector_tile("plots", tile_at(store, x, y, z), properties=props))
        ids = {f["properties"].get("plot_id") for f in got}
        assert not ids & set(grid["plot_id"]), z  # small plots are not sent one by one
        blocks = [f for f in got if "plots" in f["properties"]]
        assert blocks and all("plot_id" not in f["properties"] for f in blocks)
        assert {f["properties"]["status"] for f in blocks} >= set(grid["status"])
        big = [f for f in got if "plot_id" in f["properties"]]
        assert big, z  # the sample's plots are big enough to stay single features
        assert len({f["id"] for f in got}) == len(got)  # ids stay distinct
    # the public sees no block of a hidden status
    public = decoded(
        store.vector_tile(
            "plots",
            tile_at(store, x, y, 12),
            properties=props,
            where={"status": ["available", "reserved", "allocated", "occupied"]},
        )
    )
    assert public and "candidate" not in {f["properties"]["status"] for f in public}
    # z16 (and z15): every plot is a single feature, as before the overview
    for z in (15, 16):
        got = decoded(store.vector_tile("plots", tile_at(store, x, y, z), properties=props))
        assert got and all("plot_id" in f["properties"] for f in got)
        assert not any("plots" in f["properties"] for f in got)


def test_a_store_without_an_overview_cuts_every_plot(sample):
    from geo.store import overview_sql

    store = sample
    store.insert("plots", small_plots(store))
    x, y = store.get("plots", "T-000")["geometry"].centroid.coords[0]
    t = tile_at(store, x, y, 12)
    with store.transaction() as tx:  # an older store: no overview table
        tx.conn.execute(f"DROP TABLE {overview_sql.TABLE}")
    got = decoded(store.vector_tile("plots", t, properties=("status",)))
    assert "T-000" in {f["properties"].get("plot_id") for f in got}
    assert store.plot_blocks(12, (x, y, x, y), None) is None
    store.update("plots", "T-000", {"status": "reserved"})  # writes need no overview
    assert store.build_overview() > 0
    got = decoded(store.vector_tile("plots", t, properties=("status",)))
    assert "T-000" not in {f["properties"].get("plot_id") for f in got}


def test_the_web_tile_and_a_click_on_a_block(client, store, login):
    grid = small_plots(store)
    store.insert("plots", grid)
    geom = grid.geometry.iloc[1]  # a candidate plot
    x, y = geom.centroid.coords[0]
    t = tile_at(store, x, y, 12)
    public = decoded(client.get(f"/tiles/plots/{t.z}/{t.x}/{t.y}.mvt").data)
    statuses = {f["properties"]["status"] for f in public if "plots" in f["properties"]}
    assert statuses and "candidate" not in statuses
    lon, lat = transformer(store.epsg, WGS84_EPSG).transform(x, y)
    asked = f"/map/features?at={lon:.7f},{lat:.7f}&zoom=12&layers=plots"
    answer = client.get(asked).get_json()
    # the public never learns a candidate is there: the block of another status nearby
    assert answer["id"] is None and "candidate" not in answer["block"]["statuses"]
    seen = answer["block"]["plots"]
    login(client, "planner")
    answer = client.get(asked).get_json()
    # blocks of every status the planner sees overlap there: all are counted
    assert answer["block"]["statuses"]["candidate"] >= 1 and answer["block"]["plots"] > seen
    assert answer["id"] is None and "приблизьте" in answer["html"]  # said in the page's language
    english = client.get(asked, headers={"Accept-Language": "en"}).get_json()
    assert "zoom in" in english["html"].lower()
    # zoomed in far enough, the same click picks the plot itself
    answer = client.get(asked.replace("zoom=12", "zoom=17")).get_json()
    assert answer["id"] == grid["plot_id"].iloc[1] and "block" not in answer


def test_blocks_cover_the_plots_they_merge(sample):
    store = sample
    grid = small_plots(store, n=8)
    store.insert("plots", grid)
    for level in (12, 13):
        blocks = store.plot_blocks(level, tuple(grid.total_bounds), None)
        for status, plots in grid.groupby("status"):
            union = shapely.union_all([b.geometry for b in blocks if b.status == status])
            covered = shapely.area(shapely.intersection(plots.geometry.values, union))
            # generalised (closed over gaps, simplified by half a pixel: a corner plot may
            # lose a corner) yet over the plots
            assert np.all(covered > 0), (level, status)
            assert covered.sum() >= 0.9 * plots.geometry.area.sum(), (level, status)


def test_a_click_sorts_a_plot_at_the_size_edge_as_its_tiles_do(client, store):
    """A GeoPackage sizes plots by their R-tree boxes (4-byte floats rounded outward): a plot
    a centimetre under the size test whose stored box passes it is drawn alone in the tile,
    so a click there picks it, not a block that does not hold it."""
    from geo.store import overview_sql
    from geo.store.pg_derived import PG_SIZE

    level = 13
    edge = overview.min_size(level, store.epsg)
    minx, miny, maxx, maxy = store.extent("zone")
    x0 = float(np.float32(maxx + 300.0))
    y0 = float(np.float32((miny + maxy) / 2)) + 0.2  # rounded outward by ~0.2-0.3 m
    plot = shapely.box(x0, y0, x0 + 20.0, y0 + edge - 0.01)
    bounds = np.asarray([plot.bounds])
    assert overview_sql.GPKG_SIZE.big(level, store.epsg, bounds)[0]  # the R-tree box passes
    assert not PG_SIZE.big(level, store.epsg, bounds)[0]  # the exact one does not
    grid = gpd.GeoDataFrame(
        {"plot_id": ["EDGE-1"], "status": ["available"]}, geometry=[plot], crs=store.epsg
    )
    store.insert("plots", grid)
    assert store.build_overview() >= 0
    x, y = plot.centroid.coords[0]
    t = tile_at(store, x, y, level)
    got = decoded(store.vector_tile("plots", t, properties=("status",)))
    assert "EDGE-1" in {f["properties"].get("plot_id") for f in got}
    lon, lat = transformer(store.epsg, WGS84_EPSG).transform(x, y)
    answer = client.get(f"/map/features?at={lon:.7f},{lat:.7f}&zoom={level}&layers=plots")
    assert answer.get_json()["id"] == "EDGE-1"


def test_the_cells_of_plots_are_those_their_box_centres_lie_in():
    rng = np.random.default_rng(7)
    lo = rng.uniform(-3e4, 3e4, (5_000, 2))
    boxes = np.column_stack([lo, lo + rng.uniform(0, 900, (5_000, 2))])
    boxes[::97] = np.nan  # empty geometries have no cell
    for level in overview.LEVELS:
        side = overview.cell_size(level, 32643)
        kept = boxes[~np.isnan(boxes[:, 0])]
        centres = np.floor((kept[:, :2] + kept[:, 2:]) / 2 / side).astype(int)
        expected = {(int(x), int(y)) for x, y in centres}
        assert overview.cells_touched(level, 32643, boxes) == expected
        one = np.floor((boxes[1, :2] + boxes[1, 2:]) / 2 / side).astype(int).tolist()
        assert overview.cells_touched(level, 32643, boxes[1:2]) == {tuple(one)}
    assert overview.cells_touched(12, 32643, np.empty((0, 4))) == set()


def test_blocks_of_filled_cells_are_whole_squares_without_seams():
    """Plots filling a 3 x 3 cell area near Almaty (UTM 43N): each cell's block is the cell
    itself, one polygon of its square's area, and a status's blocks merge (as a tile merges
    them) into one polygon: the squares of neighbouring cells share their edges' coordinates
    exactly, not within a last bit (which left hairline gaps splitting blocks in parts)."""
    epsg, level = 32643, 12
    side = overview.cell_size(level, epsg)
    cx0, cy0 = math.floor(630_000 / side), math.floor(4_778_000 / side)
    step = side / 8  # 8 x 8 plots per cell, each smaller than a square
    i, j = np.divmod(np.arange(24 * 24), 24)
    x, y = cx0 * side + (i + 0.25) * step, cy0 * side + (j + 0.25) * step
    plots = shapely.box(x, y, x + step / 2, y + step / 2)
    cells = overview.cells_touched(level, epsg, shapely.bounds(plots))
    assert len(cells) == 9
    found = overview.blocks(level, epsg, cells, ["available"] * len(plots), plots)
    assert len(found) == 9 and sum(b.plots for b in found) == len(plots)
    for b in found:
        assert b.geometry.geom_type == "Polygon", (b.cx, b.cy)
        assert b.geometry.area == pytest.approx(side * side, rel=1e-9)
    ((status, count, whole),) = overview.merged(found)
    assert (status, count) == ("available", len(plots))
    assert whole.geom_type == "Polygon" and not whole.interiors
    assert whole.area == pytest.approx(9 * side * side, rel=1e-9)


def test_blocks_of_plots_without_a_drawable_outline_are_none():
    empty = np.asarray([shapely.Polygon(), None], dtype=object)
    for level in overview.LEVELS:
        assert overview.blocks(level, 32643, {(0, 0)}, ["available"] * 2, empty) == []
        assert overview.blocks(level, 32643, set(), ["available"] * 2, empty) == []
