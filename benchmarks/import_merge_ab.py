"""The GeoPackage import's overview merge forked or in place, the same code otherwise.

One ``zoneplan import plots`` of the synthetic N plots into a fresh store (``init`` + the
bench expansion area), run in this process so its own CPU and its merge process's are told
apart: wall, this process's CPU, the children's CPU (the ``init`` and expansion imports,
~2.3 s, plus the merge process when forked), minor page faults, load average before. ``place``
replaces :func:`geo.store.overview_worker.forked_merges` by a null context. Run the modes in
turns; not part of CI.

    .venv/bin/python benchmarks/import_merge_ab.py fork 1000000 /tmp/ab.gpkg --data /work/bench/synth
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZONEPLAN = ROOT / ".venv" / "bin" / "zoneplan"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["fork", "place"])
    parser.add_argument("n", type=int, help="plots (synthetic_plots_N.gpkg)")
    parser.add_argument("db", help="GeoPackage store to (re)make")
    parser.add_argument("--data", type=Path, default=Path("/work/bench/synth"))
    args = parser.parse_args()
    for step in (
        ["init", "--force"],
        ["import", "expansion", str(args.data / f"synthetic_expansion_{args.n}.gpkg")],
    ):
        subprocess.run([str(ZONEPLAN), *step, "--db", args.db], check=True, capture_output=True)
    from geo.store import overview_worker

    if args.mode == "place":  # before the command module imports it by name
        overview_worker.forked_merges = lambda *a, **k: contextlib.nullcontext()  # type: ignore[assignment]
    from zoneplan.cli import main as cli

    load = os.getloadavg()[0]
    started = time.perf_counter()
    plots = args.data / f"synthetic_plots_{args.n}.gpkg"
    code = cli(["import", "plots", str(plots), "--db", args.db])
    wall = time.perf_counter() - started
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"{args.mode:6s} n={args.n} wall {wall:5.1f} s  parent cpu "
        f"{me.ru_utime + me.ru_stime:5.1f} s (sys {me.ru_stime:4.1f})  minor faults "
        f"{me.ru_minflt}  children cpu {kids.ru_utime + kids.ru_stime:4.1f} s (sys {kids.ru_stime:4.1f}, "
        f"minor faults {kids.ru_minflt})  load {load:.1f}",
        file=sys.stderr,
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
