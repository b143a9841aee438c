"""JSON API operations on investors' applications: apply, list, withdraw, accept, reject."""

from __future__ import annotations

from typing import Literal

from flask_babel import gettext
from pydantic import BaseModel, Field

from geo.i18n import N_
from geo.layers import APPLICATION_STATUSES, ID_MAX_LENGTH
from geo.validate import Problem as SchemaProblem
from planner import applications as apps
from usecases import applications as usecase
from web import deps
from web.api import _Query, api_error_with_problems, bp, endpoint, rules_json, tx_servicing
from web.auth import current_role, signed_in_username

__all__ = ["ApplicationsQuery", "ApplicationList"]


class ApplicationsQuery(_Query):
    """Filter applications by status."""

    status: Literal[APPLICATION_STATUSES] | None = Field(  # type: ignore[valid-type]
        None, description=N_("Only applications in this state")
    )


class ApplicationList(BaseModel):
    """Applications, newest first: your own (investors) or all (planners)."""

    applications: list[apps.ApplicationOut]


APP_ID = {"app_id": {"type": "string", "minLength": 1, "maxLength": ID_MAX_LENGTH}}


@bp.errorhandler(usecase.Refused)
def _refused(err: usecase.Refused):
    """409 naming every broken rule: ``problems`` holds one per rule (``field`` = the rule)."""
    return api_error_with_problems(
        err.message(gettext),
        409,
        "plot_id",
        [SchemaProblem(None, err.plot_id, b.rule, b.message(gettext)) for b in err.breaches],
    )


@endpoint(
    "post",
    "/applications",
    summary=N_("Apply for a plot, or for any plot matching your needs"),
    tag="applications",
    body=apps.ApplicationIn,
    response=apps.ApplicationFiled,
    status=201,
    roles=("investor",),
    errors=(409,),
    description=N_(
        "A plot applied for must be available, of an area within the range and "
        "zoned for the sector (else 422). The other reservation rules (rail, "
        "hazard class, power and water connection and headroom today) come "
        "back as `warnings`: the application is filed, and a planner's accept "
        "is refused (409) while they hold."
    ),
)
def create_application(body: BaseModel):
    filed = usecase.apply(
        deps.get_store(),
        body,
        user=signed_in_username(),
        role=current_role(),
        servicing=tx_servicing,
    )
    return {**filed.application, "warnings": rules_json(filed.warnings)}


@endpoint(
    "get",
    "/applications",
    summary=N_("Your applications (planners: all)"),
    tag="applications",
    query=ApplicationsQuery,
    response=ApplicationList,
    roles=("investor", "planner"),
)
def list_applications(query: ApplicationsQuery):
    return {
        "applications": apps.list_applications(
            deps.get_store(), user=signed_in_username(), role=current_role(), status=query.status
        )
    }


@endpoint(
    "get",
    "/applications/{app_id}",
    summary=N_("One application"),
    tag="applications",
    response=apps.ApplicationOut,
    roles=("investor", "planner"),
    path_params=APP_ID,
)
def get_application(app_id: str):
    return apps.get_application(
        deps.get_store(), app_id, user=signed_in_username(), role=current_role()
    )


@endpoint(
    "post",
    "/applications/{app_id}/withdraw",
    summary=N_("Withdraw your application"),
    tag="applications",
    body=apps.WithdrawIn,
    body_required=False,
    response=apps.ApplicationOut,
    roles=("investor",),
    path_params=APP_ID,
    errors=(409,),
    description=N_(
        "A submitted or accepted application; an accepted one gives its plot "
        "back (available again, its capacity free)."
    ),
)
def withdraw_application(app_id: str, body: apps.WithdrawIn):
    return usecase.withdraw(
        deps.get_store(),
        app_id,
        user=signed_in_username(),
        role=current_role(),
        version=body.version,
    )


@endpoint(
    "post",
    "/applications/{app_id}/accept",
    summary=N_("Accept a submitted application and reserve the plot"),
    tag="applications",
    body=apps.AcceptIn,
    body_required=False,
    response=apps.ApplicationOut,
    roles=("planner",),
    path_params=APP_ID,
    errors=(409,),
    description=N_(
        "Checked in the transaction that reserves the plot: area within the "
        "range, sector allowed, rail if needed, hazard class, and power and "
        "water headroom of the plot's substation and main as recorded today. "
        "A broken rule is 409 naming each one in `problems` (`field` = the "
        "rule) and nothing is written. The plot then carries the "
        "application's demand and identity, so other plots on the same "
        "substation show less headroom at once."
    ),
)
def accept_application(app_id: str, body: apps.AcceptIn):
    return usecase.accept(
        deps.get_store(),
        app_id,
        body.plot_id,
        user=signed_in_username(),
        role=current_role(),
        version=body.version,
        servicing=tx_servicing,
    )


@endpoint(
    "post",
    "/applications/{app_id}/reject",
    summary=N_("Reject an application"),
    tag="applications",
    body=apps.RejectIn,
    response=apps.ApplicationOut,
    roles=("planner",),
    path_params=APP_ID,
    errors=(409,),
    description=N_(
        "A submitted or accepted application, with a reason the investor "
        "sees; an accepted one gives its plot back (available again, its "
        "capacity free)."
    ),
)
def reject_application(app_id: str, body: apps.RejectIn):
    return usecase.reject(
        deps.get_store(),
        app_id,
        body.reason,
        user=signed_in_username(),
        role=current_role(),
        version=body.version,
    )
