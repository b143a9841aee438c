"""The app factory, log-in and log-out, role rules, accounts, tokens and the map page."""

from __future__ import annotations

import re
import sys

import pandas as pd
import pytest
from conftest import PASSWORDS, scrape_csrf, unescape_js

XSS = "<img src=x onerror=alert(1)>"


# --------------------------------------------------------------------------- factory
def test_factory_reads_config_and_registers_blueprints(app, store_path):
    assert app.config["ZONEPLAN_DB"] == str(store_path)
    assert {"auth", "pages"} <= set(app.blueprints)
    assert app.config["MAX_CONTENT_LENGTH"] > 0


def test_secret_key_is_kept_in_the_store_never_as_a_file(store_path, monkeypatch, tmp_path):
    from geo.store import open_store
    from web import create_app

    monkeypatch.delenv("ZONEPLAN_SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in store_path.parent.iterdir())
    first = create_app({"ZONEPLAN_DB": str(store_path)})
    again = create_app({"ZONEPLAN_DB": str(store_path)})  # another server process, same key
    assert first.secret_key == again.secret_key and len(first.secret_key) >= 32
    assert sorted(p.name for p in store_path.parent.iterdir()) == before  # no <db>.secret
    kept = open_store(store_path).read("settings")
    assert kept["value"].tolist() == [first.secret_key]
    monkeypatch.setenv("ZONEPLAN_SECRET_KEY", "from-the-environment")
    assert create_app({"ZONEPLAN_DB": str(store_path)}).secret_key == "from-the-environment"
    assert open_store(store_path).read("settings")["value"].tolist() == [first.secret_key]


def test_environment_configures_the_app(store_path, monkeypatch):
    from web import create_app

    monkeypatch.setenv("ZONEPLAN_DB", str(store_path))
    monkeypatch.setenv("ZONEPLAN_SECRET_KEY", "from-env")
    monkeypatch.setenv("ZONEPLAN_TILES_URL", "https://tiles.example.org/{z}/{x}/{y}.png")
    monkeypatch.setenv("ZONEPLAN_TILES_ATTRIBUTION", "© tiles")
    app = create_app()
    assert app.secret_key == "from-env"
    assert app.config["ZONEPLAN_TILES_URL"].startswith("https://tiles.example.org")
    response = app.test_client().get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://tiles.example.org" in csp
    assert "tiles.example.org/{z}" in response.get_data(as_text=True)


def test_missing_store_fails_at_start_up(tmp_path):
    from geo.store import NotFound
    from web import create_app

    with pytest.raises(NotFound, match="zoneplan init"):
        create_app({"ZONEPLAN_DB": str(tmp_path / "none.gpkg"), "SECRET_KEY": "x"})


def test_missing_vendor_assets_fail_loudly(store_path, monkeypatch):
    import web.vendor
    from web import SetupError, create_app

    monkeypatch.setattr(web.vendor, "VENDOR_DIR", store_path.parent / "no-vendor")
    monkeypatch.setattr(
        web.vendor, "missing_vendor_files", lambda vendor_dir=None: ["leaflet/leaflet.js"]
    )
    with pytest.raises(SetupError, match="make setup"):
        create_app({"ZONEPLAN_DB": str(store_path), "SECRET_KEY": "x"})


# --------------------------------------------------------------------------- log-in
def test_login_and_logout(client, login):
    response = login(client, "planner")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "planner" in page and 'action="/logout"' in page
    token = scrape_csrf(page)
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert client.get("/planner").status_code == 302


def test_login_redirects_to_next_but_never_off_site(client, login):
    response = login(client, "planner", next="/planner")
    assert response.headers["Location"] == "/planner"
    other = client.application.test_client()
    response = login(other, "planner", next="https://evil.example/x")
    assert response.headers["Location"] == "/"
    response = login(other, "planner", next="//evil.example/x")
    assert response.headers["Location"] == "/"


def test_wrong_password_is_refused_with_a_message(client, login):
    response = login(client, "planner", password="wrong-password")
    assert response.status_code == 401
    assert "Wrong user name or password" in response.get_data(
        as_text=True
    ) or "Неверное имя" in response.get_data(as_text=True)
    assert client.get("/planner").status_code == 302


def test_failed_logins_are_rate_limited(client, login):
    for _ in range(5):
        assert login(client, "admin", password="nope-nope").status_code == 401
    response = login(client, "admin")  # even the right password waits now
    assert response.status_code == 429
    body = response.get_data(as_text=True)
    assert "Too many failed log-ins" in body or "Слишком много" in body
    # another user from the same address is not affected
    assert login(client, "planner").status_code == 302


def test_changed_password_ends_other_sessions(app, login, store):
    from usecases import accounts

    c = app.test_client()
    assert login(c, "investor").status_code == 302
    assert c.get("/applications").status_code == 200
    accounts.set_password(store, "investor", "a-brand-new-pass")
    assert c.get("/applications").status_code == 302


def test_disabled_user_cannot_log_in(client, login, store):
    from usecases import accounts

    accounts.set_active(store, "investor", False)
    assert login(client, "investor").status_code == 401


# --------------------------------------------------------------------------- roles
ROUTE_RULES = {
    # path: {role: expected status}
    "/": {"public": 200, "investor": 200, "planner": 200, "admin": 200},
    "/login": {"public": 200, "investor": 200, "planner": 200, "admin": 200},
    "/applications": {"public": 302, "investor": 200, "planner": 200, "admin": 200},
    "/planner": {"public": 302, "investor": 403, "planner": 200, "admin": 200},
    "/account": {"public": 302, "investor": 200, "planner": 200, "admin": 200},
    "/admin/users": {"public": 302, "investor": 403, "planner": 403, "admin": 200},
}


@pytest.mark.parametrize("role", ["public", "investor", "planner", "admin"])
def test_role_rules_on_every_page(app, login, role):
    client = app.test_client()
    if role != "public":
        assert login(client, role).status_code == 302
    for path, expected in ROUTE_RULES.items():
        response = client.get(path)
        assert response.status_code == expected[role], (role, path)
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/login?next=")


def test_every_page_route_is_covered_by_the_role_table(app):
    mine = {
        r.rule
        for r in app.url_map.iter_rules()
        if r.endpoint.split(".")[0] in ("pages", "auth")
        and "<" not in r.rule
        and "GET" in r.methods
    }
    assert mine <= set(ROUTE_RULES)


def test_investor_sees_only_own_applications(app, login, store):
    from geo.store.base import now_iso

    rows = [
        {
            "app_id": f"A-{n}",
            "investor": n,
            "project": f"project of {n}",
            "sector": "food",
            "min_ha": 1,
            "max_ha": 2,
            "status": "submitted",
            "created": now_iso(),
        }
        for n in ("investor", "someone-else")
    ]
    store.insert("applications", pd.DataFrame(rows))
    inv = app.test_client()
    login(inv, "investor")
    page = inv.get("/applications").get_data(as_text=True)
    assert "project of investor" in page and "project of someone-else" not in page
    plan = app.test_client()
    login(plan, "planner")
    page = plan.get("/applications").get_data(as_text=True)
    assert "project of investor" in page and "project of someone-else" in page


def test_role_helpers(app):
    from web.auth import api_role_required, current_role, current_username, role_required

    @api_role_required("planner")
    def api_view():
        return {"ok": True}

    @role_required("investor")
    def page_view():
        return "ok"

    with app.test_request_context("/x?y=1"):
        assert current_role() == "public" and current_username() is None
        response = api_view()
        assert response.status_code == 401
        assert response.get_json() == {"error": response.get_json()["error"], "field": None}
        assert page_view().status_code == 302


def test_admin_manages_users(admin_client, app, login):
    page = admin_client.get("/admin/users").get_data(as_text=True)
    token = scrape_csrf(page)
    response = admin_client.post(
        "/admin/users",
        data={
            "new-csrf_token": token,
            "csrf_token": token,
            "new-username": "newbie",
            "new-role": "investor",
            "new-password": "newbie-pass-1",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:400]
    assert "newbie" in admin_client.get("/admin/users").get_data(as_text=True)
    fresh = app.test_client()
    assert login(fresh, "newbie", password="newbie-pass-1").status_code == 302
    response = admin_client.post(
        "/admin/users",
        data={
            "act-csrf_token": token,
            "csrf_token": token,
            "act-username": "newbie",
            "act-action": "role",
            "act-role": "planner",
        },
    )
    assert response.status_code == 302
    assert fresh.get("/planner").status_code == 200


# --------------------------------------------------------------------------- tokens
def test_bearer_token_authenticates_scripts(app, store):
    from flask import jsonify

    from usecases import accounts
    from web.auth import api_role_required, current_username

    @app.route("/api/_whoami", methods=["GET", "POST"])
    @api_role_required("planner")
    def whoami():
        return jsonify({"user": current_username()})

    token = accounts.issue_token(store, "planner")
    raw = store.read("users", where={"username": "planner"})["token_hash"].iloc[0]
    assert token not in raw and len(raw) == 64  # only a hash is kept
    client = app.test_client()
    assert client.get("/api/_whoami").status_code == 401
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/_whoami", headers=headers).get_json() == {"user": "planner"}
    # a Bearer request needs no CSRF token...
    assert client.post("/api/_whoami", headers=headers, json={}).status_code == 200
    # ...but a wrong token is anonymous
    assert (
        client.post("/api/_whoami", headers={"Authorization": "Bearer zp_bad"}, json={}).status_code
        == 401
    )
    inv = accounts.issue_token(store, "investor")
    response = client.get("/api/_whoami", headers={"Authorization": f"Bearer {inv}"})
    assert response.status_code == 403 and response.get_json()["field"] is None


def test_account_page_issues_a_token_once(investor_client, store):
    from usecases import accounts

    page = investor_client.get("/account").get_data(as_text=True)
    token = scrape_csrf(page)
    response = investor_client.post("/account", data={"tok-csrf_token": token})
    body = response.get_data(as_text=True)
    issued = re.search(r'id="zp-token">(zp_[^<]+)<', body).group(1)
    assert accounts.user_for_token(store, issued)["username"] == "investor"
    assert issued not in investor_client.get("/account").get_data(as_text=True)


# --------------------------------------------------------------------------- accounts + CLI
def test_accounts_rules(store):
    from geo.store import Conflict, Invalid
    from usecases import accounts

    with pytest.raises(Invalid, match="password"):
        accounts.create_user(store, "shorty", "investor", "short")
    with pytest.raises(Invalid, match="role"):
        accounts.create_user(store, "bossy", "emperor", "long-enough-pass")
    with pytest.raises(Invalid, match="user name"):
        accounts.create_user(store, "<script>", "investor", "long-enough-pass")
    with pytest.raises(Conflict):
        accounts.create_user(store, "planner", "planner", "long-enough-pass")
    user = accounts.authenticate(store, "planner", PASSWORDS["planner"])
    assert user["role"] == "planner" and user["pw_hash"].startswith(("scrypt:", "pbkdf2:"))
    assert accounts.authenticate(store, "nobody", "whatever-pass") is None


def test_create_default_users_uses_env_or_prints_once(store, monkeypatch, capsys):
    from usecases import accounts

    with store.transaction() as tx:
        tx.clear("users")
    monkeypatch.setenv("ZONEPLAN_ADMIN_PASSWORD", "admin-from-env")
    monkeypatch.delenv("ZONEPLAN_PLANNER_PASSWORD", raising=False)
    monkeypatch.delenv("ZONEPLAN_INVESTOR_PASSWORD", raising=False)
    assert accounts.create_default_users(store) == ["admin", "planner", "investor"]
    out = capsys.readouterr().out
    assert "admin-from-env" not in out
    generated = re.search(r"'planner' \(role planner\) with password (\S+)", out).group(1)
    assert accounts.authenticate(store, "planner", generated)
    assert accounts.authenticate(store, "admin", "admin-from-env")
    assert accounts.create_default_users(store) == []  # idempotent, prints nothing new
    assert capsys.readouterr().out == ""


class _Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _zoneplan(*args, stdin=None):
    """Run the CLI in-process (as `zoneplan ...` would) with ``stdin`` as standard input."""
    import contextlib
    import io

    from zoneplan.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        sys.stdin = old
    return _Result(code, out.getvalue(), err.getvalue())


def test_user_commands(store_path):
    db = ["--db", str(store_path)]
    r = _zoneplan(
        "user",
        "add",
        "kate",
        "--role",
        "planner",
        "--password-stdin",
        *db,
        stdin="kates-password\n",
    )
    assert r.returncode == 0, r.stderr
    r = _zoneplan("user", "list", *db)
    assert re.search(r"kate\s+planner\s+yes", r.stdout)
    r = _zoneplan("user", "passwd", "kate", "--password-stdin", *db, stdin="another-password\n")
    assert r.returncode == 0, r.stderr
    r = _zoneplan("user", "token", "kate", *db)
    assert r.returncode == 0 and r.stdout.strip().startswith("zp_")
    r = _zoneplan(
        "user",
        "add",
        "kate",
        "--role",
        "planner",
        "--password-stdin",
        *db,
        stdin="kates-password\n",
    )
    assert r.returncode == 1 and "already exists" in r.stderr
    r = _zoneplan(
        "user", "add", "bob", "--role", "planner", "--password-stdin", *db, stdin="short\n"
    )
    assert r.returncode == 1 and "at least 8" in r.stderr
    r = _zoneplan(
        "user",
        "add",
        "Айгүл.К",
        "--role",
        "investor",
        "--password-stdin",
        *db,
        stdin="cyrillic-name-ok\n",
    )
    assert r.returncode == 0, r.stderr
    r = _zoneplan(
        "user",
        "add",
        "a/b",
        "--role",
        "investor",
        "--password-stdin",
        *db,
        stdin="long-enough-pass\n",
    )
    assert r.returncode == 1 and "user name" in r.stderr


# --------------------------------------------------------------------------- the map page
def test_map_page_has_every_layer_and_a_legend(client, planner_client, store):
    from web.maps import LAYER_STYLES

    html = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'class="folium-map"' in html and "fitBounds" in html
    assert "window.zpTileMap(" in html and "/static/tilemap.js" in html
    assert (
        "Leaflet.VectorGrid.bundled.min.js" in html and "/tiles/__layer__/{z}/{x}/{y}.mvt" in html
    )
    from geo.layers import LAYERS

    for spec in LAYER_STYLES:
        assert LAYERS[spec.name].label in html, spec.name
    assert 'class="zp-legend"' in html
    for status in ("available", "reserved", "allocated", "occupied"):
        assert f'data-status="{status}"' in html
    assert 'data-status="candidate"' not in html  # the public never sees candidates
    assert 'data-status="candidate"' in planner_client.get("/").get_data(as_text=True)


def test_map_coordinates_have_at_most_six_decimals(client):
    html = client.get("/").get_data(as_text=True)
    coords = re.findall(r"\[(-?\d+\.\d+), (-?\d+\.\d+)\]", html)
    assert coords
    assert all(len(v.split(".")[1]) <= 6 for pair in coords for v in pair)
    # GeoJSON pairs are [lon, lat], Leaflet's view pairs [lat, lon]: all near Almaty
    lats = [min(float(a), float(b)) for a, b in coords]
    lons = [max(float(a), float(b)) for a, b in coords]
    assert 76 < min(lons) < max(lons) < 78 and 43 < min(lats) < max(lats) < 44


def test_closed_and_degraded_assets_are_drawn_differently(client):
    from web.maps import STATUS_STROKES

    ok, closed, restricted = (STATUS_STROKES[s] for s in ("operational", "closed", "restricted"))
    assert "dashArray" not in ok
    assert closed["dashArray"] and closed["color"] == "#d62728"
    assert restricted["dashArray"] and restricted["color"] != closed["color"]
    assert STATUS_STROKES["under_repair"]["dashArray"]
    assert STATUS_STROKES["not_commissioned"]["dashArray"]
    # the page hands these strokes to the tile styling (web/static/tilemap.js)
    html = unescape_js(client.get("/").get_data(as_text=True))
    assert '"statusStrokes": {"closed": {"color": "#d62728", "dashArray": "6 6"}' in html


def _planner(store) -> dict[str, str]:
    from usecases import accounts

    return {"Authorization": f"Bearer {accounts.issue_token(store, 'planner')}"}


def test_popups_escape_user_text(client, planner_client, store):
    import geopandas as gpd
    from shapely.geometry import box as _box

    zone = store.read("zone")
    x, y = zone.geometry.iloc[0].centroid.coords[0]
    frame = gpd.GeoDataFrame(
        pd.DataFrame(
            [
                {
                    "plot_id": "XSS-1",
                    "status": "available",
                    "cadastre": XSS,
                    "project": XSS,
                    "resident": "ТОО «Ромашка» & Co",
                }
            ]
        ),
        geometry=[_box(x - 5000, y + 60_000, x - 4950, y + 60_050)],
        crs=32643,
    )
    store.insert("plots", frame)
    html = client.get("/map/features/plots/XSS-1", headers=_planner(store)).get_json()["html"]
    assert XSS not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "ТОО «Ромашка» &amp; Co" in html  # data shown as stored, escaped


def test_popups_follow_store_changes(client, store):
    some = store.read("plots", limit=1).iloc[0]
    url = f"/map/features/plots/{some['plot_id']}"
    first = client.get(url, headers=_planner(store)).get_json()["html"]
    store.update("plots", some["plot_id"], {"resident": "Brand New Resident LLP"})
    second = client.get(url, headers=_planner(store)).get_json()["html"]
    assert "Brand New Resident LLP" not in first and "Brand New Resident LLP" in second


def test_a_plots_popup_carries_its_servicing_answer(client, store):
    from markupsafe import escape

    from planner import servicing

    pid = store.read("plots", where={"status": "available"}, limit=1).iloc[0]["plot_id"]
    model = servicing.ServicingModel(store.snapshot())
    lines = servicing.explain(model.answer([pid])[0])
    assert lines
    html = client.get(f"/map/features/plots/{pid}", headers={"Accept-Language": "en"}).get_json()[
        "html"
    ]
    assert all(str(escape(line)) in html for line in lines)


def test_popup_titles_do_not_repeat_what_the_name_says(client):
    station = client.get(
        "/map/features/substations/SS-12", headers={"Accept-Language": "en"}
    ).get_json()["html"]
    assert "<h6><span>Substation No. 12" in station and "Substation <span>" not in station
    road = client.get("/map/features/roads/R-001", headers={"Accept-Language": "en"}).get_json()
    assert "<h6>Road <span>ул. Заводская</span></h6>" in road["html"]


def test_legend_says_which_colour_is_which_network(client):
    html = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    for layer, label, colour in (
        ("water_mains", "Water mains", "#1f77b4"),
        ("gas_mains", "Gas mains", "#d4a100"),
        ("power_lines", "Power lines", "#9467bd"),
        ("storm_sewers", "Storm sewers", "#17becf"),
    ):
        item = re.search(rf'<li data-layer="{layer}">(.*?)</li>', html, re.S)
        assert item and f'stroke="{colour}"' in item.group(1) and label in item.group(1)
