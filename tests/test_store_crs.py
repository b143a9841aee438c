"""A store in another UTM zone (EPSG:32642) end to end: ``zoneplan init`` with ZONEPLAN_EPSG,
imports land in the store's CRS, exports default to it, the OGC API serves it as storageCrs."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely
from conftest import PASSWORDS

from geo.crs import transformer
from geo.io import read_file
from geo.store import open_store
from usecases import accounts
from usecases.ogc.metadata import CRS84, crs_uri
from zoneplan.cli import main
from zoneplan.commands.core import SAMPLE_DIR

EPSG = 32642  # UTM 42N: the sample zone (UTM 43N) lies east of its area of use
STORE_CRS = crs_uri(EPSG)
SAMPLE_CRS = crs_uri(32643)
LON, LAT = 76.875, 43.345  # just north-east of the zone: no plot there, within 5 km


def run(*argv: object) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The sample built by ``zoneplan init`` with ``ZONEPLAN_EPSG=32642`` (once per module)."""
    path = tmp_path_factory.mktemp("utm42") / "zone.gpkg"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZONEPLAN_EPSG", str(EPSG))
        mp.setenv("ZONEPLAN_ADMIN_PASSWORD", PASSWORDS["admin"])
        assert run("init", "--db", path) == 0
    store = open_store(path)
    for username in ("planner", "investor"):
        accounts.set_password(store, username, PASSWORDS[username])
    store.close()
    return path


@pytest.fixture
def db(built, tmp_path, monkeypatch) -> Path:
    """A writable copy, opened by the CLI with ``ZONEPLAN_EPSG=32642`` as where it was made."""
    monkeypatch.setenv("ZONEPLAN_EPSG", str(EPSG))
    path = tmp_path / "zone.gpkg"
    shutil.copy2(built, path)
    return path


def sample_plot(plot_id: str) -> shapely.Geometry:
    plots = read_file(SAMPLE_DIR / "plots.shp")
    return plots[plots["plot_id"] == plot_id].geometry.values[0]


def test_init_builds_the_sample_in_the_crs_asked_for(db, capsys):
    assert run("info", "--db", db, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["crs"] == f"EPSG:{EPSG}"
    assert info["layers"]["plots"]["count"] >= 150 and info["layers"]["zone"]["count"] == 1
    lon0, lat0, lon1, lat1 = info["layers"]["zone"]["extent_wgs84"]
    assert 76.8 < lon0 < lon1 < 76.9 and 43.3 < lat0 < lat1 < 43.4
    store = open_store(db)
    assert store.epsg == EPSG
    stored = store.read("plots", where={"plot_id": "P-044"})
    assert stored.crs.to_epsg() == EPSG
    want = shapely.transform(
        sample_plot("P-044"),
        lambda xy: np.column_stack(transformer(32643, EPSG).transform(xy[:, 0], xy[:, 1])),
    )
    assert shapely.equals_exact(stored.geometry.values[0], want, tolerance=1e-6)


def test_a_wgs84_geojson_import_lands_in_the_store_crs(db, tmp_path):
    d = 0.0005
    ring = [[LON, LAT], [LON + d, LAT], [LON + d, LAT + d], [LON, LAT + d], [LON, LAT]]
    feature = {
        "type": "Feature",
        "properties": {"plot_id": "G-1", "status": "available"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    path = tmp_path / "one.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    assert run("import", "plots", path, "--db", db) == 0
    geom = open_store(db).get("plots", "G-1")["geometry"]
    xy = np.column_stack(transformer(4326, EPSG).transform(*np.array(ring).T))
    assert np.allclose(shapely.get_coordinates(geom), xy, atol=1e-6)
    assert geom.centroid.x > 1_000_000  # UTM 42N easting, ~640 km east of its meridian


def test_exports_default_to_the_store_crs(db, tmp_path):
    stored = open_store(db).read("plots").set_index("plot_id").geometry
    gpkg = tmp_path / "plots.gpkg"
    assert run("export", "plots", "--db", db, "--format", "gpkg", "-o", gpkg) == 0
    back = read_file(gpkg, layer="plots").set_index("plot_id")
    assert back.crs.to_epsg() == EPSG
    assert back.geometry.geom_equals_exact(stored.loc[back.index], tolerance=1e-6).all()
    shp = tmp_path / "plots.zip"
    assert run("export", "plots", "--db", db, "--format", "shp", "-o", shp) == 0
    with zipfile.ZipFile(shp) as zf:
        zf.extractall(tmp_path / "shp")
    assert "UTM_Zone_42N" in (tmp_path / "shp" / "plots.prj").read_text()
    back = read_file(tmp_path / "shp" / "plots.shp").set_index("plot_id")
    assert back.crs.to_epsg() == EPSG
    assert back.geometry.geom_equals_exact(stored.loc[back.index], tolerance=1e-6).all()
    out = tmp_path / "plots43.gpkg"
    assert run("export", "plots", "--db", db, "--format", "gpkg", "-o", out, "--crs", 32643) == 0
    back = read_file(out, layer="plots").set_index("plot_id")
    assert back.crs.to_epsg() == 32643
    assert shapely.equals_exact(back.geometry["P-044"], sample_plot("P-044"), tolerance=0.01)


@pytest.fixture
def client(db):
    from web import create_app

    app = create_app(
        {"ZONEPLAN_DB": str(db), "TESTING": True, "SECRET_KEY": "test", "ZONEPLAN_EPSG": EPSG}
    )
    return app.test_client()


def get(client, url: str, status: int = 200):
    response = client.get(url)
    assert response.status_code == status, (url, response.get_data(as_text=True)[:300])
    return response


def test_ogc_serves_the_store_crs_as_storage_crs(client, db):
    offered = {CRS84, crs_uri(4326), STORE_CRS}
    doc = get(client, "/ogc/collections/plots").get_json()
    assert doc["storageCrs"] == STORE_CRS and set(doc["crs"]) == offered
    assert set(get(client, "/ogc/collections").get_json()["crs"]) == offered
    api = get(client, "/ogc/api").get_json()
    enum = api["paths"]["/collections/plots/items"]["get"]["parameters"]
    assert any(STORE_CRS in p.get("schema", {}).get("enum", []) for p in enum)
    lon0, lat0, lon1, lat1 = doc["extent"]["spatial"]["bbox"][0]
    assert 76.8 < lon0 < lon1 < 76.9 and 43.3 < lat0 < lat1 < 43.4
    stored = open_store(db).read("plots", where={"plot_id": "P-044"}).geometry.values[0]
    answer = get(client, f"/ogc/collections/plots/items/P-044?crs={STORE_CRS}")
    assert answer.headers["Content-Crs"] == f"<{STORE_CRS}>"
    xy = np.array(answer.get_json()["geometry"]["coordinates"][0])
    assert np.allclose(xy, shapely.get_coordinates(stored), atol=0.001)
    assert xy[0, 0] > 1_000_000  # metres in UTM 42N, not the sample's UTM 43N
    refused = get(client, f"/ogc/collections/plots/items/P-044?crs={SAMPLE_CRS}", 400)
    assert STORE_CRS in refused.get_data(as_text=True)


def test_ogc_bbox_in_the_store_crs_selects_what_degrees_do(client):
    box = (76.84, 43.32, 76.85, 43.33)
    metres = transformer(4326, EPSG).transform_bounds(*box)
    by_degrees = get(
        client, "/ogc/collections/plots/items?limit=1000&bbox=" + ",".join(map(str, box))
    ).get_json()
    by_metres = get(
        client,
        f"/ogc/collections/plots/items?limit=1000&bbox-crs={STORE_CRS}&bbox="
        + ",".join(f"{v:.3f}" for v in metres),
    ).get_json()
    ids = {f["id"] for f in by_degrees["features"]}
    assert ids and {f["id"] for f in by_metres["features"]} == ids
