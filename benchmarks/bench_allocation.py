"""Benchmark planner.allocation on a seeded synthetic zone: solve() vs first come first served vs HiGHS (and CBC) on the plain pair model."""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import highspy
import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner import allocation  # noqa: E402
from planner.allocation.inputs import prepare, value_model  # noqa: E402
from planner.allocation.milp import pass_model  # noqa: E402
from planner.allocation.pairs import compatible_pairs  # noqa: E402
from planner.highs import silent_highs  # noqa: E402

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


def run_solve(
    plots: pd.DataFrame, apps: pd.DataFrame, caps: pd.DataFrame, limit: float
) -> tuple[float, float, float, Trace]:
    """``solve()`` as a user calls it; the trace holds every (elapsed, objective, proven bound) it reports."""
    trace = Trace()
    result = allocation.solve(
        plots, apps, caps, objective="investment", time_limit=limit, mip_gap=1e-4, on_progress=trace
    )
    trace(result.elapsed_s, result.objective, result.objective * (1 + result.gap))
    return 0.0, result.elapsed_s, result.objective, trace


def run_greedy(
    plots: pd.DataFrame, apps: pd.DataFrame, caps: pd.DataFrame, limit: float
) -> tuple[float, float, float, Trace]:
    """First come, first served: what the operator does today."""
    result = allocation.solve(plots, apps, caps, objective="investment", method="greedy")
    return 0.0, result.elapsed_s, result.objective, Trace()


def plain_model(
    plots: pd.DataFrame, apps: pd.DataFrame, caps: pd.DataFrame
) -> tuple[np.ndarray, sp.csc_matrix, np.ndarray, float]:
    """The compatible-pair model as one would write it: one row per application, plot and substation, no cuts."""
    instance = prepare(plots, apps, caps)
    pairs = compatible_pairs(instance, value_model(plots, apps, "investment", None))
    scale = float(pairs.value.max())
    rows, uppers, offset = [], [], 0
    for key, coefficient, table in (
        (pairs.app, np.ones(len(pairs.app)), np.ones(len(instance.app_ids))),
        (pairs.plot, np.ones(len(pairs.app)), np.ones(len(instance.plot_ids))),
        (
            np.where(instance.power[pairs.app] > 0, instance.power_node[pairs.plot], -1),
            instance.power[pairs.app],
            instance.power_cap,
        ),
    ):
        used = key >= 0
        rows.append((key[used] + offset, np.flatnonzero(used), coefficient[used]))
        uppers.append(table)
        offset += len(table)
    row, column, value = (np.concatenate(part) for part in zip(*rows))
    matrix = sp.csc_matrix((value, (row, column)), shape=(offset, len(pairs.app)))
    return pairs.value / scale, matrix, np.concatenate(uppers), scale


def run_plain_highs(
    plots: pd.DataFrame, apps: pd.DataFrame, caps: pd.DataFrame, limit: float
) -> tuple[float, float, float, Trace]:
    """HiGHS alone on the plain pair model (costs scaled to 1, its default options); the clock includes the build."""
    started = time.perf_counter()
    cost, matrix, upper, scale = plain_model(plots, apps, caps)
    build = time.perf_counter() - started
    highs = silent_highs()
    pass_model(highs, matrix, upper, cost, integer=True)
    highs.setOptionValue("time_limit", max(limit - build, 1.0))
    highs.setOptionValue("mip_rel_gap", 1e-4)
    trace = Trace()

    def record(event: highspy.HighsCallbackEvent) -> None:
        primal, dual = event.data_out.mip_primal_bound, event.data_out.mip_dual_bound
        now = time.perf_counter() - started
        fresh = not trace.samples or now - trace.samples[-1][0] >= 0.5
        if fresh and math.isfinite(primal) and abs(primal) < 1e30:
            trace(now, primal * scale, dual * scale)

    highs.cbMipImprovingSolution.subscribe(record)
    highs.cbMipInterrupt.subscribe(record)
    highs.run()
    info = highs.getInfo()
    objective = (
        info.objective_function_value * scale if info.primal_solution_status == 2 else math.nan
    )
    if math.isfinite(objective):
        trace(time.perf_counter() - started, objective, info.mip_dual_bound * scale)
    return build, time.perf_counter() - started, objective, trace


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


SOLVERS = {
    "greedy": ("greedy (first come, first served)", run_greedy),
    "solve": ("solve(): planner.allocation", run_solve),
    "highs": ("HiGHS alone on the plain pair model", run_plain_highs),
}


def run_one(name: str, options: argparse.Namespace) -> dict[str, object]:
    """Run one solver on the seeded instance in this process; peak memory is this process's."""
    plots, apps, caps = make_instance(
        options.apps, options.plots, options.nodes, options.capacity, options.seed
    )
    if name == "cbc":
        folder = Path(__file__).resolve().parent / "out"
        folder.mkdir(exist_ok=True)
        build, elapsed, objective, trace = run_cbc(plots, apps, caps, options.limit, folder)
    else:
        build, elapsed, objective, trace = SOLVERS[name][1](plots, apps, caps, options.limit)
    return {
        "build": build,
        "elapsed": elapsed,
        "objective": objective,
        "trace": trace.samples,
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def run_child(name: str, options: argparse.Namespace) -> dict[str, object]:
    """Run one solver in a child process under the memory cap; a crash or a cap hit is reported, not fatal."""
    command = [sys.executable, __file__, *sys.argv[1:], "--only", name]
    cap = int(options.memory_gib * 2**30) if options.memory_gib else None

    def limit_memory() -> None:
        if cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    timeout = 3 * options.limit + 600
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, preexec_fn=limit_memory, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["exit code %d" % done.returncode])[-1]
        return {"error": tail[:120]}
    return dict(json.loads(lines[-1]))


def print_row(name: str, row: dict[str, object], baseline: float) -> None:
    if "error" in row:
        print(f"{name:40} failed: {row['error']}", flush=True)
        return
    trace = Trace()
    trace.samples = [tuple(sample) for sample in row["trace"]]
    objective = float(row["objective"])
    gaps = [
        f"{trace.gap_at(t):8.3%}" if math.isfinite(trace.gap_at(t)) else f"{'-':>8}"
        for t in (10, 30, 60)
    ]
    reach = [trace.time_to(target) for target in (0.01, 0.001)]
    reach_text = [f"{t:8.1f}" if math.isfinite(t) else f"{'-':>8}" for t in reach]
    value = f"{objective / 1e9:12,.1f}" if math.isfinite(objective) else f"{'-':>12}"
    ratio = f"{objective / baseline:7.3f}" if math.isfinite(objective) else f"{'-':>7}"
    print(
        f"{name:40} {float(row['elapsed']):7.1f} {value} {ratio} {' '.join(gaps)} "
        f"{' '.join(reach_text)} {float(row['peak_gib']):6.2f}",
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
    parser.add_argument(
        "--solvers", default="greedy,solve,highs", help="comma-separated: greedy, solve, highs, cbc"
    )
    parser.add_argument(
        "--memory-gib", type=float, default=8.0, help="address-space cap per solver process"
    )
    parser.add_argument("--only", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.only:
        print(json.dumps(run_one(options.only, options)), flush=True)
        return
    print(
        f"instance: {options.apps} applications, {options.plots} plots, {options.nodes} substations, "
        f"seed {options.seed}, headroom {options.capacity:.0%} of demand; objective investment, "
        f"limit {options.limit:g} s, memory cap {options.memory_gib:g} GiB per solver; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    print(
        f"{'solver':40} {'time s':>7} {'bn tenge':>12} {'vs FCFS':>7} {'gap@10s':>8} {'gap@30s':>8} "
        f"{'gap@60s':>8} {'t(<=1%)':>8} {'t(<=.1%)':>8} {'peak GiB':>6}",
        flush=True,
    )
    names = options.solvers.split(",")
    rows = {name: run_child(name, options) for name in names[:1]}
    baseline = float(rows[names[0]].get("objective", math.nan))
    labels = {
        **{key: label for key, (label, _) in SOLVERS.items()},
        "cbc": "CBC on the plain pair model",
    }
    print_row(labels[names[0]], rows[names[0]], baseline)
    for name in names[1:]:
        rows[name] = run_child(name, options)
        print_row(labels[name], rows[name], baseline)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
