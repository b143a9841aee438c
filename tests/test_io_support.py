"""Small fixtures shared by the import/export tests (no tests of its own)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from geo.crs import WORKING_EPSG
from geo.io import write_shapefile
from geo.store import create_store

X0, Y0 = 650_000.0, 4_799_000.0  # inside ZONE_ENVELOPE


def sha256(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def plots_frame(
    n: int = 6, *, start: int = 0, x0: float = X0, y0: float = Y0, size: float = 100.0
) -> gpd.GeoDataFrame:
    """``n`` non-overlapping square plots in a row, with every field type filled."""
    xs = x0 + (np.arange(n) + start) * (size + 10)
    geoms = shapely.box(xs, y0, xs + size, y0 + size)
    ids = [f"P-{i + start:03d}" for i in range(n)]
    return gpd.GeoDataFrame(
        {
            "plot_id": ids,
            "cadastre": [f"20-311-{i:03d}" for i in range(n)],
            "status": ["available", "occupied"] * (n // 2) + ["candidate"] * (n % 2),
            "sectors": ["machine,food"] * n,
            "sector": [None, "food"] * (n // 2) + [None] * (n % 2),
            "resident": [None, "ТОО «Алматы Металл»"] * (n // 2) + [None] * (n % 2),
            "project": ["Цех металлоконструкций"] * n,
            "invest": np.linspace(1e6, 2e9, n),
            "jobs": list(range(10, 10 + n)),
            "power_kw": [250.5] * n,
            "water_m3d": [12.25] * n,
            "rail_need": [True, False] * (n // 2) + [True] * (n % 2),
            "hazard": [3] * n,
            "hazard_ok": [4] * n,
            "floor_m2": [5000.0] * n,
            "start_yr": [2026] * n,
            "exp_id": [None] * n,
        },
        geometry=geoms,
        crs=WORKING_EPSG,
    )


def zone_frames() -> dict[str, pd.DataFrame]:
    """One or two features for every public layer, Cyrillic and awkward statuses included."""
    pt = lambda dx, dy: Point(X0 + dx, Y0 + dy)  # noqa: E731
    line = lambda *xy: LineString([(X0 + x, Y0 + y) for x, y in xy])  # noqa: E731
    g = lambda data, geoms: gpd.GeoDataFrame(data, geometry=geoms, crs=WORKING_EPSG)  # noqa: E731
    asset = lambda i, name, status, **kw: {
        "asset_id": i,
        "name": name,
        "status": status,  # noqa: E731
        "since": "2024-05-01",
        "due": None,
        "note": "примечание",
        **kw,
    }
    frames = {
        "zone": g(
            {
                "zone_id": ["AIZ"],
                "name": ["Индустриальная зона Алматы"],
                "operator": ["ТОО «Индустриальная зона Алматы»"],
            },
            [box(X0 - 500, Y0 - 500, X0 + 2500, Y0 + 2000)],
        ),
        # Wide enough that every fixture's plots (up to X0 + 12 km, Y0 + 22 km) lie
        # within the 5 km imports are allowed around the zone and its expansion.
        "expansion": g(
            {"exp_id": ["E1"], "name": ["Расширение"], "status": ["proposed"], "note": [None]},
            [box(X0 + 2600, Y0, X0 + 8000, Y0 + 17_000)],
        ),
        "plots": plots_frame(),
        "roads": g(
            [asset("R1", "ул. Промышленная", "restricted", **{"class": "collector"})],
            [line((0, -50), (2000, -50))],
        ),
        "gates": g([asset("G1", "Северные ворота", "operational")], [pt(0, -100)]),
        "rail_lines": g(
            [asset("RL1", "Подъездной путь", "restricted", kind="spur")],
            [line((0, -200), (1500, -200))],
        ),
        "rail_stations": g(
            [asset("ST1", "Индустриальная", "closed", built_yr=1975)], [pt(100, -220)]
        ),
        "substations": g(
            [asset("SS12", "ПС №12", "under_repair", cap_mva=40.0, load_mva=31.5, kv=110.0)],
            [pt(800, 400)],
        ),
        "power_lines": g(
            [asset("PL1", "ВЛ 10 кВ", "operational", kv=10.0, sub_id="SS12")],
            [line((800, 400), (900, 600))],
        ),
        "water_mains": g(
            [asset("W1", "Водовод", "operational", cap_m3d=5000.0, load_m3d=3200.0, diam_mm=400)],
            [line((0, 300), (1500, 300))],
        ),
        "storm_sewers": g(
            [asset("SW1", "Ливневка 2018", "not_commissioned", diam_mm=800, built_yr=2018)],
            [line((0, 350), (1500, 350))],
        ),
        "gas_mains": g(
            [asset("GM1", "Газопровод", "operational", pressure="medium")],
            [line((0, 380), (1500, 380))],
        ),
        "prot_zones": g(
            [asset("PZ1", "Охранная зона ПС", "operational", kind="substation", width_m=20.0)],
            [Point(X0 + 800, Y0 + 400).buffer(20)],
        ),
        "targets": pd.DataFrame(
            {
                "target_id": ["T1"],
                "name": ["Новые проекты"],
                "metric": ["projects"],
                "value": [30.0],
                "year": [2030],
                "source": ["Акимат"],
            }
        ),
    }
    return frames


def write_folder(folder: Path, frames: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write ``frames`` as ``<layer>.shp`` (tables ``.dbf``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (zone_frames() if frames is None else frames).items():
        write_shapefile(name, frame, folder)
    return folder


def make_store(path: Path, frames: dict[str, pd.DataFrame] | None = None) -> Path:
    """A store at ``path`` holding ``frames`` (default: the small zone)."""
    store = create_store(path, force=True)
    with store.transaction("test") as tx:
        for name, frame in (zone_frames() if frames is None else frames).items():
            tx.insert(name, frame)
    return path


def geojson_text(features: list[dict]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)


def grid_plots(
    n: int,
    *,
    x0: float = X0,
    y0: float = Y0 + 10_000,
    size: float = 20.0,
    gap: float = 2.0,
    prefix: str = "G",
    jitter: float = 0.0,
    seed: int = 0,
) -> gpd.GeoDataFrame:
    """``n`` non-overlapping plots on a square grid (vectorised), optionally jittered
    by up to ``jitter`` metres inside their cells."""
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    xs = x0 + (i % side) * (size + gap)
    ys = y0 + (i // side) * (size + gap)
    if jitter:
        rng = np.random.default_rng(seed)
        xs = xs + rng.uniform(0, min(jitter, gap / 2), n)
        ys = ys + rng.uniform(0, min(jitter, gap / 2), n)
    statuses = np.array(["candidate", "available", "reserved", "allocated", "occupied"])
    return gpd.GeoDataFrame(
        {
            "plot_id": np.char.add(f"{prefix}-", i.astype(str)).astype(object),
            "status": statuses[i % 5].astype(object),
            "sectors": np.full(n, "machine,food", dtype=object),
            "resident": np.where(i % 3 == 0, "ТОО «Сеть»", None).astype(object),
            "jobs": (i % 200).astype("int64"),
            "invest": (i * 1000.0),
            "rail_need": (i % 2 == 0),
            "start_yr": np.full(n, 2027),
        },
        geometry=shapely.box(xs, ys, xs + size, ys + size),
        crs=WORKING_EPSG,
    )


# Fixtures shared by the CLI test modules (imported there by name).
@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A small store built once per module."""
    return make_store(tmp_path_factory.mktemp("tpl") / "zone.gpkg")


@pytest.fixture
def db(template, tmp_path) -> Path:
    """A writable copy of ``template``."""
    path = tmp_path / "zone.gpkg"
    shutil.copy(template, path)
    return path
