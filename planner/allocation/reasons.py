"""Why an application was left out, in words, found by checking the rules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from geo.i18n import N_
from planner.allocation.greedy import State
from planner.allocation.inputs import Instance
from planner.allocation.pairs import STATIC_STAGES, Pairs, fits_headroom

Translate = Callable[[str], str]


class Reason(str):
    """A reason in English (the string itself) that keeps its message template and values,
    so an edge can say it in the reader's language (:meth:`say`).

    Values may be reasons themselves (a phrase inside a sentence); numbers are already
    formatted.
    """

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, **params: Any) -> Reason:
        text = template.format(**params)
        obj = super().__new__(cls, text)
        obj.template, obj.params = template, params
        return obj

    def say(self, translate: Translate) -> str:
        """The reason translated: each template first, its values after."""
        return translate(self.template).format(
            **{k: v.say(translate) if isinstance(v, Reason) else v for k, v in self.params.items()}
        )

    def to_json(self) -> dict[str, Any]:
        """``{"template", "params"}``, nested reasons included, for storing untranslated."""
        return {
            "template": self.template,
            "params": {
                k: v.to_json() if isinstance(v, Reason) else v for k, v in self.params.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reason:
        """The reason :meth:`to_json` wrote."""
        return cls(
            data["template"],
            **{
                k: cls.from_json(v) if isinstance(v, Mapping) else v
                for k, v in (data.get("params") or {}).items()
            },
        )


#: What each rule that thins out the candidate plots adds to "no plot of … ha".
_QUALIFIERS = {
    "sector": N_(" zoned for sector {sector}"),
    "rail": N_(" with rail access"),
    "hazard": N_(" allowing hazard class {hazard}"),
    "power": N_(" with a power connection"),
    "water": N_(" with a water connection"),
}
#: The shortage sentences: one asset or several, power or water.
_SHORT = {
    ("power", 1): N_("substation {names} {word} {left} kW < {need} kW needed"),
    ("power", 2): N_("substations {names} {word} at most {left} kW < {need} kW needed"),
    ("water", 1): N_("water node {names} {word} {left} m³/d < {need} m³/d needed"),
    ("water", 2): N_("water nodes {names} {word} at most {left} m³/d < {need} m³/d needed"),
}
#: Words for the headroom an application is measured against.
HEADROOM, HEADROOM_LEFT = N_("headroom"), N_("headroom left")


def _amount(value: float) -> str:
    value = max(value, 0.0)
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0").rstrip(".")


def _size_range(instance: Instance, app: int) -> Reason:
    low, high = instance.min_ha[app], instance.max_ha[app]
    if low == high:
        return Reason(N_("{area} ha"), area=_amount(low))
    return Reason(N_("{low}–{high} ha"), low=_amount(low), high=_amount(high))


def _qualifier(instance: Instance, stage: str, app: int) -> Reason:
    return Reason(
        _QUALIFIERS[stage],
        **{
            "sector": {"sector": instance.sector[app]},
            "hazard": {"hazard": _amount(instance.hazard[app])},
        }.get(stage, {}),
    )


def static_reason(instance: Instance, pairs: Pairs, app: int) -> Reason | None:
    """Name the rules that leave no plot at all, in the order a planner would check them."""
    qualifiers: list[Reason] = []
    previous = None
    for stage in STATIC_STAGES:
        survivors = pairs.stage_counts[stage][app]
        if previous is not None and survivors < previous:
            qualifiers.append(_qualifier(instance, stage, app))
        if survivors == 0:
            return _no_plot(_size_range(instance, app), qualifiers)
        previous = survivors
    if pairs.stage_counts["headroom"][app] == 0:
        low, high = np.searchsorted(pairs.connected_app, [app, app + 1])
        return headroom_reason(
            instance,
            app,
            pairs.connected_plot[low:high],
            (instance.power_cap, instance.water_cap),
            HEADROOM,
        )
    return None


def _no_plot(size: Reason, qualifiers: list[Reason]) -> Reason:
    # The phrases joined by a template of placeholders only, which no catalogue translates.
    joined = Reason(
        "".join(f"{{q{i}}}" for i in range(len(qualifiers))),
        **{f"q{i}": q for i, q in enumerate(qualifiers)},
    )
    return Reason(N_("no plot of {size}{qualifiers}"), size=size, qualifiers=joined)


def headroom_reason(
    instance: Instance, app: int, plots: np.ndarray, left: tuple[np.ndarray, np.ndarray], word: str
) -> Reason:
    """Why no plot among ``plots`` fits ``app`` within the headroom ``left`` (power, water);
    ``word`` is :data:`HEADROOM` or :data:`HEADROOM_LEFT`."""
    power_left, water_left = left
    power_short = ~fits_headroom(
        np.full(len(plots), instance.power[app]), power_left, instance.power_node[plots]
    )
    water_short = ~fits_headroom(
        np.full(len(plots), instance.water[app]), water_left, instance.water_node[plots]
    )
    if power_short.all():
        return _shortage(
            instance, "power", instance.power_node[plots], power_left, instance.power[app], word
        )
    if water_short.all():
        return _shortage(
            instance, "water", instance.water_node[plots], water_left, instance.water[app], word
        )
    return Reason(N_("no fitting plot has both power and water {word}"), word=Reason(word))


def _shortage(
    instance: Instance, utility: str, nodes: np.ndarray, left: np.ndarray, need: float, word: str
) -> Reason:
    nodes = np.unique(nodes)
    nodes = nodes[np.argsort(-left[nodes], kind="stable")]
    names: str | Reason = ", ".join(str(name) for name in instance.node_names[nodes[:3]])
    if len(nodes) > 3:
        names = Reason(N_("{names} and {n} more"), names=names, n=len(nodes) - 3)
    return Reason(
        _SHORT[utility, min(len(nodes), 2)],
        names=names,
        word=Reason(word),
        left=_amount(left[nodes[0]]),
        need=_amount(need),
    )


def _competition_reason(
    instance: Instance, pairs: Pairs, state: State, app: int, blame: str
) -> Reason:
    """Why a statically placeable application is out: plots taken, headroom used up, or no value."""
    plots = pairs.plot[pairs.start[app] : pairs.end[app]]
    free = plots[state.holder[plots] < 0]
    if not len(free):
        return Reason(N_("every fitting plot went to {blame}"), blame=Reason(blame))
    fitting = fits_headroom(
        np.full(len(free), instance.power[app]), state.power_left, instance.power_node[free]
    )
    fitting &= fits_headroom(
        np.full(len(free), instance.water[app]), state.water_left, instance.water_node[free]
    )
    if not fitting.any():
        return headroom_reason(
            instance, app, free, (state.power_left, state.water_left), HEADROOM_LEFT
        )
    return Reason(
        N_("plot {plot} still fits, but placing the application adds no value to the objective"),
        plot=str(instance.plot_ids[free[fitting][0]]),
    )


def unallocated_reasons(
    instance: Instance, pairs: Pairs, state: State, blame: str
) -> list[Reason | None]:
    """Why each application is out (None for those placed); ``blame`` names who took the
    plots (a message id: "an earlier application", "a higher-value application")."""
    reasons: list[Reason | None] = [None] * len(instance.app_ids)
    for app in np.flatnonzero(state.chosen < 0):
        reasons[app] = static_reason(instance, pairs, int(app)) or _competition_reason(
            instance, pairs, state, int(app), blame
        )
    return reasons
