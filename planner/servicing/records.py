"""Servicing records: the evaluated answers of selected sites as JSON-shaped dicts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.servicing.evaluate import Answer, Evaluation, evaluate, take
from planner.servicing.explain import line
from planner.servicing.readiness import (
    add_fits,
    needed,
    plot_readiness,
    readiness,
    satisfied,
)
from planner.servicing.rules import CACHED_REASONS, MAIN_LAYERS, UTILITIES, Scenario, col
from planner.servicing.sites import Sites

if TYPE_CHECKING:
    from planner.servicing.model import ServicingModel

#: ``(power, water, status)`` of each site: its demand and plot status.
Demand = tuple[np.ndarray, np.ndarray, np.ndarray]


def records(
    m: ServicingModel,
    sites: Sites | None,
    site_ids: Sequence[Any] | np.ndarray,
    scen: Scenario,
    demand: Demand,
    rail_need: np.ndarray,
    *,
    extra: Sequence[Mapping[str, Any]] | None = None,
    select: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """JSON-shaped records of the selected sites, built column by column.

    ``sites`` None means the model's plots: their cached evaluations and readiness
    are cut to the selection first, so one plot's record costs little at any size.
    """
    sel = np.arange(len(rail_need)) if select is None else np.asarray(select, dtype=np.intp)
    recorded = m.scenario(None, None)
    base = m.scenario(None, scen.what_if)
    # Gathered, not converted: the model's per-plot arrays may be patched (a few rows read).
    cut = {name: np.asarray(a[sel]) for name, a in zip(("power", "water", "status"), demand)}

    def fitted(when: Scenario) -> Evaluation:
        if sites is None:
            ev = {u: take(a, sel) for u, a in m.plot_eval(when).items()}
        else:
            ev = {u: take(a, sel) for u, a in evaluate(m, sites, when).items()}
        add_fits(m, ev, when, cut["power"], cut["water"], cut["status"])
        return ev

    ev = fitted(scen)
    ev_base = ev if base.key == scen.key else fitted(base)
    ev_rec = ev_base if recorded.key == base.key else fitted(recorded)
    if sites is None:
        # The selection's rows only (a popup after a write need not answer every plot).
        ready = plot_readiness(m, scen.what_if, None if select is None else sel)
    else:  # drawn sites are answered whole (select is None)
        ready = readiness(m, sites, scen, demand, rail_need, ev_base)
    ids_ = [site_ids[i] for i in sel.tolist()]
    more = None if extra is None else [extra[i] for i in sel.tolist()]
    return _build(m, ev, ev_rec, ready, ids_, scen, rail_need[sel], more)


def _build(
    m: ServicingModel,
    ev: Evaluation,
    ev_rec: Evaluation,
    ready: np.ndarray,
    ids_: list[Any],
    scen: Scenario,
    rail_need: np.ndarray,
    extra: list[Mapping[str, Any]] | None,
) -> list[dict[str, Any]]:
    n = len(ids_)
    need = needed(m, rail_need)
    sat = satisfied(ev)
    today_iso = m.today.isoformat()
    assets: dict[int, dict[str, Any]] = {}

    def asset(row: int) -> dict[str, Any]:
        hit = assets.get(row)
        if hit is None:
            hit = assets[row] = asset_record(m, row, scen)
        return hit

    def ids(values: np.ndarray, pos: np.ndarray) -> list[Any]:
        out = np.full(len(pos), None, dtype=object)
        ok = pos >= 0
        out[ok] = np.asarray(values, dtype=object)[pos[ok]]
        return out.tolist()

    cols: dict[str, dict[str, list[Any]]] = {}
    r = ev["road"]
    road_row = np.full(n, -1, np.intp)
    hit = r["edge"] >= 0
    if hit.any():
        road_row[hit] = [m._asset_pos[("roads", a)] for a in r["road_id"][hit]]
    gate_row = np.where(r["gate"] >= 0, m._asset_slice["gates"].start + r["gate"], -1)
    cols["road"] = {
        "fronts": r["fronts"].tolist(),
        "gate": ids(m._layer_ids("gates"), r["gate"]),
        "distance_m": col(r["distance"], 1),
        "minutes": col(r["minutes"], 2),
        "road": r["road_id"].tolist(),
        "gap_m": col(r["gap"], 1),
        "code": r["code"].tolist(),
    }
    via = {"road": [road_row, gate_row]}
    e = ev["rail"]
    st_row = np.where(
        e["ok"] & (e["via_kind"] == "station"),
        m._asset_slice["rail_stations"].start + e["via_pos"],
        -1,
    )
    sd = np.flatnonzero(e["ok"] & (e["via_kind"] == "siding"))
    sd_row = np.full(n, -1, np.intp)
    if len(sd):
        sd_row[sd] = [m._asset_pos[("rail_lines", a)] for a in e["via"][sd]]
    cols["rail"] = {
        "available": e["ok"].tolist(),
        "distance_m": col(e["distance"], 1),
        "via": e["via"].tolist(),
        "via_kind": e["via_kind"].tolist(),
        "needed": rail_need.tolist(),
        "reach_m": [m.rail_reach_m] * n,
        "code": e["code"].tolist(),
    }
    via["rail"] = [np.maximum(st_row, sd_row)]
    p = ev["power"]
    cols["power"] = {
        "available": p["ok"].tolist(),
        "substation": ids(m._layer_ids("substations"), p["sub"]),
        "distance_m": col(p["distance"], 1),
        "headroom_kw": col(p["headroom"], 1),
        "demand_kw": col(p["demand"], 1),
        "fits": p["fits"].tolist(),
        "in_load": p["in_load"].tolist(),
        "code": p["code"].tolist(),
        "bypassed": [[asset(b) for b in p["bypassed"].get(i, ())] for i in range(n)],
    }
    via["power"] = [np.where(p["ok"], m._asset_slice["substations"].start + p["sub"], -1)]
    for u in ("water", "storm", "gas"):
        w = ev[u]
        c = {
            "available": w["ok"].tolist(),
            "main": ids(m._layer_ids(MAIN_LAYERS[u]), w["main"]),
            "distance_m": col(w["distance"], 1),
            "reach_m": [m.connect_m[u]] * n,
            "code": w["code"].tolist(),
        }
        if u == "water":
            c.update(
                {
                    "headroom_m3d": col(w["headroom"], 1),
                    "demand_m3d": col(w["demand"], 1),
                    "fits": w["fits"].tolist(),
                    "in_load": w["in_load"].tolist(),
                }
            )
        cols[u] = c
        via[u] = [np.where(w["ok"], m._asset_slice[MAIN_LAYERS[u]].start + w["main"], -1)]
    for u in UTILITIES:
        cols[u].update(finish_cols(m, ev[u], ev_rec[u], via[u], scen, asset))
        cols[u]["needed"] = need[u].tolist()
    unmet = np.zeros(n, np.int64)
    for k, u in enumerate(UTILITIES):
        unmet |= (need[u] & ~sat[u]).astype(np.int64) << k
    waits: dict[int, tuple[str, ...]] = {}
    reasons: dict[tuple[Any, ...], str] = {}
    out = []
    names = {u: list(cols[u]) for u in UTILITIES}
    rows = {u: list(zip(*cols[u].values())) for u in UTILITIES}
    for i in range(n):
        rec: dict[str, Any] = {"plot_id": ids_[i]}
        if extra is not None:
            rec.update(extra[i])
        for k, u in enumerate(UTILITIES):
            item = dict(zip(names[u], rows[u][i]))
            if sat[u][i]:
                item["reason"] = None
            else:
                key = (
                    u,
                    item["code"],
                    tuple(a["asset_id"] for a in item["blocked_by"]),
                    item["code"] in CACHED_REASONS,
                )
                if key[-1] and key in reasons:
                    item["reason"] = reasons[key]
                else:
                    item["reason"] = reasons[key] = line(u, item, None, prefix=False)
            rec[u] = item
        bits = int(unmet[i])
        waiting = waits.get(bits)
        if waiting is None:
            waiting = waits[bits] = tuple(u for k, u in enumerate(UTILITIES) if bits >> k & 1)
        rec["waits_for"] = list(waiting)
        rd = ready[i]
        rec["ready"] = rd
        rec["ready_overdue"] = bool(rd not in ("now", "unknown") and rd < today_iso)
        out.append(rec)
    return out


def finish_cols(
    m: ServicingModel,
    e: Answer,
    rec: Answer,
    via_rows: list[np.ndarray],
    scen: Scenario,
    asset: Callable[[int], dict[str, Any]],
) -> dict[str, list[Any]]:
    """blocked_by, projected, relies_on, overdue and due of one utility, by column.

    ``projected``: the answer relies on an asset counted operational although
    not recorded so — the asset it uses, or one that blocked it as recorded.
    ``overdue``: an involved asset is overdue. ``due``: the latest due date of
    the blockers (None when one has none), or of the projected assets relied on.
    """
    ok = e["ok"]
    n = len(ok)
    eb = e["blockers"]
    blocked_by = [[asset(b) for b in eb[i]] if i in eb else [] for i in range(n)]
    projected = [False] * n
    relies: list[list[dict[str, Any]] | None] = [None] * n
    overdue = [False] * n
    due: list[str | None] = [None] * n
    a_over, a_due = m._a["overdue"], m._a["due"]
    proj = scen.projected
    rely_rows: dict[int, list[int]] = {}
    if proj.any():
        hit = np.zeros(len(ok), bool)
        for v in via_rows:
            hit |= (v >= 0) & proj[np.maximum(v, 0)]
        hit |= ~rec["ok"]
        for i in np.flatnonzero(ok & hit).tolist():
            rows = [int(v[i]) for v in via_rows if v[i] >= 0 and proj[v[i]]]
            if not rec["ok"][i]:
                rows += [b for b in rec["blockers"].get(i, ()) if proj[b]]
            if rows:
                rely_rows[i] = list(dict.fromkeys(rows))
    for i in range(n):
        blk = eb.get(i, ())
        relied = rely_rows.get(i)
        if not blk and not relied:
            continue
        if relied:
            projected[i] = True
            relies[i] = [asset(b) for b in relied]
        involved = list(blk) + (relied or [])
        overdue[i] = any(a_over[b] for b in involved)
        dues = [a_due[b] for b in (blk if not ok[i] else (relied or []))]
        due[i] = None if (not dues or any(d is None for d in dues)) else max(dues)
    out: dict[str, list[Any]] = {
        "blocked_by": blocked_by,
        "projected": projected,
        "overdue": overdue,
        "due": due,
    }
    if rely_rows:
        out["relies_on"] = relies
    return out


def asset_record(m: ServicingModel, row: int, scen: Scenario) -> dict[str, Any]:
    """One asset as records name it, with its effective status in ``scen``."""
    a = m._a
    return {
        "layer": a["layer"][row],
        "asset_id": a["asset_id"][row],
        "name": a["name"][row],
        "status": str(scen.status[row]),
        "recorded": a["status"][row],
        "note": a["note"][row],
        "due": a["due"][row],
        "overdue": bool(a["overdue"][row]),
        "projected": bool(scen.projected[row]),
        "what_if": (a["layer"][row], a["asset_id"][row]) in scen.what_if,
    }
