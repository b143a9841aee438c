"""``zoneplan access``: accessibility metrics of plots and the Steiner solver on SteinLib files."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from geo.store import default_db, open_store
from geo.validate import parse_date
from zoneplan.commands.core import add_db_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("access", help="accessibility of plots and connection design")
    actions = p.add_subparsers(dest="access_command", required=True, metavar="ACTION")
    m = actions.add_parser("metrics", help="distances and times to gates, station, substation; "
                                           "isochrone bands",
                           description="Per plot: network distance and travel time to every "
                                       "gate, to the station (as recorded and as of a date) and "
                                       "to the serving substation; and the isochrone band "
                                       "(minutes from the nearest gate).")
    add_db_option(m)
    m.add_argument("--as-of", metavar="YYYY-MM-DD", help="count assets due by this date as operational")
    m.add_argument("--minutes", default="2,5,10", metavar="N,N,...",
                   help="isochrone bands in minutes (default 2,5,10)")
    out = m.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the JSON document to stdout")
    out.add_argument("-o", "--output", type=Path, metavar="FILE",
                     help="write the per-plot metrics with their band: .geojson (WGS84) or .csv")
    m.set_defaults(func=cmd_metrics)
    s = actions.add_parser("steiner", help="minimum-cost tree joining the terminals of a "
                                           "SteinLib .stp instance",
                           description="Solve a SteinLib STP instance: reductions, heuristics "
                                       "and local search, and an exact MILP on HiGHS for small "
                                       "instances; prints cost, proven lower bound and gap.")
    s.add_argument("instance", type=Path, metavar="FILE.stp")
    budget = s.add_mutually_exclusive_group()
    budget.add_argument("--time-limit", type=float, default=None, metavar="S",
                        help="stop and return the best tree found, with its bound and gap, "
                             "after S seconds (default 10)")
    budget.add_argument("--prove", action="store_true",
                        help="no time limit: prove optimality, however long it takes")
    s.add_argument("--heuristic", action="store_true", help="skip the exact MILP")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the tree as JSON")
    fmt.add_argument("-o", "--output", type=Path, metavar="FILE",
                     help="write the chosen edges as CSV (u,v,cost)")
    s.set_defaults(func=cmd_steiner)


def _time_limit(args: argparse.Namespace) -> float | None:
    """Seconds from ``--time-limit`` (default 10 s), or None (prove) for ``--prove``."""
    from planner.access import DEFAULT_TIME_LIMIT_S

    if getattr(args, "prove", False):
        return None
    if args.time_limit is None:
        return DEFAULT_TIME_LIMIT_S
    if not args.time_limit > 0 or args.time_limit == float("inf"):
        raise ValueError("--time-limit must be a positive number of seconds (use --prove for no limit)")
    return args.time_limit


def cmd_steiner(args: argparse.Namespace) -> int:
    from planner.access import read_stp, steiner_tree

    time_limit = _time_limit(args)
    edges, terminals = read_stp(args.instance)
    tree = steiner_tree(edges, terminals, time_limit=time_limit,
                        exact=False if args.heuristic else None)
    summary = {"instance": str(args.instance), "nodes": len({n for e in edges for n in e[:2]}),
               "edges": len(edges), "terminals": len(set(terminals)), "cost": tree.cost,
               "lower_bound": tree.lower_bound, "gap": tree.gap, "optimal": tree.optimal,
               "method": tree.method, "time_limit_s": time_limit,
               "elapsed_s": round(tree.elapsed_s, 3)}
    if args.json:
        json.dump({**summary, "tree": [list(e) for e in tree.edges]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if args.output is not None:
        lines = ["u,v,cost"] + [f"{u},{v},{c}" for u, v, c in tree.edges]
        args.output.write_text("\n".join(lines) + "\n")
    bound = "-" if tree.lower_bound is None else f"{tree.lower_bound:g}"
    gap = "proven optimal" if tree.optimal else (
        "gap unknown" if not tree.lower_bound else f"gap {tree.cost / tree.lower_bound - 1:.2%}")
    print(f"{args.instance.name}: {summary['nodes']} nodes, {summary['edges']} edges, "
          f"{summary['terminals']} terminals")
    print(f"tree of {len(tree.edges)} edges, cost {tree.cost:g}, lower bound {bound} ({gap}), "
          f"{tree.method}, {tree.elapsed_s:.2f} s")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from planner.access import accessibility, isochrones, metrics_document, parse_bands
    from planner.servicing import ServicingModel

    as_of = None
    if args.as_of is not None:
        try:
            as_of = parse_date(args.as_of)
        except ValueError as err:
            raise ValueError(f"--as-of: {err}") from None
    bands = parse_bands(args.minutes)
    if args.output is not None and args.output.suffix.lower() not in (".geojson", ".csv"):
        raise ValueError(f"-o {args.output}: use a .geojson or .csv file name")
    t0 = time.perf_counter()
    model = ServicingModel(open_store(args.db or default_db()).snapshot())
    if args.json:
        doc = metrics_document(model, as_of=as_of, minutes=bands)
        json.dump(doc, sys.stdout, ensure_ascii=False, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    metrics = accessibility(model, as_of=as_of)
    iso = isochrones(model, bands, metrics=metrics)
    band = dict(zip(iso["plot_id"], iso["minutes"]))
    metrics["minutes"] = [band.get(p) for p in metrics["plot_id"]]
    elapsed = time.perf_counter() - t0
    if args.output is not None:
        tmp = args.output.with_name(args.output.name + ".part")
        if args.output.suffix.lower() == ".csv":
            metrics.drop(columns="geometry").to_csv(tmp, index=False)
        else:
            from geo.crs import to_wgs84
            to_wgs84(metrics).to_file(tmp, driver="GeoJSON")
        tmp.replace(args.output)
        print(f"wrote {len(metrics)} plots to {args.output} ({elapsed:.2f} s)")
        return 0
    when = f"as of {as_of.isoformat()}" if as_of else "as recorded"
    print(f"accessibility {when}: {len(metrics)} plots")
    for b in bands:
        count = int((iso["minutes"] == b).sum())
        print(f"  within {b:g} min of a gate: {count} plots (this band)")
    print(f"  beyond {bands[-1]:g} min or unreachable: {len(metrics) - len(iso)} plots")
    cols = ["plot_id", "gate", "gate_m", "gate_min", "station", "station_m", "rail", "rail_asof",
            "substation", "substation_m", "minutes"]
    print(metrics[cols].to_string(index=False, na_rep="-"))
    print(f"({elapsed:.2f} s)")
    return 0
