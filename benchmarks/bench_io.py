"""bench_io: ``zoneplan import`` (the command itself, every check) on both backends, and
shapefile export of a synthetic store against geopandas' default writer (pyogrio), with and
without ``use_arrow=True``, each export in its own process (time and peak RSS).

Import (``--import-only`` or by default before the exports): a store made by ``zoneplan init``
+ the bench expansion area, then ``zoneplan import plots synthetic_plots_N.gpkg`` timed as a
child process: wall time, its CPU time (user + system), and for PostGIS the CPU time of the
server backends it opened (sampled from /proc by application name). Rows per second are
reported against each. ``--baseline DIR`` runs the same imports with the code of another
checkout (a worktree of main: ``git worktree add --detach DIR main``, then
``ln -s $PWD/.venv DIR/.venv``), ours and the baseline's in turns (``--rounds``), and
prints ours/baseline ratios per round (several ``--baseline`` checkouts may be given).

    .venv/bin/python benchmarks/bench_io.py --n 200000 --import-only --pg postgresql://postgres@127.0.0.1:5432/zp_bench --baseline /tmp/main --rounds 2

What a user would write instead of ``zoneplan export plots --format shp``: read the layer
from the store's GeoPackage with geopandas and write it with ``to_file`` (pyogrio, the
default engine since geopandas 1.0; ``use_arrow=True`` on both sides for the fastest path),
then zip the five files with zipfile. Like for like: the same columns, CRS, ``.prj`` and
``.cpg`` on both sides (checked after each run), and the zips at the same deflate level:
ours at its default (level 1, what ``zoneplan export`` writes) against the baseline zipped
at level 1, and both at zipfile's default level 6; and without the zip (plain files) on
both sides. ``--reps`` repeats the kinds round-robin and reports the median (the machine
is shared; CPU seconds of each child are given beside wall seconds). The store is built by
benchmarks/synth.py through ``zoneplan import`` when missing (the data is synthetic). Not
part of CI.

    .venv/bin/python benchmarks/bench_io.py --n 1000000 --skip-import --db STORE.gpkg --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from synth import build as build_store  # noqa: E402

KINDS = (
    "ours",
    "ours_level6",
    "ours_nozip",
    "pyogrio_level6",
    "pyogrio_nozip",
    "pyogrio_arrow",
    "pyogrio_arrow_level6",
    "pyogrio_arrow_nozip",
    "before",
    "before_nozip",
)
ZIP_LEVEL = 6  # zipfile's (zlib's) default: what a user's own zip step uses unless told
ZONEPLAN = ROOT / ".venv" / "bin" / "zoneplan"
APP_NAME = "zoneplan-bench-import"


def _peak_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _zip(folder: Path, out: Path, level: int) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for part in sorted(folder.glob("plots.*")):
            zf.write(part, part.name)


def _level(kind: str) -> int:
    from geo import archive

    return ZIP_LEVEL if kind.endswith("level6") else archive.DEFAULT_ZIP_LEVEL


def child(kind: str, db: str, out: Path) -> dict[str, Any]:
    """One export in this (child) process."""
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    if kind.startswith("ours"):
        from geo import io as gio
        from geo.store import open_store

        target = out / ("plots.shp" if kind.endswith("nozip") else "plots.zip")
        # "ours": what `zoneplan export plots -f shp` does (its default deflate level)
        gio.export_layers(open_store(db), "plots", "shp", target, zip_level=_level(kind))
    else:
        import geopandas as gpd

        arrow = "arrow" in kind
        frame = gpd.read_file(db, layer="plots", use_arrow=arrow)
        frame = frame.drop(columns=["fid", "version"], errors="ignore")
        shp = out / "shp"
        shp.mkdir()
        frame.to_file(shp / "plots.shp", encoding="utf-8", use_arrow=arrow)
        if not kind.endswith("nozip"):
            _zip(shp, out / "plots.zip", _level(kind))
    total = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {
        "total_s": round(total, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mib": round(_peak_mib()),
        "output_mib": round(size / 2**20, 1),
        **_what_was_written(out),
    }


def _what_was_written(out: Path) -> dict[str, Any]:
    """Fields, CRS, feature count and members of the export, as GDAL reads them: both
    sides must agree (like for like)."""
    import pyogrio

    zipped = next(out.glob("plots.zip"), None)
    path = f"/vsizip/{zipped}/plots.shp" if zipped else str(next(out.rglob("plots.shp")))
    info = pyogrio.read_info(path)
    if zipped:
        with zipfile.ZipFile(zipped) as zf:
            members = sorted(zf.namelist())
    else:
        members = sorted(p.name for p in next(out.rglob("plots.shp")).parent.iterdir())
    return {
        "fields": list(info["fields"]),
        "crs": info["crs"],
        "features": info["features"],
        "encoding": info["encoding"],
        "members": members,
    }


def run_child(kind: str, db: str, work: Path, before: Path | None = None) -> dict[str, Any]:
    """One export in a fresh process; ``before_*`` kinds run ``ours_*`` from the checkout
    ``before`` (the code before a change, timed in the same round-robin)."""
    out = work / kind
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    script, name = Path(__file__), kind
    if kind.startswith("before"):
        assert before is not None, "--before CHECKOUT times the before_* kinds"
        script, name = before / "benchmarks" / "bench_io.py", kind.replace("before", "ours")
    proc = subprocess.run(
        [sys.executable, str(script), "--child", name, "--db", db, "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    shutil.rmtree(out, ignore_errors=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load_average"] = [round(v, 2) for v in os.getloadavg()]
    return result


def run_exports(
    db: str, work: Path, reps: int, kinds: list[str], before: Path | None = None
) -> dict[str, Any]:
    """Every kind ``reps`` times round-robin (each in a fresh process); the median run of
    each, and the ratios baseline / ours of like-for-like pairs."""
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for _ in range(reps):
        for kind in kinds:
            runs[kind].append(run_child(kind, db, work, before))
            print(kind, json.dumps(runs[kind][-1]), file=sys.stderr)
    median = {k: sorted(v, key=lambda r: r["total_s"])[len(v) // 2] for k, v in runs.items()}
    what = {k: (r["fields"], r["crs"], r["features"], r["encoding"]) for k, r in median.items()}
    if len(set(map(json.dumps, what.values()))) != 1:
        raise SystemExit(f"the exports differ in fields, CRS, rows or encoding: {what}")
    out: dict[str, Any] = {
        "runs": {k: [(r["total_s"], r["cpu_s"]) for r in v] for k, v in runs.items()},
        "median": {k: {f: r[f] for f in r if f != "fields"} for k, r in median.items()},
    }
    e = {k: v["total_s"] for k, v in median.items()}
    pairs = {
        "pyogrio_arrow_zip_same_level": ("pyogrio_arrow", "ours"),
        "pyogrio_arrow_zip_level6": ("pyogrio_arrow_level6", "ours_level6"),
        "pyogrio_arrow_nozip": ("pyogrio_arrow_nozip", "ours_nozip"),
        "pyogrio_zip_level6": ("pyogrio_level6", "ours_level6"),
        "pyogrio_nozip": ("pyogrio_nozip", "ours_nozip"),
        "before_zip": ("before", "ours"),
        "before_nozip": ("before_nozip", "ours_nozip"),
    }
    # CPU seconds (median of each kind): steadier than wall time on a shared machine
    c = {k: sorted(r["cpu_s"] for r in v)[len(v) // 2] for k, v in runs.items()}
    for label, t in (("ours_vs", e), ("ours_vs_cpu", c)):
        out[label] = {
            name: round(t[base] / t[ours], 2)
            for name, (base, ours) in pairs.items()
            if base in t and ours in t
        }
    return out


def _backend_cpu(url: str, stop: threading.Event, seen: dict[int, float]) -> None:
    """CPU seconds of the server backends named APP_NAME, sampled until ``stop``."""
    import psycopg

    tick = os.sysconf("SC_CLK_TCK")
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            pids = [
                r[0]
                for r in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (APP_NAME,)
                )
            ]
            for pid in pids:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                seen[pid] = max(seen.get(pid, 0.0), (int(fields[11]) + int(fields[12])) / tick)
            stop.wait(0.2)


def cli_import(db: str, n: int, folder: Path, code: Path | None = None) -> dict[str, Any]:
    """A fresh store at ``db`` (init + the bench expansion area), then ``zoneplan import
    plots`` of ``n`` synthetic plots as a child process: wall, client CPU, server CPU.

    ``code``: another checkout of zoneplan (e.g. a worktree of main) whose code the timed
    command runs instead of this one's (put first on ``PYTHONPATH``; same virtualenv).
    """
    from synth import Grid, write_files, zoneplan

    plots_file, exp_file = write_files(Grid.of(n), folder)
    zoneplan("init", "--force", db=db)
    zoneplan("import", "expansion", str(exp_file), db=db)
    stop, seen = threading.Event(), {}
    sampler = None
    if db.startswith("postgresql"):
        sampler = threading.Thread(target=_backend_cpu, args=(db, stop, seen), daemon=True)
        sampler.start()
    load = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    env = {**os.environ, "PGAPPNAME": APP_NAME}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    proc = subprocess.run(
        [str(ZONEPLAN), "import", "plots", str(plots_file), "--db", db],
        cwd=code or ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stop.set()
    if sampler is not None:
        sampler.join()
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out: dict[str, Any] = {
        "rows": n,
        "wall_s": round(wall, 1),
        "client_cpu_s": round(cpu, 2),
        "rows_per_s_wall": round(n / wall),
        "rows_per_client_cpu_s": round(n / cpu),
        "load_average_before": load,
        "load_average_after": os.getloadavg(),
    }
    if sampler is not None:
        server = sum(seen.values())
        out["server_cpu_s"] = round(server, 2)
        out["rows_per_cpu_s_client_and_server"] = round(n / (cpu + server))
    return out


def run_imports(args: argparse.Namespace, work: Path, synth_dir: Path) -> dict[str, Any]:
    """The CLI imports on each backend, each baseline checkout's (``--baseline``) and ours
    taking turns ``--rounds`` times, with ours/baseline ratios of each round."""
    targets = {"gpkg": str(work / "import.gpkg")} | ({"postgis": args.pg} if args.pg else {})
    codes: dict[str, Path | None] = {"ours": None}
    codes |= {f"baseline {path.name}": path for path in args.baseline or []}
    out: dict[str, Any] = {}
    for backend, db in targets.items():
        runs: dict[str, list[dict[str, Any]]] = {who: [] for who in codes}
        for _ in range(args.rounds):
            for who, code in codes.items():
                runs[who].append(cli_import(db, args.n, synth_dir, code))
                print(f"import {backend} {who}", json.dumps(runs[who][-1]), file=sys.stderr)
        out[backend] = dict(runs)
        for who in list(codes)[1:]:
            out[backend][f"ours_vs_{who}"] = [
                {
                    key: round(ours[key] / base[key], 2)
                    for key in ("rows_per_s_wall", "rows_per_client_cpu_s")
                }
                for ours, base in zip(runs["ours"], runs[who])
            ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="plots in the store")
    parser.add_argument("--db", help="a GeoPackage store (built by synth when missing)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp folder")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--data", type=Path, default=ROOT / "benchmarks" / "out" / "synth", help="input files"
    )
    parser.add_argument("--pg", help="also import into this PostGIS database (emptied)")
    parser.add_argument("--import-only", action="store_true", help="skip the exports")
    parser.add_argument("--skip-import", action="store_true", help="skip the imports")
    parser.add_argument("--reps", type=int, default=1, help="export runs per kind (median)")
    parser.add_argument(
        "--kinds", nargs="+", default=list(KINDS[:-2]), choices=KINDS, help="exports to time"
    )
    parser.add_argument(
        "--before", type=Path, help="a checkout of the code before a change (before_* kinds)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        nargs="+",
        help="checkouts of zoneplan (e.g. a worktree of main) to import with too, in turns",
    )
    parser.add_argument("--rounds", type=int, default=1, help="imports per backend and code")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.db, args.out)))
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="zoneplan-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = args.db or str(work / f"plots_{args.n}.gpkg")
    report: dict[str, Any] = {"n": args.n, "load_average_before": os.getloadavg()}
    synth_dir = args.data
    if not args.skip_import:
        report["import"] = run_imports(args, work, synth_dir)
    if args.import_only:
        print(json.dumps(report, indent=2))
        return 0
    if not Path(db).exists():
        report["build"] = build_store(db, args.n, synth_dir)
    report["export"] = run_exports(db, work, args.reps, args.kinds, args.before)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
