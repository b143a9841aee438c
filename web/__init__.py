"""The zoneplan web app: a thin Flask adapter over geo (store) and planner (decisions)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from flask import Flask, render_template, request, session
from flask_babel import Babel, get_locale
from flask_babel import gettext as _
from flask_compress import Compress

from geo.store import default_db
from geo.validate import parse_date
from web.i18n import error_title

LANGUAGES = ("ru", "en", "kk")
DEFAULT_MAX_CONTENT_LENGTH = 32 * 1024 * 1024
#: Responses compressed (brotli, gzip...) when the client accepts it.
COMPRESSED_MEDIA = (
    "text/html",
    "text/css",
    "text/plain",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/geo+json",
    "application/vnd.mapbox-vector-tile",
)
BLUEPRINTS = (
    "web.auth",
    "web.pages",
    "web.api",
    "web.catalogue",
    "web.planner",
    "web.subdivide",
    "web.planner_access",
    "web.allocate",
    "web.ogc",
    "web.tiles",
    "web.dashboard",
)


class SetupError(RuntimeError):
    """The app cannot start: something `make setup` builds is missing."""


def config_from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Settings read from the environment (``ZONEPLAN_*``)."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {"ZONEPLAN_DB": env.get("ZONEPLAN_DB") or default_db()}
    if env.get("ZONEPLAN_SECRET_KEY"):
        out["SECRET_KEY"] = env["ZONEPLAN_SECRET_KEY"]
    for name in ("ZONEPLAN_TILES_URL", "ZONEPLAN_TILES_ATTRIBUTION"):
        if env.get(name):
            out[name] = env[name]
    for name, key in (
        ("ZONEPLAN_SESSION_IDLE", "SESSION_IDLE_S"),
        ("ZONEPLAN_SESSION_MAX", "SESSION_MAX_S"),
    ):
        if env.get(name):
            out[key] = float(env[name])
    if env.get("ZONEPLAN_MAX_CONTENT_LENGTH"):
        out["MAX_CONTENT_LENGTH"] = int(env["ZONEPLAN_MAX_CONTENT_LENGTH"])
    if env.get("ZONEPLAN_TODAY"):  # the date overdue flags compare with (default: each day's)
        try:
            out["ZONEPLAN_TODAY"] = parse_date(env["ZONEPLAN_TODAY"])
        except ValueError as err:
            raise ValueError(f"ZONEPLAN_TODAY: {err}") from None
    if env.get("ZONEPLAN_COOKIE_SECURE"):
        out["SESSION_COOKIE_SECURE"] = env["ZONEPLAN_COOKIE_SECURE"] not in ("0", "false", "no")
    return out


def select_locale() -> str:
    """The session's choice, then the user's saved language, then Accept-Language, then Russian."""
    from web.auth import current_user  # Flask-Login proxy

    choice = session.get("lang")
    if choice in LANGUAGES:
        return choice
    if current_user and current_user.is_authenticated and current_user.lang in LANGUAGES:
        return current_user.lang
    return request.accept_languages.best_match(LANGUAGES) or "ru"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app.

    Parameters
    ----------
    config : dict, optional
        Overrides, applied after the environment: ``ZONEPLAN_DB`` (store path),
        ``SECRET_KEY``, ``ZONEPLAN_TILES_URL``/``ZONEPLAN_TILES_ATTRIBUTION`` (optional basemap),
        ``MAX_CONTENT_LENGTH``, ``LOGIN_RATE_LIMIT``/``LOGIN_RATE_WINDOW``,
        ``SESSION_IDLE_S``/``SESSION_MAX_S`` (log-in session lifetimes, seconds), ``STORE``
        (an open Store to use instead of opening ``ZONEPLAN_DB``), ``ZONEPLAN_TODAY`` (a date:
        what servicing answers count as today; default the system date). Without ``SECRET_KEY``
        (or ``ZONEPLAN_SECRET_KEY``) the store keeps one in its ``settings`` table.

    Raises
    ------
    SetupError
        When the self-hosted browser libraries are missing (run ``make setup``).
    geo.store.NotFound
        When there is no store (run ``zoneplan init``).
    """
    from usecases import accounts
    from web import auth, deps, security
    from web.vendor import VENDOR_DIR, missing_vendor_files

    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=DEFAULT_MAX_CONTENT_LENGTH,
        LANGUAGES=LANGUAGES,
        BABEL_DEFAULT_LOCALE="ru",
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).resolve().parent / "translations"),
        JSON_AS_ASCII=False,
        LOGIN_RATE_LIMIT=5,
        LOGIN_RATE_WINDOW=300,
        SESSION_IDLE_S=2 * 3600,
        SESSION_MAX_S=24 * 3600,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
        COMPRESS_MIMETYPES=list(COMPRESSED_MEDIA),
        COMPRESS_ALGORITHM=["br", "gzip"],
    )
    app.config.update(config_from_env())
    app.config.update(config or {})

    missing = missing_vendor_files()
    if missing:
        raise SetupError(
            f"{len(missing)} browser asset(s) missing in {VENDOR_DIR} "
            f"(e.g. {missing[0]}); run `make setup` to install them"
        )

    store = deps.init_app(app, app.config.get("STORE")).store
    if not app.config.get("SECRET_KEY"):
        # ZONEPLAN_SECRET_KEY was read above; else the store keeps one for every process.
        app.config["SECRET_KEY"] = accounts.secret_key(store, environ={})
    security.init_app(app)
    auth.init_app(app)
    Compress(app)
    Babel(app, locale_selector=select_locale)
    # tr_text: translate text held in data (API summaries, descriptions) without the
    # %-formatting Jinja's `_` applies, so a "35%" in a description stays text.
    app.jinja_env.globals.update(LANGUAGES=LANGUAGES, get_locale=get_locale, tr_text=_)

    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).bp)

    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(413)
    @app.errorhandler(429)
    def _error(err):
        from web.security import wants_json

        if wants_json():
            from web.auth import api_error

            return api_error(err.description, err.code)
        title = error_title(err.code, err.name, _)
        return render_template("error.html", error=err, title=title), err.code

    return app
