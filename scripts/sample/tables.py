"""Tables without geometry: the plan's targets and the applications."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pandas as pd

from geo.layers import SECTORS, get_layer
from scripts.sample.attributes import HAZARD, KW_PER_HA, M3D_PER_HA, PROJECTS, company_name


def make_targets() -> pd.DataFrame:
    source = "Akimat of Almaty: Ye. Dosaev's visit to the Almaty Industrial Zone, 8 April 2022"
    return pd.DataFrame(
        [
            dict(
                target_id="T-01",
                name="Projects to implement this year",
                metric="projects",
                value=13.0,
                year=2022,
                source=source,
            ),
            dict(
                target_id="T-02",
                name="Investment in this year's projects, tenge",
                metric="invest",
                value=13_300_000_000.0,
                year=2022,
                source=source,
            ),
            dict(
                target_id="T-03",
                name="Industrial parks to commission",
                metric="parks",
                value=40.0,
                year=2025,
                source=source,
            ),
            dict(
                target_id="T-04",
                name="Production floor area of the parks, m2",
                metric="floor_m2",
                value=250_000.0,
                year=2025,
                source=source,
            ),
        ],
        columns=[f.name for f in get_layer("targets").input_fields],
    ).astype(object)


def make_applications(rng, plots: gpd.GeoDataFrame, rail_geoms) -> pd.DataFrame:
    avail = plots[plots["status"] == "available"].copy()
    avail["ha"] = avail.geometry.area / 1e4
    avail["rail"] = avail.geometry.distance(rail_geoms) < 20.0
    rail_plots = avail[avail["rail"]].sort_values("ha", ascending=False)
    big = avail[~avail["rail"]].sort_values("ha", ascending=False)
    mid = avail[(avail["ha"] > 1.5) & (avail["ha"] < 4.0) & ~avail["rail"]].sort_values("plot_id")
    hot = [rail_plots.iloc[0], big.iloc[0], mid.iloc[len(mid) // 2], rail_plots.iloc[1]]
    wanted = [hot[0]] * 4 + [hot[1]] * 3 + [hot[2]] * 3 + [hot[3]] * 2
    used: set = set()
    rows = []
    for k in range(30):
        target = (
            wanted[k]
            if k < len(wanted)
            else (avail.iloc[int(rng.integers(0, len(avail)))] if k % 3 == 0 else None)
        )
        if target is not None:
            allowed = target["sectors"]
            choices = sorted(SECTORS if allowed in (None, "*") else allowed.split(","))
            ha = float(target["ha"])
        else:
            choices = list(SECTORS)
            ha = float(avail["ha"].iloc[int(rng.integers(0, len(avail)))])
        sector = str(rng.choice(choices))
        h_lo, h_hi = HAZARD[sector]
        hazard = int(rng.integers(h_lo, h_hi + 1))
        if target is not None:
            hazard = min(hazard, int(target["hazard_ok"]))
        rail_need = bool(target is not None and bool(target["rail"])) or (
            sector in ("materials", "logistics") and rng.random() < 0.25
        )
        heavy = k in (0, 1, 4, 11, 17, 23)
        kw = ha * KW_PER_HA[sector] * float(rng.uniform(0.8, 1.6)) * (2.5 if heavy else 1.0)
        rows.append(
            dict(
                app_id=f"A-{k + 1:03d}",
                investor="investor",
                company=company_name(rng, sector, used),
                project=str(rng.choice(PROJECTS[sector])),
                sector=sector,
                plot_id=None if target is None else target["plot_id"],
                min_ha=round(max(0.3, ha * float(rng.uniform(0.6, 0.95))), 1),
                max_ha=round(ha * float(rng.uniform(1.1, 1.6)) + 0.1, 1),
                power_kw=float(round(max(300.0, kw), -1)),
                water_m3d=float(round(ha * M3D_PER_HA[sector] * float(rng.uniform(0.7, 1.5)), 1)),
                rail_need=rail_need,
                hazard=hazard,
                invest=float(round(ha * rng.uniform(0.4e9, 1.8e9), -6)),
                jobs=int(round(ha * rng.uniform(12, 45))),
                # Projects filed in 2022 start over the next three years, building on about a
                # third of their plot (no draw from rng: the other columns stay as they were).
                start_yr=2023 + k % 3,
                floor_m2=float(round(ha * 10_000 * 0.35, -1)),
                priority=int(rng.integers(1, 6)),
                status="submitted",
                reason=None,
                assigned=None,
                created=(
                    dt.datetime(2022, 4, 18, 9, 0) + dt.timedelta(days=3 * k, hours=k % 7)
                ).isoformat(timespec="seconds"),
            )
        )
        rows[-1]["updated"] = rows[-1]["created"]
    frame = pd.DataFrame(rows, columns=[f.name for f in get_layer("applications").input_fields])
    return frame.astype(object).where(frame.notna(), None)
