"""Benchmark planner.subdivision: a 500 ha area into ~1 ha plots, every method against a clipped fishnet."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo.crs import WORKING_EPSG  # noqa: E402
from planner.streets import frontage  # noqa: E402
from planner.subdivision import METHODS, Site, SubdivisionParams, subdivide  # noqa: E402

X0, Y0 = 660_000.0, 4_780_000.0


def make_site(hectares: float) -> Site:
    """An irregular hexagon of ``hectares``, turned 17°, crossed by a power line, holding a
    protection zone, with a gate on its north edge."""
    outline = np.array(
        [(0, 0), (2900, -150), (3200, 1300), (2400, 2000), (600, 2100), (-200, 1100)]
    )
    area = shapely.Polygon(outline)
    area = shapely.affinity.scale(area, *(2 * [math.sqrt(hectares * 1e4 / area.area)]))
    area = shapely.affinity.translate(shapely.affinity.rotate(area, 17, origin="centroid"), X0, Y0)
    minx, miny, maxx, maxy = area.bounds
    line = shapely.LineString(
        [(minx - 100, miny + 0.35 * (maxy - miny)), (maxx + 100, miny + 0.6 * (maxy - miny))]
    )
    zone = shapely.buffer(shapely.Point((minx + maxx) / 2 + 400, (miny + maxy) / 2 - 300), 60)
    top = shapely.get_point(
        shapely.shortest_line(shapely.Point((minx + maxx) / 2, maxy + 500), area), 1
    )

    def layer(geoms):
        return gpd.GeoDataFrame(
            {"asset_id": [f"X-{i}" for i in range(len(geoms))]}, geometry=geoms, crs=WORKING_EPSG
        )

    return Site(
        area,
        "BENCH",
        {"power_lines": layer([line]), "prot_zones": layer([zone]), "gates": layer([top])},
    )


def fishnet(
    site: Site, params: SubdivisionParams, streets: gpd.GeoDataFrame, net_ha: float
) -> dict:
    """What a planner does by hand in a desktop GIS: a square grid of target-size cells clipped
    to the land outside the same streets and setbacks (QGIS "Create grid" + "Clip")."""
    started = time.perf_counter()
    side = math.sqrt(params.target * 1e4)
    minx, miny, maxx, maxy = site.area.bounds
    xs, ys = np.meshgrid(np.arange(minx, maxx, side), np.arange(miny, maxy, side))
    cells = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + side, ys.ravel() + side)
    row = shapely.union_all(
        shapely.buffer(
            np.asarray(streets.geometry.values), streets["row_m"].to_numpy() / 2, cap_style="flat"
        )
    )
    blocked = shapely.union_all(
        [
            row,
            *[shapely.buffer(g, 15.0) for g in site.layers["power_lines"].geometry],
            *[shapely.buffer(g, 5.0) for g in site.layers["prot_zones"].geometry],
        ]
    )
    land = shapely.difference(site.area, blocked)
    pieces = shapely.intersection(cells, land)
    pieces = pieces[shapely.area(pieces) > params.min_ha * 1e4 * 0.5]
    length, _ = frontage(pieces, streets)
    area = shapely.area(pieces) / 1e4
    return {
        "method": "fishnet",
        "plots": int(len(pieces)),
        "utilisation": round(float(area.sum()) / net_ha, 4),
        "frontage_share": round(float((length >= params.frontage_m).mean()), 4),
        "out_of_range": int(((area < params.min_ha) | (area > params.max_ha)).sum()),
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hectares", type=float, default=500.0)
    parser.add_argument("--target-ha", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per method (best is kept)")
    args = parser.parse_args()
    site = make_site(args.hectares)
    import momepy  # noqa: F401 - imported once up front so no run pays the import

    rows = {}
    for method in METHODS:
        params = SubdivisionParams(min_ha=0.5, max_ha=2.0, target_ha=args.target_ha, method=method)
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = subdivide(site, params)
            times.append(time.perf_counter() - started)
        rows[method] = {
            **result.metrics,
            "elapsed_s": round(min(times), 3),
            "elapsed_all_s": [round(t, 2) for t in times],
        }
    rows["fishnet"] = fishnet(site, params, result.streets, result.metrics["net_developable_ha"])
    print(f"{args.hectares:g} ha, target {args.target_ha:g} ha (0.5-2 ha), best of {args.repeat}")
    keys = (
        "plots",
        "utilisation",
        "frontage_share",
        "deviation_mean",
        "deviation_worst",
        "out_of_range",
        "compactness_mean",
        "elongation_mean",
        "depth_ratio_max",
        "too_deep",
        "street_land_ha",
        "new_street_km",
        "remnants",
        "elapsed_s",
    )
    print(f"{'':20}" + "".join(f"{m:>12}" for m in rows))
    for key in keys:
        print(f"{key:20}" + "".join(f"{str(rows[m].get(key, '-')):>12}" for m in rows))
    for method in METHODS:
        m = rows[method]
        print(
            f"{method}: {m['elapsed_s']:.2f} s (target <= 10 s); utilisation "
            f"{m['utilisation']:.1%} (target >= 80%), frontage {m['frontage_share']:.0%} "
            f"vs fishnet {rows['fishnet']['frontage_share']:.0%} "
            f"({m['frontage_share'] / max(rows['fishnet']['frontage_share'], 1e-9):.1f}x)"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
