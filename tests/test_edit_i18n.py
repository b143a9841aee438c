"""Typed corners (planner.coordinates and /api/coordinates), API validation messages in the
reader's language (planner.messages), plot attributes through the API with audit, and error
page titles. Russian expectations come from the catalogues (web/translations)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from test_planner_parcels import free_square, to_geojson

from geo.crs import WGS84_EPSG, WORKING_EPSG, transformer
from planner import coordinates, messages

# --------------------------------------------------------------------------- typed corners


def test_utm_corners_are_read_exactly_and_written_back():
    text = "654000 4797000\n654100;4797000\n654100\t4797080,5\n\n654000 4797080.5\n654000 4797000\n"
    polygon = coordinates.parse_corners(text, "EPSG:32643", WORKING_EPSG)
    assert list(polygon.exterior.coords)[:-1] == [
        (654000, 4797000),
        (654100, 4797000),
        (654100, 4797080.5),
        (654000, 4797080.5),
    ]
    assert polygon.area == pytest.approx(100 * 80.5)
    back = coordinates.format_corners(polygon, "EPSG:32643", WORKING_EPSG)
    assert back.splitlines()[2] == "654100.00 4797080.50"
    assert coordinates.parse_corners(back, "EPSG:32643", WORKING_EPSG).equals_exact(polygon, 1e-9)


def test_wgs84_corners_are_projected_to_the_working_crs():
    lonlat = transformer(WORKING_EPSG, WGS84_EPSG)
    square = shapely.box(654000, 4797000, 654050, 4797050)
    xy = np.asarray(square.exterior.coords)[:-1]
    lon, lat = lonlat.transform(xy[:, 0], xy[:, 1])
    text = "\n".join(f"{a:.9f}, {b:.9f}" for a, b in zip(lon, lat))
    polygon = coordinates.parse_corners(text, "EPSG:4326", WORKING_EPSG)
    assert polygon.hausdorff_distance(square) < 0.001  # 9 decimals: sub-millimetre


@pytest.mark.parametrize(
    ("text", "crs", "words"),
    [
        ("76.9 43.3\n76.91 abc\n76.9 43.31", "EPSG:4326", "line 2: “abc” is not a number"),
        ("43.3 76.9\n43.3 76.91\n43.31 76.9", "EPSG:4326", "line 1: 43.3 76.9 looks like latitude"),
        ("76.9 43.3 12\n76.91 43.3\n76.9 43.31", "EPSG:4326", "line 1: give two numbers (found 3"),
        ("76.9 43.3\n76.91 43.3", "EPSG:4326", "at least three different corners (2 given)"),
        ("4797000 654000\n4797000 654100\n4797080 654100", "EPSG:32643", "northing, easting"),
        ("76.9 43.3\n76.91 43.3\n76.9 43.31", "EPSG:32643", "degrees belong to WGS84"),
        ("1 2\n3 4\n5 6", "EPSG:3857", "unknown coordinate system EPSG:3857"),
    ],
)
def test_bad_corners_are_refused_naming_the_line(text, crs, words):
    with pytest.raises(coordinates.CoordinateError) as err:
        coordinates.parse_corners(text, crs, WORKING_EPSG)
    assert words in str(err.value)


def test_every_bad_line_is_named_at_once():
    with pytest.raises(coordinates.CoordinateError) as err:
        coordinates.parse_corners("x y\n76.9 43.3\n1,2,3\n76.9 ?", "EPSG:4326", WORKING_EPSG)
    assert [p.line for p in err.value.problems] == [1, 3, 4]


def test_pydantic_errors_are_described_in_our_words():
    error = {"type": "less_than_equal", "msg": "Input should be...", "ctx": {"le": 5}, "input": 7}
    assert messages.describe(error) == "must be at most 5"
    ru = {"must be at most {le}": "должно быть не больше {le}"}
    assert messages.describe(error, translate=lambda s: ru.get(s, s)) == "должно быть не больше 5"
    unknown = {"type": "extra_forbidden", "msg": "x", "input": 1}
    assert messages.describe(unknown, known=["a", "b"]) == "unknown field; known fields: a, b"
    literal = {"type": "literal_error", "msg": "x", "ctx": {"expected": "'a', 'b' or 'c'"}}
    assert messages.describe(literal) == "must be one of 'a', 'b', 'c'"


# --------------------------------------------------------------------------- the API
@pytest.fixture
def planner(planner_client, csrf_token):
    planner_client.zp_headers = {"X-CSRFToken": csrf_token(planner_client, "/account")}
    return planner_client


def post(client, path, body, lang="en"):
    return client.post(path, json=body, headers={**client.zp_headers, "Accept-Language": lang})


def test_corners_endpoint_reads_utm_and_refuses_bad_lines_in_russian(planner):
    body = {"text": "654000 4797000\n654100 4797000\n654100 4797080", "crs": "EPSG:32643"}
    r = post(planner, "/api/coordinates", body)
    assert r.status_code == 200 and r.get_json()["corners"] == 3
    ring = r.get_json()["geometry"]["coordinates"][0]
    x, y = transformer(WGS84_EPSG, WORKING_EPSG).transform(*ring[1])
    assert (x, y) == pytest.approx((654100, 4797000), abs=0.001)  # 9 decimals: 0.1 mm
    outline = {"geometry": r.get_json()["geometry"], "crs": "EPSG:32643"}
    back = post(planner, "/api/coordinates/text", outline)
    assert back.status_code == 200 and back.get_json()["text"].splitlines()[1] == (
        "654100.00 4797000.00"
    )
    bad = post(planner, "/api/coordinates", {"text": "1 x\n2", "crs": "EPSG:32643"}, "ru")
    assert bad.status_code == 422
    reasons = [p["reason"] for p in bad.get_json()["problems"]]
    assert reasons == ["строка 1: «x» — не число", "строка 2: нужны два числа (найдено 1: «2»)"]
    wrong = post(planner, "/api/coordinates", {"text": "1 2", "crs": "EPSG:1"})
    assert wrong.status_code == 422 and wrong.get_json()["field"] == "crs"


def patch(client, path, body, lang):
    return client.patch(path, json=body, headers={**client.zp_headers, "Accept-Language": lang})


def test_validation_messages_follow_the_readers_language(planner, store):
    plot = store.read("plots", where={"status": "available"}).iloc[0]
    path = f"/api/plots/{plot.plot_id}"
    body = {"version": int(plot.version), "hazard_ok": 7, "power_kw": "abc", "colour": "red"}
    english = patch(planner, path, body, "en").get_json()["problems"]
    reasons = {p["field"]: p["reason"] for p in english}
    assert reasons["hazard_ok"] == "must be at most 5"
    assert reasons["power_kw"] == "give a number (not “abc”)"
    assert reasons["colour"].startswith("unknown field; known fields: cadastre")
    russian = patch(planner, path, body, "ru").get_json()
    reasons = {p["field"]: p["reason"] for p in russian["problems"]}
    assert reasons["hazard_ok"] == "должно быть не больше 5"
    assert reasons["power_kw"] == "укажите число (а не «abc»)"
    assert reasons["colour"].startswith("неизвестное поле; известные поля: cadastre")
    assert russian["error"].startswith("hazard_ok: должно быть не больше 5")
    kazakh = patch(planner, path, {"version": 1, "sectors": "spaceships"}, "kk").get_json()
    assert kazakh["problems"][0]["reason"].startswith("белгісіз сала кодтары: spaceships")
    # the language chosen on the site wins over the browser's
    planner.get("/lang/ru")
    again = patch(planner, path, body, "en").get_json()["problems"]
    assert "должно быть не больше 5" in [p["reason"] for p in again]
    assert int(store.get("plots", plot.plot_id)["version"]) == int(plot.version)


def test_attributes_saved_through_the_api_are_audited(planner, store):
    snap = store.snapshot()
    square = free_square(snap, half_m=30)
    made = post(planner, "/api/plots", {"type": "Feature", "geometry": to_geojson(square)})
    pid = made.get_json()["id"]
    r = patch(
        planner,
        f"/api/plots/{pid}",
        {"version": 1, "cadastre": "20-311-555", "sectors": "food, light", "hazard_ok": 3},
        "en",
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["properties"]["sectors"] == "food,light"
    row = store.read("audit", where={"feat_id": pid, "action": "update"}).iloc[-1]
    changes = json.loads(row["changes"])
    assert changes["cadastre"] == [None, "20-311-555"] and changes["hazard_ok"] == [None, 3]
    assert row["username"] == "planner"
    stale = patch(planner, f"/api/plots/{pid}", {"version": 1, "cadastre": "X"}, "ru")
    assert stale.status_code == 409 and "now version 2" in stale.get_json()["error"]


# --------------------------------------------------------------------------- error pages
@pytest.mark.parametrize(("lang", "title"), [("ru", "404 · Не найдено"), ("en", "404 · Not found")])
def test_error_pages_are_titled_in_the_readers_language(client, lang, title):
    r = client.get("/no-such-page", headers={"Accept-Language": lang, "Accept": "text/html"})
    assert r.status_code == 404
    page = r.get_data(as_text=True)
    assert f"<title>{title} · zoneplan</title>" in page and f"<h1>{title}</h1>" in page


def test_api_docs_speak_the_readers_language(client):
    page = client.get("/api/docs", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "Построить контур по введённым вершинам" in page and "<h2>планирование</h2>" in page
    page = client.get("/api/docs", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Read typed corners into an outline" in page and "<h2>planning</h2>" in page


def test_every_text_of_the_api_docs_is_marked_for_translation(app):
    """Each group, summary, description and parameter text /api/docs shows is extracted into
    the catalogues (N_), so a Russian or Kazakh reader gets it translated."""
    from test_web_i18n import _extracted

    from web.openapi import listing

    marked = _extracted("web") | _extracted("planner") | _extracted("usecases")
    with app.test_request_context():
        groups = listing()
    shown = {g["tag"] for g in groups}
    for group in groups:
        for ep in group["endpoints"]:
            shown |= {ep["summary"], ep["description"]}
            shown |= {p["description"] for p in ep["params"] + ep["body"]}
    unmarked = sorted(shown - marked - {""})
    assert not unmarked, f"{len(unmarked)} texts of /api/docs not marked: {unmarked[:5]}"


@pytest.mark.parametrize(
    ("lang", "texts"),
    [
        ("ru", ["<h2>распределение</h2>", "Запустить распределение", "Размер страницы (1..10000)"]),
        ("kk", ["<h2>бөлу</h2>", "Бөлуді іске қосу", "Бет өлшемі (1..10000)"]),
    ],
)
def test_api_docs_operations_and_parameters_in_the_readers_language(client, lang, texts):
    page = client.get("/api/docs", headers={"Accept-Language": lang}).get_data(as_text=True)
    for text in texts:
        assert text in page, text
    assert "Start an allocation run" not in page and "Page size (1..10000)" not in page
