"""Servicing answers on a hand-checkable tiny zone, and the story of the sample zone.

The tiny zone (EPSG:32643, origin E 650 000 N 4 799 000; coordinates below are
offsets in metres):

    roads  R1 arterial (0,0)-(400,0)-(600,0)-(1000,0), R2 local (400,0)-(400,600),
           R3 local (600,0)-(600,-90); gates G1 (0,0), G2 (1000,0)
    rail   M1 mainline y=-300; S1 spur (600,-300)-(600,-100) restricted, due 2022-10-30;
           D1 siding (600,-100)-(900,-100); station ST1 (600,-100) closed, due 2022-10-30
    power  SS-12 (400,-20) under repair, 40/30 MVA, due 2022-10-30; SS-5 (1000,20) 25/20 MVA
    water  W1 y=-20 (cap 1000, load 600); W2 x=280 planned, due 2023-06-01 (cap 500)
    storm  SW1 y=-30 not commissioned, no due; gas GM1 y=-40
    plots  diamonds (centre, half-diagonal): P1 (150,60,50) reserved 1000 kW 50 m3/d;
           P2 (340,300,50) available 3000 kW 80 m3/d; P3 (800,150,50) allocated 2000 kW
           100 m3/d; P4 (750,-50,40) candidate 500 kW 30 m3/d, needs rail

Arterial 50 km/h = 1.2 min/km, local 30 km/h = 2 min/km.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo.i18n import N_
from planner.servicing import ServicingModel, explain, parse_what_if

X0, Y0 = 650000.0, 4799000.0
CRS = 32643
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "shapefiles"


def P(x, y):
    return (X0 + x, Y0 + y)


def L(*pts):
    return shapely.LineString([P(*p) for p in pts])


def diamond(cx, cy, r):
    return shapely.Polygon([P(cx, cy - r), P(cx + r, cy), P(cx, cy + r), P(cx - r, cy)])


def _gdf(rows, geoms):
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=CRS)


def _asset(aid, status="operational", due=None, note=None, name=None, **kw):
    return {
        "asset_id": aid,
        "name": name,
        "status": status,
        "since": None,
        "due": due,
        "note": note,
        **kw,
    }


def tiny_zone() -> dict:
    """The hand-checkable zone described in the module docstring."""
    roads = _gdf(
        [
            _asset("R1", name="Main Street", **{"class": "arterial"}),
            _asset("R2", name="North Lane", **{"class": "local"}),
            _asset("R3", name="Station Lane", **{"class": "local"}),
        ],
        [
            L((0, 0), (400, 0), (600, 0), (1000, 0)),
            L((400, 0), (400, 600)),
            L((600, 0), (600, -90)),
        ],
    )
    gates = _gdf(
        [_asset("G1", name="West Gate"), _asset("G2", name="East Gate")],
        [shapely.Point(P(0, 0)), shapely.Point(P(1000, 0))],
    )
    rail = _gdf(
        [
            _asset("M1", name="Main line", kind="mainline"),
            _asset(
                "S1",
                name="Rail Access Road",
                status="restricted",
                due="2022-10-30",
                note="accepted with violations",
                kind="spur",
            ),
            _asset("D1", name="Siding 1", kind="siding"),
        ],
        [
            L((0, -300), (600, -300), (1000, -300)),
            L((600, -300), (600, -100)),
            L((600, -100), (900, -100)),
        ],
    )
    stations = _gdf(
        [
            _asset(
                "ST1",
                name="Industrialnaya",
                status="closed",
                due="2022-10-30",
                note="derailment threat",
                built_yr=2017,
            )
        ],
        [shapely.Point(P(600, -100))],
    )
    subs = _gdf(
        [
            _asset(
                "SS-12",
                name="Substation No. 12",
                status="under_repair",
                due="2022-10-30",
                note="cracked supports",
                cap_mva=40.0,
                load_mva=30.0,
            ),
            _asset("SS-5", name="Substation No. 5", cap_mva=25.0, load_mva=20.0),
        ],
        [shapely.Point(P(400, -20)), shapely.Point(P(1000, 20))],
    )
    water = _gdf(
        [
            _asset("W1", name="Water main 1", cap_m3d=1000.0, load_m3d=600.0),
            _asset(
                "W2",
                name="Water main 2",
                status="planned",
                due="2023-06-01",
                cap_m3d=500.0,
                load_m3d=0.0,
            ),
        ],
        [L((0, -20), (1000, -20)), L((280, 0), (280, 600))],
    )
    storm = _gdf(
        [_asset("SW1", name="Storm sewer", status="not_commissioned", note="never commissioned")],
        [L((0, -30), (1000, -30))],
    )
    gas = _gdf([_asset("GM1", name="Gas main")], [L((0, -40), (1000, -40))])
    plots = _gdf(
        [
            {
                "plot_id": "P1",
                "status": "reserved",
                "power_kw": 1000.0,
                "water_m3d": 50.0,
                "rail_need": False,
            },
            {
                "plot_id": "P2",
                "status": "available",
                "power_kw": 3000.0,
                "water_m3d": 80.0,
                "rail_need": False,
            },
            {
                "plot_id": "P3",
                "status": "allocated",
                "power_kw": 2000.0,
                "water_m3d": 100.0,
                "rail_need": False,
            },
            {
                "plot_id": "P4",
                "status": "candidate",
                "power_kw": 500.0,
                "water_m3d": 30.0,
                "rail_need": True,
            },
        ],
        [diamond(150, 60, 50), diamond(340, 300, 50), diamond(800, 150, 50), diamond(750, -50, 40)],
    )
    plots["rail_need"] = plots["rail_need"].astype("boolean")
    return {
        "plots": plots,
        "roads": roads,
        "gates": gates,
        "rail_lines": rail,
        "rail_stations": stations,
        "substations": subs,
        "water_mains": water,
        "storm_sewers": storm,
        "gas_mains": gas,
    }


LATE = "2026-01-01"


@pytest.fixture
def late(monkeypatch):
    """Today after every due date: recorded-but-unchanged assets are overdue (for the
    CLI, which reads ZONEPLAN_TODAY; models get it as ``today=LATE``)."""
    monkeypatch.setenv("ZONEPLAN_TODAY", LATE)
    return LATE


@pytest.fixture
def model(late):
    return ServicingModel(tiny_zone(), today=late)


def by_id(records):
    return {r["plot_id"]: r for r in records}


# ---------------------------------------------------------------- road
def test_road_frontage_gate_distance_and_time(model):
    r = by_id(model.answer())
    assert r["P1"]["road"] == {
        **r["P1"]["road"],
        "fronts": True,
        "gate": "G1",
        "distance_m": 150.0,
        "minutes": 0.18,
        "road": "R1",
        "gap_m": 10.0,
    }
    # 400 m arterial (0.48 min) + 300 m local (0.6 min)
    assert (r["P2"]["road"]["gate"], r["P2"]["road"]["distance_m"], r["P2"]["road"]["minutes"]) == (
        "G1",
        700.0,
        1.08,
    )
    # P3 lies 100 m from R1: no frontage, but the way to the nearest gate is still given
    assert r["P3"]["road"]["fronts"] is False and r["P3"]["road"]["gap_m"] == 100.0
    assert (r["P3"]["road"]["gate"], r["P3"]["road"]["distance_m"]) == ("G2", 200.0)
    assert r["P3"]["road"]["code"] == "not_fronting"
    assert r["P4"]["road"]["gate"] == "G2" and r["P4"]["road"]["distance_m"] == 250.0


def test_what_if_closing_gate_or_road(model):
    r = by_id(model.answer(what_if={("gates", "G1"): "closed"}))
    assert (r["P1"]["road"]["gate"], r["P1"]["road"]["distance_m"]) == ("G2", 850.0)
    assert r["P1"]["road"]["minutes"] == pytest.approx(1.02)
    r = by_id(model.answer(["P1"], what_if={("roads", "R1"): "closed"}))
    road = r["P1"]["road"]
    assert road["fronts"] is False and road["code"] == "no_gate" and road["gate"] is None
    assert road["distance_m"] is None
    assert [b["asset_id"] for b in road["blocked_by"]] == ["R1"]


# ---------------------------------------------------------------- rail
def test_rail_none_as_recorded_with_reasons(model):
    r = by_id(model.answer())
    assert not any(rec["rail"]["available"] for rec in r.values())
    rail = r["P1"]["rail"]
    assert (rail["via"], rail["via_kind"], rail["distance_m"]) == ("ST1", "station", 550.0)
    assert [b["asset_id"] for b in rail["blocked_by"]] == ["ST1", "S1"]
    assert rail["due"] == "2022-10-30" and rail["overdue"] is True and rail["projected"] is False
    # P4 fronts the siding, which reaches the main line only through the closed
    # station's yard and the restricted spur
    rail = r["P4"]["rail"]
    assert (rail["via"], rail["via_kind"], rail["distance_m"]) == ("D1", "siding", 10.0)
    assert [b["asset_id"] for b in rail["blocked_by"]] == ["ST1", "S1"]
    assert explain(r["P1"])[1] == (
        "rail: none — Industrialnaya station closed (derailment threat), due 2022-10-30, "
        "overdue; Rail Access Road line restricted (accepted with violations), "
        "due 2022-10-30, overdue"
    )


def test_rail_projected_as_of(model):
    r = by_id(model.answer(as_of="2022-11-01"))
    for pid, via, dist in (
        ("P1", "ST1", 550.0),
        ("P2", "ST1", 600.0),
        ("P3", "ST1", 300.0),
        ("P4", "D1", 10.0),
    ):
        rail = r[pid]["rail"]
        assert (rail["available"], rail["via"], rail["distance_m"]) == (True, via, dist)
        assert rail["projected"] is True and rail["overdue"] is True
        assert rail["due"] == "2022-10-30"
    assert "(projected)" in explain(r["P1"])[1]
    # the day before the due date nothing is projected yet
    assert not any(rec["rail"]["available"] for rec in model.answer(as_of="2022-10-29"))


def test_rail_reach(late):
    m = ServicingModel(tiny_zone(), today=late, rail_reach_m=500)
    r = by_id(m.answer(as_of="2022-11-01"))
    assert r["P1"]["rail"]["available"] is False and r["P1"]["rail"]["code"] == "out_of_reach"
    assert r["P3"]["rail"]["available"] is True


def test_overdue_depends_on_today():
    m = ServicingModel(tiny_zone(), today="2022-09-01")
    r = by_id(m.answer(as_of="2022-11-01"))
    assert r["P1"]["rail"]["projected"] is True and r["P1"]["rail"]["overdue"] is False
    assert by_id(m.answer())["P1"]["rail"]["overdue"] is False
    assert m.today.isoformat() == "2022-09-01"
    assert ServicingModel(tiny_zone(), today="2023-01-01").today.isoformat() == "2023-01-01"


def test_what_if_station_and_spur(model):
    r = by_id(
        model.answer(
            what_if={("rail_stations", "ST1"): "operational", ("rail_lines", "S1"): "operational"}
        )
    )
    assert r["P1"]["rail"]["available"] and r["P1"]["rail"]["projected"]
    # only the spur: the closed station still blocks the yard and the siding
    r = by_id(model.answer(what_if={("rail_lines", "S1"): "operational"}))
    assert not r["P4"]["rail"]["available"]
    assert [b["asset_id"] for b in r["P4"]["rail"]["blocked_by"]] == ["ST1"]


# ---------------------------------------------------------------- power
def test_power_headroom_arithmetic(model):
    h = model.headroom().set_index("asset_id")
    # SS-5: (25 - 20) MVA * 1000 * 0.9 = 4500 kW, minus reserved P1 1000 and allocated P3 2000
    assert h.loc["SS-5", "base"] == pytest.approx(4500.0)
    assert h.loc["SS-5", "committed"] == pytest.approx(3000.0)
    assert h.loc["SS-5", "headroom"] == pytest.approx(1500.0)
    assert h.loc["SS-12", "headroom"] == 0.0 and "under repair" in h.loc["SS-12", "reason"]
    assert h.loc["W1", "headroom"] == pytest.approx(1000 - 600 - 50 - 100)
    r = by_id(model.answer())
    p1 = r["P1"]["power"]
    assert (p1["substation"], p1["distance_m"], p1["headroom_kw"], p1["fits"]) == (
        "SS-5",
        870.0,
        1500.0,
        True,
    )
    assert [b["asset_id"] for b in p1["bypassed"]] == ["SS-12"]
    p2 = r["P2"]["power"]
    assert (p2["substation"], p2["distance_m"], p2["demand_kw"], p2["fits"], p2["code"]) == (
        "SS-5",
        920.0,
        3000.0,
        False,
        "short",
    )
    assert not any(rec["power"]["substation"] == "SS-12" for rec in r.values())


def test_power_factor_and_projection(late):
    m = ServicingModel(tiny_zone(), today=late, power_factor=0.8)
    assert m.headroom().set_index("asset_id").loc["SS-5", "base"] == pytest.approx(4000.0)
    m = ServicingModel(tiny_zone(), today=late)
    r = by_id(m.answer(as_of="2022-11-01"))
    # SS-12 repaired: 10 MVA * 900 = 9000 kW minus reserved P1 (now served by SS-12)
    assert (r["P1"]["power"]["substation"], r["P1"]["power"]["headroom_kw"]) == ("SS-12", 8000.0)
    assert r["P1"]["power"]["projected"] is True
    assert (
        r["P2"]["power"]["substation"],
        r["P2"]["power"]["distance_m"],
        r["P2"]["power"]["fits"],
    ) == ("SS-12", 320.0, True)
    assert (r["P3"]["power"]["substation"], r["P3"]["power"]["headroom_kw"]) == ("SS-5", 2500.0)
    w = by_id(m.answer(what_if={("substations", "SS-12"): "operational"}))
    assert w["P1"]["power"]["substation"] == "SS-12" and w["P1"]["power"]["projected"]
    line = next(x for x in explain(w["P1"]) if x.startswith("power"))
    assert "assumed operational (what-if)" in line and "until" not in line


# ---------------------------------------------------------------- mains
def test_water_storm_gas(model):
    r = by_id(model.answer())
    assert (
        r["P1"]["water"]["main"],
        r["P1"]["water"]["distance_m"],
        r["P1"]["water"]["headroom_m3d"],
        r["P1"]["water"]["fits"],
    ) == ("W1", 30.0, 250.0, True)
    w2 = r["P2"]["water"]
    assert (w2["available"], w2["main"], w2["distance_m"], w2["due"]) == (
        False,
        "W2",
        10.0,
        "2023-06-01",
    )
    for rec in r.values():
        assert rec["storm"]["available"] is False
    assert r["P1"]["storm"]["blocked_by"][0]["asset_id"] == "SW1"
    assert r["P1"]["storm"]["due"] is None
    assert r["P2"]["storm"]["code"] == "none_within"
    assert (r["P1"]["gas"]["main"], r["P1"]["gas"]["distance_m"]) == ("GM1", 50.0)
    assert r["P2"]["gas"]["available"] is False


# ---------------------------------------------------------------- readiness
def test_readiness(late):
    m = ServicingModel(tiny_zone(), today=late)
    r = by_id(m.answer())
    assert r["P1"]["ready"] == "now"
    assert r["P2"]["ready"] == "2023-06-01"  # power after SS-12 (2022-10-30), water W2
    assert r["P2"]["waits_for"] == ["power", "water"]
    assert r["P3"]["ready"] == "unknown"  # no frontage: no asset to wait for
    assert r["P4"]["ready"] == "2022-10-30" and r["P4"]["ready_overdue"] is True
    # storm sewer required on request: never commissioned, no due date
    strict = ServicingModel(tiny_zone(), today=late, required=("road", "power", "water", "storm"))
    assert {rec["ready"] for rec in strict.answer()} == {"unknown"}


# ---------------------------------------------------------------- drawn parcels
def test_answer_geometry(model):
    rec = model.answer_geometry(diamond(490, 60, 50), power_kw=100)
    assert rec["plot_id"] is None and rec["area_ha"] == 0.5
    assert (rec["road"]["gate"], rec["road"]["distance_m"]) == ("G1", 490.0)
    assert (rec["power"]["substation"], rec["power"]["distance_m"], rec["power"]["fits"]) == (
        "SS-5",
        530.0,
        True,
    )
    assert rec["water"]["demand_m3d"] is None and rec["water"]["fits"] is None
    with pytest.raises(ValueError, match="Polygon"):
        model.answer_geometry(shapely.Point(P(0, 0)))
    with pytest.raises(ValueError, match="valid"):
        model.answer_geometry(shapely.Polygon([P(0, 0), P(10, 10), P(10, 0), P(0, 10)]))


# ---------------------------------------------------------------- document, input
def test_document_is_json_safe(model):
    doc = model.document(as_of="2022-11-01")
    text = json.dumps(doc, allow_nan=False)
    assert doc["as_of"] == "2022-11-01" and doc["today"] == "2026-01-01"
    assert all(isinstance(p["rail"]["available"], bool) for p in json.loads(text)["plots"])
    assert model.document()["as_of"] is None


def test_bad_input(model):
    with pytest.raises(ValueError, match="unknown plot id.*NOPE"):
        model.answer(["P1", "NOPE"])
    with pytest.raises(ValueError, match="not a date"):
        model.answer(as_of="2022-02-30")
    with pytest.raises(ValueError) as err:
        model.answer(
            what_if={
                ("substations", "SS-99"): "operational",
                ("roads", "R1"): "open",
                ("nolayer", "x"): "closed",
            }
        )
    msg = str(err.value)
    assert "SS-99" in msg and "'open'" in msg and "nolayer" in msg
    with pytest.raises(ValueError, match="layer:asset_id=status"):
        parse_what_if(["substations-SS-12"])
    assert parse_what_if(["substations:SS-12=operational"]) == {
        ("substations", "SS-12"): "operational"
    }
    with pytest.raises(ValueError, match="power factor"):
        ServicingModel(tiny_zone(), power_factor=0)


def test_unreachable_plot_is_an_answer(late):
    zone = tiny_zone()
    island = diamond(2000, 2000, 30)
    zone["roads"] = pd.concat(
        [
            zone["roads"],
            _gdf([_asset("R9", **{"class": "local"})], [L((1900, 1960), (2100, 1960))]),
        ],
        ignore_index=True,
    )
    zone["plots"] = pd.concat(
        [
            zone["plots"],
            _gdf([{"plot_id": "P9", "status": "available", "power_kw": 10.0}], [island]),
        ],
        ignore_index=True,
    )
    rec = ServicingModel(zone, today=late).answer(["P9"])[0]
    assert rec["road"]["fronts"] is True and rec["road"]["code"] == "no_gate"
    assert rec["road"]["distance_m"] is None and rec["power"]["code"] == "unreachable"
    assert "no usable route to any gate" in explain(rec)[0]


def test_explain_translates_templates_before_formatting(model):
    rec = by_id(model.answer())["P1"]
    calls = []

    def fake(template):
        calls.append(template)
        return template.replace("none", "нет").replace("closed", "закрыта")

    lines = explain(rec, fake)
    assert lines[1].startswith("rail: нет — Industrialnaya station закрыта (derailment threat)")
    assert "{name} {noun} {status}" in calls
    assert N_("x") == "x"


# ---------------------------------------------------------------- sample zone
@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def sample_model(request, sample_db):
    """The servicing model of the sample zone read from each backend (the same sample)."""
    from geo.store import open_store

    if request.param == "gpkg":
        location = str(sample_db)
    else:
        location = (
            f"{request.getfixturevalue('postgis_server')}/{request.getfixturevalue('sample_pg')}"
        )
    store = open_store(location)
    snap = store.snapshot()
    store.close()
    return ServicingModel(snap, today="2026-01-01")


def test_sample_story(sample_model):
    m = sample_model
    recorded = m.answer()
    assert len(recorded) == len(m.plot_ids) > 0
    assert not any(r["rail"]["available"] for r in recorded)
    assert not any(r["storm"]["available"] for r in recorded)
    assert not any(
        r["power"]["substation"] == "SS-12" and r["power"]["available"] for r in recorded
    )
    h = m.headroom().set_index("asset_id")
    assert h.loc["SS-12", "headroom"] == 0.0
    projected = m.answer(as_of="2022-11-01")
    with_rail = [r for r in projected if r["rail"]["available"]]
    assert with_rail and all(r["rail"]["projected"] for r in with_rail)
    assert any(r["rail"]["via"] == "RST-1" for r in with_rail)
    assert max(r["rail"]["distance_m"] for r in with_rail) <= m.rail_reach_m
    assert not any(r["storm"]["available"] for r in projected)
    # the plot of Asia Steel Pipe fronts siding SD-1
    steel = m.answer(["P-096"], as_of="2022-11-01")[0]["rail"]
    assert steel["available"] and steel["via"] == "SD-1"
    json.dumps(m.document(), allow_nan=False)


# ---------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory):
    from geo.store import create_store

    path = tmp_path_factory.mktemp("servicing") / "tiny.gpkg"
    store = create_store(path)
    with store.transaction("test") as tx:
        for name, frame in tiny_zone().items():
            tx.insert(name, frame)
    store.close()
    return str(path)


def test_cli_servicing_json_and_text(tiny_db, late, capsys):
    from zoneplan.cli import main

    assert main(["servicing", "--db", tiny_db, "--json", "--as-of", "2022-11-01"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["as_of"] == "2022-11-01"
    assert [p["rail"]["available"] for p in doc["plots"]] == [True] * 4
    assert main(["servicing", "--db", tiny_db, "--plot", "P1"]) == 0
    out = capsys.readouterr().out
    assert "rail: none — Industrialnaya station closed (derailment threat)" in out
    assert (
        main(
            [
                "servicing",
                "--db",
                tiny_db,
                "--what-if",
                "substations:SS-12=operational",
                "--plot",
                "P2",
                "--json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["plots"][0]["power"]["substation"] == "SS-12"
    assert main(["servicing", "--db", tiny_db]) == 0
    assert "4 plots: 0 with rail access" in capsys.readouterr().out


def test_cli_servicing_errors(tiny_db, late, capsys, tmp_path):
    from zoneplan.cli import main

    assert main(["servicing", "--db", tiny_db, "--as-of", "30.10.2022"]) == 1
    err = capsys.readouterr().err
    assert "--as-of" in err and "YYYY-MM-DD" in err
    assert main(["servicing", "--db", tiny_db, "--plot", "P77"]) == 1
    assert "P77" in capsys.readouterr().err
    assert main(["servicing", "--db", tiny_db, "--what-if", "gates:G1=shut"]) == 1
    assert "'shut'" in capsys.readouterr().err
    assert main(["servicing", "--db", tiny_db, "-o", str(tmp_path / "x.txt")]) == 1


def test_cli_servicing_files(tiny_db, late, tmp_path, capsys):
    from zoneplan.cli import main

    for name in ("s.json", "s.csv", "s.geojson"):
        assert main(["servicing", "--db", tiny_db, "-o", str(tmp_path / name)]) == 0
    assert len(pd.read_csv(tmp_path / "s.csv")) == 4
    gj = gpd.read_file(tmp_path / "s.geojson")
    assert len(gj) == 4 and gj.crs.to_epsg() == 4326
    assert json.loads((tmp_path / "s.json").read_text())["plots"][0]["plot_id"] == "P1"


def test_cli_network_report_and_kpi(tiny_db, late, capsys):
    from zoneplan.cli import main

    assert main(["servicing", "--db", tiny_db, "--network"]) == 0
    report = json.loads(capsys.readouterr().out)
    roads = report["roads"]
    assert (roads["tolerance_m"], roads["nodes"], roads["edges"]) == (2.0, 6, 5)
    assert roads["dangling_ends"] == 4
    assert sorted(d["at_gate"] for d in roads["dangling"]) == [False, False, True, True]
    assert main(["kpi", "--db", tiny_db, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["area"]["total_ha"] == 1.82 and doc["targets"] == []
    assert main(["kpi", "--db", tiny_db]) == 0
    assert "ready to build: 0 of 1 available plot (0.0 ha)" in capsys.readouterr().out
    assert main(["kpi", "--db", tiny_db, "--as-of", "tomorrow"]) == 1
    assert "--as-of" in capsys.readouterr().err


def test_today_is_read_at_the_edge(tiny_db, monkeypatch, capsys):
    """ZONEPLAN_TODAY is read by the CLI and the app's config, never inside planner/ (see
    test_layering's test that geo/ and planner/ read no environment)."""
    import datetime as dt

    from web import config_from_env
    from zoneplan.cli import main

    assert config_from_env({"ZONEPLAN_TODAY": "2022-09-01"})["ZONEPLAN_TODAY"] == dt.date(
        2022, 9, 1
    )
    with pytest.raises(ValueError, match="ZONEPLAN_TODAY"):
        config_from_env({"ZONEPLAN_TODAY": "soon"})
    monkeypatch.setenv("ZONEPLAN_TODAY", "2022-09-01")
    assert main(["servicing", "--db", tiny_db, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["today"] == "2022-09-01"
    assert not by_id(doc["plots"])["P1"]["rail"]["overdue"]
    monkeypatch.setenv("ZONEPLAN_TODAY", "2026-01-01")
    assert main(["servicing", "--db", tiny_db, "--json"]) == 0
    assert by_id(json.loads(capsys.readouterr().out)["plots"])["P1"]["rail"]["overdue"]
    monkeypatch.setenv("ZONEPLAN_TODAY", "someday")
    assert main(["servicing", "--db", tiny_db]) == 1
    assert "ZONEPLAN_TODAY" in capsys.readouterr().err
