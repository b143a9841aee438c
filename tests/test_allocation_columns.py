"""Tests for the allocation's column model: against the exact pair MILP, rules kept, same reasons and first-come baseline."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from test_allocation import assert_feasible, random_instance

from planner.allocation import solve, solver
from planner.allocation.greedy import State
from planner.allocation.inputs import prepare, value_model
from planner.allocation.pairs import compatible_pairs
from planner.allocation.reasons import unallocated_reasons


def by_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route every size through the column model (it normally starts above millions of pairs)."""
    monkeypatch.setattr(solver, "COLUMN_LIMIT", -1)
    monkeypatch.setattr(solver, "PAIR_LIMIT", -1)


def tight_instance(seed: int, n_apps: int, n_plots: int, n_nodes: int):
    """A random zone whose substations can serve only part of the demand that reaches them."""
    plots, apps, caps = random_instance(np.random.default_rng(seed), n_apps, n_plots, n_nodes)
    apps["power_kw"] = np.where(apps["power_kw"] == 0, 100.0, apps["power_kw"])
    caps["power_kw"] = np.round(0.4 * apps["power_kw"].sum() / n_nodes, -1)
    return plots, apps, caps


@pytest.mark.parametrize("seed", range(12))
def test_columns_reach_the_exact_optimum_with_a_valid_gap(seed, monkeypatch):
    plots, apps, caps = tight_instance(seed, 14, 20, 3)
    objective = ["investment", "jobs", "count"][seed % 3]
    exact = solve(plots, apps, caps, objective=objective)
    assert exact.status == "optimal"
    by_columns(monkeypatch)
    result = solve(plots, apps, caps, objective=objective, time_limit=10)
    assert result.method == "columns"
    assert_feasible(result, plots, apps, caps)
    assert exact.objective <= result.objective * (1 + result.gap) + 1e-9
    assert result.objective == pytest.approx(exact.objective, rel=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_columns_bound_the_weighted_objective_and_keep_every_rule(seed, monkeypatch):
    plots, apps, caps = tight_instance(50 + seed, 20, 30, 3)
    plots["dist_m"] = np.arange(len(plots)) * 100.0
    apps["priority"] = np.arange(len(apps)) % 4
    exact = solve(plots, apps, caps)
    by_columns(monkeypatch)
    result = solve(plots, apps, caps, time_limit=10)
    assert_feasible(result, plots, apps, caps)
    assert result.objective <= exact.objective + 1e-9
    assert exact.objective <= result.objective * (1 + result.gap) + 1e-9


def pair_reasons(plots, apps, caps, assignments: pd.DataFrame, blame: str) -> list:
    """Reasons for the same allocation computed on the full pair list."""
    instance = prepare(plots, apps, caps)
    pairs = compatible_pairs(instance, value_model(plots, apps, "investment", None))
    state = State(instance, pairs)
    plot_row = {plot_id: row for row, plot_id in enumerate(instance.plot_ids)}
    for app, plot_id in enumerate(assignments["plot_id"]):
        if plot_id is not None:
            index = np.arange(pairs.start[app], pairs.end[app])
            state.place(app, int(index[pairs.plot[index] == plot_row[plot_id]][0]))
    return unallocated_reasons(instance, pairs, state, blame)


@pytest.mark.parametrize("seed", range(4))
def test_column_reasons_are_those_of_the_full_pair_list(seed, monkeypatch):
    plots, apps, caps = tight_instance(200 + seed, 40, 30, 3)
    apps.loc[0, "min_ha"] = apps.loc[0, "max_ha"] = 40.0  # no plot that large
    apps.loc[1, "power_kw"] = 1e6  # more than any substation
    by_columns(monkeypatch)
    result = solve(plots, apps, caps, objective="investment", time_limit=5)
    reasons = result.assignments["reason"].tolist()
    assert reasons == pair_reasons(
        plots, apps, caps, result.assignments, "a higher-value application"
    )
    assert reasons[0].startswith("no plot of 40 ha") and "kW needed" in reasons[1]
    assert result.assignments["plot_id"].isna().sum() > 2


@pytest.mark.parametrize("seed", range(3))
def test_first_come_on_the_catalogue_is_first_come_on_pairs(seed, monkeypatch):
    plots, apps, caps = tight_instance(300 + seed, 40, 50, 3)
    on_pairs = solve(plots, apps, caps, objective="investment", method="greedy")
    by_columns(monkeypatch)
    on_columns = solve(plots, apps, caps, objective="investment", method="greedy")
    pd.testing.assert_frame_equal(on_columns.assignments, on_pairs.assignments)
    assert on_columns.objective == on_pairs.objective


def test_time_limit_covers_every_phase(monkeypatch):
    plots, apps, caps = tight_instance(9, 300, 1500, 12)
    by_columns(monkeypatch)
    started = time.perf_counter()
    result = solve(plots, apps, caps, objective="investment", time_limit=3, mip_gap=0.0)
    assert time.perf_counter() - started < 3 + 1.5
    assert result.status in {"optimal", "time_limit"} and result.gap >= 0.0
    assert_feasible(result, plots, apps, caps)


def test_columns_with_no_substation_at_all(monkeypatch):
    by_columns(monkeypatch)
    plots = pd.DataFrame(
        {"plot_id": ["P1"], "area_ha": [5.0], "rail": [False], "node": [None], "sectors": ["*"]}
    )
    apps = pd.DataFrame(
        {
            "app_id": ["A", "B"],
            "min_ha": [4.0, 4.0],
            "max_ha": [6.0, 6.0],
            "sector": ["X", "X"],
            "rail_need": [False, False],
            "power_kw": [0.0, 10.0],
            "invest": [1.0, 5.0],
            "jobs": [1.0, 1.0],
        }
    )
    result = solve(plots, apps, pd.DataFrame({"node": [], "power_kw": []}), time_limit=5)
    assert result.assignments["plot_id"].tolist() == ["P1", None]
    assert result.assignments["reason"][1] == "no plot of 4–6 ha with a power connection"


def test_columns_keep_water_headroom_and_find_the_water_aware_optimum(monkeypatch):
    plots = pd.DataFrame(
        {
            "plot_id": ["P1", "P2", "P3"],
            "area_ha": [5.0, 5.0, 5.0],
            "rail": [False] * 3,
            "node": ["S1", "S1", "S2"],
            "water_node": ["W1", "W1", "W1"],
            "sectors": ["*"] * 3,
        }
    )
    apps = pd.DataFrame(
        {
            "app_id": ["A", "B", "C"],
            "min_ha": [4.0] * 3,
            "max_ha": [6.0] * 3,
            "sector": ["X"] * 3,
            "rail_need": [False] * 3,
            "power_kw": [600.0, 500.0, 500.0],
            "water_m3d": [90.0, 50.0, 50.0],
            "invest": [10.0, 6.0, 6.0],
            "jobs": [1.0] * 3,
        }
    )
    caps = pd.DataFrame(
        {
            "node": ["S1", "S2", "W1"],
            "power_kw": [1000.0, 1000.0, 0.0],
            "water_m3d": [0.0, 0.0, 100.0],
        }
    )
    exact = solve(plots, apps, caps, objective="investment")
    by_columns(monkeypatch)
    result = solve(plots, apps, caps, objective="investment", time_limit=5)
    assert result.objective == exact.objective == 12.0
    assert result.assignments["plot_id"][0] is None
