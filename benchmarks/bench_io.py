"""bench_io: shapefile export of a synthetic store against geopandas' default writer (pyogrio),
with and without ``use_arrow=True``, each export in its own process (time and peak RSS).

What a user would write instead of ``zoneplan export plots --format shp``: read the layer
from the store's GeoPackage with geopandas and write it with ``to_file`` (pyogrio, the
default engine since geopandas 1.0; ``use_arrow=True`` on both sides for the fastest path),
then zip the five files at the same deflate level. Also timed without the zip (``.shp``
files only) on both sides. The store is built by benchmarks/synth.py through
``zoneplan import`` when missing (the data is synthetic). Not part of CI.

    .venv/bin/python benchmarks/bench_io.py --n 1000000 --db benchmarks/out/synth/plots_1000000.gpkg
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from synth import build as build_store  # noqa: E402

KINDS = ("ours", "ours_nozip", "pyogrio", "pyogrio_nozip", "pyogrio_arrow", "pyogrio_arrow_nozip")
ZIP_LEVEL = 6  # export_layers' default and zipfile's (zlib's) default


def _peak_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _zip(folder: Path, out: Path) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as zf:
        for part in sorted(folder.glob("plots.*")):
            zf.write(part, part.name)


def child(kind: str, db: str, out: Path) -> dict[str, Any]:
    """One export in this (child) process."""
    t0 = time.perf_counter()
    if kind.startswith("ours"):
        from geo import io as gio
        from geo.store import open_store

        target = out / ("plots.shp" if kind.endswith("nozip") else "plots.zip")
        gio.export_layers(open_store(db), "plots", "shp", target, zip_level=ZIP_LEVEL)
    else:
        import geopandas as gpd

        arrow = "arrow" in kind
        frame = gpd.read_file(db, layer="plots", use_arrow=arrow)
        frame = frame.drop(columns=["fid", "version"], errors="ignore")
        shp = out / "shp"
        shp.mkdir()
        frame.to_file(shp / "plots.shp", encoding="utf-8", use_arrow=arrow)
        if not kind.endswith("nozip"):
            _zip(shp, out / "plots.zip")
    total = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {
        "total_s": round(total, 2),
        "peak_rss_mib": round(_peak_mib()),
        "output_mib": round(size / 2**20, 1),
    }


def run_child(kind: str, db: str, work: Path) -> dict[str, Any]:
    out = work / kind
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--db", db, "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="plots in the store")
    parser.add_argument("--db", help="a GeoPackage store (built by synth when missing)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp folder")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.db, args.out)))
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="zoneplan-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = args.db or str(work / f"plots_{args.n}.gpkg")
    report: dict[str, Any] = {"n": args.n, "load_average_before": os.getloadavg()}
    if not Path(db).exists():
        report["build"] = build_store(db, args.n, ROOT / "benchmarks" / "out" / "synth")
    report["export"] = {}
    for kind in KINDS:
        report["export"][kind] = run_child(kind, db, work)
        print(kind, json.dumps(report["export"][kind]), file=sys.stderr)
    e = {k: v["total_s"] for k, v in report["export"].items()}
    report["ours_vs"] = {
        "pyogrio_zip": round(e["pyogrio"] / e["ours"], 2),
        "pyogrio_arrow_zip": round(e["pyogrio_arrow"] / e["ours"], 2),
        "pyogrio_nozip": round(e["pyogrio_nozip"] / e["ours_nozip"], 2),
        "pyogrio_arrow_nozip": round(e["pyogrio_arrow_nozip"] / e["ours_nozip"], 2),
    }
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
