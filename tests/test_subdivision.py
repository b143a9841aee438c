"""Subdivision core: exact plots on hand-computable rectangles, invariants on awkward shapes
(L, hole, sliver, a power line with its setback), clear refusals of degenerate input."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.crs import WORKING_EPSG
from planner.streets import FRONTAGE_TOLERANCE_M, Frame, frontage
from planner.subdivision import (
    METHODS,
    Site,
    SubdivisionError,
    SubdivisionParams,
    compare,
    subdivide,
)

X0, Y0 = 650_000.0, 4_790_000.0
#: 1100 m × 400 m: local streets every 220 m (20 m right of way) at x = 110, 330, …, 990 and
#: a 20 m spine along y = 200 leave 20 blocks of 100 m × 190 m = 1.9 ha.
RECT = shapely.box(X0, Y0, X0 + 1100, Y0 + 400)
GRID = dict(
    min_ha=0.5,
    max_ha=2.0,
    target_ha=1.0,
    street_spacing_m=220.0,
    row_m=20.0,
    spine_row_m=20.0,
    block_m=2000.0,
)


def frame(layer: str, geoms: list, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"asset_id": [f"{layer}-{i}" for i in range(len(geoms))], **columns},
        geometry=geoms,
        crs=WORKING_EPSG,
    )


def assert_invariants(result, site: Site, params: SubdivisionParams) -> None:
    """No overlap, inside the area less setbacks and rights of way, frontage, area range."""
    plots = np.asarray(result.plots.geometry.values)
    assert len(plots)
    assert shapely.is_valid(plots).all()
    union = shapely.union_all(plots)
    assert abs(shapely.area(plots).sum() - union.area) < 1.0, "plots overlap"
    assert union.difference(site.area).area < 1.0, "plots leave the area"
    streets = result.streets
    # Rights of way less 1 cm: the area's frame is turned and back, which moves edges by µm.
    row = shapely.union_all(
        shapely.buffer(
            np.asarray(streets.geometry.values),
            streets["row_m"].to_numpy() / 2 - 0.01,
            cap_style="flat",
        )
    )
    assert union.intersection(row).area < 1.0, "plots in a right of way"
    for layer, distance in (
        ("power_lines", params.setback_power_m),
        ("rail_lines", params.setback_rail_m),
        ("prot_zones", params.setback_prot_m),
    ):
        for g in np.asarray(site.layers[layer].geometry.values) if layer in site.layers else []:
            assert shapely.distance(plots, g).min() >= distance - 0.01, f"inside {layer} setback"
    # Frontage measured independently of the core's own figure: boundary within the street's
    # right-of-way half-width (+ tolerance) of its centreline, one street at a time.
    for plot in plots:
        best = max(
            shapely.intersection(plot.boundary, g.buffer(w / 2 + FRONTAGE_TOLERANCE_M)).length
            for g, w in zip(streets.geometry, streets["row_m"])
        )
        assert best >= params.frontage_m - 1e-6
    area = result.plots["area_ha"].to_numpy()
    flagged = ~result.plots["in_range"].to_numpy()
    outside = (area < params.min_ha * 0.999) | (area > params.max_ha * 1.001)
    assert (outside == flagged).all(), "out-of-range plots must be flagged, and only those"
    assert result.metrics["frontage_share"] == 1.0
    assert result.metrics["out_of_range"] == int(flagged.sum())


@pytest.mark.parametrize("method", METHODS)
def test_rectangle_gives_exact_plots_and_streets(method):
    site = Site(RECT)
    params = SubdivisionParams(**GRID, method=method)
    result = subdivide(site, params)
    assert_invariants(result, site, params)
    # Each 100 m × 190 m block becomes two plots 100 m deep with 95 m of frontage.
    assert len(result.plots) == 40
    assert np.allclose(result.plots["area_ha"], 0.95, atol=1e-3)
    assert (result.plots["frontage_m"] >= 95.0).all()
    roles = result.streets["role"].value_counts().to_dict()
    assert roles == {"local": 5, "spine": 1}
    local_x = sorted(
        round(g.coords[0][0] - X0, 3)
        for g, r in zip(result.streets.geometry, result.streets["role"])
        if r == "local"
    )
    assert local_x == [110.0, 330.0, 550.0, 770.0, 990.0]
    m = result.metrics
    assert m["net_developable_ha"] == 44.0
    assert m["plotted_ha"] == pytest.approx(38.0, abs=0.01)
    assert m["utilisation"] == pytest.approx(38.0 / 44.0, abs=1e-3)
    assert m["street_land_ha"] == pytest.approx(
        6.0, abs=0.01
    )  # 5 × 20 × 400 + 1100 × 20 − 5 × 20 × 20
    assert m["new_street_km"] == pytest.approx(3.1, abs=1e-3)  # 5 × 400 m + 1100 m
    assert m["deviation_mean"] == pytest.approx(0.05, abs=1e-3)
    assert m["remnants"] == 0 and m["too_deep"] == 0
    assert "no gate or road" in " ".join(result.warnings)


def test_methods_are_compared_on_the_same_input():
    results = compare(Site(RECT), SubdivisionParams(**GRID))
    assert set(results) == set(METHODS)
    for name, result in results.items():
        assert result.metrics["method"] == name
        assert result.metrics["net_developable_ha"] == 44.0


def test_rotated_rectangle_is_subdivided_along_its_own_axes():
    turned = shapely.affinity.rotate(RECT, 30, origin="centroid")
    site = Site(turned)
    result = subdivide(site, SubdivisionParams(**GRID))
    assert abs(np.degrees(Frame.of(turned).angle) - 30) < 1e-4
    assert len(result.plots) == 40
    assert np.allclose(result.plots["area_ha"], 0.95, atol=1e-3)


def test_power_line_setback_is_kept_and_counted():
    # A line along y = 300 with a 15 m setback takes 1100 m × 30 m; above the spine each
    # 100 m band keeps 75 m (0.75 ha) and 85 m (0.85 ha): one plot each.
    line = shapely.linestrings([[X0 - 50, Y0 + 300], [X0 + 1150, Y0 + 300]])
    site = Site(RECT, layers={"power_lines": frame("PL", [line])})
    params = SubdivisionParams(**GRID, setback_power_m=15.0)
    result = subdivide(site, params)
    assert_invariants(result, site, params)
    assert result.metrics["net_developable_ha"] == pytest.approx(44.0 - 3.3, abs=1e-3)
    assert len(result.plots) == 40
    assert result.plots["area_ha"].sum() == pytest.approx(35.0, abs=0.01)
    assert sorted(set(np.round(result.plots["area_ha"], 2))) == [0.75, 0.85, 0.95]


@pytest.mark.parametrize("method", METHODS)
def test_l_shape_invariants(method):
    area = shapely.Polygon(
        [
            (X0, Y0),
            (X0 + 1400, Y0),
            (X0 + 1400, Y0 + 450),
            (X0 + 500, Y0 + 450),
            (X0 + 500, Y0 + 1300),
            (X0, Y0 + 1300),
        ]
    )
    gate = frame("G", [shapely.Point(X0 + 700, Y0 - 5)])
    site = Site(area, layers={"gates": gate})
    params = SubdivisionParams(min_ha=0.5, max_ha=5.0, method=method)
    result = subdivide(site, params)
    assert_invariants(result, site, params)
    assert result.metrics["utilisation"] >= 0.75
    assert "gate G-0" in " ".join(result.warnings)
    # Every generated street hangs together with the gate.
    new = result.streets[~result.streets["existing"]]
    assert shapely.union_all(np.asarray(new.geometry.values)).geom_type in (
        "LineString",
        "MultiLineString",
    )
    assert (
        shapely.distance(shapely.union_all(np.asarray(new.geometry.values)), gate.geometry.iloc[0])
        < 1.0
    )


@pytest.mark.parametrize("method", METHODS)
def test_polygon_with_a_hole(method):
    hole = shapely.box(X0 + 450, Y0 + 250, X0 + 750, Y0 + 550).exterior.coords
    area = shapely.Polygon(shapely.box(X0, Y0, X0 + 1200, Y0 + 800).exterior.coords, [hole])
    site = Site(area)
    params = SubdivisionParams(min_ha=0.5, max_ha=5.0, method=method)
    result = subdivide(site, params)
    assert_invariants(result, site, params)
    assert (
        shapely.union_all(np.asarray(result.plots.geometry.values))
        .intersection(shapely.Polygon(hole))
        .area
        < 1.0
    )
    assert result.metrics["utilisation"] >= 0.7


def test_sliver_along_an_existing_road_splits_evenly():
    # 1000 m × 80 m with a local road 10 m south of it (right of way 20 m: its edge is the
    # sliver's edge): OBB halves it three times into eight 125 m × 80 m plots of 1 ha.
    sliver = shapely.box(X0, Y0, X0 + 1000, Y0 + 80)
    road = frame(
        "R",
        [shapely.linestrings([[X0 - 50, Y0 - 10], [X0 + 1050, Y0 - 10]])],
        **{"class": ["local"]},
    )
    site = Site(sliver, layers={"roads": road})
    params = SubdivisionParams(
        min_ha=0.5, max_ha=2.0, target_ha=1.0, method="obb", streets="existing"
    )
    result = subdivide(site, params)
    assert_invariants(result, site, params)
    assert len(result.plots) == 8
    assert np.allclose(result.plots["area_ha"], 1.0, atol=1e-4)
    assert result.streets["existing"].all()
    assert result.metrics["new_street_km"] == 0


def test_thin_sliver_without_room_for_a_plot_is_refused():
    sliver = shapely.box(X0, Y0, X0 + 2000, Y0 + 30)
    with pytest.raises(SubdivisionError, match="no plot of the asked size"):
        subdivide(Site(sliver), SubdivisionParams())


def test_area_smaller_than_one_plot_is_refused():
    with pytest.raises(SubdivisionError, match="less than one plot of 0.5 ha"):
        subdivide(Site(shapely.box(X0, Y0, X0 + 50, Y0 + 50)), SubdivisionParams())


def test_self_intersecting_boundary_is_refused_with_where():
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 500, Y0 + 500), (X0 + 500, Y0), (X0, Y0 + 500)])
    with pytest.raises(SubdivisionError, match=r"not valid \(Self-intersection\) near 43\.\d+ N"):
        Site.from_snapshot({}, bowtie, epsg=WORKING_EPSG)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"min_ha": 5.0, "max_ha": 0.5}, "must be smaller than the largest"),
        ({"street_spacing_m": 15.0}, "leaves no land between streets"),
        ({"street_spacing_m": 1000.0, "max_ha": 2.0}, "narrow the street spacing"),
        ({"target_ha": 9.0}, "outside the plot area range"),
        ({"frontage_m": -1.0}, "frontage_m must be a positive number"),
        ({"large_share": 1.5}, "share from 0 to 1"),
        ({"setback_power_m": -5.0}, "zero or more metres"),
        ({"method": "voronoi"}, "unknown method"),
        ({"method": "strip", "streets": "existing"}, "use method obb"),
        ({"min_ha": 0.001, "max_ha": 0.002}, "more than 20,000 plots"),
    ],
)
def test_contradictory_parameters_are_refused(changes, message):
    with pytest.raises(SubdivisionError, match=message):
        subdivide(Site(RECT), SubdivisionParams(**changes))


def test_existing_layout_without_roads_is_refused():
    with pytest.raises(SubdivisionError, match="no street reaches the area"):
        subdivide(Site(RECT), SubdivisionParams(method="obb", streets="existing"))


def test_kept_plots_stay_and_candidates_are_replaced_unless_kept():
    held = shapely.box(X0 + 120, Y0, X0 + 220, Y0 + 190)
    candidate = shapely.box(X0 + 340, Y0, X0 + 440, Y0 + 190)
    plots = gpd.GeoDataFrame(
        {"plot_id": ["P-1", "P-2"], "status": ["occupied", "candidate"], "version": [1, 3]},
        geometry=[held, candidate],
        crs=WORKING_EPSG,
    )
    site = Site(RECT, layers={"plots": plots})
    replaced = subdivide(site, SubdivisionParams(**GRID))
    assert replaced.kept == ["P-1"]
    assert replaced.removed["plot_id"].tolist() == ["P-2"]
    new = shapely.union_all(np.asarray(replaced.plots.geometry.values))
    assert new.intersection(held).area < 1.0
    assert new.intersection(candidate).area > 1.8e4
    assert replaced.metrics["net_developable_ha"] == pytest.approx(44.0 - 1.9, abs=1e-3)
    kept = subdivide(site, SubdivisionParams(**GRID, keep_existing=True))
    assert kept.kept == ["P-1", "P-2"] and not len(kept.removed)
    assert (
        shapely.union_all(np.asarray(kept.plots.geometry.values)).intersection(candidate).area < 1.0
    )


def test_large_lot_share():
    params = SubdivisionParams(min_ha=0.5, max_ha=5.0, target_ha=1.0, large_share=0.4, large_ha=3.0)
    result = subdivide(Site(shapely.box(X0, Y0, X0 + 2000, Y0 + 800)), params)
    large = result.plots[result.plots["large"]]
    assert result.metrics["large_lots"] == len(large) > 0
    assert large["area_ha"].mean() > 2 * result.plots[~result.plots["large"]]["area_ha"].mean()


def test_progress_is_reported_and_can_stop_the_run():
    seen = []
    subdivide(Site(RECT), SubdivisionParams(**GRID), progress=lambda f, m: seen.append(f))
    assert seen[0] < 0.1 and seen[-1] == 1.0 and seen == sorted(seen)

    class Stop(Exception):
        pass

    def stop(fraction, message):
        if fraction > 0.2:
            raise Stop

    with pytest.raises(Stop):
        subdivide(Site(RECT), SubdivisionParams(**GRID), progress=stop)


def test_frontage_takes_the_best_single_street():
    plot = np.array([shapely.box(0, 10, 50, 60)])
    streets = gpd.GeoDataFrame(
        {"row_m": [20.0, 20.0]},
        geometry=[
            shapely.linestrings([[-10, 0], [60, 0]]),
            shapely.linestrings([[-10, 200], [60, 200]]),
        ],
        crs=WORKING_EPSG,
    )
    length, which = frontage(plot, streets)
    assert which.tolist() == [0]
    assert length[0] == pytest.approx(50 + 2 * FRONTAGE_TOLERANCE_M)


def star_sites(count: int, seed: int = 1) -> list[Site]:
    """Seeded star-shaped outlines (concave, 5–11 corners, 0.4–1.2 km radius), each crossed
    by a power line, with a gate to their north."""
    rng = np.random.default_rng(seed)
    sites = []
    for _ in range(count):
        n = rng.integers(5, 12)
        angle, radius = np.sort(rng.uniform(0, 2 * np.pi, n)), rng.uniform(400, 1200, n)
        outline = shapely.Polygon(
            np.column_stack([X0 + radius * np.cos(angle), Y0 + radius * np.sin(angle)])
        )
        line = shapely.LineString(
            [(X0 - 2000, Y0 + rng.uniform(-500, 500)), (X0 + 2000, Y0 + rng.uniform(-500, 500))]
        )
        gate = shapely.Point(X0 + rng.uniform(-300, 300), Y0 + 1300)
        sites.append(
            Site(outline, layers={"power_lines": frame("PL", [line]), "gates": frame("G", [gate])})
        )
    return sites


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", range(6))
def test_concave_outlines_keep_the_invariants(method, case):
    site = star_sites(6)[case]
    params = SubdivisionParams(min_ha=0.5, max_ha=3.0, method=method)
    result = subdivide(site, params)
    assert_invariants(result, site, params)
    # Pieces of streets the spine never reaches are linked to it, not lost with their land.
    assert result.metrics["utilisation"] >= 0.8
