"""Updating a layer from a file: update by id, confirmed replaces that never remove committed
plots, and hostile files refused with the store byte-identical, through the CLI, the upload
API and the upload page alike."""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapefile  # pyshp: an independent reader of the .dbf widths
from shapely.geometry import box

from geo.io import COMMITTED_STATUSES, export_layers
from geo.store import open_store
from usecases import accounts
from zoneplan.cli import main


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run(*argv) -> int:
    return main([str(a) for a in argv])


def bearer(store, username: str = "planner") -> dict[str, str]:
    return {"Authorization": f"Bearer {accounts.issue_token(store, username)}"}


def plots_file(store, tmp_path: Path, keep=lambda props: True, edit=None) -> Path:
    """The store's plots as GeoJSON (what a planner downloads), filtered and edited."""
    out = export_layers(store, "plots", "geojson", tmp_path / "all.geojson")
    data = json.loads(out.read_text(encoding="utf-8"))
    data["features"] = [f for f in data["features"] if keep(f["properties"])]
    for f in data["features"]:
        (edit or (lambda props: None))(f["properties"])
    path = tmp_path / "plots.geojson"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def free_candidates(store, n: int = 2) -> list[str]:
    """Candidate plots no application names (a replace may remove them)."""
    apps = store.read("applications")
    named = set(apps["plot_id"].dropna()) | set(apps["assigned"].dropna())
    plots = store.read("plots", where={"status": "candidate"})
    return [k for k in plots["plot_id"] if k not in named][:n]


def committed_ids(store) -> set[str]:
    return set(store.read("plots", where={"status": list(COMMITTED_STATUSES)})["plot_id"])


# --------------------------------------------------------------------------- CLI
def test_cli_replace_lists_removals_needs_yes_and_never_removes_committed(
    store_path, tmp_path, capsys
):
    store = open_store(store_path)
    partial = plots_file(store, tmp_path, keep=lambda p: p["status"] == "available")
    before = sha256(store_path)
    assert run("import", "plots", partial, "--db", store_path, "--mode", "replace") == 1
    out = capsys.readouterr()
    assert re.search(
        r"\d+ removed \(\d+ candidate, \d+ reserved, \d+ allocated, \d+ occupied\)", out.out
    )
    assert "a replace never removes committed plots" in out.err
    for flags in (
        ("--mode", "replace", "--yes"),
        ("--replace", "--yes"),
        ("--mode", "replace", "--dry-run"),
    ):
        assert run("import", "plots", partial, "--db", store_path, *flags) == 1, flags
        err = capsys.readouterr().err
        assert "a replace never removes committed plots" in err
        assert all(key in err for key in committed_ids(store)), flags
        assert sha256(store_path) == before
    assert run("import", "plots", partial, "--db", store_path, "--mode", "update") == 0
    assert "0 new, 0 updated, 52 unchanged" in capsys.readouterr().out
    assert committed_ids(open_store(store_path)) == committed_ids(store)
    assert run("import", "plots", partial, "--db", store_path, "--mode", "update", "--replace") == 1


def test_cli_update_by_id_keeps_versions_and_audits_field_by_field(store_path, tmp_path, capsys):
    store = open_store(store_path)
    old = store.get("plots", "P-001")
    path = plots_file(
        store,
        tmp_path,
        edit=lambda p: p.update(cadastre="999") if p["plot_id"] == "P-001" else None,
    )
    assert run("import", "plots", path, "--db", store_path, "--user", "gis") == 0
    out = capsys.readouterr().out
    assert f"update P-001: cadastre {old['cadastre']} → 999" in out
    assert "0 new, 1 updated, 205 unchanged" in out
    after = open_store(store_path)
    assert after.get("plots", "P-001")["version"] == old["version"] + 1
    assert after.get("plots", "P-002")["version"] == store.get("plots", "P-002")["version"]
    audit = after.read("audit", where={"username": "gis"})
    assert audit[["action", "feat_id"]].values.tolist() == [["update", "P-001"]]
    assert json.loads(audit["changes"].iloc[0]) == {"cadastre": [old["cadastre"], "999"]}
    assert after.count("plots") == store.count("plots")


def test_cli_confirmed_replace_removes_only_what_it_listed(store_path, tmp_path, capsys):
    store = open_store(store_path)
    gone, count = free_candidates(store), store.count("plots")
    path = plots_file(store, tmp_path, keep=lambda p: p["plot_id"] not in gone)
    assert run("import", "plots", path, "--db", store_path, "--replace", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "2 removed (2 candidate)" in out and f"candidate (2): {', '.join(gone)}" in out
    before = sha256(store_path)
    assert run("import", "plots", path, "--db", store_path, "--replace") == 1
    assert "run it again with --yes" in capsys.readouterr().err
    assert sha256(store_path) == before
    assert run("import", "plots", path, "--db", store_path, "--replace", "--yes") == 0
    after = open_store(store_path)
    assert after.count("plots") == count - 2
    deleted = after.read("audit", where={"action": "delete", "layer": "plots"})
    assert sorted(deleted["feat_id"]) == sorted(gone)


# --------------------------------------------------------------------------- API
def post_upload(client, headers, data: bytes, name: str, **form):
    return client.post(
        "/api/uploads",
        headers=headers,
        content_type="multipart/form-data",
        data={"layer": "plots", "file": (io.BytesIO(data), name), **form},
    )


def test_api_replace_refuses_committed_and_needs_the_removal_count(
    client, store, store_path, tmp_path
):
    planner = bearer(store)
    partial = plots_file(store, tmp_path, keep=lambda p: p["status"] == "available")
    before = sha256(store_path)
    r = post_upload(client, planner, partial.read_bytes(), "plots.geojson", mode="replace")
    assert r.status_code == 422
    reason = r.get_json()["problems"][0]["reason"]
    preview = r.get_json()["preview"]
    assert preview["removals_by_status"]["occupied"] > 0 and not preview["ok"]
    assert "a replace never removes committed plots" in reason
    assert all(key in reason for key in committed_ids(store))
    assert sha256(store_path) == before

    gone = free_candidates(store)
    path = plots_file(store, tmp_path, keep=lambda p: p["plot_id"] not in gone)
    r = post_upload(client, planner, path.read_bytes(), "plots.geojson", replace="true")
    preview = r.get_json()
    assert r.status_code == 200 and preview["mode"] == "replace"
    assert preview["removals_by_status"] == {"candidate": 2}
    assert [x["id"] for x in preview["removed"]] == gone
    url = f"/api/uploads/{preview['token']}"
    for body in (None, {"confirm_removals": 1}):
        r = client.post(url, headers=planner, json=body)
        assert r.status_code == 409 and r.get_json()["field"] == "confirm_removals", body
    r = client.post(url, headers=planner, json={"confirm_removals": 2})
    assert r.status_code == 200 and r.get_json()["removed"] == 2
    assert store.count("plots") == 204


def test_api_update_preview_shows_changes_field_by_field(client, store, tmp_path):
    planner = bearer(store)
    old = store.get("plots", "P-001")
    path = plots_file(
        store,
        tmp_path,
        keep=lambda p: p["plot_id"] in ("P-001", "P-002"),
        edit=lambda p: p.update(cadastre="999") if p["plot_id"] == "P-001" else None,
    )
    r = post_upload(client, planner, path.read_bytes(), "plots.geojson")
    preview = r.get_json()
    assert r.status_code == 200 and preview["mode"] == "update" and preview["removals"] == 0
    assert preview["updated"] == [
        {"id": "P-001", "changes": {"cadastre": [old["cadastre"], "999"]}}
    ]
    assert client.post(f"/api/uploads/{preview['token']}", headers=planner).status_code == 200
    assert store.get("plots", "P-001")["version"] == old["version"] + 1


def test_staged_upload_belongs_to_its_store_and_user(
    app, client, store, store_path, tmp_path, derived_cache
):
    from web import create_app

    other_path = tmp_path / "other" / "zone.gpkg"
    other_path.parent.mkdir()
    other_path.write_bytes(store_path.read_bytes())
    other = create_app(
        {
            "ZONEPLAN_DB": str(other_path),
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "ZONEPLAN_CACHE": derived_cache,
        }
    )
    path = plots_file(
        store,
        tmp_path,
        keep=lambda p: p["plot_id"] == "P-001",
        edit=lambda p: p.update(cadastre="777"),
    )
    token = post_upload(client, bearer(store), path.read_bytes(), "p.geojson").get_json()["token"]
    other_store = open_store(other_path)
    headers = bearer(other_store)  # the same user name, another store
    before = sha256(other_path)
    assert other.test_client().post(f"/api/uploads/{token}", headers=headers).status_code == 404
    assert sha256(other_path) == before
    accounts.create_user(store, "pat", "planner", "pat-pass-1234")
    assert client.post(f"/api/uploads/{token}", headers=bearer(store, "pat")).status_code == 404
    assert client.post(f"/api/uploads/{token}", headers=bearer(store)).status_code == 200
    assert store.get("plots", "P-001")["cadastre"] == "777"
    assert store.count("uploads") == 0 and store.count("upload_data") == 0


# --------------------------------------------------------------------------- upload page
@pytest.fixture
def en_planner(planner_client):
    """A planner reading English (the messages asserted are the English ones); the choice
    is remembered in the store, so it is made before any checksum is taken."""
    planner_client.get("/lang/en")
    return planner_client


def page_upload(client, csrf_token, data: bytes, name: str, **form):
    token = csrf_token(client, "/upload")
    return client.post(
        "/upload",
        content_type="multipart/form-data",
        data={"csrf_token": token, "layer": "plots", "file": (io.BytesIO(data), name), **form},
    )


def test_page_replace_shows_removals_in_red_and_refuses_committed(
    en_planner, csrf_token, store, store_path, tmp_path
):
    partial = plots_file(store, tmp_path, keep=lambda p: p["status"] == "available")
    before = sha256(store_path)
    r = page_upload(en_planner, csrf_token, partial.read_bytes(), "plots.geojson", replace="on")
    page = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 422 and 'id="zp-removals"' in page
    assert re.search(r'data-status="occupied">occupied: <strong>\d+</strong>', page, re.I)
    assert "a replace never removes committed plots" in page and "P-002 (occupied" in page
    assert 'id="zp-confirm"' not in page and sha256(store_path) == before


def test_page_replace_needs_the_second_confirmation(en_planner, csrf_token, store, tmp_path):
    gone = free_candidates(store)
    path = plots_file(store, tmp_path, keep=lambda p: p["plot_id"] not in gone)
    r = page_upload(en_planner, csrf_token, path.read_bytes(), "plots.geojson", replace="on")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'name="confirm_removals" value="2" required' in page
    token = csrf_token(en_planner, "/upload")
    r = en_planner.post("/upload/confirm", data={"csrf_token": token})
    assert r.status_code == 409 and "Tick the box" in r.get_data(as_text=True)
    assert store.count("plots") == 206
    r = en_planner.post("/upload/confirm", data={"csrf_token": token, "confirm_removals": "2"})
    assert r.status_code == 302 and store.count("plots") == 204


def test_page_messages_name_form_fields_not_cli_flags(en_planner, csrf_token, tmp_path, store):
    shp = hostile_files(store, tmp_path)["shapefile without .prj"]
    r = page_upload(en_planner, csrf_token, shp.read_bytes(), shp.name)
    page = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 422 and 'the "CRS, if the file has none" field' in page
    assert "--crs" not in page and "--replace" not in page


# --------------------------------------------------------------------------- hostile files
def _square(store) -> box:
    minx, miny, maxx, _ = store.extent("plots")
    return box(maxx + 500, miny, maxx + 600, miny + 100)


def _frame(store, **props) -> gpd.GeoDataFrame:
    base = {
        "plot_id": ["H-1"],
        "status": ["candidate"],
        "sectors": ["*"],
        **{k: [v] for k, v in props.items()},
    }
    return gpd.GeoDataFrame(base, geometry=[_square(store)], crs=32643)


def _zip(
    folder: Path,
    stem: str,
    *,
    cpg: str | None = None,
    prj: str | None = None,
    dbf: bytes | None = None,
    drop: tuple[str, ...] = (),
) -> Path:
    if cpg is not None:
        (folder / f"{stem}.cpg").write_text(cpg)
    if prj is not None:
        (folder / f"{stem}.prj").write_text(prj)
    if dbf is not None:
        (folder / f"{stem}.dbf").write_bytes(dbf)
    out = folder.parent / f"{folder.name}.zip"
    with zipfile.ZipFile(out, "w") as z:
        for part in folder.iterdir():
            if part.suffix not in drop:
                z.write(part, part.name)
    return out


def _shp(store, tmp: Path, name: str, encoding: str = "UTF-8", **props) -> Path:
    folder = tmp / name
    folder.mkdir()
    _frame(store, **props).to_file(folder / "plots.shp", encoding=encoding)
    (folder / "plots.cpg").unlink(missing_ok=True)
    return folder


def _geojson(
    store, tmp: Path, name: str, props: dict, *, coords=None, raw: bytes | None = None
) -> Path:
    ring = coords or [
        list(c)
        for c in gpd.GeoSeries([_square(store)], crs=32643).to_crs(4326).iloc[0].exterior.coords
    ]
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": props,
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        ],
    }
    path = tmp / name
    path.write_bytes(raw if raw is not None else json.dumps(doc).encode())
    return path


def hostile_files(store, tmp: Path) -> dict[str, Path]:
    tmp = tmp / "hostile"
    tmp.mkdir(exist_ok=True)
    cyr = "Завод Алатау"
    base = {"plot_id": "H-1", "status": "candidate", "sectors": "*"}
    return {
        "cp1251 .dbf without .cpg": _zip(_shp(store, tmp, "c1", "cp1251", resident=cyr), "plots"),
        "cp1251 .dbf whose .cpg says UTF-8": _zip(
            _shp(store, tmp, "c2", "cp1251", resident=cyr), "plots", cpg="UTF-8"
        ),
        "GeoJSON string with invalid bytes": _geojson(
            store,
            tmp,
            "bytes.geojson",
            {},
            raw=_geojson(store, tmp, "x.geojson", base)
            .read_bytes()
            .replace(b'"sectors": "*"', b'"sectors": "*", "resident": "\xff\xfeab"'),
        ),
        "id with a slash": _geojson(store, tmp, "slash.geojson", {**base, "plot_id": "H/1"}),
        "NUL inside an id": _geojson(store, tmp, "nul.geojson", {**base, "plot_id": "B-0\x0058"}),
        "1 MB of text": _geojson(store, tmp, "long.geojson", {**base, "project": "x" * 1_000_000}),
        "unparseable .prj": _zip(_shp(store, tmp, "prj"), "plots", prj="PROJCS[garbage"),
        "corrupt .dbf": _zip(_shp(store, tmp, "dbf"), "plots", dbf=b"\x00garbage" * 10),
        "empty FeatureCollection": _geojson(
            store, tmp, "empty.geojson", {}, raw=b'{"type": "FeatureCollection", "features": []}'
        ),
        "coordinates of 1e300": _geojson(
            store,
            tmp,
            "huge.geojson",
            base,
            coords=[[1e300, 1e300], [2e300, 1e300], [1e300, 2e300], [1e300, 1e300]],
        ),
        "shapefile without .prj": _zip(_shp(store, tmp, "noprj"), "plots", drop=(".prj",)),
    }


HOSTILE = {  # what the message must say (field, row and what to do)
    "cp1251 .dbf without .cpg": [
        "feature 0 (H-1)",
        "resident",
        "is not UTF-8",
        "reads as cp1251: 'Завод Алатау'",
        "encoding",
    ],
    "cp1251 .dbf whose .cpg says UTF-8": ["feature 0 (H-1)", "resident", "is not UTF-8", "cp1251"],
    "GeoJSON string with invalid bytes": [
        "feature 0 (H-1)",
        "resident",
        "is not UTF-8",
        "GeoJSON is UTF-8 by definition",
    ],
    "id with a slash": ["plot_id", "'H/1' is not a usable id", "without a slash"],
    "NUL inside an id": ["plot_id", "holds a control character"],
    "1 MB of text": ["feature 0 (H-1)", "project", "1,000,000 characters, more than the 200"],
    "unparseable .prj": ["plots.prj cannot be understood as a coordinate system"],
    "corrupt .dbf": ["attribute table plots.dbf is damaged"],
    "empty FeatureCollection": ["empty.geojson holds no features"],
    "coordinates of 1e300": ["coordinates (1e+300, 1e+300) are not degrees"],
}


def _said(text: str, case: str) -> None:
    for fragment in HOSTILE[case]:
        assert fragment in text, (case, fragment, text[:2000])
    assert "Traceback" not in text and not re.search(r"\d{30}", text), case


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file_through_the_cli(case, store, store_path, tmp_path, capsys):
    path = hostile_files(store, tmp_path)[case]
    before = sha256(store_path)
    assert run("import", "plots", path, "--db", store_path) == 1
    _said(capsys.readouterr().err.replace("feature 0 (B-0\\x0058)", ""), case)
    assert sha256(store_path) == before


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file_through_the_api(case, client, store, store_path, tmp_path):
    planner = bearer(store)
    path = hostile_files(store, tmp_path)[case]
    before = sha256(store_path)
    r = post_upload(client, planner, path.read_bytes(), path.name)
    assert r.status_code == 422, r.get_data(as_text=True)[:500]
    body = r.get_json()
    text = "\n".join(
        f"feature {p['index']} ({p['feature_id']}): {p['field']}: {p['reason']}"
        for p in body["problems"]
    )
    _said(text, case)
    assert "--" not in text  # the API names its form fields, never CLI flags
    assert sha256(store_path) == before


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file_through_the_upload_page(
    case, en_planner, csrf_token, store, store_path, tmp_path
):
    path = hostile_files(store, tmp_path)[case]
    token = csrf_token(en_planner, "/upload")
    before = sha256(store_path)
    r = en_planner.post(
        "/upload",
        content_type="multipart/form-data",
        data={
            "csrf_token": token,
            "layer": "plots",
            "file": (io.BytesIO(path.read_bytes()), path.name),
        },
    )
    assert r.status_code == 422
    page = html.unescape(r.get_data(as_text=True))
    rows = re.findall(
        r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", page, re.S
    )
    text = "\n".join(f"feature {i} ({k}): {f}: {why}" for i, k, f, why in rows)
    _said(text, case)
    assert "--encoding" not in page and "--crs" not in page
    assert sha256(store_path) == before


def test_encoding_option_reads_cp1251_everywhere(
    store, store_path, tmp_path, client, capsys, en_planner, csrf_token
):
    files = hostile_files(store, tmp_path)
    shp = files["cp1251 .dbf without .cpg"]
    r = page_upload(en_planner, csrf_token, shp.read_bytes(), shp.name, encoding="cp1251")
    assert (
        r.status_code == 200
        and "Завод Алатау" not in ""
        and 'id="zp-confirm"' in r.get_data(as_text=True)
    )
    r = post_upload(
        client,
        bearer(store),
        files["cp1251 .dbf whose .cpg says UTF-8"].read_bytes(),
        "c2.zip",
        encoding="cp1251",
    )
    assert r.status_code == 200 and r.get_json()["adds"] == 1
    assert run("import", "plots", shp, "--db", store_path, "--encoding", "cp1251") == 0
    assert open_store(store_path).get("plots", "H-1")["resident"] == "Завод Алатау"
    assert run("import", "plots", shp, "--db", store_path, "--encoding", "klingon") == 1
    assert "unknown encoding 'klingon'" in capsys.readouterr().err


def test_ids_and_text_lengths_follow_one_schema_rule(client, store):
    """The API's models read the schema's limits: what an import refuses, the API refuses."""
    from geo.layers import ID_MAX_LENGTH, TEXT_MAX_LENGTH, get_layer
    from geo.validate import coerce_value
    from planner.applications import ApplicationIn

    plots = get_layer("plots")
    body = {"project": "x", "sector": "food", "min_ha": 1, "max_ha": 2}
    for field, value in (("plot_id", "P/1"), ("plot_id", "P-\x001"), ("company", "y" * 201)):
        r = client.post(
            "/api/applications", headers=bearer(store, "investor"), json={**body, field: value}
        )
        assert r.status_code == 422 and r.get_json()["field"] == field, (field, r.get_json())
    assert ApplicationIn.model_fields["company"].metadata[0].max_length == TEXT_MAX_LENGTH
    assert plots.field("plot_id").text_limit == ID_MAX_LENGTH
    assert plots.field("resident").text_limit == TEXT_MAX_LENGTH
    for bad in ("A/B", "A\\B", "A\x00B", "x" * (ID_MAX_LENGTH + 1)):
        with pytest.raises(ValueError):
            coerce_value(plots.field("plot_id"), bad)
    assert coerce_value(plots.field("plot_id"), "П-01") == "П-01"


# --------------------------------------------------------------------------- exports
def test_shapefile_text_widths_fit_the_data(store, tmp_path):
    """Free text is as wide as its longest value (what GIS users expect and GDAL writes;
    GDAL widens the field if a longer value is written later); vocabularies and integers
    keep the schema's width, the same in every export."""
    out = export_layers(store, "plots", "shp", tmp_path / "p.shp")
    with shapefile.Reader(str(out), encoding="utf-8") as reader:
        widths = {f.name: f.size for f in reader.fields[1:]}
        records = reader.records()
    for name in ("resident", "project", "plot_id"):
        longest = max(len((r[name] or "").encode("utf-8")) for r in records)
        assert widths[name] == max(longest, 1), name
    assert widths["resident"] < 100  # short values in the data: no 254-byte padding
    assert widths["status"] == len("available")  # the longest status, whatever the data
    assert widths["hazard"] == 1 and widths["start_yr"] == 4 and widths["jobs"] == 18


def test_staged_uploads_expire_and_are_capped_per_user(store, tmp_path, monkeypatch):
    from geo.store import NotFound
    from usecases import uploads

    path = plots_file(store, tmp_path, keep=lambda p: p["plot_id"] == "P-001")
    options = uploads.ImportOptions(layer="plots", filename="p.geojson")
    tokens = [
        uploads.stage(store, path.read_bytes(), options, user="planner")[1]
        for _ in range(uploads.MAX_STAGED_PER_USER + 1)
    ]
    assert sorted(store.read("uploads")["token"]) == sorted(tokens[1:])
    assert store.count("upload_data") == uploads.MAX_STAGED_PER_USER
    plan, _ = uploads.preview(store, tokens[-1], user="planner")
    assert plan.ok and plan.unchanged == 1
    with pytest.raises(NotFound):
        uploads.preview(store, tokens[0], user="planner")  # the oldest was dropped
    monkeypatch.setattr(uploads, "UPLOAD_TTL_S", -1)
    with pytest.raises(NotFound):
        uploads.confirm(store, tokens[-1], user="planner")
    uploads.stage(store, path.read_bytes(), options, user="someone")  # sweeps expired ones
    assert store.count("uploads") == 1 and store.count("upload_data") == 1


def test_an_edit_between_check_and_write_is_not_overwritten(store, store_path, tmp_path):
    from geo.io import apply_import, plan_import, read_upload
    from geo.validate import ValidationError

    path = plots_file(
        store,
        tmp_path,
        keep=lambda p: p["plot_id"] == "P-001",
        edit=lambda p: p.update(cadastre="999"),
    )
    plan = plan_import(store, "plots", read_upload(path, "plots"))
    assert list(plan.updates) == ["P-001"]
    store.update("plots", "P-001", {"resident": "Someone else"}, user="other")
    before = sha256(store_path)
    with pytest.raises(ValidationError, match=r"changed since the file was checked \(P-001\)"):
        apply_import(store, plan, user="gis")
    assert sha256(store_path) == before
