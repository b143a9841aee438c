"""``zoneplan access``: accessibility metrics of plots and the Steiner solver on SteinLib files."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from geo.validate import parse_date
from zoneplan.commands.core import add_db_option, open_db


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("access", help="accessibility of plots and connection design")
    actions = p.add_subparsers(dest="access_command", required=True, metavar="ACTION")
    m = actions.add_parser(
        "metrics",
        help="distances and times to gates, station, substation; isochrone bands",
        description="Per plot: network distance and travel time to every "
        "gate, to the station (as recorded and as of a date) and "
        "to the serving substation; and the isochrone band "
        "(minutes from the nearest gate).",
    )
    add_db_option(m)
    m.add_argument(
        "--as-of", metavar="YYYY-MM-DD", help="count assets due by this date as operational"
    )
    m.add_argument(
        "--minutes",
        default="2,5,10",
        metavar="N,N,...",
        help="isochrone bands in minutes (default 2,5,10)",
    )
    out = m.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the JSON document to stdout")
    out.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write the per-plot metrics with their band: .geojson (WGS84) or .csv",
    )
    m.set_defaults(func=cmd_metrics)
    s = actions.add_parser(
        "steiner",
        help="minimum-cost tree joining the terminals of a SteinLib .stp instance",
        description="Solve a SteinLib STP instance: reductions, heuristics "
        "and local search, and an exact MILP on HiGHS for small "
        "instances; prints cost, proven lower bound and gap.",
    )
    s.add_argument("instance", type=Path, metavar="FILE.stp")
    budget = s.add_mutually_exclusive_group()
    budget.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="S",
        help="stop and return the best tree found, with its bound and gap, "
        "after S seconds (default 10)",
    )
    budget.add_argument(
        "--prove",
        action="store_true",
        help="no time limit: prove optimality, however long it takes",
    )
    s.add_argument("--heuristic", action="store_true", help="skip the exact MILP")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the tree as JSON")
    fmt.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write the chosen edges as CSV (u,v,cost)"
    )
    s.set_defaults(func=cmd_steiner)
    d = actions.add_parser(
        "design",
        help="cheapest new roads, rail spur or feeders reaching an area's plots",
        description="Design the cheapest new roads, rail spur or 10 kV "
        "feeders joining an expansion area's plots to the "
        "existing network (operational as of the date), avoiding "
        "protection zones and taken plots: a Steiner tree on a "
        "corridor graph, with cost, lower bound and gap. "
        "--freight-years adds freight cost over a horizon.",
    )
    add_db_option(d)
    d.add_argument("--area", metavar="EXP_ID", help="expansion area id (or list --targets)")
    d.add_argument("--kind", required=True, choices=("road", "rail", "power"))
    d.add_argument(
        "--targets",
        default="all",
        metavar="all|rail|power|P-1,P-2",
        help="the area's free plots (all), those needing rail, those with a power "
        "demand, or listed plot ids (default all)",
    )
    d.add_argument(
        "--as-of", metavar="YYYY-MM-DD", help="count assets due by this date as operational"
    )
    d.add_argument(
        "--what-if",
        action="append",
        default=[],
        metavar="LAYER:ID=STATUS",
        help="assume an asset's status (repeatable)",
    )
    d.add_argument(
        "--freight-years",
        type=float,
        metavar="N",
        help="minimise construction plus freight over N years (road, rail)",
    )
    d.add_argument(
        "--tonnes",
        action="append",
        default=[],
        metavar="PLOT=T",
        help="annual tonnes of a plot (repeatable; others: 2000 t/ha)",
    )
    d.add_argument(
        "--cost-per-m",
        type=float,
        metavar="TENGE",
        help="construction cost per metre instead of the kind's default",
    )
    d.add_argument(
        "--spacing",
        type=float,
        default=None,
        metavar="M",
        help="corridor lattice spacing in metres (default 50)",
    )
    budget = d.add_mutually_exclusive_group()
    budget.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="S",
        help="seconds for the design (default 10); the best found is returned "
        "with its bound and gap",
    )
    budget.add_argument(
        "--prove",
        action="store_true",
        help="no time limit: prove optimality, however long it takes",
    )
    d.add_argument(
        "--stp-out",
        type=Path,
        metavar="FILE",
        help="write the corridor graph instance solved (SteinLib)",
    )
    fmt = d.add_mutually_exclusive_group()
    fmt.add_argument(
        "--json",
        action="store_true",
        help="print the segments as a GeoJSON FeatureCollection (WGS84) with a summary member",
    )
    fmt.add_argument(
        "-o", "--output", type=Path, metavar="FILE.geojson", help="write the segments as GeoJSON"
    )
    d.add_argument(
        "--commit", action="store_true", help="store the segments as planned assets (needs --due)"
    )
    d.add_argument("--due", metavar="YYYY-MM-DD", help="due date of committed segments")
    d.add_argument("--user", default="cli", help="user named in the audit trail (default cli)")
    d.set_defaults(func=cmd_design)


def _time_limit(args: argparse.Namespace) -> float | None:
    """Seconds from ``--time-limit`` (default 10 s), or None (prove) for ``--prove``."""
    from planner.access import DEFAULT_TIME_LIMIT_S

    if getattr(args, "prove", False):
        return None
    if args.time_limit is None:
        return DEFAULT_TIME_LIMIT_S
    if not args.time_limit > 0 or args.time_limit == float("inf"):
        raise ValueError(
            "--time-limit must be a positive number of seconds (use --prove for no limit)"
        )
    return args.time_limit


def cmd_steiner(args: argparse.Namespace) -> int:
    from planner.access import read_stp, steiner_tree

    time_limit = _time_limit(args)
    edges, terminals = read_stp(args.instance)
    tree = steiner_tree(
        edges, terminals, time_limit=time_limit, exact=False if args.heuristic else None
    )
    summary = {
        "instance": str(args.instance),
        "nodes": len({n for e in edges for n in e[:2]}),
        "edges": len(edges),
        "terminals": len(set(terminals)),
        "cost": tree.cost,
        "lower_bound": tree.lower_bound,
        "gap": tree.gap,
        "optimal": tree.optimal,
        "method": tree.method,
        "time_limit_s": time_limit,
        "elapsed_s": round(tree.elapsed_s, 3),
    }
    if args.json:
        json.dump({**summary, "tree": [list(e) for e in tree.edges]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if args.output is not None:
        lines = ["u,v,cost"] + [f"{u},{v},{c}" for u, v, c in tree.edges]
        args.output.write_text("\n".join(lines) + "\n")
    bound = "-" if tree.lower_bound is None else f"{tree.lower_bound:g}"
    gap = (
        "proven optimal"
        if tree.optimal
        else (
            "gap unknown" if not tree.lower_bound else f"gap {tree.cost / tree.lower_bound - 1:.2%}"
        )
    )
    print(
        f"{args.instance.name}: {summary['nodes']} nodes, {summary['edges']} edges, "
        f"{summary['terminals']} terminals"
    )
    print(
        f"tree of {len(tree.edges)} edges, cost {tree.cost:g}, lower bound {bound} ({gap}), "
        f"{tree.method}, {tree.elapsed_s:.2f} s"
    )
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
    model = ServicingModel(open_db(args).snapshot(), today=args.today)
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
    cols = [
        "plot_id",
        "gate",
        "gate_m",
        "gate_min",
        "station",
        "station_m",
        "rail",
        "rail_asof",
        "substation",
        "substation_m",
        "minutes",
    ]
    print(metrics[cols].to_string(index=False, na_rep="-"))
    print(f"({elapsed:.2f} s)")
    return 0


def _tonnes(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        plot, eq, value = item.partition("=")
        try:
            out[plot.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--tonnes {item!r}: write PLOT=TONNES, e.g. P-190=12000") from None
        if not eq or not plot.strip():
            raise ValueError(f"--tonnes {item!r}: write PLOT=TONNES, e.g. P-190=12000")
    return out


def cmd_design(args: argparse.Namespace) -> int:
    from planner.corridors import DEFAULT_SPACING_M
    from planner.servicing import parse_what_if
    from usecases.access_design import commit_design, design_document, run_design
    from zoneplan.progress import terminal_progress

    if args.commit and not args.due:
        raise ValueError("--commit needs --due YYYY-MM-DD (when the new segments are due)")
    if args.due and not args.commit:
        raise ValueError("--due only applies with --commit")
    if args.due:
        parse_date(args.due)
    if args.output is not None and args.output.suffix.lower() not in (".geojson", ".json"):
        raise ValueError(f"-o {args.output}: use a .geojson file name")
    for path in (args.output, args.stp_out):
        if path is not None and not path.parent.is_dir():
            raise ValueError(f"{path}: folder {path.parent} does not exist")
    as_of = parse_date(args.as_of) if args.as_of else None
    store = open_db(args)
    design = run_design(
        store,
        kind=args.kind,
        area_id=args.area,
        targets=args.targets,
        as_of=as_of,
        what_if=parse_what_if(args.what_if),
        freight_years=args.freight_years,
        tonnes=_tonnes(args.tonnes),
        per_m=args.cost_per_m,
        spacing_m=DEFAULT_SPACING_M if args.spacing is None else args.spacing,
        time_limit=_time_limit(args),
        progress=terminal_progress("access design"),
    )
    doc = design_document(design)
    if args.stp_out is not None:
        design.write_stp(args.stp_out)
    if args.commit:
        done = commit_design(store, doc, user=args.user, due=args.due)
        doc["summary"]["committed"] = done
    if args.json:
        json.dump(doc, sys.stdout, ensure_ascii=False, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    if args.output is not None:
        tmp = args.output.with_name(args.output.name + ".part")
        tmp.write_text(json.dumps(doc, ensure_ascii=False, allow_nan=False))
        tmp.replace(args.output)
    _print_design(doc["summary"], doc["features"], args)
    return 0


def _print_design(s: dict, features: list, args: argparse.Namespace) -> None:
    gap = (
        "proven optimal"
        if s["optimal"]
        else ("gap unknown" if s["gap"] is None else f"gap {s['gap']:.2%}")
    )
    bound = "-" if s["lower_bound"] is None else f"{s['lower_bound']:,.0f}"
    print(
        f"access design, {s['kind']}, area {s['area'] or '(listed plots)'}: "
        f"{len(s['connected'])} of {len(s['targets'])} target plots connected "
        f"({len(s['already_served'])} already served)"
    )
    of = "" if s["objective"] == "construction" else " on the total"
    print(
        f"  {len(features)} new segments, {sum(s['length_m'].values()):,.0f} m, "
        f"cost {s['cost']:,.0f} tenge; lower bound{of} {bound} ({gap}); {s['method']}, "
        f"{s['elapsed_s']:.1f} s"
    )
    if "freight_cost" in s:
        c = s["construction_only"]
        print(
            f"  freight over {s['freight_years']:g} years: {s['freight_cost']:,.0f}; total "
            f"{s['total']:,.0f} vs {c['total']:,.0f} for the construction-only design "
            f"(saving {s['saving']:,.0f})"
        )
    for f in features:
        p = f["properties"]
        print(
            f"  {p['seg_id']}: {p['length_m']:,.0f} m, {p['cost']:,.0f}, serves "
            f"{', '.join(p['targets']) or '-'}"
        )
    for plot, why in s["unreachable_reasons"].items():
        print(f"  unreachable {plot}: {why}")
    if args.stp_out is not None:
        print(f"  instance written to {args.stp_out}")
    if args.output is not None:
        print(f"  segments written to {args.output}")
    if "committed" in s:
        done = s["committed"]
        print(
            f"  committed as planned {done['layer']} {', '.join(done['asset_ids'])}, "
            f"due {done['due']}"
        )
