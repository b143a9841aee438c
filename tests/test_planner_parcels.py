"""planner.parcels: drawn outlines checked against the zone, plots and protection zones;
GeoJSON read with specific errors; the plot lifecycle; new plot ids.

Also home of the helpers the planner API and browser tests share (``free_square``,
``to_geojson``): free land is computed from the data, never hard-coded.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import box

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer
from geo.layers import PLOT_STATUSES, PLOT_TRANSITIONS
from planner import parcels
from planner.parcels import (
    ParcelInputError,
    TransitionError,
    check_parcel,
    check_transition,
    new_plot_id,
    polygon_from_geojson,
)


# --------------------------------------------------------------------------- shared helpers
def free_circle(snapshot, *, road_clearance_m: float = 15.0, inside: str | None = None):
    """Centre (x, y) and radius (m) of the largest circle of free land (working CRS).

    Free land: the zone and expansion areas minus plots, protection zones and a
    ``road_clearance_m`` band around roads. ``inside`` restricts it to one layer
    (``"zone"`` or ``"expansion"``).
    """
    layers = [inside] if inside else ["zone", "expansion"]
    land = shapely.union_all([g for name in layers for g in snapshot[name].geometry.values])
    blocked = shapely.union_all(
        list(snapshot["plots"].geometry.values)
        + list(snapshot["prot_zones"].geometry.values)
        + list(shapely.buffer(np.asarray(snapshot["roads"].geometry.values), road_clearance_m))
    )
    free = land.difference(blocked)
    line = shapely.maximum_inscribed_circle(free, tolerance=1.0)
    centre, edge = line.coords[0], line.coords[1]
    return centre, float(np.hypot(centre[0] - edge[0], centre[1] - edge[1]))


def free_square(snapshot, half_m: float | None = None, **kwargs) -> shapely.Polygon:
    """A square parcel in the largest free spot (half-side ``half_m``, default 50 m or 60 %
    of the room when less)."""
    (cx, cy), radius = free_circle(snapshot, **kwargs)
    half = half_m if half_m is not None else min(50.0, radius * 0.6)
    assert half * np.sqrt(2) < radius, f"only {radius:.0f} m of free room near {cx:.0f},{cy:.0f}"
    return box(cx - half, cy - half, cx + half, cy + half)


def to_geojson(polygon: shapely.Polygon) -> dict:
    """A working-CRS polygon as a WGS84 GeoJSON Polygon (7 decimals)."""
    tr = transformer(WORKING_EPSG, WGS84_EPSG)
    rings = [polygon.exterior, *polygon.interiors]
    out = []
    for ring in rings:
        xy = np.asarray(ring.coords)
        lon, lat = tr.transform(xy[:, 0], xy[:, 1])
        out.append([[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat)])
    return {"type": "Polygon", "coordinates": out}


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def snap(sample_db):
    from geo.store import open_store

    return open_store(sample_db).snapshot()


@pytest.fixture(scope="module")
def spot(snap):
    return free_square(snap)


def codes(check) -> list[str]:
    return [p.code for p in check.problems]


# --------------------------------------------------------------------------- the check
def test_free_parcel_is_valid_with_metric_area(snap, spot):
    check = check_parcel(snap, spot)
    assert check.valid, check.messages()
    assert check.area_ha == pytest.approx(spot.area / 10_000, abs=1e-4)
    assert check.area_ha >= parcels.MIN_AREA_HA
    assert check.polygon.equals(spot)
    assert check.to_dict()["problems"] == []


def test_parcel_in_expansion_area_is_tagged_with_it(snap):
    spot = free_square(snap, inside="expansion")
    check = check_parcel(snap, spot)
    assert check.valid, check.messages()
    exp = snap["expansion"]
    holder = exp[shapely.contains(np.asarray(exp.geometry.values), spot)]["exp_id"].tolist()
    assert [check.exp_id] == holder


def test_snapshot_and_store_give_the_same_verdict(sample_db, snap, spot):
    from geo.store import open_store

    store = open_store(sample_db)
    plot = snap["plots"].geometry.iloc[0]
    for polygon in (spot, plot.buffer(5)):
        a, b = check_parcel(snap, polygon), check_parcel(store, polygon)
        assert a.to_dict() == b.to_dict()


def test_self_intersecting_outline_is_explained_with_a_location(snap, spot):
    x0, y0, x1, y1 = spot.bounds
    bow_tie = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])
    check = check_parcel(snap, bow_tie)
    assert not check.valid and codes(check) == ["invalid"]
    message = check.messages()[0]
    assert "crosses itself" in message
    lon, lat = transformer(WORKING_EPSG, WGS84_EPSG).transform((x0 + x1) / 2, (y0 + y1) / 2)
    assert f"{lat:.5f} N, {lon:.5f} E" in message


def test_parcel_outside_the_zone_is_refused(snap):
    far = box(600_000, 4_700_000, 600_100, 4_700_100)
    check = check_parcel(snap, far)
    assert codes(check) == ["outside"]
    assert check.messages() == ["the parcel lies outside the zone and its expansion areas"]


def test_parcel_partly_outside_says_how_much(snap):
    land = shapely.union_all(list(snap["zone"].geometry) + list(snap["expansion"].geometry))
    ring = shapely.get_parts(land.boundary)[0]
    edge = ring.interpolate(0.3, normalized=True).buffer(60)
    outside_ha = edge.difference(land).area / 10_000
    check = check_parcel(snap, edge)
    assert "outside" in codes(check)
    problem = next(p for p in check.problems if p.code == "outside")
    assert problem.params["area"] == f"{outside_ha:.2f}"
    assert "ha of the parcel lies outside" in problem.message()


def test_overlapping_a_plot_names_it(snap):
    plots = snap["plots"]
    target = plots.iloc[3]
    check = check_parcel(snap, target.geometry.centroid.buffer(30))
    assert "overlaps_plot" in codes(check)
    problem = next(p for p in check.problems if p.code == "overlaps_plot")
    assert problem.ids == (target.plot_id,)
    assert target.plot_id in problem.message()


def test_a_plot_redrawn_does_not_overlap_itself(snap):
    plots = snap["plots"]
    row = plots[plots["status"] == "candidate"].iloc[0]
    assert "overlaps_plot" in codes(check_parcel(snap, row.geometry))
    check = check_parcel(snap, row.geometry, exclude_plot_id=row.plot_id)
    assert "overlaps_plot" not in codes(check), check.messages()


def test_touching_neighbours_and_tiny_overlaps_are_tolerated(snap):
    row = snap["plots"].iloc[0]
    (ax, ay), (bx, by) = list(row.geometry.exterior.coords)[:2]
    length = float(np.hypot(bx - ax, by - ay))
    u = np.array([bx - ax, by - ay]) / length
    n = np.array([-u[1], u[0]])
    mid = np.array([(ax + bx) / 2, (ay + by) / 2])
    if row.geometry.contains(shapely.Point(*(mid + n))):
        n = -n  # point outwards

    def square(shift: float) -> shapely.Polygon:
        a = np.array([ax, ay]) + u * (length / 2 - 5) - n * shift
        return shapely.Polygon([a, a + u * 10, a + u * 10 + n * 10, a + n * 10])

    for shift in (0.0, 0.05):  # touching, then 0.5 m² over the plot: digitising noise
        check = check_parcel(snap, square(shift), min_area_ha=0)
        assert row.plot_id not in {i for p in check.problems for i in p.ids}
    check = check_parcel(snap, square(0.5), min_area_ha=0)  # 5 m² over it
    assert row.plot_id in next(p for p in check.problems if p.code == "overlaps_plot").ids


def test_overlapping_a_protection_zone_names_it(snap):
    zones = snap["prot_zones"]
    row = (
        zones[zones["asset_id"] == "PZ-SS-12"].iloc[0]
        if "PZ-SS-12" in set(zones["asset_id"])
        else zones.iloc[0]
    )
    check = check_parcel(snap, row.geometry.centroid.buffer(20))
    assert "overlaps_protection" in codes(check)
    problem = next(p for p in check.problems if p.code == "overlaps_protection")
    assert row.asset_id in problem.ids
    assert "nothing may be built there" in problem.message()


def test_too_small_parcel_is_refused(snap, spot):
    tiny = spot.centroid.buffer(20, quad_segs=4)  # ~0.12 ha
    check = check_parcel(snap, tiny)
    assert codes(check) == ["too_small"]
    assert check.messages() == [
        f"{check.area_ha:.2f} ha is too small: a plot needs at least 0.3 ha"
    ]
    assert check_parcel(snap, tiny, min_area_ha=0.1).valid


def test_wrong_geometry_types_and_empty(snap, spot):
    assert codes(check_parcel(snap, spot.exterior)) == ["type"]
    assert codes(check_parcel(snap, None)) == ["empty"]
    assert codes(check_parcel(snap, shapely.Polygon())) == ["empty"]
    two = shapely.MultiPolygon([spot, shapely.affinity.translate(spot, 5000, 0)])
    assert codes(check_parcel(snap, two)) == ["type"]
    assert check_parcel(snap, shapely.MultiPolygon([spot])).valid


def test_crossing_a_road_is_a_warning_only(snap):
    roads = snap["roads"]
    road = roads.geometry.iloc[0]
    check = check_parcel(snap, road.interpolate(0.5, normalized=True).buffer(40))
    assert any(
        w.code == "crosses_road" and roads["asset_id"].iloc[0] in w.ids for w in check.warnings
    )
    assert "crosses_road" not in codes(check)


def test_problems_are_translated_before_formatting(snap):
    far = box(600_000, 4_700_000, 600_100, 4_700_100)
    check = check_parcel(snap, far, min_area_ha=5)
    words = {
        "{area} ha is too small: a plot needs at least {minimum} ha": "{area} га мало: участку нужно не меньше {minimum} га"
    }
    assert "1.00 га мало: участку нужно не меньше 5 га" in check.messages(lambda s: words.get(s, s))


# --------------------------------------------------------------------------- GeoJSON in
def test_geojson_polygon_round_trips_to_the_working_crs(spot):
    polygon = polygon_from_geojson(to_geojson(spot), epsg=WORKING_EPSG)
    assert polygon.area == pytest.approx(spot.area, abs=1.0)
    assert shapely.hausdorff_distance(polygon, spot) < 0.05
    multi = {"type": "MultiPolygon", "coordinates": [to_geojson(spot)["coordinates"]]}
    assert polygon_from_geojson(multi, epsg=WORKING_EPSG).area == pytest.approx(spot.area, abs=1.0)


@pytest.mark.parametrize(
    "geometry, field, words",
    [
        ("POLYGON((0 0))", "geometry", "GeoJSON object"),
        ({"type": "Point", "coordinates": [76.8, 43.3]}, "geometry.type", "a Point was given"),
        (
            {"type": "LineString", "coordinates": [[76.8, 43.3], [76.9, 43.3]]},
            "geometry.type",
            "draw one polygon",
        ),
        ({"coordinates": []}, "geometry.type", "nothing was given"),
        ({"type": "Polygon"}, "geometry.coordinates", "list of rings"),
        ({"type": "Polygon", "coordinates": "x"}, "geometry.coordinates", "list of rings"),
        (
            {
                "type": "Polygon",
                "coordinates": [[[76.8, 43.3], [76.9, "43.3"], [76.9, 43.4], [76.8, 43.3]]],
            },
            "geometry.coordinates[0][1]",
            "position 1 of ring 0",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[76.8, 43.3], [76.9, 43.3], [200.0, 43.4], [76.8, 43.3]]],
            },
            "geometry.coordinates[0][2]",
            "longitude in -180..180",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[76.8, 43.3], [76.9, 91.0], [76.9, 43.4], [76.8, 43.3]]],
            },
            "geometry.coordinates[0][1]",
            "latitude in -90..90",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[76.8, 43.3], [76.9], [76.9, 43.4], [76.8, 43.3]]],
            },
            "geometry.coordinates[0][1]",
            "[longitude, latitude]",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[76.8, 43.3], [True, 43.3], [76.9, 43.4], [76.8, 43.3]]],
            },
            "geometry.coordinates[0][1]",
            "position 1",
        ),
        (
            {"type": "Polygon", "coordinates": [[[76.8, 43.3], [76.9, 43.3], [76.8, 43.3]]]},
            "geometry.coordinates[0]",
            "at least 4",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[76.8, 43.3], [76.9, 43.3], [76.9, 43.4], [76.8, 43.4]]],
            },
            "geometry.coordinates[0]",
            "not closed",
        ),
        (
            {"type": "Polygon", "coordinates": [[[76.8, 43.3]] * 2001]},
            "geometry.coordinates",
            "more than 2000 positions",
        ),
    ],
)
def test_unreadable_geojson_names_the_member(geometry, field, words):
    with pytest.raises(ParcelInputError) as err:
        polygon_from_geojson(geometry, epsg=WORKING_EPSG)
    assert err.value.field == field
    assert words in str(err.value)


# --------------------------------------------------------------------------- lifecycle
@pytest.mark.parametrize(
    "old, new", [(o, n) for o, moves in PLOT_TRANSITIONS.items() for n in moves]
)
def test_legal_moves_pass(old, new):
    check_transition(old, new)


def test_illegal_jumps_are_refused_naming_the_way():
    with pytest.raises(TransitionError) as err:
        check_transition("occupied", "candidate", plot_id="P-001")
    assert str(err.value) == (
        "plot P-001 cannot go from occupied to candidate; from occupied it may go to available"
    )
    illegal = [
        (o, n)
        for o in PLOT_STATUSES
        for n in PLOT_STATUSES
        if o != n and n not in PLOT_TRANSITIONS[o]
    ]
    assert ("candidate", "occupied") in illegal
    for old, new in illegal:
        with pytest.raises(TransitionError):
            check_transition(old, new)
    with pytest.raises(TransitionError, match="not a plot status"):
        check_transition("candidate", "sold")
    check_transition("reserved", "reserved")  # no move is no jump
    assert parcels.allowed_transitions("available") == ("reserved", "candidate")


def test_new_plot_ids_follow_the_highest():
    assert new_plot_id(["P-001", "P-206", "P-07", "X-999", "P-abc"]) == "P-207"
    assert new_plot_id([]) == "P-001"
    assert new_plot_id(["E1-9"], prefix="E1-", width=2) == "E1-10"
