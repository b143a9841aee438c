"""``zoneplan import`` and ``zoneplan export``: layers in and out of files."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path

from geo.archive import DEFAULT_ZIP_LEVEL
from geo.crs import parse_epsg
from geo.io import (
    FORMATS,
    MODES,
    NEVER_EXPORTED,
    NOT_IMPORTABLE,
    ImportPlan,
    export_layer_names,
    export_layers,
    parse_where,
)
from geo.layers import LAYERS
from geo.store import Conflict, StoreError
from geo.validate import ValidationError
from usecases import uploads
from zoneplan.cli import CommandError
from zoneplan.commands.core import add_db_option, open_db
from zoneplan.problems import fold, problem_items


class FilesError(CommandError, ValueError):
    """A refused import or export (also a ValueError, so ``python -m zoneplan.cli``,
    whose ``__main__`` has its own CommandError class, still prints it cleanly)."""


# How many problems (and updates) are printed one per line before the rest are summarised.
SHOWN_PROBLEMS = 50
SHOWN_UPDATES = 50
_SUFFIX_FORMAT = {
    ".zip": "shp",
    ".shp": "shp",
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".json": "geojson",
}
# The suffixes each format may be written under (others not listed here are free).
_FORMAT_SUFFIXES = {
    "shp": (".zip", ".shp"),
    "gpkg": (".gpkg",),
    "geojson": (".geojson", ".json", ".zip"),
}
_USUAL_SUFFIX = {"shp": ".zip", "gpkg": ".gpkg", "geojson": ".geojson"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="update a layer from a file (or replace its content, confirmed)",
        description="Import a zipped shapefile, .shp, GeoPackage or GeoJSON into LAYER. "
        "Every feature is checked first; on any problem nothing is written. "
        "--mode update (default) updates the features whose id is in the file "
        "(the fields it carries and the geometry, versioned and audited) and "
        "adds new ids; nothing is removed. --mode replace also removes what the "
        "file lacks: it lists the removals and writes only with --yes, and never "
        "removes reserved, allocated or occupied plots or plots an application "
        "names.",
    )
    p.add_argument("layer", metavar="LAYER", choices=[n for n in LAYERS if n not in NOT_IMPORTABLE])
    p.add_argument("file", metavar="FILE", type=Path)
    add_db_option(p)
    p.add_argument(
        "--crs",
        type=_epsg_arg,
        default=None,
        help="EPSG code of the coordinates, for files without a CRS (.prj)",
    )
    p.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="update (default): update ids in the file, add new ones; "
        "replace: also remove the features the file lacks",
    )
    p.add_argument("--replace", action="store_true", help="the same as --mode replace")
    p.add_argument(
        "--yes",
        action="store_true",
        help="confirm the removals a replace lists (without it nothing is written)",
    )
    p.add_argument(
        "--encoding",
        default=None,
        metavar="NAME",
        help="encoding of the file's text when it does not say, e.g. cp1251 "
        "(a .dbf without .cpg, GeoJSON not saved as UTF-8)",
    )
    p.add_argument(
        "--src-layer",
        default=None,
        metavar="NAME",
        help="layer of a GeoPackage, or shapefile of a zip, holding several",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="check and report what would change, write nothing"
    )
    p.add_argument(
        "--user",
        default=None,
        help="name recorded in the audit trail (default: $ZONEPLAN_USER or login)",
    )
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "export",
        help="write layers to a zipped shapefile, GeoPackage or GeoJSON",
        description="Export LAYER, or 'all' public layers (feature layers and targets; "
        "never users, applications or audit). Shapefile output is a zip of "
        "<layer>.shp/.shx/.dbf/.prj/.cpg (tables as .dbf), or for one layer "
        "with -o NAME.shp the plain files beside each other; GeoJSON is WGS84 "
        "(RFC 7946) unless --crs says otherwise, and a zip of <layer>.geojson "
        "for 'all'; GeoPackage holds every layer in one file.",
    )
    p.add_argument(
        "layer",
        metavar="LAYER|all",
        choices=["all", *[n for n in LAYERS if n not in NEVER_EXPORTED]],
    )
    p.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        default=None,
        help="output format (default: from the -o suffix)",
    )
    p.add_argument("-o", "--output", type=Path, required=True, metavar="PATH")
    add_db_option(p)
    p.add_argument(
        "--crs",
        type=_epsg_arg,
        default=None,
        help="EPSG code of the output (default: working CRS; 4326 for GeoJSON)",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="keep rows whose FIELD equals VALUE; repeatable (fields ANDed, "
        "a field repeated matches any of its values)",
    )
    p.add_argument(
        "--zip-level",
        type=int,
        default=DEFAULT_ZIP_LEVEL,
        choices=range(0, 10),
        metavar="0-9",
        help=f"deflate level of zip outputs (default {DEFAULT_ZIP_LEVEL}: fast; 9 smallest)",
    )
    p.set_defaults(func=cmd_export)


def _epsg_arg(text: str) -> int:
    try:
        return parse_epsg(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _user(args: argparse.Namespace) -> str:
    if args.user:
        return args.user
    try:
        return os.environ.get("ZONEPLAN_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _report_problems(err: ValidationError, what: str) -> FilesError:
    """Print the problems (near-identical ones folded into one line, capped) and build the
    closing error."""
    lines = fold(problem_items(err.problems))
    for line in lines[:SHOWN_PROBLEMS]:
        print(f"  {line}", file=sys.stderr)
    if len(lines) > SHOWN_PROBLEMS:
        print(f"  ... and {len(lines) - SHOWN_PROBLEMS} more problem(s)", file=sys.stderr)
    bad = len({p.index for p in err.problems if p.index is not None})
    where = f" in {bad} feature(s)" if bad else ""
    return FilesError(f"{what} refused: {len(err.problems)} problem(s){where}; nothing was written")


def _mode(args: argparse.Namespace) -> str:
    if args.replace and args.mode == "update":
        raise FilesError("--replace is --mode replace; it contradicts --mode update")
    return "replace" if args.replace else (args.mode or "update")


def _print_plan(plan: ImportPlan) -> None:
    """What the import changes: the summary, each update field by field, each removal."""
    print(plan.summary())
    for key in list(plan.updates)[:SHOWN_UPDATES]:
        print(
            f"  update {key}: "
            + "; ".join(
                f"{name} changed" if name == "geometry" else f"{name} {old} → {new}"
                for name, old, new in plan.changes(key)
            )
        )
    if len(plan.updates) > SHOWN_UPDATES:
        print(f"  ... and {len(plan.updates) - SHOWN_UPDATES} more update(s)")
    if plan.removed:
        print(f"  remove {plan.removals} feature(s) the file lacks:")
        by_status: dict[str, list[str]] = {}
        for key, status in plan.removed.items():
            by_status.setdefault(status or "-", []).append(key)
        for status in plan.removals_by_status:
            print(f"    {status} ({len(by_status[status])}): {', '.join(by_status[status])}")


def cmd_import(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    mode = _mode(args)
    store = open_db(args)
    options = uploads.ImportOptions(
        layer=args.layer,
        mode=mode,
        crs=None if args.crs is None else str(args.crs),
        src_layer=args.src_layer,
        encoding=args.encoding,
    )
    try:
        plan = uploads.check(store, args.file, options)
        if plan.ignored_columns:
            print(
                f"ignored column(s) {', '.join(plan.ignored_columns)}: not fields of {plan.layer}",
                file=sys.stderr,
            )
        _print_plan(plan)
        if not plan.ok:
            raise ValidationError(plan.problems)
        if args.dry_run:
            print("dry run, nothing written")
            return 0
        if plan.removals and not args.yes:
            raise FilesError(
                f"the replace would remove {plan.removals} feature(s) of "
                f"{plan.layer} (listed above); run it again with --yes to confirm, "
                "or --mode update to remove nothing; nothing was written"
            )
        uploads.apply(
            store, plan, user=_user(args), confirm_removals=plan.removals if args.yes else None
        )
    except ValidationError as err:
        raise _report_problems(err, f"import of {args.file.name}") from None
    except Conflict as err:
        raise FilesError(f"{err}; nothing was written") from None
    except StoreError as err:
        raise FilesError(
            f"the store {store.describe()} could not be written ({err}); nothing was written"
        ) from None
    print(f"imported in {time.perf_counter() - started:.1f} s")
    return 0


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    fmt = _SUFFIX_FORMAT.get(args.output.suffix.lower())
    if fmt is None:
        raise FilesError(
            f"cannot tell the format from {args.output.name}; give --format {'|'.join(FORMATS)}"
        )
    return fmt


def _check_output(output: Path, fmt: str, names: list[str]) -> None:
    """Refuse an output whose suffix contradicts the format."""
    suffix = output.suffix.lower()
    several = len(names) > 1
    if fmt == "shp" and suffix == ".shp" and several:
        raise FilesError(f"-o {output.name}: a .shp holds one layer; use a .zip for several layers")
    if fmt == "shp" and suffix not in _FORMAT_SUFFIXES["shp"]:
        raise FilesError(
            "shapefile exports are zip archives; name the output <name>.zip "
            "(or <name>.shp for the plain files of one layer)"
        )
    if fmt == "geojson" and several and suffix != ".zip":
        raise FilesError(
            "GeoJSON for several layers is a zip of <layer>.geojson files; "
            "name the output <name>.zip"
        )
    if fmt == "geojson" and not several and suffix == ".zip":
        raise FilesError(
            f"-o {output.name} does not fit --format geojson for one layer "
            "(a single FeatureCollection); use .geojson"
        )
    if suffix in _SUFFIX_FORMAT and suffix not in _FORMAT_SUFFIXES[fmt]:
        raise FilesError(f"-o {output.name} does not fit --format {fmt}; use {_USUAL_SUFFIX[fmt]}")


def _check_folder(output: Path) -> None:
    """Refuse an output that is a folder or whose folder does not exist (never created)."""
    folder = output.parent
    if not folder.exists():
        raise FilesError(f"folder {folder} does not exist")
    if not folder.is_dir():
        raise FilesError(f"{folder} is not a folder")
    if output.is_dir():
        raise FilesError(f"{output} is a folder; give a file name")


def cmd_export(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    _check_folder(args.output)
    fmt = _format(args)
    names = export_layer_names(args.layer)
    _check_output(args.output, fmt, names)
    if args.where and len(names) > 1:
        raise FilesError("--where filters one layer; name the layer instead of 'all'")
    where = parse_where(names[0], args.where) if args.where else None
    store = open_db(args)
    try:
        written = export_layers(
            store,
            names,
            fmt,
            args.output,
            crs=args.crs,
            where=where,
            zip_level=args.zip_level,
            progress=lambda msg: print(f"  {msg}", file=sys.stderr),
        )
    except StoreError as err:
        raise FilesError(f"the store {store.describe()} could not be read ({err})") from None
    size = written.stat().st_size
    print(
        f"wrote {written} ({fmt}, {len(names)} layer(s), {size / 2**20:.1f} MiB) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0
