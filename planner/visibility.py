"""Who sees what: the one access policy deciding, per role, the visible plots, fields and layers.

Every surface (map, catalogue, API, tiles, OGC API, exports, feature pages and error
messages) asks :func:`plot_view` and :func:`readable_layers` instead of testing roles
itself, so a rule changes here once. The policy:

- planners and admins see every plot, every field and every layer except ``users``;
- the public and investors see every plot except candidates (drawn but never offered),
  with only the fields in ``PUBLIC_PLOT_FIELDS`` (never who holds a plot, its project,
  investment, jobs or demand), and only the public layers.

A plot the role may not see must look exactly like a missing one: use
:func:`plot_not_found` for both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd

from geo.layers import LAYERS, PLOT_STATUSES
from geo.store import NotFound

__all__ = [
    "STAFF_ROLES",
    "HIDDEN_STATUSES",
    "PUBLIC_PLOT_FIELDS",
    "HIDDEN_PLOT_FIELDS",
    "NEVER_SERVED",
    "Forbidden",
    "PlotView",
    "plot_view",
    "is_staff",
    "plot_not_found",
    "readable_layers",
    "check_readable",
    "layer_fields",
]

STAFF_ROLES = frozenset({"planner", "admin"})
# Candidates are drafts on the planner's desk: nobody else learns they exist.
HIDDEN_STATUSES: tuple[str, ...] = ("candidate",)
PUBLIC_PLOT_FIELDS: tuple[str, ...] = (
    "plot_id",
    "cadastre",
    "status",
    "sectors",
    "hazard_ok",
    "exp_id",
    "area_ha",
)
HIDDEN_PLOT_FIELDS: tuple[str, ...] = tuple(
    name for name in LAYERS["plots"].names if name not in PUBLIC_PLOT_FIELDS
)
NEVER_SERVED = frozenset({"users"})

Frame = TypeVar("Frame", bound=pd.DataFrame)
Row = TypeVar("Row", bound="Mapping[str, Any] | pd.Series[Any]")


class Forbidden(PermissionError):
    """The caller's role may not do or see this; ``field`` names the parameter at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def is_staff(role: str | None) -> bool:
    """Whether ``role`` is a planner or an admin."""
    return role in STAFF_ROLES


def plot_not_found(plot_id: Any) -> NotFound:
    """The error for a plot that is missing or hidden from the caller (the two look alike)."""
    return NotFound(f"no plot {str(plot_id)!r}")


@dataclass(frozen=True)
class PlotView:
    """What one role sees of the ``plots`` layer.

    Attributes
    ----------
    role : str
        ``public``, ``investor``, ``planner`` or ``admin`` (anything else reads as public).
    user : str or None
        Who is asking (None when anonymous).
    statuses : tuple of str
        Plot statuses the role may see.
    hidden_fields : tuple of str
        Plot fields the role may not see.
    """

    role: str
    user: str | None
    statuses: tuple[str, ...]
    hidden_fields: tuple[str, ...]

    @property
    def staff(self) -> bool:
        """Whether this is the planners' (complete) view."""
        return is_staff(self.role)

    @property
    def key(self) -> str:
        """A name of the view for cache keys and ETags: equal keys see equal data."""
        return "staff" if self.staff else "public"

    @property
    def fields(self) -> tuple[str, ...]:
        """The plot fields the role may see, in schema order."""
        return tuple(n for n in LAYERS["plots"].names if n not in self.hidden_fields)

    def check_statuses(self, statuses: Iterable[str]) -> tuple[str, ...]:
        """``statuses`` unchanged, or :class:`Forbidden` naming those the role may not see."""
        asked = tuple(statuses)
        hidden = [s for s in asked if s not in self.statuses]
        if hidden:
            raise Forbidden(
                f"status {', '.join(hidden)} is for planners only; you may ask for "
                f"{', '.join(self.statuses)}",
                "status",
            )
        return asked

    def where(self, statuses: Iterable[str] | None = None) -> dict[str, list[str]] | None:
        """The store filter for the plots the role sees (of ``statuses``, when given).

        None means no filter (staff asking for every status).

        Raises
        ------
        Forbidden
            When ``statuses`` names one the role may not see.
        """
        if statuses is None:
            return (
                None
                if set(self.statuses) == set(PLOT_STATUSES)
                else {"status": list(self.statuses)}
            )
        return {"status": list(self.check_statuses(statuses))}

    def sees(self, row: Mapping[str, Any] | pd.Series[Any] | None) -> bool:
        """Whether the role may see this plot (a mapping with ``status``; None is missing)."""
        return row is not None and row.get("status") in self.statuses

    def require(self, row: Row | None, plot_id: Any) -> Row:
        """``row`` when the role sees it, else the same NotFound a missing plot gives."""
        if row is None or not self.sees(row):
            raise plot_not_found(plot_id)
        return row

    def record(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """One plot's attributes without the fields the role may not see."""
        return {k: v for k, v in row.items() if k not in self.hidden_fields}

    def visible(self, frame: Frame) -> Frame:
        """The rows the role sees, without the hidden columns (other columns pass through)."""
        if "status" in frame.columns:
            frame = frame[frame["status"].isin(self.statuses).to_numpy()]
        return frame.drop(columns=[c for c in self.hidden_fields if c in frame.columns])


def plot_view(role: str | None, user: str | None = None) -> PlotView:
    """The plots ``role`` may see (the policy in the module docstring).

    Parameters
    ----------
    role : str or None
        The caller's role; None, ``public`` or an unknown role is the public view.
    user : str, optional
        The caller's user name.
    """
    if is_staff(role):
        return PlotView(str(role), user, PLOT_STATUSES, ())
    role = role if role == "investor" else "public"
    return PlotView(
        role, user, tuple(s for s in PLOT_STATUSES if s not in HIDDEN_STATUSES), HIDDEN_PLOT_FIELDS
    )


def readable_layers(role: str | None) -> list[str]:
    """Layers the role may read: public ones for all, the rest for staff, ``users`` never."""
    return [
        name
        for name, layer in LAYERS.items()
        if name not in NEVER_SERVED and not layer.internal and (layer.public or is_staff(role))
    ]


def check_readable(name: str, role: str | None) -> None:
    """Raise NotFound for unknown (or never served) layers, Forbidden for staff-only ones."""
    if name not in LAYERS or name in NEVER_SERVED or LAYERS[name].internal:
        raise NotFound(f"no layer {name!r}; layers: {', '.join(readable_layers(role))}")
    if not LAYERS[name].public and not is_staff(role):
        raise Forbidden(f"layer {name!r} is for planners only")


def layer_fields(name: str, role: str | None) -> list[str]:
    """The fields of layer ``name`` the role may see (all but the hidden plot fields)."""
    hidden = plot_view(role).hidden_fields if name == "plots" else ()
    return [n for n in LAYERS[name].names if n not in hidden]
