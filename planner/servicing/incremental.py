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
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.layers import LAYERS
from planner.servicing.core import frame_of, geometries
from planner.servicing.evaluate import Answer, Evaluation, concat, evaluate, put, take
from planner.servicing.patches import Lazy, PendingFrame
from planner.servicing.rules import Scenario
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
    if any(reshaped(m.layers[name], frame, LAYERS[name].key) for name, frame in changed.items()):
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
    new = copy.copy(m)
    new._lock = threading.Lock()
    new.layers = m.layers.replaced(changed)
    new._cache = OrderedDict(m._cache)  # shortest paths and rail blockers: geometry only
    new._derived = OrderedDict()  # headroom and readiness: plots and asset attributes
    new._evals = OrderedDict(m._evals)  # per usable set: valid while geometry is
    new._pending = OrderedDict(m._pending)
    if changed or today != m.today:
        new.today = today
        new._build_assets()
    if rows is not None and edited is not None:
        _edit_plots(new, m, frame_of({"plots": rows}, "plots"), edited)
    elif plots is not None:
        _take_plots(new, m, frame_of({"plots": plots}, "plots"))
    return new


#: Edited rows kept pending on a plots frame before it is merged (then O(plots), once).
MAX_PENDING_ROWS = 4096


def _pending_plots(m: ServicingModel, rows: gpd.GeoDataFrame) -> PendingFrame:
    """``m``'s plots frame with ``rows`` (plots it holds, changed in place) written in,
    merged only when someone reads the frame: answers read the model's arrays."""
    held = m.layers.raw("plots")
    ids = m._plot_index
    if isinstance(held, PendingFrame) and held.built is None:
        again = held.rows["plot_id"].astype(str).isin(rows["plot_id"].astype(str))
        base, rows = held.base, pd.concat([held.rows[~again.to_numpy()], rows], ignore_index=True)
    else:
        base = held.built if isinstance(held, PendingFrame) else held
    pending = PendingFrame(base, rows, partial(_merge_rows, ids=ids))
    if len(rows) > MAX_PENDING_ROWS:
        pending.frame()
    return pending


def _merge_rows(base: gpd.GeoDataFrame, rows: gpd.GeoDataFrame, ids: pd.Index) -> gpd.GeoDataFrame:
    return merged_plots(base, rows, (), ids)


def edited_in_place(m: ServicingModel, rows: gpd.GeoDataFrame | None) -> np.ndarray | None:
    """Positions in ``m`` of the plots ``rows`` (changed rows, as stored) when every one
    is a plot ``m`` holds, else None."""
    if rows is None or not len(rows):
        return None
    pos = m._plot_index.get_indexer(pd.Index(rows["plot_id"].astype(str).to_numpy(dtype=object)))
    if (pos < 0).any() or len(np.unique(pos)) != len(pos):
        return None
    return np.asarray(pos, dtype=np.intp)


def _edit_plots(
    new: ServicingModel, old: ServicingModel, rows: gpd.GeoDataFrame, edited: np.ndarray
) -> None:
    """Give ``new`` ``old``'s plots, in order, with those at ``edited`` now ``rows``.

    Only the moved plots are joined and evaluated; the kept evaluations are patched
    for them when first asked for (see :meth:`ModelBase.plot_eval`), and the plots
    frame is merged when first read."""
    plots = _pending_plots(old, rows)
    now = np.asarray(rows.geometry.values, dtype=object)
    still = _same_geometry(old._plot_sites.geoms[edited], now)
    moved, moved_at = edited[~still], np.flatnonzero(~still)
    if len(moved) == 0:
        new._set_plots(plots, old._plot_sites, same_ids=old, rows=edited, changed=rows)
        _carry_headroom(new, old, edited, moved_at, None)
        return
    joined = new._sites(now[moved_at])
    new._set_plots(
        plots, old._plot_sites.replaced(moved, joined), same_ids=old, rows=edited, changed=rows
    )
    _carry_headroom(new, old, edited, moved_at, joined)
    new._evals = OrderedDict()
    new._pending = OrderedDict(
        (ukey, (usable, Lazy(partial(_put_rows, joined, usable, ev, moved))))
        for ukey, (usable, ev) in old._evals.items()
    )


def _carry_headroom(
    new: ServicingModel,
    old: ServicingModel,
    rows: np.ndarray,
    moved_at: np.ndarray,
    joined: Sites | None,
) -> None:
    """``old``'s headroom for ``new``, whose plots differ at ``rows`` only (those at
    ``rows[moved_at]`` moved, now ``joined``): each substation's and main's committed
    demand loses the edited plots' old share and gains their new one, so a plot edit
    costs its rows, not a sum over every plot.  Kept for the usable sets whose
    evaluation ``old`` holds (it says what served the edited plots); worked out when
    first read, from the evaluation the reader then has."""
    for key, head in list(old._derived.items()):
        if not (isinstance(key, tuple) and key[0] == "headroom"):
            continue
        kept = old._evals.get(key[1])
        if isinstance(head, Lazy):  # carried itself: only once worked out (no chains)
            head = head.built
        if kept is not None and head is not None:
            build = partial(_carried, old, rows, moved_at, joined, head, kept, key[1])
            new._remember_derived(key, Lazy(build))


def _carried(
    old: ServicingModel,
    rows: np.ndarray,
    moved_at: np.ndarray,
    joined: Sites | None,
    head: dict[str, dict[str, np.ndarray]],
    kept: tuple[np.ndarray, Evaluation],
    ukey: bytes,
    new: ServicingModel,
) -> dict[str, dict[str, np.ndarray]]:
    """See :func:`_carry_headroom`."""
    usable, ev = kept
    now_ev: Evaluation | None = None
    if joined is not None and len(moved_at):
        full = new._cached(ukey)  # the reader's evaluation, patched for the moved plots
        if full is not None:
            now_ev = {u: _cut(full[u], rows) for u in ("power", "water")}
        else:
            part = evaluate(new, joined, _usable_only(usable), only=("power", "water"))
            now_ev = {u: _cut(ev[u], rows) for u in ("power", "water")}
            for u in now_ev:
                for k, a in now_ev[u].items():
                    a[moved_at] = part[u][k]
    out = {}
    for u, by, demand in (("power", "sub", "_plot_power"), ("water", "main", "_plot_water")):
        h = head[u]
        if not len(h["base"]):
            out[u] = h
            continue
        was_by, was_ok = np.asarray(ev[u][by][rows]), np.asarray(ev[u]["ok"][rows], dtype=bool)
        now_by, now_ok = was_by, was_ok
        if now_ev is not None:
            now_by, now_ok = np.asarray(now_ev[u][by]), np.asarray(now_ev[u]["ok"], dtype=bool)
        committed = np.array(h["committed"], dtype=float)
        served = np.array(h["served"])
        for model, by_, ok, sign in ((old, was_by, was_ok, -1), (new, now_by, now_ok, 1)):
            sel = np.asarray(model._plot_counted[rows], dtype=bool) & ok
            amount = np.nan_to_num(np.asarray(getattr(model, demand)[rows], dtype=float))
            np.add.at(committed, by_[sel], sign * amount[sel])
            np.add.at(served, by_[sel], sign)
        out[u] = {**h, "committed": committed, "headroom": h["base"] - committed, "served": served}
    return out


def _cut(answer: Answer, rows: np.ndarray) -> dict[str, np.ndarray]:
    """What serves the sites ``rows`` of one utility's answer (a copy): ``ok`` and the
    substation or main (never the per-site maps, which may hold every site)."""
    return {k: np.array(answer[k][rows]) for k in ("ok", "sub", "main") if k in answer}


def _put_rows(
    joined: Sites, usable: np.ndarray, ev: Evaluation, rows: np.ndarray, m: ServicingModel
) -> Evaluation:
    """``ev`` with the plots at ``rows`` (sites ``joined``) evaluated again by ``m`` (the
    model asking: any model over the same networks and asset rows)."""
    part = evaluate(m, joined, _usable_only(usable))
    return {u: put(a, rows, part[u]) for u, a in ev.items()}


def merged_plots(
    plots: gpd.GeoDataFrame,
    rows: gpd.GeoDataFrame | None,
    removed: Sequence[str],
    ids: pd.Index | None = None,
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
