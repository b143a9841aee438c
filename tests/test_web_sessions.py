"""Log-in sessions live in the store: log-out ends them, they expire, every process shares them
and the failed-login counter."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import PASSWORDS, scrape_csrf

from web import create_app

COOKIE = "session"


def _login(client, username="investor", password=None):
    token = scrape_csrf(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login",
        data={
            "username": username,
            "csrf_token": token,
            "password": password or PASSWORDS[username],
        },
    )


def _replay(app, cookie: str):
    """A fresh client (another browser) carrying a copied session cookie."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie)
    return thief


def _opens_account(client) -> bool:
    return client.get("/account").status_code == 200


def test_a_cookie_replayed_after_logout_no_longer_opens_the_account(app, store):
    client = app.test_client()
    assert _login(client).status_code == 302
    cookie = client.get_cookie(COOKIE).value
    assert _opens_account(_replay(app, cookie))
    assert store.count("sessions", where={"username": "investor"}) == 1
    token = scrape_csrf(client.get("/account").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert store.count("sessions", where={"username": "investor"}) == 0
    replayed = _replay(app, cookie).get("/account")
    assert replayed.status_code == 302 and "/login" in replayed.headers["Location"]


@pytest.mark.parametrize("stamp, minutes", [("seen", 121), ("created", 24 * 60 + 1)])
def test_sessions_expire_when_idle_and_when_old(app, store, stamp, minutes):
    client = app.test_client()
    assert _login(client).status_code == 302 and _opens_account(client)
    key = store.read("sessions", where={"username": "investor"})["sid_hash"].iloc[0]
    old = (dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=minutes)).isoformat(
        timespec="seconds"
    )
    store.update("sessions", key, {stamp: old})
    assert not _opens_account(client)
    assert store.count("sessions", where={"username": "investor"}) == 0  # swept when seen


def test_lifetimes_come_from_the_environment(store_path, monkeypatch):
    monkeypatch.setenv("ZONEPLAN_SESSION_IDLE", "600")
    monkeypatch.setenv("ZONEPLAN_SESSION_MAX", "3600")
    app = create_app({"ZONEPLAN_DB": str(store_path), "SECRET_KEY": "x"})
    assert (app.config["SESSION_IDLE_S"], app.config["SESSION_MAX_S"]) == (600.0, 3600.0)


def test_changing_the_password_ends_the_other_sessions(app, store):
    laptop, phone = app.test_client(), app.test_client()
    assert _login(laptop).status_code == 302 and _login(phone).status_code == 302
    token = scrape_csrf(laptop.get("/account").get_data(as_text=True))
    r = laptop.post(
        "/account",
        data={
            "csrf_token": token,
            "pw-current": PASSWORDS["investor"],
            "pw-password": "a-new-pass-456",
            "pw-confirm": "a-new-pass-456",
        },
    )
    assert r.status_code == 302
    assert _opens_account(laptop) and not _opens_account(phone)


def test_two_server_processes_share_sessions_and_the_login_throttle(store_path, derived_cache):
    config = {
        "ZONEPLAN_DB": str(store_path),
        "TESTING": True,
        "LOGIN_RATE_LIMIT": 3,
        "ZONEPLAN_CACHE": derived_cache,
    }
    one, two = create_app(dict(config)), create_app(dict(config))
    assert one.secret_key == two.secret_key  # from the store, not per process
    client = one.test_client()
    assert _login(client).status_code == 302
    assert _opens_account(_replay(two, client.get_cookie(COOKIE).value))
    for _ in range(3):
        assert _login(one.test_client(), "planner", "wrong-password").status_code == 401
    refused = _login(two.test_client(), "planner")
    assert refused.status_code == 429  # the other process counted the failures too
    assert _login(two.test_client(), "admin").status_code == 302  # per user name
