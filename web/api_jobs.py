"""Background jobs through the JSON API: poll a job, list recent ones, cancel one.

A thin adapter over :mod:`usecases.jobs`; the pages that start jobs (allocation,
subdivision, access design) poll these operations.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from geo.i18n import N_
from geo.layers import JOB_STATES
from web import deps
from web.api import _Query, bp, endpoint
from web.auth import current_username

__all__ = ["bp", "JobOut", "JobList"]

JOB_ID = {"job_id": {"type": "string", "description": "The job's id", "maxLength": 64}}


class JobOut(BaseModel):
    """A background job: its state, progress, and result once done."""

    job_id: str
    kind: str
    state: Literal[JOB_STATES]  # type: ignore[valid-type]
    username: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    progress: float | None = Field(None, description="0 to 1")
    message: str | None = None
    result: dict[str, Any] | None = Field(
        None,
        description="Set when the job is done; while it runs, interim figures when the job "
        "reports them (e.g. an allocation's best value and gap so far)",
    )
    error: str | None = Field(None, description="Why the job failed")
    cancel: bool = False
    created: str | None = None
    started: str | None = None
    finished: str | None = None


class JobList(BaseModel):
    """Recent jobs, newest first."""

    jobs: list[JobOut]


class JobsQuery(_Query):
    """Which jobs to list."""

    kind: str | None = Field(None, max_length=40, description=N_("Only jobs of this kind"))
    limit: int = Field(20, ge=1, le=200)


def _summary(job: dict[str, Any]) -> dict[str, Any]:
    return {**job, "result": None}


@endpoint(
    "get",
    "/jobs",
    summary=N_("Recent background jobs"),
    tag="jobs",
    query=JobsQuery,
    response=JobList,
    roles=("planner",),
    description=N_("Results are left out; fetch a job to get its result."),
)
def list_jobs(query: JobsQuery):
    return {"jobs": [_summary(j) for j in deps.get_jobs().list(kind=query.kind, limit=query.limit)]}


@endpoint(
    "get",
    "/jobs/{job_id}",
    summary=N_("One background job"),
    tag="jobs",
    response=JobOut,
    roles=("planner",),
    path_params=JOB_ID,
    errors=(404,),
)
def get_job(job_id: str):
    return deps.get_jobs().get(job_id)


@endpoint(
    "post",
    "/jobs/{job_id}/cancel",
    summary=N_("Cancel a background job"),
    tag="jobs",
    response=JobOut,
    roles=("planner",),
    path_params=JOB_ID,
    errors=(404,),
    description=N_(
        "A queued job is cancelled at once; a running one stops at its next "
        "progress report. Ended jobs are left as they are."
    ),
)
def cancel_job(job_id: str):
    return deps.get_jobs().cancel(job_id, user=current_username() or "unknown")
