"""Synthetic stores for the benchmarks (the data is synthetic: a jittered grid of square plots
around the sample zone), built the way users build them: ``zoneplan init`` and
``zoneplan import`` (every check, versions and audit) on either backend.

The grid is centred on the sample zone with a hole over the sample's own plots and expansion
areas (so no synthetic plot overlaps a stored one) and a bench expansion area around it all
(imports must lie within 5 km of the zone or an expansion area). Up to ~120k plots the pitch
is 90 m (40-85 m squares, 0.16-0.72 ha); beyond, the grid shrinks to fit the 50 km envelope
the zone's CRS checks allow (1M plots: 44.8 m pitch).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

ROOT = Path(__file__).resolve().parents[1]
ZONEPLAN = ROOT / ".venv" / "bin" / "zoneplan"
CENTRE = (650_050.0, 4_798_750.0)
#: The sample's plots and expansion areas, with a margin: no synthetic plot here.
HOLE = (648_000.0, 4_797_000.0, 652_000.0, 4_800_500.0)
STATUSES = np.array(
    ["available", "available", "available", "reserved", "occupied", "candidate", "allocated"],
    dtype=object,
)
SECTOR_SETS = np.array(
    ["*", "machine,food", "food,light,logistics", "chemicals,energy", "materials,machine"],
    dtype=object,
)


@dataclass(frozen=True)
class Grid:
    """Where ``n`` synthetic plots lie: ``side`` x ``side`` cells of ``pitch`` metres."""

    n: int
    side: int
    pitch: float
    x0: float
    y0: float

    @classmethod
    def of(cls, n: int) -> Grid:
        side = math.ceil(math.sqrt(n * 1.02)) + 1
        while True:  # small grids grow until the cells outside the hole hold n plots
            pitch = min(90.0, math.floor(45_000.0 / side * 10) / 10)
            grid = cls(n, side, pitch, CENTRE[0] - side * pitch / 2, CENTRE[1] - side * pitch / 2)
            if grid._outside_hole().sum() >= n:
                return grid
            side += 1 + side // 50

    def _outside_hole(self) -> np.ndarray:
        i = np.arange(self.side * self.side)
        x = self.x0 + (i % self.side) * self.pitch
        y = self.y0 + (i // self.side) * self.pitch
        return ~(
            (x + self.pitch > HOLE[0]) & (x < HOLE[2]) & (y + self.pitch > HOLE[1]) & (y < HOLE[3])
        )

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        span = self.side * self.pitch
        return self.x0, self.y0, self.x0 + span, self.y0 + span

    def cells(self) -> np.ndarray:
        """The first ``n`` cell numbers outside the hole, row by row."""
        i = np.arange(self.side * self.side)
        cells = i[self._outside_hole()][: self.n]
        assert len(cells) == self.n, "grid too small"
        return cells


def plots(grid: Grid, seed: int = 11) -> gpd.GeoDataFrame:
    """The ``n`` plots, ids ``S-0000000``..., seven statuses, five sector sets (vectorised)."""
    cells = grid.cells()
    n = len(cells)
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.44, 0.94, n) * grid.pitch
    xs = grid.x0 + (cells % grid.side) * grid.pitch + rng.uniform(0, grid.pitch - w)
    ys = grid.y0 + (cells // grid.side) * grid.pitch + rng.uniform(0, grid.pitch - w)
    i = np.arange(n)
    return gpd.GeoDataFrame(
        {
            "plot_id": np.char.add("S-", np.char.zfill(i.astype(str), 7)).astype(object),
            "cadastre": np.char.add("20-311-", i.astype(str)).astype(object),
            "status": STATUSES[i % len(STATUSES)],
            "sectors": SECTOR_SETS[(i // 3) % len(SECTOR_SETS)],
            "resident": np.where(i % 5 == 4, "ТОО «Алатау Индастри»", None).astype(object),
            "power_kw": np.round(rng.uniform(50, 3000, n), 1),
            "water_m3d": np.round(rng.uniform(1, 150, n), 1),
            "rail_need": i % 7 == 0,
        },
        geometry=shapely.box(xs, ys, xs + w, ys + w),
        crs=32643,
    )


def write_files(grid: Grid, folder: Path) -> tuple[Path, Path]:
    """The plots as a GeoPackage and the bench expansion area as GeoJSON (made once)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"synthetic_plots_{grid.n}.gpkg"
    if not path.exists():
        part = path.with_suffix(f".{os.getpid()}.part.gpkg")
        pyogrio.write_dataframe(plots(grid), part, layer="plots", use_arrow=True)
        os.replace(part, path)
    x0, y0, x1, y1 = grid.bounds
    area = gpd.GeoDataFrame(
        {"exp_id": ["EXP-BENCH"], "name": ["Synthetic benchmark area"], "status": ["approved"]},
        geometry=[shapely.box(x0 - 10, y0 - 10, x1 + 10, y1 + 10)],
        crs=32643,
    )
    exp = folder / f"synthetic_expansion_{grid.n}.gpkg"
    if not exp.exists():  # written aside then renamed: builds may run side by side
        part = exp.with_suffix(f".{os.getpid()}.part.gpkg")
        pyogrio.write_dataframe(area, part, layer="expansion")
        os.replace(part, exp)
    return path, exp


def zoneplan(*args: str, db: str) -> float:
    """Run one ``zoneplan`` command on ``db``; its wall time in seconds."""
    t = time.perf_counter()
    proc = subprocess.run(
        [str(ZONEPLAN), *args, "--db", db], cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode:
        raise RuntimeError(f"zoneplan {' '.join(args)}: {proc.stderr[-3000:]}")
    return time.perf_counter() - t


def build(db: str, n: int, folder: Path) -> dict[str, Any]:
    """A store at ``db`` (GeoPackage path or PostGIS URL): the sample zone, the bench
    expansion area and ``n`` synthetic plots, all through the command line."""
    grid = Grid.of(n)
    plots_file, exp_file = write_files(grid, folder)
    zoneplan("init", "--force", db=db)
    zoneplan("import", "expansion", str(exp_file), db=db)
    seconds = zoneplan("import", "plots", str(plots_file), db=db)
    return {
        "plots": n,
        "pitch_m": grid.pitch,
        "cli_import_s": round(seconds, 1),
        "cli_import_rows_per_s": round(n / seconds),
        "load_average": os.getloadavg(),
    }


if __name__ == "__main__":
    # python benchmarks/synth.py DB N [FOLDER]: build one store, print the import timing
    target, count = sys.argv[1], int(sys.argv[2])
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else ROOT / "benchmarks" / "out" / "synth"
    print(json.dumps(build(target, count, out)))
