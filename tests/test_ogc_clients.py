"""Clients nobody here wrote read /ogc from a live server on a loopback port: GDAL's OAPIF
driver (pyogrio's bundled GDAL, and Debian's ogrinfo) and OWSLib's Features client."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pyogrio
import pyogrio.raw
import pytest
import shapely
from conftest import PASSWORDS, free_port
from owslib.ogcapi.features import Features
from owslib.util import Authentication

from geo.store import open_store
from planner import visibility

OGRINFO = shutil.which("ogrinfo")


@pytest.fixture(scope="module")
def server(sample_db, tmp_path_factory):
    """``zoneplan serve`` in its own process (GDAL holds the GIL while it reads, so the
    server cannot be a thread of the test process) over a copy of the sample store;
    yields (base URL, store)."""
    path = tmp_path_factory.mktemp("ogc") / "zone.gpkg"
    shutil.copy2(sample_db, path)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zoneplan.cli",
            "serve",
            "--db",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"zoneplan serve did not start: {proc.stderr.read().decode()[-500:]}")
    yield f"http://127.0.0.1:{port}/ogc", open_store(path)
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def gdal_as_planner():
    """GDAL's HTTP Basic settings for the planner account (what QGIS's auth config sets)."""
    pyogrio.set_gdal_config_options(
        {"GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": f"planner:{PASSWORDS['planner']}"}
    )
    yield
    pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_USERPWD": None})


def public_plots(store):
    plots = store.read("plots")
    return plots[plots["status"].isin(visibility.plot_view(None).statuses)]


def test_gdal_lists_every_readable_collection(server):
    base, _ = server
    names = [str(n) for n, _ in pyogrio.list_layers(f"OAPIF:{base}")]
    assert names == visibility.readable_layers(None)


def test_gdal_reads_every_public_plot_with_its_public_fields(server):
    base, store = server
    frame = pyogrio.read_dataframe(f"OAPIF:{base}", layer="plots")
    expected = public_plots(store).set_index("plot_id").sort_index()
    assert sorted(frame["plot_id"]) == expected.index.tolist()
    assert set(frame.columns) - {"id", "geometry"} == set(visibility.PUBLIC_PLOT_FIELDS)
    frame = frame.set_index("plot_id").sort_index()
    assert np.allclose(frame["area_ha"].to_numpy(float), expected["area_ha"].to_numpy(float))
    assert (frame["status"] == expected["status"]).all()


def test_gdal_reads_in_utm_on_request_and_matches_the_store(server):
    base, store = server
    frame = pyogrio.read_dataframe(f"OAPIF:{base}", layer="plots", CRS="EPSG:32643")
    assert frame.crs.to_epsg() == 32643
    stored = public_plots(store).set_index("plot_id").geometry
    got = frame.set_index("plot_id").geometry
    assert shapely.equals_exact(got.loc[stored.index].values, stored.values, tolerance=0.002).all()
    lonlat = pyogrio.read_dataframe(f"OAPIF:{base}", layer="plots", CRS="OGC:CRS84", max_features=3)
    x, y = shapely.get_coordinates(lonlat.geometry.values)[0]
    assert 76 < x < 78 and 43 < y < 44


def test_gdal_honours_a_bbox_and_an_attribute_filter(server):
    base, store = server
    plots = public_plots(store)
    x0, y0, x1, y1 = plots.total_bounds
    box = (x0, y0, (x0 + x1) / 2, (y0 + y1) / 2)  # the layer's CRS: the storage CRS (metres)
    frame = pyogrio.read_dataframe(f"OAPIF:{base}", layer="plots", bbox=box)
    expected = set(plots["plot_id"][shapely.intersects(plots.geometry.values, shapely.box(*box))])
    assert expected and set(frame["plot_id"]) == expected
    reserved = pyogrio.read_dataframe(f"OAPIF:{base}", layer="plots", where="status = 'reserved'")
    assert sorted(reserved["plot_id"]) == sorted(plots["plot_id"][plots["status"] == "reserved"])


def test_gdal_with_planner_credentials_reads_every_plot_and_private_layer(server, gdal_as_planner):
    base, store = server
    frame = pyogrio.read_dataframe(f"OAPIF:{base}", layer="plots")
    assert len(frame) == len(store.read("plots")) and "resident" in frame.columns
    names = [str(n) for n, _ in pyogrio.list_layers(f"OAPIF:{base}")]
    assert "applications" in names
    apps = pyogrio.read_dataframe(f"OAPIF:{base}", layer="applications", read_geometry=False)
    assert len(apps) == len(store.read("applications"))


def test_owslib_pages_through_the_same_plots_as_gdal(server):
    base, _ = server
    gdal_ids = sorted(
        pyogrio.read_dataframe(f"OAPIF:{base}", layer="plots", read_geometry=False)["plot_id"]
    )
    client = Features(base)
    assert "plots" in [c["id"] for c in client.collections()["collections"]]
    ids, offset = [], 0
    while True:
        page = client.collection_items("plots", limit=50, offset=offset)
        ids += [f["id"] for f in page["features"]]
        offset += len(page["features"])
        if not any(link["rel"] == "next" for link in page["links"]):
            break
    assert page["numberMatched"] == len(gdal_ids)
    assert ids == gdal_ids
    queryables = client.collection_queryables("plots")["properties"]
    assert "sectors" in queryables and "resident" not in queryables


def test_owslib_with_basic_credentials_sees_candidates(server):
    base, store = server
    client = Features(base, auth=Authentication("planner", PASSWORDS["planner"]))
    page = client.collection_items("plots", limit=1000, status="candidate")
    expected = store.read("plots", where={"status": "candidate"})["plot_id"]
    assert sorted(f["id"] for f in page["features"]) == sorted(expected)


@pytest.mark.skipif(OGRINFO is None, reason="Debian's gdal-bin (ogrinfo) is not installed")
def test_debian_ogrinfo_lists_and_counts(server):
    base, store = server
    run = lambda *args: (
        subprocess.run(
            [OGRINFO, "-ro", *args],
            capture_output=True,  # noqa: E731
            text=True,
            timeout=120,
            check=True,
        ).stdout
    )
    listing = run("-so", f"OAPIF:{base}")
    for name in visibility.readable_layers(None):
        assert re.search(rf"^\d+: {name} ", listing, re.M), (name, listing)
    summary = run("-so", f"OAPIF:{base}", "plots")
    count = int(re.search(r"Feature Count: (\d+)", summary).group(1))
    assert count == len(public_plots(store))
    for field in visibility.HIDDEN_PLOT_FIELDS:
        assert not re.search(rf"^{field}: ", summary, re.M)
    reserved = run("-al", "-q", f"OAPIF:{base}", "plots", "-where", "status = 'reserved'")
    plots = public_plots(store)
    assert reserved.count("OGRFeature(plots)") == int((plots["status"] == "reserved").sum())
