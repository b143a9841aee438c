"""Deterministic generator of a synthetic Almaty Industrial Zone (sample shapefiles).

The zone is built in a local metric frame (u east-ish, v north-ish) on a jittered
street lattice, then rotated and moved into UTM 43N around the zone's real
location (43.33 N, 76.85 E). Every random draw comes from one seeded numpy
generator, so the files are the same on every run. The generator is the
scripts/sample package (frame, plots, attributes, assets, tables, build); this is
its command line.

Usage::

    .venv/bin/python scripts/make_sample.py [--out data/shapefiles]
                                            [--applications data/applications.csv]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.sample.build import build_sample, write_sample  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        default=str(ROOT / "data" / "shapefiles"),
        help="output directory for the shapefiles (default data/shapefiles)",
    )
    parser.add_argument(
        "--applications",
        default=str(ROOT / "data" / "applications.csv"),
        help="where to write the applications CSV",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sample = build_sample()
    written = write_sample(sample, Path(args.out), Path(args.applications))
    print(f"wrote {len(written)} files to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
