"""Benchmark planner.allocation on a seeded synthetic zone: HiGHS MILP vs greedy vs CBC on the same pair model."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner import allocation  # noqa: E402

SECTORS = [f"C{code}" for code in (10, 11, 16, 20, 22, 23, 24, 25, 28, 29)]


def make_instance(apps: int, plots: int, nodes: int, capacity_ratio: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Seeded synthetic zone whose substations can serve only ``capacity_ratio`` of the demand that could reach them.

    Plot sizes are cadastral reals; applicants ask for round hectare ranges, as on the
    application form.  Each plot allows one to three sectors (10% allow any).
    """
    rng = np.random.default_rng(seed)
    node_names = np.array([f"S-{n:02d}" for n in range(1, nodes + 1)])
    area = np.round(rng.lognormal(mean=1.6, sigma=0.7, size=plots), 2) + 0.5
    allowed = [",".join(rng.choice(SECTORS, size=rng.integers(1, 4), replace=False)) for _ in range(plots)]
    plot_frame = pd.DataFrame(
        {
            "plot_id": [f"P-{n:05d}" for n in range(plots)],
            "area_ha": area,
            "rail": rng.random(plots) < 0.3,
            "node": np.where(rng.random(plots) < 0.97, rng.choice(node_names, size=plots), None),
            "sectors": np.where(rng.random(plots) < 0.1, "*", allowed),
            "hazard_ok": rng.integers(1, 5, size=plots),
            "dist_m": rng.uniform(50, 3000, size=plots).round(),
        }
    )
    min_ha = np.maximum(np.round(rng.lognormal(mean=1.4, sigma=0.6, size=apps)), 1.0)
    power = np.round(rng.lognormal(mean=7.0, sigma=0.8, size=apps), -1)
    app_frame = pd.DataFrame(
        {
            "app_id": [f"A-{n:04d}" for n in range(apps)],
            "min_ha": min_ha,
            "max_ha": min_ha + np.maximum(np.round(min_ha * rng.uniform(0.2, 1.0, size=apps)), 1.0),
            "sector": rng.choice(SECTORS, size=apps),
            "rail_need": rng.random(apps) < 0.25,
            "power_kw": power,
            "invest": np.round(min_ha * rng.lognormal(mean=20.0, sigma=0.6, size=apps) + power * 2e5, -6),
            "jobs": np.round(min_ha * rng.uniform(5, 40, size=apps)),
            "hazard": rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.2, 0.1], size=apps),
            "priority": rng.integers(0, 4, size=apps),
        }
    )
    demand_share = app_frame["power_kw"].sum() / nodes
    capacities = pd.DataFrame({"node": node_names, "power_kw": np.round(capacity_ratio * demand_share * rng.uniform(0.5, 1.5, size=nodes), -1)})
    return plot_frame, app_frame, capacities
