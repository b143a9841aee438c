"""What each plot (or a drawn parcel) can really connect to — road, rail, power, water,
storm sewer, gas — as recorded, as of a date, or under a what-if.

Pure functions over a snapshot (``{layer: GeoDataFrame}`` from
``Store.snapshot()``): no web framework, no store I/O.  Build one
:class:`ServicingModel` per snapshot (networks and indexes are built once) and
ask it as many questions as needed::

    model = ServicingModel(store.snapshot())
    doc = model.document(as_of="2022-11-01")          # the CLI's --json document
    rec = model.answer(["P-014"])[0]
    for line in explain(rec):
        print(line)

Rules (the documented planning assumptions)
-------------------------------------------
* Only assets whose (effective) status is ``operational`` count.  A ``restricted``
  or ``closed`` rail line cuts the rail network; a substation ``under_repair``
  gives no new capacity; a ``not_commissioned`` sewer does not count.
* **Road**: a plot *fronts* a road when an operational road lies within
  ``frontage_m`` (25 m) of its boundary.  It enters the network at the nearest
  point of that road; the gate reached is the nearest operational gate by
  network distance from there, travel time along the fastest route to that gate
  at the class speeds of :data:`geo.network.ROAD_SPEEDS_KMH`.
* **Rail**: a station or siding is *usable* when it is operational and joined to
  an operational main line through operational rail lines only.  A plot has rail
  access when it fronts a usable siding (within ``frontage_m``) or a usable
  station lies within ``rail_reach_m`` (1500 m) along the roads.  When not, the
  nearest station/siding within reach is named with what blocks it: the station
  itself, and the non-operational lines on the way to the main line that crosses
  the fewest of them.
* **Power**: the serving substation is the nearest *operational* one by corridor
  distance — along the road network from the plot's road entry point to the
  road node nearest the substation (plus that straight gap).  Headroom in kW is
  ``(cap_mva - load_mva) * 1000 * power_factor`` minus the ``power_kw`` of plots
  ``reserved`` or ``allocated`` that it serves (occupied plots are in
  ``load_mva`` already); a non-operational substation gives 0.  Nearer
  substations passed over are listed (``bypassed``).
* **Water, storm sewer, gas**: the nearest operational main within
  ``connect_m`` (200 m, straight line from the plot boundary).  Water headroom is
  ``cap_m3d - load_m3d`` minus the ``water_m3d`` of reserved/allocated plots it
  serves.  A missing capacity or demand gives ``null`` headroom/fit, which does
  not block readiness.
* **As of a date** ``D``: an asset whose ``due`` is on or before ``D`` counts as
  operational and answers that rely on it are ``projected``.  An asset whose
  ``due`` is before *today* while its recorded status is still not operational
  is ``overdue`` (today = system date, ``ZONEPLAN_TODAY`` overrides).
* **What-if**: ``{(layer, asset_id): status}`` flips statuses without saving,
  applied after the date projection; flipping an asset to operational also makes
  answers relying on it ``projected``.
* **Readiness** (``ready``): plots need road, power (and fitting demand) and
  water (``required``; storm sewer and gas on request) and rail when ``rail_need``.  ``"now"`` when all
  are met as recorded (with the what-if); else the first due date at which,
  projecting every asset due by then, all are met — the latest due date among the
  assets the plot waits for; ``"unknown"`` when that never happens (an asset
  without a due date, no network nearby, no capacity).

Every message template is marked ``N_("...")`` for pybabel extraction and is
formatted only after translation, so :func:`explain` takes a ``gettext``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.index import SpatialIndex
from geo.layers import ASSET_LAYERS, ASSET_STATUSES, LAYERS
from geo.network import DEFAULT_SPEED_KMH, SNAP_TOLERANCE_M, build_network
from geo.validate import parse_date

__all__ = [
    "N_",
    "ServicingModel",
    "Scenario",
    "describe",
    "explain",
    "readiness_basis",
    "today",
    "parse_what_if",
    "UTILITIES",
    "REQUIRED",
    "FRONTAGE_M",
    "CONNECT_M",
    "RAIL_REACH_M",
    "POWER_FACTOR",
    "STATION_SNAP_M",
    "COUNTED_PLOT_STATUSES",
]


def N_(s: str) -> str:
    """Mark a message template for translation (no-op; pybabel keyword ``N_``)."""
    return s


UTILITIES: tuple[str, ...] = ("road", "rail", "power", "water", "storm", "gas")
#: Utilities a plot needs to be ready to build (rail only when the plot's rail_need).
# Storm sewers and gas are reported for every plot but do not hold back readiness:
# the zone's storm sewer has never worked (and has no due date), yet plots are let
# and built on; pass required=(..., "storm") to demand it.
REQUIRED: tuple[str, ...] = ("road", "power", "water")
FRONTAGE_M = 25.0
CONNECT_M: dict[str, float] = {"water": 200.0, "storm": 200.0, "gas": 200.0}
RAIL_REACH_M = 1500.0
POWER_FACTOR = 0.9
#: A station farther than this from every rail node is not on the rail network.
STATION_SNAP_M = 100.0
#: Plot statuses whose demand is committed against headroom (occupied plots are
#: in the recorded load already).
COUNTED_PLOT_STATUSES: tuple[str, ...] = ("reserved", "allocated")
USABLE = "operational"
_MAIN_LAYERS = {"water": "water_mains", "storm": "storm_sewers", "gas": "gas_mains"}
# Reasons that depend only on the utility, code and blockers (shared between plots).
_CACHED_REASONS = frozenset(
    {"blocked", "none_within", "out_of_reach", "no_road", "no_substation", "unreachable"}
)

UTILITY_WORDS = {
    "road": N_("road"),
    "rail": N_("rail"),
    "power": N_("power"),
    "water": N_("water"),
    "storm": N_("storm sewer"),
    "gas": N_("gas"),
}
STATUS_WORDS = {
    "operational": N_("operational"),
    "restricted": N_("restricted"),
    "closed": N_("closed"),
    "under_repair": N_("under repair"),
    "not_commissioned": N_("not commissioned"),
    "planned": N_("planned"),
}
ASSET_NOUNS = {
    "roads": N_("road"),
    "gates": N_("gate"),
    "rail_lines": N_("line"),
    "rail_stations": N_("station"),
    "substations": N_("substation"),
    "power_lines": N_("power line"),
    "water_mains": N_("water main"),
    "storm_sewers": N_("storm sewer"),
    "gas_mains": N_("gas main"),
    "prot_zones": N_("zone"),
}


def today() -> dt.date:
    """Today's date for overdue flags: ``ZONEPLAN_TODAY`` (YYYY-MM-DD) or the system date."""
    env = os.environ.get("ZONEPLAN_TODAY")
    if env:
        try:
            return parse_date(env)
        except ValueError as err:
            raise ValueError(f"ZONEPLAN_TODAY: {err}") from None
    return dt.date.today()


_system_today = today


def _to_date(value: Any, what: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return parse_date(value)
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from None


def parse_what_if(items: Iterable[str]) -> dict[tuple[str, str], str]:
    """Parse ``layer:asset_id=status`` texts (the CLI's ``--what-if``) into a what-if.

    Raises
    ------
    ValueError
        Naming every text that does not have that form.
    """
    out: dict[tuple[str, str], str] = {}
    bad = []
    for text in items:
        left, eq, status = str(text).partition("=")
        layer, colon, asset = left.partition(":")
        if not (eq and colon and layer.strip() and asset.strip() and status.strip()):
            bad.append(text)
            continue
        out[(layer.strip(), asset.strip())] = status.strip()
    if bad:
        raise ValueError(
            "what-if must read layer:asset_id=status (e.g. substations:SS-12="
            "operational); got " + ", ".join(repr(b) for b in bad)
        )
    return out


@dataclass(frozen=True, eq=False)
class Scenario:
    """Effective asset statuses for one question (as recorded, as of a date, what-if).

    Attributes
    ----------
    as_of : date or None
    what_if : dict
        ``{(layer, asset_id): status}`` as given.
    status : ndarray
        Effective status of every asset (rows of the model's asset table).
    projected : ndarray of bool
        Counted operational although not recorded so (due by ``as_of`` or what-if).
    overrides : dict
        ``{(layer, asset_id): status}`` wherever the effective status differs
        from the recorded one (what the networks mask with).
    key : tuple
        Hashable identity for caches.
    """

    as_of: dt.date | None
    what_if: dict
    status: np.ndarray
    projected: np.ndarray
    overrides: dict
    key: tuple


@dataclass(eq=False)
class _Sites:
    """Scenario-independent geometry of polygons to be serviced."""

    geoms: np.ndarray
    road_pairs: tuple[np.ndarray, np.ndarray, np.ndarray]  # site, edge, gap
    siding_pairs: tuple[np.ndarray, np.ndarray, np.ndarray]  # site, rail edge, gap
    main_pairs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # site, feature, dist
    road_t: np.ndarray = field(default=None)

    @property
    def n(self) -> int:
        return len(self.geoms)

    def subset(self, idx: np.ndarray) -> _Sites:
        """The sites at positions ``idx`` (renumbered 0..len(idx)-1)."""
        idx = np.asarray(idx, dtype=np.intp)
        new = np.full(self.n, -1, np.intp)
        new[idx] = np.arange(len(idx))

        def cut(pairs):
            left = pairs[0]
            keep = new[left] >= 0 if len(left) else np.zeros(0, bool)
            return (new[left[keep]], *(a[keep] for a in pairs[1:])), keep

        (road, keep) = cut(self.road_pairs)
        order = np.argsort(road[0], kind="stable")
        road_t = self.road_t[keep][order]
        road = tuple(a[order] for a in road)
        sid, _ = cut(self.siding_pairs)
        order = np.argsort(sid[0], kind="stable")
        sid = tuple(a[order] for a in sid)
        mains = {}
        for u, pairs in self.main_pairs.items():
            m, _ = cut(pairs)
            order = np.argsort(m[0], kind="stable")
            mains[u] = tuple(a[order] for a in m)
        return _Sites(self.geoms[idx], road, sid, mains, road_t)


def _col(values: np.ndarray, digits: int) -> list:
    """Rounded numbers as a list, None where missing / NaN / inf (JSON-safe)."""
    a = np.round(np.asarray(values, dtype=float), digits)
    out = a.astype(object)
    out[~np.isfinite(a)] = None
    return out.tolist()


def _first(keys: np.ndarray) -> np.ndarray:
    if len(keys) == 0:
        return np.zeros(0, np.intp)
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])


def _num(value: Any, digits: int = 1) -> float | None:
    """A JSON-safe rounded number (None for missing / NaN / inf)."""
    if value is None or value is pd.NA:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits)


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


class ServicingModel:
    """Servicing answers for one snapshot; networks and indexes are built once.

    Parameters
    ----------
    snapshot : mapping of layer name to (Geo)DataFrame
        As returned by ``Store.snapshot()`` (working CRS).  ``plots`` is
        required; missing infrastructure layers count as empty.
    power_factor : float
        Converts MVA to kW of headroom (0 < pf <= 1).
    today : date or str, optional
        The date overdue flags compare with (default :func:`today`).
    frontage_m, rail_reach_m : float
        See the module rules.
    connect_m : mapping, optional
        Connection distance by utility (``water``, ``storm``, ``gas``).
    required : sequence of str
        Utilities a plot needs to be ready (rail is added per plot's rail_need).
    tolerance : float
        Snapping tolerance of the road and rail networks, metres.

    Raises
    ------
    ValueError
        For a missing plots layer or out-of-range options.
    """

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
        self.today = _to_date(today, "today") if today is not None else _system_today()
        self.frontage_m = float(frontage_m)
        self.rail_reach_m = float(rail_reach_m)
        self.connect_m = {**CONNECT_M, **(connect_m or {})}
        self.required = tuple(required)
        self.layers = {name: self._frame(snapshot, name) for name in ("plots", *ASSET_LAYERS)}
        plots = self.layers["plots"]
        self.plot_ids = (
            plots["plot_id"].astype(str).to_numpy() if len(plots) else np.zeros(0, object)
        )
        self._plot_pos = {pid: i for i, pid in enumerate(self.plot_ids)}
        self._build_assets()
        self.road = build_network({"roads": self.layers["roads"]}, tolerance=tolerance)
        self.rail = build_network({"rail_lines": self.layers["rail_lines"]}, tolerance=tolerance)
        self._index = {
            u: SpatialIndex(self.layers[lyr].geometry.values) for u, lyr in _MAIN_LAYERS.items()
        }
        self._siding_edges = (
            np.flatnonzero(self.rail.kind == "siding")
            if self.rail.n_edges
            else np.zeros(0, np.intp)
        )
        self._siding_index = SpatialIndex(self.rail.geometry[self._siding_edges])
        self._place_points()
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._plot_sites = self._sites(np.asarray(plots.geometry.values, dtype=object))
        demand = plots.reindex(columns=["power_kw", "water_m3d"])
        self._plot_power = pd.to_numeric(demand["power_kw"], errors="coerce").to_numpy(float)
        self._plot_water = pd.to_numeric(demand["water_m3d"], errors="coerce").to_numpy(float)
        self._plot_status = (
            plots["status"].astype(object).to_numpy() if len(plots) else np.zeros(0, object)
        )
        rail_need = (
            plots["rail_need"]
            if "rail_need" in plots.columns
            else pd.Series(False, index=plots.index)
        )
        self._plot_rail_need = rail_need.astype("boolean").fillna(False).to_numpy(bool)
        self._counted_sites = self._plot_sites.subset(
            np.flatnonzero(np.isin(self._plot_status, COUNTED_PLOT_STATUSES))
        )

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _frame(snapshot: Mapping[str, pd.DataFrame], name: str) -> gpd.GeoDataFrame:
        frame = snapshot.get(name)
        layer = LAYERS[name]
        if frame is None:
            frame = gpd.GeoDataFrame({f: [] for f in layer.names}, geometry=[], crs=None)
        frame = frame.reset_index(drop=True)
        if not isinstance(frame, gpd.GeoDataFrame):
            frame = gpd.GeoDataFrame(frame, geometry="geometry")
        for col in layer.names:
            if col not in frame.columns:
                frame[col] = None
        return frame

    def _build_assets(self) -> None:
        rows, self._asset_slice = [], {}
        start = 0
        for name in ASSET_LAYERS:
            frame = self.layers[name]
            key = LAYERS[name].key
            part = pd.DataFrame(
                {
                    "layer": name,
                    "asset_id": frame[key].astype(str).to_numpy() if len(frame) else [],
                    "name": frame["name"].astype(object).to_numpy() if len(frame) else [],
                    "status": frame["status"].astype(object).to_numpy() if len(frame) else [],
                    "due": frame["due"].astype(object).to_numpy() if len(frame) else [],
                    "note": frame["note"].astype(object).to_numpy() if len(frame) else [],
                }
            )
            rows.append(part)
            self._asset_slice[name] = slice(start, start + len(part))
            start += len(part)
        assets = pd.concat(rows, ignore_index=True)
        assets["due"] = pd.Series(
            [
                self._due(v, layer, aid)
                for v, layer, aid in zip(assets["due"], assets["layer"], assets["asset_id"])
            ],
            index=assets.index,
            dtype=object,
        )
        assets["status"] = pd.Series(
            [_text(v) or USABLE for v in assets["status"]], index=assets.index, dtype=object
        )
        bad = assets.loc[~assets["status"].isin(ASSET_STATUSES)]
        if len(bad):
            raise ValueError(
                "unknown asset statuses: "
                + ", ".join(f"{r.layer}:{r.asset_id}={r.status!r}" for r in bad.itertuples())
            )
        rec_ok = np.asarray(assets["status"].to_numpy(object) == USABLE, dtype=bool)
        due = assets["due"].to_numpy(object)
        today_iso = self.today.isoformat()
        late = np.array([d is not None and d < today_iso for d in due], dtype=bool)
        assets["overdue"] = late & ~rec_ok
        self.assets = assets
        self._a = {
            c: assets[c].tolist()
            for c in ("layer", "asset_id", "name", "status", "note", "due", "overdue")
        }
        self._a["name"] = [_text(v) for v in self._a["name"]]
        self._a["note"] = [_text(v) for v in self._a["note"]]
        self._asset_pos = {
            (l, a): i for i, (l, a) in enumerate(zip(assets["layer"], assets["asset_id"]))
        }

    @staticmethod
    def _due(value: Any, layer: str, aid: str) -> str | None:
        text = _text(value)
        if text is None:
            return None
        try:
            return parse_date(text[:10]).isoformat()
        except ValueError:
            raise ValueError(f"{layer} {aid}: due {text!r} is not a date (YYYY-MM-DD)") from None

    def _layer_ids(self, name: str) -> np.ndarray:
        return self.assets["asset_id"].to_numpy()[self._asset_slice[name]]

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

    def _sites(self, geoms: np.ndarray) -> _Sites:
        geoms = np.asarray(geoms, dtype=object)
        left, right, gap = self.road.edge_index.within(geoms, self.frontage_m)
        road_t = self.road.locate_on(geoms[left], right) if len(left) else np.zeros(0)
        sl, sr, sg = self._siding_index.within(geoms, self.frontage_m)
        mains = {u: idx.within(geoms, self.connect_m[u]) for u, idx in self._index.items()}
        return _Sites(geoms, (left, right, gap), (sl, self._siding_edges[sr], sg), mains, road_t)

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
        as_of = _to_date(as_of, "as of")
        what_if = dict(what_if or {})
        problems = []
        for key, status in what_if.items():
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
        rec = self.assets["status"].to_numpy(object)
        status = rec.copy()
        if as_of is not None:
            due = self.assets["due"].to_numpy(object)
            iso = as_of.isoformat()
            hit = np.array([d is not None and d <= iso for d in due], dtype=bool)
            status[hit] = USABLE
        for (layer, aid), st in what_if.items():
            status[self._asset_pos[(layer, str(aid))]] = st
        projected = (status == USABLE) & (rec != USABLE)
        changed = np.flatnonzero(status != rec)
        overrides = {
            (self.assets.at[i, "layer"], self.assets.at[i, "asset_id"]): status[i] for i in changed
        }
        key = tuple(sorted(overrides.items()))
        return Scenario(
            as_of,
            {(k[0], str(k[1])): v for k, v in what_if.items()},
            status,
            projected,
            overrides,
            key,
        )

    def layer_status(
        self,
        layer: str,
        as_of: dt.date | str | None = None,
        what_if: Mapping[tuple[str, str], str] | None = None,
    ) -> np.ndarray:
        """Effective status of every asset of ``layer`` (rows of ``self.layers[layer]``)
        as of a date and under a what-if, by the rules of :meth:`scenario`."""
        return self._status(self.scenario(as_of, what_if), layer)

    def _status(self, scen: Scenario, layer: str) -> np.ndarray:
        return scen.status[self._asset_slice[layer]]

    def _road_costs(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = ("road", np.packbits(mask).tobytes())
        hit = self._cache.get(key)
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

    def _remember(self, key, value) -> None:
        with self._lock:  # one model serves many web threads
            self._cache[key] = value
            while len(self._cache) > 32:
                self._cache.popitem(last=False)

    # -------------------------------------------------------------- evaluation
    def _evaluate(
        self, sites: _Sites, scen: Scenario, only: Sequence[str] = UTILITIES
    ) -> dict[str, dict[str, np.ndarray]]:
        road = self._eval_road(sites, scen)
        out = {"road": road}
        if "rail" in only:
            out["rail"] = self._eval_rail(sites, scen, road)
        if "power" in only:
            out["power"] = self._eval_power(sites, scen, road)
        for u in _MAIN_LAYERS:
            if u in only:
                out[u] = self._eval_main(u, sites, scen)
        return out

    def _eval_road(self, sites: _Sites, scen: Scenario) -> dict[str, np.ndarray]:
        n = sites.n
        net = self.road
        mask = self._cache.get(("roadmask", scen.key))
        if mask is None:
            mask = net.mask(scen.overrides) if net.n_edges else np.zeros(0, bool)
            self._remember(("roadmask", scen.key), mask)
        left, right, gap = sites.road_pairs
        keep = mask[right] if len(right) else np.zeros(0, bool)
        l, r, g, t = left[keep], right[keep], gap[keep], sites.road_t[keep]
        f = _first(l)
        edge = np.full(n, -1, np.intp)
        egap = np.full(n, np.inf)
        et = np.full(n, np.nan)
        edge[l[f]], egap[l[f]], et[l[f]] = r[f], g[f], t[f]
        missing = np.flatnonzero(edge < 0)
        if len(missing) and mask.any():
            e2, g2, t2 = net.locate(sites.geoms[missing], mask=mask)
            edge[missing], egap[missing], et[missing] = e2, g2, t2
        fronts = (edge >= 0) & (egap <= self.frontage_m)
        dist_src, min_src = (
            self._road_costs(mask) if net.n_edges else (np.zeros((0, 0)), np.zeros((0, 0)))
        )
        gate_ok = (self._status(scen, "gates") == USABLE) & (self._gate_row >= 0)
        G = len(self._gate_row)
        gd = np.full((G, n), np.inf)
        gm = np.full((G, n), np.inf)
        if G and net.n_edges and gate_ok.any():
            rows = self._gate_row[gate_ok]
            gd[gate_ok] = net.from_nodes(dist_src[rows], edge, et) + self._gate_gap[gate_ok, None]
            gm[gate_ok] = net.from_nodes(min_src[rows], edge, et, weight="minutes") + (
                self._gate_gap[gate_ok, None] / (DEFAULT_SPEED_KMH * 1000.0 / 60.0)
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
        blockers: dict[int, list[int]] = {}
        todo = np.flatnonzero(~reach)
        if len(todo) and net.n_edges and G:
            gates_any = self._gate_row >= 0
            src_nodes = self._gate_node[gates_any]
            e_any, _, t_any = net.locate(sites.geoms[todo])
            targets = np.where(
                t_any < 0.5, net.u[np.maximum(e_any, 0)], net.v[np.maximum(e_any, 0)]
            )
            targets = np.where(e_any >= 0, targets, -1)
            found = net.blocking_edges(src_nodes, targets, mask)
            gate_by_node = {}
            for gi in np.flatnonzero(gates_any)[::-1]:
                gate_by_node[int(self._gate_node[gi])] = gi
            for k, site in enumerate(todo):
                if found[k] is None:
                    continue
                edges, origin = found[k]
                keys = []
                if e_any[k] >= 0 and not mask[e_any[k]]:
                    keys.append(self._asset_pos[("roads", net.asset_id[e_any[k]])])
                keys += [self._asset_pos[("roads", a)] for a in dict.fromkeys(net.asset_id[edges])]
                gi = gate_by_node.get(origin)
                if gi is not None and not gate_ok[gi]:
                    keys.append(self._asset_slice["gates"].start + gi)
                blockers[site] = list(dict.fromkeys(keys))
        if G and not gate_ok.any():
            closed = [self._asset_slice["gates"].start + i for i in range(G)]
            for site in todo.tolist():
                blockers[site] = list(dict.fromkeys(blockers.get(site, []) + closed))
        road_id = np.where(
            edge >= 0, net.asset_id[np.maximum(edge, 0)] if net.n_edges else None, None
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

    def _rail_mask(self, scen: Scenario) -> tuple[np.ndarray, np.ndarray, dict[int, list[int]]]:
        """Usable rail edges: operational lines, minus the non-main-line edges meeting a
        station that is not operational (a closed station stops traffic through its
        yard to the sidings, not on the main line).

        Returns ``(mask, line_ok, station_rows)``: the mask, the lines' own status
        test, and for every edge cut by a station the station asset rows.
        """
        net = self.rail
        if net.n_edges == 0:
            return np.zeros(0, bool), np.zeros(0, bool), {}
        line_ok = net.mask(scen.overrides)
        st_status = self._status(scen, "rail_stations")
        base = self._asset_slice["rail_stations"].start
        cut: dict[int, list[int]] = {}
        not_main = net.kind != "mainline"
        for i, node in enumerate(self._st_rail.tolist()):
            if node < 0 or st_status[i] == USABLE:
                continue
            for e in np.flatnonzero(((net.u == node) | (net.v == node)) & not_main).tolist():
                cut.setdefault(e, []).append(base + i)
        mask = line_ok.copy()
        mask[list(cut)] = False
        return mask, line_ok, cut

    def _rail_edge_keys(
        self, edges: Iterable[int], line_ok: np.ndarray, cut: Mapping[int, list[int]]
    ) -> list[int]:
        keys = []
        for e in edges:
            if not line_ok[e]:
                keys.append(self._asset_pos[("rail_lines", self.rail.asset_id[e])])
            keys += cut.get(e, [])
        return list(dict.fromkeys(keys))

    def _rail_blockers(self, scen: Scenario, rmask: np.ndarray) -> tuple[dict, dict]:
        """Blockers of each station and each siding edge (asset rows), per scenario."""
        key = ("railblk", scen.key)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        net = self.rail
        st_status = self._status(scen, "rail_stations")
        st_base = self._asset_slice["rail_stations"].start
        st_block: dict[int, list[int]] = {}
        targets = (
            np.r_[self._st_rail, net.u[self._siding_edges]]
            if net.n_edges
            else np.full(len(self._st_rail), -1)
        )
        paths = (
            net.blocking_edges(self._main_nodes_all, targets, rmask)
            if net.n_edges and len(self._main_nodes_all)
            else [None] * len(targets)
        )
        _, line_ok, cut = self._rail_mask(scen)
        for i in range(len(self._st_rail)):
            keys = [st_base + i] if st_status[i] != USABLE else []
            if self._st_rail[i] < 0 or paths[i] is None:
                st_block[i] = keys + [-1]  # -1: not joined to a main line
                continue
            keys += self._rail_edge_keys(paths[i][0].tolist(), line_ok, cut)
            st_block[i] = list(dict.fromkeys(keys))
        sd_block: dict[int, list[int]] = {}
        for j, e in enumerate(self._siding_edges.tolist()):
            p = paths[len(self._st_rail) + j]
            keys = self._rail_edge_keys([e], line_ok, cut)
            if p is None:
                sd_block[e] = keys + [-1]
                continue
            keys += self._rail_edge_keys(p[0].tolist(), line_ok, cut)
            sd_block[e] = list(dict.fromkeys(keys))
        hit = (st_block, sd_block)
        self._remember(key, hit)
        return hit

    def _eval_rail(self, sites: _Sites, scen: Scenario, road: dict) -> dict[str, np.ndarray]:
        n = sites.n
        net = self.rail
        S = len(self._st_rail)
        rmask = self._rail_mask(scen)[0]
        if net.n_edges:
            comp = net.components(rmask)
            live_main = self._main_edges[rmask[self._main_edges]]
            labels = np.unique(comp[np.r_[net.u[live_main], net.v[live_main]]])
            joined_node = np.isin(comp, labels)
        else:
            joined_node = np.zeros(0, bool)
        st_status = self._status(scen, "rail_stations")
        st_ok = (st_status == USABLE) & (self._st_rail >= 0)
        if S and net.n_edges:
            st_ok &= joined_node[np.maximum(self._st_rail, 0)]
        else:
            st_ok &= False
        sd = np.full((S, n), np.inf)
        placed = self._st_row >= 0
        if S and placed.any() and self.road.n_edges:
            dist_src, _ = self._road_costs(road["mask"])
            sd[placed] = (
                self.road.from_nodes(dist_src[self._st_row[placed]], road["edge"], road["t"])
                + self._st_road_gap[placed, None]
            )
        within = sd <= self.rail_reach_m
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
            f = _first(l)
            l, e, g = l[f], e[f], g[f]
            better = g < best[l]
            best[l[better]] = g[better]
            via_pos[l[better]] = e[better]
            via_kind[l[better]] = "siding"
        ok = np.isfinite(best)
        code = np.where(ok, "ok", "out_of_reach").astype(object)
        blockers: dict[int, list[int]] = {}
        dist = best.copy()
        todo = np.flatnonzero(~ok)
        if len(todo):
            # The nearest station within reach or fronted siding, whatever its status,
            # and what blocks it (shared per station / siding).
            st_block, sd_block = self._rail_blockers(scen, rmask)
            cand = np.where(within[:, todo], sd[:, todo], np.inf)
            k = np.argmin(cand, axis=0) if S else np.zeros(len(todo), np.intp)
            d = cand[k, np.arange(len(todo))] if S else np.full(len(todo), np.inf)
            g = np.full(n, np.inf)
            e_any = np.full(n, -1, np.intp)
            if len(se):
                f = _first(sl)
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
                    shared = [b for b in blk if b >= 0]
                    blockers.update(dict.fromkeys(where.tolist(), shared))
        st_ids = np.asarray(self._layer_ids("rail_stations"), dtype=object)
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

    def _eval_power(self, sites: _Sites, scen: Scenario, road: dict) -> dict[str, np.ndarray]:
        n = sites.n
        K = len(self._sub_row)
        kd = np.full((K, n), np.inf)
        placed = self._sub_row >= 0
        if K and placed.any() and self.road.n_edges:
            dist_src, _ = self._road_costs(road["mask"])
            kd[placed] = (
                self.road.from_nodes(dist_src[self._sub_row[placed]], road["edge"], road["t"])
                + self._sub_gap[placed, None]
            )
        usable = self._status(scen, "substations") == USABLE
        good = np.where(usable[:, None], kd, np.inf)
        sub = np.argmin(good, axis=0) if K else np.full(n, -1)
        dist = good[sub, np.arange(n)] if K else np.full(n, np.inf)
        ok = np.isfinite(dist)
        any_sub = np.argmin(kd, axis=0) if K else np.full(n, -1)
        any_dist = kd[any_sub, np.arange(n)] if K else np.full(n, np.inf)
        code = np.where(
            ok,
            "ok",
            np.where(
                np.isfinite(any_dist), "blocked", "no_substation" if K == 0 else "unreachable"
            ),
        )
        sub = np.where(ok, sub, np.where(np.isfinite(any_dist), any_sub, -1))
        dist = np.where(ok, dist, any_dist)
        base = self._asset_slice["substations"].start
        blocked = np.flatnonzero(code == "blocked")
        blockers = {
            site: [row] for site, row in zip(blocked.tolist(), (base + sub[blocked]).tolist())
        }
        bypassed: dict[int, list[int]] = {}
        if K:
            kk, ss = np.nonzero(~usable[:, None] & (kd < np.where(ok, dist, -np.inf)[None, :]))
            order = np.lexsort((kd[kk, ss], ss))
            for k, s in zip((base + kk[order]).tolist(), ss[order].tolist()):
                bypassed.setdefault(s, []).append(k)
        return {
            "ok": ok,
            "sub": sub,
            "distance": dist,
            "code": code,
            "blockers": blockers,
            "bypassed": bypassed,
            "sub_dist": kd,
        }

    def _eval_main(self, utility: str, sites: _Sites, scen: Scenario) -> dict[str, np.ndarray]:
        n = sites.n
        layer = _MAIN_LAYERS[utility]
        l, r, d = sites.main_pairs[utility]
        usable = self._status(scen, layer) == USABLE
        main = np.full(n, -1, np.intp)
        dist = np.full(n, np.inf)
        keep = usable[r] if len(r) else np.zeros(0, bool)
        f = _first(l[keep])
        main[l[keep][f]], dist[l[keep][f]] = r[keep][f], d[keep][f]
        ok = main >= 0
        code = np.where(ok, "ok", "none_within").astype(object)
        f = _first(l)
        fl, fr, fd = l[f], r[f], d[f]
        blocked = ~ok[fl]
        sb = fl[blocked]
        main[sb], dist[sb], code[sb] = fr[blocked], fd[blocked], "blocked"
        base = self._asset_slice[layer].start
        blockers = {site: [row] for site, row in zip(sb.tolist(), (base + fr[blocked]).tolist())}
        return {"ok": ok, "main": main, "distance": dist, "code": code, "blockers": blockers}

    # ------------------------------------------------------------- headroom
    def _plot_eval(self, scen: Scenario) -> dict:
        key = ("plots", scen.key)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._evaluate(self._plot_sites, scen)
            self._remember(key, hit)
        return hit

    def _headroom(self, scen: Scenario) -> dict[str, dict[str, np.ndarray]]:
        key = ("headroom", scen.key)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        counted = np.isin(self._plot_status, COUNTED_PLOT_STATUSES)
        full = self._cache.get(("plots", scen.key))
        if full is not None:
            power, water = full["power"], full["water"]
            p_sub, p_ok = power["sub"][counted], power["ok"][counted]
            w_main, w_ok = water["main"][counted], water["ok"][counted]
        else:  # only the plots whose demand is committed need answering
            ev = self._evaluate(self._counted_sites, scen, only=("power", "water"))
            p_sub, p_ok = ev["power"]["sub"], ev["power"]["ok"]
            w_main, w_ok = ev["water"]["main"], ev["water"]["ok"]
        out = {}
        subs = self.layers["substations"]
        K = len(subs)
        cap = pd.to_numeric(subs["cap_mva"], errors="coerce").to_numpy(float)
        load = pd.to_numeric(subs["load_mva"], errors="coerce").to_numpy(float)
        usable = self._status(scen, "substations") == USABLE
        base = np.where(usable, (cap - load) * 1000.0 * self.power_factor, 0.0)
        demand = np.nan_to_num(self._plot_power[counted])
        committed = (
            np.bincount(p_sub[p_ok], weights=demand[p_ok], minlength=K) if K else np.zeros(0)
        )
        count = np.bincount(p_sub[p_ok], minlength=K) if K else np.zeros(0, int)
        out["power"] = {
            "base": base,
            "committed": committed,
            "headroom": base - committed,
            "usable": usable,
            "served": count,
            "cap": cap,
            "load": load,
        }
        mains = self.layers["water_mains"]
        M = len(mains)
        cap = pd.to_numeric(mains["cap_m3d"], errors="coerce").to_numpy(float)
        load = pd.to_numeric(mains["load_m3d"], errors="coerce").to_numpy(float)
        usable = self._status(scen, "water_mains") == USABLE
        base = np.where(usable, cap - np.nan_to_num(load), 0.0)
        demand = np.nan_to_num(self._plot_water[counted])
        committed = (
            np.bincount(w_main[w_ok], weights=demand[w_ok], minlength=M) if M else np.zeros(0)
        )
        count = np.bincount(w_main[w_ok], minlength=M) if M else np.zeros(0, int)
        out["water"] = {
            "base": base,
            "committed": committed,
            "headroom": base - committed,
            "usable": usable,
            "served": count,
            "cap": cap,
            "load": load,
        }
        self._remember(key, out)
        return out

    def _fits(
        self, ev: dict, scen: Scenario, power: np.ndarray, water: np.ndarray, status: np.ndarray
    ) -> None:
        """Add headroom, demand and fit to the power and water answers (in place)."""
        head = self._headroom(scen)
        counted = np.isin(status, COUNTED_PLOT_STATUSES)
        occupied = status == "occupied"
        for u, demand, idx in (("power", power, "sub"), ("water", water, "main")):
            e = ev[u]
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

    def _satisfied(self, ev: dict, rail_need: np.ndarray | None = None) -> dict[str, np.ndarray]:
        sat = {}
        for u in UTILITIES:
            e = ev[u]
            s = e["ok"].copy()
            if "fits" in e:
                s &= e["fits"] != False  # noqa: E712  (None: unknown demand does not block)
            sat[u] = s
        return sat

    def _needed(self, rail_need: np.ndarray) -> dict[str, np.ndarray]:
        n = len(rail_need)
        need = {u: np.full(n, u in self.required) for u in UTILITIES}
        need["rail"] = need["rail"] | rail_need
        return need

    def _full(self, sites: _Sites, scen: Scenario, power, water, status) -> dict:
        if sites is self._plot_sites:
            ev = {u: dict(v) for u, v in self._plot_eval(scen).items()}
        else:
            ev = self._evaluate(sites, scen)
        self._fits(ev, scen, power, water, status)
        return ev

    def _met(self, ev: dict, need: dict) -> np.ndarray:
        sat = self._satisfied(ev, None)
        return np.logical_and.reduce([sat[u] | ~need[u] for u in UTILITIES])

    def _ready(
        self, sites: _Sites, scen: Scenario, power, water, status, rail_need, ev_base: dict
    ) -> np.ndarray:
        """Readiness: 'now', the first due date at which all needs are met, or 'unknown'.

        Swept from the recorded statuses (with the what-if): each due date of a
        pending asset in turn counts every asset due by then as operational;
        only the sites still waiting are re-evaluated.
        """
        need = self._needed(rail_need)
        base = self.scenario(None, scen.what_if)
        met = self._met(ev_base, need)
        ready = np.where(met, "now", "unknown").astype(object)
        todo = np.flatnonzero(~met)
        pending = sorted(
            {d for d, s in zip(self._a["due"], base.status) if d is not None and s != USABLE}
        )
        if pending and len(todo):
            # Every dated asset done: a plot not serviced even then stays 'unknown'
            # (assumes more operational assets never make a plot worse off).
            final = self.scenario(dt.date.fromisoformat(pending[-1]), scen.what_if)
            sub = sites.subset(todo) if len(todo) < sites.n else sites
            ev_f = self._evaluate(sub, final)
            self._fits(ev_f, final, power[todo], water[todo], status[todo])
            todo = todo[self._met(ev_f, {u: v[todo] for u, v in need.items()})]
        for date in pending:
            if len(todo) == 0:
                break
            scen_d = self.scenario(dt.date.fromisoformat(date), scen.what_if)
            if scen_d.key == base.key:
                continue
            sub = sites.subset(todo) if len(todo) < sites.n else sites
            ev_d = self._evaluate(sub, scen_d)
            self._fits(ev_d, scen_d, power[todo], water[todo], status[todo])
            met = self._met(ev_d, {u: v[todo] for u, v in need.items()})
            ready[todo[met]] = date
            todo = todo[~met]
        return ready

    # ------------------------------------------------------------- records
    def _records(
        self,
        sites: _Sites,
        pos_ids: Sequence,
        scen: Scenario,
        power,
        water,
        status,
        rail_need,
        extra: Sequence[dict] | None = None,
        select: np.ndarray | None = None,
    ) -> list[dict]:
        """JSON-shaped records, built column by column (numbers rounded by numpy)."""
        return self._records_inner(
            sites, pos_ids, scen, power, water, status, rail_need, extra, select
        )

    def _records_inner(
        self, sites, pos_ids, scen, power, water, status, rail_need, extra, select
    ) -> list[dict]:
        ev = self._full(sites, scen, power, water, status)
        recorded = self.scenario(None, None)
        base = self.scenario(None, scen.what_if)
        ev_base = ev if base.key == scen.key else self._full(sites, base, power, water, status)
        ev_rec = (
            ev_base
            if recorded.key == base.key
            else self._full(sites, recorded, power, water, status)
        )
        sel = np.arange(sites.n) if select is None else np.asarray(select, dtype=np.intp)
        ready_all = self._ready(sites, scen, power, water, status, rail_need, ev_base)
        need = self._needed(rail_need)
        sat = self._satisfied(ev, None)
        today_iso = self.today.isoformat()
        assets: dict[int, dict] = {}

        def asset(row: int) -> dict:
            hit = assets.get(row)
            if hit is None:
                hit = assets[row] = self._asset(row, scen)
            return hit

        def ids(values: np.ndarray, pos: np.ndarray) -> list:
            out = np.full(len(pos), None, dtype=object)
            ok = pos >= 0
            out[ok] = np.asarray(values, dtype=object)[pos[ok]]
            return out.tolist()

        cols: dict[str, dict[str, list]] = {}
        r = ev["road"]
        road_row = np.full(sites.n, -1, np.intp)
        hit = r["edge"] >= 0
        if hit.any():
            road_row[hit] = [self._asset_pos[("roads", a)] for a in r["road_id"][hit]]
        gate_row = np.where(r["gate"] >= 0, self._asset_slice["gates"].start + r["gate"], -1)
        cols["road"] = {
            "fronts": r["fronts"][sel].tolist(),
            "gate": ids(self._layer_ids("gates"), r["gate"][sel]),
            "distance_m": _col(r["distance"][sel], 1),
            "minutes": _col(r["minutes"][sel], 2),
            "road": r["road_id"][sel].tolist(),
            "gap_m": _col(r["gap"][sel], 1),
            "code": r["code"][sel].tolist(),
        }
        via = {"road": [road_row, gate_row]}
        e = ev["rail"]
        st_row = np.where(
            e["ok"] & (e["via_kind"] == "station"),
            self._asset_slice["rail_stations"].start + e["via_pos"],
            -1,
        )
        sd = np.flatnonzero(e["ok"] & (e["via_kind"] == "siding"))
        sd_row = np.full(sites.n, -1, np.intp)
        if len(sd):
            sd_row[sd] = [self._asset_pos[("rail_lines", a)] for a in e["via"][sd]]
        cols["rail"] = {
            "available": e["ok"][sel].tolist(),
            "distance_m": _col(e["distance"][sel], 1),
            "via": e["via"][sel].tolist(),
            "via_kind": e["via_kind"][sel].tolist(),
            "needed": rail_need[sel].tolist(),
            "reach_m": [self.rail_reach_m] * len(sel),
            "code": e["code"][sel].tolist(),
        }
        via["rail"] = [np.maximum(st_row, sd_row)]
        p = ev["power"]
        cols["power"] = {
            "available": p["ok"][sel].tolist(),
            "substation": ids(self._layer_ids("substations"), p["sub"][sel]),
            "distance_m": _col(p["distance"][sel], 1),
            "headroom_kw": _col(p["headroom"][sel], 1),
            "demand_kw": _col(p["demand"][sel], 1),
            "fits": p["fits"][sel].tolist(),
            "in_load": p["in_load"][sel].tolist(),
            "code": p["code"][sel].tolist(),
            "bypassed": [[asset(b) for b in p["bypassed"].get(i, ())] for i in sel.tolist()],
        }
        via["power"] = [np.where(p["ok"], self._asset_slice["substations"].start + p["sub"], -1)]
        for u in ("water", "storm", "gas"):
            m = ev[u]
            c = {
                "available": m["ok"][sel].tolist(),
                "main": ids(self._layer_ids(_MAIN_LAYERS[u]), m["main"][sel]),
                "distance_m": _col(m["distance"][sel], 1),
                "reach_m": [self.connect_m[u]] * len(sel),
                "code": m["code"][sel].tolist(),
            }
            if u == "water":
                c.update(
                    {
                        "headroom_m3d": _col(m["headroom"][sel], 1),
                        "demand_m3d": _col(m["demand"][sel], 1),
                        "fits": m["fits"][sel].tolist(),
                        "in_load": m["in_load"][sel].tolist(),
                    }
                )
            cols[u] = c
            via[u] = [np.where(m["ok"], self._asset_slice[_MAIN_LAYERS[u]].start + m["main"], -1)]
        for u in UTILITIES:
            cols[u].update(self._finish_cols(ev[u], ev_rec[u], via[u], scen, sel, asset))
            cols[u]["needed"] = need[u][sel].tolist()
        unmet = np.zeros(sites.n, np.int64)
        for k, u in enumerate(UTILITIES):
            unmet |= (need[u] & ~sat[u]).astype(np.int64) << k
        waits = {}
        reasons: dict[tuple, str] = {}
        out = []
        names = {u: list(cols[u]) for u in UTILITIES}
        rows = {u: list(zip(*cols[u].values())) for u in UTILITIES}
        for j, i in enumerate(sel.tolist()):
            rec: dict[str, Any] = {"plot_id": pos_ids[i]}
            if extra is not None:
                rec.update(extra[i])
            for k, u in enumerate(UTILITIES):
                item = dict(zip(names[u], rows[u][j]))
                if sat[u][i]:
                    item["reason"] = None
                else:
                    key = (
                        u,
                        item["code"],
                        tuple(a["asset_id"] for a in item["blocked_by"]),
                        item["code"] in _CACHED_REASONS,
                    )
                    if key[-1] and key in reasons:
                        item["reason"] = reasons[key]
                    else:
                        item["reason"] = reasons[key] = _line(u, item, None, prefix=False)
                rec[u] = item
            bits = int(unmet[i])
            w = waits.get(bits)
            if w is None:
                w = waits[bits] = tuple(u for k, u in enumerate(UTILITIES) if bits >> k & 1)
            rec["waits_for"] = list(w)
            rd = ready_all[i]
            rec["ready"] = rd
            rec["ready_overdue"] = bool(rd not in ("now", "unknown") and rd < today_iso)
            out.append(rec)
        return out

    def _finish_cols(
        self, e: dict, rec: dict, via_rows: list[np.ndarray], scen: Scenario, sel: np.ndarray, asset
    ) -> dict[str, list]:
        """blocked_by, projected, relies_on, overdue and due of one utility, by column.

        ``projected``: the answer relies on an asset counted operational although
        not recorded so — the asset it uses, or one that blocked it as recorded.
        ``overdue``: an involved asset is overdue. ``due``: the latest due date of
        the blockers (None when one has none), or of the projected assets relied on.
        """
        ok = e["ok"]
        n = len(sel)
        eb = e["blockers"]
        blocked_by = [[asset(b) for b in eb[i]] if i in eb else [] for i in sel.tolist()]
        projected = [False] * n
        relies: list[list | None] = [None] * n
        overdue = [False] * n
        due: list[str | None] = [None] * n
        a_over, a_due = self._a["overdue"], self._a["due"]
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
        for j, i in enumerate(sel.tolist()):
            blk = eb.get(i, ())
            rows = rely_rows.get(i)
            if not blk and not rows:
                continue
            if rows:
                projected[j] = True
                relies[j] = [asset(b) for b in rows]
            involved = list(blk) + (rows or [])
            overdue[j] = any(a_over[b] for b in involved)
            dues = [a_due[b] for b in (blk if not ok[i] else (rows or []))]
            due[j] = None if (not dues or any(d is None for d in dues)) else max(dues)
        out = {"blocked_by": blocked_by, "projected": projected, "overdue": overdue, "due": due}
        if rely_rows:
            out["relies_on"] = relies
        return out

    def _asset(self, row: int, scen: Scenario) -> dict:
        a = self._a
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

    # --------------------------------------------------------------- public
    def answer(
        self,
        plot_ids: Sequence[str] | str | None = None,
        *,
        as_of: dt.date | str | None = None,
        what_if: Mapping[tuple[str, str], str] | None = None,
    ) -> list[dict]:
        """Servicing records of plots (all when ``plot_ids`` is None), in plot order.

        Raises
        ------
        ValueError
            For unknown plot ids (all listed), a date that does not parse or a
            bad what-if.
        """
        scen = self.scenario(as_of, what_if)
        if isinstance(plot_ids, str):
            plot_ids = [plot_ids]
        if plot_ids is None:
            pos = np.arange(len(self.plot_ids))
        else:
            ids = [str(p) for p in plot_ids]
            unknown = [p for p in ids if p not in self._plot_pos]
            if unknown:
                raise ValueError(f"unknown plot id(s): {', '.join(unknown)}")
            pos = np.array([self._plot_pos[p] for p in ids], dtype=np.intp)
        return self._records(
            self._plot_sites,
            self.plot_ids,
            scen,
            self._plot_power,
            self._plot_water,
            self._plot_status,
            self._plot_rail_need,
            select=pos,
        )

    def document(
        self,
        plot_ids: Sequence[str] | str | None = None,
        *,
        as_of: dt.date | str | None = None,
        what_if: Mapping[tuple[str, str], str] | None = None,
    ) -> dict:
        """The JSON document the CLI prints: ``{"as_of", "today", "what_if", "plots"}``."""
        scen = self.scenario(as_of, what_if)
        return {
            "as_of": None if scen.as_of is None else scen.as_of.isoformat(),
            "today": self.today.isoformat(),
            "what_if": [
                {"layer": l, "asset_id": a, "status": s} for (l, a), s in scen.what_if.items()
            ],
            "plots": self.answer(plot_ids, as_of=as_of, what_if=what_if),
        }

    def answer_geometry(
        self,
        polygon,
        *,
        as_of: dt.date | str | None = None,
        what_if: Mapping[tuple[str, str], str] | None = None,
        power_kw: float | None = None,
        water_m3d: float | None = None,
        rail_need: bool = False,
    ) -> dict:
        """The servicing record of a drawn parcel (working CRS), plus ``area_ha``.

        The parcel reserves nothing: headroom is that of the snapshot's plots.

        Raises
        ------
        ValueError
            When ``polygon`` is not a valid, non-empty polygon.
        """
        if isinstance(polygon, str):
            try:
                polygon = shapely.from_wkt(polygon)
            except Exception:
                raise ValueError("the parcel is not a WKT polygon") from None
        if not isinstance(polygon, (shapely.Polygon, shapely.MultiPolygon)) or polygon.is_empty:
            raise ValueError("the parcel must be a non-empty Polygon in the working CRS")
        if not polygon.is_valid:
            raise ValueError(
                f"the parcel is not a valid polygon: {shapely.is_valid_reason(polygon)}"
            )
        for name, value in (("power_kw", power_kw), ("water_m3d", water_m3d)):
            if value is not None and not (math.isfinite(float(value)) and float(value) >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        scen = self.scenario(as_of, what_if)
        sites = self._sites(np.array([polygon], dtype=object))
        power = np.array([np.nan if power_kw is None else float(power_kw)])
        water = np.array([np.nan if water_m3d is None else float(water_m3d)])
        rec = self._records(
            sites,
            [None],
            scen,
            power,
            water,
            np.array(["candidate"], object),
            np.array([bool(rail_need)]),
            extra=[{"area_ha": round(polygon.area / 10_000.0, 4)}],
        )[0]
        return rec

    def headroom(
        self,
        as_of: dt.date | str | None = None,
        what_if: Mapping[tuple[str, str], str] | None = None,
    ) -> pd.DataFrame:
        """Headroom per substation (kW) and water main (m³/day).

        Columns: ``layer, asset_id, name, status, recorded, unit, capacity, load,
        base, committed, headroom, committed_plots, reason, due, projected, overdue``
        (``capacity``/``load`` in MVA or m³/day; ``base`` is the headroom before
        reserved/allocated plots, ``committed`` the demand of the
        ``committed_plots`` reserved/allocated plots it serves).
        """
        scen = self.scenario(as_of, what_if)
        head = self._headroom(scen)
        rows = []
        for u, layer, unit in (("power", "substations", "kW"), ("water", "water_mains", "m3/day")):
            h = head[u]
            start = self._asset_slice[layer].start
            for k in range(len(h["base"])):
                row = start + k
                a = self.assets.iloc[row]
                status = scen.status[row]
                reason = None
                if status != USABLE:
                    reason = (
                        _asset_phrase(self._asset(row, scen), None) + " — " + N_("no new capacity")
                    )
                elif not math.isfinite(h["cap"][k]):
                    reason = N_("capacity not recorded")
                rows.append(
                    {
                        "layer": layer,
                        "asset_id": a["asset_id"],
                        "name": _text(a["name"]),
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
        return pd.DataFrame(
            rows,
            columns=[
                "layer",
                "asset_id",
                "name",
                "status",
                "recorded",
                "unit",
                "capacity",
                "load",
                "base",
                "committed",
                "headroom",
                "committed_plots",
                "reason",
                "due",
                "projected",
                "overdue",
            ],
        )

    def travel(
        self,
        as_of: dt.date | str | None = None,
        what_if: Mapping[tuple[str, str], str] | None = None,
    ) -> dict[str, Any]:
        """Network distances and travel times of every plot, for accessibility metrics.

        Returns
        -------
        dict
            ``plot_ids``; ``gate_ids`` with ``gate_m``/``gate_min`` (gates x plots;
            inf where a gate is not operational or unreachable); ``station_ids``
            with ``station_m``/``station_min`` (stations x plots, by road whatever
            the station's status); ``rail`` (bool per plot: rail access in this
            scenario); ``substation`` (serving substation id or None) and
            ``substation_m`` (corridor distance); ``fronts`` (bool).
        """
        scen = self.scenario(as_of, what_if)
        ev = self._plot_eval(scen)
        road = ev["road"]
        n = len(self.plot_ids)
        S = len(self._st_row)
        sm = np.full((S, n), np.inf)
        smin = np.full((S, n), np.inf)
        placed = self._st_row >= 0
        if S and placed.any() and self.road.n_edges:
            dist_src, min_src = self._road_costs(road["mask"])
            rows = self._st_row[placed]
            sm[placed] = (
                self.road.from_nodes(dist_src[rows], road["edge"], road["t"])
                + self._st_road_gap[placed, None]
            )
            smin[placed] = self.road.from_nodes(
                min_src[rows], road["edge"], road["t"], weight="minutes"
            ) + self._st_road_gap[placed, None] / (DEFAULT_SPEED_KMH * 1000.0 / 60.0)
        p = ev["power"]
        sub_ids = self._layer_ids("substations")
        sub = np.array(
            [sub_ids[k] if ok else None for k, ok in zip(p["sub"], p["ok"])], dtype=object
        )
        return {
            "plot_ids": self.plot_ids,
            "gate_ids": self._layer_ids("gates"),
            "gate_m": road["gate_dist"],
            "gate_min": road["gate_min"],
            "station_ids": self._layer_ids("rail_stations"),
            "station_m": sm,
            "station_min": smin,
            "rail": ev["rail"]["ok"].copy(),
            "substation": sub,
            "substation_m": np.where(p["ok"], p["distance"], np.inf),
            "fronts": road["fronts"].copy(),
            "as_of": scen.as_of,
        }

    def network_report(self) -> dict:
        """Road and rail network summaries: tolerance, snapped endpoints, dead ends."""
        out = {}
        for name, net in (("roads", self.road), ("rail", self.rail)):
            s = net.summary()
            at_gate = set(self._gate_node.tolist()) if name == "roads" else set()
            s["dangling"] = [
                {
                    "x": round(float(r.x), 2),
                    "y": round(float(r.y), 2),
                    "asset_id": r.asset_id,
                    "at_gate": int(r.node) in at_gate,
                }
                for r in net.dangling.itertuples()
            ]
            out[name] = s
        return out


def _bool(value: Any) -> bool | None:
    if value is None or value is pd.NA:
        return None
    return bool(value)


# --------------------------------------------------------------------- explain
def _asset_phrase(asset: Mapping[str, Any], translate: Callable[[str], str] | None) -> str:
    """``Industrialnaya station closed (derailment threat), due 2022-10-30, overdue``; for an
    asset counted operational by projection: ``..., closed until 2022-10-30, overdue``."""
    tr = translate or (lambda s: s)
    name = asset.get("name") or asset.get("asset_id") or "?"
    noun = tr(ASSET_NOUNS.get(asset.get("layer"), N_("asset")))
    projected = bool(asset.get("projected"))
    code = asset.get("recorded") if projected else asset.get("status")
    status = tr(STATUS_WORDS.get(code, code or ""))
    lowered = str(name).lower()
    if noun.lower() in lowered or any(w in lowered for w in noun.lower().split() if len(w) > 3):
        text = tr(N_("{name} {status}")).format(name=name, status=status)
    else:
        text = tr(N_("{name} {noun} {status}")).format(name=name, noun=noun, status=status)
    if asset.get("note"):
        text += tr(N_(" ({note})")).format(note=asset["note"])
    if asset.get("what_if"):
        text += tr(N_(", assumed {status} (what-if)")).format(
            status=tr(STATUS_WORDS.get(asset.get("status"), asset.get("status") or ""))
        )
        return text
    if projected:
        if asset.get("due"):
            text += tr(N_(" until {due}")).format(due=asset["due"])
        else:
            text += tr(N_(", assumed operational"))
    elif code != USABLE:
        if asset.get("due"):
            text += tr(N_(", due {due}")).format(due=asset["due"])
        else:
            text += tr(N_(", no due date"))
    if asset.get("overdue"):
        text += tr(N_(", overdue"))
    return text


def _blockers(item: Mapping[str, Any], tr: Callable[[str], str]) -> str:
    return "; ".join(_asset_phrase(a, tr) for a in item.get("blocked_by") or [])


def _fmt(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, float):
        # one precision for metres, minutes, kW alike: 1590 m, 19.4 m, 1.4 min
        if abs(value) >= 100 or value.is_integer():
            return str(round(value))
        return f"{value:.1f}"
    return str(value)


class _Params(dict):
    """Template parameters formatted on demand from a utility answer."""

    def __init__(
        self, item: Mapping[str, Any], tr: Callable[[str], str] | None = None, **extra: Any
    ):
        super().__init__(extra)
        self._item = item
        self._tr = tr or (lambda s: s)

    def __missing__(self, key: str) -> str:
        if key == "blockers":
            out = self[key] = _blockers(self._item, self._tr)
            return out
        value = self._item.get(key)
        if isinstance(value, (list, dict)):
            raise KeyError(key)
        out = self[key] = _fmt(value)
        return out


def _line(
    utility: str,
    item: Mapping[str, Any],
    translate: Callable[[str], str] | None,
    *,
    prefix: bool = True,
) -> str:
    tr = translate or (lambda s: s)
    code = item.get("code")
    p = _Params(item, tr)
    blk = bool(item.get("blocked_by"))
    if utility == "road":
        if code == "ok":
            body = tr(N_("fronts {road}; gate {gate} at {distance_m} m, {minutes} min")).format_map(
                p
            )
        elif code == "not_fronting":
            body = tr(
                N_(
                    "does not front a road (nearest {road} at {gap_m} m, then "
                    "{distance_m} m along roads to gate {gate})"
                )
            ).format_map(p)
        elif code == "no_gate":
            body = tr(N_("no usable route to any gate")).format_map(p)
            if blk:
                body += tr(N_(" — {blockers}")).format_map(p)
        else:
            body = tr(N_("no usable road")).format_map(p)
    elif utility == "rail":
        if code == "ok" and item.get("via_kind") == "siding":
            body = tr(N_("siding {via} at the plot ({distance_m} m)")).format_map(p)
        elif code == "ok":
            km = f"{float(item.get('distance_m') or 0) / 1000:.1f}"
            body = tr(N_("station {via} {km} km away by road")).format_map(_Params(item, tr, km=km))
        elif code in ("blocked", "off_network") and blk:
            body = tr(N_("none — {blockers}")).format_map(p)
        elif code == "off_network":
            body = tr(N_("none — {via} is not joined to the rail network")).format_map(p)
        else:
            body = tr(N_("none — no station or siding within {reach_m} m")).format_map(p)
    elif utility == "power":
        if code == "ok":
            body = tr(
                N_(
                    "{substation} at {distance_m} m, headroom {headroom_kw} kW, "
                    "demand {demand_kw} kW fits"
                )
            ).format_map(p)
            if item.get("in_load"):
                body = tr(
                    N_(
                        "{substation} at {distance_m} m, headroom {headroom_kw} kW; "
                        "in service (its load is in the recorded load)"
                    )
                ).format_map(p)
            elif item.get("fits") is None:
                body = tr(
                    N_(
                        "{substation} at {distance_m} m, headroom {headroom_kw} kW "
                        "(demand not recorded)"
                    )
                ).format_map(p)
        elif code == "short":
            body = tr(
                N_("{substation} headroom {headroom_kw} kW is short of the demand {demand_kw} kW")
            ).format_map(p)
        elif code == "blocked":
            body = tr(N_("none — {blockers}")).format_map(p)
        elif code == "no_substation":
            body = tr(N_("none — no substation in the zone")).format_map(p)
        else:
            body = tr(N_("none — no road route to a substation")).format_map(p)
        if item.get("bypassed") and code in ("ok", "short"):
            body += tr(N_("; nearer: {others}")).format(
                others="; ".join(_asset_phrase(a, tr) for a in item["bypassed"])
            )
    else:
        if code == "ok":
            body = tr(N_("{main} at {distance_m} m")).format_map(p)
            if utility == "water":
                if item.get("in_load"):
                    body += tr(
                        N_(
                            ", headroom {headroom_m3d} m³/day; in service (its use is in "
                            "the recorded load)"
                        )
                    ).format_map(p)
                elif item.get("fits") is None:
                    body += tr(N_(", headroom {headroom_m3d} m³/day")).format_map(p)
                else:
                    body += tr(
                        N_(", headroom {headroom_m3d} m³/day, demand {demand_m3d} m³/day fits")
                    ).format_map(p)
        elif code == "short":
            body = tr(
                N_(
                    "{main} headroom {headroom_m3d} m³/day is short of the demand "
                    "{demand_m3d} m³/day"
                )
            ).format_map(p)
        elif code == "blocked":
            body = tr(N_("none — {blockers}")).format_map(p)
        else:
            body = tr(N_("none within {reach_m} m")).format_map(p)
    if item.get("projected"):
        body += tr(N_(" (projected)"))
        if item.get("relies_on"):
            body += tr(N_(": relies on {assets}")).format(
                assets="; ".join(_asset_phrase(a, tr) for a in item["relies_on"])
            )
    if not prefix:
        return body
    return tr(N_("{utility}: {text}")).format(utility=tr(UTILITY_WORDS[utility]), text=body)


def describe(
    utility: str, item: Mapping[str, Any], translate: Callable[[str], str] | None = None
) -> str:
    """One utility's answer in words without its label, e.g. ``none — no station or siding
    within 1500 m`` (``item`` is ``record[utility]``)."""
    return _line(utility, item, translate, prefix=False)


def readiness_basis(
    record: Mapping[str, Any], translate: Callable[[str], str] | None = None
) -> str:
    """What a record's readiness counted, e.g. ``counts road, power, water; not required:
    rail, storm sewer, gas`` (each utility's ``needed`` flag)."""
    tr = translate or (lambda s: s)
    needed = [u for u in UTILITIES if (record.get(u) or {}).get("needed")]
    rest = [u for u in UTILITIES if u in record and u not in needed]

    def words(utilities: list[str]) -> str:
        return ", ".join(tr(UTILITY_WORDS[u]) for u in utilities)

    if not rest:
        return tr(N_("counts {needed}")).format(needed=words(needed))
    return tr(N_("counts {needed}; not required: {rest}")).format(
        needed=words(needed), rest=words(rest)
    )


def explain(record: Mapping[str, Any], translate: Callable[[str], str] | None = None) -> list[str]:
    """One line per utility, then the readiness, in words a person understands.

    Parameters
    ----------
    record : dict
        One record of :meth:`ServicingModel.answer` (or ``answer_geometry``).
    translate : callable, optional
        A gettext (e.g. Flask-Babel's); templates are translated first, then
        formatted.

    Examples
    --------
    ``rail: none — Industrialnaya station closed (derailment threat), due 2022-10-30, overdue``
    """
    tr = translate or (lambda s: s)
    lines = [_line(u, record[u], translate) for u in UTILITIES if u in record]
    ready = record.get("ready")
    if ready == "now":
        text = tr(N_("ready to build now"))
    elif ready == "unknown" or ready is None:
        text = tr(N_("ready: date unknown (waits for {what})")).format(
            what=", ".join(tr(UTILITY_WORDS[u]) for u in record.get("waits_for") or []) or "?"
        )
    else:
        text = tr(N_("ready: {date}")).format(date=ready)
        if record.get("ready_overdue"):
            text += tr(N_(", overdue"))
    if any(u in record for u in UTILITIES):
        text += tr(N_(" — readiness {basis}")).format(basis=readiness_basis(record, translate))
    lines.append(text)
    return lines
