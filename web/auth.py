"""Log-in, roles and API tokens: Flask-Login over usecases.accounts, and the role decorators.

Helpers for other blueprints (stable API):

- ``current_role() -> str``: ``'public'`` for anonymous, else the user's role;
- ``current_username() -> str | None``;
- ``has_role(*roles) -> bool``: admin counts as planner too;
- ``role_required(*roles)``: for pages (anonymous -> redirect to /login?next=..., wrong role -> 403);
- ``api_role_required(*roles)``: for JSON (anonymous -> 401, wrong role -> 403, body
  ``{"error": ..., "field": null}``).

A request with ``Authorization: Bearer <token>`` is authenticated by that token alone (the
session cookie is ignored), which is why such requests may skip the CSRF check. HTTP Basic
(for desktop GIS clients) is honoured on the read-only OGC API under /ogc only: browsers
replay Basic credentials by themselves, so they must never authorise a write.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from geo.layers import ROLES
from geo.store import StoreError
from usecases import accounts
from web.deps import get_store
from web.security import basic_credentials, bearer_token, login_throttle

bp = Blueprint("auth", __name__)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
VERIFIED = "zoneplan_verified_passwords"
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please log in to see this page.")
login_manager.session_protection = "basic"


class User(UserMixin):
    """A logged-in person (a server-side session ``sid``) or script (Bearer token, HTTP Basic)."""

    def __init__(self, record: dict[str, Any], *, sid: str | None = None, via: str = "session"):
        self.username: str = record["username"]
        self.role: str = record["role"]
        self.lang: str | None = record.get("lang")
        self.via = via if sid is None else "session"
        self._id = sid or f"{via}:{self.username}"

    def get_id(self) -> str:
        return self._id

    @property
    def is_active(self) -> bool:
        return True  # inactive users are never loaded


BASIC_PATHS = ("/ogc",)


def _basic_credentials() -> tuple[str, str] | None:
    """HTTP Basic credentials, on the read-only paths that accept them."""
    if request.method not in ("GET", "HEAD") or not request.path.startswith(BASIC_PATHS):
        return None
    return basic_credentials()


@login_manager.user_loader
def _load_user(sid: str) -> User | None:
    if bearer_token() is not None or _basic_credentials() is not None:
        return None  # a Bearer or Basic request is the header's, never the cookie's
    record = accounts.user_for_session(get_store(), sid, session_limits())
    return User(record, sid=sid) if record else None


@login_manager.request_loader
def _load_token_user(req) -> User | None:
    token = bearer_token()
    if token is not None:
        record = accounts.user_for_token(get_store(), token)
        return User(record, via="token") if record else None
    credentials = _basic_credentials()
    if credentials is None:
        return None
    username, password = credentials
    throttle, address = login_throttle(), request.remote_addr or ""
    if throttle.retry_after(username, address):
        return None
    record = current_app.extensions[VERIFIED].authenticate(get_store(), username, password)
    if record is None:
        throttle.fail(username, address)
        return None
    return User(record, via="basic")


def session_limits() -> accounts.SessionLimits:
    """The app's idle and absolute log-in session lifetimes."""
    config = current_app.config
    return accounts.SessionLimits(float(config["SESSION_IDLE_S"]), float(config["SESSION_MAX_S"]))


def _log_in(record: dict[str, Any]) -> None:
    """Start a server-side session for ``record`` and remember it in the cookie."""
    sid = accounts.start_session(get_store(), record["username"], session_limits())
    login_user(User(record, sid=sid))


@login_manager.unauthorized_handler
def _unauthorized():
    return redirect(url_for("auth.login", next=_here()))


def current_role() -> str:
    """The role of whoever is asking: ``'public'`` when anonymous."""
    return current_user.role if current_user.is_authenticated else "public"


def current_username() -> str | None:
    """The logged-in user's name, or None when anonymous."""
    return current_user.username if current_user.is_authenticated else None


def signed_in_username() -> str:
    """The logged-in user's name, in views that require a role (so never anonymous)."""
    name = current_username()
    if name is None:
        raise LookupError("no user is signed in: the view must require a role")
    return name


def has_role(*roles: str) -> bool:
    """Whether the current role is one of ``roles`` (admin includes planner; 'public' is anyone)."""
    if "public" in roles:
        return True
    role = current_role()
    return role in roles or (role == "admin" and "planner" in roles)


def _here() -> str:
    path = request.full_path if request.query_string else request.path
    return path.rstrip("?")


def role_required(*roles: str) -> Callable:
    """Page decorator: anonymous users go to the log-in page, other roles get 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated and "public" not in roles:
                flash(_("Please log in to see this page."), "info")
                return redirect(url_for("auth.login", next=_here()))
            if not has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.roles = roles  # type: ignore[attr-defined]  # for tests and the route table
        return wrapped

    return decorator


def api_error(message: str, status: int, field: str | None = None):
    """A JSON error response ``{"error": message, "field": field}``."""
    response = jsonify({"error": message, "field": field})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="zoneplan"'
    return response


def api_role_required(*roles: str) -> Callable:
    """JSON decorator: 401 for anonymous callers, 403 for other roles."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated and "public" not in roles:
                return api_error(
                    "authentication required: log in, or send "
                    "'Authorization: Bearer <token>' (zoneplan user token NAME)",
                    401,
                )
            if not has_role(*roles):
                return api_error(
                    f"this needs the role {' or '.join(roles)}; you are {current_role()}", 403
                )
            return view(*args, **kwargs)

        wrapped.roles = roles  # type: ignore[attr-defined]  # for tests and the route table
        return wrapped

    return decorator


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirects, and no
    control characters such as CR/LF, which cannot go into a Location header)."""
    if not target or _CONTROL.search(target):
        return default
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return default
    return target


# --------------------------------------------------------------------------- forms
class LoginForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])
    next = HiddenField()


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    password = PasswordField(
        _l("New password"), validators=[DataRequired(), Length(min=accounts.MIN_PASSWORD, max=256)]
    )
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


class TokenForm(FlaskForm):
    revoke = BooleanField(_l("Revoke instead"))


class NewUserForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(min=2, max=32)])
    role = SelectField(_l("Role"), choices=list(ROLES))
    password = PasswordField(
        _l("Password"), validators=[DataRequired(), Length(min=accounts.MIN_PASSWORD, max=256)]
    )


class UserActionForm(FlaskForm):
    username = HiddenField(validators=[DataRequired()])
    action = HiddenField(validators=[DataRequired()])
    role = SelectField(choices=list(ROLES), validate_choice=False)


# --------------------------------------------------------------------------- views
@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next"))
    status = 200
    if form.validate_on_submit():
        username = form.username.data.strip()
        address = request.remote_addr or ""
        throttle = login_throttle()
        wait = throttle.retry_after(username, address)
        if wait:
            flash(
                _(
                    "Too many failed log-ins for this user from your address. "
                    "Try again in %(minutes)d minute(s).",
                    minutes=max(1, (wait + 59) // 60),
                ),
                "danger",
            )
            status = 429
        else:
            record = accounts.authenticate(get_store(), username, form.password.data)
            if record is None:
                throttle.fail(username, address)
                flash(_("Wrong user name or password."), "danger")
                status = 401
            else:
                throttle.reset(username, address)
                chosen = session.get("lang")
                session.clear()  # a fresh session on log-in
                _log_in(record)
                if record.get("lang"):
                    session["lang"] = record["lang"]
                elif chosen:
                    session["lang"] = chosen
                    accounts.set_lang(get_store(), record["username"], chosen)
                return redirect(safe_next(form.next.data))
    elif request.method == "POST":
        status = 400
    return render_template("login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    lang = session.get("lang")
    if current_user.is_authenticated and current_user.via == "session":
        accounts.end_session(get_store(), current_user.get_id())  # a replayed cookie is dead
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You have logged out."), "info")
    return redirect(url_for("pages.index"))


@bp.route("/account", methods=["GET", "POST"])
@role_required(*ROLES)
def account():
    store = get_store()
    password_form = PasswordForm(prefix="pw")
    token_form = TokenForm(prefix="tok")
    new_token = None
    status = 200
    if request.method == "POST":
        if "pw-password" in request.form:
            if password_form.validate_on_submit():
                if (
                    accounts.authenticate(store, current_user.username, password_form.current.data)
                    is None
                ):
                    flash(_("The current password is wrong."), "danger")
                    status = 400
                else:
                    accounts.set_password(
                        store,
                        current_user.username,
                        password_form.password.data,
                        by=current_user.username,
                    )
                    fresh = accounts.get_user(store, current_user.username, secrets_too=True)
                    assert fresh is not None, "the password was set just now"
                    _log_in(fresh)  # every earlier session of this user has ended
                    flash(_("Your password has been changed."), "success")
                    return redirect(url_for("auth.account"))
            else:
                status = 400
        elif token_form.validate_on_submit():
            if token_form.revoke.data:
                accounts.revoke_token(store, current_user.username)
                flash(_("Your API token has been revoked."), "info")
            else:
                new_token = accounts.issue_token(store, current_user.username)
        else:
            status = 400
    user = accounts.get_user(store, current_user.username)
    return render_template(
        "account.html",
        user=user,
        password_form=password_form,
        token_form=token_form,
        new_token=new_token,
    ), status


@bp.route("/admin/users", methods=["GET", "POST"])
@role_required("admin")
def users():
    store = get_store()
    form = NewUserForm(prefix="new")
    action = UserActionForm(prefix="act")
    status = 200
    if request.method == "POST":
        try:
            if "new-username" in request.form:
                if form.validate_on_submit():
                    accounts.create_user(
                        store,
                        form.username.data,
                        form.role.data,
                        form.password.data,
                        by=current_user.username,
                    )
                    flash(_("User %(name)s created.", name=form.username.data), "success")
                    return redirect(url_for("auth.users"))
                status = 400
            elif action.validate_on_submit():
                _user_action(store, action)
                return redirect(url_for("auth.users"))
            else:
                status = 400
        except (StoreError, ValueError) as err:
            flash(str(err), "danger")
            status = 400
    return render_template(
        "users.html", users=accounts.list_users(store), form=form, action=action, roles=ROLES
    ), status


def _user_action(store, form: UserActionForm) -> None:
    name, what = form.username.data, form.action.data
    if name == current_user.username and what in ("disable", "role"):
        raise ValueError(_("You cannot disable yourself or change your own role."))
    if what == "disable":
        accounts.set_active(store, name, False, by=current_user.username)
    elif what == "enable":
        accounts.set_active(store, name, True, by=current_user.username)
    elif what == "role":
        accounts.set_role(store, name, form.role.data, by=current_user.username)
    elif what == "revoke":
        accounts.revoke_token(store, name, by=current_user.username)
    else:
        raise ValueError(f"unknown action {what!r}")
    flash(_("User %(name)s updated.", name=name), "success")


def init_app(app) -> None:
    """Attach Flask-Login to ``app`` and its cache of verified Basic credentials."""
    login_manager.init_app(app)
    app.extensions[VERIFIED] = accounts.VerifiedPasswords(
        float(app.config.get("BASIC_AUTH_TTL", 300))
    )

    @app.context_processor
    def _roles() -> dict[str, Any]:
        return {
            "current_role": current_role,
            "has_role": has_role,
            "current_username": current_username,
        }
