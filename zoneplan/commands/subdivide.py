"""``zoneplan subdivide``: streets and plots for an expansion area, previewed or committed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from planner.subdivision import METHODS, STREET_LAYOUTS, SubdivisionParams
from usecases import subdivision
from zoneplan.commands.core import add_db_option, open_db
from zoneplan.progress import terminal_progress

_DEFAULTS = SubdivisionParams()
#: Option -> parameter name, and its help.
_NUMBERS = (
    ("--min-ha", "min_ha", "smallest plot, ha"),
    ("--max-ha", "max_ha", "largest plot, ha"),
    ("--target-ha", "target_ha", "plot area aimed at, ha (default: geometric mean of the range)"),
    ("--frontage", "frontage_m", "shortest street frontage of a plot, m"),
    ("--max-depth-ratio", "max_depth_ratio", "largest depth / frontage of a plot"),
    (
        "--street-spacing",
        "street_spacing_m",
        "distance between local streets, m (default: from the target area)",
    ),
    ("--row", "row_m", "right-of-way width of local streets, m"),
    ("--spine-row", "spine_row_m", "right-of-way width of the spine and cross streets, m"),
    ("--block", "block_m", "longest local street run before a cross street, m"),
    ("--setback-rail", "setback_rail_m", "distance plots keep from rail lines, m"),
    ("--setback-power", "setback_power_m", "distance plots keep from power lines, m"),
    ("--setback-storm", "setback_storm_m", "distance plots keep from storm sewers, m"),
    ("--setback-prot", "setback_prot_m", "distance plots keep from protection zones, m"),
    ("--large-share", "large_share", "share (0-1) of the land given to large lots"),
    ("--large-ha", "large_ha", "target area of a large lot, ha (default: 80%% of --max-ha)"),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "subdivide",
        help="subdivide an expansion area into streets and plots",
        description="Lay out streets and plots in an expansion area, compare "
        "the methods, and preview them as GeoJSON or commit them "
        "as candidate plots and planned roads.",
    )
    add_db_option(p)
    p.add_argument("--area", required=True, metavar="EXP_ID", help="expansion area id")
    p.add_argument(
        "--method",
        choices=METHODS,
        default=_DEFAULTS.method,
        help="strip: plots cut across strips along streets; obb: recursive "
        "bounding-box splits (default strip)",
    )
    p.add_argument(
        "--streets",
        choices=STREET_LAYOUTS,
        default=_DEFAULTS.streets,
        help="generated spine and local streets, or existing roads only (obb)",
    )
    for option, name, text in _NUMBERS:
        default = getattr(_DEFAULTS, name)
        shown = f" (default {default:g})" if default is not None else ""
        p.add_argument(option, dest=name, type=float, default=None, metavar="X", help=text + shown)
    p.add_argument(
        "--keep-existing",
        action="store_true",
        help="keep the candidate plots in the area and subdivide around them "
        "(default: replace them)",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--preview",
        action="store_true",
        help="write the preview to -o FILE.geojson; the store is not touched",
    )
    mode.add_argument(
        "--commit",
        action="store_true",
        help="store the plots as candidates and the streets as planned roads",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE.geojson",
        help="preview file (WGS84 GeoJSON with kind plot|street|removed)",
    )
    p.add_argument("--user", default="cli", help="name recorded in the audit trail")
    p.set_defaults(func=cmd_subdivide)


def _params(args: argparse.Namespace) -> SubdivisionParams:
    values: dict[str, Any] = {
        name: getattr(args, name) for _, name, _ in _NUMBERS if getattr(args, name) is not None
    }
    return subdivision.read_params(
        {
            **values,
            "method": args.method,
            "streets": args.streets,
            "keep_existing": args.keep_existing,
        }
    )


def _check_output(args: argparse.Namespace) -> None:
    if args.preview and args.output is None:
        raise ValueError("--preview needs -o FILE.geojson")
    if args.output is None:
        return
    if args.output.suffix.lower() not in (".geojson", ".json"):
        raise ValueError(f"-o {args.output}: use a .geojson file name")
    if args.output.is_dir():
        raise IsADirectoryError(f"-o {args.output} is a folder; give a .geojson file name")
    if not args.output.parent.is_dir():
        raise FileNotFoundError(f"-o {args.output}: folder {args.output.parent} does not exist")


def cmd_subdivide(args: argparse.Namespace) -> int:
    _check_output(args)
    params = _params(args)
    store = open_db(args)
    result = subdivision.preview(
        store, params, exp_id=args.area, progress=terminal_progress("subdivide")
    )
    _print_summary(result)
    if args.output is not None:
        args.output.write_text(
            json.dumps(result.feature_collection(), ensure_ascii=False), encoding="utf-8"
        )
        print(
            f"wrote {args.output} ({len(result.result.plots)} plots, "
            f"{int((~result.result.streets['existing'].astype(bool)).sum())} new streets, "
            f"{len(result.result.removed)} replaced plots)",
            file=sys.stderr,
        )
    if args.commit:
        done = subdivision.commit(store, result.plan(), user=args.user)
        print(
            f"stored {len(done['plots'])} candidate plots ({_span(done['plots'])}) and "
            f"{len(done['roads'])} planned roads ({_span(done['roads'])}); deleted "
            f"{len(done['removed'])} replaced candidate plots"
        )
    return 0


def _span(ids: list[str]) -> str:
    return f"{ids[0]}..{ids[-1]}" if len(ids) > 1 else (ids[0] if ids else "none")


_ROWS = (
    ("plots", "plots", "{:d}"),
    ("utilisation", "utilisation of net land", "{:.1%}"),
    ("frontage_share", "with street frontage", "{:.0%}"),
    ("plotted_ha", "plotted, ha", "{:.2f}"),
    ("net_developable_ha", "net developable, ha", "{:.2f}"),
    ("deviation_mean", "area off target, mean", "{:.1%}"),
    ("deviation_worst", "area off target, worst", "{:.1%}"),
    ("out_of_range", "outside the area range", "{:d}"),
    ("compactness_mean", "compactness (circle)", "{:.3f}"),
    ("elongation_mean", "elongation (short/long)", "{:.3f}"),
    ("depth_ratio_max", "depth / frontage, max", "{:.2f}"),
    ("too_deep", "deeper than allowed", "{:d}"),
    ("street_land_ha", "land in new streets, ha", "{:.2f}"),
    ("new_street_km", "new street length, km", "{:.2f}"),
    ("remnants", "remnants left open", "{:d}"),
    ("elapsed_s", "seconds", "{:.2f}"),
)


def _print_summary(result: subdivision.Preview) -> None:
    methods = list(result.comparison)
    chosen = result.result.params.method
    where = result.exp_id or "the drawn area"
    print(f"{where}: {result.result.metrics['area_ha']:.2f} ha; method {chosen}")
    print(f"{'':28}" + "".join(f"{m + (' *' if m == chosen else ''):>12}" for m in methods))
    for key, label, fmt in _ROWS:
        cells = []
        for m in methods:
            value = result.comparison[m].get(key)
            cells.append(f"{'-' if value is None else fmt.format(value):>12}")
        print(f"{label:28}" + "".join(cells))
    if len(result.result.removed):
        print(
            f"replaces {len(result.result.removed)} candidate plot(s): "
            + ", ".join(result.result.removed["plot_id"].astype(str))
        )
    if result.result.kept:
        print(f"keeps {len(result.result.kept)} plot(s): " + ", ".join(result.result.kept))
    for text in result.result.warnings:
        print(f"note: {text}")
