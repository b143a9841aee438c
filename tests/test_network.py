"""Noded networks and the rtree index on tiny hand-checkable line sets (EPSG:32643)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.index import SpatialIndex
from geo.network import ROAD_SPEEDS_KMH, build_network

X0, Y0 = 650000.0, 4799000.0


def L(*pts):
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in pts])


def roads(rows):
    ids, geoms, classes, statuses = zip(*rows)
    return gpd.GeoDataFrame(
        {"asset_id": ids, "class": classes, "status": statuses, "due": [None] * len(ids)},
        geometry=list(geoms),
        crs=32643,
    )


def node_at(net, x, y):
    d = np.hypot(net.nodes[:, 0] - (X0 + x), net.nodes[:, 1] - (Y0 + y))
    assert d.min() < 1e-6, f"no node at ({x}, {y})"
    return int(d.argmin())


def test_crossing_lines_are_noded_with_lengths_and_times():
    net = build_network(
        {
            "roads": roads(
                [
                    ("A", L((0, 0), (1000, 0)), "arterial", "operational"),
                    ("B", L((500, -500), (500, 500)), "local", "operational"),
                ]
            )
        }
    )
    assert (net.n_nodes, net.n_edges) == (5, 4)
    assert sorted(np.round(net.length, 6)) == [500.0] * 4
    a = net.asset_id == "A"
    assert np.allclose(net.minutes[a], 500 / (ROAD_SPEEDS_KMH["arterial"] * 1000 / 60))
    assert np.allclose(net.minutes[~a], 1.0)  # 500 m at 30 km/h
    assert len(net.dangling) == 4 and set(net.dangling["asset_id"]) == {"A", "B"}
    d = net.dijkstra([node_at(net, 0, 0)])[0]
    assert d[node_at(net, 500, 500)] == pytest.approx(1000.0)
    assert d[node_at(net, 1000, 0)] == pytest.approx(1000.0)


def test_snapping_joins_near_misses_and_reports_tolerance():
    rows = [
        ("A", L((0, 0), (1000, 0)), "local", "operational"),
        ("B", L((300, 1.5), (300, 200)), "local", "operational"),  # undershoot 1.5 m
        ("C", L((1000.8, 0.6), (1000.8, 300)), "local", "operational"),
    ]  # gap 1 m
    net = build_network({"roads": roads(rows)}, tolerance=2.0)
    assert net.tolerance == 2.0 and net.snapped == 2
    d = net.dijkstra([node_at(net, 0, 0)])[0]
    assert d[node_at(net, 300, 200)] == pytest.approx(300 + 200, abs=0.01)
    assert np.isfinite(d).all()
    assert net.summary()["dangling_ends"] == 3
    # with no tolerance the lines stay apart
    loose = build_network({"roads": roads(rows)}, tolerance=0.0)
    assert loose.snapped == 0
    assert np.isinf(loose.dijkstra([0])[0]).any()
    with pytest.raises(ValueError, match="tolerance"):
        build_network({"roads": roads(rows)}, tolerance=-1)


def test_masks_rebuild_only_the_matrix_and_explain_blockers():
    net = build_network(
        {
            "roads": roads(
                [
                    ("A", L((0, 0), (100, 0)), "local", "operational"),
                    ("B", L((100, 0), (200, 0)), "local", "closed"),
                    ("C", L((0, 0), (0, 300), (200, 300), (200, 0)), "local", "operational"),
                ]
            )
        }
    )
    src, dst = node_at(net, 0, 0), node_at(net, 200, 0)
    assert net.dijkstra([src])[0][dst] == pytest.approx(200.0)
    mask = net.mask()
    assert net.dijkstra([src], mask=mask)[0][dst] == pytest.approx(800.0)
    assert net.csr(mask) is net.csr(mask)  # cached per mask
    open_b = net.mask({("roads", "B"): "operational"})
    assert open_b.all()
    # cut C too: the way round with the fewest closed assets crosses B only
    mask2 = net.mask({("roads", "C"): "closed"})
    ((edges, origin),) = net.blocking_edges([src], [dst], mask2)
    assert set(net.asset_id[edges]) == {"B"} and origin == src
    dist, which = net.dijkstra([src, dst], min_only=True, mask=mask)
    assert which[node_at(net, 100, 0)] == src


def test_parallel_edges_keep_the_lightest_and_points_locate_on_edges():
    net = build_network(
        {
            "roads": roads(
                [
                    ("A", L((0, 0), (100, 0)), "local", "operational"),
                    ("B", L((0, 0), (50, 50), (100, 0)), "local", "operational"),
                ]
            )
        }
    )
    a, b = node_at(net, 0, 0), node_at(net, 100, 0)
    assert net.csr()[a, b] == pytest.approx(100.0)
    plot = shapely.Polygon([(X0 + 20, Y0 - 10), (X0 + 30, Y0 - 30), (X0 + 10, Y0 - 30)])
    edge, gap, t = net.locate([plot])
    assert net.asset_id[edge[0]] == "A" and gap[0] == pytest.approx(10.0)
    costs = net.dijkstra([a])
    assert net.from_nodes(costs, edge, t)[0, 0] == pytest.approx(20.0)
    node, dist = net.nearest_nodes([shapely.Point(X0 + 99, Y0 + 1)])
    assert node[0] == b and dist[0] == pytest.approx(np.sqrt(2))


def test_empty_network_and_non_lines():
    net = build_network({"roads": roads([])}) if False else build_network({})
    assert (net.n_nodes, net.n_edges) == (0, 0)
    pts = gpd.GeoDataFrame(
        {"asset_id": ["x"], "status": ["operational"]}, geometry=[shapely.Point(X0, Y0)], crs=32643
    )
    with pytest.raises(ValueError, match="non-line"):
        build_network({"roads": pts})


def test_spatial_index_nearest_and_within():
    lines = shapely.linestrings([[(0, 0), (10, 0)], [(0, 5), (10, 5)], [(20, 0), (20, 10)]])
    ix = SpatialIndex(lines)
    q = shapely.points([(5, 1), (5, 4), (19, 5), (100, 100)])
    pos, dist = ix.nearest(q)
    assert pos.tolist() == [0, 1, 2, 2]
    assert dist[:3].tolist() == [1.0, 1.0, 1.0]
    pos, dist = ix.nearest(q, mask=np.array([False, True, False]))
    assert pos.tolist() == [1, 1, 1, 1] and dist[2] == pytest.approx(9.0)
    pos, dist = ix.nearest(q, max_distance=2)
    assert pos.tolist() == [0, 1, 2, -1] and np.isinf(dist[3])
    left, right, d = ix.within(q, 5)
    assert list(zip(left.tolist(), right.tolist(), d.tolist())) == [
        (0, 0, 1.0),
        (0, 1, 4.0),
        (1, 1, 1.0),
        (1, 0, 4.0),
        (2, 2, 1.0),
    ]
    empty = SpatialIndex([])
    assert empty.nearest(q)[0].tolist() == [-1] * 4
    with pytest.raises(ValueError):
        ix.within(q, -1)


def test_spatial_index_ties_go_to_the_lowest_position_and_missing_queries_find_nothing():
    lines = shapely.linestrings([[(0, 5), (10, 5)], [(0, 0), (10, 0)], [(0, 5), (10, 5)]])
    ix = SpatialIndex(np.array([None, *lines], dtype=object))
    q = np.array([shapely.Point(5, 2.5), None, shapely.Point(5, 6)], dtype=object)
    pos, dist = ix.nearest(q)
    assert pos.tolist() == [1, -1, 1] and dist.tolist() == [2.5, np.inf, 1.0]
    pos, _ = ix.nearest(q, mask=np.array([True, False, True, True]))
    assert pos.tolist() == [2, -1, 3]
    pos, _ = ix.nearest(q, max_distance=2.5)
    assert pos.tolist() == [1, -1, 1]
