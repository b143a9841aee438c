"""Subdivision methods: strips and oriented-bounding-box splits, the clean-up both end with,
and the quality measures every run reports (see :mod:`planner.subdivision`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import shapely

from planner.streets import frontage, rights_of_way

if TYPE_CHECKING:
    from planner.subdivision import SubdivisionParams

__all__ = ["Progress", "quality"]

Progress = Callable[[float, str], None]
_SLICE_M = 2.0
_MAX_LEVELS = 40


def _geoms(frame: gpd.GeoDataFrame | None) -> np.ndarray:
    return (
        np.zeros(0, dtype=object)
        if frame is None
        else np.asarray(frame.geometry.values, dtype=object)
    )


def _report(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(min(1.0, max(0.0, fraction)), message)


# --------------------------------------------------------------------------- pieces
def _polygons(geoms: np.ndarray, min_m2: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Polygon parts of ``geoms`` above ``min_m2`` and the index of the geometry each came from."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > min_m2)
    return parts[keep], index[keep]


def _strip_pieces(
    net: Any,
    local_x: np.ndarray,
    targets: Callable[[np.ndarray], np.ndarray],
    params: SubdivisionParams,
    progress: Progress | None,
) -> np.ndarray:
    """Bands beside each local street, each cut across the street into equal-area plots."""
    minx, miny, maxx, maxy = net.bounds
    mids = (local_x[1:] + local_x[:-1]) / 2
    lefts = np.concatenate([[minx - 1], mids])
    rights = np.concatenate([mids, [maxx + 1]])
    boxes = np.concatenate(
        [
            shapely.box(lefts, miny - 1, local_x, maxy + 1),
            shapely.box(local_x, miny - 1, rights, maxy + 1),
        ]
    )
    parts, _ = _polygons(shapely.intersection(boxes, net))
    _report(progress, 0.45, f"cutting {len(parts)} strips into plots")
    bounds = shapely.bounds(parts)
    width, height = bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]
    area = shapely.area(parts) / 10_000.0
    n = np.maximum(1, np.round(area / targets(parts)))
    n_low = np.ceil(area / params.max_ha)
    n_high = np.minimum.reduce(
        [
            np.floor(area / params.min_ha),
            np.floor(height / params.frontage_m),
            np.floor(height * params.max_depth_ratio / np.maximum(width, 1e-9)),
        ]
    )
    n = np.where(n_low <= n_high, np.clip(n, n_low, n_high), np.maximum(n_high, 1)).astype(int)
    cuts = _equal_area_cuts(parts, bounds, n)
    owner = np.repeat(np.arange(len(parts)), n)
    lower = np.concatenate([c[:-1] for c in cuts])
    upper = np.concatenate([c[1:] for c in cuts])
    slabs = shapely.box(bounds[owner, 0] - 1, lower, bounds[owner, 2] + 1, upper)
    pieces, _ = _polygons(shapely.intersection(parts[owner], slabs))
    return pieces


def _equal_area_cuts(parts: np.ndarray, bounds: np.ndarray, n: np.ndarray) -> list[np.ndarray]:
    """For each part, the ``n + 1`` y positions that cut it into ``n`` equal areas."""
    counts = np.maximum(1, np.ceil((bounds[:, 3] - bounds[:, 1]) / _SLICE_M)).astype(int)
    owner = np.repeat(np.arange(len(parts)), counts)
    step = (bounds[:, 3] - bounds[:, 1]) / counts
    k = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    y0 = bounds[owner, 1] + k * step[owner]
    slabs = shapely.box(bounds[owner, 0] - 1, y0, bounds[owner, 2] + 1, y0 + step[owner])
    areas = shapely.area(shapely.intersection(parts[owner], slabs))
    cuts, start = [], 0
    for i, count in enumerate(counts):
        cumulative = np.concatenate([[0.0], np.cumsum(areas[start : start + count])])
        edges = bounds[i, 1] + np.arange(count + 1) * step[i]
        quantiles = np.linspace(0.0, cumulative[-1], n[i] + 1)
        ys = np.interp(quantiles, cumulative, edges)
        ys[0], ys[-1] = bounds[i, 1] - 1, bounds[i, 3] + 1
        cuts.append(ys)
        start += count
    return cuts


def _halfplanes(anchor: np.ndarray, along: np.ndarray, far: float) -> tuple[np.ndarray, np.ndarray]:
    """The two half-planes (as large boxes) either side of the line through ``anchor`` across
    unit vector ``along``."""
    across = np.column_stack([-along[:, 1], along[:, 0]])
    a1, a2 = anchor + across * far, anchor - across * far
    behind, ahead = -along * far, along * far
    low = shapely.polygons(np.stack([a1, a2, a2 + behind, a1 + behind, a1], axis=1))
    high = shapely.polygons(np.stack([a1, a2, a2 + ahead, a1 + ahead, a1], axis=1))
    return np.asarray(low, dtype=object), np.asarray(high, dtype=object)


def _obb_axes(polys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centre, unit vector along the long side, long length and short length of each
    polygon's oriented bounding box."""
    ring = shapely.get_coordinates(shapely.oriented_envelope(polys)).reshape(len(polys), -1, 2)[
        :, :4
    ]
    e1, e2 = ring[:, 1] - ring[:, 0], ring[:, 2] - ring[:, 1]
    l1, l2 = np.hypot(e1[:, 0], e1[:, 1]), np.hypot(e2[:, 0], e2[:, 1])
    long_first = l1 >= l2
    long_vec = np.where(long_first[:, None], e1, e2)
    long_len, short_len = np.maximum(l1, l2), np.minimum(l1, l2)
    centre = ring.mean(axis=1)
    return centre, long_vec / np.maximum(long_len, 1e-9)[:, None], long_len, short_len


def _obb_pieces(
    net: Any,
    streets: gpd.GeoDataFrame,
    targets: Callable[[np.ndarray], np.ndarray],
    params: SubdivisionParams,
    progress: Progress | None,
) -> np.ndarray:
    """Blocks split across the longer side of their bounding box while a split keeps
    every part fronting a street."""
    done: list[np.ndarray] = []
    todo, _ = _polygons(np.array([net], dtype=object))
    far = 10.0 * max(net.bounds[2] - net.bounds[0], net.bounds[3] - net.bounds[1], 1.0)
    for level in range(_MAX_LEVELS):
        if not len(todo):
            break
        _report(
            progress, 0.3 + 0.5 * level / 14, f"splitting {len(todo)} blocks (level {level + 1})"
        )
        area = shapely.area(todo) / 10_000.0
        target = targets(todo)
        wants = (area > params.max_ha) | ((area > 1.5 * target) & (area >= 2 * params.min_ha))
        done.append(todo[~wants])
        todo = todo[wants]
        if not len(todo):
            break
        n = np.maximum(2, np.round(area[wants] / target[wants]))
        share = np.floor(n / 2) / n
        centre, along, long_len, short_len = _obb_axes(todo)
        across = np.column_stack([-along[:, 1], along[:, 0]])
        accepted = np.zeros(len(todo), dtype=bool)
        result_low = np.empty(len(todo), dtype=object)
        result_high = np.empty(len(todo), dtype=object)
        for axis, length in ((along, long_len), (across, short_len)):
            pending = ~accepted
            if not pending.any():
                break
            idx = np.flatnonzero(pending)
            anchor = centre[idx] + axis[idx] * ((share[idx] - 0.5) * length[idx])[:, None]
            low, high = _halfplanes(anchor, axis[idx], far)
            low, high = shapely.intersection(todo[idx], low), shapely.intersection(todo[idx], high)
            ok = _parts_front(low, streets, params, targets) & _parts_front(
                high, streets, params, targets
            )
            accepted[idx[ok]] = True
            result_low[idx[ok]], result_high[idx[ok]] = low[ok], high[ok]
        done.append(todo[~accepted])
        todo, _ = _polygons(np.concatenate([result_low[accepted], result_high[accepted]]))
    done.append(todo)
    return np.concatenate(done)


def _parts_front(
    geoms: np.ndarray,
    streets: gpd.GeoDataFrame,
    params: SubdivisionParams,
    targets: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Whether every polygon part of each geometry fronts a street along the minimum
    frontage, has the minimum area, and, once plot-sized, is no deeper than allowed."""
    parts, index = _polygons(geoms)
    length, _ = frontage(parts, streets)
    area = shapely.area(parts)
    plot_sized = area <= 1.5 * targets(parts) * 10_000.0
    deep = area / np.maximum(length, 1e-9) ** 2 > params.max_depth_ratio
    good = (
        (length >= params.frontage_m)
        & (area >= params.min_ha * 10_000.0 * 0.999)
        & ~(plot_sized & deep)
    )
    bad = np.zeros(len(geoms), dtype=bool)
    np.logical_or.at(bad, index[~good], True)
    has_part = np.zeros(len(geoms), dtype=bool)
    has_part[index] = True
    return has_part & ~bad


# --------------------------------------------------------------------------- clean-up
def _merge_misfits(
    pieces: np.ndarray, streets: gpd.GeoDataFrame, params: SubdivisionParams
) -> np.ndarray:
    """Merge pieces without frontage or below the minimum area into the neighbour they share
    most boundary with, while the merged plot stays within the maximum area."""
    pieces = pieces.copy()
    length, _ = frontage(pieces, streets)
    area = shapely.area(pieces)
    fits = (length >= params.frontage_m) & (area >= params.min_ha * 10_000.0)
    if fits.all():
        return pieces
    tree = shapely.STRtree(pieces)
    a, b = tree.query(pieces, predicate="intersects")
    pairs = a != b
    a, b = a[pairs], b[pairs]
    shared = shapely.length(
        shapely.intersection(shapely.boundary(pieces[a]), shapely.boundary(pieces[b]))
    )
    neighbours: dict[int, dict[int, float]] = {}
    for i, j, s in zip(a, b, shared):
        if s > 1.0:
            neighbours.setdefault(int(i), {})[int(j)] = float(s)
    alive = np.ones(len(pieces), dtype=bool)
    limit = params.max_ha * 10_000.0
    # Smallest first: slivers find room in a neighbour before larger misfits fill it.
    for i in np.flatnonzero(~fits)[np.argsort(area[~fits])]:
        options = [
            (j, s)
            for j, s in neighbours.get(int(i), {}).items()
            if alive[j] and area[i] + area[j] <= limit
        ]
        if not options:
            continue
        # Prefer neighbours that front a street, then the longest shared boundary.
        j = max(options, key=lambda js: (length[js[0]] >= params.frontage_m, js[1]))[0]
        merged = shapely.union(pieces[j], pieces[i])
        if shapely.get_type_id(merged) != 3:
            continue
        pieces[j], area[j], alive[i] = merged, area[i] + area[j], False
        length[j] = max(length[j], length[i])
        for k, s in neighbours.pop(int(i), {}).items():
            if k != j:
                neighbours.setdefault(j, {})[k] = neighbours.get(j, {}).get(k, 0.0) + s
                neighbours.setdefault(k, {})[j] = neighbours[j][k]
    return pieces[alive]


def _large_lots(net: Any, share: float) -> Callable[[np.ndarray], np.ndarray]:
    """Which land gets large lots: the strips or blocks nearest the area's west end until
    ``share`` of the net land is covered (a predictable, contiguous heavy-industry quarter)."""
    minx, _, maxx, _ = net.bounds
    threshold = minx + share * (maxx - minx)
    return lambda geoms: shapely.get_coordinates(shapely.centroid(geoms))[:, 0] < threshold


def _targets(params: SubdivisionParams, net: Any) -> Callable[[np.ndarray], np.ndarray]:
    large = _large_lots(net, params.large_share)
    return lambda geoms: np.where(large(geoms), params.large_target, params.target)


def _shape_metrics(plots: gpd.GeoDataFrame) -> None:
    """Add circular compactness and elongation (momepy) to ``plots``."""
    # momepy pulls in libpysal and scikit-learn (seconds to import): only when measuring.
    import momepy

    plots["compact"] = np.round(momepy.circular_compactness(plots.geometry).to_numpy(), 3)
    plots["elongation"] = np.round(momepy.elongation(plots.geometry).to_numpy(), 3)


def quality(
    area: Any,
    developable: Any,
    plots: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame,
    remnants: np.ndarray,
    params: SubdivisionParams,
) -> dict[str, Any]:
    """The quality measures every run reports.

    Returns
    -------
    dict
        ``plots``, ``area_ha``, ``net_developable_ha`` (area less kept plots, protection zones
        and setbacks), ``plotted_ha``, ``utilisation`` (plotted / net developable),
        ``frontage_share`` (plots fronting a street along the minimum frontage),
        ``target_ha``, ``deviation_mean`` and ``deviation_worst`` (|area − target| / target),
        ``out_of_range``, ``large_lots``, ``compactness_mean`` (momepy circular compactness),
        ``elongation_mean``, ``depth_ratio_max`` and ``too_deep`` (plots deeper than
        ``max_depth_ratio`` × frontage, with depth taken as area / frontage), ``street_land_ha`` (land in the new
        streets' rights of way inside the area), ``new_street_km``, ``remnants``,
        ``remnant_ha``.
    """
    new = streets[~streets["existing"].astype(bool)]
    target = plots["target_ha"].to_numpy(dtype=float)
    deviation = np.abs(plots["area_ha"].to_numpy(dtype=float) - target) / target
    fronting = (plots["frontage_m"] >= params.frontage_m).mean() if len(plots) else 0.0
    return {
        "method": params.method,
        "plots": int(len(plots)),
        "area_ha": round(area.area / 10_000.0, 2),
        "net_developable_ha": round(developable.area / 10_000.0, 2),
        "plotted_ha": round(float(plots["area_ha"].sum()), 2),
        "utilisation": round(float(plots["area_ha"].sum()) * 10_000.0 / developable.area, 4),
        "frontage_share": round(float(fronting), 4),
        "target_ha": round(params.target, 3),
        "deviation_mean": round(float(deviation.mean()), 4) if len(plots) else None,
        "deviation_worst": round(float(deviation.max()), 4) if len(plots) else None,
        "out_of_range": int((~plots["in_range"]).sum()),
        "large_lots": int(plots["large"].sum()),
        "compactness_mean": round(float(plots["compact"].mean()), 3),
        "elongation_mean": round(float(plots["elongation"].mean()), 3),
        "depth_ratio_max": round(float(plots["depth_ratio"].max()), 2),
        "too_deep": int((plots["depth_ratio"] > params.max_depth_ratio).sum()),
        "street_land_ha": round(shapely.intersection(rights_of_way(new), area).area / 10_000.0, 2),
        "new_street_km": round(float(shapely.length(_geoms(new)).sum()) / 1000.0, 3),
        "remnants": int(len(remnants)),
        "remnant_ha": round(float(remnants.sum()) / 10_000.0, 2),
    }
