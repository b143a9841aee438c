"""A servicing model after a write: only what the write can change is answered again.

* An asset whose status, due date, name or note changed keeps the networks, indexes
  and every plot's spatial joins; evaluations are cached per set of usable assets,
  so a new set is derived from the nearest cached one (see
  :func:`planner.servicing.evaluate.derive`).
* A plot added, moved or removed: only the new and moved plots are joined and
  evaluated; the other plots' answers are kept.  Headroom, fit and readiness (which
  a plot's status or demand changes for its neighbours) are recomputed from the
  cached evaluations, which is arithmetic over arrays.
* An asset added, removed or moved changes the networks themselves: the model is
  built again from the layers it holds (nothing is read again).
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.layers import LAYERS
from planner.servicing.core import PLOT_ARRAYS, _plot_columns, frame_of, geometries
from planner.servicing.evaluate import (
    Answer,
    Evaluation,
    concat,
    evaluate,
    put,
    swap_removed_rows,
    take,
)
from planner.servicing.patches import Lazy, PendingFrame, PlotIndex, patched, swap_removed
from planner.servicing.rules import COUNTED_PLOT_STATUSES, Scenario
from planner.servicing.sites import Sites

if TYPE_CHECKING:
    from planner.servicing.model import ServicingModel


def update(
    m: ServicingModel,
    *,
    plots: gpd.GeoDataFrame | None = None,
    assets: Mapping[str, pd.DataFrame] | None = None,
    today: dt.date | None = None,
    edited: np.ndarray | None = None,
    rows: gpd.GeoDataFrame | None = None,
) -> ServicingModel:
    """``m`` after a write (see :meth:`ServicingModel.updated`); either ``plots`` (the whole
    layer) or, with ``edited`` (positions in ``m`` of plots changed in place), ``rows``:
    those plots as now stored, in that order."""
    today = today or m.today
    changed = {name: frame_of(assets, name) for name in assets or {}} if assets else {}
    if _reshapes(m, changed):
        layers = {**m.layers, **changed}
        if plots is None and rows is not None:
            plots = merged_plots(m.layers["plots"], rows, (), m._plot_index)
        if plots is not None:
            layers["plots"] = plots
        return type(m)(
            layers,
            power_factor=m.power_factor,
            today=today,
            frontage_m=m.frontage_m,
            connect_m=m.connect_m,
            rail_reach_m=m.rail_reach_m,
            required=m.required,
            tolerance=m.tolerance,
        )
    new = _revision(m)
    new.layers = m.layers.replaced(changed)
    if changed or today != m.today:
        new.today = today
        new._build_assets()
    if rows is not None and edited is not None:
        _edit_plots(new, m, frame_of({"plots": rows}, "plots"), edited)
    elif plots is not None:
        _take_plots(new, m, frame_of({"plots": plots}, "plots"))
    return new


def _revision(m: ServicingModel) -> ServicingModel:
    """A shallow copy of ``m`` to update (``m`` is left as it was): what depends on
    geometry only is shared, headroom and readiness are derived again."""
    new = copy.copy(m)
    new._lock = threading.Lock()
    new._cache = OrderedDict(m._cache)  # shortest paths and rail blockers: geometry only
    new._derived = OrderedDict()  # headroom and readiness: plots and asset attributes
    new._evals = OrderedDict(m._evals)  # per usable set: valid while geometry is
    new._pending = OrderedDict(m._pending)
    return new


#: Plots added or removed by one write answered row by row; more: the layer is taken whole.
MAX_SHIFTED = 64


def updated(
    m: ServicingModel,
    plots: gpd.GeoDataFrame | None,
    assets: Mapping[str, pd.DataFrame] | None,
    today: dt.date | None,
    plot_rows: gpd.GeoDataFrame | None,
    removed: Sequence[str],
) -> ServicingModel:
    """See :meth:`ServicingModel.updated`: plots edited in place are patched, a few plots
    added are appended and a few removed leave their place to the last plot (the other
    plots keep their positions), each at the cost of those plots."""
    if plot_rows is None and not removed:
        return update(m, plots=plots, assets=assets, today=today)
    split = _split(m, plot_rows, removed)
    if split is None or _reshapes(m, assets):
        plots = merged_plots(m.layers["plots"], plot_rows, removed, m._plot_index)
        return update(m, plots=plots, assets=assets, today=today)
    edited, rows, added, gone = split
    new = m  # plots added or removed only: m's headroom is carried, not derived again
    if edited is not None or assets or (today is not None and today != m.today):
        new = update(m, assets=assets, today=today, edited=edited, rows=rows)
    if len(added):
        new = _appended(new, added)
    for pid in gone:
        new = _removed(new, pid)
    return new


def _reshapes(m: ServicingModel, assets: Mapping[str, pd.DataFrame] | None) -> bool:
    """Whether ``assets`` hold other features than ``m``'s (the model is built again)."""
    return any(
        reshaped(m.layers[name], frame_of(assets or {}, name), LAYERS[name].key)
        for name in assets or {}
    )


def _split(
    m: ServicingModel, plot_rows: gpd.GeoDataFrame | None, removed: Sequence[str]
) -> tuple[np.ndarray | None, gpd.GeoDataFrame | None, gpd.GeoDataFrame, list[str]] | None:
    """``(edited, rows, added, gone)``: positions and rows of the plots ``m`` holds, rows of
    plots it does not, ids of held plots removed; None when the write is a bulk one."""
    gone = [str(r) for r in removed if str(r) in m._plot_index]
    if plot_rows is None or not len(plot_rows):
        empty = frame_of({}, "plots")
        return (None, None, empty, gone) if len(gone) <= MAX_SHIFTED else None
    ids = plot_rows["plot_id"].astype(str).to_numpy(dtype=object)
    if len(set(ids.tolist())) != len(ids):
        return None
    pos = m._plot_index.get_indexer(pd.Index(ids))
    held = pos >= 0
    if int((~held).sum()) + len(gone) > MAX_SHIFTED:
        return None
    rows = plot_rows.reset_index(drop=True)
    edited = np.asarray(pos[held], dtype=np.intp) if held.any() else None
    kept = rows.loc[held].reset_index(drop=True) if held.any() else None
    return edited, kept, rows.loc[~held].reset_index(drop=True), gone


#: Edited rows kept pending on a plots frame before it is merged (then O(plots), once).
MAX_PENDING_ROWS = 4096


def _pending_plots(
    m: ServicingModel, rows: gpd.GeoDataFrame | None, ids: np.ndarray
) -> PendingFrame:
    """``m``'s plots frame with ``rows`` (plots changed or added) written in and in the
    order of ``ids`` (every plot's id after the write: removed plots leave), built only
    when someone reads the frame (answers read the model's arrays); writes stack until
    then and are merged in one pass."""
    held = m.layers.raw("plots")
    if isinstance(held, PendingFrame) and held.built is None:
        base = held.base
        if rows is not None and len(rows):
            both = pd.concat([held.rows, rows], ignore_index=True)
            rows = both.loc[~both["plot_id"].astype(str).duplicated(keep="last").to_numpy()]
        else:
            rows = held.rows
    else:
        base = held.built if isinstance(held, PendingFrame) else held
    rows = frame_of({"plots": rows}, "plots") if rows is not None else frame_of({}, "plots")
    pending = PendingFrame(base, rows, partial(_assembled, ids=ids))
    if len(rows) > MAX_PENDING_ROWS:
        pending.frame()
    return pending


def _assembled(base: gpd.GeoDataFrame, rows: gpd.GeoDataFrame, ids: np.ndarray) -> gpd.GeoDataFrame:
    """The plots ``ids`` in that order: ``rows`` where written, else ``base``'s (one pass)."""
    order = pd.Index(np.asarray(ids, dtype=object))
    written = rows["plot_id"].astype(str).to_numpy(dtype=object)
    rows = rows.loc[order.get_indexer(written) >= 0]  # not those removed since
    have = base["plot_id"].astype(str).to_numpy(dtype=object)
    if len(have) == len(ids) and np.array_equal(have, ids):  # edits only: columns patched
        return merged_plots(base, rows, ())
    new = ~rows["plot_id"].astype(str).isin(pd.Index(have)).to_numpy()
    both = pd.concat(
        [base, rows.loc[new, [c for c in base.columns if c in rows.columns]]], ignore_index=True
    )
    place = pd.Index(both["plot_id"].astype(str).to_numpy(dtype=object)).get_indexer(order)
    frame = gpd.GeoDataFrame(both.take(place).reset_index(drop=True), crs=base.crs)
    return merged_plots(frame, rows, ())


def _edit_plots(
    new: ServicingModel, old: ServicingModel, rows: gpd.GeoDataFrame, edited: np.ndarray
) -> None:
    """Give ``new`` ``old``'s plots, in order, with those at ``edited`` now ``rows``.

    Only the moved plots are joined and evaluated; the kept evaluations are patched
    for them when first asked for (see :meth:`ModelBase.plot_eval`), and the plots
    frame is merged when first read."""
    plots = _pending_plots(old, rows, old.plot_ids)
    now = np.asarray(rows.geometry.values, dtype=object)
    still = _same_geometry(old._plot_sites.geoms[edited], now)
    moved, moved_at = edited[~still], np.flatnonzero(~still)
    if len(moved) == 0:
        new._set_plots(plots, old._plot_sites, same_ids=old, rows=edited, changed=rows)
        _carry_headroom(new, old, edited, edited, moved_at, None)
        return
    joined = new._sites(now[moved_at])
    new._set_plots(
        plots, old._plot_sites.replaced(moved, joined), same_ids=old, rows=edited, changed=rows
    )
    _carry_headroom(new, old, edited, edited, moved_at, joined)
    _carry_evals(new, old, partial(_put_rows, joined, rows=moved))


#: ``(usable, evaluation, model asking) -> evaluation``: what a plot write does to one.
EvalOp = Callable[[np.ndarray, Evaluation, "ServicingModel"], Evaluation]


def _carry_evals(new: ServicingModel, old: ServicingModel, op: EvalOp) -> None:
    """``old``'s evaluations, kept and pending, for ``new``: ``op`` applied when one is
    first asked for (a reader pays for what it reads; pending ones are chained)."""
    pending: OrderedDict[bytes, tuple[np.ndarray, Lazy]] = OrderedDict()
    for ukey, (usable, ev) in old._evals.items():
        pending[ukey] = (usable, Lazy(partial(op, usable, ev)))
    for ukey, (usable, before) in old._pending.items():
        pending[ukey] = (usable, Lazy(partial(_chained, op, usable, before)))
    new._evals = OrderedDict()
    new._pending = pending


def _chained(op: EvalOp, usable: np.ndarray, before: Lazy, m: ServicingModel) -> Evaluation:
    return op(usable, before.get(m), m)


def _appended(m: ServicingModel, rows: gpd.GeoDataFrame) -> ServicingModel:
    """``m`` with the plots ``rows`` (as stored; ids it does not hold) added after its
    own: only they are joined and evaluated, the per-plot arrays and evaluations patched
    past the end, the id index told their places."""
    rows = frame_of({"plots": rows}, "plots")
    new = _revision(m)
    n, k = len(m.plot_ids), len(rows)
    at = n + np.arange(k)
    ids = rows["plot_id"].astype(str).to_numpy(dtype=object)
    new.plot_ids = np.concatenate([m.plot_ids, ids])
    new.layers = m.layers.replaced({"plots": _pending_plots(m, rows, new.plot_ids)})
    new._plot_index = m._plot_index.placed(dict(zip(ids.tolist(), at.tolist())), new.plot_ids)
    columns = _plot_columns(rows)
    counted = np.isin(columns[2], COUNTED_PLOT_STATUSES)
    for name, value in zip(PLOT_ARRAYS, (*columns, counted, columns[2] == "occupied")):
        setattr(new, name, patched(getattr(m, name), at, value))
    joined = new._sites(geometries(rows))
    new._plot_sites = m._plot_sites.appended(joined)
    new._counted_hit = None if counted.any() else m._counted_hit
    _carry_headroom(new, m, np.zeros(0, np.intp), at, np.arange(k), joined)
    _carry_evals(new, m, partial(_concat_rows, joined))
    return new


def _removed(m: ServicingModel, pid: str) -> ServicingModel:
    """``m`` without the plot ``pid`` (one it holds): the last plot takes its place, so
    one row of each per-plot array and evaluation is written and the others keep theirs."""
    new = _revision(m)
    p = int(m._plot_index.get_indexer(pd.Index([pid], dtype=object))[0])
    last = len(m.plot_ids) - 1
    ids = m.plot_ids[:last].copy()
    changes = {pid: -1}
    if p != last:
        ids[p] = m.plot_ids[last]
        changes[str(m.plot_ids[last])] = p
    new.plot_ids = ids
    new.layers = m.layers.replaced({"plots": _pending_plots(m, None, ids)})
    new._plot_index = m._plot_index.placed(changes, ids)
    for name in PLOT_ARRAYS:
        setattr(new, name, swap_removed(getattr(m, name), p))
    new._plot_sites = m._plot_sites.removed(p)
    either = np.asarray(m._plot_counted[np.array([p, last])], dtype=bool)
    new._counted_hit = None if either.any() else m._counted_hit
    _carry_headroom(new, m, np.array([p]), np.zeros(0, np.intp), np.zeros(0, np.intp), None)
    _carry_evals(new, m, partial(_swap_rows, p=p))
    return new


def _swap_rows(usable: np.ndarray, ev: Evaluation, m: ServicingModel, *, p: int) -> Evaluation:
    return {u: swap_removed_rows(a, p) for u, a in ev.items()}


def _concat_rows(
    joined: Sites, usable: np.ndarray, ev: Evaluation, m: ServicingModel
) -> Evaluation:
    """``ev`` with the sites ``joined`` evaluated by ``m`` appended."""
    part = evaluate(m, joined, _usable_only(usable))
    return {u: concat(a, part[u]) for u, a in ev.items()}


def _carry_headroom(
    new: ServicingModel,
    old: ServicingModel,
    was: np.ndarray,
    now: np.ndarray,
    moved_at: np.ndarray,
    joined: Sites | None,
) -> None:
    """``old``'s headroom for ``new``, whose plots differ only at ``was`` (positions in
    ``old``: plots edited or removed) and ``now`` (positions in ``new``: plots edited or
    added; those at ``now[moved_at]`` moved or are new, now ``joined``): each
    substation's and main's committed demand loses those plots' old share and gains
    their new one, so a plot write costs its rows, not a sum over every plot.  Kept for
    the usable sets whose evaluation ``old`` holds (it says what served the plots);
    worked out when first read, from the evaluation the reader then has."""
    for key, head in list(old._derived.items()):
        if not (isinstance(key, tuple) and key[0] == "headroom"):
            continue
        kept = old._evals.get(key[1])
        if isinstance(head, Lazy):  # carried itself: only once worked out (no chains)
            head = head.built
        if kept is not None and head is not None:
            build = partial(_carried, old, was, now, moved_at, joined, head, kept, key[1])
            new._remember_derived(key, Lazy(build))


def _carried(
    old: ServicingModel,
    was: np.ndarray,
    now: np.ndarray,
    moved_at: np.ndarray,
    joined: Sites | None,
    head: dict[str, dict[str, np.ndarray]],
    kept: tuple[np.ndarray, Evaluation],
    ukey: bytes,
    new: ServicingModel,
) -> dict[str, dict[str, np.ndarray]]:
    """See :func:`_carry_headroom`."""
    usable, ev = kept
    now_ev = _now_serving(old, was, now, moved_at, joined, ev, usable, ukey, new)
    out = {}
    for u, by, demand in (("power", "sub", "_plot_power"), ("water", "main", "_plot_water")):
        h = head[u]
        if not len(h["base"]):
            out[u] = h
            continue
        was_by, was_ok = np.asarray(ev[u][by][was]), np.asarray(ev[u]["ok"][was], dtype=bool)
        now_by, now_ok = was_by, was_ok
        if now_ev is not None:
            now_by, now_ok = np.asarray(now_ev[u][by]), np.asarray(now_ev[u]["ok"], dtype=bool)
        committed = np.array(h["committed"], dtype=float)
        served = np.array(h["served"])
        for model, rows, by_, ok, sign in (
            (old, was, was_by, was_ok, -1),
            (new, now, now_by, now_ok, 1),
        ):
            sel = np.asarray(model._plot_counted[rows], dtype=bool) & ok
            amount = np.nan_to_num(np.asarray(getattr(model, demand)[rows], dtype=float))
            np.add.at(committed, by_[sel], sign * amount[sel])
            np.add.at(served, by_[sel], sign)
        out[u] = {**h, "committed": committed, "headroom": h["base"] - committed, "served": served}
    return out


def _now_serving(
    old: ServicingModel,
    was: np.ndarray,
    now: np.ndarray,
    moved_at: np.ndarray,
    joined: Sites | None,
    ev: Evaluation,
    usable: np.ndarray,
    ukey: bytes,
    new: ServicingModel,
) -> dict[str, dict[str, np.ndarray]] | None:
    """What serves the plots at ``now`` in ``new`` (power and water), or None when that is
    what served them at ``was`` (edited in place, none moved)."""
    if joined is None or not len(moved_at):
        if len(now):
            return None
        return {u: {k: a[:0] for k, a in _cut(ev[u], was).items()} for u in ("power", "water")}
    full = new._cached(ukey)  # the reader's evaluation, patched for the moved plots
    if full is not None:
        return {u: _cut(full[u], now) for u in ("power", "water")}
    part = evaluate(new, joined, _usable_only(usable), only=("power", "water"))
    if len(moved_at) == len(now):  # every one new or moved
        return {u: _cut(part[u], np.arange(len(now))) for u in ("power", "water")}
    out = {u: _cut(ev[u], was) for u in ("power", "water")}
    for u in out:
        for k, a in out[u].items():
            a[moved_at] = part[u][k]
    return out


def _cut(answer: Answer, rows: np.ndarray) -> dict[str, np.ndarray]:
    """What serves the sites ``rows`` of one utility's answer (a copy): ``ok`` and the
    substation or main (never the per-site maps, which may hold every site)."""
    return {k: np.array(answer[k][rows]) for k in ("ok", "sub", "main") if k in answer}


def _put_rows(
    joined: Sites, usable: np.ndarray, ev: Evaluation, m: ServicingModel, *, rows: np.ndarray
) -> Evaluation:
    """``ev`` with the plots at ``rows`` (sites ``joined``) evaluated again by ``m`` (the
    model asking: any model over the same networks and asset rows)."""
    part = evaluate(m, joined, _usable_only(usable))
    return {u: put(a, rows, part[u]) for u, a in ev.items()}


def merged_plots(
    plots: gpd.GeoDataFrame,
    rows: gpd.GeoDataFrame | None,
    removed: Sequence[str],
    ids: pd.Index | PlotIndex | None = None,
) -> gpd.GeoDataFrame:
    """``plots`` with ``rows`` in place of the plots of the same id (the others appended)
    and the ``removed`` ids dropped; positions of the other plots kept.  ``ids``: the
    plots' ids as an index, if one is at hand (its hash table is reused)."""
    out = plots.copy(deep=False)  # copy-on-write: only the columns set below are copied
    if ids is None:
        ids = pd.Index(out["plot_id"].astype(str).to_numpy(dtype=object))
    if rows is not None and len(rows):
        rows = frame_of({"plots": rows}, "plots")
        pos = ids.get_indexer(pd.Index(rows["plot_id"].astype(str).to_numpy(dtype=object)))
        old = pos >= 0
        if old.any():
            at = pos[old]
            for column in out.columns:
                if column not in rows.columns:
                    continue
                value = rows[column].to_numpy()[old]
                if _same_values(out[column].to_numpy()[at], value):
                    continue  # an edit sets a few columns: the others are not copied
                position = int(out.columns.get_loc(column))  # type: ignore[arg-type]
                out.iloc[at, position] = value
        if (~old).any():
            added = rows.loc[~old, [c for c in out.columns if c in rows.columns]]
            out = pd.concat([out, added], ignore_index=True)
            ids = pd.Index(out["plot_id"].astype(str).to_numpy(dtype=object))
    if len(removed):
        drop = ids.get_indexer(pd.Index([str(r) for r in removed], dtype=object))
        out = out.drop(index=out.index[drop[drop >= 0]]).reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=plots.crs)


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two short arrays hold the same values (missing equal to missing)."""
    if a.dtype == object and len(a) and isinstance(a[0], shapely.Geometry):
        return bool(np.all(_same_geometry(a, b)))
    return bool(pd.Series(a, dtype=object).equals(pd.Series(b, dtype=object)))


def reshaped(old: pd.DataFrame, new: pd.DataFrame, key: str) -> bool:
    """Whether ``new`` holds other features than ``old`` (ids, order or geometry)."""
    if len(old) != len(new):
        return True
    if not np.array_equal(old[key].astype(str).to_numpy(), new[key].astype(str).to_numpy()):
        return True
    return not bool(np.all(_same_geometry(geometries(old), geometries(new))))


def _same_geometry(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise: both missing, or exactly equal coordinates."""
    missing_a, missing_b = shapely.is_missing(a), shapely.is_missing(b)
    same = np.asarray(shapely.equals_exact(a, b, tolerance=0.0), dtype=bool)
    return np.where(missing_a | missing_b, missing_a & missing_b, same)


def _usable_only(usable: np.ndarray) -> Scenario:
    """A scenario carrying only what evaluations read (which assets are usable)."""
    return Scenario(
        None,
        {},
        np.zeros(0, object),
        np.zeros(0, bool),
        {},
        (),
        usable,
        np.packbits(usable).tobytes() + len(usable).to_bytes(4, "little"),
    )


def _take_plots(new: ServicingModel, old: ServicingModel, plots: gpd.GeoDataFrame) -> None:
    """Give ``new`` the plots ``plots``, joining and evaluating only new or moved ones."""
    ids = plots["plot_id"].astype(str).to_numpy() if len(plots) else np.zeros(0, object)
    src = old._plot_index.get_indexer(pd.Index(ids, dtype=object))
    geoms = geometries(plots)
    keep = src >= 0
    if keep.any():
        keep[keep] = _same_geometry(geometries(old.layers["plots"])[src[keep]], geoms[keep])
    kept, fresh = np.flatnonzero(keep), np.flatnonzero(~keep)
    if (
        len(fresh) == 0
        and len(ids) == old._plot_sites.n
        and np.array_equal(src, np.arange(len(ids)))
    ):
        new._set_plots(plots, old._plot_sites)  # attributes only: the same sites
        return
    order = np.empty(len(ids), np.intp)
    order[kept] = np.arange(len(kept))
    order[fresh] = len(kept) + np.arange(len(fresh))
    joined = new._sites(geoms[fresh])
    sites = old._plot_sites.subset(src[kept]).concat(joined).subset(order)
    new._set_plots(plots, sites)
    n_old = old._plot_sites.n
    # Edits in place and plots appended (the usual writes): patch rows, keep the rest.
    aligned = len(ids) >= n_old and np.array_equal(ids[:n_old], old.plot_ids)
    evals: OrderedDict[bytes, tuple[np.ndarray, Evaluation]] = OrderedDict()
    for ukey, (usable, ev) in old._evals.items():
        part = evaluate(new, joined, _usable_only(usable)) if len(fresh) else None
        evals[ukey] = (
            usable,
            {
                u: _patched(a, None if part is None else part[u], src, kept, fresh, order, aligned)
                for u, a in ev.items()
            },
        )
    new._evals = evals
    new._pending = OrderedDict()  # not asked for since the last plot write: dropped


def _patched(
    old: Answer,
    part: Answer | None,
    src: np.ndarray,
    kept: np.ndarray,
    fresh: np.ndarray,
    order: np.ndarray,
    aligned: bool,
) -> Answer:
    """One utility's answer for the new plots: ``old``'s rows ``src[kept]`` and ``part``'s
    (answered for the ``fresh`` plots), in the new plots' order."""
    if part is None:
        return take(old, src[kept]) if not aligned or len(src) != len(old["ok"]) else old
    if not aligned:
        return take(concat(take(old, src[kept]), part), order)
    n_old = len(old["ok"])
    inplace = int(np.count_nonzero(fresh < n_old))
    out = old
    if inplace < len(fresh):  # appended plots
        out = concat(out, take(part, np.arange(inplace, len(fresh))))
    if inplace:
        out = put(out, fresh[:inplace], take(part, np.arange(inplace)))
    return out
