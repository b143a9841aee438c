"""Investor applications: create, list, withdraw, accept (reserving a plot) and reject.

Framework-free. The lifecycle is ``submitted`` -> ``reserved`` (a planner
accepted it for a plot, which becomes ``reserved`` in the same transaction) |
``rejected`` (with a reason) | ``withdrawn`` (by its investor). Every change
checks the row's version, so two planners acting at once cannot both win.

The body models (:data:`ApplicationIn`, :class:`AcceptIn`, :class:`RejectIn`,
:class:`WithdrawIn`) are built from the ``applications`` layer schema and are
the ones the API validates with and the OpenAPI generator documents.
"""
from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, Literal, Mapping

import pandas as pd
from pydantic import (
    BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, create_model, field_validator,
)

from geo.layers import (
    ID_MAX_LENGTH, ID_PATTERN, NOTE_MAX_LENGTH, PLOT_TRANSITIONS, Field as SchemaField, get_layer,
    parse_sectors,
)
from geo.store import Conflict, Invalid, NotFound, Store
from geo.store.base import now_iso
from geo.validate import Problem
from planner.catalogue import Forbidden, PlotFilters, PUBLIC_PLOT_STATUS, is_staff

__all__ = [
    "INVESTOR_FIELDS", "ApplicationIn", "ApplicationOut", "AcceptIn", "RejectIn", "WithdrawIn",
    "parse_body", "create", "list_applications", "get_application", "withdraw", "accept",
    "reject", "matching_filters",
]

LAYER = get_layer("applications")
# What an investor fills in; the same fields the allocator reads.
INVESTOR_FIELDS = ("company", "project", "sector", "plot_id", "min_ha", "max_ha", "power_kw",
                   "water_m3d", "rail_need", "hazard", "invest", "jobs")
MAX_REASON = NOTE_MAX_LENGTH
_PY_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "date": dt.date,
             "datetime": str}


def _model_field(fld: SchemaField, *, force_optional: bool = False) -> tuple[Any, Any]:
    """A pydantic (type, FieldInfo) pair from a schema field: choices, ranges, required."""
    kind: Any = Literal[fld.choices] if fld.choices else _PY_TYPES[fld.type]  # type: ignore[valid-type]
    limits: dict[str, Any] = {"description": fld.label}
    if fld.minimum is not None:
        limits["ge"] = fld.minimum
    if fld.maximum is not None:
        limits["le"] = fld.maximum
    if fld.type == "str" and not fld.choices:
        if fld.text_limit is not None:  # the schema's one rule for text and ids
            limits["max_length"] = fld.text_limit
        if fld.ident:  # a blank optional id means none (see _blank_is_none)
            limits["pattern"] = ID_PATTERN if fld.required else "^$|" + ID_PATTERN
        if fld.required:
            limits["min_length"] = 1
    if fld.required and not force_optional:
        return kind, Field(..., **limits)
    return kind | None, Field(None, **limits)


class _ApplicationBase(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    @field_validator("max_ha", mode="after", check_fields=False)
    @classmethod
    def _area_range(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min_ha")
        if low is not None and value is not None and low > value:
            raise ValueError(f"{value:g} ha is below the minimum {low:g} ha")
        return value

    @field_validator("plot_id", "company", mode="after", check_fields=False)
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


ApplicationIn = create_model(
    "ApplicationIn", __base__=_ApplicationBase,
    __doc__="A new application: for a specific plot (plot_id) or any plot matching the needs.",
    **{name: _model_field(LAYER.field(name)) for name in INVESTOR_FIELDS},
)
ApplicationIn.model_fields["plot_id"].description = (
    "Plot applied for; leave out for any plot matching the needs")
ApplicationIn.model_rebuild(force=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


ApplicationOut = create_model(
    "ApplicationOut", __base__=_Out,
    __doc__="An application as stored, with its status, the planner's reason and the plot reserved.",
    **{f.name: (_model_field(f, force_optional=not f.required)[0], Field(..., description=f.label))
       for f in LAYER.fields},
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: int | None = Field(None, ge=0, description="The version you saw (stale -> 409)")


class AcceptIn(_Body):
    """A planner accepts an application for a plot, which becomes reserved."""

    plot_id: str | None = Field(None, min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN,
                                description="Plot to reserve (default: the plot applied for)")


class RejectIn(_Body):
    """A planner rejects an application with a reason the investor sees."""

    reason: str = Field(..., min_length=1, max_length=MAX_REASON, description="Why, in words")


class WithdrawIn(_Body):
    """The investor withdraws a submitted application."""


def parse_body(model: type[BaseModel], data: Any) -> Any:
    """Validate a request body with ``model``.

    Raises
    ------
    Invalid
        With one problem per offending field (``field`` None for the body itself).
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise Invalid([Problem(None, None, None, "the body must be a JSON object")])
    try:
        return model.model_validate(dict(data))
    except ValidationError as err:
        problems = []
        for e in err.errors():
            field = str(e["loc"][0]) if e.get("loc") else None
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = f"unknown field; known fields: {', '.join(model.model_fields)}"
            problems.append(Problem(None, None, field, msg))
        raise Invalid(problems) from None


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for fld in LAYER.fields:
        value = row.get(fld.name)
        if value is None or value is pd.NA or (isinstance(value, float) and value != value):
            value = None
        elif hasattr(value, "item"):
            value = value.item()
        out[fld.name] = value
    return out


def _new_id() -> str:
    return f"A{dt.date.today():%y%m%d}-{secrets.token_hex(3).upper()}"


def _plot_fits(plot: Mapping[str, Any], app: Mapping[str, Any]) -> list[Problem]:
    """Why a plot does not fit an application's sector and area (empty when it fits)."""
    problems = []
    allowed = parse_sectors(plot.get("sectors"))
    if allowed is not None and app.get("sector") not in allowed:
        problems.append(Problem(None, plot["plot_id"], "sector",
                                f"plot {plot['plot_id']} allows {', '.join(sorted(allowed))}, "
                                f"not {app.get('sector')}"))
    area = plot.get("area_ha")
    if area is not None and app.get("min_ha") is not None and not (
            app["min_ha"] <= area <= app["max_ha"]):
        problems.append(Problem(None, plot["plot_id"], "min_ha",
                                f"plot {plot['plot_id']} has {area:g} ha, outside "
                                f"{app['min_ha']:g}-{app['max_ha']:g} ha"))
    return problems


def _available_plot(store: Store, plot_id: str) -> dict[str, Any]:
    try:
        plot = store.get("plots", plot_id)
    except NotFound:
        raise Invalid([Problem(None, plot_id, "plot_id", f"there is no plot {plot_id!r}")]) from None
    if plot["status"] != PUBLIC_PLOT_STATUS:
        raise Conflict(f"plot {plot_id} is {plot['status']}, not available")
    return plot


def create(store: Store, data: Any, *, user: str, role: str | None) -> dict[str, Any]:
    """Submit an application for ``user`` (an investor).

    Parameters
    ----------
    data : mapping or ApplicationIn
        The investor's fields; with ``plot_id`` the plot must be available and
        fit the sector and area range, without it the application is for any
        plot matching the needs.

    Raises
    ------
    Forbidden
        For roles other than investor.
    Invalid
        Naming each bad field (unknown plot, area range, sector not allowed).
    Conflict
        When the plot is no longer available.
    """
    if role != "investor":
        raise Forbidden("only investors submit applications")
    app = data if isinstance(data, ApplicationIn) else parse_body(ApplicationIn, data)
    values = app.model_dump()
    if app.plot_id:
        plot = _available_plot(store, app.plot_id)
        problems = _plot_fits(plot, values)
        if problems:
            raise Invalid(problems)
    stamp = now_iso()
    row = {**values, "app_id": _new_id(), "investor": user, "status": "submitted",
           "created": stamp, "updated": stamp}
    store.insert("applications", pd.DataFrame([row]), user=user)
    return _record(store.get("applications", row["app_id"]))


def list_applications(store: Store, *, user: str, role: str | None,
                      status: str | None = None) -> list[dict[str, Any]]:
    """Applications newest first: all for staff, the user's own for investors."""
    where: dict[str, Any] = {}
    if not is_staff(role):
        where["investor"] = user
    if status is not None:
        where["status"] = status
    rows = store.read("applications", where=where)
    records = [_record(r) for r in rows.to_dict("records")]
    records.sort(key=lambda r: (r["created"] or "", r["app_id"]), reverse=True)
    return records


def get_application(store: Store, app_id: str, *, user: str, role: str | None) -> dict[str, Any]:
    """One application; investors see only their own (others are NotFound to them)."""
    try:
        row = store.get("applications", app_id)
    except NotFound:
        row = None
    if row is None or (not is_staff(role) and row["investor"] != user):
        raise NotFound(f"application {app_id!r} does not exist")
    return _record(row)


def _expect(app: Mapping[str, Any], version: int | None, *states: str) -> int:
    if version is not None and version != app["version"]:
        raise Conflict(f"application {app['app_id']} was changed by someone else (now version "
                       f"{app['version']}, yours is {version}); reload it")
    if app["status"] not in states:
        raise Conflict(f"application {app['app_id']} is {app['status']}; only "
                       f"{' or '.join(states)} applications can change this way")
    return int(app["version"])


def withdraw(store: Store, app_id: str, *, user: str, role: str | None,
             version: int | None = None) -> dict[str, Any]:
    """The investor withdraws their own submitted application.

    Raises NotFound (not theirs), Conflict (not submitted, or stale version).
    """
    app = get_application(store, app_id, user=user, role="investor")
    current = _expect(app, version, "submitted")
    store.update("applications", app_id, {"status": "withdrawn", "updated": now_iso()},
                 version=current, user=user)
    return get_application(store, app_id, user=user, role="investor")


def _staff_only(role: str | None, action: str) -> None:
    if not is_staff(role):
        raise Forbidden(f"only planners {action} applications")


def accept(store: Store, app_id: str, plot_id: str | None = None, *, user: str,
           role: str | None, version: int | None = None) -> dict[str, Any]:
    """A planner accepts a submitted application for a plot: in one transaction the
    application becomes ``reserved`` (``assigned`` = the plot) and the plot ``reserved``.

    Raises
    ------
    Forbidden
        For non-staff.
    Invalid
        No plot given (and none applied for), unknown plot, sector not allowed.
    Conflict
        Application not submitted, plot not available, or a stale version.
    """
    _staff_only(role, "accept")
    app = get_application(store, app_id, user=user, role=role)
    current = _expect(app, version, "submitted")
    plot_id = plot_id or app["plot_id"]
    if not plot_id:
        raise Invalid([Problem(None, app_id, "plot_id",
                               "give the plot to reserve; the application names none")])
    plot = _available_plot(store, plot_id)
    problems = [p for p in _plot_fits(plot, app) if p.field == "sector"]
    if problems:
        raise Invalid(problems)
    assert "reserved" in PLOT_TRANSITIONS[plot["status"]]
    with store.transaction(user) as tx:
        tx.update("plots", plot_id, {"status": "reserved"}, version=plot["version"])
        tx.update("applications", app_id, {"status": "reserved", "assigned": plot_id,
                                           "reason": None, "updated": now_iso()},
                  version=current)
    return get_application(store, app_id, user=user, role=role)


def reject(store: Store, app_id: str, reason: str, *, user: str, role: str | None,
           version: int | None = None) -> dict[str, Any]:
    """A planner rejects a submitted application, giving a reason the investor sees."""
    _staff_only(role, "reject")
    reason = (reason or "").strip()
    if not reason:
        raise Invalid([Problem(None, app_id, "reason", "give a reason the investor will see")])
    app = get_application(store, app_id, user=user, role=role)
    current = _expect(app, version, "submitted")
    store.update("applications", app_id, {"status": "rejected", "reason": reason,
                                          "updated": now_iso()}, version=current, user=user)
    return get_application(store, app_id, user=user, role=role)


def matching_filters(app: Mapping[str, Any], **extra: Any) -> PlotFilters:
    """Catalogue filters for the plots that meet an application's needs (for planners
    choosing a plot for an "any plot" application)."""
    params: dict[str, Any] = {"min_area": app.get("min_ha"), "max_area": app.get("max_ha"),
                              "sector": app.get("sector"), "min_power": app.get("power_kw") or None,
                              "min_water": app.get("water_m3d") or None,
                              "rail": True if app.get("rail_need") else None, **extra}
    return PlotFilters.model_validate({k: v for k, v in params.items() if v is not None})
