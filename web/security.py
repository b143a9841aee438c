"""Security set centrally: CSRF, per-request CSP nonces, response headers, login throttling."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from urllib.parse import urlsplit

from flask import Flask, current_app, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup

from usecases import accounts

csrf = CSRFProtect()
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_INLINE_TAG = re.compile(
    r"<(script|style)\b(?![^>]*\bsrc\s*=)(?![^>]*\bnonce\s*=)([^>]*)>", re.IGNORECASE
)


def csp_nonce() -> str:
    """This request's CSP nonce (templates: ``<script nonce="{{ csp_nonce() }}">``)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def add_nonces(html: str, nonce: str | None = None) -> Markup:
    """Give every inline ``<script>`` and ``<style>`` of ``html`` this request's nonce.

    For markup made elsewhere (folium); our own templates write the nonce themselves.
    """
    nonce = nonce or csp_nonce()
    return Markup(_INLINE_TAG.sub(lambda m: f'<{m.group(1)} nonce="{nonce}"{m.group(2)}>', html))


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def basic_credentials() -> tuple[str, str] | None:
    """The user name and password of an ``Authorization: Basic`` header, else None."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip() or len(encoded) > 1024:
        return None
    try:
        text = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = text.partition(":")
    return (username, password) if colon else None


def wants_json() -> bool:
    """Whether the request is an API call (answer errors as JSON)."""
    return request.path.startswith("/api") or (request.accept_mimetypes.best == "application/json")


def _tile_origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url.replace("{s}", "a"))
    if not parts.scheme or not parts.netloc:
        return None
    host = parts.netloc
    if "{s}" in url:  # subdomain-rotating tile servers
        host = "*." + host.split(".", 1)[1] if "." in host else host
    return f"{parts.scheme}://{host}"


def content_security_policy(nonce: str, tiles_url: str | None = None) -> str:
    """The CSP: only this origin, plus nonces for inline scripts and styles.

    A configured basemap's origin is allowed for images (tiles) only.
    """
    images = "'self' data:"
    origin = _tile_origin(tiles_url)
    if origin:
        images += f" {origin}"
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            f"img-src {images}",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def init_app(app: Flask) -> None:
    """CSRF on every unsafe request (except Bearer-token API calls) and the security headers."""
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid for the session's life
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    csrf.init_app(app)
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.before_request
    def _check_csrf():
        # Bearer requests carry no cookie-based authority (web.auth ignores the session
        # cookie when an Authorization header is present), so a forged form cannot use them.
        if (
            request.method in SAFE_METHODS
            or bearer_token() is not None
            or request.routing_exception is not None
        ):  # 404/405 say so, not "CSRF"
            return None
        if request.path.startswith("/api/") and not current_user.is_authenticated:
            return None  # no session, nothing to forge: the API view answers 401 itself
        csrf.protect()
        return None

    @app.errorhandler(CSRFError)
    def _csrf_error(err: CSRFError):
        message = (
            f"{err.description} Reload the page and try again; scripts send "
            "the X-CSRFToken header or an Authorization: Bearer token."
        )
        if wants_json():
            return jsonify({"error": message, "field": None}), 400
        return message, 400, {"Content-Type": "text/plain; charset=utf-8"}

    @app.after_request
    def _headers(response):
        nonce = csp_nonce()
        response.headers.setdefault(
            "Content-Security-Policy",
            content_security_policy(nonce, current_app.config.get("ZONEPLAN_TILES_URL")),
        )
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        return response


def login_throttle() -> accounts.LoginThrottle:
    """The failed-login counter, kept in the store (shared by every server process)."""
    from web.deps import get_store

    config = current_app.config
    return accounts.LoginThrottle(
        get_store(),
        int(config.get("LOGIN_RATE_LIMIT", 5)),
        float(config.get("LOGIN_RATE_WINDOW", 300)),
    )
