"""The core of the servicing model: assets, networks, plots, scenarios and cached evaluations."""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.index import SpatialIndex
from geo.layers import ASSET_LAYERS, ASSET_STATUSES, LAYERS
from geo.network import SNAP_TOLERANCE_M, Network, build_network
from geo.validate import parse_date
from planner.servicing.evaluate import Evaluation, derive, evaluate
from planner.servicing.patches import Layers, Lazy, PendingFrame, PlotIndex, patched
from planner.servicing.rules import (
    CONNECT_M,
    COUNTED_PLOT_STATUSES,
    FRONTAGE_M,
    MAIN_LAYERS,
    POWER_FACTOR,
    RAIL_REACH_M,
    REQUIRED,
    STATION_SNAP_M,
    USABLE,
    UTILITIES,
    Scenario,
    clean_text,
    to_date,
)
from planner.servicing.sites import Sites

#: Evaluations of every plot kept per model (one per set of usable assets asked about).
MAX_EVALUATIONS = 12
#: The per-plot arrays of a model, in the order :func:`_plot_columns` gives the first four.
PLOT_ARRAYS = (
    "_plot_power",
    "_plot_water",
    "_plot_status",
    "_plot_rail_need",
    "_plot_counted",
    "_plot_occupied",
)
#: Network-level values kept per model (shortest paths per road mask, rail blockers).
MAX_CACHED = 32


if TYPE_CHECKING:
    from planner.servicing.model import ServicingModel


class ModelBase:
    """Set-up and caches of :class:`planner.servicing.ServicingModel` (see there)."""

    def __init__(
        self,
        snapshot: Mapping[str, pd.DataFrame],
        *,
        power_factor: float = POWER_FACTOR,
        today: dt.date | str | None = None,
        frontage_m: float = FRONTAGE_M,
        connect_m: Mapping[str, float] | None = None,
        rail_reach_m: float = RAIL_REACH_M,
        required: Sequence[str] = REQUIRED,
        tolerance: float = SNAP_TOLERANCE_M,
    ):
        if "plots" not in snapshot:
            raise ValueError("the snapshot has no plots layer")
        if not (0 < power_factor <= 1):
            raise ValueError(f"power factor must be in (0, 1], got {power_factor!r}")
        unknown = [u for u in required if u not in UTILITIES]
        if unknown:
            raise ValueError(
                f"unknown utilities in required: {', '.join(unknown)}; use {', '.join(UTILITIES)}"
            )
        for name, value in (("frontage_m", frontage_m), ("rail_reach_m", rail_reach_m)):
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.power_factor = float(power_factor)
        self.today: dt.date = to_date(today, "today") or dt.date.today()
        self.frontage_m = float(frontage_m)
        self.rail_reach_m = float(rail_reach_m)
        self.connect_m = {**CONNECT_M, **(connect_m or {})}
        self.required = tuple(required)
        self.tolerance = float(tolerance)
        self.layers = Layers({name: frame_of(snapshot, name) for name in ("plots", *ASSET_LAYERS)})
        self._lock = threading.Lock()
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._derived: OrderedDict[Hashable, Any] = OrderedDict()
        self._evals: OrderedDict[bytes, tuple[np.ndarray, Evaluation]] = OrderedDict()
        #: Evaluations of the previous plots, patched for this model's plots when first
        #: asked for (a plot write patches only what readers use).
        self._pending: OrderedDict[bytes, tuple[np.ndarray, Lazy]] = OrderedDict()
        self._build_assets()
        self._build_networks()
        self._set_plots(self.layers["plots"], self._sites(geometries(self.layers["plots"])))

    # ------------------------------------------------------------------ setup
    def _build_assets(self) -> None:
        """The asset table (every asset layer's rows, in order) and per-asset lookups."""
        rows, self._asset_slice = [], {}
        start = 0
        for name in ASSET_LAYERS:
            frame = self.layers[name]
            key = LAYERS[name].key
            part = pd.DataFrame(
                {
                    "layer": name,
                    "asset_id": frame[key].astype(str).to_numpy() if len(frame) else [],
                    **{
                        c: frame[c].astype(object).to_numpy() if len(frame) else []
                        for c in ("name", "status", "due", "note")
                    },
                }
            )
            rows.append(part)
            self._asset_slice[name] = slice(start, start + len(part))
            start += len(part)
        assets = pd.concat(rows, ignore_index=True)
        assets["due"] = pd.Series(
            [
                _due(v, lyr, aid)
                for v, lyr, aid in zip(assets["due"], assets["layer"], assets["asset_id"])
            ],
            index=assets.index,
            dtype=object,
        )
        assets["status"] = pd.Series(
            [clean_text(v) or USABLE for v in assets["status"]], index=assets.index, dtype=object
        )
        bad = assets.loc[~assets["status"].isin(ASSET_STATUSES)]
        if len(bad):
            raise ValueError(
                "unknown asset statuses: "
                + ", ".join(f"{r.layer}:{r.asset_id}={r.status!r}" for r in bad.itertuples())
            )
        rec_ok = np.asarray(assets["status"].to_numpy(object) == USABLE, dtype=bool)
        today_iso = self.today.isoformat()
        late = np.array([d is not None and d < today_iso for d in assets["due"]], dtype=bool)
        assets["overdue"] = late & ~rec_ok
        self.assets = assets
        self._a: dict[str, list[Any]] = {
            c: assets[c].tolist()
            for c in ("layer", "asset_id", "name", "status", "note", "due", "overdue")
        }
        self._a["name"] = [clean_text(v) for v in self._a["name"]]
        self._a["note"] = [clean_text(v) for v in self._a["note"]]
        self._asset_pos = {
            (lyr, a): i for i, (lyr, a) in enumerate(zip(assets["layer"], assets["asset_id"]))
        }
        self._row_layer = np.repeat(
            np.array(list(self._asset_slice), dtype=object),
            [s.stop - s.start for s in self._asset_slice.values()],
        )

    def _build_networks(self) -> None:
        """Road and rail networks, mains indexes, and gates/stations/substations on them."""
        self.road = build_network({"roads": self.layers["roads"]}, tolerance=self.tolerance)
        self.rail = build_network(
            {"rail_lines": self.layers["rail_lines"]}, tolerance=self.tolerance
        )
        self._edge_rows = {id(net): self._edge_asset_rows(net) for net in (self.road, self.rail)}
        self._index = {
            u: SpatialIndex(geometries(self.layers[lyr])) for u, lyr in MAIN_LAYERS.items()
        }
        self._siding_edges = (
            np.flatnonzero(self.rail.kind == "siding")
            if self.rail.n_edges
            else np.zeros(0, np.intp)
        )
        self._siding_index = SpatialIndex(self.rail.geometry[self._siding_edges])
        self._place_points()

    def _edge_asset_rows(self, net: Network) -> np.ndarray:
        """The asset row of each network edge (-1 for an edge of no known asset)."""
        if net.n_edges == 0:
            return np.zeros(0, np.intp)
        pos = self._asset_pos
        return np.array(
            [pos.get((str(lyr), str(a)), -1) for lyr, a in zip(net.layer, net.asset_id)],
            dtype=np.intp,
        )

    def _place_points(self) -> None:
        """Snap gates, stations and substations to the networks (once)."""
        gates = self.layers["gates"]
        self._gate_node, self._gate_gap = self.road.nearest_nodes(gates.geometry.values)
        st = self.layers["rail_stations"]
        self._st_road, self._st_road_gap = self.road.nearest_nodes(st.geometry.values)
        self._st_rail, st_gap = self.rail.nearest_nodes(st.geometry.values)
        self._st_rail[st_gap > STATION_SNAP_M] = -1
        subs = self.layers["substations"]
        self._sub_road, self._sub_gap = self.road.nearest_nodes(subs.geometry.values)
        nodes = np.r_[self._gate_node, self._st_road, self._sub_road]
        self._src_nodes = np.unique(nodes[nodes >= 0])
        row = {n: i for i, n in enumerate(self._src_nodes.tolist())}
        rows = np.array([row.get(n, -1) for n in nodes.tolist()], dtype=np.intp)
        g, s = len(gates), len(st)
        self._gate_row, self._st_row, self._sub_row = rows[:g], rows[g : g + s], rows[g + s :]
        main_edges = (
            np.flatnonzero(self.rail.kind == "mainline")
            if self.rail.n_edges
            else np.zeros(0, np.intp)
        )
        self._main_nodes_all = np.unique(np.r_[self.rail.u[main_edges], self.rail.v[main_edges]])
        self._main_edges = main_edges

    def _sites(self, geoms: np.ndarray) -> Sites:
        """What lies within reach of each polygon (spatial joins, once per geometry)."""
        geoms = np.asarray(geoms, dtype=object)
        left, right, gap = self.road.edge_index.within(geoms, self.frontage_m)
        road_t = self.road.locate_on(geoms[left], right) if len(left) else np.zeros(0)
        sl, sr, sg = self._siding_index.within(geoms, self.frontage_m)
        mains = {u: idx.within(geoms, self.connect_m[u]) for u, idx in self._index.items()}
        return Sites(geoms, (left, right, gap), (sl, self._siding_edges[sr], sg), mains, road_t)

    def _set_plots(
        self,
        plots: gpd.GeoDataFrame | PendingFrame,
        sites: Sites,
        same_ids: ModelBase | None = None,
        rows: np.ndarray | None = None,
        changed: pd.DataFrame | None = None,
    ) -> None:
        """Take ``plots`` (and their ``sites``) as the model's plots; ``same_ids``: a model
        holding the same plot ids in the same order (its id index is reused), whose
        plots differ at positions ``rows`` only, stored as ``changed`` (in that order;
        then only those rows are read, and the per-plot arrays are patched there)."""
        self.layers = self.layers.replaced({"plots": plots})
        self.plot_ids: np.ndarray
        self._plot_index: PlotIndex
        self._plot_power: Any
        self._plot_water: Any
        self._plot_status: Any
        self._plot_rail_need: Any
        self._plot_counted: Any
        self._plot_occupied: Any
        self._plot_sites = sites
        self._counted_hit: Sites | None = None
        if same_ids is not None:
            self.plot_ids, self._plot_index = same_ids.plot_ids, same_ids._plot_index
        else:
            frame = plots.frame() if isinstance(plots, PendingFrame) else plots
            self.plot_ids = (
                frame["plot_id"].astype(str).to_numpy() if len(frame) else np.zeros(0, object)
            )
            self._plot_index = PlotIndex.of(self.plot_ids)
        if same_ids is not None and rows is not None and changed is not None:
            old = same_ids
            columns = _plot_columns(changed)
            counted = np.isin(columns[2], COUNTED_PLOT_STATUSES)
            self._plot_power, self._plot_water, self._plot_status, self._plot_rail_need = (
                patched(array, rows, value)
                for array, value in zip(
                    (old._plot_power, old._plot_water, old._plot_status, old._plot_rail_need),
                    columns,
                )
            )
            same_counted = bool(np.array_equal(counted, old._plot_counted[rows]))
            self._plot_counted = (
                old._plot_counted if same_counted else patched(old._plot_counted, rows, counted)
            )
            self._plot_occupied = patched(old._plot_occupied, rows, columns[2] == "occupied")
            if sites is old._plot_sites and same_counted:
                self._counted_hit = old._counted_hit
            return
        frame = plots.frame() if isinstance(plots, PendingFrame) else plots
        (self._plot_power, self._plot_water, self._plot_status, self._plot_rail_need) = (
            _plot_columns(frame)
        )
        self._plot_counted = np.isin(self._plot_status, COUNTED_PLOT_STATUSES)
        self._plot_occupied = np.asarray(self._plot_status == "occupied", dtype=bool)

    @property
    def _counted_sites(self) -> Sites:
        """The sites of the plots whose demand is committed (reserved, allocated)."""
        hit = self._counted_hit
        if hit is None:
            hit = self._plot_sites.subset(np.flatnonzero(np.asarray(self._plot_counted)))
            self._counted_hit = hit  # same value whichever thread builds it
        return hit

    # --------------------------------------------------------------- lookups
    def _layer_ids(self, name: str) -> np.ndarray:
        return np.asarray(self.assets["asset_id"].to_numpy()[self._asset_slice[name]])

    def asset_layer(self, row: int) -> str:
        """The layer of asset row ``row``."""
        return str(self._row_layer[row])

    def layer_positions(self, layer: str, rows: np.ndarray) -> np.ndarray:
        """Positions within ``layer`` of those asset ``rows`` that belong to it."""
        s = self._asset_slice[layer]
        rows = np.asarray(rows, dtype=np.intp)
        return rows[(rows >= s.start) & (rows < s.stop)] - s.start

    def usable(self, scen: Scenario, layer: str) -> np.ndarray:
        """Whether each asset of ``layer`` counts in ``scen``."""
        return np.asarray(scen.usable[self._asset_slice[layer]])

    def edge_mask(self, net: Network, scen: Scenario) -> np.ndarray:
        """Usable edges of ``net`` in ``scen`` (an edge of no known asset: as recorded)."""
        if net.n_edges == 0:
            return np.zeros(0, bool)
        rows = self._edge_rows[id(net)]
        own = np.asarray(net.status == USABLE, dtype=bool)
        return np.where(rows >= 0, scen.usable[np.maximum(rows, 0)], own)

    # --------------------------------------------------------------- scenarios
    def scenario(
        self,
        as_of: dt.date | str | None = None,
        what_if: Mapping[tuple[str, str], str] | None = None,
    ) -> Scenario:
        """Effective statuses for a date and a what-if.

        Raises
        ------
        ValueError
            For a date that does not parse, or a what-if naming unknown layers,
            assets or statuses (all of them listed).
        """
        date = to_date(as_of, "as of")
        wanted = dict(what_if or {})
        problems = []
        for key, status in wanted.items():
            if not (isinstance(key, tuple) and len(key) == 2):
                problems.append(f"{key!r} is not a (layer, asset_id) pair")
                continue
            layer, aid = key
            if layer not in ASSET_LAYERS:
                problems.append(f"{layer!r} is not an asset layer ({', '.join(ASSET_LAYERS)})")
            elif (layer, str(aid)) not in self._asset_pos:
                problems.append(f"{layer} has no asset {aid!r}")
            if status not in ASSET_STATUSES:
                problems.append(
                    f"{status!r} for {layer}:{aid} is not a status ({', '.join(ASSET_STATUSES)})"
                )
        if problems:
            raise ValueError("what-if refused: " + "; ".join(problems))
        rec: np.ndarray = np.asarray(self.assets["status"].to_numpy(), dtype=object)
        effective = rec.copy()
        if date is not None:
            iso = date.isoformat()
            hit = np.array([d is not None and d <= iso for d in self._a["due"]], dtype=bool)
            effective[hit] = USABLE
        for (layer, aid), st in wanted.items():
            effective[self._asset_pos[(layer, str(aid))]] = st
        usable = np.asarray(effective == USABLE, dtype=bool)
        projected = usable & (rec != USABLE)
        changed = np.flatnonzero(effective != rec)
        overrides = {(self._a["layer"][i], self._a["asset_id"][i]): effective[i] for i in changed}
        return Scenario(
            date,
            {(k[0], str(k[1])): v for k, v in wanted.items()},
            effective,
            projected,
            overrides,
            tuple(sorted(overrides.items())),
            usable,
            np.packbits(usable).tobytes() + len(usable).to_bytes(4, "little"),
        )

    # ------------------------------------------------------------------ caches
    def _remember(self, key: Hashable, value: Any) -> None:
        with self._lock:  # one model serves many web threads
            self._cache[key] = value
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)

    def _remember_derived(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._derived[key] = value
            while len(self._derived) > MAX_CACHED:
                self._derived.popitem(last=False)

    def _road_costs(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shortest distances and minutes from every placed point, per road mask."""
        key = ("road", np.packbits(mask).tobytes())
        hit: tuple[np.ndarray, np.ndarray] | None = self._cache.get(key)
        if hit is None:
            dist = self.road.dijkstra(self._src_nodes, mask=mask)
            gate_nodes = (
                self._src_nodes[np.unique(self._gate_row[self._gate_row >= 0])]
                if len(self._gate_row)
                else np.zeros(0, np.intp)
            )
            minutes = (
                self.road.dijkstra(self._src_nodes, mask=mask, weight="minutes")
                if len(gate_nodes)
                else np.zeros((len(self._src_nodes), self.road.n_nodes))
            )
            hit = (dist, minutes)
            self._remember(key, hit)
        return hit

    def _cached(self, ukey: bytes) -> Evaluation | None:
        """The evaluation of ``ukey`` if cached; a pending one is patched now (once)."""
        with self._lock:
            hit = self._evals.get(ukey)
            if hit is not None:
                self._evals.move_to_end(ukey)
                return hit[1]
            pending = self._pending.get(ukey)
        if pending is None:
            return None
        # Outside the model's lock: patching evaluates plots.
        ev: Evaluation = pending[1].get(cast("ServicingModel", self))
        with self._lock:
            if self._pending.get(ukey) is pending:
                del self._pending[ukey]
                self._store_eval(ukey, pending[0], ev)
        return ev

    def _store_eval(self, ukey: bytes, usable: np.ndarray, ev: Evaluation) -> None:
        self._evals[ukey] = (usable, ev)
        self._evals.move_to_end(ukey)
        while len(self._evals) + len(self._pending) > MAX_EVALUATIONS:
            (self._pending or self._evals).popitem(last=False)

    def cached_plot_eval(self, scen: Scenario) -> Evaluation | None:
        """Every plot's evaluation under ``scen`` if it is cached, else None."""
        return self._cached(scen.ukey)

    def plot_eval(self, scen: Scenario) -> Evaluation:
        """Every plot's evaluation under ``scen`` (without fits; treat as read-only).

        Cached per set of usable assets; a new set is derived from the cached one that
        differs in the fewest assets, answering again only what those assets serve.
        """
        hit = self._cached(scen.ukey)
        if hit is not None:
            return hit
        with self._lock:
            candidates = [(k, e[0]) for k, e in (*self._evals.items(), *self._pending.items())]
        near = min(
            (c for c in candidates if len(c[1]) == len(scen.usable)),
            key=lambda c: int(np.count_nonzero(c[1] != scen.usable)),
            default=None,
        )
        near_ev = None if near is None else self._cached(near[0])
        if near is None or near_ev is None:
            ev = evaluate(cast("ServicingModel", self), self._plot_sites, scen)
        else:
            ev = derive(cast("ServicingModel", self), self._plot_sites, near_ev, near[1], scen)
        with self._lock:
            self._store_eval(scen.ukey, scen.usable, ev)
        return ev


def _plot_columns(plots: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the model reads of plots: power and water demand, status, rail need."""
    demand = plots.reindex(columns=["power_kw", "water_m3d"])
    power = pd.to_numeric(demand["power_kw"], errors="coerce").to_numpy(float)
    water = pd.to_numeric(demand["water_m3d"], errors="coerce").to_numpy(float)
    status = plots["status"].astype(object).to_numpy() if len(plots) else np.zeros(0, object)
    rail_need = (
        plots["rail_need"] if "rail_need" in plots.columns else pd.Series(False, index=plots.index)
    )
    return power, water, status, rail_need.astype("boolean").fillna(False).to_numpy(bool)


def frame_of(snapshot: Mapping[str, pd.DataFrame], name: str) -> gpd.GeoDataFrame:
    """Layer ``name`` of a snapshot as a GeoDataFrame with every schema column (empty if
    missing), indexed 0..n-1."""
    frame = snapshot.get(name)
    layer = LAYERS[name]
    if frame is None:
        frame = gpd.GeoDataFrame({f: [] for f in layer.names}, geometry=[], crs=None)
    frame = frame.reset_index(drop=True)
    if not isinstance(frame, gpd.GeoDataFrame):
        frame = gpd.GeoDataFrame(frame, geometry="geometry")
    for column in layer.names:
        if column not in frame.columns:
            frame[column] = None
    return frame


def geometries(frame: pd.DataFrame) -> np.ndarray:
    """A frame's geometries as an object array."""
    return np.asarray(frame.geometry.values, dtype=object)


def _due(value: Any, layer: str, aid: str) -> str | None:
    text = clean_text(value)
    if text is None:
        return None
    try:
        return parse_date(text[:10]).isoformat()
    except ValueError:
        raise ValueError(f"{layer} {aid}: due {text!r} is not a date (YYYY-MM-DD)") from None
