"""``zoneplan subdivide`` and the subdivision use case on a real GeoPackage of the sample zone:
the preview writes nothing, a commit is one transaction, stale plans are refused."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import subprocess
import sys

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo.crs import WORKING_EPSG
from geo.store import open_store
from planner.subdivision import SubdivisionError, SubdivisionParams
from usecases import subdivision
from zoneplan.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_preview_writes_geojson_and_never_the_store(capsys, store_path, tmp_path):
    before = digest(store_path)
    out_file = tmp_path / "prev.geojson"
    code, out, err = run(
        capsys,
        "subdivide",
        "--db",
        str(store_path),
        "--area",
        "EXP-1",
        "--min-ha",
        "0.5",
        "--max-ha",
        "5",
        "--preview",
        "-o",
        str(out_file),
    )
    assert code == 0, err
    assert digest(store_path) == before
    assert "strip *" in out and "obb" in out and "with street frontage" in out
    assert "replaces 18 candidate plot(s): P-189" in out
    doc = json.loads(out_file.read_text(encoding="utf-8"))
    assert doc["exp_id"] == "EXP-1"
    assert set(doc["metrics"]["compare"]) == {"strip", "obb"}
    assert doc["metrics"]["frontage_share"] == 1.0
    kinds = pd.Series([f["properties"]["kind"] for f in doc["features"]]).value_counts()
    assert kinds["removed"] == 18 and kinds["plot"] >= 10 and kinds["street"] >= 2
    streets = [f["properties"] for f in doc["features"] if f["properties"]["kind"] == "street"]
    assert all("row_m" in s and isinstance(s["existing"], bool) for s in streets)
    lon, lat = doc["features"][0]["geometry"]["coordinates"][0][0]
    assert 76 < lon < 78 and 43 < lat < 44  # WGS84, longitude first
    frame = gpd.read_file(out_file).to_crs(WORKING_EPSG)
    plots = frame[frame["kind"] == "plot"]
    assert abs(plots.area.sum() - shapely.union_all(plots.geometry.values).area) < 1.0
    assert (
        (plots.area / 1e4).between(0.5 * 0.999, 5 * 1.001) | ~plots["in_range"].astype(bool)
    ).all()


def test_commit_stores_candidates_and_planned_roads_in_one_go(capsys, store_path):
    store = open_store(store_path)
    plots_before = store.read("plots")
    roads_before = store.count("roads")
    code, out, err = run(
        capsys,
        "subdivide",
        "--db",
        str(store_path),
        "--area",
        "EXP-1",
        "--method",
        "obb",
        "--commit",
    )
    assert code == 0, err
    assert "stored" in out and "P-207" in out
    plots = store.read("plots")
    new = plots[~plots["plot_id"].isin(plots_before["plot_id"])]
    assert len(new) >= 10 and (new["status"] == "candidate").all()
    assert (new["exp_id"] == "EXP-1").all()
    assert not plots["plot_id"].isin([f"P-{n}" for n in range(189, 207)]).any()
    roads = store.read("roads")
    planned = roads[roads["status"] == "planned"]
    assert len(roads) > roads_before and len(planned) == len(roads) - roads_before
    assert planned["class"].isin(["collector", "local"]).all()
    assert planned["note"].str.contains("right of way").all()
    audit = store.read("audit", where={"layer": "plots", "action": "delete"})
    assert set(audit["feat_id"]) >= {f"P-{n}" for n in range(189, 207)}


def test_committing_the_same_preview_twice_is_refused(store):
    result = subdivision.preview(store, SubdivisionParams(), exp_id="EXP-1")
    plan = result.plan()
    done = subdivision.commit(store, plan, user="t")
    assert len(done["plots"]) == len(result.result.plots)
    count = store.count("plots")
    with pytest.raises(subdivision.SubdivisionConflict, match="no longer exists"):
        subdivision.commit(store, plan, user="t")
    assert store.count("plots") == count


def test_plots_drawn_after_the_preview_refuse_the_commit(store):
    result = subdivision.preview(store, SubdivisionParams(keep_existing=True), exp_id="EXP-1")
    assert not len(result.result.removed)
    plan = result.plan()
    inside = result.result.plots.geometry.iloc[0]
    store.insert(
        "plots",
        gpd.GeoDataFrame(
            {"plot_id": ["P-900"], "status": ["available"]},
            geometry=[shapely.buffer(shapely.centroid(inside), 20)],
            crs=WORKING_EPSG,
        ),
    )
    before = (store.count("plots"), store.count("roads"))
    with pytest.raises(subdivision.SubdivisionConflict, match="P-900 now lie"):
        subdivision.commit(store, plan, user="t")
    assert (store.count("plots"), store.count("roads")) == before


def test_a_replaced_candidate_changed_meanwhile_refuses_the_commit(store):
    plan = subdivision.preview(store, SubdivisionParams(), exp_id="EXP-1").plan()
    row = store.get("plots", "P-195")
    store.update("plots", "P-195", {"status": "available"}, version=row["version"])
    with pytest.raises(subdivision.SubdivisionConflict, match="P-195 changed since the preview"):
        subdivision.commit(store, plan, user="t")
    assert store.count("plots", where={"exp_id": "EXP-1"}) == 18


def test_keep_existing_subdivides_around_the_candidates(capsys, store_path, tmp_path):
    out_file = tmp_path / "keep.geojson"
    code, out, err = run(
        capsys,
        "subdivide",
        "--db",
        str(store_path),
        "--area",
        "EXP-1",
        "--keep-existing",
        "--preview",
        "-o",
        str(out_file),
    )
    assert code == 0, err
    doc = json.loads(out_file.read_text(encoding="utf-8"))
    assert not [f for f in doc["features"] if f["properties"]["kind"] == "removed"]
    assert "keeps 18 plot(s)" in out
    store = open_store(store_path)
    held = shapely.union_all(store.read("plots", where={"exp_id": "EXP-1"}).geometry.values)
    frame = gpd.read_file(out_file).to_crs(WORKING_EPSG)
    plots = frame[frame["kind"] == "plot"]
    assert shapely.union_all(plots.geometry.values).intersection(held).area < 1.0
    streets = frame[(frame["kind"] == "street") & ~frame["existing"].astype(bool)]
    assert (
        shapely.union_all(streets.geometry.values).intersection(held.buffer(-0.5)).length < 1.0
    ), "a new street runs through a kept plot"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--area", "EXP-9", "--preview", "-o", "x.geojson"], "no expansion area 'EXP-9'"),
        (["--area", "EXP-1", "--preview"], "--preview needs -o"),
        (["--area", "EXP-1", "--preview", "-o", "x.csv"], "use a .geojson file name"),
        (["--area", "EXP-1", "--min-ha", "6", "--commit"], "must be smaller than the largest"),
        (["--area", "EXP-1", "--street-spacing", "2000", "--commit"], "narrow the street spacing"),
        (["--area", "EXP-1", "--streets", "existing", "--commit"], "use method obb"),
        (
            ["--area", "EXP-1", "--method", "obb", "--streets", "existing", "--commit"],
            "no plot of the asked size fronts a street",
        ),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(
    capsys, store_path, tmp_path, monkeypatch, extra, message
):
    monkeypatch.chdir(tmp_path)
    before = digest(store_path)
    code, out, err = run(capsys, "subdivide", "--db", str(store_path), *extra)
    assert code == 1
    assert message in err and "Traceback" not in err
    assert digest(store_path) == before
    assert not list(tmp_path.glob("x.*"))


def test_drawn_polygon_is_cut_to_the_zone_and_checked(store):
    inside = [
        [76.845, 43.3145],
        [76.855, 43.3145],
        [76.855, 43.3195],
        [76.845, 43.3195],
        [76.845, 43.3145],
    ]
    result = subdivision.preview(
        store, SubdivisionParams(), geometry={"type": "Polygon", "coordinates": [inside]}
    )
    assert result.exp_id is None and len(result.result.plots) > 5
    assert not [w for w in result.result.warnings if "left out" in w]
    assert len(result.result.removed)  # the candidates it covers are replaced
    # Reaching south beyond EXP-1: the part outside is left out, and said so.
    spill = [
        [76.845, 43.3100],
        [76.855, 43.3100],
        [76.855, 43.3195],
        [76.845, 43.3195],
        [76.845, 43.3100],
    ]
    result = subdivision.preview(
        store, SubdivisionParams(), geometry={"type": "Polygon", "coordinates": [spill]}
    )
    assert any("of the drawn area outside the zone" in w for w in result.result.warnings)
    expansion = store.get("expansion", "EXP-1")["geometry"]
    assert result.area.difference(expansion).area < 1.0
    far = [[76.846, 43.300], [76.856, 43.300], [76.856, 43.306], [76.846, 43.306], [76.846, 43.300]]
    with pytest.raises(SubdivisionError, match="outside the zone and its expansion areas"):
        subdivision.preview(
            store, SubdivisionParams(), geometry={"type": "Polygon", "coordinates": [far]}
        )
    bowtie = [
        [76.846, 43.315],
        [76.856, 43.319],
        [76.856, 43.315],
        [76.846, 43.319],
        [76.846, 43.315],
    ]
    with pytest.raises(SubdivisionError, match="without crossing lines"):
        subdivision.preview(
            store, SubdivisionParams(), geometry={"type": "Polygon", "coordinates": [bowtie]}
        )


def test_params_from_a_form(store):
    params = subdivision.read_params(
        {
            "min_ha": "1",
            "max_ha": "4",
            "method": "obb",
            "keep_existing": "on",
            "street_spacing_m": "",
        }
    )
    assert (params.min_ha, params.max_ha, params.method, params.keep_existing) == (
        1.0,
        4.0,
        "obb",
        True,
    )
    with pytest.raises(SubdivisionError, match="min_ha must be a number"):
        subdivision.read_params({"min_ha": "lots"})
    with pytest.raises(SubdivisionError, match="unknown subdivision parameter"):
        subdivision.read_params({"colour": "red"})


def test_the_road_new_streets_join_is_in_the_preview(store):
    result = subdivision.preview(store, SubdivisionParams(), exp_id="EXP-2")
    assert "the spine road starts from road R-051" in result.result.warnings
    streets = result.result.streets
    joined = streets[streets["street_id"] == "R-051"]
    assert joined["existing"].tolist() == [True] and joined["row_m"].tolist() == [30.0]
    new = shapely.union_all(streets[~streets["existing"]].geometry.values)
    assert shapely.distance(new, joined.geometry.iloc[0]) < 1.0


def test_progress_shows_on_a_terminal_only(capsys, store_path, tmp_path):
    out_file = tmp_path / "p.geojson"
    argv = [
        sys.executable,
        "-m",
        "zoneplan.cli",
        "subdivide",
        "--db",
        str(store_path),
        "--area",
        "EXP-1",
        "--preview",
        "-o",
        str(out_file),
    ]
    primary, secondary = pty.openpty()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=secondary, timeout=300)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert proc.returncode == 0
    assert b"\rsubdivide: " in shown and b"100%" in shown
    code, out, err = run(
        capsys,
        "subdivide",
        "--db",
        str(store_path),
        "--area",
        "EXP-1",
        "--preview",
        "-o",
        str(out_file),
    )
    assert code == 0 and "\r" not in err
