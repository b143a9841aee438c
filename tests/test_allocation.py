"""Tests for planner.allocation: known optima, exact reasons, brute force and CBC cross-checks, bad input."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from planner.allocation import AllocationInputError, read_applications_csv, solve

# PuLP with its bundled CBC is the independent reference optimum; PuLP 3 warns that
# the bundled binary goes in PuLP 4 (pinned in constraints.txt)
pytestmark = pytest.mark.filterwarnings("ignore:PULP_CBC_CMD is deprecated:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]


def plots_frame(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["plot_id", "area_ha", "rail", "node", "sectors"])


def apps_frame(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(
        rows,
        columns=["app_id", "min_ha", "max_ha", "sector", "rail_need", "power_kw", "invest", "jobs"],
    )


def caps_frame(**headroom: float) -> pd.DataFrame:
    return pd.DataFrame({"node": list(headroom), "power_kw": list(headroom.values())})


def placed(result) -> dict:
    return dict(zip(result.assignments["app_id"], result.assignments["plot_id"]))


def reasons(result) -> dict:
    return dict(zip(result.assignments["app_id"], result.assignments["reason"]))


# ----------------------------------------------------------------------------- reference checks


def compatible(plot: pd.Series, app: pd.Series, caps: dict) -> bool:
    """Static rules, written independently of the module with plain Python."""
    allowed = {code.strip().upper() for code in str(plot["sectors"]).split(",")}
    node_ok = app["power_kw"] == 0 or (
        plot["node"] is not None and caps.get(plot["node"], 0) >= app["power_kw"]
    )
    return (
        app["min_ha"] <= plot["area_ha"] <= app["max_ha"]
        and ("*" in allowed or app["sector"].upper() in allowed)
        and (plot["rail"] or not app["rail_need"])
        and node_ok
    )


def assert_feasible(result, plots: pd.DataFrame, apps: pd.DataFrame, caps: pd.DataFrame) -> float:
    """Check every rule on the returned allocation; return its investment total."""
    headroom = dict(zip(caps["node"], caps["power_kw"]))
    by_plot = plots.set_index("plot_id")
    by_app = apps.set_index("app_id")
    chosen = result.assignments.dropna(subset=["plot_id"])
    assert chosen["plot_id"].is_unique
    load: dict = {}
    for app_id, plot_id in zip(chosen["app_id"], chosen["plot_id"]):
        app, plot = by_app.loc[app_id], by_plot.loc[plot_id]
        assert compatible(plot, app, headroom), (app_id, plot_id)
        if app["power_kw"] > 0:
            load[plot["node"]] = load.get(plot["node"], 0) + app["power_kw"]
    assert all(load[node] <= headroom.get(node, 0) + 1e-6 for node in load)
    assert (
        result.assignments["reason"].isna().tolist()
        == result.assignments["plot_id"].notna().tolist()
    )
    return float(by_app.loc[chosen["app_id"], "invest"].sum())


def brute_force(plots: pd.DataFrame, apps: pd.DataFrame, caps: pd.DataFrame, value: str) -> float:
    """Best objective over every partial injective assignment."""
    headroom = dict(zip(caps["node"], caps["power_kw"]))
    options = [
        [None] + [j for j in range(len(plots)) if compatible(plots.iloc[j], apps.iloc[i], headroom)]
        for i in range(len(apps))
    ]
    best = 0.0
    for choice in itertools.product(*options):
        used = [j for j in choice if j is not None]
        if len(used) != len(set(used)):
            continue
        load: dict = {}
        for i, j in enumerate(choice):
            if j is not None and apps.iloc[i]["power_kw"] > 0:
                node = plots.iloc[j]["node"]
                load[node] = load.get(node, 0) + apps.iloc[i]["power_kw"]
        if any(load[node] > headroom.get(node, 0) for node in load):
            continue
        worth = [
            1.0 if value == "count" else apps.iloc[i][value]
            for i, j in enumerate(choice)
            if j is not None
        ]
        best = max(best, float(sum(worth)))
    return best


def random_instance(
    rng: np.random.Generator, n_apps: int, n_plots: int, n_nodes: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    nodes = [f"S{n}" for n in range(n_nodes)]
    plots = pd.DataFrame(
        {
            "plot_id": [f"P{j}" for j in range(n_plots)],
            "area_ha": rng.integers(1, 12, n_plots).astype(float),
            "rail": rng.random(n_plots) < 0.5,
            "node": [
                nodes[k] if k < n_nodes else None for k in rng.integers(0, n_nodes + 1, n_plots)
            ],
            "sectors": rng.choice(["A", "B", "A,B", "*"], n_plots),
        }
    )
    low = rng.integers(1, 9, n_apps).astype(float)
    apps = pd.DataFrame(
        {
            "app_id": [f"A{i}" for i in range(n_apps)],
            "min_ha": low,
            "max_ha": low + rng.integers(0, 5, n_apps),
            "sector": rng.choice(["A", "B"], n_apps),
            "rail_need": rng.random(n_apps) < 0.3,
            "power_kw": rng.choice([0, 100, 200, 300, 500, 800], n_apps).astype(float),
            "invest": rng.integers(1, 100, n_apps).astype(float),
            "jobs": rng.integers(1, 50, n_apps).astype(float),
        }
    )
    caps = pd.DataFrame(
        {"node": nodes, "power_kw": rng.choice([200, 500, 800, 1200], n_nodes).astype(float)}
    )
    return plots, apps, caps


# ----------------------------------------------------------------------------- known optima


def test_capacity_binds_and_greedy_is_worse():
    plots = plots_frame(("P1", 5.0, False, "S1", "*"), ("P2", 9.0, False, "S1", "*"))
    apps = apps_frame(("A", 4, 10, "C20", False, 800, 1, 1), ("B", 4, 10, "C20", False, 500, 10, 1))
    caps = caps_frame(S1=1000)

    best = solve(plots, apps, caps, objective="investment")
    greedy = solve(plots, apps, caps, objective="investment", method="greedy")

    assert (best.objective, best.status, best.gap, best.method) == (10.0, "optimal", 0.0, "milp")
    assert placed(best) == {"A": None, "B": "P1"}
    assert reasons(best) == {"A": "substation S1 headroom left 500 kW < 800 kW needed", "B": None}
    assert (greedy.objective, greedy.status, greedy.method) == (1.0, "heuristic", "greedy")
    assert math.isnan(greedy.gap)
    assert placed(greedy) == {"A": "P1", "B": None}
    assert reasons(greedy) == {"A": None, "B": "substation S1 headroom left 200 kW < 500 kW needed"}


def test_plot_conflict_solved_as_assignment_beats_first_come():
    plots = plots_frame(("P1", 6.0, False, "S1", "*"), ("P2", 12.0, False, "S1", "*"))
    apps = apps_frame(
        ("A", 5, 12, "C20", False, 100, 1, 1),
        ("B", 5, 7, "C20", False, 100, 5, 1),
        ("C", 10, 12, "C20", False, 100, 5, 1),
    )
    caps = caps_frame(S1=10_000)

    best = solve(plots, apps, caps, objective="investment")
    greedy = solve(plots, apps, caps, objective="investment", method="greedy")

    assert (best.objective, best.method, best.status, best.gap) == (
        10.0,
        "assignment",
        "optimal",
        0.0,
    )
    assert placed(best) == {"A": None, "B": "P1", "C": "P2"}
    assert reasons(best)["A"] == "every fitting plot went to a higher-value application"
    assert greedy.objective == 6.0
    assert placed(greedy) == {"A": "P1", "B": None, "C": "P2"}
    assert reasons(greedy)["B"] == "every fitting plot went to an earlier application"


def test_objectives_choose_differently():
    plots = plots_frame(("P1", 5.0, False, "S1", "*"), ("P2", 5.0, False, "S1", "*"))
    apps = apps_frame(
        ("RICH", 4, 6, "C20", False, 900, 100, 5),
        ("JOBS", 4, 6, "C20", False, 500, 10, 80),
        ("SMALL", 4, 6, "C20", False, 400, 10, 20),
    )
    caps = caps_frame(S1=900)

    assert placed(solve(plots, apps, caps, objective="investment"))["RICH"] is not None
    by_jobs = solve(plots, apps, caps, objective="jobs")
    assert by_jobs.objective == 100.0 and placed(by_jobs)["RICH"] is None
    assert solve(plots, apps, caps, objective="count").objective == 2.0


def test_greedy_takes_smallest_feasible_plot_with_id_tie_break():
    plots = plots_frame(
        ("P9", 7.0, False, "S1", "*"), ("P3", 6.0, False, "S1", "*"), ("P2", 6.0, False, "S1", "*")
    )
    apps = apps_frame(("A", 5, 8, "C20", False, 0, 1, 1), ("B", 5, 8, "C20", False, 0, 1, 1))
    result = solve(plots, apps, caps_frame(S1=0), method="greedy")
    assert placed(result) == {"A": "P2", "B": "P3"}


def test_weighted_objective_prefers_near_fitting_preferred_plot():
    plots = plots_frame(
        ("BIG", 20.0, False, "S1", "*"),
        ("FIT", 5.0, False, "S1", "*"),
        ("FAR", 5.0, False, "S1", "*"),
    )
    plots["dist_m"] = [100.0, 100.0, 3000.0]
    apps = apps_frame(("A", 5, 20, "C20", False, 100, 1, 1))
    caps = caps_frame(S1=1000)

    assert placed(solve(plots, apps, caps))["A"] == "FIT"
    apps["plot_pref"] = ["FAR"]
    assert placed(solve(plots, apps, caps, weights={"preference": 1.0}))["A"] == "FAR"
    default = solve(plots, apps.drop(columns="plot_pref"), caps)
    # invest 0.35 + jobs 0.25 + priority 0 + fit 0.10 * 5/5 + distance 0.10 * (1 - 100/3000)
    assert default.objective == pytest.approx(0.35 + 0.25 + 0.10 + 0.10 * (1 - 100 / 3000))


def test_water_headroom_binds_like_power():
    plots = plots_frame(("P1", 5.0, False, "S1", "*"), ("P2", 5.0, False, "S1", "*"))
    plots["water_node"] = ["W1", "W1"]
    apps = apps_frame(("A", 4, 6, "C20", False, 0, 5, 1), ("B", 4, 6, "C20", False, 0, 4, 1))
    apps["water_m3d"] = [80.0, 30.0]
    caps = pd.DataFrame({"node": ["S1", "W1"], "power_kw": [0.0, None], "water_m3d": [None, 100.0]})

    result = solve(plots, apps, caps, objective="investment")
    assert placed(result) == {"A": "P1", "B": None}
    assert reasons(result)["B"] == "water node W1 headroom left 20 m³/d < 30 m³/d needed"
    # without a water_m3d capacity column water is not modelled
    assert solve(plots, apps, caps_frame(S1=0), objective="investment").objective == 9.0


# ----------------------------------------------------------------------------- reasons


def test_static_reasons_name_the_binding_rule():
    plots = plots_frame(
        ("P1", 9.0, False, "S-01", "C20"),
        ("P2", 9.0, False, "S-03", "C20,C24"),
        ("P3", 3.0, True, None, "*"),
        ("P4", 14.0, True, "S-02", "C10"),
    )
    plots["hazard_ok"] = [2, 2, 4, 4]
    apps = apps_frame(
        ("SIZE", 20, 30, "C20", False, 10, 1, 1),
        ("RAIL", 8, 10, "C20", True, 10, 1, 1),
        ("SECTOR", 13, 15, "C20", True, 10, 1, 1),
        ("POWER", 2, 4, "C20", False, 10, 1, 1),
        ("ONE", 8, 10, "C24", False, 4000, 1, 1),
        ("MANY", 8, 10, "C20", False, 4000, 1, 1),
        ("HAZARD", 8, 10, "C20", False, 10, 1, 1),
        ("EXACT", 7, 7, "C20", False, 10, 1, 1),
    )
    apps["hazard"] = [0, 0, 0, 0, 0, 0, 3, 0]
    caps = caps_frame(**{"S-01": 1000, "S-02": 5000, "S-03": 1200})

    assert reasons(solve(plots, apps, caps, objective="count")) == {
        "SIZE": "no plot of 20–30 ha",
        "RAIL": "no plot of 8–10 ha with rail access",
        "SECTOR": "no plot of 13–15 ha zoned for sector C20",
        "POWER": "no plot of 2–4 ha with a power connection",
        "ONE": "substation S-03 headroom 1,200 kW < 4,000 kW needed",
        "MANY": "substations S-03, S-01 headroom at most 1,200 kW < 4,000 kW needed",
        "HAZARD": "no plot of 8–10 ha allowing hazard class 3",
        "EXACT": "no plot of 7 ha",
    }


def test_zero_power_application_needs_no_substation():
    plots = plots_frame(("P1", 5.0, False, None, "*"))
    apps = apps_frame(("A", 4, 6, "X", False, 0, 1, 1))
    result = solve(plots, apps, pd.DataFrame({"node": [], "power_kw": []}))
    assert placed(result) == {"A": "P1"}


def test_unlisted_substation_has_zero_headroom():
    plots = plots_frame(("P1", 5.0, False, "S9", "*"))
    apps = apps_frame(("A", 4, 6, "X", False, 50, 1, 1))
    assert (
        reasons(solve(plots, apps, caps_frame(S1=1000)))["A"]
        == "substation S9 headroom 0 kW < 50 kW needed"
    )


# ----------------------------------------------------------------------------- random cross-checks


@pytest.mark.parametrize("seed", range(40))
def test_milp_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    plots, apps, caps = random_instance(rng, n_apps=5, n_plots=5, n_nodes=2)
    objective = ["investment", "jobs", "count"][seed % 3]
    result = solve(plots, apps, caps, objective=objective)
    value = {"investment": "invest", "jobs": "jobs", "count": "count"}[objective]
    assert result.objective == pytest.approx(brute_force(plots, apps, caps, value))
    assert result.status == "optimal" and result.gap == 0.0
    assert_feasible(result, plots, apps, caps)
    greedy = solve(plots, apps, caps, objective=objective, method="greedy")
    assert_feasible(greedy, plots, apps, caps)
    assert greedy.objective <= result.objective + 1e-9


def cbc_optimum(plots: pd.DataFrame, apps: pd.DataFrame, caps: pd.DataFrame) -> float:
    pulp = pytest.importorskip("pulp")
    headroom = dict(zip(caps["node"], caps["power_kw"]))
    pairs = [
        (i, j)
        for i in range(len(apps))
        for j in range(len(plots))
        if compatible(plots.iloc[j], apps.iloc[i], headroom)
    ]
    model = pulp.LpProblem("allocation", pulp.LpMaximize)
    x = {pair: model.add_variable(f"x_{pair[0]}_{pair[1]}", cat="Binary") for pair in pairs}
    model += pulp.lpSum(apps.iloc[i]["invest"] * var for (i, _), var in x.items())
    for i in range(len(apps)):
        model += pulp.lpSum(var for (a, _), var in x.items() if a == i) <= 1
    for j in range(len(plots)):
        model += pulp.lpSum(var for (_, p), var in x.items() if p == j) <= 1
    for node, cap in headroom.items():
        model += (
            pulp.lpSum(
                apps.iloc[i]["power_kw"] * var
                for (i, j), var in x.items()
                if plots.iloc[j]["node"] == node
            )
            <= cap
        )
    model.solve(pulp.PULP_CBC_CMD(msg=False))
    return float(pulp.value(model.objective) or 0.0)


@pytest.mark.parametrize("seed", range(4))
def test_milp_matches_cbc_on_medium_instances(seed):
    plots, apps, caps = random_instance(
        np.random.default_rng(100 + seed), n_apps=30, n_plots=60, n_nodes=4
    )
    result = solve(plots, apps, caps, objective="investment")
    assert result.objective == pytest.approx(cbc_optimum(plots, apps, caps), rel=1e-9)
    assert assert_feasible(result, plots, apps, caps) == pytest.approx(result.objective)


def test_time_limit_returns_feasible_allocation():
    plots, apps, caps = random_instance(np.random.default_rng(7), n_apps=40, n_plots=80, n_nodes=3)
    result = solve(plots, apps, caps, objective="investment", time_limit=0.5)
    assert result.status in {"optimal", "time_limit"} and result.gap >= 0.0
    assert_feasible(result, plots, apps, caps)


def test_solver_prints_nothing_to_stdout():
    script = (
        "import pandas as pd\n"
        "from planner.allocation import solve\n"
        "p = pd.DataFrame({'plot_id': ['P1', 'P2'], 'area_ha': [5.0, 5.0], 'rail': [False, False], 'node': ['S1', 'S1'], 'sectors': ['*', '*']})\n"
        "a = pd.DataFrame({'app_id': ['A', 'B'], 'min_ha': [4, 4], 'max_ha': [6, 6], 'sector': ['X', 'X'], 'rail_need': [False, False],"
        " 'power_kw': [600, 600], 'invest': [1, 2], 'jobs': [1, 1]})\n"
        "r = solve(p, a, pd.DataFrame({'node': ['S1'], 'power_kw': [1000]}), objective='investment')\n"
        "assert r.method == 'milp', r.method\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


# ----------------------------------------------------------------------------- degenerate and bad input


def test_empty_tables_give_clear_results():
    plots = plots_frame(("P1", 5.0, False, "S1", "*"))
    apps = apps_frame(("A", 4, 6, "X", False, 0, 1, 1))
    no_apps = solve(plots, apps.iloc[0:0], caps_frame(S1=1))
    assert no_apps.assignments.empty and list(no_apps.assignments.columns) == [
        "app_id",
        "plot_id",
        "reason",
    ]
    assert (no_apps.objective, no_apps.status) == (0.0, "optimal")
    no_plots = solve(plots.iloc[0:0], apps, caps_frame(S1=1))
    assert reasons(no_plots) == {"A": "no plot of 4–6 ha"}


def test_all_headroom_zero_places_only_powerless_applications():
    plots = plots_frame(("P1", 5.0, False, "S1", "*"), ("P2", 5.0, False, "S2", "*"))
    apps = apps_frame(("A", 4, 6, "X", False, 100, 1, 1), ("B", 4, 6, "X", False, 0, 1, 1))
    result = solve(plots, apps, caps_frame(S1=0, S2=0))
    assert placed(result)["B"] is not None
    assert reasons(result)["A"] == "substations S1, S2 headroom at most 0 kW < 100 kW needed"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p, a, c: (p.drop(columns="rail"), a, c), "plots: missing column(s) rail"),
        (
            lambda p, a, c: (p, a.drop(columns=["jobs", "invest"]), c),
            "applications: missing column(s) invest, jobs",
        ),
        (
            lambda p, a, c: (p, a, c.drop(columns="power_kw")),
            "capacities: missing column(s) power_kw",
        ),
        (lambda p, a, c: (p.assign(plot_id=["P1", "P1"]), a, c), "plots: duplicate plot_id ['P1']"),
        (
            lambda p, a, c: (p, a.assign(app_id=["A", "A"]), c),
            "applications: duplicate app_id ['A']",
        ),
        (lambda p, a, c: (p, a, pd.concat([c, c])), "capacities: duplicate node ['S1']"),
        (
            lambda p, a, c: (p, a.assign(power_kw=[100, -5]), c),
            "applications: column power_kw is negative at row 1 (app_id 'B')",
        ),
        (
            lambda p, a, c: (p, a.assign(invest=["1", "lots"]), c),
            "applications: column invest is not a number at row 1 (app_id 'B')",
        ),
        (
            lambda p, a, c: (p.assign(area_ha=[None, 5.0]), a, c),
            "plots: column area_ha is empty at row 0 (plot_id 'P1')",
        ),
        (
            lambda p, a, c: (p, a.assign(min_ha=[4, 9]), c),
            "applications: min_ha > max_ha at row 1 (app_id 'B')",
        ),
        (
            lambda p, a, c: (p.assign(rail=["yes", "maybe"]), a, c),
            "plots: column rail is not yes/no at row 1 (plot_id 'P2')",
        ),
        (
            lambda p, a, c: (p, a, c.assign(power_kw=[-1])),
            "capacities: column power_kw is negative at row 0 (node 'S1')",
        ),
        (lambda p, a, c: ([], a, c), "plots: expected a pandas DataFrame, got list"),
    ],
)
def test_bad_input_raises_named_error(change, message):
    plots = plots_frame(("P1", 5.0, False, "S1", "*"), ("P2", 5.0, False, "S1", "*"))
    apps = apps_frame(("A", 4, 6, "X", False, 0, 1, 1), ("B", 4, 6, "X", False, 0, 1, 1))
    with pytest.raises(AllocationInputError) as error:
        solve(*change(plots, apps, caps_frame(S1=100)))
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"objective": "profit"},
            "objective must be one of investment, jobs, count, weighted, got 'profit'",
        ),
        ({"method": "magic"}, "method must be one of milp, greedy, got 'magic'"),
        (
            {"weights": {"beauty": 1.0}},
            "unknown weight(s) ['beauty']; known: ['distance', 'fit', 'invest', 'jobs', 'preference', 'priority']",
        ),
        ({"weights": {"jobs": -1.0}}, "weights must be finite and non-negative: {'jobs': -1.0}"),
        (
            {"objective": "jobs", "weights": {"jobs": 1.0}},
            "weights apply only to objective='weighted'",
        ),
        ({"time_limit": 0}, "time_limit must be positive, got 0"),
    ],
)
def test_bad_options_raise(options, message):
    plots = plots_frame(("P1", 5.0, False, "S1", "*"))
    apps = apps_frame(("A", 4, 6, "X", False, 0, 1, 1))
    with pytest.raises(AllocationInputError) as error:
        solve(plots, apps, caps_frame(S1=100), **options)
    assert str(error.value) == message


# ----------------------------------------------------------------------------- CSV


def test_read_applications_csv_types_rows(tmp_path):
    path = tmp_path / "apps.csv"
    path.write_text(
        "app_id,min_ha,max_ha,sector,rail_need,power_kw,invest,jobs,water_m3d\nA-1,8,10,C20,yes,4000,1e9,120,\nA-2,2,3,C10,no,0,5e8,10,15\n"
    )
    frame = read_applications_csv(path)
    assert frame["rail_need"].tolist() == [True, False]
    assert frame["power_kw"].tolist() == [4000.0, 0.0]
    assert math.isnan(frame["water_m3d"].iloc[0]) and frame["water_m3d"].iloc[1] == 15.0


def test_read_applications_csv_lists_bad_rows_by_line(tmp_path):
    path = tmp_path / "apps.csv"
    path.write_text(
        "app_id,min_ha,max_ha,sector,rail_need,power_kw,invest,jobs\n"
        "A-1,8,10,C20,yes,4000,1e9,120\n"
        "A-2,8,10,C20,yes,4000,1e9,120\n"
        "A-3,8,10,C20,no,abc,1e9,120\n"
        "A-1,12,10,C20,maybe,-5,,120\n"
        "A-5,8,10\n"
    )
    with pytest.raises(AllocationInputError) as error:
        read_applications_csv(path)
    assert str(error.value).splitlines() == [
        "bad applications file:",
        "line 4: power_kw 'abc' is not a number",
        "line 5: app_id 'A-1' repeats line 2",
        "line 5: power_kw -5 is negative",
        "line 5: invest is empty",
        "line 5: min_ha 12 > max_ha 10",
        "line 5: rail_need 'maybe' is not yes/no",
        "line 6: 3 fields, header has 8",
    ]


def test_read_applications_csv_missing_column(tmp_path):
    path = tmp_path / "apps.csv"
    path.write_text("app_id,min_ha\nA,1\n")
    with pytest.raises(AllocationInputError, match="line 1: missing column"):
        read_applications_csv(path)


# ----------------------------------------------------------------------------- decomposition by substation


def knapsack_brute_force(value: np.ndarray, weight: np.ndarray, capacity: float) -> float:
    best = 0.0
    for take in itertools.product([False, True], repeat=len(value)):
        chosen = np.array(take, dtype=bool)
        if weight[chosen].sum() <= capacity + 1e-9:
            best = max(best, float(value[chosen].sum()))
    return best


@pytest.mark.parametrize("seed", range(20))
def test_knapsack_dp_is_exact_on_whole_weights_and_an_upper_bound_otherwise(seed):
    from planner.allocation.substations import _knapsack, knapsack_value

    rng = np.random.default_rng(seed)
    value = rng.uniform(0, 10, 9)
    weight = rng.choice([0, 10, 20, 30, 50, 80, 130], 9).astype(float)
    capacity = float(rng.choice([60, 100, 150]))
    exact = knapsack_brute_force(value, weight, capacity)
    assert knapsack_value(value, weight, capacity) == pytest.approx(exact)
    chosen = _knapsack(value, weight, capacity)
    assert weight[chosen].sum() <= capacity and value[chosen].sum() == pytest.approx(exact)
    fractional = weight * rng.uniform(0.9, 1.1, 9) + rng.uniform(0, 1, 9)
    assert (
        knapsack_value(value, fractional, capacity)
        >= knapsack_brute_force(value, fractional, capacity) - 1e-9
    )
    picked = _knapsack(value, fractional, capacity)
    assert fractional[picked].sum() <= capacity + 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_substation_knapsack_bound_is_valid_and_no_weaker_than_needed(seed):
    """The Lagrangian bound with exact per-substation knapsacks never falls below the optimum (CBC)."""
    from planner.allocation import milp as milp_module
    from planner.allocation.inputs import prepare, value_model
    from planner.allocation.pairs import (
        binding_nodes,
        compatible_pairs,
        representatives,
        resource_group,
    )

    plots, apps, caps = random_instance(
        np.random.default_rng(200 + seed), n_apps=30, n_plots=60, n_nodes=4
    )
    instance = prepare(plots, apps, caps)
    pairs = compatible_pairs(instance, value_model(plots, apps, "investment", None))
    power = binding_nodes(instance, pairs, instance.power, instance.power_cap, instance.power_node)
    water = binding_nodes(instance, pairs, instance.water, instance.water_cap, instance.water_node)
    matrix, upper, priced, in_knapsack = milp_module._model(instance, pairs, power, water)
    scale = float(pairs.value.max())
    cost = pairs.value / scale
    start = representatives(pairs, resource_group(instance, power, water))
    _, lp_bound, prices = milp_module._column_generation(matrix, upper, cost, start, math.inf)
    knapsack = milp_module._knapsack_bound(
        (matrix, upper, cost), prices, priced, (instance, pairs, in_knapsack), math.inf
    )
    optimum = cbc_optimum(plots, apps, caps) / scale
    assert lp_bound >= optimum - 1e-7
    assert knapsack >= optimum - 1e-7
    # zero prices are prices too: the bound stays valid however poor the duals
    assert (
        milp_module._knapsack_bound(
            (matrix, upper, cost),
            np.zeros(len(upper)),
            priced,
            (instance, pairs, in_knapsack),
            math.inf,
        )
        >= optimum - 1e-7
    )


@pytest.mark.parametrize("seed", range(6))
def test_repack_never_loses_value_and_keeps_every_rule(seed):
    from planner.allocation.greedy import first_come
    from planner.allocation.inputs import prepare, value_model
    from planner.allocation.pairs import binding_nodes, compatible_pairs
    from planner.allocation.solver import _assignments
    from planner.allocation.substations import repack

    plots, apps, caps = random_instance(
        np.random.default_rng(300 + seed), n_apps=40, n_plots=60, n_nodes=3
    )
    instance = prepare(plots, apps, caps)
    pairs = compatible_pairs(instance, value_model(plots, apps, "investment", None))
    state = first_come(instance, pairs)
    before = state.objective()
    power = binding_nodes(instance, pairs, instance.power, instance.power_cap, instance.power_node)
    state = repack(state, power, math.inf)
    assert state.objective() >= before
    result = SimpleNamespace(
        assignments=_assignments(instance, pairs, state, "a higher-value application")
    )
    assert assert_feasible(result, plots, apps, caps) == pytest.approx(state.objective())
    assert state.objective() <= cbc_optimum(plots, apps, caps) + 1e-6
