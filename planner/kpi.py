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
  ``waits_for`` is empty; ``ready_by_date`` groups the available plots by the
  servicing answer's ``ready`` (now, a date, unknown).
* **Infrastructure**: the headroom summed up per asset class (:func:`infrastructure`).
* **Targets** (the ``targets`` table), by metric:

  - ``projects``: plots whose ``start_yr`` is the target year (count);
  - ``invest``: the ``invest`` of those plots (tenge);
  - ``parks``: industrial parks, i.e. occupants (``resident``) of plots ``occupied``
    or ``allocated`` with production floor (``floor_m2`` > 0) starting from the plan
    year through the target year; one occupant's plots are one park, a plot without a
    named occupant is a park of its own (count);
  - ``floor_m2``: the production floor of those plots (m²).

  The plan year is the earliest year in the targets table (2022 for the
  sample: the news item of April 2022).  With ``as_of``, plots starting after
  the year of ``as_of`` do not count yet.  ``progress`` is actual / target.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import shapely

from geo.layers import PLOT_STATUSES, SECTORS
from planner.servicing import ServicingModel

__all__ = [
    "kpi",
    "target_progress",
    "infrastructure",
    "ready_by_date",
    "timeline",
    "INVESTED_STATUSES",
]

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

    targets = target_progress(plots, snapshot.get("targets"), scen.as_of)
    return {
        "as_of": None if scen.as_of is None else scen.as_of.isoformat(),
        "today": model.today.isoformat(),
        "plots": int(len(plots)),
        "area": {
            "total_ha": _f(np.nansum(area)),
            "by_status": group(status, PLOT_STATUSES),
            "by_sector": group(sector, by_sector_keys),
        },
        "investment": investment,
        "headroom": headroom,
        "infrastructure": infrastructure(headroom),
        "ready_to_build": ready,
        "ready_by_date": ready_by_date(records, status, area, model.today),
        "servicing": servicing,
        "targets": targets,
    }


def _park_keys(plots: pd.DataFrame) -> np.ndarray:
    """One key per industrial park: the occupant (``resident``), else the plot itself."""
    ids = plots["plot_id"].astype(str).to_numpy() if len(plots) else np.zeros(0, object)
    if "resident" not in plots.columns:
        return ids
    resident = plots["resident"].to_numpy(object)
    named = np.array([isinstance(r, str) and r.strip() != "" for r in resident], dtype=bool)
    return np.where(named, np.array([str(r).strip().casefold() for r in resident]), ids)


def _selection(
    metric: str, year: int, plan_year: int, last: int, plots: pd.DataFrame, status: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """The plots a target counts and what each contributes (None: a metric we do not know).

    For ``parks`` the contribution is a park key (see :func:`_park_keys`), counted once.
    """
    start = pd.to_numeric(plots["start_yr"], errors="coerce").to_numpy(float)
    if metric in ("projects", "invest"):
        sel = (start == year) & (year <= last)
        if metric == "projects":
            return sel, np.ones(len(plots))
        return sel, pd.to_numeric(plots["invest"], errors="coerce").to_numpy(float)
    if metric in ("parks", "floor_m2"):
        floor = pd.to_numeric(plots["floor_m2"], errors="coerce").to_numpy(float)
        sel = (
            np.isin(status, INVESTED_STATUSES)
            & (np.nan_to_num(floor) > 0)
            & (start >= plan_year)
            & (start <= last)
        )
        return sel, (_park_keys(plots) if metric == "parks" else floor)
    return None


def _total(metric: str, values: np.ndarray) -> float:
    if metric == "parks":
        return float(len(set(values.tolist())))
    return float(np.nansum(values))


BASIS = {
    "projects": "plots with start_yr {year}",
    "invest": "investment of the plots with start_yr {year}",
    "parks": "occupants with production floor on occupied/allocated plots, started "
    "{first}-{last} (one occupant's plots are one park)",
    "floor_m2": "production floor of those parks, started {first}-{last}",
}


def target_progress(
    plots: pd.DataFrame, table: pd.DataFrame | None, as_of: dt.date | None = None
) -> list[dict[str, Any]]:
    """Progress against each plan target: the ``targets`` part of :func:`kpi`, alone.

    Needs no servicing model, so a page can show it cheaply. Each entry holds
    ``target_id``, ``name``, ``metric``, ``year``, ``target``, ``actual``, ``progress``
    (actual / target), ``plots`` (how many plots count) and ``basis`` (the rule).
    """
    if table is None or len(table) == 0:
        return []
    status = plots["status"].astype(object).to_numpy() if len(plots) else np.zeros(0, object)
    years = pd.to_numeric(table["year"], errors="coerce")
    plan_year = int(years.min()) if years.notna().any() else None
    cutoff = as_of.year if as_of is not None else None
    out = []
    for rec in table.to_dict(orient="records"):
        metric, year = rec["metric"], int(rec["year"])
        last = year if cutoff is None else min(year, cutoff)
        picked = _selection(metric, year, plan_year or year, last, plots, status)
        if picked is None:
            continue
        sel, values = picked
        actual = _total(metric, values[sel])
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
                "basis": BASIS[metric].format(year=year, first=plan_year or year, last=last),
            }
        )
    return out


def infrastructure(headroom: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The headroom entries of :func:`kpi` summed up per asset class (layer).

    Returns
    -------
    list of dict
        Per layer: ``assets``, ``operational`` (those giving capacity), ``headroom``
        (sum), ``unit``, ``committed_plots`` (sum), ``tightest`` (asset id with the least
        headroom among those giving capacity) and ``no_capacity``: the assets giving none,
        each ``{asset_id, status, due, overdue}``.
    """
    out: dict[str, dict[str, Any]] = {}
    for h in headroom:
        entry = out.setdefault(
            h["layer"],
            {
                "layer": h["layer"],
                "unit": h["unit"],
                "assets": 0,
                "operational": 0,
                "headroom": 0.0,
                "committed_plots": 0,
                "tightest": None,
                "tightest_headroom": None,
                "no_capacity": [],
            },
        )
        entry["assets"] += 1
        entry["committed_plots"] += int(h["committed_plots"])
        if h["reason"]:
            entry["no_capacity"].append(
                {k: h[k] for k in ("asset_id", "name", "status", "due", "overdue")}
            )
            continue
        entry["operational"] += 1
        entry["headroom"] = _f(entry["headroom"] + (h["headroom"] or 0.0), 1)
        if entry["tightest_headroom"] is None or (h["headroom"] or 0) < entry["tightest_headroom"]:
            entry["tightest"], entry["tightest_headroom"] = h["asset_id"], h["headroom"]
    return list(out.values())


def ready_by_date(
    records: Sequence[Mapping[str, Any]],
    status: np.ndarray[Any, Any],
    area: np.ndarray[Any, Any],
    today: dt.date | None,
) -> list[dict[str, Any]]:
    """Available plots grouped by when they are fully serviced: ``now``, each date (oldest
    first, ``overdue`` when already past ``today``), then ``unknown``."""
    groups: dict[str, list[float]] = {}
    for rec, st, ha in zip(records, status, area):
        if st == "available":
            groups.setdefault(str(rec["ready"]), []).append(float(ha))
    dates = sorted(k for k in groups if k not in ("now", "unknown"))
    order = [k for k in ("now", *dates, "unknown") if k in groups]
    return [
        {
            "ready": k,
            "plots": len(groups[k]),
            "area_ha": _f(np.nansum(groups[k]), 2),
            "overdue": today is not None and k not in ("now", "unknown") and k < today.isoformat(),
        }
        for k in order
    ]


#: Plot fields the targets read: an audited change to one dates the plot's progress.
TARGET_FIELDS: tuple[str, ...] = ("status", "start_yr", "floor_m2", "invest", "resident")


def counted_since(plots: pd.DataFrame, audit: pd.DataFrame | None) -> np.ndarray:
    """The day each plot counts towards the targets from (``datetime64[D]``).

    Its last audited update to a field the targets read (:data:`TARGET_FIELDS`), never
    before 1 January of its start year; a plot not updated since it was loaded counts
    from 1 January of its start year (NaT without one).
    """
    start = pd.to_numeric(plots["start_yr"], errors="coerce")
    since = pd.to_datetime(
        start.astype("Int64").astype(str).where(start.notna()) + "-01-01", errors="coerce"
    )
    if audit is not None and len(audit):
        pattern = "|".join(f'"{name}"' for name in TARGET_FIELDS)
        rows = audit[
            (audit["layer"] == "plots")
            & (audit["action"] == "update")
            & audit["changes"].fillna("").str.contains(pattern)
        ]
        last = pd.to_datetime(rows.groupby("feat_id")["at"].max(), errors="coerce")
        keys = plots["plot_id"].astype(str).to_numpy()
        edited = pd.Series(last.reindex(keys).to_numpy(), index=since.index)
        since = pd.concat([since, edited], axis=1).max(axis=1)
    return since.to_numpy(dtype="datetime64[D]")


def _months(first: dt.date, last: dt.date) -> list[dt.date]:
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(dt.date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def timeline(
    snapshot: Mapping[str, pd.DataFrame],
    *,
    audit: pd.DataFrame | None = None,
    applications: pd.DataFrame | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Each target's actual value month by month, and applications filed and accepted.

    The actual at the end of a month is what :func:`kpi` reports as of that day, counting
    only plots counted since then (:func:`counted_since`): the last point (as of today)
    equals :func:`kpi`'s for targets already due.

    Parameters
    ----------
    snapshot : mapping
        With ``plots`` and ``targets``.
    audit, applications : DataFrame, optional
        The store's audit trail and applications.
    today : date, optional
        The last month shown at least (default: today).

    Returns
    -------
    dict
        ``months`` (``YYYY-MM``), ``targets`` (per target: ``target_id``, ``metric``,
        ``year``, ``target``, ``actual``: one value per month) and ``applications``
        (``filed``, ``accepted``: cumulative counts per month; accepted = now
        ``reserved``, dated by its last update).
    """
    today = today or dt.date.today()
    table = snapshot.get("targets")
    plots = snapshot["plots"]
    if table is None or len(table) == 0:
        return {"months": [], "targets": [], "applications": {"filed": [], "accepted": []}}
    years = pd.to_numeric(table["year"], errors="coerce").dropna().astype(int)
    plan_year = int(years.min())
    months = _months(dt.date(plan_year, 1, 1), max(today, dt.date(int(years.max()), 12, 1)))
    ends = [
        np.datetime64(dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)) - 1 for d in months
    ]
    status = plots["status"].astype(object).to_numpy()
    since = counted_since(plots, audit)
    series = []
    for rec in table.to_dict(orient="records"):
        metric, year = rec["metric"], int(rec["year"])
        actual = []
        for month, end in zip(months, ends):
            picked = _selection(metric, year, plan_year, min(year, month.year), plots, status)
            if picked is None:
                break
            sel, values = picked
            actual.append(_f(_total(metric, values[sel & (since <= end)]), 2))
        if picked is not None:
            series.append(
                {k: rec[k] for k in ("target_id", "name", "metric", "year")}
                | {"target": _f(float(rec["value"]), 2), "actual": actual}
            )
    return {
        "months": [d.strftime("%Y-%m") for d in months],
        "targets": series,
        "applications": _applications_by_month(applications, ends),
    }


def _applications_by_month(
    apps: pd.DataFrame | None, ends: Sequence[np.datetime64]
) -> dict[str, list[int]]:
    if apps is None or len(apps) == 0:
        return {"filed": [0] * len(ends), "accepted": [0] * len(ends)}
    filed = pd.to_datetime(apps["created"], errors="coerce").to_numpy(dtype="datetime64[D]")
    decided = pd.to_datetime(apps["updated"], errors="coerce").to_numpy(dtype="datetime64[D]")
    # An accepted application is ``reserved`` (its plot reserved) when it was decided.
    accepted = decided[(apps["status"] == "reserved").to_numpy()]
    return {
        "filed": [int((filed <= end).sum()) for end in ends],
        "accepted": [int((accepted <= end).sum()) for end in ends],
    }
