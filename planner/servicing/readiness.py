"""Headroom, fit and readiness: what the evaluated answers mean for each site's demand."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from planner.servicing.evaluate import Evaluation, evaluate
from planner.servicing.patches import Lazy
from planner.servicing.rules import COUNTED_PLOT_STATUSES, USABLE, UTILITIES, Scenario
from planner.servicing.sites import Sites

if TYPE_CHECKING:
    from planner.servicing.model import ServicingModel

#: Per utility (power, water) and per substation / main: base, committed, headroom, ...
Headroom = dict[str, dict[str, np.ndarray]]


def _capacity(
    m: ServicingModel,
    layer: str,
    scen: Scenario,
    served_by: np.ndarray,
    ok: np.ndarray,
    demand: np.ndarray,
) -> dict[str, np.ndarray]:
    frame = m.layers[layer]
    n = len(frame)
    power = layer == "substations"
    cap = pd.to_numeric(frame["cap_mva" if power else "cap_m3d"], errors="coerce")
    load = pd.to_numeric(frame["load_mva" if power else "load_m3d"], errors="coerce")
    cap_a, load_a = cap.to_numpy(float), load.to_numpy(float)
    usable = m.usable(scen, layer)
    if power:
        base = np.where(usable, (cap_a - load_a) * 1000.0 * m.power_factor, 0.0)
    else:
        base = np.where(usable, cap_a - np.nan_to_num(load_a), 0.0)
    demand = np.nan_to_num(demand)
    committed = np.bincount(served_by[ok], weights=demand[ok], minlength=n) if n else np.zeros(0)
    count = np.bincount(served_by[ok], minlength=n) if n else np.zeros(0, int)
    return {
        "base": base,
        "committed": committed,
        "headroom": base - committed,
        "usable": usable,
        "served": count,
        "cap": cap_a,
        "load": load_a,
    }


def headroom_arrays(m: ServicingModel, scen: Scenario) -> Headroom:
    """Headroom of every substation and water main after the reserved/allocated plots."""
    key = ("headroom", scen.ukey)
    hit: Any = m._derived.get(key)
    if isinstance(hit, Lazy):  # carried from the model before a plot edit
        return cast(Headroom, hit.get(m))
    if hit is not None:
        return cast(Headroom, hit)
    counted = m._plot_counted
    full = m.cached_plot_eval(scen)
    if full is not None:
        power = {k: full["power"][k][counted] for k in ("sub", "ok")}
        water = {k: full["water"][k][counted] for k in ("main", "ok")}
    else:  # only the plots whose demand is committed need answering
        ev = evaluate(m, m._counted_sites, scen, only=("power", "water"))
        power, water = ev["power"], ev["water"]
    out = {
        "power": _capacity(
            m, "substations", scen, power["sub"], power["ok"], m._plot_power[counted]
        ),
        "water": _capacity(
            m, "water_mains", scen, water["main"], water["ok"], m._plot_water[counted]
        ),
    }
    m._remember_derived(key, out)
    return out


def add_fits(
    m: ServicingModel,
    ev: Evaluation,
    scen: Scenario,
    power: np.ndarray,
    water: np.ndarray,
    status: np.ndarray,
) -> None:
    """Add headroom, demand and fit to the power and water answers (in place)."""
    head = headroom_arrays(m, scen)
    if status is m._plot_status:  # the model's plots: known already
        counted, occupied = m._plot_counted, m._plot_occupied
    else:
        counted = np.isin(status, COUNTED_PLOT_STATUSES)
        occupied = status == "occupied"
    for u, demand, idx in (("power", power, "sub"), ("water", water, "main")):
        e = ev[u] = dict(ev[u])
        h = head[u]["headroom"]
        pos = e[idx]
        hr = np.where(pos >= 0, h[np.maximum(pos, 0)] if len(h) else np.nan, np.nan)
        hr = np.where(e["ok"], hr, np.where(pos >= 0, 0.0, np.nan))
        own = np.where(counted & e["ok"], np.nan_to_num(demand), 0.0)
        fits = np.full(len(pos), None, dtype=object)
        known = e["ok"] & np.isfinite(demand) & np.isfinite(hr)
        fits[known] = demand[known] <= hr[known] + own[known] + 1e-9
        fits[e["ok"] & occupied] = True
        fits[~e["ok"]] = False
        e["headroom"], e["demand"], e["fits"] = hr, demand, fits
        e["in_load"] = occupied & e["ok"]
        e["code"] = np.where(e["ok"] & (fits == False), "short", e["code"])  # noqa: E712


def satisfied(ev: Evaluation) -> dict[str, np.ndarray]:
    """Per utility, whether each site has it (a fitting demand, or an unknown one)."""
    sat = {}
    for u in UTILITIES:
        e = ev[u]
        s = e["ok"].copy()
        if "fits" in e:
            s &= e["fits"] != False  # noqa: E712  (None: unknown demand does not block)
        sat[u] = s
    return sat


def needed(m: ServicingModel, rail_need: np.ndarray) -> dict[str, np.ndarray]:
    """Per utility, whether each site needs it to be ready."""
    n = len(rail_need)
    need = {u: np.full(n, u in m.required) for u in UTILITIES}
    need["rail"] = need["rail"] | rail_need
    return need


def met(ev: Evaluation, need: dict[str, np.ndarray]) -> np.ndarray:
    """Whether each site has everything it needs."""
    sat = satisfied(ev)
    return np.asarray(np.logical_and.reduce([sat[u] | ~need[u] for u in UTILITIES]), dtype=bool)


def _pending(m: ServicingModel, base: Scenario) -> list[str]:
    """Due dates of the assets not usable in ``base``, in order."""
    return sorted({d for d, s in zip(m._a["due"], base.status) if d is not None and s != USABLE})


def readiness(
    m: ServicingModel,
    sites: Sites,
    scen: Scenario,
    demand: tuple[np.ndarray, np.ndarray, np.ndarray],
    rail_need: np.ndarray,
    ev_base: Evaluation,
) -> np.ndarray:
    """Readiness of drawn sites: 'now', the first due date at which all needs are met,
    or 'unknown'.

    Swept from the recorded statuses (with the what-if): each due date of a
    pending asset in turn counts every asset due by then as operational;
    only the sites still waiting are evaluated again.  ``demand`` is
    ``(power, water, status)`` per site.
    """
    power, water, status = demand
    need = needed(m, rail_need)
    base = m.scenario(None, scen.what_if)
    done = met(ev_base, need)
    ready = np.where(done, "now", "unknown").astype(object)
    todo = np.flatnonzero(~done)
    pending = _pending(m, base)

    def met_at(when: Scenario, todo: np.ndarray) -> np.ndarray:
        sub = sites.subset(todo) if len(todo) < sites.n else sites
        ev = evaluate(m, sub, when)
        add_fits(m, ev, when, power[todo], water[todo], status[todo])
        return met(ev, {u: v[todo] for u, v in need.items()})

    if pending and len(todo):
        # Every dated asset done: a site not serviced even then stays 'unknown'
        # (assumes more operational assets never make a site worse off).
        todo = todo[met_at(m.scenario(dt.date.fromisoformat(pending[-1]), scen.what_if), todo)]
    for date in pending:
        if len(todo) == 0:
            break
        scen_d = m.scenario(dt.date.fromisoformat(date), scen.what_if)
        if scen_d.key == base.key:
            continue
        ok = met_at(scen_d, todo)
        ready[todo[ok]] = date
        todo = todo[~ok]
    return ready


#: The per-site columns of an evaluation that fits, readiness and facts read.
_FACT_KEYS = ("ok", "distance", "code", "sub", "main")


def plot_fitted(m: ServicingModel, scen: Scenario, pos: np.ndarray | None = None) -> Evaluation:
    """Every plot's evaluation under ``scen`` with headroom and fit added (a copy); with
    ``pos``, only those plots' rows, and only the columns facts and readiness read."""
    full = m.plot_eval(scen)
    if pos is None:
        ev = dict(full)
        add_fits(m, ev, scen, m._plot_power, m._plot_water, m._plot_status)
        return ev
    ev = {u: {k: a[k][pos] for k in _FACT_KEYS if k in a} for u, a in full.items()}
    add_fits(m, ev, scen, m._plot_power[pos], m._plot_water[pos], m._plot_status[pos])
    return ev


def plot_readiness(
    m: ServicingModel, what_if: dict[tuple[str, str], str], pos: np.ndarray | None = None
) -> np.ndarray:
    """:func:`readiness` of every plot (or of the plots at ``pos``), from the plots'
    cached evaluations; every plot's is kept per what-if until the model changes, a few
    plots' are answered from their rows alone."""
    base = m.scenario(None, what_if)
    key = ("ready", base.key)
    hit: np.ndarray | None = m._derived.get(key)
    if hit is not None:
        return hit if pos is None else hit[pos]
    need = needed(m, m._plot_rail_need if pos is None else m._plot_rail_need[pos])
    done = met(plot_fitted(m, base, pos), need)
    ready = np.where(done, "now", "unknown").astype(object)
    todo = ~done
    pending = _pending(m, base)
    if pending and todo.any():
        final = m.scenario(dt.date.fromisoformat(pending[-1]), what_if)
        todo &= met(plot_fitted(m, final, pos), need)
    for date in pending:
        if not todo.any():
            break
        scen_d = m.scenario(dt.date.fromisoformat(date), what_if)
        if scen_d.key == base.key:
            continue
        ok = todo & met(plot_fitted(m, scen_d, pos), need)
        ready[ok] = date
        todo &= ~ok
    if pos is None:
        m._remember_derived(key, ready)
    return ready


def waits_for(ev: Evaluation, need: dict[str, np.ndarray]) -> np.ndarray:
    """Per site, the needed utilities it does not have (in :data:`UTILITIES` order), as an
    object array of lists (sites waiting for the same share one list: read-only)."""
    sat = satisfied(ev)
    bits = np.zeros(len(ev["road"]["ok"]), np.int64)
    for k, u in enumerate(UTILITIES):
        bits |= (need[u] & ~sat[u]).astype(np.int64) << k
    kinds, which = np.unique(bits, return_inverse=True)
    lists = np.empty(len(kinds), dtype=object)
    for i, b in enumerate(kinds.tolist()):
        lists[i] = [u for k, u in enumerate(UTILITIES) if b >> k & 1]
    return np.asarray(lists[which.reshape(-1)])


def capacity_rows(m: ServicingModel, scen: Scenario) -> list[dict[str, Any]]:
    """Rows of :meth:`ServicingModel.headroom` (see there)."""
    from geo.i18n import N_
    from planner.servicing.explain import asset_phrase
    from planner.servicing.records import asset_record
    from planner.servicing.rules import clean_text

    head = headroom_arrays(m, scen)
    rows = []
    for u, layer, unit in (("power", "substations", "kW"), ("water", "water_mains", "m3/day")):
        h = head[u]
        start = m._asset_slice[layer].start
        for k in range(len(h["base"])):
            row = start + k
            a = m.assets.iloc[row]
            status = scen.status[row]
            reason = None
            if status != USABLE:
                reason = (
                    asset_phrase(asset_record(m, row, scen), None) + " — " + N_("no new capacity")
                )
            elif not np.isfinite(h["cap"][k]):
                reason = N_("capacity not recorded")
            rows.append(
                {
                    "layer": layer,
                    "asset_id": a["asset_id"],
                    "name": clean_text(a["name"]),
                    "status": status,
                    "recorded": a["status"],
                    "unit": unit,
                    "capacity": h["cap"][k],
                    "load": h["load"][k],
                    "base": h["base"][k],
                    "committed": h["committed"][k],
                    "headroom": h["headroom"][k],
                    "committed_plots": int(h["served"][k]),
                    "reason": reason,
                    "due": a["due"],
                    "projected": bool(scen.projected[row]),
                    "overdue": bool(a["overdue"]),
                }
            )
    return rows
