"""Access design use cases: design new roads, rail spurs or feeders for an area, and commit one as planned assets."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import to_wgs84
from geo.store import NotFound, Store
from geo.validate import parse_date
from planner.access_design import Design, design_access, freight_model
from planner.corridors import (
    DEFAULT_SPACING_M,
    FORBIDDEN_PLOT_STATUSES,
    FREE_PLOT_STATUSES,
    KINDS,
    NETWORK_LAYER,
    CostModel,
    build_corridors,
)
from planner.servicing import ServicingModel
from planner.steiner import DEFAULT_TIME_LIMIT_S

__all__ = [
    "AccessDesignError",
    "TARGET_SETS",
    "run_design",
    "design_document",
    "commit_design",
    "design_job",
]

#: Named target sets of ``--targets``.
TARGET_SETS = ("all", "rail", "power")
_PREFIX = {"road": "RD", "rail": "RS", "power": "PL-N"}
#: Protection zone kinds a new segment of each kind may enter (see planner.corridors).
_ZONES_ENTERED = {"road": (), "rail": ("rail",), "power": ("power", "substation")}


class AccessDesignError(ValueError):
    """Bad input for an access design or its commit; nothing was written."""


def _targets(
    plots: pd.DataFrame,
    area_id: str | None,
    area: shapely.Geometry | None,
    targets: str | Sequence[str],
) -> list[str]:
    """Target plot ids: a named set of the area's free plots, or the ids listed."""
    if not isinstance(targets, str) or targets not in TARGET_SETS:
        ids = [
            t.strip()
            for t in (targets.split(",") if isinstance(targets, str) else targets)
            if t.strip()
        ]
        known = set(plots["plot_id"].astype(str))
        unknown = [t for t in ids if t not in known]
        if unknown:
            raise AccessDesignError(f"unknown plots: {', '.join(unknown)}")
        if not ids:
            raise AccessDesignError("no target plots given")
        return list(dict.fromkeys(ids))
    free = plots["status"].astype(str).isin(FREE_PLOT_STATUSES).to_numpy()
    in_area = (plots["exp_id"].astype(str) == str(area_id)).to_numpy() | shapely.within(
        shapely.point_on_surface(np.asarray(plots.geometry.values, dtype=object)), area
    )
    pick = free & in_area
    if targets == "rail":
        pick &= plots["rail_need"].astype("boolean").fillna(False).to_numpy(bool)
    elif targets == "power":
        pick &= pd.to_numeric(plots["power_kw"], errors="coerce").fillna(0).to_numpy() > 0
    ids = plots.loc[pick, "plot_id"].astype(str).tolist()
    if not ids:
        what = {
            "all": "candidate or available",
            "rail": "free plots needing rail in the",
            "power": "free plots with a power demand in the",
        }[targets]
        raise AccessDesignError(f"no target plots: area {area_id} has no {what} plots")
    return ids


def run_design(
    store: Store,
    *,
    kind: str,
    area_id: str | None = None,
    targets: str | Sequence[str] = "all",
    as_of: dt.date | str | None = None,
    what_if: Mapping[tuple[str, str], str] | None = None,
    freight_years: float | None = None,
    tonnes: Mapping[str, float] | None = None,
    per_m: float | None = None,
    spacing_m: float = DEFAULT_SPACING_M,
    time_limit: float | None = DEFAULT_TIME_LIMIT_S,
    progress: Callable[[float, str], None] | None = None,
) -> Design:
    """Design the cheapest access of ``kind`` to the targets of an area.

    Parameters
    ----------
    store : Store
    kind : {"road", "rail", "power"}
    area_id : str, optional
        An expansion area; without it the targets must be listed and the area is their envelope.
    targets : "all", "rail", "power" or plot ids
    as_of, what_if
        Which assets count as operational.
    freight_years : float, optional
        Minimise construction plus freight over this many years.
    tonnes : mapping, optional
        Annual tonnes per plot id (others: the per-hectare default).
    per_m : float, optional
        Construction cost per metre instead of the kind's default.
    spacing_m : float
        Corridor lattice spacing.
    time_limit : float or None
        Seconds (default 10); None proves optimality however long.
    progress : callable, optional

    Raises
    ------
    AccessDesignError
        Unknown kind, area or plots; no targets; bad costs, dates or time limit.
    """
    if kind not in KINDS:
        raise AccessDesignError(f"kind {kind!r}: use one of {', '.join(KINDS)}")
    if time_limit is not None and not (math.isfinite(time_limit) and time_limit > 0):
        raise AccessDesignError("time limit must be a positive number of seconds")
    report = progress or (lambda fraction, message: None)
    report(0.0, "reading the store")
    snapshot = store.snapshot()
    plots = snapshot["plots"]
    area = None
    if area_id is not None:
        exp = snapshot["expansion"]
        hit = exp.loc[exp["exp_id"].astype(str) == str(area_id)]
        if hit.empty:
            known = ", ".join(exp["exp_id"].astype(str)) or "none"
            raise AccessDesignError(f"unknown expansion area {area_id!r} (known: {known})")
        area = hit.geometry.values[0]
    elif isinstance(targets, str) and targets in TARGET_SETS:
        raise AccessDesignError("give an expansion area, or list the target plots")
    ids = _targets(plots, area_id, area, targets)
    if area is None:
        chosen = plots.loc[plots["plot_id"].astype(str).isin(ids)]
        area = shapely.box(*chosen.total_bounds)
    try:
        costs = CostModel.default(kind, per_m=per_m)
        model = ServicingModel(snapshot)
        model.scenario(as_of, what_if)  # refuses bad dates and what-ifs before any work
        report(0.02, "building the corridor graph")
        graph = build_corridors(
            model,
            area,
            ids,
            kind=kind,
            as_of=as_of,
            what_if=what_if,
            costs=costs,
            spacing_m=spacing_m,
        )
        fm = None
        if freight_years is not None:
            fm = freight_model(
                model, graph, years=freight_years, tonnes=tonnes, as_of=as_of, what_if=what_if
            )
        design = design_access(
            graph,
            time_limit=time_limit,
            freight=fm,
            progress=lambda f, m: report(0.05 + 0.95 * f, m),
        )
    except AccessDesignError:
        raise
    except ValueError as err:
        raise AccessDesignError(str(err)) from None
    design.summary["area"] = area_id
    design.summary["as_of"] = None if as_of is None else str(as_of)
    return design


def design_document(design: Design) -> dict[str, Any]:
    """The design as a GeoJSON FeatureCollection (WGS84) with a top-level ``summary``."""
    segs = design.segments.copy()
    segs["targets"] = [",".join(t) for t in segs["targets"]]
    segs.insert(0, "seg_id", [f"S{i + 1}" for i in range(len(segs))])
    doc: dict[str, Any] = (
        json.loads(to_wgs84(segs).to_json(na="null", drop_id=True))
        if len(segs)
        else {"type": "FeatureCollection", "features": []}
    )
    for f in doc["features"]:
        f["properties"]["targets"] = [t for t in f["properties"]["targets"].split(",") if t]
    doc["summary"] = design.summary
    return doc


def commit_design(
    store: Store,
    document: Mapping[str, Any],
    *,
    user: str,
    due: dt.date | str,
    note: str | None = None,
) -> dict[str, Any]:
    """Store a design's segments as ``planned`` assets of its kind, in one audited transaction.

    ``document`` is :func:`design_document`'s output (WGS84). Inside the transaction the
    segments are checked again against the store as it is now: none may cross an
    occupied, allocated or reserved plot or a protection zone it may not enter.

    Returns
    -------
    dict
        ``layer`` and the new ``asset_ids``.

    Raises
    ------
    AccessDesignError
        No segments, a bad due date, or a segment now crossing a taken plot or a zone.
    """
    try:
        due_date = parse_date(str(due))
    except ValueError as err:
        raise AccessDesignError(f"due: {err}") from None
    kind = (document.get("summary") or {}).get("kind")
    if kind not in KINDS:
        raise AccessDesignError("the design names no kind (road, rail or power)")
    feats = document.get("features") or []
    if not feats:
        raise AccessDesignError("the design proposes no segments: nothing to commit")
    segs = gpd.GeoDataFrame.from_features(feats, crs=4326).to_crs(store.epsg)
    layer = NETWORK_LAYER[kind]
    with store.transaction(user) as tx:
        minx, miny, maxx, maxy = (float(v) for v in segs.total_bounds)
        bbox = (minx, miny, maxx, maxy)
        taken = tx.read("plots", bbox=bbox, where={"status": list(FORBIDDEN_PLOT_STATUSES)})
        zones = tx.read("prot_zones", bbox=bbox)
        zones = zones.loc[~zones["kind"].isin(_ZONES_ENTERED[kind])]
        blockers = np.r_[
            taken["plot_id"].astype(str).to_numpy(), zones["asset_id"].astype(str).to_numpy()
        ]
        # shrunk a little: running along an edge is allowed, and the WGS84 round trip moves
        # a segment by micrometres
        shapes = np.asarray(
            shapely.buffer(
                np.r_[
                    np.asarray(taken.geometry.values, dtype=object),
                    np.asarray(zones.geometry.values, dtype=object),
                ],
                -0.05,
            ),
            dtype=object,
        )
        if len(shapes):
            _, hit = shapely.STRtree(shapes).query(
                np.asarray(segs.geometry.values, dtype=object), predicate="intersects"
            )
            if len(hit):
                raise AccessDesignError(
                    "the design now crosses "
                    + ", ".join(sorted(set(blockers[hit])))
                    + " (taken plots or protection zones); run the design again"
                )
        existing = set(tx.read(layer)["asset_id"].astype(str))
        ids = _new_ids(_PREFIX[kind], existing, len(segs))
        frame = pd.DataFrame(
            {
                "asset_id": ids,
                "name": [f"Access design {kind} {s}" for s in segs["seg_id"]],
                "status": "planned",
                "due": due_date.isoformat(),
                "note": note
                or f"access design: {segs['length_m'].sum():.0f} m, "
                f"cost {float(segs['cost'].sum()):.0f}",
                "geometry": shapely.line_merge(np.asarray(segs.geometry.values, dtype=object)),
            }
        )
        frame["geometry"] = np.array(
            [
                g if g.geom_type == "LineString" else shapely.LineString(shapely.get_coordinates(g))
                for g in frame["geometry"]
            ],
            dtype=object,
        )
        if kind == "road":
            frame["class"] = "access"
        elif kind == "rail":
            frame["kind"] = "spur"
        else:
            frame["kv"] = 10.0
            frame["sub_id"] = [_sub_of(j, tx) for j in segs.get("joins", [None] * len(segs))]
        tx.insert(layer, gpd.GeoDataFrame(frame, geometry="geometry", crs=segs.crs))
    return {"layer": layer, "asset_ids": ids, "due": due_date.isoformat()}


def _sub_of(joined: Any, tx) -> str | None:  # noqa: ANN001
    """The substation a feeder joins: the substation itself or the joined line's."""
    if not joined:
        return None
    for layer, field in (("substations", "asset_id"), ("power_lines", "sub_id")):
        try:
            return tx.get(layer, str(joined))[field]
        except NotFound:  # not in that layer: try the next
            continue
    return None


def _new_ids(prefix: str, existing: set[str], n: int) -> list[str]:
    out: list[str] = []
    i = 1
    while len(out) < n:
        candidate = f"{prefix}-{i:03d}"
        if candidate not in existing:
            out.append(candidate)
        i += 1
    return out


def design_job(store: Store, params: Mapping[str, Any]) -> Callable:
    """A job function for :class:`usecases.jobs.JobRunner`: runs the design, returns its document."""

    def run(ctx) -> dict:  # noqa: ANN001
        design = run_design(
            store,
            kind=params["kind"],
            area_id=params.get("area"),
            targets=params.get("targets") or "all",
            freight_years=params.get("freight_years"),
            time_limit=params.get("time_limit") or DEFAULT_TIME_LIMIT_S,
            progress=ctx.progress,
        )
        return design_document(design)

    return run
