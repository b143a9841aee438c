"""``zoneplan kpi``: zone indicators against the plan, in human units (``--json``: raw)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from geo.layers import FEATURE_LAYERS
from geo.store import default_db, open_store
from geo.validate import parse_date
from usecases.plan import progress_by_month
from zoneplan.commands.core import add_db_option
from zoneplan.numbers import count, tenge

#: How each target's actual and target values read.
METRIC_WORDS = {
    "projects": ("projects", count),
    "invest": ("investment", tenge),
    "parks": ("industrial parks", count),
    "floor_m2": ("production floor", lambda v: f"{count(v)} m²"),
}
LAYER_WORDS = {"substations": "substations", "water_mains": "water mains"}
UNIT_WORDS = {"kW": "kW", "m3/day": "m³/day"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "kpi",
        help="zone indicators: area, investment, jobs, headroom, progress against the plan",
        description="Area by status and sector, investment and jobs, free capacity per "
        "asset class, plots ready to build and progress against each plan target. "
        "--json prints the raw numbers (the same figures as the /dashboard page).",
    )
    add_db_option(p)
    p.add_argument("--as-of", metavar="YYYY-MM-DD", help="indicators as of this date")
    p.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    p.add_argument(
        "--monthly",
        action="store_true",
        help="each target's progress at the end of every month since the plan year, and "
        "applications filed and accepted (the dashboard's chart; with --json: raw)",
    )
    p.set_defaults(func=cmd_kpi)


def cmd_kpi(args: argparse.Namespace) -> int:
    from planner.kpi import kpi

    try:
        as_of = parse_date(args.as_of) if args.as_of else None
    except ValueError as err:
        raise ValueError(f"--as-of: {err}") from None
    store = open_store(args.db or default_db())
    if args.monthly:
        if as_of is not None:
            raise ValueError("--monthly shows every month up to today; leave out --as-of")
        line = progress_by_month(store, today=args.today)
        if args.json:
            json.dump(line, sys.stdout, ensure_ascii=False, indent=2, allow_nan=False)
            sys.stdout.write("\n")
        else:
            print(format_months(line))
        return 0
    report = kpi(store.snapshot((*FEATURE_LAYERS, "targets")), as_of=as_of, today=args.today)
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    print(format_kpi(report))
    return 0


def _plots(n: int) -> str:
    return f"{count(n)} plot" + ("" if n == 1 else "s")


def _ha(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ha"


def _area_lines(groups: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return [
        f"  {(k if k != 'none' else 'no occupant'):<12} {_plots(v['plots']):>10} {_ha(v['area_ha']):>10}"
        for k, v in groups.items()
        if v["plots"]
    ]


def _investment_line(inv: Mapping[str, Any]) -> str:
    line = (
        f"investment on {_plots(inv['plots'])} {'/'.join(inv['statuses'])} "
        f"({_ha(inv['area_ha'])}): {tenge(inv['invest'])}, {count(inv['jobs'])} jobs"
    )
    if inv["invest_per_ha"] is not None:
        line += f" ({tenge(inv['invest_per_ha'])}/ha, {inv['jobs_per_ha']:,.1f} jobs/ha)"
    return line


def _infrastructure_lines(report: Mapping[str, Any]) -> list[str]:
    lines = ["free capacity (headroom) by asset class:"]
    for c in report["infrastructure"]:
        unit = UNIT_WORDS.get(c["unit"], c["unit"])
        line = (
            f"  {LAYER_WORDS.get(c['layer'], c['layer'])}: {c['operational']} of {c['assets']} "
            f"giving capacity, {count(c['headroom'])} {unit} free in all"
        )
        if c["tightest"]:
            line += f"; least on {c['tightest']} ({count(c['tightest_headroom'])} {unit})"
        lines.append(line)
        for a in c["no_capacity"]:
            due = f", due {a['due']}" + (" (overdue)" if a["overdue"] else "") if a["due"] else ""
            lines.append(f"    {a['asset_id']}: {a['status'].replace('_', ' ')}{due}: none")
    subs = [h for h in report["headroom"] if h["layer"] == "substations" and not h["reason"]]
    if subs:
        lines.append(
            "  by substation: "
            + ", ".join(f"{h['asset_id']} {count(h['headroom'])} kW" for h in subs)
        )
    return lines


def _ready_line(r: Mapping[str, Any]) -> str:
    waiting = ", ".join(f"{k} {v}" for k, v in r["waiting_for"].items() if v)
    return (
        f"ready to build: {count(r['plots'])} of {count(r['available'])} available "
        f"plot{'' if r['available'] == 1 else 's'} ({_ha(r['area_ha'])})"
        + (f"; the others wait for: {waiting}" if waiting else "")
    )


def _target_line(t: Mapping[str, Any]) -> str:
    word, fmt = METRIC_WORDS[t["metric"]]
    pct = "" if t["progress"] is None else f" ({100 * t['progress']:.0f}%)"
    return (
        f"  {t['target_id']} {word} by {t['year']}: {fmt(t['actual'])} of {fmt(t['target'])}{pct}"
    )


def format_kpi(report: Mapping[str, Any]) -> str:
    """The :func:`planner.kpi.kpi` report as text: human units, one line per asset class."""
    when = f"as of {report['as_of']}" if report["as_of"] else "as recorded"
    lines = [
        f"zone indicators {when} (today {report['today']}): {_plots(report['plots'])}, "
        f"{_ha(report['area']['total_ha'])}",
        "area by status:",
        *_area_lines(report["area"]["by_status"]),
        "area by occupant's sector:",
        *_area_lines(report["area"]["by_sector"]),
        _investment_line(report["investment"]),
        *_infrastructure_lines(report),
        _ready_line(report["ready_to_build"]),
    ]
    if report["targets"]:
        lines.append("plan targets (--json explains how each is counted):")
        lines += [_target_line(t) for t in report["targets"]]
    else:
        lines.append("plan targets: none recorded")
    return "\n".join(lines)


def format_months(line: Mapping[str, Any]) -> str:
    """:func:`usecases.plan.progress_by_month` as a table: a row per month, a column per
    target (its actual value then), then applications filed and accepted by then."""
    if not line["targets"]:
        return "plan targets: none recorded"
    heads = ["month"] + [
        f"{t['target_id']} {METRIC_WORDS[t['metric']][0]}" for t in line["targets"]
    ]
    heads += ["filed", "accepted"]
    rows = [
        [month]
        + [METRIC_WORDS[t["metric"]][1](t["actual"][i]) for t in line["targets"]]
        + [count(line["applications"]["filed"][i]), count(line["applications"]["accepted"][i])]
        for i, month in enumerate(line["months"])
    ]
    targets = (
        ["target"]
        + [f"{METRIC_WORDS[t['metric']][1](t['target'])} by {t['year']}" for t in line["targets"]]
        + ["", ""]
    )
    widths = [max(len(str(r[c])) for r in [heads, targets, *rows]) for c in range(len(heads))]
    fmt = "  ".join(f"{{:<{w}}}" if c == 0 else f"{{:>{w}}}" for c, w in enumerate(widths))
    return "\n".join(fmt.format(*r).rstrip() for r in [heads, targets, *rows])
