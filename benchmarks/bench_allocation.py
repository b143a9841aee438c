"""Benchmark planner.allocation on a seeded synthetic zone: HiGHS MILP vs greedy vs CBC on the same pair model."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner import allocation  # noqa: E402
from planner.allocation.inputs import prepare, value_model  # noqa: E402
from planner.allocation.pairs import compatible_pairs  # noqa: E402

SECTORS = [f"C{code}" for code in (10, 11, 16, 20, 22, 23, 24, 25, 28, 29)]


def make_instance(
    apps: int, plots: int, nodes: int, capacity_ratio: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Seeded synthetic zone whose substations can serve only ``capacity_ratio`` of the demand that could reach them.

    Plot sizes are cadastral reals; applicants ask for round hectare ranges, as on the
    application form.  Each plot allows one to three sectors (10% allow any).
    """
    rng = np.random.default_rng(seed)
    node_names = np.array([f"S-{n:02d}" for n in range(1, nodes + 1)])
    area = np.round(rng.lognormal(mean=1.6, sigma=0.7, size=plots), 2) + 0.5
    allowed = [
        ",".join(rng.choice(SECTORS, size=rng.integers(1, 4), replace=False)) for _ in range(plots)
    ]
    plot_frame = pd.DataFrame(
        {
            "plot_id": [f"P-{n:05d}" for n in range(plots)],
            "area_ha": area,
            "rail": rng.random(plots) < 0.3,
            "node": np.where(rng.random(plots) < 0.97, rng.choice(node_names, size=plots), None),
            "sectors": np.where(rng.random(plots) < 0.1, "*", allowed),
            "hazard_ok": rng.integers(1, 5, size=plots),
            "dist_m": rng.uniform(50, 3000, size=plots).round(),
        }
    )
    min_ha = np.maximum(np.round(rng.lognormal(mean=1.4, sigma=0.6, size=apps)), 1.0)
    power = np.round(rng.lognormal(mean=7.0, sigma=0.8, size=apps), -1)
    app_frame = pd.DataFrame(
        {
            "app_id": [f"A-{n:04d}" for n in range(apps)],
            "min_ha": min_ha,
            "max_ha": min_ha + np.maximum(np.round(min_ha * rng.uniform(0.2, 1.0, size=apps)), 1.0),
            "sector": rng.choice(SECTORS, size=apps),
            "rail_need": rng.random(apps) < 0.25,
            "power_kw": power,
            "invest": np.round(
                min_ha * rng.lognormal(mean=20.0, sigma=0.6, size=apps) + power * 2e5, -6
            ),
            "jobs": np.round(min_ha * rng.uniform(5, 40, size=apps)),
            "hazard": rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.2, 0.1], size=apps),
            "priority": rng.integers(0, 4, size=apps),
        }
    )
    demand_share = app_frame["power_kw"].sum() / nodes
    capacities = pd.DataFrame(
        {
            "node": node_names,
            "power_kw": np.round(
                capacity_ratio * demand_share * rng.uniform(0.5, 1.5, size=nodes), -1
            ),
        }
    )
    return plot_frame, app_frame, capacities


class Trace:
    """(elapsed, objective, bound) samples; answers 'gap at t' and 'first time gap <= target'."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []

    def __call__(self, elapsed: float, objective: float, bound: float) -> None:
        self.samples.append((elapsed, objective, bound))

    def gap_at(self, moment: float) -> float:
        seen = [
            gap(objective, bound) for elapsed, objective, bound in self.samples if elapsed <= moment
        ]
        return min(seen) if seen else math.inf

    def time_to(self, target: float) -> float:
        return next(
            (
                elapsed
                for elapsed, objective, bound in self.samples
                if gap(objective, bound) <= target
            ),
            math.inf,
        )


def gap(objective: float, bound: float) -> float:
    return (bound - objective) / abs(objective) if objective else math.inf


def run_highs(
    plots: pd.DataFrame, apps: pd.DataFrame, caps: pd.DataFrame, limit: float
) -> tuple[allocation.AllocationResult, Trace]:
    trace = Trace()
    result = allocation.solve(
        plots, apps, caps, objective="investment", time_limit=limit, mip_gap=1e-4, on_progress=trace
    )
    trace(result.elapsed_s, result.objective, result.objective * (1 + result.gap))
    return result, trace


def run_cbc(
    plots: pd.DataFrame, apps: pd.DataFrame, caps: pd.DataFrame, limit: float, folder: Path
) -> tuple[float, float, float, Trace]:
    """The plain compatible-pair model (no cuts, no warm start) written by PuLP, solved by its bundled CBC.

    CBC only checks its time limit between phases, so it also gets a hard wall-clock stop
    at twice the limit; returns (build s, solve s, objective or NaN, progress trace).
    """
    import pulp

    started = time.perf_counter()
    instance = prepare(plots, apps, caps)
    pairs = compatible_pairs(instance, value_model(plots, apps, "investment", None))
    scale = pairs.value.max()
    model = pulp.LpProblem("allocation", pulp.LpMinimize)
    x = [model.add_variable(f"x{k}", cat="Binary") for k in range(len(pairs.app))]
    model += pulp.LpAffineExpression(zip(x, -pairs.value / scale))
    for key, coefficient, table in (
        (pairs.app, np.ones(len(x)), np.ones(len(instance.app_ids))),
        (pairs.plot, np.ones(len(x)), np.ones(len(instance.plot_ids))),
        (
            np.where(instance.power[pairs.app] > 0, instance.power_node[pairs.plot], -1),
            instance.power[pairs.app],
            instance.power_cap,
        ),
    ):
        order = np.argsort(key, kind="stable")
        for row in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
            if len(row) > 1 and key[row[0]] >= 0:
                model += (
                    pulp.LpAffineExpression((x[k], coefficient[k]) for k in row)
                    <= table[key[row[0]]]
                )
    mps = folder / "allocation.mps"
    model.writeMPS(str(mps))
    build = time.perf_counter() - started
    command = [
        pulp.PULP_CBC_CMD().path,
        str(mps),
        "-sec",
        str(limit),
        "-timeMode",
        "elapsed",
        "-threads",
        "2",
        "-branch",
    ]
    solve_started = time.perf_counter()
    try:
        log = subprocess.run(command, capture_output=True, text=True, timeout=2 * limit).stdout
    except subprocess.TimeoutExpired as stopped:
        log = (
            (stopped.stdout or b"").decode()
            if isinstance(stopped.stdout, bytes)
            else (stopped.stdout or "")
        )
    (folder / "cbc.log").write_text(log)
    elapsed = time.perf_counter() - solve_started
    objective = next(
        (
            abs(float(line.split(":")[1])) * scale
            for line in log.splitlines()
            if line.startswith("Objective value:")
        ),
        math.nan,
    )
    trace = _cbc_trace(log, scale)
    lower = [
        abs(float(line.split(":")[1])) * scale
        for line in log.splitlines()
        if line.startswith("Lower bound:")
    ]
    if lower and math.isfinite(objective):
        trace(elapsed, objective, lower[-1])
    return build, elapsed, objective, trace


def _cbc_trace(log: str, scale: float) -> Trace:
    """Parse CBC's 'After N nodes ... best solution, best possible ... (T seconds)' progress lines."""
    trace = Trace()
    for line in log.splitlines():
        if "best solution, best possible" in line:
            words = line.replace(",", " ").replace("(", " ").replace(")", " ").split()
            best, possible = (
                float(words[words.index("best") - 1]),
                float(words[words.index("possible") + 1]),
            )
            if abs(best) < 1e49:
                trace(
                    float(words[words.index("seconds") - 1]),
                    abs(best) * scale,
                    abs(possible) * scale,
                )
    return trace


def print_row(
    name: str, elapsed: float, objective: float, baseline: float, trace: Trace | None
) -> None:
    gaps = [
        f"{trace.gap_at(t):8.2%}" if trace and math.isfinite(trace.gap_at(t)) else f"{'-':>8}"
        for t in (10, 30, 60)
    ]
    reach = trace.time_to(0.005) if trace else math.inf
    reach_text = f"{reach:.1f}" if math.isfinite(reach) else "-"
    print(
        f"{name:46} {elapsed:7.1f} {objective / 1e9:14,.1f} {objective / baseline:9.3f} {' '.join(gaps)} {reach_text:>12}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--plots", type=int, default=20000)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument(
        "--capacity", type=float, default=0.5, help="substation headroom as a share of demand"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=float, default=60.0)
    parser.add_argument("--skip-cbc", action="store_true")
    options = parser.parse_args()

    plots, apps, caps = make_instance(
        options.apps, options.plots, options.nodes, options.capacity, options.seed
    )
    instance = prepare(plots, apps, caps)
    pairs = compatible_pairs(instance, value_model(plots, apps, "investment", None))
    print(
        f"instance: {options.apps} applications, {options.plots} plots, {options.nodes} substations, seed {options.seed}, "
        f"headroom {options.capacity:.0%} of demand, {len(pairs.app):,} compatible pairs; objective investment, limit {options.limit:g} s",
        flush=True,
    )
    print(
        f"{'solver':46} {'time s':>7} {'bn tenge':>14} {'vs greedy':>9} {'gap@10s':>8} {'gap@30s':>8} {'gap@60s':>8} {'t(gap<=0.5%)':>12}"
    )
    greedy = allocation.solve(plots, apps, caps, objective="investment", method="greedy")
    print_row(
        "greedy (first come, first served)",
        greedy.elapsed_s,
        greedy.objective,
        greedy.objective,
        None,
    )
    highs, trace = run_highs(plots, apps, caps, options.limit)
    print_row(
        f"solve(): {highs.method}, {highs.status}, gap {highs.gap:.3%}",
        highs.elapsed_s,
        highs.objective,
        greedy.objective,
        trace,
    )
    if not options.skip_cbc:
        folder = Path(__file__).resolve().parent / "out"
        folder.mkdir(exist_ok=True)
        build, elapsed, objective, cbc = run_cbc(plots, apps, caps, options.limit, folder)
        print_row(
            f"CBC on the plain pair model (+{build:.0f} s build)",
            elapsed,
            objective,
            greedy.objective,
            cbc,
        )
        print(f"CBC log: {folder / 'cbc.log'}")


if __name__ == "__main__":
    main()
