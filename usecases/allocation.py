"""Allocation as use cases: the optimiser run on pending applications as a background job,
its proposal shaped for people, and a selection of it accepted in one transaction."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import pandas as pd

from geo.crs import to_wgs84
from geo.i18n import N_
from geo.store import Invalid, Store
from geo.validate import Problem
from planner import reservation
from planner.allocation import OBJECTIVES, AllocationResult, solve
from planner.allocation.reasons import Reason
from planner.allocation_tables import PENDING, application_table, capacity_table, plot_table
from planner.reservation import Breach
from planner.servicing import ServicingModel
from usecases.applications import ServicingSource, accept_many, read_servicing

__all__ = [
    "JOB_KIND",
    "DEFAULT_TIME_LIMIT_S",
    "MAX_TIME_LIMIT_S",
    "AllocationError",
    "RunRequest",
    "read_request",
    "run",
    "allocation_job",
    "proposal_view",
    "accept_proposal",
]

JOB_KIND = "allocation"
DEFAULT_TIME_LIMIT_S = 20.0
MAX_TIME_LIMIT_S = 600.0
#: Most application ids one run may name (a run with none takes every pending one).
MAX_APPLICATIONS = 20_000
#: Solver progress points kept in a result (gap over time), thinned evenly beyond this.
MAX_TRACE = 200
Progress = Callable[..., None]
Translate = Callable[[str], str]
_APPLIED_FOR = N_("applied for plot {plot}, which is {status}")
_APPLIED_GONE = N_("applied for plot {plot}, which no longer exists")


class AllocationError(ValueError):
    """A run that cannot start or finish as asked; ``field`` names the offending input."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RunRequest:
    """What to allocate: which applications (None: every pending one), which plots (None:
    every available one; else an expansion area's), the objective and the time limit."""

    objective: str = "weighted"
    time_limit: float = DEFAULT_TIME_LIMIT_S
    app_ids: tuple[str, ...] | None = None
    area: str | None = None

    def to_params(self) -> dict[str, Any]:
        """The job's parameters (JSON)."""
        return {
            "objective": self.objective,
            "time_limit": self.time_limit,
            "app_ids": None if self.app_ids is None else list(self.app_ids),
            "area": self.area,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RunRequest:
        """The request a job was started with."""
        ids = params.get("app_ids")
        return cls(
            objective=str(params.get("objective") or "weighted"),
            time_limit=float(params.get("time_limit") or DEFAULT_TIME_LIMIT_S),
            app_ids=None if ids is None else tuple(str(i) for i in ids),
            area=params.get("area") or None,
        )


def read_request(store: Store, data: Mapping[str, Any]) -> RunRequest:
    """Check a run's inputs against the store before a job starts.

    Parameters
    ----------
    data : mapping
        ``objective`` (default weighted), ``time_limit`` (seconds, default 20, at most
        600), ``app_ids`` (default: every pending application) and ``area`` (an
        expansion area; default: every available plot).

    Raises
    ------
    AllocationError
        Naming the field: an unknown objective or area, a bad time limit, applications
        that do not exist or are not pending.
    """
    objective = data.get("objective") or "weighted"
    if objective not in OBJECTIVES:
        raise AllocationError(f"objective: use one of {', '.join(OBJECTIVES)}", "objective")
    time_limit = _time_limit(data.get("time_limit"))
    area = str(data.get("area") or "").strip() or None
    if area is not None and store.count("expansion", where={"exp_id": area}) == 0:
        raise AllocationError(f"area: there is no expansion area {area[:64]!r}", "area")
    ids = data.get("app_ids")
    if ids is not None:
        ids = _pending_ids(store, ids)
    return RunRequest(objective, time_limit, ids, area)


def _time_limit(value: Any) -> float:
    if value in (None, ""):
        return DEFAULT_TIME_LIMIT_S
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise AllocationError("time_limit: give a number of seconds", "time_limit") from None
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIME_LIMIT_S):
        raise AllocationError(
            f"time_limit: give more than 0 and at most {MAX_TIME_LIMIT_S:g} seconds", "time_limit"
        )
    return seconds


def _pending_ids(store: Store, ids: Any) -> tuple[str, ...]:
    if not isinstance(ids, (list, tuple)) or not all(isinstance(i, str) for i in ids):
        raise AllocationError("app_ids: give a list of application ids", "app_ids")
    ids = tuple(dict.fromkeys(i.strip() for i in ids if i.strip()))
    if not ids:
        raise AllocationError("app_ids: choose at least one application", "app_ids")
    if len(ids) > MAX_APPLICATIONS:
        raise AllocationError(f"app_ids: at most {MAX_APPLICATIONS:,} applications", "app_ids")
    stored = store.read("applications", where={"app_id": list(ids)})
    status = dict(zip(stored["app_id"].astype(str), stored["status"].astype(str)))
    missing = [i for i in ids if i not in status]
    if missing:
        raise AllocationError(f"app_ids: no application {', '.join(missing[:10])}", "app_ids")
    ended = [f"{i} ({status[i]})" for i in ids if status[i] != PENDING]
    if ended:
        raise AllocationError(
            f"app_ids: not pending: {', '.join(ended[:10])}; only submitted applications "
            "are allocated",
            "app_ids",
        )
    return ids


# --------------------------------------------------------------------------- the run
def run(store: Store, request: RunRequest, progress: Progress | None = None) -> dict[str, Any]:
    """Allocate the request's applications to its plots, beside first come, first served.

    Servicing and headroom are as recorded today (what an accept checks). ``progress`` is
    called as ``progress(fraction, message, interim)`` (a :class:`usecases.jobs.JobContext`'s
    ``progress`` fits); ``interim`` holds the best value, bound and gap so far.

    Returns
    -------
    dict
        JSON-ready: ``request``, ``summary`` (method, status, proven gap, seconds, time to
        the first proposal, the gap over time), ``comparison`` (value, count, jobs,
        investment of the proposal and of first come, first served), ``proposals`` (one
        per placed application with its plot), ``left_out`` (each with the optimiser's
        reason and the rules it breaks on the plot it applied for) and ``features`` (the
        proposed plots, GeoJSON in WGS84).

    Raises
    ------
    AllocationError
        No pending application or no available plot to allocate.
    """
    report = progress or (lambda fraction, message="", interim=None: None)
    started = time.perf_counter()
    report(0.0, "reading the store")
    snapshot = store.snapshot()
    pending = _pending(store.read("applications"), request)
    model = ServicingModel(snapshot)
    report(0.02, "building the tables")
    plots = _plots(snapshot, model, request.area)
    apps, capacities = application_table(pending), capacity_table(model)
    trace: list[list[float]] = []
    solving = time.perf_counter()

    def on_progress(elapsed: float, objective: float, bound: float) -> None:
        trace.append([round(time.perf_counter() - started, 3), objective, bound])
        gap = _gap(objective, bound)
        report(
            0.05 + 0.9 * min(elapsed / request.time_limit, 1.0),
            f"{elapsed:.1f} s: best {objective:,.4g}" + ("" if gap is None else f", gap {gap:.2%}"),
            {"elapsed_s": round(elapsed, 2), "objective": objective, "bound": bound, "gap": gap},
        )

    report(0.05, f"solving {len(apps)} applications × {len(plots)} plots")
    result = solve(
        plots,
        apps,
        capacities,
        objective=request.objective,
        time_limit=request.time_limit,
        on_progress=on_progress,
    )
    solve_s = time.perf_counter() - solving
    greedy = solve(plots, apps, capacities, objective=request.objective, method="greedy")
    report(0.97, "explaining the proposal")
    doc = _document(request, snapshot, pending, model, result, greedy)
    doc["summary"]["plots"] = len(plots)
    doc["summary"].update(
        solve_s=round(solve_s, 3),
        total_s=round(time.perf_counter() - started, 3),
        first_proposal_s=trace[0][0] if trace else round(time.perf_counter() - started, 3),
        trace=_thin(trace),
    )
    return doc


def allocation_job(store: Store, request: RunRequest) -> Callable[[Any], dict[str, Any]]:
    """A job function for :class:`usecases.jobs.JobRunner` running :func:`run`."""

    def job(ctx: Any) -> dict[str, Any]:
        return run(store, request, ctx.progress)

    return job


def _pending(applications: pd.DataFrame, request: RunRequest) -> pd.DataFrame:
    pending = applications[applications["status"] == PENDING]
    if request.app_ids is not None:
        pending = pending[pending["app_id"].astype(str).isin(request.app_ids)]
        gone = sorted(set(request.app_ids) - set(pending["app_id"].astype(str)))
        if gone:
            raise AllocationError(
                f"no longer pending since the run was asked for: {', '.join(gone[:10])}; "
                "run it again",
                "app_ids",
            )
    if pending.empty:
        raise AllocationError("there are no pending applications to allocate", "app_ids")
    return pending.reset_index(drop=True)


def _plots(snapshot: Mapping[str, Any], model: ServicingModel, area: str | None) -> pd.DataFrame:
    plots = plot_table(snapshot, model)
    if area is not None:
        stored = snapshot["plots"]
        inside = set(stored.loc[stored["exp_id"].astype(str) == area, "plot_id"].astype(str))
        plots = plots[plots["plot_id"].astype(str).isin(inside)].reset_index(drop=True)
        if plots.empty:
            raise AllocationError(f"expansion area {area} has no available plots", "area")
    elif plots.empty:
        raise AllocationError("there are no available plots to allocate", "area")
    return plots


def _gap(objective: float, bound: float) -> float | None:
    if not math.isfinite(bound):
        return None
    return max(bound - objective, 0.0) / max(abs(objective), 1e-9)


def _thin(trace: list[list[float]]) -> list[list[float]]:
    if len(trace) <= MAX_TRACE:
        return trace
    step = len(trace) / MAX_TRACE
    return [trace[int(k * step)] for k in range(MAX_TRACE - 1)] + [trace[-1]]


# --------------------------------------------------------------------------- the document
_APP_FIELDS = ("company", "project", "sector", "investor", "invest", "jobs", "power_kw")


def _document(
    request: RunRequest,
    snapshot: Mapping[str, Any],
    pending: pd.DataFrame,
    model: ServicingModel,
    result: AllocationResult,
    greedy: AllocationResult,
) -> dict[str, Any]:
    apps = pending.set_index(pending["app_id"].astype(str))
    stored = snapshot["plots"].set_index(snapshot["plots"]["plot_id"].astype(str))
    placed = result.assignments.dropna(subset=["plot_id"])
    proposals = [
        {
            "app_id": row.app_id,
            "plot_id": row.plot_id,
            "area_ha": _number(stored.at[row.plot_id, "area_ha"]),
            "requested": _text(apps.at[row.app_id, "plot_id"]),
            **{name: _value(apps.at[row.app_id, name]) for name in _APP_FIELDS},
        }
        for row in placed.itertuples(index=False)
    ]
    features = stored.loc[placed["plot_id"].tolist(), ["plot_id", "geometry"]].copy()
    features["app_id"] = placed["app_id"].tolist()
    return {
        "request": request.to_params(),
        "summary": {
            "objective": request.objective,
            "method": result.method,
            "status": result.status,
            "gap": None if math.isnan(result.gap) else _number(result.gap),
            "value": result.objective,
            "elapsed_s": round(result.elapsed_s, 3),
            "applications": len(pending),
            "placed": len(proposals),
        },
        "comparison": {
            "optimised": _totals(result, apps),
            "fcfs": _totals(greedy, apps),
        },
        "proposals": proposals,
        "left_out": _left_out(result, apps, stored, model),
        "features": _geojson(features),
    }


def _totals(result: AllocationResult, apps: pd.DataFrame) -> dict[str, float]:
    chosen = result.assignments.dropna(subset=["plot_id"])["app_id"].astype(str)
    placed = apps.loc[chosen.tolist()]
    return {
        "value": float(result.objective),
        "count": len(placed),
        "jobs": float(pd.to_numeric(placed["jobs"]).fillna(0).sum()),
        "investment": float(pd.to_numeric(placed["invest"]).fillna(0).sum()),
    }


def _left_out(
    result: AllocationResult, apps: pd.DataFrame, stored: pd.DataFrame, model: ServicingModel
) -> list[dict[str, Any]]:
    """Each application left out: the optimiser's reason, and the rules it breaks on the plot
    it applied for (checked by planner.reservation, as an accept would)."""
    out = result.assignments[result.assignments["plot_id"].isna()]
    rows: list[dict[str, Any]] = []
    checks: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for row in out.itertuples(index=False):
        app = {str(k): v for k, v in apps.loc[str(row.app_id)].to_dict().items()}
        item = {
            "app_id": row.app_id,
            "reason": _reason_json(row.reason),
            "requested": _text(app.get("plot_id")),
            "requested_status": None,
            "rules": [],
            **{name: _value(app.get(name)) for name in _APP_FIELDS},
        }
        plot_id = item["requested"]
        if plot_id is not None:
            status = stored.at[plot_id, "status"] if plot_id in stored.index else None
            item["requested_status"] = status
            if status == "available":
                plot = {str(k): v for k, v in stored.loc[plot_id].to_dict().items()}
                checks.append((len(rows), plot, app))
        rows.append(item)
    found = reservation.check_many([(p, a) for _, p, a in checks], model, shared=False)
    for (position, _, _), breaches in zip(checks, found):
        rows[position]["rules"] = [_breach_json(b) for b in breaches]
    return rows


def _reason_json(reason: Any) -> Any:
    """The optimiser's reason kept untranslated (template and values)."""
    return reason.to_json() if isinstance(reason, Reason) else _text(reason)


def _say(reason: Any, tr: Callable[[str], str]) -> str | None:
    return Reason.from_json(reason).say(tr) if isinstance(reason, Mapping) else reason


def _geojson(frame: pd.DataFrame) -> dict[str, Any]:
    if frame.empty:
        return {"type": "FeatureCollection", "features": []}
    gdf = gpd.GeoDataFrame(
        frame.reset_index(drop=True), geometry="geometry", crs=getattr(frame, "crs", None)
    )
    return json.loads(to_wgs84(gdf).to_json(na="null", drop_id=True))


def _breach_json(breach: Breach) -> dict[str, Any]:
    """A breach kept untranslated (template and values), so it is said in the reader's language."""
    return json.loads(
        json.dumps(
            {
                "rule": breach.rule,
                "template": breach.template,
                "params": dict(breach.params),
                "servicing": list(breach.servicing) if breach.servicing else None,
            },
            default=str,
        )
    )


def _breach(data: Mapping[str, Any]) -> Breach:
    quoted = data.get("servicing")
    return Breach(
        data["rule"], data["template"], data.get("params") or {}, tuple(quoted) if quoted else None
    )


def _value(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _number(value: Any) -> float | None:
    value = _value(value)
    return None if value is None else float(value)


def _text(value: Any) -> str | None:
    value = _value(value)
    return None if value in (None, "") else str(value)


# --------------------------------------------------------------------------- reading and accepting
def proposal_view(
    store: Store, document: Mapping[str, Any], translate: Translate | None = None
) -> dict[str, Any]:
    """A finished run's document for people: every reason in the reader's language, and
    each application's status now (a proposal accepted since shows ``reserved``)."""
    tr = translate or (lambda s: s)
    doc = json.loads(json.dumps(document))
    ids = [p["app_id"] for p in doc["proposals"]] + [a["app_id"] for a in doc["left_out"]]
    now = store.read("applications", where={"app_id": ids}) if ids else pd.DataFrame()
    status = dict(zip(now.get("app_id", []), now.get("status", []))) if len(now) else {}
    assigned = dict(zip(now.get("app_id", []), now.get("assigned", []))) if len(now) else {}
    for item in doc["proposals"]:
        item["status_now"] = status.get(item["app_id"])
        item["assigned_now"] = _text(assigned.get(item["app_id"]))
    for item in doc["left_out"]:
        item["status_now"] = status.get(item["app_id"])
        item["reason"] = _say(item["reason"], tr)
        item["rules"] = [_breach(b).to_dict(tr) for b in item["rules"]]
        if item["requested"] and item["requested_status"] != "available":
            template = _APPLIED_GONE if item["requested_status"] is None else _APPLIED_FOR
            item["requested_note"] = tr(template).format(
                plot=item["requested"], status=item["requested_status"]
            )
    return doc


def accept_proposal(
    store: Store,
    document: Mapping[str, Any],
    app_ids: Sequence[str] | None = None,
    *,
    user: str,
    role: str | None,
    servicing: ServicingSource = read_servicing,
) -> list[dict[str, Any]]:
    """Accept the proposal of a finished run, all of it or the applications ``app_ids``,
    in one transaction through :func:`usecases.applications.accept_many`.

    Raises
    ------
    Invalid
        An application that is not in the proposal, or none chosen.
    usecases.applications.SelectionRefused
        When the store changed since the run so that some pairs cannot be accepted (an
        application withdrawn, a plot taken, an asset no longer operational): each named,
        nothing written.
    """
    proposed = {p["app_id"]: p["plot_id"] for p in document.get("proposals") or []}
    chosen = list(proposed) if app_ids is None else [str(a) for a in app_ids]
    foreign = [a for a in chosen if a not in proposed]
    if foreign:
        raise Invalid(
            [
                Problem(None, a, "app_ids", f"application {a} is not in this proposal")
                for a in foreign
            ]
        )
    return accept_many(
        store,
        [(a, proposed[a]) for a in chosen],
        user=user,
        role=role,
        servicing=servicing,
    )
