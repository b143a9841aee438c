"""bench_overview: cold plots tiles z12..z16 with the plot overview against the same store without it.

In one process, tile by tile in turn (so both see the same machine load): the store's own
tile cut (``Store.vector_tile``, what the server runs on a tile-cache miss) on ``--db``,
whose overview is built, and on ``--baseline``, a copy of the same plots without one (every
plot cut one by one: main's path). Each tile is cut once per store, or ``--rounds`` times in
turns (every cut cold: the server's tile cache plays no part here; the database's page cache
warms for both alike). Prints ms per cut (p50, mean), bytes and features per zoom, the
ratio, and the load averages.

With ``--build`` it first times writes to ``--db`` (five plots: the status changed and back,
then moved 30 m and back; median ms), builds its overview (``Store.build_overview``, what
``zoneplan overview`` runs; timed), and times the same writes again, now re-merging cells.
``--db`` is written to: use a copy.

With ``--baseline-code DIR`` (a checkout of main, its venv beside it) ``--baseline`` is cut
by that code in a worker process, tile by tile in turn with ``--db`` cut by this checkout:
the ratio of this branch to main on the same machine load.

Not part of the test suite:

    .venv/bin/python benchmarks/bench_overview.py --n 1000000 --db COPY --baseline STORE --tiles 20 [--build] [--baseline-code /work/main] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import shapely  # noqa: E402
import shapely.affinity  # noqa: E402
import shapely.geometry  # noqa: E402
from bench_tiles import tile_range  # noqa: E402
from synth import Grid  # noqa: E402

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer  # noqa: E402
from geo.store import open_store  # noqa: E402
from geo.tiles import Tile  # noqa: E402

BOX_M = 12_000.0  # room for --tiles distinct tiles per zoom, away from the sample zone
PROPERTIES = ("status", "area_ha")


def content(data: bytes, *, exact: bool = False) -> list[tuple[Any, ...]]:
    """A tile's plots features, comparable: id, sorted properties, geometry, in id order.

    The geometry is normalised (the same shape whatever vertex its rings start from and
    their stored order) unless ``exact``: a cut may start a ring elsewhere and draw the same.
    """
    import mapbox_vector_tile

    found = mapbox_vector_tile.decode(data).get("plots", {}).get("features", []) if data else []
    return sorted(
        (
            f["id"],
            sorted(f["properties"].items()),
            json.dumps(f["geometry"])
            if exact
            else shapely.normalize(shapely.geometry.shape(f["geometry"])).wkt,
        )
        for f in found
    )


def features(data: bytes) -> int:
    import mapbox_vector_tile

    if not data:
        return 0
    return len(mapbox_vector_tile.decode(data).get("plots", {}).get("features", []))


#: The worker of --baseline-code: cuts the tiles named on stdin, answers ms and bytes.
WORKER = """
import sys, time
from geo.store import open_store
from geo.tiles import Tile
store = open_store(sys.argv[1])
for line in sys.stdin:
    z, x, y = map(int, line.split())
    t = time.perf_counter()
    data = store.vector_tile("plots", Tile(z, x, y), properties=("status", "area_ha"))
    print((time.perf_counter() - t) * 1000, data.hex(), flush=True)
"""


class OtherCode:
    """A store opened by another checkout's code in a worker process (``vector_tile`` only)."""

    def __init__(self, code: str, db: str):
        self.proc = subprocess.Popen(
            [str(Path(code) / ".venv" / "bin" / "python"), "-c", WORKER, db],
            cwd=code,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def cut(self, tile: Tile) -> tuple[float, bytes]:
        """Milliseconds the worker took to cut ``tile``, and the tile."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{tile.z} {tile.x} {tile.y}\n")
        self.proc.stdin.flush()
        ms, data = self.proc.stdout.readline().split(" ")
        return float(ms), bytes.fromhex(data.strip())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def cut(store: Any, tile: Tile) -> tuple[float, bytes]:
    """Milliseconds ``store`` takes to cut ``tile`` (as a server's cache miss), and the tile."""
    if isinstance(store, OtherCode):
        return store.cut(tile)
    t = time.perf_counter()
    data = store.vector_tile("plots", tile, properties=PROPERTIES)
    return (time.perf_counter() - t) * 1000, data


def writes(store: Any, keys: list[str]) -> dict[str, float]:
    """Median ms of a status change (and back) and a 30 m move (and back) of ``keys``."""
    out: dict[str, list[float]] = {"status": [], "move": []}
    for key in keys:
        row = store.get("plots", key)
        for status in ("reserved" if row["status"] != "reserved" else "available", row["status"]):
            t = time.perf_counter()
            store.update("plots", key, {"status": status})
            out["status"].append((time.perf_counter() - t) * 1000)
        geom = row["geometry"]
        for moved in (shapely.affinity.translate(geom, 30.0, 0.0), geom):
            t = time.perf_counter()
            store.update("plots", key, {"geometry": moved})
            out["move"].append((time.perf_counter() - t) * 1000)
    return {k: round(statistics.median(v), 1) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="synthetic plots in the stores")
    parser.add_argument("--db", required=True, help="the store with its overview built")
    parser.add_argument("--baseline", required=True, help="the same plots, no overview")
    parser.add_argument("--tiles", type=int, default=20, help="tiles per zoom")
    parser.add_argument("--baseline-code", help="cut --baseline with this checkout's code")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="cut each tile this many times (in turns; none is cached: each is a tile-cache "
        "miss) to steady p50 on a loaded machine",
    )
    parser.add_argument(
        "--build", action="store_true", help="time writes, build --db's overview, time again"
    )
    args = parser.parse_args(argv)
    x0, y0, x1, y1 = Grid.of(args.n).bounds
    cx, cy = x0 + (x1 - x0) * 0.75, y0 + (y1 - y0) * 0.75  # bench_tiles' box centre
    box = transformer(WORKING_EPSG, WGS84_EPSG).transform_bounds(
        cx - BOX_M / 2, cy - BOX_M / 2, cx + BOX_M / 2, cy + BOX_M / 2
    )
    baseline = (
        OtherCode(args.baseline_code, args.baseline)
        if args.baseline_code
        else open_store(args.baseline)
    )
    stores = {"overview": open_store(args.db), "baseline": baseline}
    report: dict = {"n": args.n, "load_average_before": os.getloadavg(), "zooms": {}}
    if args.build:
        keys = [f"S-{500_000 + i:07d}" for i in range(5)]
        report["write_ms_without_overview"] = writes(stores["overview"], keys)
        t = time.perf_counter()
        report["blocks"] = stores["overview"].build_overview()
        report["build_s"] = round(time.perf_counter() - t, 1)
        report["write_ms_with_overview"] = writes(stores["overview"], keys)
        report["load_average_after_build"] = os.getloadavg()
        print(f"  build: {json.dumps(report)}", file=sys.stderr, flush=True)
    for z in range(12, 17):
        tiles = tile_range(z, box, args.tiles)
        ms: dict[str, list[float]] = {k: [] for k in stores}
        size: dict[str, list[int]] = {k: [] for k in stores}
        count: dict[str, list[int]] = {k: [] for k in stores}
        differing = differing_exact = 0
        for i, (tz, tx, ty) in enumerate(tiles):
            cuts: dict[str, bytes] = {}
            for turn in range(args.rounds):
                flip = (i + turn) % 2
                for name in list(reversed(stores)) if flip else list(stores):
                    took, data = cut(stores[name], Tile(tz, tx, ty))
                    ms[name].append(took)
                    if turn == 0:
                        size[name].append(len(data))
                        count[name].append(features(data))
                        cuts[name] = data
            differing += content(cuts["overview"]) != content(cuts["baseline"])
            differing_exact += content(cuts["overview"], exact=True) != content(
                cuts["baseline"], exact=True
            )
        row = {
            name: {
                "p50_ms": round(statistics.median(ms[name]), 1),
                "mean_ms": round(statistics.fmean(ms[name]), 1),
                "bytes_median": int(statistics.median(size[name])),
                "features_median": int(statistics.median(count[name])),
            }
            for name in stores
        }
        row["tiles"] = len(tiles)
        row["cuts_per_tile"] = args.rounds
        row["tiles_differing"] = differing  # in what they draw
        row["tiles_differing_exact"] = differing_exact  # vertex for vertex
        row["speedup_p50"] = round(row["baseline"]["p50_ms"] / row["overview"]["p50_ms"], 1)
        report["zooms"][z] = row
        print(f"  z{z}: {json.dumps(row)}", file=sys.stderr, flush=True)
    report["load_average_after"] = os.getloadavg()
    for store in stores.values():
        store.close()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
