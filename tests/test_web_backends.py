"""The web app on PostGIS answers as on the GeoPackage: every page and API, reads and writes,
and two `zoneplan serve` processes on one database stay coherent."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import PASSWORDS, free_port, scrape_csrf

from geo.store import open_store

PAGES = [
    "/",
    "/plots",
    "/downloads",
    "/planner",
    "/planner/history",
    "/applications",
    "/account",
    "/upload",
    "/admin/users",
    "/api/plots",
    "/api/kpi",
    "/api/layers",
    "/api/applications",
    "/api/plots?min_area=2&max_area=6&sort=-area_ha&limit=5",
    "/api/plots?status=reserved,allocated",
    "/api/layers/roads?limit=7",
    "/api/layers/applications",
    "/api/plots/P-010",
]


def _app(location: str, derived_cache):
    from web import create_app

    return create_app(
        {
            "ZONEPLAN_DB": location,
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "ZONEPLAN_CACHE": derived_cache,
        }
    )


def _as_admin(app, login):
    client = app.test_client()
    assert login(client, "admin").status_code == 302
    return client


def test_every_page_and_api_answers_alike_on_both_backends(
    store_path, postgis_server, sample_pg, new_database, derived_cache, login
):
    gpkg = _as_admin(_app(str(store_path), derived_cache), login)
    pg = _as_admin(_app(new_database(sample_pg), derived_cache), login)
    for path in PAGES:
        a, b = gpkg.get(path), pg.get(path)
        assert (path, a.status_code) == (path, b.status_code) and a.status_code == 200
        if a.is_json:
            same = lambda body: (
                {k: v for k, v in body.items() if k != "timeStamp"}
                if isinstance(body, dict)
                else body
            )  # noqa: E731
            assert same(a.get_json()) == same(b.get_json()), path
        else:
            # Pages embed per-client tokens and the store's name; compare their visible text.
            strip = lambda html: re.sub(
                r'name="csrf[^>]*>|zone\\.gpkg|zp_test_\\w+',
                "",  # noqa: E731
                html.get_data(as_text=True),
            )
            assert len(strip(a)) == pytest.approx(len(strip(b)), rel=0.01), path


def test_a_planner_write_through_the_api_is_stored_and_audited(
    backend, sample_location, derived_cache, login, csrf_token
):
    app = _app(sample_location, derived_cache)
    client = app.test_client()
    assert login(client, "planner").status_code == 302
    headers = {"X-CSRFToken": csrf_token(client, "/account")}
    store = open_store(sample_location)
    version = store.get("plots", "P-001")["version"]
    response = client.patch(
        "/api/plots/P-001", json={"version": version, "cadastre": "03-123"}, headers=headers
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    stale = client.patch(
        "/api/plots/P-001", json={"version": version, "cadastre": "x"}, headers=headers
    )
    assert stale.status_code == 409
    assert store.get("plots", "P-001")["cadastre"] == "03-123"
    last = store.read("audit", order_by="-audit_id", limit=1).iloc[0]
    assert (last["username"], last["feat_id"]) == ("planner", "P-001")
    store.close()


# --------------------------------------------------------------------------- two processes
def _serve(url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "ZONEPLAN_SECRET_KEY": "two-process-secret"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zoneplan.cli",
            "serve",
            "--db",
            url,
            "--port",
            str(port),
            "--threads",
            "4",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2)
            return proc
        except (urllib.error.URLError, ConnectionError):
            if proc.poll() is not None:
                raise AssertionError(f"serve exited: {proc.stdout.read()}")
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("serve did not start within 60 s")


class Browser:
    """A cookie-keeping HTTP client (one person's browser) that can talk to any server."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, url: str) -> tuple[int, str]:
        try:
            with self.opener.open(url, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()


def test_two_serve_processes_on_one_database_stay_coherent(new_database, sample_pg):
    url = new_database(sample_pg)
    one, two = free_port(), free_port()
    procs = [_serve(url, one)]
    try:
        procs.append(_serve(url, two))
        first, second = f"http://127.0.0.1:{one}", f"http://127.0.0.1:{two}"
        person = Browser()
        _, page = person.get(f"{first}/login")
        from urllib.parse import urlencode

        status, _ = person.send(
            "POST",
            f"{first}/login",
            urlencode(
                {
                    "username": "planner",
                    "password": PASSWORDS["planner"],
                    "csrf_token": scrape_csrf(page),
                }
            ).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200  # redirected to the map
        # Read through the second process first, so it has the old plot cached.
        status, body = person.get(f"{second}/api/plots/P-002")
        assert status == 200
        plot_status = json.loads(body)["properties"]["status"]
        store = open_store(url)
        version = store.get("plots", "P-002")["version"]
        store.close()
        _, account = person.get(f"{first}/account")
        status, body = person.send(
            "PATCH",
            f"{first}/api/plots/P-002",
            json.dumps({"version": version, "cadastre": "two-procs"}).encode(),
            {"Content-Type": "application/json", "X-CSRFToken": scrape_csrf(account)},
        )
        assert status == 200, body
        status, body = person.get(f"{second}/api/plots/P-002")
        assert json.loads(body)["properties"]["cadastre"] == "two-procs"
        status, body = person.get(f"{second}/api/plots?limit=1000&status={plot_status}")
        listed = {f["properties"]["plot_id"]: f["properties"] for f in json.loads(body)["features"]}
        assert listed["P-002"]["cadastre"] == "two-procs"
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
