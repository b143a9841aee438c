"""``zoneplan servicing``: what each plot can connect to, and when it is ready."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from geo.validate import parse_date
from zoneplan.commands.core import add_db_option, open_db


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "servicing",
        help="road, rail, power, water, storm, gas per plot, as of a date",
        description="What each plot can really connect to: as recorded, or as of "
        "a date (assets due by then count as operational, marked "
        "projected), optionally with what-if statuses (not saved).",
    )
    add_db_option(p)
    p.add_argument(
        "--as-of", metavar="YYYY-MM-DD", help="count assets due by this date as operational"
    )
    p.add_argument(
        "--plot",
        action="append",
        metavar="ID",
        default=None,
        help="only this plot (repeatable); one plot prints an explanation",
    )
    p.add_argument(
        "--what-if",
        nargs="+",
        action="extend",
        metavar="LAYER:ASSET=STATUS",
        default=None,
        help="flip asset statuses without saving, e.g. substations:SS-12=operational",
    )
    p.add_argument("--power-factor", type=float, default=0.9, help="kW per kVA (default 0.9)")
    p.add_argument(
        "--network",
        action="store_true",
        help="print the road and rail network report (snapping tolerance, dead "
        "ends) as JSON and stop",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the JSON document to stdout")
    out.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write .json (the document), .csv (one row per plot) or .geojson",
    )
    p.set_defaults(func=cmd_servicing)


def _as_of(text: str | None):
    if text is None:
        return None
    try:
        return parse_date(text)
    except ValueError as err:
        raise ValueError(f"--as-of: {err}") from None


def cmd_servicing(args: argparse.Namespace) -> int:
    from planner.servicing import UTILITIES, UTILITY_WORDS, ServicingModel, explain, parse_what_if

    as_of = _as_of(args.as_of)
    what_if = parse_what_if(args.what_if or [])
    if args.output is not None and args.output.suffix.lower() not in (".json", ".csv", ".geojson"):
        raise ValueError(f"-o {args.output}: use a .json, .csv or .geojson file name")
    store = open_db(args)
    t0 = time.perf_counter()
    model = ServicingModel(store.snapshot(), power_factor=args.power_factor, today=args.today)
    if args.network:
        text = json.dumps(model.network_report(), ensure_ascii=False, indent=2) + "\n"
        if args.output is None:
            sys.stdout.write(text)
        elif args.output.suffix.lower() == ".json":
            args.output.write_text(text, encoding="utf-8")
            print(f"wrote the network report to {args.output}")
        else:
            raise ValueError(f"-o {args.output}: the network report is JSON; use a .json name")
        return 0
    doc = model.document(args.plot, as_of=as_of, what_if=what_if)
    elapsed = time.perf_counter() - t0
    if args.json:
        json.dump(doc, sys.stdout, ensure_ascii=False, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    if args.output is not None:
        _write(args.output, doc, model)
        print(f"wrote {len(doc['plots'])} plots to {args.output} ({elapsed:.2f} s)")
        return 0
    when = f"as of {doc['as_of']} (projected)" if doc["as_of"] else "as recorded"
    head = f"servicing {when}, today {doc['today']}"
    if what_if:
        head += ", what-if " + ", ".join(f"{l}:{a}={s}" for (l, a), s in what_if.items())
    print(head)
    if args.plot and len(args.plot) == 1:
        rec = doc["plots"][0]
        print(f"plot {rec['plot_id']}")
        for line in explain(rec):
            print(f"  {line}")
        return 0
    print(_table(doc["plots"]))
    optional = [UTILITY_WORDS[u] for u in UTILITIES if u not in model.required and u != "rail"]
    print(
        f"ready counts {', '.join(UTILITY_WORDS[u] for u in model.required)} (and rail where "
        f"the plot needs it); {' and '.join(optional)} are not required"
    )
    ready = sum(r["ready"] == "now" for r in doc["plots"])
    rail = sum(r["rail"]["available"] for r in doc["plots"])
    print(
        f"{len(doc['plots'])} plots: {rail} with rail access, {ready} ready to build now "
        f"({elapsed:.2f} s)"
    )
    net = model.network_report()["roads"]
    loose = sum(not d["at_gate"] for d in net["dangling"])
    print(
        f"road network: {net['nodes']} nodes, {net['edges']} edges, snapping tolerance "
        f"{net['tolerance_m']:g} m, {net['dangling_ends']} dead ends ({loose} not at a gate; "
        f"--network lists them)"
    )
    return 0


def _short(item: dict[str, Any], key: str) -> str:
    if item["available"] if "available" in item else item.get("fronts"):
        mark = "" if item.get("fits", True) is not False else "!"
        proj = "*" if item.get("projected") else ""
        return f"{item.get(key) or '-'}{mark}{proj}"
    return "-" if item.get("code") == "none_within" or item.get("code") == "out_of_reach" else "x"


def _ready(rec: dict[str, Any]) -> str:
    if rec["ready"] == "unknown":
        return f"unknown (waits for {', '.join(rec['waits_for']) or '?'})"
    if rec["ready"] != "now" and rec.get("ready_overdue"):
        return f"{rec['ready']} overdue"
    return rec["ready"]


#: The table's key: every mark and word a cell may hold.
TABLE_KEY = """\
key: an id = connects to that asset (road: the gate reached and the distance along roads)
     (no frontage) = the plot does not front a road; the distance counts from the nearest one
     x = blocked by an asset's status, - = none in reach, ! = demand does not fit, * = projected
     ready: now; a date = when the last needed asset is due ("overdue": already past);
     "unknown (waits for …)" = a needed connection is missing, or blocked with no due date"""


def _table(plots: list[dict]) -> str:
    rows = []
    for r in plots:
        rd = r["road"]
        road = (f"{rd['gate']} {round(rd['distance_m']):,} m" if rd["gate"] else "unreachable") + (
            "" if rd["fronts"] else " (no frontage)"
        )
        rows.append(
            {
                "plot": r["plot_id"],
                "road": road,
                "rail": _short(r["rail"], "via"),
                "power": _short(r["power"], "substation"),
                "water": _short(r["water"], "main"),
                "storm": _short(r["storm"], "main"),
                "gas": _short(r["gas"], "main"),
                "ready": _ready(r),
            }
        )
    if not rows:
        return "(no plots)"
    return pd.DataFrame(rows).to_string(index=False) + "\n" + TABLE_KEY


def flatten(rec: dict[str, Any]) -> dict[str, Any]:
    """One flat row per plot record (CSV and GeoJSON properties)."""
    row: dict[str, Any] = {"plot_id": rec["plot_id"]}
    for u in ("road", "rail", "power", "water", "storm", "gas"):
        for key, value in rec[u].items():
            if isinstance(value, list):
                value = "; ".join(a.get("asset_id", "") for a in value) or None
            row[f"{u}_{key}"] = value
    row["ready"] = rec["ready"]
    row["waits_for"] = ", ".join(rec["waits_for"]) or None
    return row


def _write(path: Path, doc: dict, model) -> None:
    suffix = path.suffix.lower()
    tmp = path.with_name(path.name + ".part")
    if suffix == ".json":
        tmp.write_text(
            json.dumps(doc, ensure_ascii=False, indent=2, allow_nan=False), encoding="utf-8"
        )
    else:
        frame = pd.DataFrame([flatten(r) for r in doc["plots"]])
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            import geopandas as gpd

            from geo.crs import to_wgs84

            plots = model.layers["plots"]
            geom = plots.set_index(plots["plot_id"].astype(str)).geometry
            gdf = gpd.GeoDataFrame(
                frame, geometry=geom.loc[frame["plot_id"]].to_numpy(), crs=plots.crs
            )
            to_wgs84(gdf).to_file(tmp, driver="GeoJSON")
    tmp.replace(path)
