"""PostGIS's own tile cut (geo.store.pg_tiles) against plain ``ST_AsMVTGeom`` on the same
rows: polygons wholly inside a tile, which skip wagyu, come out as it cuts them."""

from __future__ import annotations

import math

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import shapely
import shapely.affinity
import shapely.geometry

from geo.crs import WGS84_EPSG, transformer
from geo.store import open_store
from geo.store.pg_derived import PG_SIZE
from geo.tiles import BUFFER, EXTENT, Tile

#: The reference: every plot through ST_AsMVTGeom (wagyu), simplified as the store does.
REFERENCE = """
SELECT ST_AsMVT(r.*, 'plots', 4096, 'g', 'id') FROM (
  SELECT ST_Simplify(ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s),
                                  4096, 64, true), 1.0) AS g, zp_tile_id AS id, plot_id
  FROM plots WHERE ST_Transform(geom, 3857) && ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 0.02)
) r WHERE g IS NOT NULL AND NOT ST_IsEmpty(g)
"""


def _tile_of(lon: float, lat: float, z: int) -> Tile:
    n = 1 << z
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return Tile(z, int((lon + 180) / 360 * n), y)


def _plots(data: bytes) -> dict[str, dict]:
    """The tile's single plots (blocks left out) by plot id, coordinates in tile units."""
    if not data:
        return {}
    found = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    return {
        f["properties"]["plot_id"]: f["geometry"]
        for f in found.get("plots", {}).get("features", [])
        if "plot_id" in f["properties"]
    }


def _exteriors_ccw(geometry: dict) -> list[bool]:
    """Whether each exterior ring turns counter-clockwise in raw tile units (MVT's positive
    area with y down), as the encoder wrote it."""
    polygons = geometry["coordinates"]
    if geometry["type"] == "Polygon":
        polygons = [polygons]
    return [bool(shapely.is_ccw(shapely.LinearRing(p[0]))) for p in polygons]


def test_polygons_inside_a_tile_are_cut_as_st_asmvtgeom_cuts_them(sample_pg, new_database):
    url = new_database(sample_pg)
    store = open_store(url)
    minx, miny, maxx, maxy = store.extent("zone")
    # a synthetic grid like the benchmarks' (30-48 m squares) east of the zone, beside the
    # sample's irregular plots
    rng = np.random.default_rng(5)
    n = 24
    i = np.arange(n * n)
    x = maxx + 400.0 + (i % n) * 50.0
    y = miny + (i // n) * 50.0
    side = rng.uniform(30.0, 48.0, n * n)
    grid = gpd.GeoDataFrame(
        {"plot_id": [f"Q-{k:04d}" for k in i], "status": "available"},
        geometry=shapely.box(x, y, x + side, y + side),
        crs=store.epsg,
    )
    store.insert("plots", grid)
    lon0, lat0, lon1, lat1 = transformer(store.epsg, WGS84_EPSG).transform_bounds(
        minx, miny, maxx + 400.0 + n * 50.0, maxy
    )
    inside = clipped = irregular = 0
    import psycopg

    with psycopg.connect(url) as conn:
        small = {
            r[0]
            for r in conn.execute(
                f"SELECT plot_id FROM plots WHERE NOT {PG_SIZE.predicate(14, store.epsg)}"
            )
        }
        for z in (14, 15, 16):
            first, last = _tile_of(lon0, lat1, z), _tile_of(lon1, lat0, z)
            for tx in range(first.x, last.x + 1):
                for ty in range(first.y, last.y + 1):
                    t = Tile(z, tx, ty)
                    ours = _plots(store.vector_tile("plots", t, properties=("status",)))
                    row = conn.execute(REFERENCE, {"z": z, "x": tx, "y": ty}).fetchone()
                    wagyu = _plots(bytes(row[0]) if row and row[0] else b"")
                    # smaller plots are in blocks at z14
                    assert set(ours) == set(wagyu) - (small if z == 14 else set()), t
                    for key, geometry in ours.items():
                        mine = shapely.geometry.shape(geometry)
                        theirs = shapely.geometry.shape(wagyu[key])
                        lo, hi = -BUFFER + 1, EXTENT + BUFFER - 1
                        b = mine.bounds
                        within = lo <= b[0] and lo <= b[1] and b[2] <= hi and b[3] <= hi
                        inside += within
                        clipped += not within
                        assert _exteriors_ccw(geometry) == _exteriors_ccw(wagyu[key]), key
                        if key.startswith("Q-"):  # squares: the very same rings
                            assert shapely.normalize(mine).equals_exact(
                                shapely.normalize(theirs), 0
                            ), (key, t)
                        else:  # a simplification may keep another vertex within its unit
                            irregular += 1
                            assert shapely.hausdorff_distance(mine, theirs) <= 1.5, (key, t)
    assert inside > 500 and clipped > 20 and irregular > 50


def test_the_ready_z14_outlines_follow_every_write(sample_pg, new_database):
    """The plots' stored z14 outlines are derived in the writing statement itself: after
    inserts, moves and reshapes (and in a transaction that rolls back) the z14 tile still
    draws every plot as plain ``ST_AsMVTGeom`` does."""
    import psycopg

    url = new_database(sample_pg)
    store = open_store(url)
    minx, miny, maxx, _ = store.extent("zone")
    x = maxx + 400.0 + np.arange(6) * 60.0
    grid = gpd.GeoDataFrame(
        {"plot_id": [f"W-{k}" for k in range(6)], "status": "available"},
        geometry=shapely.box(x, miny, x + 40.0, miny + 40.0),
        crs=store.epsg,
    )
    store.insert("plots", grid)
    store.update("plots", "W-0", {"geometry": shapely.affinity.translate(grid.geometry[0], 25.0)})
    store.update("plots", "W-1", {"geometry": shapely.affinity.rotate(grid.geometry[1], 30.0)})
    try:
        with store.transaction() as tx:
            tx.update(
                "plots", "W-2", {"geometry": shapely.affinity.translate(grid.geometry[2], 9e3)}
            )
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    lon0, lat0, lon1, lat1 = transformer(store.epsg, WGS84_EPSG).transform_bounds(
        maxx + 300.0, miny - 100.0, maxx + 900.0, miny + 100.0
    )
    first, last = _tile_of(lon0, lat1, 14), _tile_of(lon1, lat0, 14)
    seen: set[str] = set()
    with psycopg.connect(url) as conn:
        for tx_ in range(first.x, last.x + 1):
            for ty in range(first.y, last.y + 1):
                t = Tile(14, tx_, ty)
                ours = _plots(store.vector_tile("plots", t, properties=("status",)))
                row = conn.execute(REFERENCE, {"z": t.z, "x": t.x, "y": t.y}).fetchone()
                wagyu = _plots(bytes(row[0]) if row and row[0] else b"")
                assert set(ours) <= set(wagyu), t
                for key, geometry in ours.items():
                    mine = shapely.geometry.shape(geometry)
                    assert (
                        shapely.hausdorff_distance(mine, shapely.geometry.shape(wagyu[key])) <= 1.5
                    )
                seen |= set(ours)
    assert {f"W-{k}" for k in range(6)} <= seen
    store.close()


#: The reference for blocks: the overview's rows of the tile's level through ST_AsMVTGeom.
BLOCKS = """
SELECT ST_AsMVT(r.*, 'plots', 4096, 'g', 'id') FROM (
  SELECT ST_Simplify(ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s),
                                  4096, 64, true), 1.0) AS g, zp_tile_id AS id, plots
  FROM zoneplan_plot_overview WHERE level = %(z)s
   AND ST_Transform(geom, 3857) && ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 0.02)
) r WHERE g IS NOT NULL AND NOT ST_IsEmpty(g)
"""


def _blocks_of(data: bytes) -> dict[int, dict]:
    """The tile's overview blocks (features without a plot id) by feature id."""
    if not data:
        return {}
    found = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    return {
        f["id"]: f["geometry"]
        for f in found.get("plots", {}).get("features", [])
        if "plot_id" not in f["properties"]
    }


def test_blocks_are_cut_as_st_asmvtgeom_cuts_them(sample_pg, new_database):
    """Plots too small to see at z12-z14 come as the overview's blocks, cut from their
    stored outlines at their level's zoom where inside the tile: the same rings as
    ``ST_AsMVTGeom``'s, squares meeting at corners too; after a write re-merges a cell,
    still."""
    import psycopg

    url = new_database(sample_pg)
    store = open_store(url)
    minx, miny, maxx, _ = store.extent("zone")
    rng = np.random.default_rng(7)
    n = 40
    i = np.arange(n * n)
    keep = rng.random(n * n) < 0.7  # gaps: blocks of several parts, touching at corners
    x = (maxx + 400.0 + (i % n) * 18.0)[keep]
    y = (miny + (i // n) * 18.0)[keep]
    small = gpd.GeoDataFrame(
        {"plot_id": [f"s-{k:04d}" for k in i[keep]], "status": "available"},
        geometry=shapely.box(x, y, x + 15.0, y + 15.0),
        crs=store.epsg,
    )
    store.insert("plots", small)
    store.build_overview()
    store.update("plots", small.plot_id.iloc[0], {"status": "reserved"})
    lon0, lat0, lon1, lat1 = transformer(store.epsg, WGS84_EPSG).transform_bounds(
        maxx + 400.0, miny, maxx + 400.0 + n * 18.0, miny + n * 18.0
    )
    compared = dict.fromkeys((12, 13, 14), 0)
    with psycopg.connect(url) as conn:
        for z in compared:
            first, last = _tile_of(lon0, lat1, z), _tile_of(lon1, lat0, z)
            for tx_ in range(first.x, last.x + 1):
                for ty in range(first.y, last.y + 1):
                    t = Tile(z, tx_, ty)
                    ours = _blocks_of(store.vector_tile("plots", t, properties=("status",)))
                    row = conn.execute(BLOCKS, {"z": t.z, "x": t.x, "y": t.y}).fetchone()
                    wagyu = _blocks_of(bytes(row[0]) if row and row[0] else b"")
                    assert ours.keys() == wagyu.keys(), t
                    for fid, geometry in ours.items():
                        mine = shapely.normalize(shapely.geometry.shape(geometry))
                        theirs = shapely.normalize(shapely.geometry.shape(wagyu[fid]))
                        assert mine.equals_exact(theirs, 0), (fid, t)
                        compared[z] += 1
    assert min(compared.values()) >= 3 and compared[14] > 20, compared
    store.close()
