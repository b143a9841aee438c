"""A small map of one plot and its surroundings as inline SVG, for printed sheets: crisp at
any print size, no tiles or script to wait for, and only what the reader's role may see."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from geo.store import Store
from planner.visibility import PlotView, readable_layers

#: Context layers drawn under and around the plot, bottom to top, each with its CSS class.
CONTEXT: tuple[tuple[str, str], ...] = (
    ("prot_zones", "zp-svg-prot"),
    ("roads", "zp-svg-road"),
    ("rail_lines", "zp-svg-rail"),
    ("water_mains", "zp-svg-water"),
    ("power_lines", "zp-svg-power"),
)
POINTS: tuple[tuple[str, str], ...] = (
    ("substations", "zp-svg-substation"),
    ("rail_stations", "zp-svg-station"),
    ("gates", "zp-svg-gate"),
)
#: Asset statuses drawn as "cannot serve" (dashed red), as on the zone map.
BROKEN = frozenset({"closed", "restricted", "under_repair", "not_commissioned"})
NICE_LENGTHS = (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000)


@dataclass
class SvgMap:
    """What the template draws: a viewBox in metres (y flipped), shapes, points and a
    scale bar; strokes keep their screen width (``vector-effect``, in CSS)."""

    view_box: str
    shapes: list[dict[str, str]] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)
    scale_m: int = 100
    scale_x: float = 0.0
    scale_y: float = 0.0
    label: dict[str, Any] | None = None


def _ring_path(coords: np.ndarray) -> str:
    return "M" + " L".join(f"{x:.1f} {-y:.1f}" for x, y in coords) + " Z"


def _line_path(coords: np.ndarray) -> str:
    return "M" + " L".join(f"{x:.1f} {-y:.1f}" for x, y in coords)


def path(geometry: Any) -> str:
    """SVG path data of a (multi)polygon or (multi)line in metres, y negated."""
    out = []
    for part in shapely.get_parts(geometry):
        if part.geom_type == "Polygon":
            rings = [part.exterior, *part.interiors]
            out += [_ring_path(np.asarray(r.coords)) for r in rings]
        elif part.geom_type == "LineString":
            out.append(_line_path(np.asarray(part.coords)))
    return " ".join(out)


def _frame(
    bounds: Iterable[float], margin_m: float, aspect: float
) -> tuple[float, float, float, float]:
    """The plot's bounds grown by ``margin_m`` and widened to ``aspect`` (width / height)."""
    minx, miny, maxx, maxy = bounds
    minx, miny, maxx, maxy = minx - margin_m, miny - margin_m, maxx + margin_m, maxy + margin_m
    w, h = maxx - minx, maxy - miny
    if w / h < aspect:
        grow = (h * aspect - w) / 2
        minx, maxx = minx - grow, maxx + grow
    else:
        grow = (w / aspect - h) / 2
        miny, maxy = miny - grow, maxy + grow
    return minx, miny, maxx, maxy


def _status_class(base: str, status: Any) -> str:
    return f"{base} zp-svg-broken" if status in BROKEN else base


def plot_map(
    store: Store,
    plot_geometry: Any,
    plot_id: str,
    view: PlotView,
    *,
    margin_m: float = 160.0,
    aspect: float = 1.6,
) -> SvgMap:
    """The plot (highlighted), the plots ``view`` may see around it, and the context layers
    the role may read, clipped to a frame ``margin_m`` around the plot."""
    box = _frame(shapely.bounds(plot_geometry), margin_m, aspect)
    minx, miny, maxx, maxy = box
    out = SvgMap(view_box=f"{minx:.1f} {-maxy:.1f} {maxx - minx:.1f} {maxy - miny:.1f}")
    readable = set(readable_layers(view.role))
    plots = view.visible(store.read("plots", bbox=box))
    clipped = shapely.clip_by_rect(np.asarray(plots.geometry.values), *box)
    for pid, status, geom in zip(plots["plot_id"], plots["status"], clipped):
        if str(pid) != str(plot_id) and not shapely.is_empty(geom):
            out.shapes.append({"cls": f"zp-svg-plot zp-svg-{status}", "d": path(geom)})
    for layer, cls in CONTEXT:
        if layer not in readable:
            continue
        frame = store.read(layer, bbox=box)
        geoms = shapely.clip_by_rect(np.asarray(frame.geometry.values), *box)
        statuses = frame["status"] if "status" in frame else [None] * len(frame)
        for status, geom in zip(statuses, geoms):
            if not shapely.is_empty(geom):
                out.shapes.append({"cls": _status_class(cls, status), "d": path(geom)})
    out.shapes.append({"cls": "zp-svg-own", "d": path(plot_geometry)})
    for layer, cls in POINTS:
        if layer not in readable:
            continue
        frame = store.read(layer, bbox=box)
        frame = frame[~shapely.is_missing(frame.geometry.values) & ~frame.geometry.is_empty]
        xy = shapely.get_coordinates(frame.geometry.values)  # one row per point, in order
        for (x, y), ident, status in zip(xy, frame["asset_id"], frame["status"]):
            out.points.append(
                {
                    "cls": _status_class(cls, status),
                    "x": round(x, 1),
                    "y": round(-y, 1),
                    "id": ident,
                }
            )
    centre = shapely.point_on_surface(plot_geometry)
    out.label = {"x": round(centre.x, 1), "y": round(-centre.y, 1), "text": plot_id}
    width = maxx - minx
    out.scale_m = max((n for n in NICE_LENGTHS if n <= width / 4), default=NICE_LENGTHS[0])
    out.scale_x = round(minx + width * 0.04, 1)
    out.scale_y = round(-miny - (maxy - miny) * 0.05, 1)
    return out


def font_size(svg: SvgMap) -> float:
    """A label size in metres that prints at about 9 pt on a 17 cm wide map."""
    width = float(svg.view_box.split()[2])
    return round(max(width / 60, 1.0), 1) if math.isfinite(width) else 10.0
