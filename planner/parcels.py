"""Plot lifecycle and edits: candidate parcels created, reshaped, moved along the lifecycle,
published (with servicing checked) or deleted, and asset statuses set.

The checks of a drawn outline live in :mod:`planner.parcel_check` (re-exported here).
Geometry is measured in the metric working CRS.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import pandas as pd

from geo.i18n import N_
from geo.layers import ASSET_LAYERS, PLOT_STATUSES, PLOT_TRANSITIONS
from geo.store import Conflict, Invalid, NotFound
from geo.validate import Problem
from planner.parcel_check import (
    MAX_VERTICES,
    MIN_AREA_HA,
    ParcelCheck,
    ParcelInputError,
    ParcelProblem,
    Translate,
    check_parcel,
    polygon_from_geojson,
)
from planner.servicing import UTILITY_WORDS, explain

__all__ = [
    "MIN_AREA_HA",
    "MAX_VERTICES",
    "RESHAPE_STATUSES",
    "DELETABLE_STATUSES",
    "ParcelProblem",
    "ParcelCheck",
    "ParcelInputError",
    "StateConflict",
    "TransitionError",
    "PublishUnconfirmed",
    "PUBLISH_NEEDS",
    "publishing_gaps",
    "check_parcel",
    "polygon_from_geojson",
    "allowed_transitions",
    "check_transition",
    "new_plot_id",
    "create_candidate",
    "update_plot",
    "delete_candidate",
    "update_asset",
    "N_",
]

#: Plot statuses whose boundary planners may still redraw (nobody holds the plot yet).
RESHAPE_STATUSES: tuple[str, ...] = ("candidate", "available")
#: Plot statuses that may be deleted (never offered to anyone).
DELETABLE_STATUSES: tuple[str, ...] = ("candidate",)


class StateConflict(Conflict):
    """A change the feature's present state does not allow; ``field`` names what."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class TransitionError(StateConflict):
    """An illegal move along the plot lifecycle (e.g. occupied -> candidate)."""

    def __init__(self, message: str):
        super().__init__(message, "status")


class PublishUnconfirmed(StateConflict):
    """Publishing a plot without road or water within reach needs a confirmation.

    ``gaps`` holds ``(utility, servicing answer)`` for each of road and water it lacks;
    :meth:`message` says them in words.
    """

    def __init__(self, plot_id: str, gaps: list[tuple[str, Mapping[str, Any]]]):
        self.plot_id = plot_id
        self.gaps = gaps
        super().__init__(self.message(), "confirm")

    def lines(self, translate: Translate | None = None) -> list[str]:
        """The servicing answer of each missing utility, in words."""
        return [explain({utility: item}, translate)[0] for utility, item in self.gaps]

    def message(self, translate: Translate | None = None) -> str:
        """Why publishing waits for a confirmation, with the servicing answer."""
        tr = translate or (lambda s: s)
        missing = tuple(u for u, _ in self.gaps)
        what = tr(N_("road or water")) if len(missing) > 1 else tr(UTILITY_WORDS[missing[0]])
        return tr(
            N_(
                "plot {plot} has no {what} within reach ({why}); publish it only with a "
                "confirmation"
            )
        ).format(plot=self.plot_id, what=what, why="; ".join(self.lines(translate)))


#: What a plot offered to investors must have within reach (else publishing needs a confirmation).
PUBLISH_NEEDS: tuple[str, ...] = ("road", "water")


def publishing_gaps(record: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Which of :data:`PUBLISH_NEEDS` a plot's servicing record lacks within reach.

    Road: no operational road within the frontage distance; water: no operational main
    within the connection distance. Returns ``(utility, record[utility])`` pairs.
    """
    reached = {
        "road": bool(record["road"].get("fronts")),
        "water": bool(record["water"].get("available")),
    }
    return [(u, record[u]) for u in PUBLISH_NEEDS if not reached[u]]


# --------------------------------------------------------------------------- the lifecycle
def allowed_transitions(status: str) -> tuple[str, ...]:
    """Statuses a plot in ``status`` may move to (``geo.layers.PLOT_TRANSITIONS``)."""
    return PLOT_TRANSITIONS.get(status, ())


def check_transition(old: str, new: str, *, plot_id: str | None = None) -> None:
    """Refuse an illegal lifecycle move.

    Raises
    ------
    TransitionError
        For unknown statuses and moves not in ``PLOT_TRANSITIONS`` (e.g.
        occupied -> candidate), naming the moves allowed from ``old``.
    """
    if new not in PLOT_STATUSES:
        raise TransitionError(
            f"{new!r} is not a plot status; use one of {', '.join(PLOT_STATUSES)}"
        )
    if old == new:
        return
    allowed = allowed_transitions(old)
    if new not in allowed:
        who = f"plot {plot_id}" if plot_id else "a plot"
        choices = " or ".join(allowed) if allowed else "nothing"
        raise TransitionError(
            f"{who} cannot go from {old} to {new}; from {old} it may go to {choices}"
        )


_ID = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")


def new_plot_id(existing: Iterable[str], *, prefix: str = "P-", width: int = 3) -> str:
    """The next free plot id after the highest ``<prefix><number>`` in ``existing``.

    Examples
    --------
    >>> new_plot_id(["P-001", "P-206", "X-9"])
    'P-207'
    """
    highest = 0
    for pid in existing:
        match = _ID.match(str(pid))
        if match and match.group("prefix") == prefix:
            highest = max(highest, int(match.group("number")))
    return f"{prefix}{highest + 1:0{width}d}"


# --------------------------------------------------------------------------- edits
def _refuse(check: ParcelCheck, plot_id: str | None, translate: Translate | None) -> None:
    if not check.valid:
        raise Invalid([Problem(None, plot_id, "geometry", m) for m in check.messages(translate)])


def _check_version(layer: str, key: str, row: Mapping[str, Any], version: int) -> None:
    if int(row.get("version") or 0) != int(version):
        raise Conflict(
            f"{layer} {key} was changed by someone else (now version "
            f"{row.get('version')}, your copy is version {version}); reload it "
            "and apply your change again"
        )


def create_candidate(
    store: Any,
    polygon: Any,
    *,
    user: str,
    attributes: Mapping[str, Any] | None = None,
    translate: Translate | None = None,
    min_area_ha: float = MIN_AREA_HA,
) -> tuple[str, ParcelCheck]:
    """Store a drawn parcel as a ``candidate`` plot with the next free id, in one transaction.

    The parcel is checked inside the write transaction, so what is checked is what the
    parcel is written next to (two planners cannot store overlapping parcels).

    Returns
    -------
    (plot_id, ParcelCheck)

    Raises
    ------
    Invalid
        One problem per reason (``field`` geometry), messages via ``translate``;
        or for attributes that break the schema. Nothing is written.
    """
    with store.transaction(user) as tx:
        tx.lock("plots")  # a second planner's parcel waits until this one is stored
        check = check_parcel(tx, polygon, min_area_ha=min_area_ha)
        _refuse(check, None, translate)
        plot_id = new_plot_id(tx.keys("plots"))
        row = {
            "sectors": "*",
            **(attributes or {}),
            "plot_id": plot_id,
            "status": "candidate",
            "exp_id": check.exp_id,
        }
        tx.insert(
            "plots",
            gpd.GeoDataFrame(pd.DataFrame([row]), geometry=[check.polygon], crs=tx.epsg),
        )
    return plot_id, check


def update_plot(
    store: Any,
    plot_id: str,
    changes: Mapping[str, Any],
    *,
    version: int,
    user: str,
    translate: Translate | None = None,
    min_area_ha: float = MIN_AREA_HA,
    servicing: Any = None,
    confirm: bool = False,
) -> tuple[int, ParcelCheck | None]:
    """Change a plot's attributes, ``status`` (along the lifecycle) and ``geometry`` (a
    working-CRS polygon; candidates and available plots only) in one transaction.

    Parameters
    ----------
    servicing : ServicingModel, optional
        The servicing model of the store as it is; with it, publishing a plot (a move to
        ``available``) that has no road or no water main within reach is refused unless
        ``confirm`` is true.
    confirm : bool
        Publish even so (the planner saw the servicing answer).

    Returns
    -------
    (new version, ParcelCheck of the new outline or None)

    Raises
    ------
    NotFound, Conflict (stale ``version``), TransitionError, StateConflict (outline of a
    held plot), PublishUnconfirmed (publishing without road or water, unconfirmed),
    Invalid (outline problems, attributes breaking the schema).
    """
    changes = dict(changes)
    check = None
    with store.transaction(user) as tx:
        if "geometry" in changes:
            tx.lock("plots")
        row = tx.get("plots", plot_id, for_update=True)
        _check_version("plots", plot_id, row, version)
        if "status" in changes:
            check_transition(row["status"], changes["status"], plot_id=plot_id)
        if "geometry" in changes:
            if row["status"] not in RESHAPE_STATUSES:
                raise StateConflict(
                    f"plot {plot_id} is {row['status']}; its outline may change "
                    f"only while it is {' or '.join(RESHAPE_STATUSES)}",
                    "geometry",
                )
            check = check_parcel(
                tx, changes["geometry"], exclude_plot_id=plot_id, min_area_ha=min_area_ha
            )
            _refuse(check, plot_id, translate)
            changes["geometry"] = check.polygon
            changes["exp_id"] = check.exp_id
        if (
            servicing is not None
            and not confirm
            and changes.get("status") == "available"
            and row["status"] != "available"
        ):
            record = (
                servicing.answer_geometry(changes["geometry"])
                if "geometry" in changes
                else servicing.answer([plot_id])[0]
            )
            gaps = publishing_gaps(record)
            if gaps:
                raise PublishUnconfirmed(plot_id, gaps)
        new_version = tx.update("plots", plot_id, changes, version=version)
    return new_version, check


def delete_candidate(store: Any, plot_id: str, *, version: int, user: str) -> None:
    """Delete a candidate plot (never offered to anyone) in one transaction.

    Raises
    ------
    NotFound, Conflict (stale ``version``), StateConflict (not a candidate).
    """
    with store.transaction(user) as tx:
        row = tx.get("plots", plot_id, for_update=True)
        _check_version("plots", plot_id, row, version)
        if row["status"] not in DELETABLE_STATUSES:
            raise StateConflict(
                f"plot {plot_id} is {row['status']}; only candidate plots may "
                "be deleted (move it back to candidate first, where the "
                "lifecycle allows)",
                "status",
            )
        tx.delete("plots", plot_id, version=version)


def update_asset(
    store: Any,
    layer: str,
    asset_id: str,
    changes: Mapping[str, Any],
    *,
    version: int,
    user: str,
    today: dt.date | None = None,
) -> int:
    """Set an asset's ``status``, ``since``, ``due`` or ``note`` in one transaction.

    When the status changes and ``since`` is not given, ``since`` becomes ``today``;
    an empty note is stored as none. Returns the new version.

    Raises
    ------
    NotFound (unknown layer or asset), Conflict (stale ``version``), Invalid (unknown
    fields, bad values).
    """
    if layer not in ASSET_LAYERS:
        raise NotFound(f"no infrastructure layer {layer!r}; layers: {', '.join(ASSET_LAYERS)}")
    allowed = ("status", "since", "due", "note")
    unknown = [name for name in changes if name not in allowed]
    if unknown:
        raise Invalid(
            [
                Problem(None, asset_id, name, f"only {', '.join(allowed)} may be set here")
                for name in unknown
            ]
        )
    changes = dict(changes)
    if changes.get("note") is not None and not str(changes["note"]).strip():
        changes["note"] = None
    with store.transaction(user) as tx:
        row = store.get(layer, asset_id)
        _check_version(layer, asset_id, row, version)
        if (
            "status" in changes
            and changes["status"] != row.get("status")
            and "since" not in changes
        ):
            changes["since"] = (today or dt.date.today()).isoformat()
        new_version: int = tx.update(layer, asset_id, changes, version=version)
        return new_version
