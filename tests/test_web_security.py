"""CSRF, security headers, CSP nonces, and no page loading anything from another host."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from conftest import PASSWORDS, scrape_csrf

FOREIGN = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)", re.IGNORECASE)
CSS_IMPORT = re.compile(r"@import\s+['\"]([^'\"]+)['\"]", re.IGNORECASE)


class _Refs(HTMLParser):
    """Every URL a page makes the browser load, and inline scripts/styles/handlers."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str]] = []
        self.inline: list[tuple[str, dict]] = []
        self.handlers: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in a:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}>")
        if tag == "script":
            if a.get("src"):
                self.urls.append(("script", a["src"]))
            else:
                self.inline.append(("script", a))
        elif tag == "link" and a.get("href"):
            self.urls.append((f"link {a.get('rel')}", a["href"]))
        elif tag in ("img", "iframe", "source", "embed", "video", "audio") and a.get("src"):
            self.urls.append((tag, a["src"]))
        elif tag == "object" and a.get("data"):
            self.urls.append((tag, a["data"]))
        elif tag == "style":
            self.inline.append(("style", a))
            self._in_style = True
        if a.get("style"):
            self.styles.append(a["style"])

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def _parse(html: str) -> _Refs:
    refs = _Refs()
    refs.feed(html)
    return refs


def _css_refs(css: str) -> list[str]:
    return CSS_URL.findall(css) + CSS_IMPORT.findall(css)


def _pages(app) -> list[str]:
    """Every GET page without parameters that the app serves (API and static left out)."""
    out = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments or rule.endpoint == "static":
            continue
        if rule.rule.startswith("/api") or rule.rule.endswith((".json", ".geojson", ".zip")):
            continue
        out.append(rule.rule)
    return sorted(set(out))


@pytest.fixture(scope="module")
def served(sample_db, tmp_path_factory, derived_cache):
    """Every parameterless page as each role sees it: (role, path, response, client), fetched once."""
    import shutil

    from conftest import PASSWORDS as pw

    from web import create_app

    path = tmp_path_factory.mktemp("served") / "zone.gpkg"
    shutil.copy2(sample_db, path)
    app = create_app({"ZONEPLAN_DB": str(path), "SECRET_KEY": "s", "ZONEPLAN_CACHE": derived_cache})
    out = []
    for role in ("public", "investor", "planner", "admin"):
        client = app.test_client()
        if role != "public":
            token = scrape_csrf(client.get("/login").get_data(as_text=True))
            assert (
                client.post(
                    "/login", data={"username": role, "password": pw[role], "csrf_token": token}
                ).status_code
                == 302
            )
        for page in _pages(app):
            response = client.get(page)
            if response.status_code == 200 and response.mimetype == "text/html":
                out.append((role, page, response, client))
    return out


# --------------------------------------------------------------------------- self-hosting
def test_no_page_loads_anything_from_another_host(served):
    checked_pages, checked_css = 0, set()
    for role, path, response, client in served:
        checked_pages += 1
        refs = _parse(response.get_data(as_text=True))
        for kind, url in refs.urls:
            assert not FOREIGN.match(url), f"{role} {path}: {kind} loads {url}"
        for css in refs.styles:
            for url in _css_refs(css):
                assert not FOREIGN.match(url), f"{role} {path}: inline CSS loads {url}"
        # follow the stylesheets: their url(...) and @import must stay here too
        for kind, url in refs.urls:
            target = urljoin(path, url)
            if not kind.startswith("link") or "stylesheet" not in kind or target in checked_css:
                continue
            checked_css.add(target)
            css = client.get(target)
            assert css.status_code == 200, f"{path}: {target} -> {css.status_code}"
            for ref in _css_refs(css.get_data(as_text=True)):
                if ref.startswith("data:"):
                    continue
                assert not FOREIGN.match(ref), f"{target} loads {ref}"
    assert checked_pages >= 10 and len(checked_css) >= 4


def test_every_asset_a_page_names_is_served(app, client, admin_client):
    for c in (client, admin_client):
        for path in ("/", "/login", "/planner"):
            response = c.get(path)
            if response.status_code != 200:
                continue
            for _kind, url in _parse(response.get_data(as_text=True)).urls:
                assert c.get(urlsplit(url).path).status_code == 200, (path, url)


def test_font_and_image_files_referenced_by_vendor_css_exist(client):
    for sheet in (
        "/static/vendor/fontawesome/css/all.min.css",
        "/static/vendor/leaflet/leaflet.css",
        "/static/vendor/leaflet-draw/leaflet.draw.css",
    ):
        css = client.get(sheet).get_data(as_text=True)
        for ref in {r for r in _css_refs(css) if not r.startswith(("data:", "#"))}:
            target = urljoin(sheet, ref.split("?")[0].split("#")[0])
            assert client.get(target).status_code == 200, (sheet, ref)


# --------------------------------------------------------------------------- headers and CSP
def test_security_headers_on_every_response(client):
    for path in ("/", "/login", "/static/css/zoneplan.css", "/no-such-page"):
        response = client.get(path)
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"]
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_every_inline_script_and_style_carries_the_nonce(served):
    assert {role for role, *_ in served} == {"public", "investor", "planner", "admin"}
    for role, path, response, _client in served:
        nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
        refs = _parse(response.get_data(as_text=True))
        for tag, attrs in refs.inline:
            assert attrs.get("nonce") == nonce, f"{role} {path}: <{tag}> without the nonce"
        assert not refs.handlers, f"{role} {path}: inline event handlers {refs.handlers[:3]}"


def test_nonce_changes_per_request(client):
    a = client.get("/").headers["Content-Security-Policy"]
    b = client.get("/").headers["Content-Security-Policy"]
    assert re.search(r"nonce-(\S+)'", a).group(1) != re.search(r"nonce-(\S+)'", b).group(1)


def test_session_cookie_flags(client, login):
    response = login(client, "investor")
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


# --------------------------------------------------------------------------- CSRF
def test_form_posts_without_a_csrf_token_are_refused(app, planner_client, admin_client):
    anon = app.test_client()
    response = anon.post("/login", data={"username": "planner", "password": PASSWORDS["planner"]})
    assert response.status_code == 400
    assert anon.get("/planner").status_code == 302  # not logged in
    assert planner_client.post("/logout").status_code == 400
    assert planner_client.get("/planner").status_code == 200  # still logged in
    response = admin_client.post(
        "/admin/users",
        data={"new-username": "mallory", "new-role": "admin", "new-password": "mallory-pass-1"},
    )
    assert response.status_code == 400
    assert "mallory" not in admin_client.get("/admin/users").get_data(as_text=True)
    response = planner_client.post("/account", data={"tok-revoke": ""})
    assert response.status_code == 400


def test_session_json_writes_need_the_csrf_header(app, store):
    from flask import jsonify

    from usecases import accounts
    from web.auth import api_role_required

    @app.route("/api/_echo", methods=["POST"])
    @api_role_required("planner")
    def echo():
        return jsonify({"ok": True})

    c = app.test_client()
    assert c.post("/api/_echo", json={}).status_code == 401  # anonymous: 401, not a CSRF 400
    token = scrape_csrf(c.get("/login").get_data(as_text=True))
    c.post(
        "/login",
        data={"username": "planner", "password": PASSWORDS["planner"], "csrf_token": token},
    )
    response = c.post("/api/_echo", json={})
    assert response.status_code == 400
    assert response.is_json and response.get_json()["field"] is None
    assert "CSRF" in response.get_json()["error"]
    page_token = scrape_csrf(c.get("/").get_data(as_text=True))
    assert c.post("/api/_echo", json={}, headers={"X-CSRFToken": page_token}).status_code == 200
    bearer = accounts.issue_token(store, "planner")
    fresh = app.test_client()
    assert (
        fresh.post("/api/_echo", json={}, headers={"Authorization": f"Bearer {bearer}"}).status_code
        == 200
    )


def test_bearer_header_does_not_borrow_the_session_cookie(app, login):
    from flask import jsonify

    from web.auth import api_role_required

    @app.route("/api/_mine", methods=["POST"])
    @api_role_required("planner")
    def mine():
        return jsonify({"ok": True})

    planner_client = app.test_client()
    login(planner_client, "planner")
    # a logged-in browser with a bogus Bearer header: no CSRF check, but no cookie authority either
    response = planner_client.post(
        "/api/_mine", json={}, headers={"Authorization": "Bearer not-a-token"}
    )
    assert response.status_code == 401


def test_request_size_is_limited(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    token = scrape_csrf(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"username": "x" * 4096, "password": "y", "csrf_token": token}
    )
    assert response.status_code == 413
