"""Subdivision of expansion land into streets and plots that each front a street.

Two methods work on the same input and are compared by the same quality metrics:

``strip``
    Blocks and strips along streets: land on each side of a local street, up to half-way to
    the next one, is cut across the street into plots of equal area (Vanegas et al. 2012
    cut strips along the straight skeleton; on a generated grid the strips are the bands
    between street and mid-line, so no skeleton is needed).
``obb``
    Recursive oriented-bounding-box split (Vanegas et al. 2012): every block is split
    across the longer side of its oriented bounding box until plots reach the target area;
    a split is refused when a part would lose its frontage, and the other axis is tried.

Both end with the same clean-up: pieces without frontage or below the minimum area are
merged into a neighbour when the result stays within the maximum; what still falls outside
the area range is kept and flagged (``in_range`` False), pieces under half the minimum are
left as open land and counted as remnants.

All geometry is in metres (the working CRS); pure functions, nothing is read or written.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import DEFAULT_EPSG, WGS84_EPSG, transformer
from planner.streets import (
    Frame,
    access_point,
    existing_streets,
    frontage,
    generate_streets,
    rights_of_way,
)
from planner.subdivision_methods import (
    Progress,
    _geoms,
    _merge_misfits,
    _obb_pieces,
    _report,
    _shape_metrics,
    _strip_pieces,
    _targets,
    quality,
)

__all__ = [
    "METHODS",
    "Progress",
    "SITE_LAYERS",
    "STREET_LAYOUTS",
    "MAX_PLOTS",
    "SubdivisionParams",
    "SubdivisionError",
    "Site",
    "Subdivision",
    "check_area",
    "subdivide",
    "compare",
    "quality",
    "params_dict",
]

METHODS: tuple[str, ...] = ("strip", "obb")
STREET_LAYOUTS: tuple[str, ...] = ("generated", "existing")
#: Pieces smaller than this share of the minimum plot area stay open land (remnants).
REMNANT_SHARE = 0.5
_OVERLAP_M2 = 1.0
#: The layers a site holds (cut to the area's surroundings).
SITE_LAYERS = (
    "plots",
    "roads",
    "gates",
    "rail_lines",
    "power_lines",
    "storm_sewers",
    "prot_zones",
)
#: Most plots one run may make (a bound on the work a request can ask for).
MAX_PLOTS = 20_000


class SubdivisionError(ValueError):
    """Input that cannot be subdivided (bad area, contradictory parameters); says why."""


@dataclass(frozen=True)
class SubdivisionParams:
    """What the planner asks for.

    Attributes
    ----------
    min_ha, max_ha : float
        Acceptable plot areas, hectares.
    target_ha : float or None
        Area aimed at; default the geometric mean of the range.
    frontage_m : float
        Shortest street frontage of a plot, metres.
    max_depth_ratio : float
        Largest plot depth divided by its frontage.
    street_spacing_m : float or None
        Distance between local streets; default twice the plot depth that gives the target
        area at depth 1.5 × frontage, plus the right of way.
    row_m, spine_row_m : float
        Right-of-way widths of local streets and of the spine and cross streets.
    block_m : float
        Longest run of a local street before a cross street parallel to the spine.
    setback_rail_m, setback_power_m, setback_storm_m, setback_prot_m : float
        Distance plots keep from rail lines, power lines, storm sewers and protection zones.
    large_share : float
        Share (0–1) of the net land given to large lots for heavy industry.
    large_ha : float or None
        Target area of a large lot; default 80% of ``max_ha``.
    method : str
        ``strip`` or ``obb``.
    streets : str
        ``generated`` (new spine and local streets, existing roads still give frontage) or
        ``existing`` (only existing roads; ``obb`` only).
    keep_existing : bool
        Keep the candidate plots in the area and subdivide around them (default: replace).
    """

    min_ha: float = 0.5
    max_ha: float = 5.0
    target_ha: float | None = None
    frontage_m: float = 40.0
    max_depth_ratio: float = 3.0
    street_spacing_m: float | None = None
    row_m: float = 20.0
    spine_row_m: float = 25.0
    block_m: float = 600.0
    setback_rail_m: float = 20.0
    setback_power_m: float = 15.0
    setback_storm_m: float = 5.0
    setback_prot_m: float = 5.0
    large_share: float = 0.0
    large_ha: float | None = None
    method: str = "strip"
    streets: str = "generated"
    keep_existing: bool = False

    @property
    def target(self) -> float:
        """The target plot area, hectares."""
        return (
            self.target_ha if self.target_ha is not None else math.sqrt(self.min_ha * self.max_ha)
        )

    @property
    def large_target(self) -> float:
        """The target area of a large lot, hectares."""
        return self.large_ha if self.large_ha is not None else 0.8 * self.max_ha

    @property
    def depth_m(self) -> float:
        """Plot depth behind a street (half the block between two local streets)."""
        if self.street_spacing_m is not None:
            return (self.street_spacing_m - self.row_m) / 2
        area = self.target * 10_000.0
        return min(math.sqrt(area * min(1.5, self.max_depth_ratio)), area / self.frontage_m)

    def check(self) -> None:
        """Refuse parameters that are out of range or contradict each other.

        Raises
        ------
        SubdivisionError
            Naming the parameter(s) and why.
        """
        positive = {
            "min_ha": self.min_ha,
            "max_ha": self.max_ha,
            "frontage_m": self.frontage_m,
            "max_depth_ratio": self.max_depth_ratio,
            "row_m": self.row_m,
            "spine_row_m": self.spine_row_m,
            "block_m": self.block_m,
        }
        for name, value in {
            **positive,
            "target_ha": self.target_ha,
            "large_ha": self.large_ha,
            "street_spacing_m": self.street_spacing_m,
        }.items():
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise SubdivisionError(f"{name} must be a positive number (got {value})")
        for name in ("setback_rail_m", "setback_power_m", "setback_storm_m", "setback_prot_m"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise SubdivisionError(f"{name} must be zero or more metres (got {value})")
        if self.method not in METHODS:
            raise SubdivisionError(f"unknown method {self.method!r}; use {' or '.join(METHODS)}")
        if self.streets not in STREET_LAYOUTS:
            raise SubdivisionError(
                f"unknown street layout {self.streets!r}; use {' or '.join(STREET_LAYOUTS)}"
            )
        if self.streets == "existing" and self.method == "strip":
            raise SubdivisionError(
                "the strip method cuts along a generated street grid; use "
                "method obb with existing streets"
            )
        if not 0 <= self.large_share <= 1:
            raise SubdivisionError(f"large_share is a share from 0 to 1 (got {self.large_share})")
        if self.min_ha >= self.max_ha:
            raise SubdivisionError(
                f"the smallest plot ({self.min_ha:g} ha) must be smaller than "
                f"the largest ({self.max_ha:g} ha)"
            )
        for name, value in (("target_ha", self.target_ha), ("large_ha", self.large_ha)):
            if value is not None and not self.min_ha <= value <= self.max_ha:
                raise SubdivisionError(
                    f"{name} {value:g} ha lies outside the plot area range "
                    f"{self.min_ha:g}–{self.max_ha:g} ha"
                )
        if self.street_spacing_m is not None and self.street_spacing_m <= self.row_m:
            raise SubdivisionError(
                f"street spacing {self.street_spacing_m:g} m leaves no land "
                f"between streets {self.row_m:g} m wide"
            )
        depth = self.depth_m
        need = max(self.frontage_m * depth, depth * depth / self.max_depth_ratio) / 10_000.0
        if need > self.max_ha:
            raise SubdivisionError(
                f"plots {depth:.0f} m deep (street spacing {2 * depth + self.row_m:.0f} m) need "
                f"at least {need:.2f} ha to have {self.frontage_m:g} m of frontage and a depth "
                f"of at most {self.max_depth_ratio:g} × frontage, more than the largest plot "
                f"({self.max_ha:g} ha); narrow the street spacing or widen the range"
            )


@dataclass(frozen=True)
class Site:
    """The land to subdivide and what around it matters, all in one CRS (the store's).

    Attributes
    ----------
    area : Polygon
    exp_id : str or None
        The expansion area, when the area is one.
    layers : mapping of layer name to GeoDataFrame
        ``plots``, ``roads``, ``gates``, ``rail_lines``, ``power_lines``, ``storm_sewers``,
        ``prot_zones`` near the area (missing layers count as empty).
    epsg : int
        The CRS of ``area``, the layers and the results (:meth:`from_snapshot`: the store's).
    """

    area: Any
    exp_id: str | None = None
    layers: Mapping[str, gpd.GeoDataFrame] = field(default_factory=dict)
    epsg: int = DEFAULT_EPSG

    @classmethod
    def from_snapshot(
        cls,
        snapshot: Mapping[str, pd.DataFrame],
        area: Any,
        exp_id: str | None = None,
        margin_m: float = 2_000.0,
        *,
        epsg: int,
    ) -> Site:
        """The site of ``area`` from a store snapshot in CRS ``epsg`` (layers cut to the
        area's surroundings).

        Raises
        ------
        SubdivisionError
            For an empty, non-polygon or invalid (self-intersecting) area.
        """
        area = check_area(area, epsg)
        box = shapely.box(*shapely.buffer(area, margin_m).bounds)
        layers: dict[str, gpd.GeoDataFrame] = {}
        for name in SITE_LAYERS:
            frame = snapshot.get(name)
            if isinstance(frame, gpd.GeoDataFrame) and len(frame):  # feature layers: always
                layers[name] = frame[frame.intersects(box)]
        return cls(area, exp_id, layers, epsg)

    def layer(self, name: str) -> gpd.GeoDataFrame | None:
        frame = self.layers.get(name)
        return frame if frame is not None and len(frame) else None


def check_area(area: Any, epsg: int) -> Any:
    """The area (in CRS ``epsg``) as one valid polygon.

    Raises
    ------
    SubdivisionError
        For nothing, a non-polygon, or an outline that crosses itself (with where).
    """
    if (
        area is not None
        and shapely.get_type_id(area) == 6
        and shapely.get_num_geometries(area) == 1
    ):
        area = shapely.get_geometry(area, 0)
    if area is None or shapely.is_empty(area):
        raise SubdivisionError("the area is empty")
    if shapely.get_type_id(area) != 3:
        raise SubdivisionError(f"the area must be one polygon, not a {area.geom_type}")
    if not area.is_valid:
        reason = shapely.is_valid_reason(area)
        where = ""
        if "[" in reason:
            x, y = (float(v) for v in reason.split("[", 1)[1].rstrip("]").split()[:2])
            lon, lat = transformer(epsg, WGS84_EPSG).transform(x, y)
            where = f" near {lat:.5f} N, {lon:.5f} E"
        raise SubdivisionError(
            f"the area's outline is not valid ({reason.split('[')[0].strip()})"
            f"{where}; draw it without crossing lines"
        )
    return area


@dataclass
class Subdivision:
    """A subdivision, ready to preview or commit (working CRS).

    Attributes
    ----------
    plots : GeoDataFrame
        ``area_ha``, ``frontage_m``, ``street_id`` (the street it fronts), ``depth_ratio``,
        ``in_range``, ``large``, ``compact`` (circular compactness), ``elongation``.
    streets : GeoDataFrame
        New streets (``existing`` False) and existing roads giving frontage (True):
        ``street_id``, ``role``, ``row_m``, ``existing``.
    removed : GeoDataFrame
        Candidate plots the subdivision replaces (``plot_id``, ``status``, ``version``).
    kept : list of str
        Plots in the area it subdivides around.
    metrics : dict
        Quality measures (see :func:`quality`).
    warnings : list of str
    params : SubdivisionParams
    """

    plots: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    removed: gpd.GeoDataFrame
    kept: list[str]
    metrics: dict[str, Any]
    warnings: list[str]
    params: SubdivisionParams


def _plots_in(site: Site, keep_existing: bool) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(kept, removed): plots overlapping the area by more than 1 m²; candidates are
    removed unless ``keep_existing``."""
    plots = site.layer("plots")
    if plots is None:
        empty = gpd.GeoDataFrame({"plot_id": [], "status": []}, geometry=[], crs=site.epsg)
        return empty, empty
    inside = plots[shapely.area(shapely.intersection(_geoms(plots), site.area)) > _OVERLAP_M2]
    replaced = (inside["status"] == "candidate").to_numpy() & (not keep_existing)
    return inside[~replaced], inside[replaced]


def _setbacks(site: Site, params: SubdivisionParams) -> Any:
    """Land plots keep clear of: protection zones and buffers around lines and zones."""
    parts = []
    for name, distance in (
        ("rail_lines", params.setback_rail_m),
        ("power_lines", params.setback_power_m),
        ("storm_sewers", params.setback_storm_m),
        ("prot_zones", params.setback_prot_m),
    ):
        geoms = _geoms(site.layer(name))
        if len(geoms):
            parts.append(shapely.buffer(geoms, distance) if distance > 0 else geoms)
    if not parts:
        return shapely.Polygon()
    return shapely.intersection(
        shapely.union_all(np.concatenate(parts)), shapely.buffer(site.area, 1.0)
    )


# --------------------------------------------------------------------------- the run
def _developable(
    site: Site, params: SubdivisionParams
) -> tuple[Any, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(net developable land, kept plots, replaced plots): the area less kept plots,
    protection zones and setbacks.

    Raises
    ------
    SubdivisionError
        When it holds less than one plot, or asks for more plots than one run may make.
    """
    kept, removed = _plots_in(site, params.keep_existing)
    held = shapely.union_all(_geoms(kept)) if len(kept) else shapely.Polygon()
    developable = shapely.difference(site.area, shapely.union(_setbacks(site, params), held))
    hectares = developable.area / 10_000.0
    if hectares < params.min_ha:
        raise SubdivisionError(
            f"the area has {hectares:.2f} ha free of setbacks, protection zones and kept "
            f"plots, less than one plot of {params.min_ha:g} ha"
        )
    if hectares / params.min_ha > MAX_PLOTS:
        raise SubdivisionError(
            f"{hectares:.0f} ha in plots of {params.min_ha:g} ha would make more than "
            f"{MAX_PLOTS:,} plots; raise the smallest plot or subdivide a smaller area"
        )
    return developable, kept, removed


def _streets(
    site: Site, params: SubdivisionParams, frame: Frame, kept: gpd.GeoDataFrame
) -> tuple[gpd.GeoDataFrame, np.ndarray | None, list[str]]:
    """(streets in the frame, local street positions or None, notes): the generated layout
    (when asked for; clear of protection zones and kept plots) and the existing roads
    reaching the area."""
    local = frame.to_local
    access = (
        access_point(site.area, site.layer("gates"), site.layer("roads"))
        if params.streets == "generated"
        else None
    )
    joined = (access.asset_id,) if access is not None and access.kind == "road" else ()
    existing = existing_streets(site.layer("roads"), site.area, also=joined)
    # in the site's local frame: no CRS
    existing = gpd.GeoDataFrame(existing.drop(columns="geometry"), geometry=local(_geoms(existing)))
    if params.streets != "generated":
        if not len(existing):
            raise SubdivisionError(
                "no street reaches the area: there are no existing roads "
                "along it; generate streets instead"
            )
        return existing, None, []
    notes = [
        f"the spine road starts from {access}"
        if access is not None
        else "no gate or road to connect to: the streets are not joined to the network"
    ]
    avoid = np.concatenate([_geoms(site.layer("prot_zones")), _geoms(kept)])
    grid = generate_streets(
        local(site.area),
        depth_m=params.depth_m,
        row_m=params.row_m,
        spine_row_m=params.spine_row_m,
        block_m=params.block_m,
        access=None if access is None else local(access.point),
        avoid=local(shapely.union_all(avoid)) if len(avoid) else None,
    )
    return pd.concat([grid.streets, existing], ignore_index=True), grid.local_x, notes


def _access_streets(streets: gpd.GeoDataFrame, plots: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """New streets, and the existing roads a plot fronts or the new streets join."""
    new = ~streets["existing"].to_numpy()
    network = shapely.union_all(_geoms(streets[new]))
    joins = (
        shapely.dwithin(_geoms(streets), network, 1.0) if new.any() else np.zeros(len(new), bool)
    )
    fronted = streets["street_id"].isin(plots["street_id"]).to_numpy()
    return streets[new | fronted | joins].reset_index(drop=True)


def _notes(metrics: Mapping[str, Any], params: SubdivisionParams) -> list[str]:
    notes = []
    if metrics["out_of_range"]:
        notes.append(
            f"{metrics['out_of_range']} plot(s) fall outside "
            f"{params.min_ha:g}–{params.max_ha:g} ha where the land allows no better"
        )
    if metrics["too_deep"]:
        notes.append(
            f"{metrics['too_deep']} plot(s) are deeper than {params.max_depth_ratio:g} "
            "× their frontage"
        )
    if metrics["remnants"]:
        notes.append(
            f"{metrics['remnants']} remnant(s) of {metrics['remnant_ha']:.2f} ha "
            "too small or without frontage stay open land"
        )
    return notes


def subdivide(
    site: Site, params: SubdivisionParams, *, progress: Progress | None = None
) -> Subdivision:
    """Subdivide ``site.area`` into streets and plots.

    Parameters
    ----------
    site : Site
        The area and its surroundings (:meth:`Site.from_snapshot`).
    params : SubdivisionParams
    progress : callable(fraction, message), optional
        Told how far the work is (0–1); may raise to stop it.

    Returns
    -------
    Subdivision

    Raises
    ------
    SubdivisionError
        For contradictory parameters, an area too small for one plot or without any street
        access, or when no plot fits.
    """
    started = time.perf_counter()
    params.check()
    site = replace(site, area=check_area(site.area, site.epsg))
    _report(progress, 0.02, "reading the site")
    developable, kept, removed = _developable(site, params)
    _report(progress, 0.1, "laying out streets")
    frame = Frame.of(site.area)
    streets_local, local_x, warnings = _streets(site, params, frame, kept)
    net = shapely.difference(frame.to_local(developable), rights_of_way(streets_local))
    net = shapely.make_valid(shapely.set_precision(net, 0.001))
    _report(progress, 0.25, f"subdividing {net.area / 10_000.0:.1f} ha ({params.method})")
    targets = _targets(params, net)
    if params.method == "strip":
        # SubdivisionParams refuses strip on existing streets: the grid gave its positions
        assert local_x is not None, "strip subdivision runs on generated streets"
        pieces = _strip_pieces(net, local_x, targets, params, progress)
    else:
        pieces = _obb_pieces(net, streets_local, targets, params, progress)
    _report(progress, 0.85, f"checking {len(pieces)} plots")
    pieces = _merge_misfits(pieces, streets_local, params)
    plots, remnants = _plot_table(pieces, streets_local, params, targets(pieces))
    if not len(plots):
        raise SubdivisionError(
            "no plot of the asked size fronts a street in this area; "
            "lower --min-ha or --frontage, or move the streets"
        )
    plots = plots.set_geometry(frame.to_world(_geoms(plots)), crs=site.epsg)
    streets = streets_local.set_geometry(frame.to_world(_geoms(streets_local)), crs=site.epsg)
    streets = streets.reset_index(drop=True).astype({"existing": bool, "row_m": float})
    plots["street_id"] = streets["street_id"].to_numpy()[plots.pop("street").to_numpy()]
    streets = _access_streets(streets, plots)
    _report(progress, 0.95, "measuring quality")
    _shape_metrics(plots)
    metrics = quality(site.area, developable, plots, streets, remnants, params)
    metrics["elapsed_s"] = round(time.perf_counter() - started, 3)
    _report(progress, 1.0, f"{len(plots)} plots")
    return Subdivision(
        plots,
        streets,
        removed.reset_index(drop=True),
        sorted(str(k) for k in kept["plot_id"]),
        metrics,
        warnings + _notes(metrics, params),
        params,
    )


def _plot_table(
    pieces: np.ndarray, streets: gpd.GeoDataFrame, params: SubdivisionParams, target_ha: np.ndarray
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """(plots, remnant areas in m²): pieces with frontage and at least half the minimum area
    become plots, the rest remnants."""
    length, street = frontage(pieces, streets)
    area = shapely.area(pieces)
    is_plot = (length >= params.frontage_m) & (area >= REMNANT_SHARE * params.min_ha * 10_000.0)
    area_ha = area[is_plot] / 10_000.0
    plots = gpd.GeoDataFrame(
        {
            "area_ha": np.round(area_ha, 4),
            "frontage_m": np.round(length[is_plot], 1),
            "street": street[is_plot],
            "target_ha": target_ha[is_plot],
            "depth_ratio": np.round(area[is_plot] / np.maximum(length[is_plot], 1e-9) ** 2, 2),
            "in_range": (area_ha >= params.min_ha * 0.999) & (area_ha <= params.max_ha * 1.001),
            "large": target_ha[is_plot] > params.target,
        },
        geometry=pieces[is_plot],
        crs=None,  # the site's local frame
    )
    return plots, area[~is_plot]


def compare(
    site: Site, params: SubdivisionParams, *, progress: Progress | None = None
) -> dict[str, Subdivision]:
    """Every method on the same site and parameters (the ``existing`` layout: ``obb`` only).

    Returns
    -------
    dict of method name to Subdivision
    """
    methods = [m for m in METHODS if params.streets == "generated" or m == "obb"]
    out = {}
    for i, method in enumerate(methods):

        def scaled(fraction: float, message: str, i: int = i) -> None:
            _report(progress, (i + fraction) / len(methods), f"{method}: {message}")

        out[method] = subdivide(site, replace(params, method=method), progress=scaled)
    return out


def params_dict(params: SubdivisionParams) -> dict[str, Any]:
    """The parameters as a plain dict (for JSON and job records)."""
    return asdict(params)
