"""Zone indicators on the hand-checkable tiny zone of test_servicing (areas: 0.5 ha per
diamond of half-diagonal 50 m, 0.32 ha for P4) and on the sample zone."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_servicing import SAMPLE, tiny_zone

from planner.kpi import kpi
from planner.servicing import ServicingModel
from zoneplan.commands.kpi import format_kpi


def zone_with_targets():
    zone = tiny_zone()
    plots = zone["plots"]
    plots["sector"] = [None, None, "food", None]
    plots["invest"] = [5e8, None, 1e9, None]
    plots["jobs"] = pd.array([10, None, 50, None], dtype="Int64")
    plots["floor_m2"] = [800.0, None, 2000.0, None]
    plots["start_yr"] = pd.array([2023, None, 2022, None], dtype="Int64")
    zone["targets"] = pd.DataFrame(
        {
            "target_id": ["T-01", "T-02", "T-03", "T-04"],
            "name": ["projects", "invest", "parks", "floor"],
            "metric": ["projects", "invest", "parks", "floor_m2"],
            "value": [2.0, 4e9, 4.0, 10000.0],
            "year": [2022, 2022, 2025, 2025],
        }
    )
    return zone


@pytest.fixture
def late():
    """Today after every due date (passed to the core as ``today``)."""
    return "2026-01-01"


def test_area_investment_headroom(late):
    report = kpi(zone_with_targets(), today=late)
    json.dumps(report, allow_nan=False)
    assert report["area"]["total_ha"] == 1.82
    assert report["area"]["by_status"]["reserved"] == {"plots": 1, "area_ha": 0.5}
    assert report["area"]["by_status"]["candidate"] == {"plots": 1, "area_ha": 0.32}
    assert report["area"]["by_status"]["occupied"] == {"plots": 0, "area_ha": 0.0}
    assert report["area"]["by_sector"]["food"] == {"plots": 1, "area_ha": 0.5}
    assert report["area"]["by_sector"]["none"] == {"plots": 3, "area_ha": 1.32}
    inv = report["investment"]
    assert (inv["plots"], inv["area_ha"], inv["invest"], inv["jobs"]) == (1, 0.5, 1e9, 50)
    assert (inv["invest_per_ha"], inv["jobs_per_ha"]) == (2e9, 100.0)
    head = {h["asset_id"]: h for h in report["headroom"]}
    assert head["SS-5"]["headroom"] == 1500.0 and head["SS-12"]["headroom"] == 0.0
    assert head["W1"]["headroom"] == 250.0 and head["SS-12"]["reason"]
    assert report["servicing"]["storm"] == 0 and report["servicing"]["rail"] == 0
    assert "T-01 projects" in format_kpi(report)


def test_targets_progress(late):
    report = kpi(zone_with_targets(), today=late)
    t = {x["target_id"]: x for x in report["targets"]}
    assert (t["T-01"]["actual"], t["T-01"]["progress"]) == (1.0, 0.5)
    assert (t["T-02"]["actual"], t["T-02"]["progress"]) == (1e9, 0.25)
    assert (t["T-03"]["actual"], t["T-03"]["progress"]) == (1.0, 0.25)  # P3 only: P1 reserved
    assert (t["T-04"]["actual"], t["T-04"]["progress"]) == (2000.0, 0.2)
    early = {
        x["target_id"]: x
        for x in kpi(zone_with_targets(), today=late, as_of="2021-06-01")["targets"]
    }
    assert early["T-01"]["actual"] == 0 and early["T-03"]["actual"] == 0
    assert kpi(tiny_zone(), today=late)["targets"] == []


def test_ready_to_build_follows_the_date(late):
    zone = zone_with_targets()
    model = ServicingModel(zone, today=late)
    now = kpi(zone, model=model)["ready_to_build"]
    assert now["plots"] == 0 and now["available"] == 1
    assert now["waiting_for"]["power"] == 1 and now["waiting_for"]["water"] == 1
    later = kpi(zone, model=model, as_of="2023-06-01")["ready_to_build"]
    assert later["plot_ids"] == ["P2"] and later["area_ha"] == 0.5
    # demanding the storm sewer, never commissioned, leaves nothing ready
    strict = ServicingModel(zone, today=late, required=("road", "power", "water", "storm"))
    assert kpi(zone, model=strict, as_of="2030-01-01")["ready_to_build"]["plots"] == 0


def test_bad_date(late):
    with pytest.raises(ValueError, match="not a date"):
        kpi(zone_with_targets(), today=late, as_of="2022-13-01")


def test_sample_kpi():
    if not (SAMPLE / "plots.shp").exists():
        pytest.skip("data/shapefiles/plots.shp is absent: the sample zone was not generated")
    import tempfile
    from pathlib import Path

    from geo.layers import FEATURE_LAYERS
    from geo.store import create_store
    from zoneplan.commands.core import load_folder

    with tempfile.TemporaryDirectory() as tmp:
        store = create_store(Path(tmp) / "zone.gpkg")
        load_folder(store, SAMPLE)
        snap = store.snapshot((*FEATURE_LAYERS, "targets"))
        store.close()
    report = kpi(snap, today="2026-01-01")
    json.dumps(report, allow_nan=False)
    assert {t["metric"] for t in report["targets"]} == {"projects", "invest", "parks", "floor_m2"}
    assert report["servicing"]["rail"] == 0 and report["servicing"]["storm"] == 0
    ss12 = next(h for h in report["headroom"] if h["asset_id"] == "SS-12")
    assert ss12["headroom"] == 0 and ss12["committed_plots"] == 0
    assert kpi(snap, today="2026-01-01", as_of="2022-11-01")["servicing"]["rail"] > 0


def test_one_occupants_plots_are_one_park(late):
    zone = zone_with_targets()
    zone["plots"].loc[zone["plots"]["plot_id"] == "P1", "status"] = "allocated"
    zone["plots"]["resident"] = ["Steppe Steel LLP", None, "steppe steel llp ", None]
    t = {x["metric"]: x for x in kpi(zone)["targets"]}
    assert (t["parks"]["actual"], t["parks"]["plots"]) == (1.0, 2)  # two plots, one park
    assert t["floor_m2"]["actual"] == 2800.0
    zone["plots"]["resident"] = ["Steppe Steel LLP", None, "Other LLP", None]
    assert {x["metric"]: x for x in kpi(zone)["targets"]}["parks"]["actual"] == 2.0


def test_infrastructure_per_class_and_readiness_by_date(late):
    report = kpi(zone_with_targets())
    classes = {c["layer"]: c for c in report["infrastructure"]}
    subs = classes["substations"]
    assert subs["assets"] == len([h for h in report["headroom"] if h["layer"] == "substations"])
    assert [a["asset_id"] for a in subs["no_capacity"]] == ["SS-12"]
    assert subs["headroom"] == sum(
        h["headroom"] for h in report["headroom"] if h["layer"] == "substations"
    )
    # P2 waits for assets due 2023-06-01: overdue seen from 2026, not from 2022
    due = {"ready": "2023-06-01", "plots": 1, "area_ha": 0.5}
    assert report["ready_by_date"] == [{**due, "overdue": True}]
    assert kpi(zone_with_targets(), today="2022-01-01")["ready_by_date"] == [
        {**due, "overdue": False}
    ]


def test_timeline_ends_at_the_kpi_and_follows_the_audit_trail(late):
    import datetime as dt

    from planner.kpi import timeline

    zone = zone_with_targets()
    audit = pd.DataFrame(
        {
            "layer": ["plots", "plots", "roads"],
            "action": ["update", "update", "update"],
            "feat_id": ["P3", "P3", "P3"],
            "at": ["2022-05-03T10:00:00", "2024-02-01T09:00:00", "2025-01-01T00:00:00"],
            "changes": ['{"status": ["reserved", "allocated"]}', '{"note": ["a", "b"]}', "{}"],
        }
    )
    apps = pd.DataFrame(
        {
            "created": ["2022-03-01T09:00:00", "2022-07-01T09:00:00"],
            "updated": ["2022-03-01T09:00:00", "2022-08-15T09:00:00"],
            "status": ["submitted", "reserved"],
        }
    )
    line = timeline(zone, audit=audit, applications=apps, today=dt.date(2026, 1, 1))
    assert line["months"][0] == "2022-01" and line["months"][-1] == "2026-01"
    at = {m: i for i, m in enumerate(line["months"])}
    parks = next(t for t in line["targets"] if t["metric"] == "parks")
    # P3 (start 2022, floor) counts from its audited allocation in May 2022; the later
    # edit of another field does not move it
    assert parks["actual"][at["2022-04"]] == 0 and parks["actual"][at["2022-05"]] == 1
    report = {t["target_id"]: t for t in kpi(zone)["targets"]}
    for t in line["targets"]:
        assert t["actual"][-1] == report[t["target_id"]]["actual"]
    assert line["applications"]["filed"][at["2022-06"]] == 1
    assert line["applications"]["filed"][at["2022-07"]] == 2
    assert line["applications"]["accepted"][at["2022-07"]] == 0
    assert line["applications"]["accepted"][at["2022-08"]] == 1
    empty = timeline({"plots": zone["plots"]})
    assert empty["months"] == [] and empty["targets"] == []
