"""``zoneplan init`` and ``zoneplan info``: build the store and describe it."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from geo.crs import DEFAULT_EPSG, WGS84_EPSG, parse_epsg, transformer
from geo.layers import LAYERS, PLOT_STATUSES
from geo.store import Store, create_store, default_db, is_url, open_store, store_exists
from geo.store.base import redact
from geo.store.migration import fill_from, migrate
from geo.validate import parse_date
from zoneplan.problems import fold, problem_items

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "shapefiles"
SAMPLE_APPLICATIONS = SAMPLE_DIR.parent / "applications.csv"


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """The ``--db`` option every store command shares."""
    parser.add_argument(
        "--db",
        default=None,
        help="store: a GeoPackage file or a postgresql://user@host/database URL "
        f"(default: $ZONEPLAN_DB or {default_db()})",
    )


def add_user_option(parser: argparse.ArgumentParser) -> None:
    """The ``--user`` option of commands that write: the name the audit trail records."""
    parser.add_argument(
        "--user",
        default=None,
        help="name recorded in the audit trail (default: $ZONEPLAN_USER or login)",
    )


def audit_user(args: argparse.Namespace) -> str:
    """``--user``, else ``$ZONEPLAN_USER``, else the login name (``cli`` when there is none)."""
    if args.user:
        return args.user
    try:
        return os.environ.get("ZONEPLAN_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def today_from_env(environ: dict[str, str] | None = None) -> dt.date | None:
    """``ZONEPLAN_TODAY`` (YYYY-MM-DD), the date overdue flags compare with; None when
    unset (the system date then). Read once per command and passed to the core.

    Raises
    ------
    ValueError
        When it is set but not a date.
    """
    text = (os.environ if environ is None else environ).get("ZONEPLAN_TODAY")
    if not text:
        return None
    try:
        return parse_date(text)
    except ValueError as err:
        raise ValueError(f"ZONEPLAN_TODAY: {err}") from None


def epsg_from_env(environ: dict[str, str] | None = None) -> int | None:
    """``ZONEPLAN_EPSG``: the CRS a new store is made in and an opened one must be in
    (None when unset: a new store in EPSG:32643, any store opened in its own CRS). Read
    once per command and passed to the store.

    Raises
    ------
    ValueError
        When it is set but not an EPSG code.
    """
    text = (os.environ if environ is None else environ).get("ZONEPLAN_EPSG")
    if not text:
        return None
    try:
        return parse_epsg(text)
    except ValueError as err:
        raise ValueError(f"ZONEPLAN_EPSG: {err}") from None


def db_from_env(environ: dict[str, str] | None = None) -> str:
    """``ZONEPLAN_DB``, else the default store (``data/zone.gpkg``)."""
    return (os.environ if environ is None else environ).get("ZONEPLAN_DB") or default_db()


def open_db(args: argparse.Namespace) -> Store:
    """The store of ``--db`` (``main`` fills it from ``ZONEPLAN_DB``), checked against
    ``ZONEPLAN_EPSG`` when that is set."""
    return open_store(args.db, epsg=args.epsg)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="build the store from the sample shapefiles")
    add_db_option(p)
    p.add_argument("--force", action="store_true", help="replace an existing store")
    p.add_argument(
        "--source",
        type=Path,
        default=SAMPLE_DIR,
        help="folder of <layer>.shp files (default: the sample zone)",
    )
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("info", help="layers, feature counts, extents, plot area by status")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser(
        "migrate", help="copy a whole store to another backend (GeoPackage <-> PostGIS)"
    )
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="STORE",
        help="the store to copy (a .gpkg file or a postgresql:// URL)",
    )
    p.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="STORE",
        help="the new store (a .gpkg file or a postgresql:// URL)",
    )
    p.add_argument("--force", action="store_true", help="replace a store already at --to")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser(
        "overview",
        help="(re)build the plot overview that map tiles draw small plots from at low zooms "
        "(once for a store made before it existed; writes keep it current)",
    )
    add_db_option(p)
    p.set_defaults(func=cmd_overview)


def load_folder(store: Store, folder: Path) -> dict[str, int]:
    """Load every ``<layer>.shp`` (tables: ``.dbf``) of ``folder``, checked like an import.

    Each file goes through the same validation as ``zoneplan import`` (types,
    vocabularies, geometry validity, the zone's envelope, plot overlaps); the
    sample's applications come from ``data/applications.csv``.

    Raises
    ------
    ValueError
        Naming the file and every bad feature; what was loaded before stays
        (callers build into a temporary store).
    """
    from geo.io import apply_import, plan_import, read_upload

    sources = [
        (name, folder / f"{name}.{'shp' if layer.is_feature else 'dbf'}")
        for name, layer in LAYERS.items()
        if name not in ("users", "audit", "applications") and not layer.internal
    ]
    if folder.resolve() == SAMPLE_DIR.resolve():
        sources.append(("applications", SAMPLE_APPLICATIONS))
    counts: dict[str, int] = {}
    for name, path in sources:
        if not path.exists():
            continue
        plan = plan_import(store, name, read_upload(path, name, epsg=store.epsg))
        if not plan.ok:
            lines = fold(problem_items(plan.problems))
            listing = "\n".join(f"  {line}" for line in lines[:50])
            more = f"\n  … and {len(lines) - 50} more" if len(lines) > 50 else ""
            raise ValueError(
                f"{path} refused ({len(plan.problems)} problem(s)); "
                f"nothing was built:\n{listing}{more}"
            )
        counts[name] = len(apply_import(store, plan, user="init"))
    return counts


def cmd_init(args: argparse.Namespace) -> int:
    db = args.db
    epsg = args.epsg or DEFAULT_EPSG
    if not args.source.is_dir():
        raise FileNotFoundError(f"no folder {args.source}")
    if is_url(db):
        counts = _init_database(db, args.source, force=args.force, epsg=epsg)
    else:
        counts = _init_file(Path(db), args.source, force=args.force, epsg=epsg)
    total = sum(counts.values())
    sample = (
        " (the synthetic sample modelled on the seed facts)"
        if args.source.resolve() == SAMPLE_DIR.resolve()
        else ""
    )
    print(
        f"built {redact(db)}: {total} features and rows in {len(counts)} layers "
        f"from {args.source}{sample}"
    )
    return 0


def _build(path: str, source: Path, epsg: int) -> dict[str, int]:
    """Fill a new GeoPackage at ``path`` (in CRS ``epsg``) from ``source`` and add the
    default users."""
    from usecases.accounts import create_default_users

    store = create_store(path, force=True, epsg=epsg)
    counts = load_folder(store, source)
    create_default_users(store)
    return counts


def _init_file(db: Path, source: Path, *, force: bool, epsg: int) -> dict[str, int]:
    if db.is_dir():
        raise IsADirectoryError(f"--db {db} is a folder; give a .gpkg file name")
    if db.exists() and not force:
        raise FileExistsError(f"{db} exists; use --force to replace it")
    db.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and move into place only when complete, so a failed
    # init leaves the old store (or no file) as it was.
    fd, tmp = tempfile.mkstemp(prefix=".zoneplan-init-", suffix=".gpkg", dir=db.parent)
    os.close(fd)
    try:
        counts = _build(tmp, source, epsg)
        os.replace(tmp, db)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return counts


def _init_database(url: str, source: Path, *, force: bool, epsg: int) -> dict[str, int]:
    """Build in a scratch GeoPackage, then copy it into the database in one transaction,
    so a failed init leaves the database as it was."""
    if not force and store_exists(url):
        raise FileExistsError(
            f"{redact(url)} already holds a zoneplan store; use --force to replace it"
        )
    with tempfile.TemporaryDirectory(prefix="zoneplan-init-") as work:
        scratch = str(Path(work) / "zone.gpkg")
        counts = _build(scratch, source, epsg)
        built = open_store(scratch)
        create_store(url, force=force, fill=fill_from(built), epsg=epsg).close()
    return counts


def cmd_migrate(args: argparse.Namespace) -> int:
    if not args.force and store_exists(args.target):
        raise FileExistsError(
            f"{redact(args.target)} already holds a store; use --force to replace it"
        )
    started = time.perf_counter()
    report = migrate(args.source, args.target, force=args.force)
    print(
        f"copied {redact(args.source)} to {redact(args.target)} "
        f"in {time.perf_counter() - started:.1f} s, checked feature by feature:"
    )
    for entry in report:
        print(
            f"  {entry.layer:<14} {entry.source:>8} -> {entry.target:>8}  "
            f"{'same' if entry.ok else 'DIFFERENT'}"
        )
    print(
        f"{sum(e.target for e in report)} features and rows in {len(report)} layers and tables, "
        "the audit trail as it was"
    )
    return 0


def describe(store: Store) -> dict[str, Any]:
    """Layers with counts and extents, and plot area (ha) by status."""
    layers = {}
    for name, layer in LAYERS.items():
        entry: dict[str, Any] = {
            "label": layer.label,
            "count": store.count(name),
            "geometry": layer.geometry,
        }
        if layer.is_feature:
            ext = store.extent(name)
            entry["extent"] = None if ext is None else [round(v, 2) for v in ext]
            entry["extent_wgs84"] = None if ext is None else _wgs84_extent(ext, store.epsg)
        layers[name] = entry
    plots = store.read("plots")
    by_status = plots.groupby("status")["area_ha"].agg(["count", "sum"])
    counts, sums = by_status["count"].to_dict(), by_status["sum"].to_dict()
    area = {
        s: {
            "plots": int(counts.get(s, 0)),
            "area_ha": round(float(sums.get(s, 0.0)), 2),
        }
        for s in PLOT_STATUSES
    }
    return {"crs": f"EPSG:{store.epsg}", "layers": layers, "plots_by_status": area}


def _wgs84_extent(ext: tuple[float, float, float, float], epsg: int) -> list[float]:
    tr = transformer(epsg, WGS84_EPSG)
    minx, miny, maxx, maxy = tr.transform_bounds(*ext)
    return [round(minx, 6), round(miny, 6), round(maxx, 6), round(maxy, 6)]


def cmd_info(args: argparse.Namespace) -> int:
    store = open_db(args)
    try:
        report = describe(store)
    finally:
        store.close()
    db = store.describe()
    if args.json:
        print(json.dumps({"store": db, **report}, ensure_ascii=False, indent=2))
        return 0
    print(f"store {db} ({report['crs']})")
    for name, entry in report["layers"].items():
        ext = entry.get("extent_wgs84")
        where = f"  lon {ext[0]:.4f}..{ext[2]:.4f}, lat {ext[1]:.4f}..{ext[3]:.4f}" if ext else ""
        print(f"  {name:<14} {entry['count']:>6}  {entry['label']}{where}")
    print("plots by status:")
    for status, entry in report["plots_by_status"].items():
        print(f"  {status:<10} {entry['plots']:>4} plots {entry['area_ha']:>9.2f} ha")
    return 0


def cmd_overview(args: argparse.Namespace) -> int:
    """Build the plot overview of a store (stores made by ``init`` have one already)."""
    store = open_db(args)
    started = time.perf_counter()
    try:
        blocks = store.build_overview()
    finally:
        store.close()
    print(
        f"plot overview of {store.describe()}: {blocks} block(s) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0
