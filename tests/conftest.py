"""Shared fixtures: a built sample store, the web app, logged-in clients, a local-only browser.

Fixtures (reuse them; they are documented one by one below):

- ``sample_db``      (session) path of a store built once per test session in a tmp dir:
                     the synthetic sample zone of data/shapefiles, plus the
                     default accounts ``admin``/``planner``/``investor``.
- ``store_path``     (function) a private copy of ``sample_db`` that a test may write to.
- ``store``          (function) ``open_store(store_path)``.
- ``app``            (function) ``web.create_app`` over ``store_path``, TESTING on, CSRF on;
                     derived values (maps, servicing) shared through ``derived_cache``.
- ``derived_cache``  (session) the ``web.deps.RevisionCache`` those apps share.
- ``client``         (function) an anonymous test client of ``app``.
- ``login``          (function) ``login(client, username)`` logs a client in via the form
                     (a real CSRF token is fetched from /login first).
- ``investor_client``, ``planner_client``, ``admin_client`` (function) logged-in clients.
- ``csrf_token``     (function) ``csrf_token(client, path="/login")`` scrapes a page's token.
- ``live_server``    (function) a real waitress server on a free 127.0.0.1 port in a thread
                     over ``store_path``; yields its base URL.
- ``postgis_server`` (session) base URL of the PostgreSQL server (``$ZONEPLAN_TEST_PG`` or
                     postgresql://postgres@127.0.0.1:5432); skips when unreachable or without
                     PostGIS unless ZONEPLAN_REQUIRE_POSTGIS=1, then fails.
- ``new_database``   (session) ``new_database(template=None)`` makes a throw-away database
                     (with PostGIS, or a copy of ``template``) and returns its URL; all are
                     dropped at the end of the session.
- ``new_schema``     (function) ``new_schema()`` makes an empty schema in one shared database
                     and returns a URL whose search path puts it first; dropped after the test.
- ``sample_pg``      (session) a database holding the same sample as ``sample_db``
                     (copied with ``zoneplan migrate``); use it as a template.
- ``backend``        (function, parametrised "gpkg"/"postgis") the backend a test runs on.
- ``sample_location``(function) a writable copy of the sample on ``backend``: a path or a URL.
- ``empty_location`` (function) where ``create_store`` may make a new store on ``backend``.
- ``browser``        (session) Playwright Chromium from /usr/bin/chromium (skips when absent
                     unless ZONEPLAN_REQUIRE_BROWSER=1, then fails).
- ``page``           (function; request it after ``live_server`` so it closes first)
                     a new page whose requests to any host but 127.0.0.1/localhost
                     are aborted (recorded in ``page.zp_blocked``), console errors collected
                     in ``page.zp_errors``.

Helpers to import (``from conftest import ...``): ``PASSWORDS`` (the default accounts'
passwords by user name), ``scrape_csrf(html)``, ``unescape_js(text)`` (undo tojson's
``\\uXXXX`` escapes before looking for text in a map page), ``free_port()``,
``ARTIFACTS`` (test-artifacts/, git-ignored, for screenshots).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORDS = {
    "admin": "admin-pass-123",
    "planner": "planner-pass-123",
    "investor": "investor-pass-123",
}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


# --------------------------------------------------------------------------- the sample store
@pytest.fixture(scope="session")
def sample_db(tmp_path_factory) -> Path:
    """A store built once per session from the sample shapefiles."""
    from geo.store import create_store
    from usecases import accounts
    from zoneplan.commands.core import SAMPLE_DIR, load_folder

    path = tmp_path_factory.mktemp("sample") / "zone.gpkg"
    store = create_store(path)
    load_folder(store, SAMPLE_DIR)
    for username, role, _env in accounts.DEFAULT_USERS:
        if accounts.get_user(store, username) is None:
            accounts.create_user(store, username, role, PASSWORDS[username])
        else:
            accounts.set_password(store, username, PASSWORDS[username])
    return path


@pytest.fixture
def store_path(sample_db, tmp_path) -> Path:
    """A writable copy of the session's store."""
    path = tmp_path / "zone.gpkg"
    shutil.copy2(sample_db, path)
    return path


@pytest.fixture
def store(store_path):
    """The writable store copy, opened."""
    from geo.store import open_store

    return open_store(store_path)


# --------------------------------------------------------------------------- PostGIS
PG_SERVER = os.environ.get("ZONEPLAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432").rstrip("/")


def _postgis_missing() -> str | None:
    """Why the PostGIS tests cannot run here, or None when they can."""
    import psycopg

    try:
        with psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"
            ).fetchone()
    except psycopg.Error as err:
        return f"no PostgreSQL server at {PG_SERVER} ({str(err).strip().splitlines()[0]})"
    return None if row else f"PostgreSQL at {PG_SERVER} lacks PostGIS (postgresql-15-postgis-3)"


@pytest.fixture(scope="session")
def postgis_server() -> str:
    """The PostgreSQL server's base URL (no database)."""
    reason = _postgis_missing()
    if reason:
        if os.environ.get("ZONEPLAN_REQUIRE_POSTGIS") == "1":
            pytest.fail(f"{reason} and ZONEPLAN_REQUIRE_POSTGIS=1")
        pytest.skip(reason)
    return PG_SERVER


@pytest.fixture(scope="session")
def new_database(postgis_server):
    """A factory of throw-away databases, all dropped when the session ends."""
    import psycopg

    made: list[str] = []

    def make(template: str | None = None) -> str:
        name = f"zp_test_{os.getpid()}_{len(made)}"
        with psycopg.connect(f"{postgis_server}/postgres", autocommit=True) as conn:
            if template:
                # A template must have no other sessions while it is copied.
                conn.execute(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{template}' AND pid <> pg_backend_pid()"
                )
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        if not template:
            with psycopg.connect(f"{postgis_server}/{name}", autocommit=True) as conn:
                conn.execute("CREATE EXTENSION postgis")
        made.append(name)
        return f"{postgis_server}/{name}"

    yield make
    with psycopg.connect(f"{postgis_server}/postgres", autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sample_pg(sample_db, new_database) -> str:
    """The session's sample store copied into PostGIS; its database name, for templates."""
    from geo.store.migration import migrate

    url = new_database()
    migrate(str(sample_db), url, force=True)
    return url.rsplit("/", 1)[1]


@pytest.fixture(params=["gpkg", "postgis"])
def backend(request) -> str:
    """Run the test once on each backend."""
    return request.param


@pytest.fixture
def sample_location(backend, request, tmp_path) -> str:
    """A writable copy of the sample store on ``backend``."""
    if backend == "gpkg":
        return str(request.getfixturevalue("store_path"))
    return request.getfixturevalue("new_database")(request.getfixturevalue("sample_pg"))


@pytest.fixture(scope="session")
def schema_database(postgis_server, request) -> str:
    """One database whose schemas hold the tests' empty stores (cheaper than databases):
    ``$ZONEPLAN_TEST_PG_DB`` (the throw-away database .ci/run makes) or a new one."""
    return os.environ.get("ZONEPLAN_TEST_PG_DB") or request.getfixturevalue("new_database")()


@pytest.fixture
def new_schema(schema_database):
    """A factory of empty schemas in ``schema_database``; each URL puts its schema first
    on the search path, so a store made there lives in it. Dropped after the test."""
    import psycopg

    made: list[str] = []

    def make() -> str:
        name = f"s_{os.getpid()}_{time.monotonic_ns()}"
        with psycopg.connect(schema_database, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        made.append(name)
        return f"{schema_database}?options=-csearch_path%3D{name},public"

    yield make
    with psycopg.connect(schema_database, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def empty_location(backend, request, tmp_path) -> str:
    """Where a new store may be created on ``backend``."""
    if backend == "gpkg":
        return str(tmp_path / "z.gpkg")
    return request.getfixturevalue("new_schema")()


# --------------------------------------------------------------------------- the app
@pytest.fixture(scope="session")
def derived_cache():
    """One cache of derived values (snapshot, servicing, rendered maps) for every test app.

    The apps run over copies of one store, so equal revisions mean equal content;
    a test that writes gets a new revision and builds afresh.
    """
    from web.deps import RevisionCache

    return RevisionCache()


@pytest.fixture
def app(store_path, derived_cache):
    """The Flask app over the writable store copy (CSRF enforced as in production)."""
    from web import create_app

    app = create_app(
        {
            "ZONEPLAN_DB": str(store_path),
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "LOGIN_RATE_LIMIT": 5,
            "ZONEPLAN_CACHE": derived_cache,
        }
    )
    return app


@pytest.fixture
def client(app):
    """An anonymous test client."""
    return app.test_client()


def unescape_js(text: str) -> str:
    """Undo the ``\\uXXXX`` escapes Jinja's tojson puts on strings embedded in scripts."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


def scrape_csrf(html: str) -> str:
    """The first CSRF token in a page's forms."""
    match = re.search(r'name="(?:[a-z]+-)?csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="(?:[a-z]+-)?csrf_token"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def csrf_token():
    """``csrf_token(client, path='/login')``: the CSRF token of a page, for hand-made posts."""

    def fetch(client, path: str = "/login") -> str:
        return scrape_csrf(client.get(path).get_data(as_text=True))

    return fetch


@pytest.fixture
def login(csrf_token):
    """``login(client, username, password=None)``: log in through the form; returns the response."""

    def do(client, username: str, password: str | None = None, **extra):
        token = csrf_token(client, "/login")
        return client.post(
            "/login",
            data={
                "username": username,
                "password": password or PASSWORDS[username],
                "csrf_token": token,
                **extra,
            },
        )

    return do


def _logged_in(app, login, username):
    client = app.test_client()
    response = login(client, username)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


@pytest.fixture
def investor_client(app, login):
    """A client logged in as ``investor``."""
    return _logged_in(app, login, "investor")


@pytest.fixture
def planner_client(app, login):
    """A client logged in as ``planner``."""
    return _logged_in(app, login, "planner")


@pytest.fixture
def admin_client(app, login):
    """A client logged in as ``admin``."""
    return _logged_in(app, login, "admin")


# --------------------------------------------------------------------------- a real server
def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(store_path):
    """A waitress server (threads=8) over the store copy on a free port; yields its base URL."""
    from waitress.server import create_server

    from web import create_app

    app = create_app({"ZONEPLAN_DB": str(store_path), "SECRET_KEY": "live-secret"})
    server = create_server(app, host="127.0.0.1", port=free_port(), threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.effective_port}"
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", server.effective_port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    yield base

    def close_all() -> None:  # the listener, the trigger and a browser's keep-alive channels
        for channel in list(server._map.values()):
            channel.close()

    # closed by the loop's own thread (between polls), so its poll never meets a closed fd
    # (closing them from here raced it: OSError: Bad file descriptor); an empty map ends it
    server.trigger.pull_trigger(close_all)
    thread.join(timeout=5)
    server.task_dispatcher.shutdown(timeout=2)
    assert not thread.is_alive(), "the test server did not stop"


# --------------------------------------------------------------------------- the browser
@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's, never a downloaded one) driven by Playwright."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("ZONEPLAN_REQUIRE_BROWSER") == "1":
            pytest.fail(
                f"{CHROMIUM} is missing and ZONEPLAN_REQUIRE_BROWSER=1 (apt-get install chromium)"
            )
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page that may only reach this machine; blocked and console errors recorded."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    pg = context.new_page()
    pg.zp_blocked = []
    pg.zp_errors = []

    def guard(route):
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            pg.zp_blocked.append(route.request.url)
            route.abort()

    pg.route("**/*", guard)
    pg.on("console", lambda msg: pg.zp_errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda err: pg.zp_errors.append(str(err)))
    yield pg
    context.close()
