"""The plan's progress month by month, read from the store (the dashboard, the API, the CLI)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from geo.store import Store
from planner.kpi import timeline

__all__ = ["progress_by_month"]


def progress_by_month(
    store: Store, *, today: dt.date, plots: pd.DataFrame | None = None
) -> dict[str, Any]:
    """Each plan target's actual value at the end of every month since the plan year, and
    applications filed and accepted, as :func:`planner.kpi.timeline` counts them.

    Parameters
    ----------
    store : Store
        The zone's store: its plots, targets, applications and the plots' audit trail.
    today : date
        The last month shown at least.
    plots : DataFrame, optional
        The plots already read (a cached snapshot); read from ``store`` when omitted.

    Returns
    -------
    dict
        ``months`` (``YYYY-MM``), ``targets`` (``target_id``, ``name``, ``metric``, ``year``,
        ``target``, ``actual``: one value per month) and ``applications`` (``filed``,
        ``accepted``: cumulative counts per month).
    """
    audit = store.read("audit", where={"layer": "plots", "action": "update"})
    return timeline(
        {
            "plots": store.read("plots") if plots is None else plots,
            "targets": store.read("targets"),
        },
        audit=audit,
        applications=store.read("applications"),
        today=today,
    )
