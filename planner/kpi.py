"""Zone indicators: area by status and sector, investment and jobs, headroom, plots ready
to build, and progress against the plan targets.

Definitions
-----------
* **Area** by plot status and by occupant's sector (``sector``; plots without an
  occupant are counted under ``"none"``), hectares from ``area_ha`` (or the
  geometry when missing).
* **Investment and jobs**: totals and per hectare over plots ``occupied`` or
  ``allocated``.
* **Headroom** per substation (kW) and water main (m³/day), as of the date:
  :meth:`planner.servicing.ServicingModel.headroom`.
* **Ready to build**: plots ``available`` whose every needed utility is met in
  the scenario (as recorded, or as of the date): the servicing record's
  ``waits_for`` is empty.
* **Targets** (the ``targets`` table), by metric:

  - ``projects``: plots whose ``start_yr`` is the target year (count);
  - ``invest``: the ``invest`` of those plots (tenge);
  - ``parks``: plots ``occupied`` or ``allocated`` with production floor
    (``floor_m2`` > 0) starting from the plan year through the target year
    (count) — a plot with its own production building is counted as one park;
  - ``floor_m2``: the production floor of those plots (m²).

  The plan year is the earliest year in the targets table (2022 for the
  sample: the news item of April 2022).  With ``as_of``, plots starting after
  the year of ``as_of`` do not count yet.  ``progress`` is actual / target.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import shapely

from geo.layers import PLOT_STATUSES, SECTORS
from planner.servicing import ServicingModel

__all__ = ["kpi", "format_kpi", "INVESTED_STATUSES"]

INVESTED_STATUSES: tuple[str, ...] = ("occupied", "allocated")


def _f(value: Any, digits: int = 2) -> float | None:
    if value is None or value is pd.NA:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _area(plots: pd.DataFrame) -> np.ndarray:
    area = (
        pd.to_numeric(plots["area_ha"], errors="coerce").to_numpy(dtype=float, copy=True)
        if "area_ha" in plots.columns
        else np.full(len(plots), np.nan)
    )
    missing = ~np.isfinite(area)
    if missing.any() and "geometry" in plots.columns:
        area[missing] = shapely.area(np.asarray(plots.geometry.values)[missing]) / 10_000.0
    return area


def kpi(
    snapshot: Mapping[str, pd.DataFrame],
    *,
    as_of: dt.date | str | None = None,
    model: ServicingModel | None = None,
    today: dt.date | str | None = None,
) -> dict[str, Any]:
    """Zone indicators as a JSON-safe dict.

    Parameters
    ----------
    snapshot : mapping
        ``Store.snapshot((*FEATURE_LAYERS, "targets"))``; ``targets`` may be absent
        (no target progress then).
    as_of : date or str, optional
        Servicing and headroom as of this date (assets due by then count as
        operational); target progress counts plots started by its year.
    model : ServicingModel, optional
        A model already built for this snapshot (saves rebuilding the networks).

    Raises
    ------
    ValueError
        For a date that does not parse.
    """
    model = model or ServicingModel(snapshot, today=today)
    scen = model.scenario(as_of, None)
    plots = model.layers["plots"]
    area = _area(plots)
    status = plots["status"].astype(object).to_numpy() if len(plots) else np.zeros(0, object)
    sector = np.array(
        [
            s if isinstance(s, str) and s else "none"
            for s in (plots["sector"] if len(plots) else [])
        ],
        dtype=object,
    )

    def group(keys: np.ndarray, order: Iterable[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for k in order:
            sel = keys == k
            out[k] = {"plots": int(sel.sum()), "area_ha": _f(np.nansum(area[sel]), 2)}
        return out

    by_sector_keys = [*SECTORS, "none"]
    by_sector_keys += sorted(set(sector) - set(by_sector_keys))
    invest = pd.to_numeric(plots["invest"], errors="coerce").to_numpy(float)
    jobs = pd.to_numeric(plots["jobs"], errors="coerce").to_numpy(float)
    sel = np.isin(status, INVESTED_STATUSES)
    inv_area = float(np.nansum(area[sel]))
    total_inv = float(np.nansum(invest[sel]))
    total_jobs = float(np.nansum(jobs[sel]))
    investment = {
        "statuses": list(INVESTED_STATUSES),
        "plots": int(sel.sum()),
        "area_ha": _f(inv_area),
        "invest": _f(total_inv, 0),
        "jobs": int(total_jobs),
        "invest_per_ha": _f(total_inv / inv_area, 0) if inv_area > 0 else None,
        "jobs_per_ha": _f(total_jobs / inv_area, 2) if inv_area > 0 else None,
    }

    head = model.headroom(scen.as_of)
    headroom = []
    for rec in head.to_dict(orient="records"):
        headroom.append(
            {
                "layer": rec["layer"],
                "asset_id": rec["asset_id"],
                "name": rec["name"],
                "status": rec["status"],
                "unit": rec["unit"],
                "base": _f(rec["base"], 1),
                "committed": _f(rec["committed"], 1),
                "headroom": _f(rec["headroom"], 1),
                "committed_plots": int(rec["committed_plots"]),
                "reason": rec["reason"] if isinstance(rec["reason"], str) else None,
                "due": rec["due"] if isinstance(rec["due"], str) else None,
                "projected": bool(rec["projected"]),
                "overdue": bool(rec["overdue"]),
            }
        )

    records = model.answer(as_of=scen.as_of)
    waits = np.array([not r["waits_for"] for r in records], dtype=bool)
    ready_sel = (status == "available") & waits if len(records) else np.zeros(0, bool)
    ids = model.plot_ids[ready_sel].tolist()
    ready = {
        "plots": len(ids),
        "area_ha": _f(np.nansum(area[ready_sel])),
        "plot_ids": ids,
        "available": int((status == "available").sum()),
        "waiting_for": {
            u: int(sum(u in r["waits_for"] for r, s in zip(records, status) if s == "available"))
            for u in ("road", "rail", "power", "water", "storm", "gas")
        },
    }
    servicing = {
        u: int(
            sum(bool(r[u]["available"] if "available" in r[u] else r[u]["fronts"]) for r in records)
        )
        for u in ("road", "rail", "power", "water", "storm", "gas")
    }

    targets = _targets(snapshot.get("targets"), plots, status, area, scen.as_of)
    return {
        "as_of": None if scen.as_of is None else scen.as_of.isoformat(),
        # TEMPORARY: ServicingModel.today is always set; its type comes with the servicing split
        "today": model.today.isoformat(),  # type: ignore[union-attr]
        "plots": int(len(plots)),
        "area": {
            "total_ha": _f(np.nansum(area)),
            "by_status": group(status, PLOT_STATUSES),
            "by_sector": group(sector, by_sector_keys),
        },
        "investment": investment,
        "headroom": headroom,
        "ready_to_build": ready,
        "servicing": servicing,
        "targets": targets,
    }


def _targets(
    table: pd.DataFrame | None,
    plots: pd.DataFrame,
    status: np.ndarray,
    area: np.ndarray,
    as_of: dt.date | None,
) -> list[dict[str, Any]]:
    if table is None or len(table) == 0:
        return []
    start = pd.to_numeric(plots["start_yr"], errors="coerce").to_numpy(float)
    invest = pd.to_numeric(plots["invest"], errors="coerce").to_numpy(float)
    floor = pd.to_numeric(plots["floor_m2"], errors="coerce").to_numpy(float)
    years = pd.to_numeric(table["year"], errors="coerce")
    plan_year = int(years.min()) if years.notna().any() else None
    cutoff = as_of.year if as_of is not None else None
    out = []
    for rec in table.to_dict(orient="records"):
        metric = rec["metric"]
        year = int(rec["year"])
        last = year if cutoff is None else min(year, cutoff)
        if metric in ("projects", "invest"):
            sel = (start == year) & (year <= last)
            actual = float(sel.sum()) if metric == "projects" else float(np.nansum(invest[sel]))
            basis = f"plots with start_yr {year}"
        elif metric in ("parks", "floor_m2"):
            sel = (
                np.isin(status, INVESTED_STATUSES)
                & (np.nan_to_num(floor) > 0)
                & (start >= (plan_year or year))
                & (start <= last)
            )
            actual = float(sel.sum()) if metric == "parks" else float(np.nansum(floor[sel]))
            basis = (
                f"occupied/allocated plots with production floor starting "
                f"{plan_year or year}-{last}"
            )
        else:
            continue
        value = float(rec["value"])
        out.append(
            {
                "target_id": rec["target_id"],
                "name": rec.get("name"),
                "metric": metric,
                "year": year,
                "target": _f(value, 2),
                "actual": _f(actual, 2),
                "progress": _f(actual / value, 4) if value > 0 else None,
                "plots": int(sel.sum()),
                "basis": basis,
            }
        )
    return out


def format_kpi(report: Mapping[str, Any]) -> str:
    """A short text report of :func:`kpi` for the command line."""
    when = f"as of {report['as_of']}" if report["as_of"] else "as recorded"
    lines = [
        f"zone indicators {when} (today {report['today']}): {report['plots']} plots, "
        f"{report['area']['total_ha']} ha"
    ]
    lines.append("area by status:")
    for k, v in report["area"]["by_status"].items():
        lines.append(f"  {k:<10} {v['plots']:>4} plots {v['area_ha']:>9.2f} ha")
    lines.append("area by occupant's sector:")
    for k, v in report["area"]["by_sector"].items():
        if v["plots"]:
            lines.append(f"  {k:<10} {v['plots']:>4} plots {v['area_ha']:>9.2f} ha")
    inv = report["investment"]
    lines.append(
        f"investment ({'/'.join(inv['statuses'])}): {inv['invest'] or 0:,.0f} tenge, "
        f"{inv['jobs']} jobs on {inv['area_ha']} ha "
        f"({inv['invest_per_ha'] or 0:,.0f} tenge/ha, {inv['jobs_per_ha']} jobs/ha)"
    )
    lines.append("headroom:")
    for h in report["headroom"]:
        extra = f" — {h['reason']}" if h["reason"] else ""
        status = h["status"] + (" (projected)" if h.get("projected") else "")
        lines.append(
            f"  {h['asset_id']:<8} {status:<25} {h['headroom']:>10,.1f} {h['unit']}"
            f" ({h['committed_plots']} committed plots){extra}"
        )
    r = report["ready_to_build"]
    waiting = ", ".join(f"{k} {v}" for k, v in r["waiting_for"].items() if v)
    lines.append(
        f"ready to build: {r['plots']} of {r['available']} available plots "
        f"({r['area_ha']} ha)" + (f"; the others wait for: {waiting}" if waiting else "")
    )
    lines.append("targets:")
    for t in report["targets"]:
        pct = "-" if t["progress"] is None else f"{100 * t['progress']:.0f}%"
        lines.append(
            f"  {t['target_id']} {t['metric']:<9} by {t['year']}: "
            f"{t['actual']:,.0f} of {t['target']:,.0f} ({pct}; {t['basis']})"
        )
    return "\n".join(lines)
