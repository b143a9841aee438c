"""Reservation rules: whether an application may take a plot now, each broken rule in words.

Pure functions: the rules are the allocator's (:func:`planner.allocation.pair_rules` over
the tables of :mod:`planner.allocation_tables`), checked for one plot and one application
against the servicing model's headroom as recorded today (assets not operational give no
capacity; reserved and allocated plots have consumed theirs). Messages are ``N_`` templates
formatted after translation, like :mod:`planner.servicing`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from geo.i18n import N_
from geo.layers import get_layer, parse_sectors
from planner.allocation import pair_rules
from planner.allocation_tables import application_table, capacity_table, plot_table
from planner.servicing import ServicingModel, describe

__all__ = ["Breach", "RULES", "check", "demand_fields"]

Translate = Callable[[str], str]
#: The rules in the order a planner checks them (a missing connection hides its headroom).
RULES = ("size", "sector", "rail", "hazard", "power", "power_headroom", "water", "water_headroom")
#: Plot fields an accepted application writes (its demand and identity), from the application's.
_DEMAND = {
    "power_kw": "power_kw",
    "water_m3d": "water_m3d",
    "project": "project",
    "sector": "sector",
    "invest": "invest",
    "jobs": "jobs",
    "rail_need": "rail_need",
    "hazard": "hazard",
}
_TEMPLATES = {
    "size": N_("plot {plot} has {area} ha, outside the {low}–{high} ha applied for"),
    "sector": N_("plot {plot} allows {allowed}, not {sector}"),
    "rail": N_("the application needs rail; plot {plot} has {servicing}"),
    "hazard": N_(
        "plot {plot} allows hazard class {allowed} at most; the application is class {hazard}"
    ),
    "power": N_("the application needs {demand} kW of power; plot {plot} has {servicing}"),
    "power_headroom": N_("{node} has {left} kW left, the application needs {demand} kW"),
    "water": N_("the application needs {demand} m³/day of water; plot {plot} has {servicing}"),
    "water_headroom": N_("{node} has {left} m³/day left, the application needs {demand} m³/day"),
}


@dataclass(frozen=True)
class Breach:
    """One rule an application breaks on a plot.

    Attributes
    ----------
    rule : str
        One of :data:`RULES`.
    template : str
        English message template (the msgid) with ``{name}`` placeholders.
    params : dict
        Values for the placeholders (numbers already formatted).
    servicing : tuple, optional
        ``(utility, servicing answer)`` quoted in the message (said in words at format time).
    """

    rule: str
    template: str
    params: Mapping[str, Any] = field(default_factory=dict)
    servicing: tuple[str, Mapping[str, Any]] | None = None

    def message(self, translate: Translate | None = None) -> str:
        """The broken rule in words, translated first and formatted after."""
        tr = translate or (lambda s: s)
        params = dict(self.params)
        if self.servicing:
            params["servicing"] = describe(*self.servicing, translate)
        return tr(self.template).format(**params)

    def __str__(self) -> str:
        return self.message()

    def to_dict(self, translate: Translate | None = None) -> dict[str, str]:
        """``{"rule", "message"}`` for JSON."""
        return {"rule": self.rule, "message": self.message(translate)}


def _amount(value: Any) -> str:
    value = float(value or 0.0)
    return (
        f"{value:,.0f}"
        if value.is_integer() or abs(value) >= 100
        else f"{value:,.2f}".rstrip("0").rstrip(".")
    )


def _application_row(application: Mapping[str, Any]) -> pd.DataFrame:
    names = get_layer("applications").names
    row = {name: application.get(name) for name in names}
    row["app_id"] = row["app_id"] or "new"
    row["status"] = "submitted"
    return pd.DataFrame([row], columns=names)


def check(
    plot: Mapping[str, Any], application: Mapping[str, Any], model: ServicingModel
) -> list[Breach]:
    """Every rule ``application`` breaks on ``plot`` now (empty when it may take the plot).

    Parameters
    ----------
    plot : mapping
        The plot's stored fields (``plot_id``, ``status``, ``area_ha``, ``sectors``,
        ``hazard_ok``); it must be ``available`` and in ``model``'s snapshot.
    application : mapping
        An application's fields (``min_ha``, ``max_ha``, ``sector``, ``rail_need``,
        ``hazard``, ``power_kw``, ``water_m3d``, ...); missing demand counts as none.
    model : ServicingModel
        Servicing over the snapshot the check must hold for; headroom as recorded.

    Returns
    -------
    list of Breach
        In :data:`RULES` order; a plot without a connection reports the connection, not
        its headroom.

    Raises
    ------
    ValueError
        When the plot is not available or not in the model.
    """
    if plot.get("status") != "available":
        raise ValueError(f"plot {plot.get('plot_id')} is {plot.get('status')}, not available")
    plot_id = str(plot["plot_id"])
    plots = plot_table({"plots": pd.DataFrame([dict(plot)])}, model)
    capacities = capacity_table(model)
    passed = pair_rules(plots, application_table(_application_row(application)), capacities).iloc[0]
    record = model.answer([plot_id])[0]
    left = capacities.set_index("node")
    facts = plots.iloc[0]
    demand = {
        "power": float(application.get("power_kw") or 0.0),
        "water": float(application.get("water_m3d") or 0.0),
    }
    params: dict[str, dict[str, Any]] = {
        "size": {
            "area": f"{float(plot.get('area_ha') or 0):.2f}",
            "low": f"{float(application['min_ha']):g}",
            "high": f"{float(application['max_ha']):g}",
        },
        "sector": {
            "allowed": ", ".join(sorted(parse_sectors(plot.get("sectors")) or ["*"])),
            "sector": application.get("sector"),
        },
        "rail": {},
        "hazard": {"allowed": facts["hazard_ok"], "hazard": application.get("hazard")},
        "power": {"demand": _amount(demand["power"])},
        "water": {"demand": _amount(demand["water"])},
        "power_headroom": {
            "node": facts["node"],
            "demand": _amount(demand["power"]),
            "left": _amount(left["power_kw"].get(facts["node"], 0.0)),
        },
        "water_headroom": {
            "node": facts["water_node"],
            "demand": _amount(demand["water"]),
            "left": _amount(left["water_m3d"].get(facts["water_node"], 0.0)),
        },
    }
    breaches = []
    for rule in RULES:
        utility = rule.removesuffix("_headroom")
        if passed[rule] or (rule != utility and not passed[utility]):
            continue
        quoted = (utility, record[utility]) if rule in ("rail", "power", "water") else None
        breaches.append(Breach(rule, _TEMPLATES[rule], {"plot": plot_id, **params[rule]}, quoted))
    return breaches


def demand_fields(application: Mapping[str, Any]) -> dict[str, Any]:
    """The plot fields an accepted application sets: its demand and identity.

    ``resident`` is the company, or the investor's user name when no company is given.
    Releasing a plot sets every one of these keys back to None.
    """
    out = {plot_field: application.get(name) for plot_field, name in _DEMAND.items()}
    out["resident"] = application.get("company") or application.get("investor")
    return out
