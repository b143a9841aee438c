"""User accounts: password hashes, roles, API tokens; framework-free, over the ``users`` layer."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import pandas as pd
from werkzeug.security import check_password_hash, generate_password_hash

from geo.layers import ROLES, get_layer
from geo.store import Conflict, Invalid, NotFound, Store, StoreError
from geo.store.base import now_iso
from geo.validate import Problem

# Letters of any script (Kazakh and Russian names included), digits, "." "_" "-".
USERNAME_RE = re.compile(r"[^\W_][\w.-]{1,31}")
MIN_PASSWORD = 8
LANGUAGES: tuple[str, ...] = get_layer("users").field("lang").choices or ("en", "ru", "kk")
DEFAULT_USERS: tuple[tuple[str, str, str], ...] = (
    # (username, role, environment variable holding its password)
    ("admin", "admin", "ZONEPLAN_ADMIN_PASSWORD"),
    ("planner", "planner", "ZONEPLAN_PLANNER_PASSWORD"),
    ("investor", "investor", "ZONEPLAN_INVESTOR_PASSWORD"),
)
TOKEN_PREFIX = "zp_"
# Compared against when a user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password-" + secrets.token_hex(8))
_PUBLIC_FIELDS = ("username", "role", "lang", "active", "created")
SEEN_EVERY_S = 60  # a live session's last request is recorded at most this often
SECRET_SETTING = "flask_secret_key"


def hash_password(password: str) -> str:
    """A salted werkzeug hash (scrypt) of ``password``."""
    return generate_password_hash(password)


def verify_password(pw_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``pw_hash`` (False for a missing or malformed hash)."""
    try:
        return bool(pw_hash) and check_password_hash(str(pw_hash), password)
    except (ValueError, TypeError):
        return False


def token_digest(token: str) -> str:
    """The stored form of an API token: its SHA-256 (tokens are 256-bit random, so no salt)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _invalid(field: str, reason: str) -> Invalid:
    return Invalid([Problem(None, None, field, reason)])


def check_username(username: str) -> str:
    """Return ``username`` stripped, or raise Invalid naming what is wrong with it."""
    username = (username or "").strip()
    if not USERNAME_RE.fullmatch(username):
        raise _invalid(
            "username",
            "a user name is 2-32 letters (any script), digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return username


def check_password(password: str) -> str:
    """Return ``password`` or raise Invalid when it is too short."""
    if len(password or "") < MIN_PASSWORD:
        raise _invalid("password", f"a password has at least {MIN_PASSWORD} characters")
    return password


def check_role(role: str) -> str:
    """Return ``role`` or raise Invalid listing the roles."""
    if role not in ROLES:
        raise _invalid("role", f"{role!r} is not a role; roles: {', '.join(ROLES)}")
    return role


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in _PUBLIC_FIELDS}
    out["active"] = out["active"] is not False  # missing means active
    out["has_token"] = bool(row.get("token_hash"))
    return out


def _plain(row: pd.Series) -> dict[str, Any]:
    return {
        str(k): (None if v is pd.NA or (isinstance(v, float) and v != v) else v)
        for k, v in row.to_dict().items()
    }


def get_user(store: Store, username: str, *, secrets_too: bool = False) -> dict[str, Any] | None:
    """The user called ``username`` (None when unknown).

    Parameters
    ----------
    secrets_too : bool
        Include ``pw_hash``, ``token_hash`` and ``version`` (for authentication only).
    """
    rows = store.read("users", where={"username": username})
    if rows.empty:
        return None
    row = _plain(rows.iloc[0])
    if secrets_too:
        out = _public(row)
        out.update(
            pw_hash=row.get("pw_hash"), token_hash=row.get("token_hash"), version=row.get("version")
        )
        return out
    return _public(row)


def list_users(store: Store) -> list[dict[str, Any]]:
    """Every user without secrets, by name."""
    return [_public(_plain(r)) for _, r in store.read("users", order_by="username").iterrows()]


def create_user(
    store: Store,
    username: str,
    role: str,
    password: str,
    *,
    lang: str | None = None,
    by: str = "system",
) -> dict[str, Any]:
    """Add a user; raise Invalid for a bad name, role or password, Conflict when taken."""
    username = check_username(username)
    check_role(role)
    check_password(password)
    if lang is not None and lang not in LANGUAGES:
        raise _invalid("lang", f"{lang!r} is not one of {', '.join(LANGUAGES)}")
    if get_user(store, username) is not None:
        raise Conflict(f"user {username!r} already exists")
    row = {
        "username": username,
        "pw_hash": hash_password(password),
        "role": role,
        "token_hash": None,
        "lang": lang,
        "active": True,
        "created": now_iso(),
    }
    store.insert("users", pd.DataFrame([row]), user=by)
    return get_user(store, username)  # type: ignore[return-value]


def _require(store: Store, username: str) -> dict[str, Any]:
    user = get_user(store, username)
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def set_password(store: Store, username: str, password: str, *, by: str = "system") -> None:
    """Replace a user's password; every log-in session of theirs ends."""
    _require(store, username)
    check_password(password)
    store.update("users", username, {"pw_hash": hash_password(password)}, user=by)
    end_sessions(store, username)


def set_role(store: Store, username: str, role: str, *, by: str = "system") -> None:
    """Change a user's role."""
    _require(store, username)
    store.update("users", username, {"role": check_role(role)}, user=by)


def set_active(store: Store, username: str, active: bool, *, by: str = "system") -> None:
    """Enable or disable a user (a disabled user can neither log in nor use a token)."""
    _require(store, username)
    store.update("users", username, {"active": bool(active)}, user=by)


def set_lang(store: Store, username: str, lang: str | None) -> None:
    """Remember a user's language (``en``, ``ru`` or ``kk``)."""
    if lang is not None and lang not in LANGUAGES:
        raise _invalid("lang", f"{lang!r} is not one of {', '.join(LANGUAGES)}")
    _require(store, username)
    store.update("users", username, {"lang": lang}, user=username)


def authenticate(store: Store, username: str, password: str) -> dict[str, Any] | None:
    """The active user whose name and password match, else None (same cost either way)."""
    user = get_user(store, (username or "").strip(), secrets_too=True)
    if user is None:
        verify_password(_DUMMY_HASH, password or "")
        return None
    if not verify_password(user["pw_hash"], password or "") or not user["active"]:
        return None
    return user


class VerifiedPasswords:
    """Passwords verified recently, so desktop GIS clients sending HTTP Basic on every request
    do not pay a scrypt verification (~110 ms) each time.

    Entries are keyed by an HMAC (with a per-process random key) of the stored hash and the
    password, never the password itself; a changed password changes the stored hash, so its
    old entries stop matching. The user row is still read on every call, so a disabled
    account or a changed role takes effect at once.

    Parameters
    ----------
    ttl_s : float
        Seconds a verification is trusted.
    max_entries : int
        Entries kept (oldest dropped first).
    """

    def __init__(self, ttl_s: float = 300.0, max_entries: int = 1024):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._key = secrets.token_bytes(32)
        self._seen: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def _digest(self, pw_hash: str, password: str) -> bytes:
        return hmac.new(self._key, f"{pw_hash}\0{password}".encode(), hashlib.sha256).digest()

    def authenticate(self, store: Store, username: str, password: str) -> dict[str, Any] | None:
        """Like :func:`authenticate`, skipping the hash check for a pair verified recently."""
        user = get_user(store, (username or "").strip(), secrets_too=True)
        if user is None or not user["active"] or not user["pw_hash"]:
            return authenticate(store, username, password)  # the same cost as a wrong password
        digest = self._digest(user["pw_hash"], password or "")
        now = time.monotonic()
        with self._lock:
            if self._seen.get(digest, 0.0) > now:
                return user
        if not verify_password(user["pw_hash"], password or ""):
            return None
        with self._lock:
            self._seen[digest] = now + self.ttl_s
            while len(self._seen) > self.max_entries:
                self._seen.pop(next(iter(self._seen)))
        return user


@dataclass(frozen=True)
class SessionLimits:
    """How long a log-in session lasts: ``idle_s`` without a request, ``max_s`` in all."""

    idle_s: float = 2 * 3600
    max_s: float = 24 * 3600


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _age_s(stamp: Any, now: dt.datetime) -> float:
    """Seconds since an ISO stamp of the store (unreadable stamps count as ancient)."""
    try:
        return (now - pd.Timestamp(stamp).to_pydatetime().replace(tzinfo=None)).total_seconds()
    except (TypeError, ValueError):
        return float("inf")


def start_session(store: Store, username: str, limits: SessionLimits = SessionLimits()) -> str:
    """Open a log-in session for ``username``; return its id (only its hash is stored).

    The user's expired sessions are swept in the same transaction.
    """
    sid = secrets.token_urlsafe(32)
    stamp = now_iso()
    with store.transaction(username) as tx:
        old = tx.read("sessions", where={"username": username})
        now = _now()
        for _, row in old.iterrows():
            if _expired(row, now, limits):
                tx.delete("sessions", row["sid_hash"])
        tx.insert(
            "sessions",
            pd.DataFrame(
                [
                    {
                        "sid_hash": token_digest(sid),
                        "username": username,
                        "created": stamp,
                        "seen": stamp,
                    }
                ]
            ),
        )
    return sid


def _expired(row: Any, now: dt.datetime, limits: SessionLimits) -> bool:
    return _age_s(row["created"], now) > limits.max_s or _age_s(row["seen"], now) > limits.idle_s


def user_for_session(
    store: Store, sid: str, limits: SessionLimits = SessionLimits()
) -> dict[str, Any] | None:
    """The active user of a live session ``sid``, or None (unknown, ended, idle or too old).

    An expired session is deleted; a live one records the request (at most once a minute,
    so reading pages does not turn into a write each).
    """
    if not sid:
        return None
    key = token_digest(sid)
    try:
        row = store.get("sessions", key)
    except NotFound:
        return None
    now = _now()
    if _expired(row, now, limits):
        end_session(store, sid)
        return None
    user = get_user(store, row["username"], secrets_too=True)
    if user is None or not user["active"]:
        return None
    if _age_s(row["seen"], now) > SEEN_EVERY_S:
        try:
            store.update("sessions", key, {"seen": now_iso()}, user=row["username"])
        except NotFound:  # ended by a log-out meanwhile
            return None
    return user


def end_session(store: Store, sid: str) -> None:
    """End one log-in session (log-out); nothing happens when it is already gone."""
    try:
        store.delete("sessions", token_digest(sid or ""))
    except NotFound:
        pass


def end_sessions(store: Store, username: str) -> int:
    """End every log-in session of ``username``; return how many there were."""
    with store.transaction(username) as tx:
        keys = tx.keys("sessions", where={"username": username})
        for key in keys:
            tx.delete("sessions", key)
    return len(keys)


class LoginThrottle:
    """A limit on failed log-ins per (user name, client address), counted in the store so
    every server process shares it.

    Parameters
    ----------
    store : Store
    limit : int
        Failures allowed within ``window`` seconds of the first; the next attempt is refused.
    window : float
        Seconds the count lasts from the first failure.
    """

    def __init__(self, store: Store, limit: int = 5, window: float = 300.0):
        self.store = store
        self.limit = limit
        self.window = window

    @staticmethod
    def _key(username: str, address: str) -> str:
        return token_digest(f"{(username or '').strip().lower()}\x00{address or ''}")

    def retry_after(self, username: str, address: str) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        try:
            row = self.store.get("login_fails", self._key(username, address))
        except NotFound:
            return 0
        left = self.window - _age_s(row["since"], _now())
        if row["fails"] < self.limit or left <= 0:
            return 0
        return max(1, int(left) + 1)

    def fail(self, username: str, address: str) -> None:
        """Count one failed attempt."""
        key = self._key(username, address)
        with self.store.transaction("system") as tx:
            try:
                row = tx.get("login_fails", key, for_update=True)
            except NotFound:
                row = None
            if row is None:
                tx.insert(
                    "login_fails", pd.DataFrame([{"fail_key": key, "fails": 1, "since": now_iso()}])
                )
            elif _age_s(row["since"], _now()) > self.window:
                tx.update("login_fails", key, {"fails": 1, "since": now_iso()})
            else:
                tx.update("login_fails", key, {"fails": int(row["fails"]) + 1})

    def reset(self, username: str, address: str) -> None:
        """Forget the failures after a successful log-in."""
        try:
            self.store.delete("login_fails", self._key(username, address))
        except NotFound:
            pass


def secret_key(store: Store, environ: Mapping[str, str] | None = None) -> str:
    """The web app's secret key: ``ZONEPLAN_SECRET_KEY``, else the one kept in the store's
    ``settings`` (made on first use; never a file beside the store)."""
    env = os.environ if environ is None else environ
    if env.get("ZONEPLAN_SECRET_KEY"):
        return env["ZONEPLAN_SECRET_KEY"]
    with store.transaction("system") as tx:
        try:
            return str(tx.get("settings", SECRET_SETTING)["value"])
        except NotFound:
            key = secrets.token_hex(32)
            tx.insert("settings", pd.DataFrame([{"name": SECRET_SETTING, "value": key}]))
            return key


def issue_token(store: Store, username: str, *, by: str | None = None) -> str:
    """A new API token for ``username`` (replacing any earlier one); only its hash is kept."""
    _require(store, username)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.update("users", username, {"token_hash": token_digest(token)}, user=by or username)
    return token


def revoke_token(store: Store, username: str, *, by: str | None = None) -> None:
    """Forget ``username``'s API token."""
    _require(store, username)
    store.update("users", username, {"token_hash": None}, user=by or username)


def user_for_token(store: Store, token: str) -> dict[str, Any] | None:
    """The active user holding API token ``token``, or None."""
    token = (token or "").strip()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    rows = store.read("users", where={"token_hash": token_digest(token)})
    if rows.empty:
        return None
    user = _public(_plain(rows.iloc[0]))
    return user if user["active"] else None


def generate_password() -> str:
    """A random password a person can type (16 URL-safe characters)."""
    return secrets.token_urlsafe(12)


def create_default_users(store: Store, *, out: TextIO | None = None) -> list[str]:
    """Create the ``admin``, ``planner`` and ``investor`` accounts when absent.

    Passwords come from ``ZONEPLAN_ADMIN_PASSWORD``, ``ZONEPLAN_PLANNER_PASSWORD`` and
    ``ZONEPLAN_INVESTOR_PASSWORD``; an unset one is generated and printed once to ``out``
    (standard output by default): it is never stored in clear.

    Returns
    -------
    list of str
        The names of the accounts created.
    """
    out = out or sys.stdout
    made = []
    for username, role, env in DEFAULT_USERS:
        if get_user(store, username) is not None:
            continue
        password = os.environ.get(env)
        generated = not password
        password = password or generate_password()
        try:
            create_user(store, username, role, password)
        except (StoreError, ValueError) as err:
            raise StoreError(f"cannot create the {role} account from ${env}: {err}") from None
        made.append(username)
        if generated:
            print(
                f"created user {username!r} (role {role}) with password {password}   "
                f"(shown once; set ${env} to choose it)",
                file=out,
            )
        else:
            print(
                f"created user {username!r} (role {role}) with the password from ${env}", file=out
            )
    return made
