"""Hostile requests answered cleanly: CR/LF in redirect targets, deeply nested JSON on every
JSON endpoint, undeclared methods (405 with Allow), and numbers posing as dates."""

from __future__ import annotations

import re

import pytest
from conftest import PASSWORDS, scrape_csrf

from usecases import accounts
from web.openapi import REGISTRY

NESTED = b"[" * 5000  # under the 64 KiB body limit


@pytest.mark.parametrize("target", ["/%0D%0Ax", "/plots%0aSet-Cookie:x=1", "/%00", "/%7f"])
def test_language_switch_refuses_control_characters_in_next(client, target):
    r = client.get(f"/lang/en?next={target}")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert "Set-Cookie: x" not in str(r.headers)


def test_login_with_cr_lf_in_next_goes_home(client):
    page = client.get("/login?next=/account%0D%0AX-Evil:%201")
    hidden = re.search(r'<input[^>]*name="next"[^>]*>', page.get_data(as_text=True)).group(0)
    assert page.status_code == 200 and 'value="/"' in hidden
    token = scrape_csrf(page.get_data(as_text=True))
    r = client.post(
        "/login",
        data={
            "username": "planner",
            "password": PASSWORDS["planner"],
            "csrf_token": token,
            "next": "/account\r\nX-Evil: 1",
        },
    )
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert "X-Evil" not in r.headers


def _json_endpoints():
    return sorted((ep.method, ep.path, ep.roles) for ep in REGISTRY.values() if ep.body)


def _concrete(path: str, store) -> str:
    plot = store.read("plots", where={"status": "available"}, limit=1)["plot_id"].iloc[0]
    road = store.read("roads", limit=1)["asset_id"].iloc[0]
    values = {
        "plot_id": plot,
        "app_id": "A-1",
        "layer": "roads",
        "key": road,
        "name": "roads",
        "asset_id": road,
        "token": "t",
        "job_id": "j",
    }
    return "/api" + re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


def test_every_json_endpoint_refuses_deep_nesting_with_400(client, store):
    endpoints = _json_endpoints()
    assert len(endpoints) >= 5
    tokens = {
        role: {"Authorization": f"Bearer {accounts.issue_token(store, role)}"}
        for role in ("investor", "planner", "admin")
    }
    before = {name: store.count(name) for name in ("plots", "applications", "roads")}
    for method, path, roles in endpoints:
        who = "investor" if "investor" in roles and "planner" not in roles else "admin"
        r = client.open(
            _concrete(path, store),
            method=method.upper(),
            data=NESTED,
            content_type="application/json",
            headers=tokens[who],
        )
        assert r.status_code == 400, (method, path, r.status_code, r.get_data(as_text=True))
        assert "nests deeper" in r.get_json()["error"]
    for depth in (33, 900):  # parses, but deeper than any body we take
        r = client.post(
            "/api/applications",
            data=b"[" * depth + b"]" * depth,
            content_type="application/json",
            headers=tokens["investor"],
        )
        assert r.status_code == 400, depth
    assert {name: store.count(name) for name in before} == before


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("DELETE", "/api/plots", {"GET", "HEAD", "OPTIONS"}),
        ("PUT", "/api/plots", {"GET"}),
        ("DELETE", "/", {"GET", "HEAD"}),
        ("POST", "/plots", {"GET"}),
        ("PATCH", "/login", {"GET", "POST"}),
        ("PUT", "/api/export/plots.geojson", {"GET"}),
    ],
)
def test_undeclared_methods_get_405_with_allow(client, method, path, allowed):
    r = client.open(path, method=method)
    assert r.status_code == 405, r.get_data(as_text=True)
    allow = {m.strip() for m in r.headers["Allow"].split(",")}
    assert allowed <= allow and method not in allow
    if path.startswith("/api/"):
        assert r.get_json()["error"]


@pytest.mark.parametrize("value", ["0", "20300101", "1e9", "-1", "2030-1-1", "tomorrow"])
def test_only_iso_dates_are_dates(client, value):
    for path in (
        f"/api/plots?ready_by={value}",
        f"/api/plots?as_of={value}",
        f"/api/export/plots.geojson?ready_by={value}",
    ):
        r = client.get(path)
        assert r.status_code == 400, path
        assert r.get_json()["field"] in ("ready_by", "as_of")
    assert client.get("/api/plots?ready_by=2030-01-01").status_code == 200
