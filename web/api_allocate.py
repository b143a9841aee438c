"""Allocation runs and batch intake through the JSON API: start a run, poll it, fetch its
proposal, accept a selection, cancel; import applications from a CSV file.

A thin adapter over :mod:`usecases.allocation` and :mod:`usecases.intake`; runs go on the
shared job runner (one allocation per store at a time).
"""

from __future__ import annotations

from typing import Any, Literal

from flask import request, url_for
from flask_babel import gettext
from pydantic import BaseModel, ConfigDict, Field

from geo.i18n import N_
from geo.layers import ID_MAX_LENGTH
from geo.store import Conflict, NotFound
from planner.allocation import OBJECTIVES
from planner.applications import ApplicationOut
from usecases import allocation, intake
from usecases.applications import SelectionRefused
from usecases.jobs import ACTIVE, Busy
from web import deps
from web.api import _error, bp, check_upload_size, endpoint, tx_servicing, upload_limit
from web.api_jobs import JOB_ID, JobOut
from web.auth import current_role, current_username

__all__ = ["bp", "AllocationIn", "AllocationOut", "AcceptIn"]


class AllocationIn(BaseModel):
    """What to allocate; every field may be left out."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    objective: Literal[OBJECTIVES] = Field(  # type: ignore[valid-type]
        "weighted",
        description=N_(
            "investment (tenge placed), jobs, count (applications placed) or "
            "weighted (a 0-1 score per placed application: investment 35%, jobs 25%, "
            "priority 10%, area fit 10%, distance to a gate 10%, the plot applied for 10%)"
        ),
    )
    time_limit: float = Field(
        allocation.DEFAULT_TIME_LIMIT_S,
        gt=0,
        le=allocation.MAX_TIME_LIMIT_S,
        description=N_("Seconds the solver may take"),
    )
    app_ids: list[str] | None = Field(
        None,
        max_length=allocation.MAX_APPLICATIONS,
        description=N_("Applications to allocate (default: every pending one)"),
    )
    area: str | None = Field(
        None,
        max_length=ID_MAX_LENGTH,
        description=N_(
            "Only the available plots of this expansion area (default: every available plot)"
        ),
    )


class AllocationStarted(BaseModel):
    """A run queued on the job runner."""

    job_id: str
    poll: str = Field(description="Where to poll the run")
    result: str = Field(description="Where its proposal is once done")


class Comparison(BaseModel):
    value: float = Field(description="The objective's value")
    count: int = Field(description="Applications placed")
    jobs: float
    investment: float = Field(description="Tenge")


class Rule(BaseModel):
    rule: str
    message: str


class Proposal(BaseModel):
    """One application placed on a plot."""

    model_config = ConfigDict(extra="allow")

    app_id: str
    plot_id: str
    status_now: str | None = Field(description="The application's status now")


class LeftOut(BaseModel):
    """An application the proposal leaves out, and why."""

    model_config = ConfigDict(extra="allow")

    app_id: str
    reason: str | None = Field(description="The optimiser's reason, in words")
    rules: list[Rule] = Field(description="Rules it breaks on the plot it applied for")


class AllocationOut(BaseModel):
    """A finished run's proposal."""

    model_config = ConfigDict(extra="allow")

    job_id: str
    request: dict[str, Any]
    summary: dict[str, Any] = Field(
        description="method, status (optimal / time_limit), proven gap, value, seconds, "
        "time to the first proposal, the gap over time"
    )
    comparison: dict[Literal["optimised", "fcfs"], Comparison]
    proposals: list[Proposal]
    left_out: list[LeftOut]
    features: dict[str, Any] = Field(description="The proposed plots (GeoJSON, WGS84)")


class AllocationList(BaseModel):
    """Recent allocation runs, newest first (results left out)."""

    runs: list[JobOut]


class AcceptIn(BaseModel):
    """Which proposals to accept."""

    model_config = ConfigDict(extra="forbid")

    app_ids: list[str] | None = Field(
        None,
        max_length=allocation.MAX_APPLICATIONS,
        description=N_("Applications of the proposal to accept (default: all of them)"),
    )


class AcceptedOut(BaseModel):
    """The applications reserved, each on its plot."""

    accepted: list[ApplicationOut]


class ImportedOut(BaseModel):
    """Applications added to the pending list."""

    imported: int
    app_ids: list[str]
    ignored_columns: list[str]


IMPORT_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": N_(
                "UTF-8 CSV with a header: app_id, project, min_ha, max_ha, sector, "
                "rail_need, power_kw, invest, jobs; optional company, investor, plot_id, "
                "water_m3d, hazard, priority"
            ),
        }
    },
}


def _job(job_id: str) -> dict[str, Any]:
    job = deps.get_jobs().get(job_id)
    if job["kind"] != allocation.JOB_KIND:
        raise NotFound(f"no allocation run {job_id!r}")
    return job


def _finished(job_id: str) -> dict[str, Any]:
    job = _job(job_id)
    if job["state"] != "done" or not job.get("result"):
        raise Conflict(
            f"allocation run {job_id} is {job['state']}; its proposal is there once it is done"
        )
    return job


def _status(job: dict[str, Any]) -> dict[str, Any]:
    """A run as JobOut: while running its interim best; once done its summary only."""
    result = job.get("result")
    if job["state"] == "done" and result:
        result = {"summary": result.get("summary"), "comparison": result.get("comparison")}
    return {**job, "result": result}


@bp.errorhandler(SelectionRefused)
def _stale(err: SelectionRefused):
    response = _error(err.message(gettext), 409, "app_ids")
    body = response.get_json()
    body["stale"] = [part.to_dict(gettext) for part in err.stale]
    response.set_data(_dump(body))
    return response


@bp.errorhandler(intake.IntakeRefused)
def _refused_file(err: intake.IntakeRefused):
    response = _error(str(err), 422, "file")
    body = response.get_json()
    # ``index`` is the line in the file (the header is line 1; null: the file as a whole)
    body["problems"] = [
        {"index": line, "feature_id": None, "field": None, "reason": text}
        for line, text in err.problems[:500]
    ]
    response.set_data(_dump(body))
    return response


def _dump(body: dict[str, Any]) -> str:
    import json

    return json.dumps(body, ensure_ascii=False, default=str)


@endpoint(
    "post",
    "/allocations",
    summary=N_("Start an allocation run"),
    tag="allocation",
    body=AllocationIn,
    body_required=False,
    response=AllocationStarted,
    status=202,
    roles=("planner",),
    errors=(409,),
    description=N_(
        "Queues the optimiser on the shared job runner: the chosen pending "
        "applications (default all) on the available plots (default all, or one expansion "
        "area's), servicing and headroom as recorded today. One allocation per store at a "
        "time: a second start while one runs is 409."
    ),
)
def start_allocation(body: AllocationIn):
    store = deps.get_store()
    try:
        run = allocation.read_request(store, body.model_dump())
    except allocation.AllocationError as err:
        return _error(str(err), 422, err.field)
    jobs = deps.get_jobs()
    try:
        job_id = jobs.submit(
            allocation.JOB_KIND,
            run.to_params(),
            allocation.allocation_job(store, run),
            user=current_username() or "unknown",
            exclusive=True,
        )
    except Busy:
        active = [j for j in jobs.list(kind=allocation.JOB_KIND) if j["state"] in ACTIVE]
        who = active[0] if active else {"job_id": "?", "username": "?"}
        return _error(
            gettext(
                "An allocation is already running on this store (run %(id)s, started by "
                "%(user)s); wait for it or cancel it.",
                id=who["job_id"],
                user=who.get("username") or "?",
            ),
            409,
        )
    return {
        "job_id": job_id,
        "poll": url_for("api.get_allocation", job_id=job_id),
        "result": url_for("api.get_allocation_result", job_id=job_id),
    }


@endpoint(
    "get",
    "/allocations",
    summary=N_("Recent allocation runs"),
    tag="allocation",
    response=AllocationList,
    roles=("planner",),
    description=N_(
        "Newest first, with each run's state and parameters; open one's "
        "proposal with /allocations/{job_id}/result."
    ),
)
def list_allocations():
    runs = deps.get_jobs().list(kind=allocation.JOB_KIND, limit=20)
    return {"runs": [{**r, "result": None} for r in runs]}


@endpoint(
    "get",
    "/allocations/{job_id}",
    summary=N_("Poll an allocation run"),
    tag="allocation",
    response=JobOut,
    roles=("planner",),
    path_params=JOB_ID,
    errors=(404,),
    description=N_(
        "State and progress; while it runs `result` holds the best value so far "
        "(`objective`), the proven `bound` and the `gap`; once done the summary and the "
        "comparison with first come, first served."
    ),
)
def get_allocation(job_id: str):
    return _status(_job(job_id))


@endpoint(
    "get",
    "/allocations/{job_id}/result",
    summary=N_("The proposal of a finished run"),
    tag="allocation",
    response=AllocationOut,
    roles=("planner",),
    path_params=JOB_ID,
    errors=(404, 409),
    description=N_(
        "Each proposed plot with its application, the comparison with first come, "
        "first served, the proven gap, and every application left out with its reason; each "
        "application's status now (`status_now`). 409 while the run has not finished."
    ),
)
def get_allocation_result(job_id: str):
    job = _finished(job_id)
    view = allocation.proposal_view(deps.get_store(), job["result"], gettext)
    return {"job_id": job_id, **view}


@endpoint(
    "post",
    "/allocations/{job_id}/accept",
    summary=N_("Accept a run's proposal, or some of it"),
    tag="allocation",
    body=AcceptIn,
    body_required=False,
    response=AcceptedOut,
    roles=("planner",),
    path_params=JOB_ID,
    errors=(404, 409),
    description=N_(
        "One transaction, each pair checked as a single accept is (application "
        "pending, plot available, every reservation rule, headroom shared by the selection). "
        "When the store changed since the run, 409 lists each pair that can no longer be "
        "accepted in `stale` and nothing is reserved; another planner accepting an "
        "overlapping selection at the same time gets the same 409."
    ),
)
def accept_allocation(job_id: str, body: AcceptIn):
    job = _finished(job_id)
    done = allocation.accept_proposal(
        deps.get_store(),
        job["result"],
        body.app_ids,
        user=current_username() or "unknown",
        role=current_role(),
        servicing=tx_servicing,
    )
    return {"accepted": done}


@endpoint(
    "post",
    "/allocations/{job_id}/cancel",
    summary=N_("Cancel an allocation run"),
    tag="allocation",
    response=JobOut,
    roles=("planner",),
    path_params=JOB_ID,
    errors=(404,),
    description=N_(
        "A queued run is cancelled at once; a running one stops within half a "
        "second of the solver's next report. Ended runs are left as they are."
    ),
)
def cancel_allocation(job_id: str):
    _job(job_id)
    return _status(deps.get_jobs().cancel(job_id, user=current_username() or "unknown"))


@endpoint(
    "post",
    "/applications/import",
    summary=N_("Import applications from a CSV file"),
    tag="applications",
    form=IMPORT_FORM,
    response=ImportedOut,
    status=201,
    roles=("planner",),
    errors=(413, 422),
    description=N_(
        "The same checks as `zoneplan allocate --applications` and `zoneplan "
        "applications import`, and those of the store (new ids, a known investor, the plot "
        "applied for available, of the right area and zoned for the sector). Every bad row "
        "is reported in `problems` (`index` = its line in the file, the header being line 1); "
        "nothing is stored unless every row passes. "
        "The applications join the pending list (submitted)."
    ),
)
def import_applications():
    check_upload_size()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _error("file: choose a CSV file of applications", 400, "file")
    data = upload.read(upload_limit() + 1)
    if len(data) > upload_limit():
        return _error("the upload is too large", 413, "file")
    done = intake.import_csv(deps.get_store(), data, user=current_username() or "unknown")
    return {
        "imported": len(done.app_ids),
        "app_ids": done.app_ids,
        "ignored_columns": done.ignored_columns,
    }
