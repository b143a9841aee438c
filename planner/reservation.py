"""Reservation rules: whether an application may take a plot now, each broken rule in words.

Pure functions: the rules are the allocator's (:func:`planner.allocation.pair_rules` over
the tables of :mod:`planner.allocation_tables`), checked for one plot and one application
against the servicing model's headroom as recorded today (assets not operational give no
capacity; reserved and allocated plots have consumed theirs). Messages are ``N_`` templates
formatted after translation, like :mod:`planner.servicing`'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from geo.i18n import N_
from geo.layers import get_layer, parse_sectors
from planner.allocation import pair_rules
from planner.allocation_tables import application_table, capacity_table, plot_table
from planner.servicing import ServicingModel, describe

__all__ = ["Breach", "RULES", "check", "check_many", "demand_fields"]

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
    "start_yr": "start_yr",
    "floor_m2": "floor_m2",
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
    return check_many([(plot, application)], model)[0]


def check_many(
    pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
    model: ServicingModel,
    *,
    shared: bool = True,
) -> list[list[Breach]]:
    """The rules each (plot, application) pair breaks when all are accepted together, in order.

    Each pair is checked as :func:`check` does, except that headroom is shared: a pair
    sees the power and water headroom left after the pairs before it that break no rule,
    so a selection cannot spend one substation's last kilowatts twice.

    Parameters
    ----------
    pairs : sequence of (plot, application)
        Available plots (see :func:`check`) and their applications; distinct plots when
        ``shared``.
    model : ServicingModel
    shared : bool
        False checks each pair on its own, against the headroom before any of them
        (what :func:`check` says of each).

    Returns
    -------
    list of list of Breach
        One list per pair, in order (empty when the pair may be accepted).

    Raises
    ------
    ValueError
        When a plot is not available, not in the model, or listed twice.
    """
    if not pairs:
        return []
    rows = [dict(row) for row, _ in pairs]
    for row in rows:
        if row.get("status") != "available":
            raise ValueError(f"plot {row.get('plot_id')} is {row.get('status')}, not available")
    ids = [str(plot["plot_id"]) for plot in rows]
    if shared and len(set(ids)) < len(ids):
        raise ValueError("a plot is listed twice: " + ", ".join(sorted(_repeated(ids))))
    plots = plot_table({"plots": pd.DataFrame(rows)}, model)
    apps = application_table(
        pd.concat([_application_row(app) for _, app in pairs], ignore_index=True)
    )
    capacities = capacity_table(model)
    passed = _diagonal_rules(plots, apps, capacities)
    records = {str(r["plot_id"]): r for r in model.answer(ids)}
    left = _Headroom(capacities)
    out = []
    for i, (plot, application) in enumerate(pairs):
        facts, demand = plots.iloc[i], _demand(application)
        if shared and left.drawn(
            facts
        ):  # earlier pairs of the selection used this node: ask the rules again
            passed[i] = _diagonal_rules(plots.iloc[[i]], apps.iloc[[i]], left.table())[0]
        if shared and all(passed[i].values()):
            left.take(facts, demand)
        out.append(_breaches(plot, application, facts, passed[i], records[ids[i]], left))
    return out


#: Pairs checked at once by :func:`_diagonal_rules` (a block costs block² rule rows).
_BLOCK = 64


def _diagonal_rules(
    plots: pd.DataFrame, apps: pd.DataFrame, capacities: pd.DataFrame
) -> list[dict[str, bool]]:
    """Which rules pair i (plot i, application i) passes, for each i, through the allocator's rules."""
    out: list[dict[str, bool]] = []
    for start in range(0, len(plots), _BLOCK):
        block = slice(start, start + _BLOCK)
        # distinct ids inside a block: the allocator refuses repeated ids
        n = len(apps.iloc[block])
        keys = [f"#{k}" for k in range(n)]
        rules = pair_rules(
            plots.iloc[block].assign(plot_id=keys), apps.iloc[block].assign(app_id=keys), capacities
        )
        diagonal = rules.iloc[[k * n + k for k in range(n)]]
        out.extend(
            {str(k): bool(v) for k, v in record.items()}
            for record in diagonal[list(RULES)].to_dict("records")
        )
    return out


class _Headroom:
    """Headroom left per node while a selection is checked in order."""

    def __init__(self, capacities: pd.DataFrame):
        self.power = capacities.set_index("node")["power_kw"].astype(float).to_dict()
        self.water = capacities.set_index("node")["water_m3d"].astype(float).to_dict()
        self._drawn: set[Any] = set()

    def drawn(self, facts: pd.Series) -> bool:
        return facts["node"] in self._drawn or facts["water_node"] in self._drawn

    def take(self, facts: pd.Series, demand: Mapping[str, float]) -> None:
        if demand["power"] and facts["node"] is not None:
            self.power[facts["node"]] = self.power.get(facts["node"], 0.0) - demand["power"]
            self._drawn.add(facts["node"])
        if demand["water"] and facts["water_node"] is not None:
            node = facts["water_node"]
            self.water[node] = self.water.get(node, 0.0) - demand["water"]
            self._drawn.add(node)

    def table(self) -> pd.DataFrame:
        nodes = sorted(set(self.power) | set(self.water), key=str)
        return pd.DataFrame(
            {
                "node": nodes,
                "power_kw": [max(self.power.get(n, 0.0), 0.0) for n in nodes],
                "water_m3d": [max(self.water.get(n, 0.0), 0.0) for n in nodes],
            }
        )


def _repeated(ids: list[str]) -> list[str]:
    return [i for i, n in Counter(ids).items() if n > 1]


def _demand(application: Mapping[str, Any]) -> dict[str, float]:
    return {
        "power": float(application.get("power_kw") or 0.0),
        "water": float(application.get("water_m3d") or 0.0),
    }


def _breaches(
    plot: Mapping[str, Any],
    application: Mapping[str, Any],
    facts: pd.Series,
    passed: Mapping[str, bool],
    record: Mapping[str, Any],
    left: _Headroom,
) -> list[Breach]:
    """The broken rules of one pair in words, headroom as ``left`` has it now."""
    plot_id = str(plot["plot_id"])
    demand = _demand(application)
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
            "left": _amount(max(left.power.get(facts["node"], 0.0), 0.0)),
        },
        "water_headroom": {
            "node": facts["water_node"],
            "demand": _amount(demand["water"]),
            "left": _amount(max(left.water.get(facts["water_node"], 0.0), 0.0)),
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
