"""bench_map_render: time to a drawn zone map in Chromium, the tile map (``/``) beside the same
zone drawn the way folium draws it by default (every feature's GeoJSON and popup embedded in
the page, as ``/`` was before tiles), at ``--n`` plots each.

For each store (built by benchmarks/synth.py through ``zoneplan import`` when missing): the
page is rendered to HTML (embedded map: folium in this process, timed), then loaded in a
fresh Chromium page (Playwright, Debian's /usr/bin/chromium) until the map is drawn: the
tile map when its tile grid has no tile loading left (first view, tiles cut cold; then again,
tiles from the server's cache), the embedded map at the ``load`` event (its features are
added by inline scripts before it; its server-side render is timed apart). Not part of the
test suite:

    .venv/bin/python benchmarks/bench_map_render.py --n 10000 50000 --workdir DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tiles import built, embedded_map_bytes, serve, stop  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
TILES_DRAWN = "() => window.zpMapTiles && !window.zpMapTiles.grid._loading"


def load_tile_map(browser: Any, url: str) -> dict[str, float]:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    t = time.perf_counter()
    page.goto(url, wait_until="load", timeout=600_000)
    loaded = time.perf_counter() - t
    page.wait_for_function(TILES_DRAWN, timeout=600_000)
    drawn = time.perf_counter() - t
    page.close()
    return {"load_s": round(loaded, 2), "drawn_s": round(drawn, 2)}


def load_embedded(browser: Any, path: Path) -> dict[str, float]:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    t = time.perf_counter()
    page.goto(path.as_uri(), wait_until="load", timeout=1_800_000)
    drawn = time.perf_counter() - t
    page.close()
    return {"load_s": round(drawn, 2), "drawn_s": round(drawn, 2)}


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000], help="plots per store")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out" / "api")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for n in args.n:
            db = built(str(args.workdir / f"plots_{n}.gpkg"), n, report, f"build_{n}")
            row: dict[str, Any] = {}
            proc, port = serve(db)
            try:
                # first view (tiles cut cold), then a new page (tiles from the server's cache)
                row["tile_map"] = load_tile_map(browser, f"http://127.0.0.1:{port}/")
                row["tile_map_again"] = load_tile_map(browser, f"http://127.0.0.1:{port}/")
            finally:
                stop(proc)
            t = time.perf_counter()
            html = embedded_map_bytes(db, keep=True)
            row["embedded_render_s"] = round(time.perf_counter() - t, 1)
            with tempfile.NamedTemporaryFile("wb", suffix=".html", delete=False) as f:
                f.write(html)
            row["embedded_html_bytes"] = len(html)
            del html
            try:
                row["embedded_map"] = load_embedded(browser, Path(f.name))
            finally:
                os.unlink(f.name)
            row["drawn_ratio"] = round(
                row["embedded_map"]["drawn_s"] / row["tile_map"]["drawn_s"], 1
            )
            row["load_average"] = round(os.getloadavg()[0], 1)
            print(f"  {n}: {json.dumps(row)}", file=sys.stderr)
            report[str(n)] = row
        browser.close()
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
