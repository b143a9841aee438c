"""The JSON API's files through the test client: filtered and layer exports (shapefile,
GeoPackage; roles, Cyrillic) and uploads (preview, apply in one transaction, refusals)."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile

import pytest
import shapefile  # pyshp: an independent reader
from test_api import ids, token


@pytest.fixture
def planner(store):
    return token(store, "planner")


@pytest.fixture
def investor(store):
    return token(store, "investor")


# --------------------------------------------------------------------------- exports
def unzip(data: bytes, tmp_path):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        z.extractall(tmp_path)
        return sorted(z.namelist())


def test_filtered_catalogue_as_shapefile_opens_with_pyshp(client, store, tmp_path):
    r = client.get("/api/export/plots.shp.zip?min_area=2&status=available")
    assert r.status_code == 200 and r.mimetype == "application/zip"
    assert "attachment" in r.headers["Content-Disposition"]
    names = unzip(r.data, tmp_path)
    assert names == ["plots.cpg", "plots.dbf", "plots.prj", "plots.shp", "plots.shx"]
    assert (tmp_path / "plots.cpg").read_text().strip().upper().replace("-", "") == "UTF8"
    reader = shapefile.Reader(str(tmp_path / "plots"), encoding="utf-8")
    got = sorted(rec["plot_id"] for rec in reader.records())
    want = ids(client.get("/api/plots?min_area=2&limit=1000"))
    assert got == sorted(want) and all(rec["status"] == "available" for rec in reader.records())


def test_layer_exports_keep_cyrillic_and_follow_roles(client, planner, store, tmp_path):
    r = client.get("/api/export/roads.shp.zip")
    unzip(r.data, tmp_path)
    names = [
        rec["name"] for rec in shapefile.Reader(str(tmp_path / "roads"), encoding="utf-8").records()
    ]
    assert len(names) == store.count("roads") and any("ул." in (n or "") for n in names)
    gpkg = client.get("/api/export/rail_stations.gpkg")
    assert gpkg.status_code == 200 and gpkg.data[:16] == b"SQLite format 3\x00"
    path = tmp_path / "x.gpkg"
    path.write_bytes(gpkg.data)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM rail_stations").fetchone()[
        0
    ] == store.count("rail_stations")
    gj = client.get("/api/export/substations.geojson?bbox=76,43,78,44")
    assert gj.status_code == 200 and gj.mimetype == "application/geo+json"
    assert len(json.loads(gj.data)["features"]) == store.count("substations")
    assert client.get("/api/export/applications.gpkg").status_code == 401
    assert client.get("/api/export/applications.gpkg", headers=planner).status_code == 200
    assert client.get("/api/export/users.gpkg", headers=planner).status_code == 404
    assert client.get("/api/export/plots.zip").status_code == 404
    r = client.get("/api/export/roads.gpkg?min_area=3")
    assert r.status_code == 400 and r.get_json()["field"] == "min_area"
    assert client.get("/api/export/plots.gpkg?status=candidate").status_code == 401
    assert client.get("/api/export/plots.gpkg?crs=EPSG:99999").status_code == 400
    empty = client.get("/api/export/plots.geojson?bbox=10,10,11,11")
    assert empty.status_code == 200 and json.loads(empty.data)["features"] == []


# --------------------------------------------------------------------------- uploads
def plots_geojson(store, n: int = 2, *, dx: float = 0.0) -> bytes:
    """New square plots just outside the zone's plots (WGS84), ids U-1..U-n."""
    from geo.crs import WORKING_EPSG, transformer

    minx, miny, maxx, maxy = store.extent("plots")
    tr = transformer(WORKING_EPSG, 4326)
    feats = []
    for i in range(n):
        x0, y0 = maxx + 500 + i * 150 + dx, miny
        ring = [
            tr.transform(x, y)
            for x, y in ((x0, y0), (x0 + 100, y0), (x0 + 100, y0 + 100), (x0, y0 + 100), (x0, y0))
        ]
        feats.append(
            {
                "type": "Feature",
                "properties": {
                    "plot_id": f"U-{i + 1}",
                    "status": "candidate",
                    "sectors": "*",
                    "resident": "ТОО «Новый»",
                },
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return json.dumps({"type": "FeatureCollection", "features": feats}).encode()


def post_upload(client, headers, data: bytes, name="new.geojson", layer="plots", **form):
    return client.post(
        "/api/uploads",
        headers=headers,
        content_type="multipart/form-data",
        data={"layer": layer, "file": (io.BytesIO(data), name), **form},
    )


def test_upload_previews_then_applies_in_one_transaction(client, planner, store):
    before = store.count("plots")
    r = post_upload(client, planner, plots_geojson(store))
    assert r.status_code == 200, r.get_json()
    preview = r.get_json()
    assert preview["ok"] and preview["adds"] == 2 and preview["layer"] == "plots"
    assert store.count("plots") == before  # nothing written yet
    r = client.post(f"/api/uploads/{preview['token']}", headers=planner)
    assert r.status_code == 200 and r.get_json() == {
        "layer": "plots",
        "written": 2,
        "added": 2,
        "updated": 0,
        "removed": 0,
    }
    assert store.count("plots") == before + 2
    assert store.get("plots", "U-1")["resident"] == "ТОО «Новый»"
    assert client.post(f"/api/uploads/{preview['token']}", headers=planner).status_code == 404


def test_rejected_uploads_list_every_feature_and_write_nothing(client, planner, store):
    before = store.count("plots")
    bad = json.loads(plots_geojson(store, 3))
    bad["features"][0]["properties"]["status"] = "sold"
    bad["features"][1]["properties"]["sectors"] = "oil"
    bad["features"][2]["geometry"]["coordinates"] = [[[0, 0], [1, 1], [0, 1], [1, 0], [0, 0]]]
    r = post_upload(client, planner, json.dumps(bad).encode())
    assert r.status_code == 422
    problems = r.get_json()["problems"]
    assert {(p["feature_id"], p["field"]) for p in problems} >= {
        ("U-1", "status"),
        ("U-2", "sectors"),
        ("U-3", "geometry"),
    }
    assert store.count("plots") == before


@pytest.mark.parametrize(
    "data, name, field",
    [
        (b"not a file at all", "x.geojson", "file"),
        (b"PK\x03\x04broken zip", "x.zip", "file"),
        (b"", "empty.gpkg", "file"),
    ],
)
def test_unreadable_uploads_are_422(client, planner, data, name, field):
    r = post_upload(client, planner, data, name=name)
    assert r.status_code in (400, 422) and r.get_json()["field"] == field


def test_import_corpus_through_http(client, planner, store, tmp_path):
    """The import colleague's bad inputs, refused over HTTP with the store unchanged."""
    corpus = pytest.importorskip("test_io_support")
    folder = corpus.write_folder(tmp_path / "src")
    shp_zip = tmp_path / "plots.zip"
    with zipfile.ZipFile(shp_zip, "w") as z:
        for part in ("shp", "dbf", "prj", "cpg"):  # no .shx
            z.write(folder / f"plots.{part}", f"plots.{part}")
    before = store.count("plots")
    r = post_upload(client, planner, shp_zip.read_bytes(), name="plots.zip")
    assert r.status_code == 422 and r.get_json()["error"]
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as z:
        z.writestr("../../evil.shp", b"x")
    r = post_upload(client, planner, (tmp_path / "evil.zip").read_bytes(), name="evil.zip")
    assert r.status_code == 422
    assert store.count("plots") == before


def test_upload_rules(app, client, planner, investor, store):
    assert post_upload(client, {}, plots_geojson(store)).status_code == 401
    assert post_upload(client, investor, plots_geojson(store)).status_code == 403
    r = post_upload(client, planner, plots_geojson(store), layer="users")
    assert r.status_code == 400 and r.get_json()["field"] == "layer"
    for bad in ("../../etc/passwd", "x" * 32, "%2e%2e%2fsecret"):
        assert client.post(f"/api/uploads/{bad}", headers=planner).status_code == 404
    ok = post_upload(client, planner, plots_geojson(store)).get_json()["token"]
    from usecases import accounts

    accounts.create_user(store, "pat", "planner", "pat-pass-1234")
    assert client.post(f"/api/uploads/{ok}", headers=token(store, "pat")).status_code == 404
    app.config["ZONEPLAN_UPLOAD_MAX_BYTES"] = 2000
    r = post_upload(client, planner, plots_geojson(store, 20))
    assert r.status_code == 413 and r.is_json
