"""Evaluating sites (plots or drawn parcels) under a scenario: road, rail, power and mains.

Each ``eval_*`` answers every site at once (vectorised) and returns an :data:`Answer`:
arrays with one entry (or column) per site, ``blockers``/``bypassed`` keyed by site
position, and, for roads, the scenario's edge ``mask``.  An answer depends only on the
sites' geometry and on which assets are usable (:attr:`Scenario.usable`), so answers
are cached by that and patched row by row (:func:`take`, :func:`concat`, :func:`put`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from functools import partial
from itertools import compress
from typing import TYPE_CHECKING, Any

import numpy as np

from geo.network import DEFAULT_SPEED_KMH
from planner.servicing.patches import (
    FOLD_MIN,
    FOLD_SHARE,
    PatchedArray,
    PatchedMap,
    patched,
    patched_map,
    swap_removed,
    swap_removed_map,
)
from planner.servicing.rules import MAIN_LAYERS, UTILITIES, Scenario, first
from planner.servicing.sites import Sites

if TYPE_CHECKING:
    from planner.servicing.model import ServicingModel

#: One utility's answer for a set of sites (see the module docstring).
Answer = dict[str, Any]
#: Answers by utility.
Evaluation = dict[str, Answer]
#: Blockers of each station (by position) and each siding edge, as asset rows.
RailBlockers = tuple[dict[int, list[int]], dict[int, list[int]]]


def evaluate(
    m: ServicingModel, sites: Sites, scen: Scenario, only: Sequence[str] = UTILITIES
) -> Evaluation:
    """Every utility in ``only`` (road always) for ``sites`` under ``scen``."""
    road = eval_road(m, sites, scen)
    out: Evaluation = {"road": road}
    if "rail" in only:
        out["rail"] = eval_rail(m, sites, scen, road)
    if "power" in only:
        out["power"] = eval_power(m, sites, scen, road)
    for u in MAIN_LAYERS:
        if u in only:
            out[u] = eval_main(m, u, sites, scen)
    return out


def eval_road(m: ServicingModel, sites: Sites, scen: Scenario) -> Answer:
    """Road frontage, entry point, nearest usable gate by network distance, and blockers."""
    n = sites.n
    net = m.road
    mask = m.edge_mask(net, scen)
    left, right, gap = sites.road_pairs
    keep = mask[right] if len(right) else np.zeros(0, bool)
    l, r, g, t = left[keep], right[keep], gap[keep], sites.road_t[keep]
    f = first(l)
    edge = np.full(n, -1, np.intp)
    egap = np.full(n, np.inf)
    et = np.full(n, np.nan)
    edge[l[f]], egap[l[f]], et[l[f]] = r[f], g[f], t[f]
    missing = np.flatnonzero(edge < 0)
    if len(missing) and mask.any():
        e2, g2, t2 = net.locate(sites.geoms[missing], mask=mask)
        edge[missing], egap[missing], et[missing] = e2, g2, t2
    fronts = (edge >= 0) & (egap <= m.frontage_m)
    dist_src, min_src = m._road_costs(mask) if net.n_edges else (np.zeros((0, 0)), np.zeros((0, 0)))
    gate_ok = (m.usable(scen, "gates")) & (m._gate_row >= 0)
    G = len(m._gate_row)
    gd = np.full((G, n), np.inf)
    gm = np.full((G, n), np.inf)
    if G and net.n_edges and gate_ok.any():
        rows = m._gate_row[gate_ok]
        gd[gate_ok] = net.from_nodes(dist_src[rows], edge, et) + m._gate_gap[gate_ok, None]
        gm[gate_ok] = net.from_nodes(min_src[rows], edge, et, weight="minutes") + (
            m._gate_gap[gate_ok, None] / (DEFAULT_SPEED_KMH * 1000.0 / 60.0)
        )
    gate = np.argmin(gd, axis=0) if G else np.full(n, -1)
    dist = gd[gate, np.arange(n)] if G else np.full(n, np.inf)
    minutes = gm[gate, np.arange(n)] if G else np.full(n, np.inf)
    reach = np.isfinite(dist)
    gate = np.where(reach, gate, -1)
    code = np.where(
        edge < 0, "no_road", np.where(~reach, "no_gate", np.where(fronts, "ok", "not_fronting"))
    )
    ok = fronts & reach
    blockers: dict[int, tuple[int, ...]] = {}
    todo = np.flatnonzero(~reach)
    if len(todo) and net.n_edges and G:
        gates_any = m._gate_row >= 0
        src_nodes = m._gate_node[gates_any]
        e_any, _, t_any = net.locate(sites.geoms[todo])
        targets = np.where(t_any < 0.5, net.u[np.maximum(e_any, 0)], net.v[np.maximum(e_any, 0)])
        targets = np.where(e_any >= 0, targets, -1)
        found = net.blocking_edges(src_nodes, targets, mask)
        gate_by_node: dict[int, int] = {}
        for gi in np.flatnonzero(gates_any)[::-1].tolist():
            gate_by_node[int(m._gate_node[gi])] = gi
        for k, site in enumerate(todo.tolist()):
            path = found[k]
            if path is None:
                continue
            edges, origin = path
            keys: list[int] = []
            if e_any[k] >= 0 and not mask[e_any[k]]:
                keys.append(m._asset_pos[("roads", net.asset_id[e_any[k]])])
            keys += [m._asset_pos[("roads", a)] for a in dict.fromkeys(net.asset_id[edges])]
            hit = gate_by_node.get(origin)
            if hit is not None and not gate_ok[hit]:
                keys.append(m._asset_slice["gates"].start + hit)
            blockers[site] = tuple(dict.fromkeys(keys))
    if G and not gate_ok.any():
        closed = [m._asset_slice["gates"].start + i for i in range(G)]
        for site in todo.tolist():
            blockers[site] = tuple(dict.fromkeys([*blockers.get(site, ()), *closed]))
    road_id = (
        np.where(edge >= 0, net.asset_id[np.maximum(edge, 0)], np.full(n, None, dtype=object))
        if net.n_edges
        else np.full(n, None, dtype=object)
    )
    return {
        "ok": ok,
        "edge": edge,
        "gap": egap,
        "t": et,
        "fronts": fronts,
        "gate": gate,
        "distance": dist,
        "minutes": minutes,
        "code": code,
        "road_id": road_id,
        "blockers": blockers,
        "gate_dist": gd,
        "gate_min": gm,
        "mask": mask,
    }


def rail_mask(
    m: ServicingModel, scen: Scenario
) -> tuple[np.ndarray, np.ndarray, dict[int, list[int]]]:
    """Usable rail edges: operational lines, minus the non-main-line edges meeting a
    station that is not operational (a closed station stops traffic through its
    yard to the sidings, not on the main line).

    Returns ``(mask, line_ok, station_rows)``: the mask, the lines' own status
    test, and for every edge cut by a station the station asset rows.
    """
    net = m.rail
    if net.n_edges == 0:
        return np.zeros(0, bool), np.zeros(0, bool), {}
    line_ok = m.edge_mask(net, scen)
    st_ok = m.usable(scen, "rail_stations")
    base = m._asset_slice["rail_stations"].start
    cut: dict[int, list[int]] = {}
    not_main = net.kind != "mainline"
    for i, node in enumerate(m._st_rail.tolist()):
        if node < 0 or st_ok[i]:
            continue
        for e in np.flatnonzero(((net.u == node) | (net.v == node)) & not_main).tolist():
            cut.setdefault(e, []).append(base + i)
    mask = line_ok.copy()
    mask[list(cut)] = False
    return mask, line_ok, cut


def rail_edge_keys(
    m: ServicingModel, edges: Iterable[int], line_ok: np.ndarray, cut: Mapping[int, list[int]]
) -> list[int]:
    keys: list[int] = []
    for e in edges:
        if not line_ok[e]:
            keys.append(m._asset_pos[("rail_lines", m.rail.asset_id[e])])
        keys += cut.get(e, [])
    return list(dict.fromkeys(keys))


def rail_blockers(m: ServicingModel, scen: Scenario, rmask: np.ndarray) -> RailBlockers:
    """Blockers of each station and each siding edge (asset rows), per scenario."""
    key = ("railblk", scen.ukey)
    hit: RailBlockers | None = m._cache.get(key)
    if hit is not None:
        return hit
    net = m.rail
    st_ok = m.usable(scen, "rail_stations")
    st_base = m._asset_slice["rail_stations"].start
    st_block: dict[int, list[int]] = {}
    targets = (
        np.r_[m._st_rail, net.u[m._siding_edges]] if net.n_edges else np.full(len(m._st_rail), -1)
    )
    paths = (
        net.blocking_edges(m._main_nodes_all, targets, rmask)
        if net.n_edges and len(m._main_nodes_all)
        else [None] * len(targets)
    )
    _, line_ok, cut = rail_mask(m, scen)
    for i in range(len(m._st_rail)):
        keys = [] if st_ok[i] else [st_base + i]
        path = paths[i]
        if m._st_rail[i] < 0 or path is None:
            st_block[i] = keys + [-1]  # -1: not joined to a main line
            continue
        keys += rail_edge_keys(m, path[0].tolist(), line_ok, cut)
        st_block[i] = list(dict.fromkeys(keys))
    sd_block: dict[int, list[int]] = {}
    for j, e in enumerate(m._siding_edges.tolist()):
        p = paths[len(m._st_rail) + j]
        keys = rail_edge_keys(m, [e], line_ok, cut)
        if p is None:
            sd_block[e] = keys + [-1]
            continue
        keys += rail_edge_keys(m, p[0].tolist(), line_ok, cut)
        sd_block[e] = list(dict.fromkeys(keys))
    hit = (st_block, sd_block)
    m._remember(key, hit)
    return hit


def eval_rail(m: ServicingModel, sites: Sites, scen: Scenario, road: Answer) -> Answer:
    """Rail access: a usable station within reach by road or a fronted usable siding."""
    n = sites.n
    net = m.rail
    S = len(m._st_rail)
    rmask = rail_mask(m, scen)[0]
    if net.n_edges:
        comp = net.components(rmask)
        live_main = m._main_edges[rmask[m._main_edges]]
        labels = np.unique(comp[np.r_[net.u[live_main], net.v[live_main]]])
        joined_node = np.isin(comp, labels)
    else:
        joined_node = np.zeros(0, bool)
    st_ok = m.usable(scen, "rail_stations") & (m._st_rail >= 0)
    if S and net.n_edges:
        st_ok &= joined_node[np.maximum(m._st_rail, 0)]
    else:
        st_ok &= False
    sd = np.full((S, n), np.inf)
    placed = m._st_row >= 0
    if S and placed.any() and m.road.n_edges:
        dist_src, _ = m._road_costs(road["mask"])
        sd[placed] = (
            m.road.from_nodes(dist_src[m._st_row[placed]], road["edge"], road["t"])
            + m._st_road_gap[placed, None]
        )
    within = sd <= m.rail_reach_m
    best = np.full(n, np.inf)
    via = np.full(n, None, dtype=object)
    via_kind = np.full(n, None, dtype=object)
    via_pos = np.full(n, -1, np.intp)
    if S:
        good = np.where(st_ok[:, None] & within, sd, np.inf)
        k = np.argmin(good, axis=0)
        d = good[k, np.arange(n)]
        hit = np.isfinite(d)
        best[hit] = d[hit]
        via_pos[hit] = k[hit]
        via_kind[hit] = "station"
    sl, se, sg = sites.siding_pairs
    if len(se):
        sid_ok = rmask[se] & joined_node[net.u[se]]
        l, e, g = sl[sid_ok], se[sid_ok], sg[sid_ok]
        f = first(l)
        l, e, g = l[f], e[f], g[f]
        better = g < best[l]
        best[l[better]] = g[better]
        via_pos[l[better]] = e[better]
        via_kind[l[better]] = "siding"
    ok = np.isfinite(best)
    code = np.where(ok, "ok", "out_of_reach").astype(object)
    blockers: dict[int, tuple[int, ...]] = {}
    dist = best.copy()
    todo = np.flatnonzero(~ok)
    if len(todo):
        # The nearest station within reach or fronted siding, whatever its status,
        # and what blocks it (shared per station / siding).
        st_block, sd_block = rail_blockers(m, scen, rmask)
        cand = np.where(within[:, todo], sd[:, todo], np.inf)
        k = np.argmin(cand, axis=0) if S else np.zeros(len(todo), np.intp)
        d = cand[k, np.arange(len(todo))] if S else np.full(len(todo), np.inf)
        g = np.full(n, np.inf)
        e_any = np.full(n, -1, np.intp)
        if len(se):
            f = first(sl)
            g[sl[f]], e_any[sl[f]] = sg[f], se[f]
        g, e_any = g[todo], e_any[todo]
        use_sid = g < d
        has = np.isfinite(np.minimum(d, g))
        st_sites, sd_sites = todo[has & ~use_sid], todo[has & use_sid]
        dist[st_sites], via_kind[st_sites] = d[has & ~use_sid], "station"
        via_pos[st_sites] = k[has & ~use_sid]
        dist[sd_sites], via_kind[sd_sites] = g[has & use_sid], "siding"
        via_pos[sd_sites] = e_any[has & use_sid]
        for sites_, table in ((st_sites, st_block), (sd_sites, sd_block)):
            for key, blk in table.items():
                where = sites_[via_pos[sites_] == key]
                if not len(where):
                    continue
                off = -1 in blk
                code[where] = "off_network" if off else "blocked"
                shared = tuple(b for b in blk if b >= 0)
                blockers.update(dict.fromkeys(where.tolist(), shared))
    st_ids = np.asarray(m._layer_ids("rail_stations"), dtype=object)
    is_st = via_kind == "station"
    via[is_st] = st_ids[via_pos[is_st]]
    is_sd = via_kind == "siding"
    via[is_sd] = net.asset_id[via_pos[is_sd]] if net.n_edges else None
    return {
        "ok": ok,
        "distance": dist,
        "via": via,
        "via_kind": via_kind,
        "via_pos": via_pos,
        "code": code,
        "blockers": blockers,
        "station_dist": sd,
    }


def eval_power(m: ServicingModel, sites: Sites, scen: Scenario, road: Answer) -> Answer:
    """The nearest usable substation by corridor distance; nearer ones passed over."""
    K = len(m._sub_row)
    kd = np.full((K, sites.n), np.inf)
    placed = m._sub_row >= 0
    if K and placed.any() and m.road.n_edges:
        dist_src, _ = m._road_costs(road["mask"])
        kd[placed] = (
            m.road.from_nodes(dist_src[m._sub_row[placed]], road["edge"], road["t"])
            + m._sub_gap[placed, None]
        )
    return choose_power(m, kd, scen)


def choose_power(m: ServicingModel, kd: np.ndarray, scen: Scenario) -> Answer:
    """The power answer from corridor distances to every substation (``kd``: substations x
    sites), which depend on the roads only: a substation's status changes just this."""
    K, n = kd.shape
    usable = m.usable(scen, "substations")
    good = np.where(usable[:, None], kd, np.inf)
    sub = np.argmin(good, axis=0) if K else np.full(n, -1)
    dist = good[sub, np.arange(n)] if K else np.full(n, np.inf)
    ok = np.isfinite(dist)
    any_sub = np.argmin(kd, axis=0) if K else np.full(n, -1)
    any_dist = kd[any_sub, np.arange(n)] if K else np.full(n, np.inf)
    code = np.where(
        ok,
        "ok",
        np.where(np.isfinite(any_dist), "blocked", "no_substation" if K == 0 else "unreachable"),
    )
    sub = np.where(ok, sub, np.where(np.isfinite(any_dist), any_sub, -1))
    dist = np.where(ok, dist, any_dist)
    base = m._asset_slice["substations"].start
    blocked = np.flatnonzero(code == "blocked")
    blockers = {site: (row,) for site, row in zip(blocked.tolist(), (base + sub[blocked]).tolist())}
    bypassed: dict[int, tuple[int, ...]] = {}
    if K:
        kk, ss = np.nonzero(~usable[:, None] & (kd < np.where(ok, dist, -np.inf)[None, :]))
        order = np.lexsort((kd[kk, ss], ss))
        rows, at = (base + kk[order]).tolist(), ss[order]
        starts = np.flatnonzero(np.r_[True, at[1:] != at[:-1]]) if len(at) else at
        if len(starts) == len(at):  # one nearer closed substation per site (the usual)
            bypassed = dict(zip(at.tolist(), ((r,) for r in rows)))
        else:
            ends = [*starts[1:].tolist(), len(rows)]
            bypassed = {
                s: tuple(rows[a:b]) for s, a, b in zip(at[starts].tolist(), starts.tolist(), ends)
            }
    return {
        "ok": ok,
        "sub": sub,
        "distance": dist,
        "code": code,
        "blockers": blockers,
        "bypassed": bypassed,
        "sub_dist": kd,
    }


def eval_main(m: ServicingModel, utility: str, sites: Sites, scen: Scenario) -> Answer:
    """The nearest usable main of ``utility`` within its connection distance."""
    n = sites.n
    layer = MAIN_LAYERS[utility]
    l, r, d = sites.main_pairs[utility]
    usable = m.usable(scen, layer)
    main = np.full(n, -1, np.intp)
    dist = np.full(n, np.inf)
    keep = usable[r] if len(r) else np.zeros(0, bool)
    f = first(l[keep])
    main[l[keep][f]], dist[l[keep][f]] = r[keep][f], d[keep][f]
    ok = main >= 0
    code = np.where(ok, "ok", "none_within").astype(object)
    f = first(l)
    fl, fr, fd = l[f], r[f], d[f]
    blocked = ~ok[fl]
    sb = fl[blocked]
    main[sb], dist[sb], code[sb] = fr[blocked], fd[blocked], "blocked"
    base = m._asset_slice[layer].start
    blockers = {site: (row,) for site, row in zip(sb.tolist(), (base + fr[blocked]).tolist())}
    return {"ok": ok, "main": main, "distance": dist, "code": code, "blockers": blockers}


# ----------------------------------------------------------------- row surgery
def take(answer: Answer, idx: np.ndarray) -> Answer:
    """The rows ``idx`` of an answer (distinct positions), renumbered 0..len(idx)-1."""
    idx = np.asarray(idx, dtype=np.intp)
    out: Answer = {}
    inverse: np.ndarray | None = None
    for key, value in answer.items():
        if key == "mask":
            out[key] = value
        elif isinstance(value, Mapping) and len(idx) * 4 < len(value):
            # A few sites of a big map (a page, a record): looked up, not renumbered.
            out[key] = {k: value[s] for k, s in enumerate(idx.tolist()) if s in value}
        elif isinstance(value, Mapping):
            if inverse is None:
                inverse = np.full(len(answer["ok"]), -1, np.intp)
                inverse[idx] = np.arange(len(idx))
            out[key] = _renumber(value, inverse)
        elif value.ndim == 1:
            out[key] = value[idx]
        else:
            out[key] = value[:, idx]
    return out


def _renumber(by_site: Mapping[int, Any], new: np.ndarray) -> dict[int, Any]:
    """``by_site`` with each site ``s`` as ``new[s]`` (dropped where that is -1)."""
    if not by_site:
        return {}
    sites = np.fromiter(by_site.keys(), dtype=np.intp, count=len(by_site))
    moved = new[sites]
    keep = moved >= 0
    return dict(zip(moved[keep].tolist(), compress(by_site.values(), keep.tolist())))


def concat(a: Answer, b: Answer) -> Answer:
    """The sites of ``a`` then those of ``b`` (``b``'s mask is kept)."""
    na = len(a["ok"])
    out: Answer = {}
    for key, value in a.items():
        other = b[key]
        if key == "mask":
            out[key] = other
        elif isinstance(value, Mapping):
            out[key] = patched_map(value, na + np.arange(len(b["ok"])), other)
        else:  # appended sites: a patch past the end, not a copy of ``a``
            out[key] = patched(value, na + np.arange(len(b["ok"])), other)
    return out


def put(a: Answer, idx: np.ndarray, part: Answer, same: Collection[str] = ()) -> Answer:
    """``a`` with rows ``idx`` as ``part``'s (answered for those sites only), ``a`` left as it
    was; the arrays named in ``same`` are known unchanged and shared.  Costs O(rows written):
    arrays and maps are patched (see :mod:`planner.servicing.patches`), not copied, unless
    most sites are written, where one copy costs less than a patch."""
    idx = np.asarray(idx, dtype=np.intp)
    n = len(a["ok"])
    if len(idx) > max(FOLD_MIN, n // FOLD_SHARE):
        replaced = np.zeros(n, bool)
        replaced[idx] = True
        on_map: Callable[..., Any] = partial(_copied_map, replaced=replaced)
        on_array: Callable[..., Any] = _copied_array
    else:
        on_map, on_array = patched_map, patched
    out: Answer = {}
    for key, value in a.items():
        new = part[key]
        if key in same:
            out[key] = value
        elif key == "mask":
            out[key] = new
        elif isinstance(value, Mapping):
            out[key] = on_map(value, idx, new)
        else:
            out[key] = on_array(value, idx, new)
    return out


def _copied_map(
    value: Mapping[int, Any], idx: np.ndarray, new: Mapping[int, Any], replaced: np.ndarray
) -> dict[int, Any]:
    """A plain copy of ``value`` without the ``replaced`` sites, with ``new``'s (keyed by
    position in ``idx``)."""
    if isinstance(value, PatchedMap):
        value = value.plain()
    kept: dict[int, Any] = {}
    if value:
        sites = np.fromiter(value.keys(), dtype=np.intp, count=len(value))
        keep = ~replaced[sites]
        kept = dict(zip(sites[keep].tolist(), compress(value.values(), keep.tolist())))
    if new:
        at = np.fromiter(new.keys(), dtype=np.intp, count=len(new))
        kept.update(zip(idx[at].tolist(), new.values()))
    return kept


def _copied_array(value: Any, idx: np.ndarray, new: Any) -> np.ndarray:
    """A plain copy of ``value`` with the sites ``idx`` holding ``new`` (one pass)."""
    new = np.asarray(new)
    if isinstance(value, PatchedArray):
        return value.written(idx, new)
    merged: np.ndarray = value.astype(np.result_type(value.dtype, new.dtype))  # a copy
    merged[..., idx] = new
    return merged


def swap_removed_rows(a: Answer, p: int) -> Answer:
    """``a`` without site ``p``, the last site taking its place (one site written per
    array and map), ``a`` left as it was."""
    last = len(a["ok"]) - 1
    out: Answer = {}
    for key, value in a.items():
        if key == "mask":
            out[key] = value
        elif isinstance(value, Mapping):
            out[key] = swap_removed_map(value, p, last)
        else:
            out[key] = swap_removed(value, p)
    return out


def derive(
    m: ServicingModel, sites: Sites, old: Evaluation, old_usable: np.ndarray, scen: Scenario
) -> Evaluation:
    """The evaluation of ``sites`` under ``scen`` from one under other usable assets.

    Only what the changed assets can serve is answered again: a road changes every
    route (road, rail, power); a gate the gate chosen; a rail line or station rail
    access; a substation the choice among the corridor distances kept; a main the plots within its
    connection distance.  Other utilities and rows are kept as they were.
    """
    changed = np.flatnonzero(np.asarray(old_usable) != scen.usable)
    layers = {m.asset_layer(int(row)) for row in changed}
    ev = dict(old)
    if layers & {"roads", "gates"}:
        ev["road"] = eval_road(m, sites, scen)
    road = ev["road"]
    if layers & {"roads", "rail_lines", "rail_stations"} and "rail" in ev:
        ev["rail"] = eval_rail(m, sites, scen, road)
    if "power" in ev and "roads" in layers:
        ev["power"] = eval_power(m, sites, scen, road)
    elif "power" in ev and "substations" in layers:  # same roads: same corridor distances
        ev["power"] = _repower(m, old["power"], m.layer_positions("substations", changed), scen)
    for u, layer in MAIN_LAYERS.items():
        if u not in ev or layer not in layers:
            continue
        feats = m.layer_positions(layer, changed)
        left, right, _ = sites.main_pairs[u]
        rows = np.unique(left[np.isin(right, feats)])
        if len(rows):
            ev[u] = put(old[u], rows, eval_main(m, u, sites.subset(rows), scen))
    return ev


def _repower(m: ServicingModel, old: Answer, subs: np.ndarray, scen: Scenario) -> Answer:
    """The power answer after the substations ``subs`` changed status: only the sites one
    of them serves, or could (as near as what serves them now, or any when none
    does), choose again."""
    kd = old["sub_dist"]
    if not len(subs) or not kd.shape[1]:
        return choose_power(m, kd, scen)
    near = np.where(old["ok"], old["distance"], np.inf)
    dist = kd[subs]
    could = (np.isfinite(dist) & (dist <= near)).any(axis=0)
    rows = np.flatnonzero(could | np.isin(old["sub"], subs))
    if not len(rows):
        return old
    return put(old, rows, choose_power(m, kd[:, rows], scen), same=("sub_dist",))
