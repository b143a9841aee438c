"""Accessibility metrics and isochrones on the hand-checkable tiny zone of test_servicing.

Arterial 50 km/h = 0.0012 min/m, local 30 km/h = 0.002 min/m, the straight gap from a
station to its road node at 20 km/h = 0.003 min/m.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from test_servicing import tiny_zone

import planner.steiner
from planner import access
from planner.access import accessibility, isochrones, metrics_document, parse_bands
from planner.servicing import ServicingModel


@pytest.fixture
def model():
    return ServicingModel(tiny_zone(), today="2026-01-01")


def test_steiner_is_re_exported():
    for name in (
        "steiner_tree",
        "SteinerTree",
        "DisconnectedTerminalsError",
        "read_stp",
        "write_stp",
    ):
        assert getattr(access, name) is getattr(planner.steiner, name)


def test_distances_and_times(model):
    m = accessibility(model, as_of="2022-11-01").set_index("plot_id")
    p1 = m.loc["P1"]
    assert (p1["G1_m"], p1["G1_min"], p1["G2_m"], p1["G2_min"]) == (150.0, 0.18, 850.0, 1.02)
    assert (p1["gate"], p1["gate_m"], p1["gate_min"]) == ("G1", 150.0, 0.18)
    # 450 m arterial + 90 m local + 10 m gap
    assert (p1["station"], p1["station_m"], p1["station_min"]) == ("ST1", 550.0, 0.75)
    assert bool(p1["rail"]) is False and bool(p1["rail_asof"]) is True
    assert (p1["substation"], p1["substation_m"]) == ("SS-12", 270.0)
    rec = accessibility(model).set_index("plot_id")
    assert (rec.loc["P1", "substation"], rec.loc["P1", "substation_m"]) == ("SS-5", 870.0)
    assert not rec["rail_asof"].any()
    assert m.crs.to_epsg() == 32643 and len(m) == 4


def test_closed_gate_is_unreachable(model):
    m = accessibility(model, what_if={("gates", "G1"): "closed"}).set_index("plot_id")
    assert np.isnan(m.loc["P1", "G1_m"]) and m.loc["P1", "gate"] == "G2"


def test_isochrones(model):
    iso = isochrones(model, "0.5,1")
    assert dict(zip(iso["plot_id"], iso["minutes"])) == {"P1": 0.5, "P3": 0.5, "P4": 0.5}
    iso = isochrones(model, [2, 0.2, 0.5])
    assert dict(zip(iso["plot_id"], iso["minutes"])) == {"P1": 0.2, "P2": 2.0, "P3": 0.5, "P4": 0.5}
    assert isinstance(iso, gpd.GeoDataFrame) and iso.crs.to_epsg() == 32643


def test_parse_bands():
    assert parse_bands("10, 2,5,2") == (2.0, 5.0, 10.0)
    assert parse_bands(None) == (2.0, 5.0, 10.0)
    for bad in ("2,x", "0", "-1", "", "inf"):
        with pytest.raises(ValueError, match="minutes"):
            parse_bands(bad)


def test_document(model):
    doc = metrics_document(model, as_of="2022-11-01", minutes="0.5,1")
    json.dumps(doc, allow_nan=False)
    assert doc["isochrones"] == {"0.5": ["P1", "P3", "P4"], "1": []}
    assert doc["plots"][0]["plot_id"] == "P1" and doc["plots"][0]["rail_asof"] is True


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory):
    from geo.store import create_store

    path = tmp_path_factory.mktemp("access") / "tiny.gpkg"
    store = create_store(path)
    with store.transaction("test") as tx:
        for name, frame in tiny_zone().items():
            tx.insert(name, frame)
    store.close()
    return str(path)


def test_cli(tiny_db, tmp_path, capsys, monkeypatch):
    from zoneplan.cli import main

    monkeypatch.setenv("ZONEPLAN_TODAY", "2026-01-01")
    assert (
        main(
            [
                "access",
                "metrics",
                "--db",
                tiny_db,
                "--json",
                "--minutes",
                "0.5,1",
                "--as-of",
                "2022-11-01",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["as_of"] == "2022-11-01" and doc["minutes"] == [0.5, 1.0]
    assert main(["access", "metrics", "--db", tiny_db]) == 0
    assert "within 2 min of a gate: 4 plots" in capsys.readouterr().out
    assert main(["access", "metrics", "--db", tiny_db, "-o", str(tmp_path / "a.csv")]) == 0
    csv = pd.read_csv(tmp_path / "a.csv")
    assert list(csv["minutes"]) == [2.0] * 4 and "G1_min" in csv.columns
    assert main(["access", "metrics", "--db", tiny_db, "-o", str(tmp_path / "a.geojson")]) == 0
    assert gpd.read_file(tmp_path / "a.geojson").crs.to_epsg() == 4326
    assert main(["access", "metrics", "--db", tiny_db, "--as-of", "2022-02-30"]) == 1
    assert "--as-of" in capsys.readouterr().err
    assert main(["access", "metrics", "--db", tiny_db, "--minutes", "x"]) == 1
    assert main(["access", "metrics", "--db", tiny_db, "-o", str(tmp_path / "a.shp")]) == 1
