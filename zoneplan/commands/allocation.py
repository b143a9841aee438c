"""``zoneplan allocate``: propose the best allocation of pending applications to available plots."""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo.crs import to_wgs84
from geo.validate import parse_date
from planner.allocation import (
    OBJECTIVES,
    AllocationInputError,
    AllocationResult,
    read_applications_csv,
    solve,
)
from planner.allocation_tables import application_table, capacity_table, plot_table
from planner.servicing import ServicingModel
from usecases.intake import check_against_schema
from zoneplan.commands.core import add_db_option, open_db
from zoneplan.numbers import count, tenge
from zoneplan.problems import fold
from zoneplan.progress import terminal_progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("allocate", help="propose an allocation of applications to available plots")
    add_db_option(p)
    p.add_argument("--as-of", help="servicing as of this date (YYYY-MM-DD); default as recorded")
    p.add_argument("--method", choices=("milp", "greedy"), default="milp")
    p.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="weighted",
        help=(
            "what the optimiser maximises: investment (tenge), jobs, count (applications "
            "placed), or weighted (default: a 0-1 score per placed application, 35%% "
            "investment, 25%% jobs, 10%% each priority, area fit, distance to a gate and the "
            "investor's preferred plots)"
        ),
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=60.0,
        metavar="S",
        help="solver time limit in seconds (default 60)",
    )
    p.add_argument(
        "--applications",
        type=Path,
        metavar="FILE.csv",
        help="applications from a CSV file instead of the store's pending ones",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the result as JSON")
    out.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write the assignment table (.csv) or the chosen plots (.geojson)",
    )
    p.set_defaults(func=cmd_allocate)


def _solver_progress(time_limit: float | None):
    """The solver's (elapsed, objective, bound) reports drawn on a terminal, silent in logs."""
    show = terminal_progress("solving")

    def report(elapsed: float, objective: float, bound: float) -> None:
        gap = abs(bound - objective) / max(abs(objective), 1e-9) if math.isfinite(bound) else None
        done = min(elapsed / time_limit, 0.99) if time_limit else 0.0
        show(
            done,
            f"{elapsed:.1f} s, best {objective:,.2f}" + ("" if gap is None else f", gap {gap:.2%}"),
        )

    return report


def _folded(message: str) -> str:
    """The reader's listing (``line N: problem`` per line) with repeats folded."""
    head, *rows = message.splitlines()
    items = []
    for row in rows:
        where, _, what = row.partition(": ")
        items.append((where, where, what) if what else ("input", "input", row))
    if not items:
        return head
    return f"{head.rstrip(':')} ({len(items)} problem(s)); nothing was used:\n  " + "\n  ".join(
        fold(items)
    )


def cmd_allocate(args: argparse.Namespace) -> int:
    as_of = parse_date(args.as_of) if args.as_of else None
    if args.time_limit is not None and args.time_limit <= 0:
        raise ValueError("--time-limit must be a positive number of seconds")
    if args.output and args.output.suffix.lower() not in (".csv", ".geojson", ".json"):
        raise ValueError(f"-o {args.output}: use a .csv or .geojson file name")
    if args.applications and args.applications.is_dir():
        raise ValueError(f"--applications {args.applications} is a folder; give a CSV file")
    if args.applications and not args.applications.exists():
        raise ValueError(f"no file {args.applications}")
    store = open_db(args)
    snapshot = store.snapshot()
    if args.applications:
        try:
            raw = read_applications_csv(args.applications)
        except AllocationInputError as err:
            raise ValueError(_folded(str(err))) from None
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{args.applications} is not UTF-8 text ({err.reason} at byte "
                f"{err.start}); save the CSV as UTF-8"
            ) from None
        try:
            check_against_schema(raw)
        except ValueError as err:
            raise ValueError(_folded(str(err))) from None
    else:
        raw = store.read("applications")
    apps = application_table(raw)
    print(
        f"building tables{' as of ' + as_of.isoformat() if as_of else ' as recorded'}…",
        file=sys.stderr,
    )
    model = ServicingModel(snapshot, today=args.today)
    plots = plot_table(snapshot, model, as_of=as_of)
    capacities = capacity_table(model, as_of=as_of)
    print(
        f"{len(apps)} applications, {len(plots)} available plots; solving ({args.method})",
        file=sys.stderr,
    )
    result = solve(
        plots,
        apps,
        capacities,
        objective=args.objective,
        method=args.method,
        time_limit=args.time_limit,
        on_progress=_solver_progress(args.time_limit),
    )
    greedy = (
        result
        if args.method == "greedy"
        else solve(plots, apps, capacities, objective=args.objective, method="greedy")
    )
    if args.json:
        print(json.dumps(_document(result, greedy, as_of), ensure_ascii=False, indent=2))
    else:
        _print_summary(result, greedy, apps, args.objective)
    if args.output:
        _write(args.output, result, raw, snapshot["plots"])
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _summary(result: AllocationResult) -> dict:
    allocated = int(result.assignments["plot_id"].notna().sum())
    return {
        "method": result.method,
        "status": result.status,
        "allocated": allocated,
        "objective": result.objective,
        "gap": None if math.isnan(result.gap) else result.gap,
        "elapsed_s": round(result.elapsed_s, 3),
    }


def _document(result: AllocationResult, greedy: AllocationResult, as_of) -> dict:
    rows = result.assignments.astype(object).where(result.assignments.notna(), None)
    return {
        "as_of": as_of.isoformat() if as_of else None,
        "result": _summary(result),
        "greedy": _summary(greedy),
        "assignments": rows.to_dict("records"),
    }


#: What the optimised number is, how it prints, and what it means (see --objective's help).
OBJECTIVE_WORDS = {
    "weighted": (
        "weighted score",
        lambda v: f"{v:,.2f}",
        "weighted score: each placed application scores 0 to 1 (35% investment, 25% jobs, "
        "10% each priority, area fit, nearness to a gate and the investor's preferred plot), "
        "summed; higher is better",
    ),
    "investment": ("investment (objective)", tenge, "objective: investment placed, tenge"),
    "jobs": ("jobs (objective)", count, "objective: jobs placed"),
    "count": ("applications (objective)", count, "objective: applications placed"),
}


def _placed(result: AllocationResult, apps: pd.DataFrame) -> pd.DataFrame:
    chosen = result.assignments.dropna(subset=["plot_id"])["app_id"].astype(str)
    return apps[apps["app_id"].astype(str).isin(set(chosen))]


def _print_summary(
    result: AllocationResult, greedy: AllocationResult, apps: pd.DataFrame, objective: str
) -> None:
    best, base = _summary(result), _summary(greedy)
    label, shown, meaning = OBJECTIVE_WORDS[objective]
    ours, theirs = _placed(result, apps), _placed(greedy, apps)
    rows = [
        (
            "method / status",
            f"{best['method']} / {best['status']}",
            f"{base['method']} / {base['status']}",
        ),
        ("applications placed", count(best["allocated"]), count(base["allocated"])),
        ("investment placed", tenge(ours["invest"].sum()), tenge(theirs["invest"].sum())),
        ("jobs placed", count(ours["jobs"].sum()), count(theirs["jobs"].sum())),
        (label, shown(best["objective"]), shown(base["objective"])),
        ("gap to proven bound", "-" if best["gap"] is None else f"{best['gap']:.3%}", "-"),
        ("seconds", f"{best['elapsed_s']:.2f}", f"{base['elapsed_s']:.2f}"),
    ]
    print(f"{'':24}{'optimised':>22}{'first come, first served':>28}")
    for label, a, b in rows:
        print(f"{label:24}{a:>22}{b:>28}")
    print(textwrap.fill(meaning, 88, subsequent_indent="  "))
    print()
    for row in result.assignments.itertuples(index=False):
        print(
            f"  {row.app_id!s:<8} -> {row.plot_id!s}"
            if row.plot_id
            else f"  {row.app_id!s:<8} not allocated: {row.reason!s}"
        )


def _write(path: Path, result: AllocationResult, apps: pd.DataFrame, plots: pd.DataFrame) -> None:
    extra = apps.drop(columns=[c for c in ("plot_id", "reason", "version") if c in apps])
    table = result.assignments.merge(extra.astype({"app_id": str}), on="app_id", how="left")
    if path.suffix.lower() == ".csv":
        table.to_csv(path, index=False)
        return
    chosen = plots[["plot_id", "area_ha", "geometry"]].merge(
        table.dropna(subset=["plot_id"]), on="plot_id"
    )
    to_wgs84(gpd.GeoDataFrame(chosen)).to_file(path, driver="GeoJSON", engine="pyogrio")
