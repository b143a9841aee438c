"""Applications as use cases: apply, accept (a reservation that consumes capacity), reject, withdraw.

Each function is one store transaction: it reads what it checks inside the transaction,
asks :mod:`planner.reservation` whether the application may take the plot, writes, and
returns the result or raises a typed error (:class:`Refused` is a ``Conflict``: HTTP 409,
exit status 1). Flask views and the CLI only translate to and from these calls.

Accepting reserves the plot and writes the application's demand and identity onto it
(``power_kw``, ``water_m3d``, ``resident``, ``project``, ``sector``, ``invest``, ``jobs``,
``rail_need``, ``hazard``) in the same transaction, so servicing headroom, KPIs and the
catalogue count it from the next read on. Rejecting or withdrawing an accepted
application releases the plot and its capacity.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from geo.i18n import N_
from geo.layers import ASSET_LAYERS
from geo.store import Conflict, Invalid, NotFound, Session, Store
from geo.store.base import now_iso
from geo.validate import Problem
from planner import reservation
from planner.applications import ApplicationIn, as_record, parse_body
from planner.catalogue import PUBLIC_PLOT_STATUS
from planner.reservation import Breach
from planner.servicing import ServicingModel
from planner.visibility import Forbidden, is_staff, plot_view

__all__ = [
    "Refused",
    "Filed",
    "ServicingSource",
    "read_servicing",
    "check",
    "apply",
    "accept",
    "reject",
    "withdraw",
    "RELEASE_STATUSES",
]

Translate = Callable[[str], str]
#: A servicing model consistent with what a transaction sees (see :func:`read_servicing`).
ServicingSource = Callable[[Session], ServicingModel]
#: Statuses an accepted application's plot is released from when the application ends.
RELEASE_STATUSES = ("reserved", "allocated")
#: Rules an application for a named plot must meet to be filed at all (the plot's zoning);
#: the others (rail, hazard, connections, headroom) are warnings until a planner accepts.
_FILING_RULES = {"size": "max_ha", "sector": "sector"}


class Refused(Conflict):
    """The application may not take the plot now; ``breaches`` name every broken rule."""

    def __init__(self, app_id: str | None, plot_id: str, breaches: list[Breach]):
        self.app_id = app_id
        self.plot_id = plot_id
        self.breaches = breaches
        super().__init__(self.message())

    def message(self, translate: Translate | None = None) -> str:
        """Why, in words: ``application A cannot take plot P: SS-14 has 970 kW left, ...``."""
        tr = translate or (lambda s: s)
        return tr(N_("application {app} cannot take plot {plot}: {reasons}")).format(
            app=self.app_id,
            plot=self.plot_id,
            reasons="; ".join(b.message(translate) for b in self.breaches),
        )


@dataclass
class Filed:
    """A filed application and the rules it would break on its plot today (warnings)."""

    application: dict[str, Any]
    warnings: list[Breach] = field(default_factory=list)


def read_servicing(tx: Session) -> ServicingModel:
    """A servicing model over the plots and assets as the transaction ``tx`` sees them.

    The default source; the web app passes one cached per store revision instead, which
    is the same data while the transaction holds the store's write lock.
    """
    return ServicingModel({name: tx.read(name) for name in ("plots", *ASSET_LAYERS)})


def _new_id() -> str:
    return f"A{dt.date.today():%y%m%d}-{secrets.token_hex(3).upper()}"


def _plot(tx: Session, plot_id: str, *, role: str | None) -> dict[str, Any]:
    """The plot to reserve, locked; one the role may not see is as missing (NotFound)."""
    try:
        plot = tx.get("plots", plot_id, for_update=True)
    except NotFound:
        plot = None
    plot = plot_view(role).require(plot, plot_id)
    if plot["status"] != PUBLIC_PLOT_STATUS:
        raise Conflict(f"plot {plot_id} is {plot['status']}, not available")
    return plot


def _application(tx: Session, app_id: str, *, user: str, role: str | None) -> dict[str, Any]:
    """An application, locked; investors reach only their own (others are NotFound)."""
    try:
        app = as_record(tx.get("applications", app_id, for_update=True))
    except NotFound:
        app = None
    if app is None or (not is_staff(role) and app["investor"] != user):
        raise NotFound(f"application {app_id!r} does not exist")
    return app


def _expect(app: Mapping[str, Any], version: int | None, *states: str) -> int:
    if version is not None and version != app["version"]:
        raise Conflict(
            f"application {app['app_id']} was changed by someone else (now version "
            f"{app['version']}, yours is {version}); reload it"
        )
    if app["status"] not in states:
        raise Conflict(
            f"application {app['app_id']} is {app['status']}; only "
            f"{' or '.join(states)} applications can change this way"
        )
    return int(app["version"])


def _staff_only(role: str | None, action: str) -> None:
    if not is_staff(role):
        raise Forbidden(f"only planners {action} applications")


def _filing_problems(breaches: list[Breach]) -> list[Problem]:
    return [
        Problem(None, b.params.get("plot"), _FILING_RULES[b.rule], b.message())
        for b in breaches
        if b.rule in _FILING_RULES
    ]


def _checked(
    tx: Session, app: ApplicationIn, *, role: str | None, servicing: ServicingSource
) -> list[Breach]:
    fields = app.model_dump()  # the model is built from the schema: no static attributes
    if not fields["plot_id"]:
        return []
    plot = _plot(tx, fields["plot_id"], role=role)
    breaches = reservation.check(plot, fields, servicing(tx))
    problems = _filing_problems(breaches)
    if problems:
        raise Invalid(problems)
    return breaches


def check(
    store: Store,
    data: Any,
    *,
    user: str,
    role: str | None,
    servicing: ServicingSource = read_servicing,
) -> list[Breach]:
    """What :func:`apply` would warn about, without filing anything.

    Raises as :func:`apply` does.
    """
    if role != "investor":
        raise Forbidden("only investors submit applications")
    app = data if isinstance(data, ApplicationIn) else parse_body(ApplicationIn, data)
    with store.transaction(user) as tx:
        return _checked(tx, app, role=role, servicing=servicing)


def apply(
    store: Store,
    data: Any,
    *,
    user: str,
    role: str | None,
    servicing: ServicingSource = read_servicing,
) -> Filed:
    """File an application for ``user`` (an investor).

    Parameters
    ----------
    data : mapping or ApplicationIn
        The investor's fields; with ``plot_id`` the plot must be available, of an area
        within the range and zoned for the sector; without it the application is for
        any plot matching the needs.
    servicing : callable
        The servicing model for the transaction (default :func:`read_servicing`).

    Returns
    -------
    Filed
        The stored application, and as ``warnings`` every other rule it breaks on its
        plot today (rail, hazard class, connections, headroom): it is filed anyway, and a
        planner's accept will refuse it until they are met.

    Raises
    ------
    Forbidden
        For roles other than investor.
    NotFound
        For a plot that does not exist or the investor may not see (alike).
    Invalid
        Naming each bad field (area range, sector not allowed).
    Conflict
        When the plot is not available.
    """
    if role != "investor":
        raise Forbidden("only investors submit applications")
    app = data if isinstance(data, ApplicationIn) else parse_body(ApplicationIn, data)
    stamp = now_iso()
    row = {
        **app.model_dump(),
        "app_id": _new_id(),
        "investor": user,
        "status": "submitted",
        "created": stamp,
        "updated": stamp,
    }
    with store.transaction(user) as tx:
        warnings = _checked(tx, app, role=role, servicing=servicing)
        tx.insert("applications", pd.DataFrame([row]))
        stored = as_record(tx.get("applications", row["app_id"]))
    return Filed(stored, warnings)


def accept(
    store: Store,
    app_id: str,
    plot_id: str | None = None,
    *,
    user: str,
    role: str | None,
    version: int | None = None,
    servicing: ServicingSource = read_servicing,
) -> dict[str, Any]:
    """A planner accepts a submitted application for a plot, reserving it.

    In one transaction: the application, the plot and the substation and water main feeding
    it are read and locked, the plot is checked against every rule (:func:`planner.reservation.check`: area, sector, rail, hazard
    class, power and water connection and headroom as recorded today), the plot becomes
    ``reserved`` carrying the application's demand and identity, and the application
    ``reserved`` with ``assigned`` = the plot.

    Raises
    ------
    Forbidden
        For non-staff.
    NotFound
        No such application or plot.
    Invalid
        No plot given (and none applied for).
    Refused
        A rule is broken: each one named in words ("SS-14 has 970 kW left, the
        application needs 5,000 kW"). Nothing is written.
    Conflict
        Application not submitted, plot not available, or a stale version.
    """
    _staff_only(role, "accept")
    with store.transaction(user) as tx:
        # Headroom depends on every reserved plot's demand: accepts run one at a time, so
        # two cannot both spend the last kilowatts (PostGIS; a GeoPackage writer already
        # holds the whole file).
        tx.lock("plots")
        app = _application(tx, app_id, user=user, role=role)
        current = _expect(app, version, "submitted")
        plot_id = plot_id or app["plot_id"]
        if not plot_id:
            raise Invalid(
                [
                    Problem(
                        None,
                        app_id,
                        "plot_id",
                        "give the plot to reserve; the application names none",
                    )
                ]
            )
        plot = _plot(tx, plot_id, role=role)
        breaches = reservation.check(plot, app, _locked_servicing(tx, plot_id, servicing))
        if breaches:
            raise Refused(app_id, plot_id, breaches)
        tx.update(
            "plots",
            plot_id,
            {"status": "reserved", **reservation.demand_fields(app)},
            version=plot["version"],
        )
        tx.update(
            "applications",
            app_id,
            {"status": "reserved", "assigned": plot_id, "reason": None, "updated": now_iso()},
            version=current,
        )
        return as_record(tx.get("applications", app_id))


def _locked_servicing(tx: Session, plot_id: str, servicing: ServicingSource) -> ServicingModel:
    """The servicing model to check ``plot_id`` with, its substation and water main locked.

    Two accepts onto plots fed by one substation lock the same row, so they check one after
    the other. On a backend whose transaction holds the whole store's write lock
    (GeoPackage) nothing can commit meanwhile; on a row-locking one (PostGIS) a plot
    committed by another accept before the lock was granted changes the plots' revision,
    and the model is read again.
    """
    seen = tx.revision(["plots"])
    model = servicing(tx)
    record = model.answer([plot_id])[0]
    for layer, key in (
        ("substations", record["power"].get("substation")),
        ("water_mains", record["water"].get("main")),
    ):
        if key is not None:
            tx.get(layer, key, for_update=True)
    return model if tx.revision(["plots"]) == seen else servicing(tx)


def _release(tx: Session, app: Mapping[str, Any]) -> None:
    """Give an accepted application's plot back: available, its demand and identity cleared.

    A plot that no longer holds this application (freed by hand and taken by another)
    is left alone; an occupied one refuses, since the resident is there.
    """
    try:
        plot = tx.get("plots", app["assigned"], for_update=True)
    except NotFound:
        return
    held = reservation.demand_fields(app)
    if plot["status"] == "occupied":
        raise Conflict(
            f"plot {plot['plot_id']} is occupied; move it back to available on the "
            "planner's page first"
        )
    if plot["status"] not in RELEASE_STATUSES or any(
        plot.get(name) != held[name] for name in ("resident", "project")
    ):
        return
    tx.update(
        "plots",
        plot["plot_id"],
        {"status": PUBLIC_PLOT_STATUS, **{name: None for name in held}},
        version=plot["version"],
    )


def _end(
    store: Store,
    app_id: str,
    status: str,
    reason: str | None,
    *,
    user: str,
    role: str | None,
    version: int | None,
) -> dict[str, Any]:
    with store.transaction(user) as tx:
        app = _application(tx, app_id, user=user, role=role)
        current = _expect(app, version, "submitted", "reserved")
        if app["status"] == "reserved" and app["assigned"]:
            _release(tx, app)
        tx.update(
            "applications",
            app_id,
            {"status": status, "reason": reason, "updated": now_iso()},
            version=current,
        )
        return as_record(tx.get("applications", app_id))


def withdraw(
    store: Store, app_id: str, *, user: str, role: str | None, version: int | None = None
) -> dict[str, Any]:
    """The investor (or staff for them) withdraws a submitted or accepted application.

    An accepted one releases its plot (see :func:`reject`).

    Raises NotFound (not theirs), Conflict (already ended, stale version, plot occupied).
    """
    return _end(store, app_id, "withdrawn", None, user=user, role=role, version=version)


def reject(
    store: Store,
    app_id: str,
    reason: str,
    *,
    user: str,
    role: str | None,
    version: int | None = None,
) -> dict[str, Any]:
    """A planner rejects a submitted or accepted application, giving a reason the investor sees.

    Rejecting an accepted application releases its plot in the same transaction: the plot
    is ``available`` again and its demand and identity fields are cleared, so the capacity
    counts as free from the next read on.

    Raises Forbidden, Invalid (no reason), NotFound, Conflict (already ended, stale
    version, plot occupied).
    """
    _staff_only(role, "reject")
    reason = (reason or "").strip()
    if not reason:
        raise Invalid([Problem(None, app_id, "reason", "give a reason the investor will see")])
    return _end(store, app_id, "rejected", reason, user=user, role=role, version=version)
