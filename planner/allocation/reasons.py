"""Why an application was left out, in words, found by checking the rules."""

from __future__ import annotations

import numpy as np

from planner.allocation.greedy import State
from planner.allocation.inputs import Instance
from planner.allocation.pairs import STATIC_STAGES, Pairs, fits_headroom


def _amount(value: float) -> str:
    value = max(value, 0.0)
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0").rstrip(".")


def _size_range(instance: Instance, app: int) -> str:
    low, high = instance.min_ha[app], instance.max_ha[app]
    return f"{_amount(low)} ha" if low == high else f"{_amount(low)}–{_amount(high)} ha"


def _qualifier(instance: Instance, stage: str, app: int) -> str:
    return {
        "sector": f" zoned for sector {instance.sector[app]}",
        "rail": " with rail access",
        "hazard": f" allowing hazard class {_amount(instance.hazard[app])}",
        "power": " with a power connection",
        "water": " with a water connection",
    }[stage]


def static_reason(instance: Instance, pairs: Pairs, app: int) -> str | None:
    """Name the rules that leave no plot at all, in the order a planner would check them."""
    qualifiers: list[str] = []
    previous = None
    for stage in STATIC_STAGES:
        survivors = pairs.stage_counts[stage][app]
        if previous is not None and survivors < previous:
            qualifiers.append(_qualifier(instance, stage, app))
        if survivors == 0:
            return f"no plot of {_size_range(instance, app)}" + "".join(qualifiers)
        previous = survivors
    if pairs.stage_counts["headroom"][app] == 0:
        low, high = np.searchsorted(pairs.connected_app, [app, app + 1])
        return headroom_reason(
            instance,
            app,
            pairs.connected_plot[low:high],
            (instance.power_cap, instance.water_cap),
            "headroom",
        )
    return None


def headroom_reason(
    instance: Instance, app: int, plots: np.ndarray, left: tuple[np.ndarray, np.ndarray], word: str
) -> str:
    power_left, water_left = left
    power_short = ~fits_headroom(
        np.full(len(plots), instance.power[app]), power_left, instance.power_node[plots]
    )
    water_short = ~fits_headroom(
        np.full(len(plots), instance.water[app]), water_left, instance.water_node[plots]
    )
    if power_short.all():
        return _shortage(
            instance,
            "substation",
            instance.power_node[plots],
            power_left,
            f"{word} {{}} kW < {_amount(instance.power[app])} kW needed",
        )
    if water_short.all():
        return _shortage(
            instance,
            "water node",
            instance.water_node[plots],
            water_left,
            f"{word} {{}} m³/d < {_amount(instance.water[app])} m³/d needed",
        )
    return f"no fitting plot has both power and water {word}"


def _shortage(
    instance: Instance, kind: str, nodes: np.ndarray, left: np.ndarray, template: str
) -> str:
    nodes = np.unique(nodes)
    nodes = nodes[np.argsort(-left[nodes], kind="stable")]
    best = _amount(left[nodes[0]])
    if len(nodes) == 1:
        return f"{kind} {instance.node_names[nodes[0]]} " + template.format(best)
    names = ", ".join(str(name) for name in instance.node_names[nodes[:3]]) + (
        f" and {len(nodes) - 3} more" if len(nodes) > 3 else ""
    )
    return f"{kind}s {names} " + template.format(f"at most {best}")


def _competition_reason(
    instance: Instance, pairs: Pairs, state: State, app: int, blame: str
) -> str:
    """Why a statically placeable application is out: plots taken, headroom used up, or no value."""
    plots = pairs.plot[pairs.start[app] : pairs.end[app]]
    free = plots[state.holder[plots] < 0]
    if not len(free):
        return f"every fitting plot went to {blame}"
    fitting = fits_headroom(
        np.full(len(free), instance.power[app]), state.power_left, instance.power_node[free]
    )
    fitting &= fits_headroom(
        np.full(len(free), instance.water[app]), state.water_left, instance.water_node[free]
    )
    if not fitting.any():
        return headroom_reason(
            instance, app, free, (state.power_left, state.water_left), "headroom left"
        )
    return f"plot {instance.plot_ids[free[fitting][0]]} still fits, but placing the application adds no value to the objective"


def unallocated_reasons(
    instance: Instance, pairs: Pairs, state: State, blame: str
) -> list[str | None]:
    reasons: list[str | None] = [None] * len(instance.app_ids)
    for app in np.flatnonzero(state.chosen < 0):
        reasons[app] = static_reason(instance, pairs, int(app)) or _competition_reason(
            instance, pairs, state, int(app), blame
        )
    return reasons
