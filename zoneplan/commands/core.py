"""``zoneplan init`` and ``zoneplan info``: build the store and describe it."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from geo.crs import WGS84_EPSG, WORKING_EPSG, to_working, transformer
from geo.io import read_file
from geo.layers import LAYERS, PLOT_STATUSES
from geo.store import Store, create_store, default_db, open_store

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "shapefiles"
SAMPLE_APPLICATIONS = SAMPLE_DIR.parent / "applications.csv"


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """The ``--db`` option every store command shares."""
    parser.add_argument("--db", default=None,
                        help=f"store path (default: $ZONEPLAN_DB or {default_db()})")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="build the store from the sample shapefiles")
    add_db_option(p)
    p.add_argument("--force", action="store_true", help="replace an existing store")
    p.add_argument("--source", type=Path, default=SAMPLE_DIR,
                   help="folder of <layer>.shp files (default: the sample zone)")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("info", help="layers, feature counts, extents, plot area by status")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)


def load_folder(store: Store, folder: Path) -> dict[str, int]:
    """Load every ``<layer>.shp`` (and table ``.dbf``) of ``folder`` in one transaction."""
    counts: dict[str, int] = {}
    with store.transaction("init") as tx:
        for name, layer in LAYERS.items():
            path = folder / f"{name}.{'shp' if layer.is_feature else 'dbf'}"
            if not path.exists():
                continue
            frame = read_file(path)
            if layer.is_feature:
                frame = to_working(frame)
            counts[name] = len(tx.insert(name, frame))
        if SAMPLE_APPLICATIONS.exists() and folder == SAMPLE_DIR:
            apps = pd.read_csv(SAMPLE_APPLICATIONS, dtype=str, keep_default_na=False)
            counts["applications"] = len(tx.insert("applications", apps))
    return counts


def cmd_init(args: argparse.Namespace) -> int:
    db = args.db or default_db()
    if not args.source.is_dir():
        raise FileNotFoundError(f"no folder {args.source}")
    store = create_store(db, force=args.force)
    counts = load_folder(store, args.source)
    try:
        from zoneplan.accounts import create_default_users
    except ImportError:
        create_default_users = None
    if create_default_users is not None:
        create_default_users(store)
    total = sum(counts.values())
    print(f"built {db}: {total} features and rows in {len(counts)} layers "
          f"from {args.source} (synthetic sample modelled on the seed facts)")
    return 0


def describe(store: Store) -> dict[str, Any]:
    """Layers with counts and extents, and plot area (ha) by status."""
    layers = {}
    for name, layer in LAYERS.items():
        entry: dict[str, Any] = {"label": layer.label, "count": store.count(name),
                                 "geometry": layer.geometry}
        if layer.is_feature:
            ext = store.extent(name)
            entry["extent"] = None if ext is None else [round(v, 2) for v in ext]
            entry["extent_wgs84"] = None if ext is None else _wgs84_extent(ext)
        layers[name] = entry
    plots = store.read("plots")
    by_status = plots.groupby("status")["area_ha"].agg(["count", "sum"])
    area = {s: {"plots": int(by_status.loc[s, "count"]) if s in by_status.index else 0,
                "area_ha": round(float(by_status.loc[s, "sum"]), 2) if s in by_status.index else 0.0}
            for s in PLOT_STATUSES}
    return {"crs": f"EPSG:{WORKING_EPSG}", "layers": layers, "plots_by_status": area}


def _wgs84_extent(ext: tuple[float, float, float, float]) -> list[float]:
    tr = transformer(WORKING_EPSG, WGS84_EPSG)
    minx, miny, maxx, maxy = tr.transform_bounds(*ext)
    return [round(minx, 6), round(miny, 6), round(maxx, 6), round(maxy, 6)]


def cmd_info(args: argparse.Namespace) -> int:
    db = args.db or default_db()
    report = describe(open_store(db))
    if args.json:
        print(json.dumps({"store": str(db), **report}, ensure_ascii=False, indent=2))
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
