"""The committed sample zone: files, schema, geometry, seed facts and reproducibility."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapefile  # pyshp
import shapely
from pyproj import CRS, Geod

from geo.layers import FEATURE_LAYERS, PLOT_STATUSES, SECTORS, get_layer
from geo.validate import check_geometries, coerce_attributes, overlaps, single_part

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "shapefiles"
APPS = ROOT / "data" / "applications.csv"
DBF_TYPE = {"str": "C", "int": "N", "float": "N", "bool": "L", "date": "D", "datetime": "C"}
THREE = ("Asia Steel Pipe Corporation", "BRB APK", "Valtherm")


@pytest.fixture(scope="module")
def layers() -> dict:
    out = {name: pyogrio.read_dataframe(DATA / f"{name}.shp") for name in FEATURE_LAYERS}
    for name, frame in out.items():
        frame["geometry"] = single_part(frame.geometry)
    out["targets"] = pyogrio.read_dataframe(DATA / "targets.dbf", read_geometry=False)
    return out


def _shp_reader(name: str) -> shapefile.Reader:
    if name == "targets":
        return shapefile.Reader(dbf=open(DATA / "targets.dbf", "rb"), encoding="utf-8")
    return shapefile.Reader(str(DATA / f"{name}.shp"), encoding="utf-8")


def _pyshp_frame(name: str) -> pd.DataFrame:
    with _shp_reader(name) as reader:
        names = [f.name for f in reader.fields[1:]]
        return pd.DataFrame([list(r) for r in reader.records()], columns=names)


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("name", FEATURE_LAYERS)
def test_shapefile_parts_prj_and_cpg(name):
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        assert (DATA / f"{name}{ext}").is_file(), f"{name}{ext} missing"
    prj = (DATA / f"{name}.prj").read_text()
    assert "UTM_Zone_43N" in prj
    assert CRS.from_wkt(prj).utm_zone == "43N"
    assert CRS.from_wkt(prj).to_epsg(min_confidence=50) == 32643
    assert (DATA / f"{name}.cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
    assert pyogrio.read_info(DATA / f"{name}.shp")["crs"] == "EPSG:32643"


def test_targets_is_a_plain_dbf():
    assert (DATA / "targets.dbf").is_file()
    assert not (DATA / "targets.shp").exists()


@pytest.mark.parametrize("name", FEATURE_LAYERS + ("targets",))
def test_dbf_field_types_read_by_pyshp(name):
    with _shp_reader(name) as reader:
        kinds = {f.name: str(f.field_type).split(".")[-1] for f in reader.fields[1:]}
    for fld in get_layer(name).input_fields:
        assert fld.name in kinds, f"{name}.{fld.name} missing"
        assert kinds[fld.name] == DBF_TYPE[fld.type], f"{name}.{fld.name}: {kinds[fld.name]}"


@pytest.mark.parametrize("name", FEATURE_LAYERS + ("targets",))
def test_attributes_and_geometries_validate(layers, name):
    layer = get_layer(name)
    for frame in (layers[name], _pyshp_frame(name)):
        typed, problems = coerce_attributes(layer, frame)
        assert problems == [], problems[:5]
        assert len(typed) > 0
    if layer.is_feature:
        frame = layers[name]
        ids = frame[layer.key].tolist()
        assert check_geometries(layer, frame.geometry.values, ids) == []


def test_cyrillic_survives(layers):
    roads = _pyshp_frame("roads")
    assert "ул. Промышленная" in set(roads["name"])
    assert "ул. Промышленная" in set(layers["roads"]["name"])
    residents = layers["plots"]["resident"].dropna()
    assert (residents.str.startswith("ТОО «")).sum() >= 10
    assert layers["zone"]["name"].iloc[0].startswith("Индустриальная зона Алматы")


# --------------------------------------------------------------------------- zone, plots


def test_zone_area_planar_and_geodesic(layers):
    zone = layers["zone"]
    assert len(zone) == 1
    assert zone["operator"].iloc[0] == "Industrial Zone Almaty LLP"
    geom = zone.geometry.iloc[0]
    ha = geom.area / 1e4
    assert 470 <= ha <= 510
    lonlat = zone.to_crs(4326).geometry.iloc[0]
    geodesic = abs(Geod(ellps="WGS84").geometry_area_perimeter(lonlat)[0]) / 1e4
    assert abs(ha - geodesic) / geodesic < 0.005
    c = lonlat.centroid
    assert abs(c.y - 43.33) < 0.02 and abs(c.x - 76.85) < 0.02


def test_expansion_touches_zone(layers):
    zone = layers["zone"].geometry.iloc[0]
    exp = layers["expansion"]
    assert len(exp) >= 2
    assert set(exp["status"]) == {"proposed", "approved"}
    assert 180 <= exp.geometry.area.sum() / 1e4 <= 220
    for geom in exp.geometry:
        assert geom.intersection(zone).area <= 1.0
        assert geom.distance(zone) < 0.01
        assert geom.boundary.intersection(zone.boundary).length > 100.0
    assert overlaps(exp.geometry) == []


def test_plots(layers):
    plots = layers["plots"]
    zone = layers["zone"].geometry.iloc[0]
    exp = layers["expansion"].set_index("exp_id").geometry
    ha = plots.geometry.area / 1e4
    assert ha.between(0.3, 25).all(), plots.loc[~ha.between(0.3, 25), "plot_id"].tolist()
    assert overlaps(plots.geometry) == []
    assert overlaps(plots.geometry, layers["prot_zones"].geometry) == []
    in_zone = plots["exp_id"].isna()
    assert in_zone.sum() >= 150
    for geom, exp_id in zip(plots.geometry, plots["exp_id"]):
        home = zone if pd.isna(exp_id) else exp[exp_id]
        assert geom.difference(home).area <= 1.0
    roads = shapely.union_all(layers["roads"].geometry.values)
    rails = shapely.union_all(layers["rail_lines"].geometry.values)
    assert not plots.geometry.intersects(roads).any(), "a plot straddles a road"
    assert not plots.geometry.intersects(rails).any(), "a plot straddles a track"
    gap = plots.geometry[in_zone].distance(roads)
    assert (gap <= 25.0).all(), plots.loc[gap[gap > 25].index, "plot_id"].tolist()
    assert set(plots["status"]) == set(PLOT_STATUSES)
    assert 40 <= (plots["status"] == "available").sum() <= 70
    cand = plots[plots["exp_id"].notna()]
    assert 15 <= len(cand) <= 25
    assert (cand["status"] == "candidate").all()
    assert ha[cand.index].between(0.5, 5).all()
    used = plots[plots["status"].isin(["occupied", "allocated"])]
    assert set(used["sector"]) == set(SECTORS)
    for col in (
        "resident",
        "project",
        "sector",
        "invest",
        "jobs",
        "power_kw",
        "water_m3d",
        "rail_need",
        "hazard",
        "floor_m2",
        "start_yr",
    ):
        assert used[col].notna().all(), col
    avail = plots[plots["status"] == "available"]
    assert avail["sectors"].nunique() >= 3 and avail["hazard_ok"].nunique() >= 3
    assert ha[avail.index].max() > 10 and ha[avail.index].min() < 1
    assert plots["plot_id"].str.fullmatch(r"P-\d{3}").all()
    cad = plots["cadastre"].dropna()
    assert len(cad) >= 150 and cad.str.fullmatch(r"20-321-\d{3}-\d{3}").all()


def test_seed_projects(layers):
    plots = layers["plots"].set_index("resident", drop=False)
    auto = plots[plots["project"].fillna("").str.contains("seats")].iloc[0]
    assert auto["status"] == "allocated" and auto["start_yr"] == 2022
    assert "multimedia" in auto["project"]
    steel = plots.loc["Asia Steel Pipe Corporation"]
    assert steel["status"] == "occupied" and bool(steel["rail_need"])
    assert "100 kt" in steel["project"]
    green = plots[plots["resident"].fillna("").str.startswith("BRB APK")].iloc[0]
    assert green["status"] == "occupied" and "7.2 kt" in green["project"]
    valtherm = plots.loc["Valtherm"]
    assert valtherm["status"] == "allocated" and "20 M" in valtherm["project"]
    three = plots[plots["resident"].fillna("").str.startswith(THREE)]
    assert len(three) == 3
    assert three["invest"].sum() == 71_500_000_000
    assert three["jobs"].sum() > 1200


# --------------------------------------------------------------------------- networks


def _endpoint_graph(lines) -> tuple[dict, list]:
    """Union-find over line end points; returns (find, endpoint key pairs)."""
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    pairs = []
    for geom in lines:
        a, b = (tuple(np.round(geom.coords[0], 3)), tuple(np.round(geom.coords[-1], 3)))
        parent[find(a)] = find(b)
        pairs.append((a, b))
    return find, pairs


def test_roads_noded_connected_and_gated(layers):
    roads = layers["roads"]
    assert set(roads["class"]) == {"arterial", "collector", "local", "access"}
    find, pairs = _endpoint_graph(roads.geometry)
    assert len({find(a) for a, _ in pairs}) == 1, "road network is not connected"
    geoms = roads.geometry.values
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    for i, j in zip(left, right):
        if i >= j:
            continue
        meet = shapely.intersection(geoms[i], geoms[j])
        ends = {
            tuple(np.round(c, 3)) for g in (geoms[i], geoms[j]) for c in (g.coords[0], g.coords[-1])
        }
        pts = [meet] if meet.geom_type == "Point" else list(getattr(meet, "geoms", []))
        assert pts and all(
            p.geom_type == "Point" and tuple(np.round(p.coords[0], 3)) in ends for p in pts
        ), (roads["asset_id"][i], roads["asset_id"][j])
    names = set(roads["name"])
    assert any(any("\u0400" <= ch <= "\u04ff" for ch in n) for n in names)
    gates = layers["gates"]
    assert 3 <= len(gates) <= 4
    zone = layers["zone"].geometry.iloc[0]
    ends = {p for pair in pairs for p in pair}
    for g in gates.geometry:
        assert tuple(np.round(g.coords[0], 3)) in ends
        assert g.distance(zone.exterior) < 0.01


def test_rail_topology(layers):
    rail = layers["rail_lines"]
    stations = layers["rail_stations"]
    spur = rail[rail["name"].str.contains("Rail Access Road")]
    assert len(spur) == 1 and spur["kind"].iloc[0] == "spur"
    assert spur["status"].iloc[0] == "restricted"
    assert str(spur["due"].iloc[0])[:10] == "2022-10-30"
    assert "violations" in spur["note"].iloc[0] and str(spur["since"].iloc[0])[:4] == "2018"
    sidings = rail[rail["kind"] == "siding"]
    assert 2 <= len(sidings) <= 4 and (sidings["status"] == "operational").all()
    main = rail[rail["kind"] == "mainline"]
    assert (main["status"] == "operational").all()
    zone = layers["zone"].geometry.iloc[0]
    assert 0 < shapely.union_all(main.geometry.values).distance(zone) < 400

    def connected(lines) -> bool:
        find, _ = _endpoint_graph(lines.geometry)
        roots_main = {find(tuple(np.round(g.coords[k], 3))) for g in main.geometry for k in (0, -1)}
        return all(find(tuple(np.round(g.coords[0], 3))) in roots_main for g in sidings.geometry)

    assert connected(rail), "sidings must reach the mainline through the spur"
    usable = rail[~rail["status"].isin(["restricted", "closed"])]
    assert not connected(usable), "sidings reach the mainline without the restricted spur"
    # lines meet only at shared end points: a builder that nodes every crossing
    # must not find a way round the spur
    geoms = rail.geometry.values
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            meet = shapely.intersection(geoms[i], geoms[j])
            if meet.is_empty:
                continue
            ends = {
                tuple(np.round(c, 3))
                for g in (geoms[i], geoms[j])
                for c in (g.coords[0], g.coords[-1])
            }
            pts = [meet] if meet.geom_type == "Point" else list(getattr(meet, "geoms", []))
            assert all(
                p.geom_type == "Point" and tuple(np.round(p.coords[0], 3)) in ends for p in pts
            ), (rail["asset_id"][i], rail["asset_id"][j])
            assert min(geoms[i].distance(g) for g in (geoms[j],)) == 0
    # the station sits where the spur ends and the sidings begin
    st = stations.geometry.iloc[0]
    spur_end = {
        tuple(np.round(c, 3))
        for c in (spur.geometry.iloc[0].coords[0], spur.geometry.iloc[0].coords[-1])
    }
    assert tuple(np.round(st.coords[0], 3)) in spur_end
    for g in sidings.geometry:
        assert tuple(np.round(g.coords[0], 3)) == tuple(np.round(st.coords[0], 3))
    # plots next to the sidings exist: they gain rail access once the spur opens
    near = layers["plots"].geometry.distance(shapely.union_all(sidings.geometry.values)) < 20
    assert near.sum() >= 10


def test_seed_infrastructure(layers):
    st = layers["rail_stations"].iloc[0]
    assert "Industrialnaya" in st["name"] and st["built_yr"] == 2017
    assert st["status"] == "closed" and str(st["due"])[:10] == "2022-10-30"
    assert "derailment" in st["note"]
    subs = layers["substations"].set_index("asset_id")
    assert 4 <= len(subs) <= 6
    assert subs.loc["SS-12", "status"] == "under_repair"
    assert str(subs.loc["SS-12", "due"])[:10] == "2022-10-30"
    assert "cracks" in subs.loc["SS-12", "note"]
    assert (subs["load_mva"] <= subs["cap_mva"]).all()
    op = subs[subs["status"] == "operational"]
    assert ((op["cap_mva"] - op["load_mva"]) / op["cap_mva"] < 0.25).any(), "no tight headroom"
    planned = subs[subs["status"] == "planned"]
    assert len(planned) == 1
    exp = shapely.union_all(layers["expansion"].geometry.values)
    assert exp.contains(planned.geometry.iloc[0])
    lines = layers["power_lines"]
    assert set(lines["sub_id"]) <= set(subs.index)
    storm = layers["storm_sewers"]
    assert (storm["status"] == "not_commissioned").all() and storm["due"].isna().all()
    assert (storm["built_yr"] == 2018).all()
    assert storm["note"].str.contains("contractor").all()
    assert layers["water_mains"]["cap_m3d"].ge(layers["water_mains"]["load_m3d"]).all()
    assert set(layers["gas_mains"]["pressure"]) <= {"low", "medium", "high"}
    prot = layers["prot_zones"]
    assert {"substation", "rail"} <= set(prot["kind"]) and prot["width_m"].gt(0).all()


def test_targets(layers):
    t = layers["targets"].set_index("metric")
    assert t.loc["projects", "value"] == 13 and t.loc["projects", "year"] == 2022
    assert t.loc["invest", "value"] == 13_300_000_000 and t.loc["invest", "year"] == 2022
    assert t.loc["parks", "value"] == 40 and t.loc["parks", "year"] == 2025
    assert t.loc["floor_m2", "value"] == 250_000 and t.loc["floor_m2", "year"] == 2025
    assert t["source"].str.contains("April 2022").all()


def test_applications(layers):
    apps = pd.read_csv(APPS, dtype=str, keep_default_na=False)
    assert list(apps.columns) == [f.name for f in get_layer("applications").input_fields]
    assert 25 <= len(apps) <= 35
    typed, problems = coerce_attributes(get_layer("applications"), apps)
    assert problems == [], problems[:5]
    assert (typed["status"] == "submitted").all() and (typed["investor"] == "investor").all()
    plots = layers["plots"].set_index("plot_id")
    asked = typed["plot_id"].dropna()
    assert (plots.loc[asked, "status"] == "available").all()
    assert asked.value_counts().max() >= 3, "no plot is contested"
    assert (typed["min_ha"] <= typed["max_ha"]).all()
    subs = layers["substations"]
    op = subs[subs["status"] == "operational"]
    headroom_mw = float((op["cap_mva"] - op["load_mva"]).sum()) * 0.9  # power factor
    assert typed["power_kw"].sum() / 1000 > 1.3 * headroom_mw, "power should bind"


# --------------------------------------------------------------------------- determinism


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location(
        "make_sample", ROOT / "scripts" / "make_sample.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_sample"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_files_hold_what_build_sample_built(generator, layers):
    sample = generator.build_sample()
    for name in FEATURE_LAYERS + ("targets",):
        layer = get_layer(name)
        built = sample[name]
        assert list(built.columns[: len(layer.input_fields)]) == [
            f.name for f in layer.input_fields
        ]
        typed_built, problems = coerce_attributes(layer, built)
        assert problems == []
        typed_read, _ = coerce_attributes(layer, layers[name])
        for fld in layer.input_fields:
            a, b = typed_built[fld.name].tolist(), typed_read[fld.name].tolist()
            if fld.type == "float":
                assert np.allclose(
                    np.array(a, dtype=float), np.array(b, dtype=float), rtol=1e-12, equal_nan=True
                ), (name, fld.name)
            else:
                assert a == b, (name, fld.name)  # no truncated text, no lost Cyrillic
        if layer.is_feature:
            assert built.crs.to_epsg() == 32643
            assert np.allclose(built.geometry.area, layers[name].geometry.area, atol=1e-3)


def test_generator_is_deterministic_and_committed_files_are_current(generator, tmp_path):
    module = generator
    out = tmp_path / "shp"
    assert module.main(["--out", str(out), "--applications", str(tmp_path / "apps.csv")]) == 0
    produced = sorted(p.name for p in out.iterdir())
    committed = sorted(p.name for p in DATA.iterdir())
    assert produced == committed
    for name in produced:
        assert _digest(out / name) == _digest(DATA / name), f"{name} differs: regenerate"
    assert _digest(tmp_path / "apps.csv") == _digest(APPS)
