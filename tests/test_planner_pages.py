"""The planner's pages: the workspace, the history with its filters, and a feature's page
with its edit forms (the asset form, the plot lifecycle), by role."""

from __future__ import annotations

import json

import pytest
from test_planner_api import a_plot, audit, create_plot, delete, patch
from test_planner_parcels import free_square


@pytest.fixture(scope="module")
def snap(sample_db):
    """The sample as every test's store copy starts (read once)."""
    from geo.store import open_store

    return open_store(sample_db).snapshot()


@pytest.fixture(scope="module")
def spot(snap):
    return free_square(snap)


@pytest.fixture
def planner(planner_client, csrf_token):
    """The planner's client and the CSRF header its JSON writes need."""
    planner_client.zp_headers = {"X-CSRFToken": csrf_token(planner_client, "/account")}
    return planner_client


PAGES = [
    "/planner",
    "/planner/history",
    "/planner/features/plots/P-001",
    "/planner/features/substations/SS-12",
]


def test_planner_pages_roles(client, investor_client, planner_client, admin_client):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
        assert investor_client.get(path).status_code == 403, path
        assert planner_client.get(path).status_code == 200, path
        assert admin_client.get(path).status_code == 200, path


def test_workspace_page_has_no_inline_script_and_exposes_csrf(planner_client):
    import html as html_lib
    import re

    page = planner_client.get("/planner").get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts and all("src=" in tag for tag in scripts), scripts
    assert re.search(r'<meta name="csrf-token" content="[^"]+">', page)
    config = json.loads(html_lib.unescape(re.search(r'data-config="([^"]+)"', page).group(1)))
    assert config["urls"]["check"] == "/api/check"
    assert config["urls"]["plot"] == "/api/plots/__id__"
    assert config["transitions"]["occupied"] == ["available"]
    assert "geoman/leaflet-geoman.min.js" in page and "/static/planner.js" in page
    assert "leaflet-draw" not in page
    assert 'src="http' not in page and 'href="http' not in page


def _history_ids(client, **params):
    import re
    from urllib.parse import urlencode

    page = client.get("/planner/history?" + urlencode(params)).get_data(as_text=True)
    return re.findall(
        r'<tr data-action="(\w+)" data-feature="([^"]+)" data-layer="(\w+)">', page
    ), page


def test_history_filters(planner, spot, store):
    import datetime as dt

    pid = create_plot(planner, spot)["id"]
    sub = store.get("substations", "SS-12")
    assert (
        patch(
            planner,
            "/api/assets/substations/SS-12",
            {"version": sub["version"], "status": "operational"},
        ).status_code
        == 200
    )
    assert delete(planner, f"/api/plots/{pid}?version=1").status_code == 204
    with store.transaction("kate") as tx:
        tx.update("gates", store.read("gates")["asset_id"].iloc[0], {"note": "painted"})
    planner.get("/lang/en")

    rows, _page = _history_ids(planner, user="planner")
    assert [r[:2] for r in rows] == [("delete", pid), ("update", "SS-12"), ("insert", pid)]
    rows, _page = _history_ids(planner, layer="substations")
    assert {r[2] for r in rows} == {"substations"} and rows[0][:2] == ("update", "SS-12")
    rows, _page = _history_ids(planner, feature=pid)
    assert [r[0] for r in rows] == ["delete", "insert"]
    rows, _page = _history_ids(planner, action="delete", user="planner")
    assert rows == [("delete", pid, "plots")]
    rows, _page = _history_ids(planner, user="kate")
    assert len(rows) == 1 and rows[0][2] == "gates"
    today = dt.datetime.now(dt.UTC).date()  # the audit keeps UTC
    rows, _page = _history_ids(planner, user="planner", **{"from": str(today), "to": str(today)})
    assert len(rows) == 3
    rows, page = _history_ids(
        planner, user="planner", **{"from": str(today + dt.timedelta(days=1))}
    )
    assert rows == [] and "No changes match" in page
    rows, _page = _history_ids(planner, user="planner", to=str(today - dt.timedelta(days=1)))
    assert rows == []
    rows, page = _history_ids(planner, user="planner", **{"from": "yesterday"})
    assert len(rows) == 3 and "use YYYY-MM-DD" in page  # a bad date is said, and ignored
    rows, page = _history_ids(planner, user="planner", action="burn")
    assert len(rows) == 3
    # the changes are shown in words: old -> new
    _rows, page = _history_ids(planner, layer="substations")
    assert "under repair" in page and "operational" in page


def test_feature_page_shows_attributes_servicing_and_history(planner, snap):
    planner.get("/lang/en")
    row = a_plot(snap, "available")
    page = planner.get(f"/planner/features/plots/{row.plot_id}").get_data(as_text=True)
    assert f"Plot · {row.plot_id}" in page and "Allowed sectors" in page
    assert 'id="zp-feature-servicing"' in page and "<strong>power</strong>" in page
    assert 'value="reserved"' in page and 'value="candidate"' in page  # the lifecycle moves
    assert 'data-action="insert"' in page  # loaded from the sample: audited
    assert planner.get("/planner/features/plots/P-NOPE").status_code == 404
    assert planner.get("/planner/features/applications/A-1").status_code == 404
    assert planner.get("/planner/features/users/admin").status_code == 404


def test_asset_form_saves_with_version_and_refuses_stale(planner, store, csrf_token):
    planner.get("/lang/en")
    url = "/planner/features/substations/SS-12"
    token = csrf_token(planner, url)
    sub = store.get("substations", "SS-12")
    form = {
        "csrf_token": token,
        "version": sub["version"],
        "status": "operational",
        "since": "",
        "due": "",
        "note": "repaired",
    }
    response = planner.post(url, data=form, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "SS-12 saved." in page
    after = store.get("substations", "SS-12")
    import datetime as dt

    assert (after["status"], after["due"], after["note"], after["since"]) == (
        "operational",
        None,
        "repaired",
        dt.date.today().isoformat(),
    )
    changes = audit(store, feat_id="SS-12")[-1]["changes"]
    assert changes["status"] == ["under_repair", "operational"]
    # the same form again (stale version): refused, said, nothing changed
    form["note"] = "second try"
    page = planner.post(url, data=form, follow_redirects=True).get_data(as_text=True)
    assert "changed this feature meanwhile" in page
    assert store.get("substations", "SS-12")["note"] == "repaired"
    # without the CSRF token: refused
    no_token = {k: v for k, v in form.items() if k != "csrf_token"}
    assert planner.post(url, data=no_token).status_code == 400


def test_plot_lifecycle_form_and_illegal_move(planner, snap, store, csrf_token):
    planner.get("/lang/en")
    row = a_plot(snap, "candidate")
    url = f"/planner/features/plots/{row.plot_id}"
    token = csrf_token(planner, url)
    page = planner.post(
        url,
        data={"csrf_token": token, "version": int(row.version), "status": "available"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert f"Plot {row.plot_id} is now available." in page
    assert store.get("plots", row.plot_id)["status"] == "available"
    page = planner.post(
        url,
        data={"csrf_token": token, "version": int(row.version) + 1, "status": "occupied"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "cannot go from available to occupied" in page
    assert store.get("plots", row.plot_id)["status"] == "available"


def test_a_deleted_feature_keeps_its_history_page(planner, spot):
    pid = create_plot(planner, spot)["id"]
    assert delete(planner, f"/api/plots/{pid}?version=1").status_code == 204
    planner.get("/lang/en")
    response = planner.get(f"/planner/features/plots/{pid}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "has been deleted" in page
    assert 'data-action="delete"' in page and 'data-action="insert"' in page
