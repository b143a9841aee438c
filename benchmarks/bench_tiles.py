"""bench_tiles: vector tiles, map page weight and the first answer after a write, over loopback.

One run over a store of the sample zone's infrastructure plus ``--n`` synthetic plots
(bench_api's grid), served by ``zoneplan serve`` (waitress, 8 threads):

- tiles z12..z16 of the plots layer and of the zone map's composite tile (every layer in one
  request) over a box of the grid, one client: ms per tile cold (first cut), warm (from the
  tile cache) and revalidated (304), beside the baseline a map would use instead: the same
  box as bbox-paged GeoJSON from ``/api/layers/plots`` (ms and bytes);
- the HTML of ``/`` (tile map) beside the same zone drawn the way folium draws it by default,
  every feature embedded as GeoJSON with its popup (what the map page was before tiles),
  rendered in the same run at ``--page-n`` plots;
- ``/api/plots`` (bbox + a servicing filter) warm median, then the first request after an
  investor files an application, after a planner edits one plot, and after an asset
  status change.

Not part of the test suite:

    .venv/bin/python benchmarks/bench_tiles.py --n 1000000 --db STORE --page-n 10000 50000

Stores are built by benchmarks/synth.py through ``zoneplan import`` when missing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import folium

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import start  # noqa: E402
from synth import Grid  # noqa: E402
from synth import build as build_store  # noqa: E402

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer  # noqa: E402
from geo.layers import LAYERS  # noqa: E402
from geo.store import open_store  # noqa: E402
from web.labels import popup_html  # noqa: E402
from web.maps import LAYER_STYLES  # noqa: E402

BOX_M = 3000.0
API_QUERY = "min_power=0&limit=50"


def tile_range(
    z: int, box: tuple[float, float, float, float], most: int
) -> list[tuple[int, int, int]]:
    """Up to ``most`` XYZ tiles of zoom ``z`` over a WGS84 box, row by row from the centre."""
    w, s, e, n = box

    def xy(lon: float, lat: float) -> tuple[int, int]:
        k = 1 << z
        return (
            int((lon + 180) / 360 * k),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * k),
        )

    x0, y0 = xy(w, n)
    x1, y1 = xy(e, s)
    tiles = [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    tiles.sort(key=lambda t: (t[1] - cx) ** 2 + (t[2] - cy) ** 2)
    return tiles[:most]


def lonlat_box(z: int, x: int, y: int) -> str:
    k = 1 << z
    lat = lambda yy: math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * yy / k))))  # noqa: E731
    return f"{x / k * 360 - 180:.6f},{lat(y + 1):.6f},{(x + 1) / k * 360 - 180:.6f},{lat(y):.6f}"


def timed(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str] | None = None
) -> tuple[float, int, bytes, Any]:
    """Seconds, status, body and (case-insensitive) headers of one GET."""
    t = time.perf_counter()
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    return time.perf_counter() - t, r.status, body, r.headers


def stats(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {
        "p50_ms": round(ms[len(ms) // 2], 1),
        "p90_ms": round(ms[int(len(ms) * 0.9)], 1),
        "mean_ms": round(statistics.fmean(ms), 1),
        "tiles_per_s": round(1000 / statistics.fmean(ms), 1),
    }


def bench_tiles(port: int, box: tuple[float, float, float, float], most: int) -> dict[str, Any]:
    """Cold, warm and revalidated tiles per zoom; the bbox GeoJSON of each tile's box beside."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    composite = ",".join(s.name for s in LAYER_STYLES)
    out: dict[str, Any] = {}
    for z in range(12, 17):
        tiles = tile_range(z, box, most)
        row: dict[str, Any] = {"tiles": len(tiles)}
        for name, layer in (("plots", "plots"), ("map", composite)):
            cold, warm, again, sizes = [], [], [], []
            for t in tiles:
                path = f"/tiles/{layer}/{t[0]}/{t[1]}/{t[2]}.mvt"
                dt, status, body, headers = timed(conn, path)
                assert status == 200, (path, status)
                cold.append(dt * 1000)
                sizes.append(len(body))
                dt, status, body, _ = timed(conn, path)
                warm.append(dt * 1000)
                dt, status, _, _ = timed(conn, path, {"If-None-Match": headers["ETag"]})
                assert status == 304, (path, status)
                again.append(dt * 1000)
            row[name] = {
                "cold": stats(cold),
                "warm": stats(warm),
                "revalidated": stats(again),
                "bytes_median": int(statistics.median(sizes)),
            }
        geojson, gj_bytes, gj_features = [], [], []
        for t in tiles:
            dt, status, body, _ = timed(
                conn, f"/api/layers/plots?limit=10000&bbox={lonlat_box(*t)}"
            )
            assert status == 200, status
            geojson.append(dt * 1000)
            gj_bytes.append(len(body))
            gj_features.append(json.loads(body)["numberReturned"])
        row["baseline_bbox_geojson"] = {
            **stats(geojson),
            "bytes_median": int(statistics.median(gj_bytes)),
            "features_median": statistics.median(gj_features),
        }
        row["warm_speedup_vs_geojson"] = round(
            row["baseline_bbox_geojson"]["p50_ms"] / row["plots"]["warm"]["p50_ms"], 1
        )
        print(f"  z{z}: {json.dumps(row)}", file=sys.stderr)
        out[f"z{z}"] = row
    conn.close()
    return out


#: folium's default head assets -> the app's vendored copies (a page opened from a file
#: then needs no network); the two CSS files with no vendored copy are left out.
LOCAL_ASSETS = {
    "leaflet": "leaflet/leaflet.js",
    "jquery": "jquery/jquery.min.js",
    "bootstrap": "bootstrap/bootstrap.bundle.min.js",
    "awesome_markers": "awesome-markers/leaflet.awesome-markers.js",
    "leaflet_css": "leaflet/leaflet.css",
    "bootstrap_css": "bootstrap/bootstrap.min.css",
    "awesome_markers_font_css": "fontawesome/css/all.min.css",
    "awesome_markers_css": "awesome-markers/leaflet.awesome-markers.css",
}


def embedded_map_bytes(db: str, keep: bool = False) -> Any:
    """The zone drawn as folium does by default: every feature's GeoJSON and popup in the page
    (as the map page was built before tiles), rendered to HTML: its size, or with ``keep``
    the HTML itself (bytes), its head pointing at the vendored assets as file URIs."""
    store = open_store(db)
    m = folium.Map(location=[43.33, 76.87], zoom_start=14, tiles=None)
    if keep:
        from web.vendor import VENDOR_DIR

        for attr in ("default_js", "default_css"):
            setattr(
                m,
                attr,
                [
                    (name, (VENDOR_DIR / LOCAL_ASSETS[name]).as_uri())
                    for name, _ in getattr(m, attr)
                    if name in LOCAL_ASSETS
                ],
            )
    for spec in LAYER_STYLES:
        frame = store.read(spec.name)
        if not len(frame):
            continue
        names = [c for c in frame.columns if c != "geometry"]
        popups = [
            popup_html(spec.name, dict(zip(names, row)), str)
            for row in frame[names].itertuples(index=False, name=None)
        ]
        wgs = frame.to_crs(WGS84_EPSG)
        wgs = wgs.assign(popup=popups)[["popup", "geometry"]]
        folium.GeoJson(
            wgs,
            name=LAYERS[spec.name].label,
            popup=folium.GeoJsonPopup(fields=["popup"], labels=False),
        ).add_to(m)
    html = m.get_root().render().encode("utf-8")
    return html if keep else len(html)


def page_bytes(port: int) -> dict[str, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    _, status, body, _ = timed(conn, "/")
    _, _, gz, headers = timed(conn, "/", {"Accept-Encoding": "gzip"})
    conn.close()
    assert status == 200
    return {"html": len(body), "gzip": len(gz), "encoding": headers.get("Content-Encoding") or ""}


def bench_writes(port: int, db: str, box: tuple[float, float, float, float]) -> dict[str, Any]:
    """Warm ``/api/plots`` median, then the first request after each kind of write."""
    from usecases import accounts

    store = open_store(db)
    for name in ("investor", "planner"):
        if accounts.get_user(store, f"bench-{name}") is None:
            accounts.create_user(store, f"bench-{name}", name, "bench-password-1")
    investor, planner = (
        {
            "Authorization": f"Bearer {accounts.issue_token(store, name)}",
            "Content-Type": "application/json",
        }
        for name in ("bench-investor", "bench-planner")
    )
    w, s, e, n = box
    cx, cy = (w + e) / 2, (s + n) / 2
    query = f"/api/plots?bbox={cx - 0.003:.6f},{cy - 0.003:.6f},{cx + 0.003:.6f},{cy + 0.003:.6f}&{API_QUERY}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def get() -> float:
        dt, status, body, _ = timed(conn, query)
        assert status == 200, (status, body[:200])
        return dt * 1000

    def send(method: str, path: str, body: dict, headers: dict) -> None:
        conn.request(method, path, body=json.dumps(body), headers=headers)
        r = conn.getresponse()
        text = r.read()
        assert r.status < 300, (path, r.status, text[:300])

    first_ever = get()
    warm = statistics.median(get() for _ in range(20))
    out = {
        "query": query,
        "first_request_ms": round(first_ever, 1),
        "warm_median_ms": round(warm, 1),
    }
    send(
        "POST",
        "/api/applications",
        {"project": "bench", "sector": "food", "min_ha": 0, "max_ha": 1},
        investor,
    )
    out["after_application_ms"] = round(get(), 1)
    plot = store.read("plots", where={"status": "available"}, limit=1).iloc[0]
    send(
        "PATCH",
        f"/api/plots/{plot['plot_id']}",
        {"version": int(plot["version"]), "cadastre": f"bench-{time.time():.0f}"},
        planner,
    )
    out["after_plot_edit_ms"] = round(get(), 1)
    sub = store.read("substations", limit=1).iloc[0]
    status = "operational" if sub["status"] != "operational" else "under_repair"
    send(
        "PATCH",
        f"/api/assets/substations/{sub['asset_id']}",
        {"version": int(sub["version"]), "status": status},
        planner,
    )
    out["after_asset_status_ms"] = round(get(), 1)
    for key in ("after_application_ms", "after_plot_edit_ms", "after_asset_status_ms"):
        out[key.replace("_ms", "_vs_warm")] = round(out[key] / warm, 1)
    conn.close()
    return out


def serve(db: str) -> tuple[Any, int]:
    proc, port = start("indexed", db)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    for _ in range(600):  # the socket opens before the app is ready
        try:
            timed(conn, "/api/layers")
            break
        except (ConnectionError, http.client.HTTPException):
            conn.close()
            time.sleep(0.5)
    # Let the start-up build of the servicing model finish (the catalogue waits for it),
    # so the tiles below are timed on a server that does nothing else.
    t = time.perf_counter()
    timed(conn, "/api/plots?limit=1")
    print(f"  servicing warm-up done {time.perf_counter() - t:.1f} s after ready", file=sys.stderr)
    conn.close()
    return proc, port


def stop(proc: Any) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except Exception:
        proc.kill()


def built(db: str, n: int, report: dict[str, Any], key: str) -> str:
    """``db`` as it is, or built by synth.build (``zoneplan import``) when missing."""
    from geo.store import store_exists

    if not store_exists(db):
        report[key] = build_store(db, n, ROOT / "benchmarks" / "out" / "synth")
        print(json.dumps(report[key]), file=sys.stderr)
    return db


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="synthetic plots for the tiles")
    parser.add_argument("--db", help="the --n store (GeoPackage path or PostGIS URL)")
    parser.add_argument(
        "--page-n", type=int, nargs="*", default=[10_000], help="plots for the page sizes"
    )
    parser.add_argument("--tiles", type=int, default=30, help="tiles per zoom")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out" / "api")
    parser.add_argument("--skip-writes", action="store_true", help="no first-after-write runs")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "n": args.n,
        "page_n": args.page_n,
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
    }
    x0, y0, x1, y1 = Grid.of(args.n).bounds
    cx, cy = x0 + (x1 - x0) * 0.75, y0 + (y1 - y0) * 0.75  # off the sample zone in the middle
    box = transformer(WORKING_EPSG, WGS84_EPSG).transform_bounds(
        cx - BOX_M / 2, cy - BOX_M / 2, cx + BOX_M / 2, cy + BOX_M / 2
    )
    report["page"] = {}
    for page_n in args.page_n:
        small = built(str(args.workdir / f"plots_{page_n}.gpkg"), page_n, report, f"build_{page_n}")
        proc, port = serve(small)
        try:
            page = {"tile_map": page_bytes(port)}
        finally:
            stop(proc)
        page["embedded_geojson_map_html"] = embedded_map_bytes(small)
        page["ratio"] = round(page["embedded_geojson_map_html"] / page["tile_map"]["html"], 1)
        report["page"][page_n] = page
        print(json.dumps(page), file=sys.stderr)

    big = built(args.db or str(args.workdir / f"plots_{args.n}.gpkg"), args.n, report, "build")
    proc, port = serve(big)
    try:
        report["tiles"] = bench_tiles(port, box, args.tiles)
        if not args.skip_writes:
            report["writes"] = bench_writes(port, big, box)
    finally:
        stop(proc)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
