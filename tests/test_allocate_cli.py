"""``zoneplan allocate`` on the sample zone: tables from the store, optimum beside greedy."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pytest

from zoneplan.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_is_clean_and_never_worse_than_greedy(capsys, sample_db):
    code, out, err = run(
        capsys,
        "allocate",
        "--db",
        str(sample_db),
        "--as-of",
        "2022-11-01",
        "--objective",
        "investment",
        "--time-limit",
        "20",
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)  # solver chatter on stdout would break this
    best, greedy = doc["result"], doc["greedy"]
    assert best["method"] in ("milp", "assignment") and best["status"] == "optimal"
    assert best["objective"] >= greedy["objective"] > 0
    placed = [a["plot_id"] for a in doc["assignments"] if a["plot_id"]]
    assert len(placed) == len(set(placed)) == best["allocated"]
    refused = [a for a in doc["assignments"] if not a["plot_id"]]
    assert refused and all(a["reason"] for a in refused)


def test_rail_needing_applications_wait_for_the_station(capsys, sample_db):
    """As recorded the station is closed: nobody who needs rail can be placed."""
    code, out, _ = run(capsys, "allocate", "--db", str(sample_db), "--json")
    assert code == 0
    doc = json.loads(out)
    from geo.store import open_store

    apps = open_store(sample_db).read("applications").set_index("app_id")
    rail_apps = [a for a in doc["assignments"] if bool(apps.loc[a["app_id"], "rail_need"])]
    assert rail_apps and all(a["plot_id"] is None for a in rail_apps)
    assert any("rail" in a["reason"] for a in rail_apps)


def test_output_files(capsys, sample_db, tmp_path):
    geojson = tmp_path / "chosen.geojson"
    code, out, _ = run(capsys, "allocate", "--db", str(sample_db), "-o", str(geojson))
    assert code == 0 and "first come, first served" in out
    chosen = gpd.read_file(geojson)
    assert chosen.crs.to_epsg() == 4326 and len(chosen) > 0
    assert {"app_id", "plot_id", "project"} <= set(chosen.columns)
    csv = tmp_path / "table.csv"
    assert run(capsys, "allocate", "--db", str(sample_db), "-o", str(csv))[0] == 0
    assert csv.read_text().startswith("app_id,plot_id,reason")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--as-of", "2022-13-01"], "not a date"),
        (["--time-limit", "-1"], "positive"),
        (["-o", "x.txt"], ".csv or .geojson"),
    ],
)
def test_bad_arguments_are_clear_errors(capsys, sample_db, tmp_path, argv, message):
    argv = [a if a != "x.txt" else str(tmp_path / a) for a in argv]
    code, _, err = run(capsys, "allocate", "--db", str(sample_db), *argv)
    assert code == 1 and message in err and "Traceback" not in err


def test_bad_csv_rows_are_reported_by_line(capsys, sample_db, tmp_path):
    bad = tmp_path / "apps.csv"
    bad.write_text(
        "app_id,min_ha,max_ha,sector,rail_need,power_kw,invest,jobs\n"
        "A-1,1,2,food,no,100,1e9,10\nA-2,1,2,food,no,abc,1e9,10\n"
    )
    code, out, err = run(capsys, "allocate", "--db", str(sample_db), "--applications", str(bad))
    assert code == 1 and "line 3" in err and "power_kw" in err and out == ""


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("sector", "spaceships", "'spaceships' is not one of"),
        ("hazard", "77", "above the maximum 5"),
        ("jobs", "1.5", "not a whole number"),
        ("status", "bogus", "'bogus' is not one of"),
    ],
)
def test_csv_rows_are_checked_like_the_applications_table(
    capsys, sample_db, tmp_path, column, value, message
):
    import pandas as pd

    from zoneplan.commands.core import SAMPLE_APPLICATIONS

    apps = pd.read_csv(SAMPLE_APPLICATIONS, dtype=str, keep_default_na=False)
    apps.loc[6, column] = value
    path = tmp_path / "apps.csv"
    apps.to_csv(path, index=False)
    code, out, err = run(capsys, "allocate", "--db", str(sample_db), "--applications", str(path))
    assert code == 1 and out == ""
    assert f"line 8: {column}: " in err and message in err


def test_output_name_is_checked_before_solving(capsys, sample_db, tmp_path):
    code, out, err = run(capsys, "allocate", "--db", str(sample_db), "-o", str(tmp_path / "a.txt"))
    assert code == 1 and out == "" and ".csv or .geojson" in err


def test_summary_speaks_in_units_and_logs_get_no_carriage_returns(tmp_path, capfd):
    from zoneplan.cli import main

    db = tmp_path / "z.gpkg"
    assert main(["init", "--db", str(db)]) == 0
    capfd.readouterr()
    assert main(["allocate", "--db", str(db), "--time-limit", "10"]) == 0
    out, err = capfd.readouterr()
    assert "\r" not in err and "\r" not in out  # progress is for terminals only
    assert re.search(r"investment placed\s+[\d.]+ bn ₸\s+[\d.]+ bn ₸", out)
    assert re.search(r"jobs placed\s+\d[\d,]*\s+\d[\d,]*\n", out)  # no ".00" on people
    assert "weighted score" in out and "objective " not in out
    assert main(["allocate", "--db", str(db), "--applications", str(tmp_path / "nope.csv")]) == 1
    assert f"no file {tmp_path / 'nope.csv'}" in capfd.readouterr().err


def test_tenge_and_counts_read_like_people_write_them():
    from zoneplan.numbers import count, tenge

    assert tenge(29_858_000_000) == "29.9 bn ₸" and tenge(350_000) == "350 k ₸"
    assert tenge(999) == "999 ₸" and tenge(None) == "-" and tenge(1.25e12) == "1.2 tn ₸"
    assert count(867.0) == "867" and count(12_400) == "12,400" and count(float("nan")) == "-"


def test_postgis_store_allocates_and_counts_as_the_geopackage(
    capsys, sample_db, postgis_server, sample_pg
):
    answers = []
    for db in (str(sample_db), f"{postgis_server}/{sample_pg}"):
        code, out, err = run(
            capsys, "allocate", "--db", db, "--as-of", "2022-11-01", "--method", "greedy", "--json"
        )
        assert code == 0, err
        doc = json.loads(out)
        code, kpi, err = run(capsys, "kpi", "--db", db, "--as-of", "2022-11-01", "--json")
        assert code == 0, err
        greedy = {k: v for k, v in doc["greedy"].items() if k != "elapsed_s"}
        answers.append((doc["assignments"], greedy, json.loads(kpi)))
    assert answers[0] == answers[1]
