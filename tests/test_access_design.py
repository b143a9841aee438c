"""Access design on hand-computable toy zones, the CLI, the commit and bad input.

The toy zone (metres from (X0, Y0), a multiple of the 25 m lattice spacing used here):
one operational road R1 along y = 0 from x = 0 to 1000; expansion area EXP-T, the square
(300..500, 100..300); in it the candidate plot P1, the square (350..450, 150..250).
A plot is reached by a road within 25 m, so the cheapest road is a straight 125 m spur
from the road (y = 0) to y = 125 below P1: 125 m x 1000 tenge/m = 125,000 tenge.
"""

from __future__ import annotations

import hashlib
import json
import math

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.store import create_store, open_store
from planner.access_design import design_access, freight_model
from planner.corridors import NET, CostModel, build_corridors
from planner.servicing import ServicingModel
from zoneplan.cli import main

X0, Y0 = 650000.0, 4799000.0
CRS = 32643
PER_M = 1000.0


def P(x, y):
    return (X0 + x, Y0 + y)


def box(x0, y0, x1, y1):
    return shapely.box(*P(x0, y0), *P(x1, y1))


def _gdf(rows, geoms):
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=CRS)


def _asset(aid, status="operational", **kw):
    return {
        "asset_id": aid,
        "name": None,
        "status": status,
        "since": None,
        "due": None,
        "note": None,
        **kw,
    }


def _plot(pid, status="candidate", exp="EXP-T"):
    return {"plot_id": pid, "status": status, "exp_id": exp}


def toy_zone(*, zone: shapely.Polygon | None = None, extra_plots=()) -> dict:
    """The module's toy zone; ``zone`` adds a protection zone (planned: any status forbids)."""
    plots = [(_plot("P1"), box(350, 150, 450, 250))] + list(extra_plots)
    layers = {
        "roads": _gdf(
            [_asset("R1", **{"class": "local"})], [shapely.LineString([P(0, 0), P(1000, 0)])]
        ),
        "expansion": _gdf(
            [
                {"exp_id": "EXP-T", "name": "Toy", "status": "approved"},
                {"exp_id": "EXP-E", "name": "Empty", "status": "proposed"},
            ],
            [box(300, 100, 500, 300), box(2000, 2000, 2100, 2100)],
        ),
        "plots": _gdf([r for r, _ in plots], [g for _, g in plots]),
    }
    if zone is not None:
        layers["prot_zones"] = _gdf(
            [_asset("PZ-1", status="planned", kind="gas", width_m=10.0)], [zone]
        )
    return layers


def _model(layers):
    return ServicingModel(layers, today="2026-01-01")


def _design(layers, targets=("P1",), **kw):
    model = _model(layers)
    area = layers["expansion"].geometry.values[0]
    graph = build_corridors(
        model,
        area,
        list(targets),
        kind="road",
        costs=CostModel.default("road", per_m=PER_M),
        spacing_m=25.0,
    )
    return graph, design_access(graph, time_limit=None, **kw)


def _check_design(graph, design, layers):
    """A forest joining every reached target to the network, cost = sum of segments,
    no segment inside a forbidden zone."""
    segs = design.segments
    assert design.summary["cost"] == pytest.approx(float(segs["cost"].sum()))
    assert design.summary["cost"] == pytest.approx(float(graph.cost[design.chosen].sum()))
    g = nx.Graph()
    g.add_node(NET)
    g.add_edges_from(zip(graph.u[design.chosen].tolist(), graph.v[design.chosen].tolist()))
    assert nx.is_forest(g)
    for k, pid in enumerate(graph.targets):
        if pid in graph.unreachable or graph.served[k]:
            continue
        assert any(n in g and nx.has_path(g, n, NET) for n in graph.reach[k].tolist()), pid
    if len(graph.forbidden):
        inside = shapely.intersection(
            shapely.union_all(graph.forbidden).buffer(-0.01),
            shapely.union_all(segs.geometry.values),
        )
        assert shapely.length(inside) < 1e-6
    network = shapely.union_all(list(layers["roads"].geometry) + list(segs.geometry))
    plots = layers["plots"].set_index("plot_id")
    for pid in design.summary["connected"]:
        assert plots.loc[pid].geometry.distance(network) <= 25.0 + 1e-6


def test_square_beside_one_road_gets_the_straight_125_m_spur():
    layers = toy_zone()
    graph, design = _design(layers)
    _check_design(graph, design, layers)
    s = design.summary
    assert s["cost"] == pytest.approx(125 * PER_M) and s["optimal"]
    assert s["lower_bound"] == pytest.approx(125 * PER_M) and s["gap"] == pytest.approx(0.0)
    assert len(design.segments) == 1
    seg = design.segments.iloc[0]
    assert seg["length_m"] == pytest.approx(125.0) and seg["targets"] == ["P1"]
    ys = sorted(y - Y0 for _, y in shapely.get_coordinates(seg.geometry))
    assert ys[0] == pytest.approx(0.0) and ys[-1] == pytest.approx(125.0)
    xs = shapely.get_coordinates(seg.geometry)[:, 0] - X0
    assert np.allclose(xs, xs[0]) and 350 - 1e-6 <= xs[0] <= 450 + 1e-6


def test_a_protection_zone_forces_a_detour():
    # the zone spans x 250..550 between the road and the plot; its edge may be followed
    layers = toy_zone(zone=box(250, 20, 550, 110))
    graph, design = _design(layers)
    _check_design(graph, design, layers)
    # round the zone's corner: 125 m up its edge at x = 250 (or 550), one diagonal
    # (25 sqrt 2) and 50 m east to (325, 150), 25 m from the plot
    detour = 125 + 25 * math.sqrt(2) + 50
    assert design.summary["cost"] == pytest.approx(detour * PER_M)
    assert design.summary["optimal"]


def test_a_plot_closed_in_is_named_unreachable_with_the_reason():
    ring = shapely.Polygon(
        box(550, 100, 760, 310).exterior.coords, [box(599, 149, 711, 261).exterior.coords]
    )
    layers = toy_zone(zone=ring, extra_plots=[(_plot("P2"), box(600, 150, 710, 260))])
    graph, design = _design(layers, targets=("P1", "P2"))
    _check_design(graph, design, layers)
    assert design.summary["unreachable"] == ["P2"]
    assert "cut it off" in design.summary["unreachable_reasons"]["P2"]
    assert design.summary["connected"] == ["P1"]
    assert design.summary["cost"] == pytest.approx(125 * PER_M)


def test_an_occupied_plot_is_not_crossed_and_a_served_plot_costs_nothing():
    extra = [
        (_plot("P3", "occupied", None), box(300, 20, 500, 120)),
        (_plot("P4", "available"), box(700, 10, 800, 110)),
    ]
    layers = toy_zone(extra_plots=extra)
    graph, design = _design(layers, targets=("P1", "P4"))
    _check_design(graph, design, layers)
    assert design.summary["already_served"] == ["P4"]
    taken = layers["plots"].geometry.values[1]
    assert (
        shapely.length(
            shapely.intersection(taken.buffer(-0.01), shapely.union_all(design.segments.geometry))
        )
        == 0
    )
    assert design.summary["cost"] > 125 * PER_M


def test_freight_can_pay_for_a_shorter_route():
    layers = toy_zone()
    layers["gates"] = _gdf([_asset("G1")], [shapely.Point(P(1000, 0))])
    model = _model(layers)
    graph = build_corridors(
        model,
        layers["expansion"].geometry.values[0],
        ["P1"],
        kind="road",
        costs=CostModel.default("road", per_m=PER_M),
        spacing_m=25.0,
    )
    fm = freight_model(model, graph, years=10, tonnes={"P1": 50_000.0})
    design = design_access(graph, time_limit=None, freight=fm)
    s = design.summary
    assert s["objective"] == "construction+freight" and s["method"] == "milp"
    assert s["total"] == pytest.approx(s["cost"] + s["freight_cost"])
    base = s["construction_only"]
    assert base["cost"] == pytest.approx(125 * PER_M)
    # freight weight 50 kt x 10 yr x 30 tenge/t-km = 15,000 tenge per metre: heading
    # east toward the gate pays for itself, so the total falls below the freight-blind one
    assert s["total"] <= base["total"] + 1e-6 and s["saving"] == pytest.approx(
        base["total"] - s["total"]
    )
    assert s["gap"] <= 1e-6
    with pytest.raises(ValueError, match="positive"):
        freight_model(model, graph, years=0)


def test_a_progress_callback_that_raises_stops_the_design():
    layers = toy_zone()
    graph = build_corridors(
        _model(layers), layers["expansion"].geometry.values[0], ["P1"], kind="road", spacing_m=25.0
    )

    class Stop(Exception):
        pass

    def cancel(fraction, message):
        if "Steiner" in message:
            raise Stop(message)

    with pytest.raises(Stop, match="round 1"):
        design_access(graph, progress=cancel)


def test_cost_model_refuses_negative_costs():
    with pytest.raises(ValueError, match=">= 0"):
        CostModel.default("road", per_m=-1.0)
    with pytest.raises(ValueError, match="kind"):
        CostModel.default("canal")


# --------------------------------------------------------------------------- CLI and commit


@pytest.fixture
def toy_db(tmp_path):
    path = tmp_path / "toy.gpkg"
    store = create_store(path)
    with store.transaction("test") as tx:
        for name, frame in toy_zone().items():
            tx.insert(name, frame)
    store.close()
    return str(path)


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_cli_json_stp_out_and_steiner_agree(toy_db, tmp_path, capsys):
    stp = tmp_path / "toy.stp"
    assert (
        main(
            [
                "access",
                "design",
                "--db",
                toy_db,
                "--area",
                "EXP-T",
                "--kind",
                "road",
                "--cost-per-m",
                "1000",
                "--spacing",
                "25",
                "--json",
                "--stp-out",
                str(stp),
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    s = doc["summary"]
    assert doc["type"] == "FeatureCollection" and s["targets"] == ["P1"] and s["unreachable"] == []
    assert s["cost"] == pytest.approx(125_000.0) and s["gap"] == pytest.approx(0.0)
    lon, lat = doc["features"][0]["geometry"]["coordinates"][0]
    assert 70 < lon < 80 and 40 < lat < 50
    assert doc["features"][0]["properties"]["targets"] == ["P1"]
    assert main(["access", "steiner", str(stp), "--json"]) == 0
    solved = json.loads(capsys.readouterr().out)
    assert solved["cost"] == pytest.approx(s["cost"]) and solved["optimal"]
    assert solved["edges"] > len(doc["features"]) and solved["terminals"] == 2


def test_cli_commit_stores_planned_roads_with_audit_and_servicing_uses_them(toy_db, capsys):
    before = ServicingModel(open_store(toy_db).snapshot(), today="2026-01-01")
    assert not before.answer("P1", as_of="2027-06-01")[0]["road"]["fronts"]
    assert (
        main(
            [
                "access",
                "design",
                "--db",
                toy_db,
                "--area",
                "EXP-T",
                "--kind",
                "road",
                "--spacing",
                "25",
                "--commit",
                "--due",
                "2027-05-01",
                "--user",
                "planner",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "committed as planned roads RD-001, due 2027-05-01" in out
    store = open_store(toy_db)
    roads = store.read("roads")
    new = roads.loc[roads["asset_id"] == "RD-001"].iloc[0]
    assert new["status"] == "planned" and str(new["due"])[:10] == "2027-05-01"
    assert new["class"] == "access" and new.geometry.length == pytest.approx(125.0)
    audit = store.read("audit")
    rows = audit.loc[(audit["layer"] == "roads") & (audit["feat_id"] == "RD-001")]
    assert list(rows["action"]) == ["insert"] and list(rows["username"]) == ["planner"]
    model = ServicingModel(store.snapshot(), today="2026-01-01")
    assert not model.answer("P1")[0]["road"]["fronts"]
    assert model.answer("P1", as_of="2027-05-01")[0]["road"]["fronts"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--area", "EXP-9", "--kind", "road"], "unknown expansion area 'EXP-9'"),
        (["--area", "EXP-E", "--kind", "road"], "no target plots"),
        (
            ["--area", "EXP-T", "--kind", "road", "--cost-per-m", "-5"],
            "must be finite numbers >= 0",
        ),
        (["--area", "EXP-T", "--kind", "road", "--targets", "P-404"], "unknown plots: P-404"),
        (["--kind", "road"], "give an expansion area"),
        (["--area", "EXP-T", "--kind", "road", "--commit"], "--commit needs --due"),
        (["--area", "EXP-T", "--kind", "road", "--commit", "--due", "2027-02-30"], "2027-02-30"),
        (["--area", "EXP-T", "--kind", "road", "--time-limit", "0"], "positive"),
        (["--area", "EXP-T", "--kind", "power", "--freight-years", "5"], "not to power feeders"),
        (["--area", "EXP-T", "--kind", "road", "--tonnes", "P1"], "PLOT=TONNES"),
    ],
)
def test_cli_bad_input_is_a_clear_error_and_writes_nothing(toy_db, capsys, argv, message):
    before = _sha(toy_db)
    assert main(["access", "design", "--db", toy_db, *argv]) == 1
    assert message in capsys.readouterr().err
    assert _sha(toy_db) == before


def test_steiner_default_budget_and_prove_flag(tmp_path, capsys):
    import inspect

    from planner.access import DEFAULT_TIME_LIMIT_S, steiner_tree, write_stp

    assert (
        inspect.signature(steiner_tree).parameters["time_limit"].default
        == DEFAULT_TIME_LIMIT_S
        == 10.0
    )
    path = tmp_path / "star.stp"
    write_stp(path, [(1, 4, 6.0), (2, 4, 6.0), (3, 4, 6.0), (1, 2, 10.0)], [1, 2, 3])
    assert main(["access", "steiner", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["time_limit_s"] == 10.0
    assert main(["access", "steiner", str(path), "--prove", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["time_limit_s"] is None and doc["optimal"] and doc["cost"] == 18.0


def test_commit_refuses_a_design_crossing_a_plot_taken_since(toy_db):
    from usecases.access_design import AccessDesignError, commit_design, design_document, run_design

    store = open_store(toy_db)
    doc = design_document(
        run_design(store, kind="road", area_id="EXP-T", spacing_m=25.0, time_limit=None)
    )
    x, y = doc["features"][0]["geometry"]["coordinates"][0]
    with store.transaction("test") as tx:  # someone reserves land across the spur meanwhile
        tx.insert("plots", _gdf([_plot("P9", "reserved", None)], [box(300, 30, 500, 90)]))
    before = _sha(toy_db)
    with pytest.raises(AccessDesignError, match="crosses P9"):
        commit_design(store, doc, user="planner", due="2027-05-01")
    assert _sha(toy_db) == before
    with pytest.raises(AccessDesignError, match="due"):
        commit_design(store, doc, user="planner", due="soon")


def test_cli_freight_years_reports_freight_and_the_saving(toy_db, tmp_path, capsys):
    with open_store(toy_db).transaction("test") as tx:
        tx.insert("gates", _gdf([_asset("G1")], [shapely.Point(P(1000, 0))]))
    out = tmp_path / "design.geojson"
    assert (
        main(
            [
                "access",
                "design",
                "--db",
                toy_db,
                "--area",
                "EXP-T",
                "--kind",
                "road",
                "--spacing",
                "25",
                "--cost-per-m",
                "1000",
                "--freight-years",
                "10",
                "--tonnes",
                "P1=50000",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "freight over 10 years" in text and "construction-only design" in text
    s = json.loads(out.read_text())["summary"]
    assert s["tonnes"] == {"P1": 50000.0} and s["freight_years"] == 10.0
    assert s["total"] == pytest.approx(s["cost"] + s["freight_cost"])
    assert s["saving"] >= 0 and s["objective"] == "construction+freight"
