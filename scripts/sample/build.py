"""Building the whole sample, placing it in UTM 43N and writing the files."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import affinity

from geo.io import write_shapefile
from geo.layers import FEATURE_LAYERS, get_layer
from scripts.sample.assets import asset_layers
from scripts.sample.attributes import plot_attributes
from scripts.sample.frame import CENTRE, DBF_DATE, EPSG, OPERATOR, ROTATION_DEG, SEED, zone_shapes
from scripts.sample.plots import cut_candidate_plots, cut_zone_plots
from scripts.sample.tables import make_applications, make_targets


def _to_utm(frame: gpd.GeoDataFrame, offset: tuple[float, float]) -> gpd.GeoDataFrame:
    a = math.radians(ROTATION_DEG)
    c, s = math.cos(a), math.sin(a)
    matrix = [c, -s, s, c, offset[0], offset[1]]
    geoms = np.array(
        [affinity.affine_transform(gm, matrix) for gm in frame.geometry.values], dtype=object
    )
    return frame.set_geometry(gpd.GeoSeries(geoms, crs=EPSG, index=frame.index))


def _frame(layer: str, records: list[dict]) -> gpd.GeoDataFrame:
    cols = [f.name for f in get_layer(layer).input_fields]
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in records], columns=cols)
    df = df.astype(object).where(pd.notna(df), None)
    return gpd.GeoDataFrame(df, geometry=[r["geometry"] for r in records], crs=EPSG)


def build_sample() -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    """Build the synthetic zone: every feature layer, ``targets`` and ``applications``.

    Returns
    -------
    dict
        Layer name -> GeoDataFrame in EPSG:32643 (columns: the layer's input
        fields and ``geometry``); ``targets`` and ``applications`` -> DataFrame.
    """
    rng = np.random.default_rng(SEED)
    g = zone_shapes(rng)
    zone_plots, _ = cut_zone_plots(rng, g)
    cand = cut_candidate_plots(rng, g)
    plot_recs = plot_attributes(rng, zone_plots, cand, g)
    layers: dict = {}
    layers["zone"] = _frame(
        "zone",
        [
            dict(
                zone_id="IZA",
                name="Индустриальная зона Алматы / Almaty Industrial Zone",
                operator=OPERATOR,
                geometry=g["zone"],
            )
        ],
    )
    layers["expansion"] = _frame(
        "expansion",
        [
            dict(
                exp_id="EXP-1",
                name="Южное расширение / Southern extension",
                status="approved",
                note="approved extension; candidate plots laid out, no roads yet",
                geometry=g["e1"],
            ),
            dict(
                exp_id="EXP-2",
                name="Восточное расширение / Eastern extension",
                status="proposed",
                note="proposed extension discussed at the April 2022 meeting; not subdivided",
                geometry=g["e2"],
            ),
        ],
    )
    layers["plots"] = _frame("plots", plot_recs)
    for name, recs in asset_layers(g, rng).items():
        layers[name] = _frame(name, recs)

    # place everything: rotate about the local origin, then move the zone centroid to CENTRE
    a = math.radians(ROTATION_DEG)
    cx, cy = g["zone"].centroid.x, g["zone"].centroid.y
    rx, ry = cx * math.cos(a) - cy * math.sin(a), cx * math.sin(a) + cy * math.cos(a)
    offset = (round(CENTRE[0] - rx, 2), round(CENTRE[1] - ry, 2))
    out = {name: _to_utm(layers[name], offset) for name in FEATURE_LAYERS}
    rail = shapely.union_all(
        out["rail_lines"].geometry[out["rail_lines"]["kind"] == "siding"].values
    )
    plots = out["plots"].copy()
    plots["sectors"] = plots["sectors"].fillna("*")
    out["targets"] = make_targets()
    out["applications"] = make_applications(rng, plots, rail)
    return out


def _fix_dbf_date(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.seek(1)
        fh.write(DBF_DATE)


def write_sample(sample: dict, out_dir: Path, applications: Path | None) -> list[Path]:
    """Write every layer of ``sample`` to ``out_dir`` (and the applications CSV)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FEATURE_LAYERS:
        frame = sample[name]
        if get_layer(name).has("area_ha"):
            frame = frame.assign(area_ha=np.round(frame.geometry.area.to_numpy() / 1e4, 4))
        for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            (out_dir / f"{name}{ext}").unlink(missing_ok=True)
        written.append(write_shapefile(name, frame, out_dir))
        _fix_dbf_date(out_dir / f"{name}.dbf")
    for ext in (".dbf", ".cpg", ".shp", ".shx"):
        (out_dir / f"targets{ext}").unlink(missing_ok=True)
    write_shapefile("targets", sample["targets"], out_dir)
    _fix_dbf_date(out_dir / "targets.dbf")
    written.append(out_dir / "targets.dbf")
    (out_dir / "README.md").write_text(_readme(sample), encoding="utf-8")
    if applications is not None:
        applications.parent.mkdir(parents=True, exist_ok=True)
        apps = sample["applications"].copy()
        apps["rail_need"] = apps["rail_need"].map({True: "true", False: "false"})
        apps.to_csv(applications, index=False, encoding="utf-8", lineterminator="\n")
        written.append(applications)
    return written


def _readme(sample: dict) -> str:
    plots = sample["plots"]
    counts = "\n".join(
        f"| `{name}` | {get_layer(name).geometry} | {len(sample[name])} |"
        for name in FEATURE_LAYERS
    )
    status_counts = ", ".join(
        f"{s} {int((plots['status'] == s).sum())}"
        for s in ("candidate", "available", "reserved", "allocated", "occupied")
    )
    zone_ha = float(sample["zone"].geometry.area.iloc[0] / 1e4)
    exp_ha = float(sample["expansion"].geometry.area.sum() / 1e4)
    by_res = plots.set_index("resident")
    seeds = [
        "Asia Steel Pipe Corporation",
        "BRB APK (ТОО «BRB АПК»)",
        "Valtherm",
        "ТОО «Алматы Автокомпонент»",
    ]
    seed_ids = {r: by_res.loc[r, "plot_id"] for r in seeds}
    sidings = sample["rail_lines"][sample["rail_lines"]["kind"] == "siding"]
    near = plots.geometry.distance(shapely.union_all(sidings.geometry.values)) < 25.0
    station = sample["rail_stations"].geometry.iloc[0]
    by_station = plots.assign(d=plots.geometry.distance(station)).nsmallest(4, "d")
    subs = "\n".join(
        f"| {r.asset_id} | {r['name']} | {r.status} | {r.cap_mva:g} | {r.load_mva:g} | "
        f"{r.due or ''} |"
        for _, r in sample["substations"].iterrows()
    )
    return README.format(
        rail_plots=", ".join(plots.loc[near, "plot_id"]),
        station_plots=", ".join(by_station["plot_id"]),
        subs=subs,
        counts=counts,
        status_counts=status_counts,
        zone_ha=zone_ha,
        exp_ha=exp_ha,
        n_zone=int(plots["exp_id"].isna().sum()),
        n_cand=int(plots["exp_id"].notna().sum()),
        seed=SEED,
        steel=seed_ids[seeds[0]],
        greenhouse=seed_ids[seeds[1]],
        valtherm=seed_ids[seeds[2]],
        auto=seed_ids[seeds[3]],
        n_apps=len(sample["applications"]),
        n_targets=len(sample["targets"]),
    )


README = """# Sample zone: a SYNTHETIC Almaty Industrial Zone

**These data are synthetic.** No surveyed boundary, cadastre, network or company record
was used. The shapes and attributes are generated by `scripts/make_sample.py` (seeded
numpy generator, seed {seed}) and are modelled on the facts of the akimat's news item
of 8 April 2022 (`/work/shared/seed/`). Where the news gives no number, the number is
invented and only meant to be plausible. Company names other than the four named in the
news are invented.

## Regenerate

```
.venv/bin/python scripts/make_sample.py            # writes data/shapefiles/ and data/applications.csv
.venv/bin/python scripts/make_sample.py --out /tmp/zone --applications /tmp/zone/applications.csv
```

Same bytes on every run (the DBF "last update" header date is pinned to 2022-04-08).

## CRS and encoding

EPSG:32643, WGS 84 / UTM zone 43N (metres); every `.prj` says so. Attribute text is
UTF-8 (`.cpg` = `UTF-8`); Cyrillic names survive. Fields, types and vocabularies are those
of `geo/layers.py`; dates are DBF dates, booleans DBF logicals. `area_ha` is filled for
convenience (the store recomputes it).

## Layers

| file | geometry | features |
|---|---|---|
{counts}
| `targets.dbf` | table (no geometry) | {n_targets} |

`data/applications.csv`: {n_apps} synthetic pending investor applications (status `submitted`).

## Seed facts and how they are encoded

| fact (news item, 8 April 2022) | encoding |
|---|---|
| Zone of ~490 ha in the Alatau district, NW of the centre | `zone` IZA, {zone_ha:.1f} ha, centroid at 43.33 N 76.85 E (649 980 E, 4 799 120 N) |
| One operator, Industrial Zone Almaty LLP (one-stop shop) | `zone.operator` |
| Plans to expand the territory | `expansion` EXP-1 (approved, {n_cand} candidate plots, no roads yet) and EXP-2 (proposed), {exp_ha:.1f} ha together, touching the zone |
| Auto-components plant (seats, plastic parts, accessories, multimedia), construction from autumn 2022 | plot {auto}, status `allocated`, `start_yr` 2022 |
| Asia Steel Pipe Corporation, large-diameter welded pipe, 100 kt/yr, export to neighbours | plot {steel}, `occupied`, `rail_need` true, next to siding SD-1 |
| BRB APK greenhouse complex, 7.2 kt vegetables/yr | plot {greenhouse}, `occupied` |
| Valtherm radiator plant under construction, 20 M units/yr | plot {valtherm}, `allocated` |
| 71.5 bn tenge invested, >1,200 jobs in these three projects | `invest` 38.0 + 21.0 + 12.5 bn = 71.5 bn; `jobs` 520 + 430 + 290 = 1 240 (the split is illustrative) |
| Industrialnaya station, built 2017, closed by the transport control inspectorate (derailment threat), to be put into operation by 30 October | `rail_stations` RST-1, `built_yr` 2017, `closed`, `due` 2022-10-30 |
| Rail Access Road accepted with violations in 2018, same deadline | `rail_lines` RS-1 (`spur`), `restricted` since 2018-12-20, `due` 2022-10-30; sidings SD-1..3 reach the Turksib mainline (ML-1/ML-2) only through RS-1 and the station, so as recorded no plot has rail access; once both count as operational (as of 2022-11-01) the plots along the sidings do |
| Storm sewer built 2018, never put into operation; contractor audit | `storm_sewers`, `built_yr` 2018, `not_commissioned`, no `due` |
| Substation No. 12, cracks from soil subsidence, repair due 30 October | `substations` SS-12, `under_repair`, `due` 2022-10-30 |
| 13 projects / 13.3 bn tenge this year; 40 industrial parks, 250 000 m2 by 2025 | `targets` T-01..T-04 |

## Conventions of the sample

- Plot statuses: {status_counts}. Zone plots: {n_zone}, each fronting a road (boundary
  within 25 m of a road centreline); plots never overlap each other or a protection zone.
- All eight sector codes occur among occupants; `sectors` is `*` (any) or a code list.
- Hazard classes run 1 (least) .. 5 (most hazardous); a plot accepts projects with
  `hazard <= hazard_ok`. Application `priority` runs 1 (low) .. 5 (high).
- Substation `cap_mva` is the installed total (e.g. 2 x 25 MVA = 50), `load_mva` the
  present load of its occupied consumers and city feeders.

## Where things are

- Zone: a stepped, slightly rotated block of streets (7 north-south, 5 east-west,
  jittered); arterials are Industrial Avenue (north-south) and Central Avenue
  (east-west); the perimeter ring is collector class. Gates G-1 (west), G-2 (south,
  towards EXP-1), G-3 (east), G-4 (north) sit where the arterial approaches end on the fence.
- Rail: the Turksib mainline (ML-1/ML-2, split at the junction) runs ~150 m north of the
  zone. The Rail Access Road RS-1 leaves it at the junction west of the zone and curves
  into the top row of blocks to Industrialnaya station RST-1 (nearest plots:
  {station_plots}). Sidings SD-1 (south, two blocks), SD-2 (east, then south) and SD-3
  (west, then south) start at the station. Plots within 25 m of a siding:
  {rail_plots}.
- Expansion: EXP-1 (approved) lies south of the zone beyond gate G-2, with the candidate
  plots next to the zone and the planned substation SS-30; EXP-2 (proposed) fills the
  zone's north-east notch.

| substation | name | status | cap, MVA | load, MVA | due |
|---|---|---|---|---|---|
{subs}

Power headroom is tight at SS-14 (11.3 MVA, nearly all of it promised to the allocated
plots it feeds, the Valtherm plant among them) and SS-12 gives none until repaired.
"""
