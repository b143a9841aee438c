"""Readiness says what it counted, and rail says how it is reached: in the servicing answer,
on the plot page, in the catalogue (never a bare "unknown") and on the command line."""

from __future__ import annotations

import subprocess
import sys

from test_servicing import by_id, late, tiny_zone  # noqa: F401 - late is a fixture

from planner.servicing import ServicingModel, explain, readiness_basis

BASIS = "counts road, power, water; not required: rail, storm sewer, gas"


def test_rail_says_siding_at_the_plot_or_station_away_by_road(late):
    r = by_id(ServicingModel(tiny_zone(), today=late).answer(as_of="2022-11-01"))
    assert explain(r["P4"])[1].startswith("rail: siding D1 at the plot (10 m) (projected)")
    assert explain(r["P1"])[1].startswith("rail: station ST1 0.6 km away by road (projected)")


def test_readiness_names_what_it_requires(late):
    r = by_id(ServicingModel(tiny_zone(), today=late).answer())
    for rec in r.values():
        needed = [u for u in ("road", "rail", "power", "water", "storm", "gas") if rec[u]["needed"]]
        assert explain(rec)[-1].endswith(" — readiness " + readiness_basis(rec))
        assert readiness_basis(rec).startswith(
            "counts " + ", ".join({"storm": "storm sewer"}.get(u, u) for u in needed)
        )
    strict = ServicingModel(
        tiny_zone(), today=late, required=("road", "power", "water", "storm", "gas", "rail")
    )
    assert (
        readiness_basis(strict.answer()[0]) == "counts road, rail, power, water, storm sewer, gas"
    )


def test_plot_page_and_catalogue_say_what_readiness_counts(client, planner_client):
    client.get("/lang/en")
    page = client.get("/plots/P-104").get_data(as_text=True)
    assert f'id="zp-ready-basis">Readiness {BASIS}</small>' in page
    assert "ready to build now — readiness " + BASIS in page
    catalogue = client.get("/plots").get_data(as_text=True)
    assert "storm sewer and gas are not required" in catalogue
    plots = planner_client.get("/api/plots?status=candidate,available&limit=1000").get_json()[
        "features"
    ]
    unknown = [f["properties"] for f in plots if f["properties"]["ready"] == "unknown"]
    assert unknown and all(p["waits_for"] for p in unknown)
    assert all(p["waits_for"] == [] for f in plots if (p := f["properties"])["ready"] == "now")
    pid = unknown[0]["plot_id"]
    planner_client.get("/lang/en")
    page = planner_client.get(f"/plots/{pid}").get_data(as_text=True)
    assert (
        "date unknown (waits for "
        + ", ".join({"storm": "storm sewer"}.get(u, u) for u in unknown[0]["waits_for"])
        in page
    )


def test_cli_servicing_says_what_readiness_counts(store_path):
    run = [sys.executable, "-m", "zoneplan.cli", "servicing", "--db", str(store_path)]
    out = subprocess.run(run, capture_output=True, text=True, timeout=120).stdout
    assert (
        "ready counts road, power, water (and rail where the plot needs it); storm sewer "
        "and gas are not required" in out
    )
    assert " unknown " not in out.replace("unknown (waits for", "")
    one = subprocess.run(
        run + ["--plot", "P-104"], capture_output=True, text=True, timeout=120
    ).stdout
    assert "ready to build now — readiness " + BASIS in one
