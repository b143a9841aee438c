"""Investor applications: their HTTP models, listing and reading.

Framework-free. The lifecycle is ``submitted`` -> ``reserved`` (a planner
accepted it for a plot, which becomes ``reserved`` in the same transaction) ->
``rejected`` (with a reason) | ``withdrawn`` (by its investor); the writes are the
use cases of :mod:`usecases.applications`. Every change checks the row's version, so
two planners acting at once cannot both win.

The body models (:data:`ApplicationIn`, :class:`AcceptIn`, :class:`RejectIn`,
:class:`WithdrawIn`) are built from the ``applications`` layer schema and are
the ones the API validates with and the OpenAPI generator documents.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

from geo.i18n import N_
from geo.layers import ID_MAX_LENGTH, ID_PATTERN, NOTE_MAX_LENGTH, get_layer
from geo.layers import Field as SchemaField
from geo.store import Invalid, NotFound, Store
from geo.validate import Problem
from planner import messages
from planner.catalogue import PlotFilters
from planner.messages import Translate
from planner.reservation import RULES
from planner.visibility import is_staff

__all__ = [
    "INVESTOR_FIELDS",
    "ApplicationIn",
    "ApplicationOut",
    "ApplicationFiled",
    "RuleOut",
    "AcceptIn",
    "RejectIn",
    "WithdrawIn",
    "parse_body",
    "as_record",
    "list_applications",
    "get_application",
    "matching_filters",
]

LAYER = get_layer("applications")
# What an investor fills in; the same fields the allocator reads.
INVESTOR_FIELDS = (
    "company",
    "project",
    "sector",
    "plot_id",
    "min_ha",
    "max_ha",
    "power_kw",
    "water_m3d",
    "rail_need",
    "hazard",
    "invest",
    "jobs",
    "start_yr",
    "floor_m2",
)
MAX_REASON = NOTE_MAX_LENGTH
_PY_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "date": dt.date, "datetime": str}


def _model_field(fld: SchemaField, *, force_optional: bool = False) -> tuple[Any, Any]:
    """A pydantic (type, FieldInfo) pair from a schema field: choices, ranges, required."""
    kind: Any = Literal[fld.choices] if fld.choices else _PY_TYPES[fld.type]
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
            raise PydanticCustomError(
                "below_minimum_area",
                "{value} ha is below the minimum {low} ha",
                {"value": f"{value:g}", "low": f"{low:g}"},
            )
        return value

    @field_validator("plot_id", "company", mode="after", check_fields=False)
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


_IN_FIELDS: dict[str, Any] = {name: _model_field(LAYER.field(name)) for name in INVESTOR_FIELDS}
ApplicationIn = create_model(
    "ApplicationIn",
    __base__=_ApplicationBase,
    __doc__="A new application: for a specific plot (plot_id) or any plot matching the needs.",
    **_IN_FIELDS,
)
ApplicationIn.model_fields["plot_id"].description = N_(
    "Plot applied for; leave out for any plot matching the needs"
)
ApplicationIn.model_rebuild(force=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


_OUT_FIELDS: dict[str, Any] = {
    f.name: (_model_field(f, force_optional=not f.required)[0], Field(..., description=f.label))
    for f in LAYER.fields
}
ApplicationOut = create_model(
    "ApplicationOut",
    __base__=_Out,
    __doc__="An application as stored, with its status, the planner's reason and the plot reserved.",
    **_OUT_FIELDS,
)


class RuleOut(BaseModel):
    """A reservation rule the application breaks on its plot, in words."""

    rule: Literal[RULES] = Field(description="Which rule")  # type: ignore[valid-type]
    message: str = Field(
        description="The rule and the numbers, e.g. 'SS-14 has 970 kW left, "
        "the application needs 5,000 kW'"
    )


ApplicationFiled = create_model(
    "ApplicationFiled",
    __base__=ApplicationOut,
    __doc__="The filed application, and the rules it breaks on its plot today: a planner's "
    "accept refuses it until they are met.",
    warnings=(list[RuleOut], Field(..., description="Rules broken today (filed anyway)")),
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: int | None = Field(None, ge=0, description=N_("The version you saw (stale -> 409)"))


class AcceptIn(_Body):
    """A planner accepts an application for a plot, which becomes reserved."""

    plot_id: str | None = Field(
        None,
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=ID_PATTERN,
        description=N_("Plot to reserve (default: the plot applied for)"),
    )


class RejectIn(_Body):
    """A planner rejects an application with a reason the investor sees."""

    reason: str = Field(..., min_length=1, max_length=MAX_REASON, description=N_("Why, in words"))


class WithdrawIn(_Body):
    """The investor withdraws a submitted application."""


def parse_body(model: type[BaseModel], data: Any, *, translate: Translate | None = None) -> Any:
    """Validate a request body with ``model``; messages in words (:mod:`planner.messages`),
    through ``translate`` when given.

    Raises
    ------
    Invalid
        With one problem per offending field (``field`` None for the body itself).
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        tr = translate or (lambda s: s)
        raise Invalid([Problem(None, None, None, tr(messages.NOT_AN_OBJECT))])
    try:
        return model.model_validate(dict(data))
    except ValidationError as err:
        found = messages.problems(err, known=model.model_fields, translate=translate)
        raise Invalid([Problem(None, None, field, msg) for field, msg in found]) from None


def as_record(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A stored application row as plain JSON-able values, every schema field present."""
    out = {}
    for fld in LAYER.fields:
        value = row.get(fld.name)
        if value is None or value is pd.NA or (isinstance(value, float) and value != value):
            value = None
        elif hasattr(value, "item"):
            value = value.item()
        out[fld.name] = value
    return out


def list_applications(
    store: Store, *, user: str, role: str | None, status: str | None = None
) -> list[dict[str, Any]]:
    """Applications newest first: all for staff, the user's own for investors."""
    where: dict[str, Any] = {}
    if not is_staff(role):
        where["investor"] = user
    if status is not None:
        where["status"] = status
    rows = store.read("applications", where=where)
    records = [as_record(r) for r in rows.to_dict("records")]
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
    return as_record(row)


def matching_filters(app: Mapping[str, Any], **extra: Any) -> PlotFilters:
    """Catalogue filters for the plots that meet an application's needs (for planners
    choosing a plot for an "any plot" application)."""
    params: dict[str, Any] = {
        "min_area": app.get("min_ha"),
        "max_area": app.get("max_ha"),
        "sector": app.get("sector"),
        "min_power": app.get("power_kw") or None,
        "min_water": app.get("water_m3d") or None,
        "rail": True if app.get("rail_need") else None,
        **extra,
    }
    return PlotFilters.model_validate({k: v for k, v in params.items() if v is not None})
