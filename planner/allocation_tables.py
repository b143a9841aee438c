"""The allocator's plain tables (plots, applications, capacities) built from a store snapshot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd

from planner.servicing import ServicingModel

PENDING = "submitted"


def plot_table(
    snapshot: Mapping[str, pd.DataFrame],
    model: ServicingModel,
    *,
    as_of: dt.date | str | None = None,
) -> pd.DataFrame:
    """Available plots with what the allocator needs, from their servicing answers.

    A plot's ``node`` is the substation serving it (None when it has no usable
    power), its ``water_node`` the usable water main, ``rail`` whether rail is
    available as recorded or as of ``as_of``, ``dist_m`` the network distance to
    its gate.
    """
    plots = snapshot["plots"]
    plots = plots[plots["status"] == "available"]
    if plots.empty:
        return pd.DataFrame(
            columns=[
                "plot_id",
                "area_ha",
                "rail",
                "node",
                "water_node",
                "sectors",
                "hazard_ok",
                "dist_m",
            ]
        )
    records = {r["plot_id"]: r for r in model.answer(plots["plot_id"].tolist(), as_of=as_of)}
    rows = []
    for plot_id, area, sectors, hazard_ok in zip(
        plots["plot_id"].tolist(),
        plots["area_ha"].astype(float).tolist(),
        plots["sectors"].tolist(),
        plots["hazard_ok"].tolist(),
    ):
        rec = records[plot_id]
        power, water = rec["power"], rec["water"]
        rows.append(
            {
                "plot_id": plot_id,
                "area_ha": area,
                "rail": bool(rec["rail"]["available"]),
                "node": power.get("substation") if power["available"] else None,
                "water_node": water.get("main") if water["available"] else None,
                "sectors": sectors or "*",
                "hazard_ok": None if pd.isna(hazard_ok) else int(hazard_ok),
                "dist_m": rec["road"].get("distance_m"),
            }
        )
    return pd.DataFrame(rows)


def capacity_table(model: ServicingModel, *, as_of: dt.date | str | None = None) -> pd.DataFrame:
    """Headroom per node: substations in ``power_kw``, water mains in ``water_m3d``."""
    head = model.headroom(as_of)
    power = head[head["layer"] == "substations"]
    water = head[head["layer"] == "water_mains"]
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "node": power["asset_id"],
                    "power_kw": power["headroom"].clip(lower=0),
                    "water_m3d": 0.0,
                }
            ),
            pd.DataFrame(
                {
                    "node": water["asset_id"],
                    "power_kw": 0.0,
                    "water_m3d": water["headroom"].clip(lower=0),
                }
            ),
        ],
        ignore_index=True,
    )


def application_table(applications: pd.DataFrame) -> pd.DataFrame:
    """Pending applications in the allocator's columns (a requested plot becomes a preference)."""
    apps = (
        applications[applications["status"] == PENDING]
        if "status" in applications
        else applications
    )
    out = pd.DataFrame(
        {
            "app_id": apps["app_id"].astype(str),
            "min_ha": apps["min_ha"].astype(float),
            "max_ha": apps["max_ha"].astype(float),
            "sector": apps["sector"],
            "rail_need": apps["rail_need"].fillna(False).astype(bool),
            "power_kw": apps["power_kw"].astype(float).fillna(0.0),
            "water_m3d": apps["water_m3d"].astype(float).fillna(0.0),
            "hazard": apps["hazard"].astype(float),
            "invest": apps["invest"].astype(float).fillna(0.0),
            "jobs": apps["jobs"].astype(float).fillna(0.0),
            "priority": apps["priority"].astype(float).fillna(0.0) if "priority" in apps else 0.0,
        }
    )
    if "plot_id" in apps:
        out["plot_pref"] = apps["plot_id"].where(apps["plot_id"].notna(), None)
    elif "plot_pref" in apps:
        out["plot_pref"] = apps["plot_pref"]
    return out.reset_index(drop=True)
