"""The servicing model's public questions: records, documents, drawn parcels, headroom,
travel, catalogue facts, and the model after a write."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.network import DEFAULT_SPEED_KMH
from planner.servicing.core import ModelBase
from planner.servicing.readiness import capacity_rows, plot_fitted, plot_readiness, waits_for
from planner.servicing.readiness import needed as _needed
from planner.servicing.records import records


class ServicingModel(ModelBase):
    """Servicing answers for one snapshot; networks and indexes are built once.

    Parameters
    ----------
    snapshot : mapping of layer name to (Geo)DataFrame
        As returned by ``Store.snapshot()`` (working CRS).  ``plots`` is
        required; missing infrastructure layers count as empty.
    power_factor : float
        Converts MVA to kW of headroom (0 < pf <= 1).
    today : date or str, optional
        The date overdue flags compare with (default: the system date).  Read
        ``ZONEPLAN_TODAY`` at the edge (CLI, app config) and pass it here.
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

    def has_plot(self, plot_id: str) -> bool:
        """Whether the model holds a plot of that id."""
        return bool(plot_id in self._plot_index)

    def layer_status(
        self,
        layer: str,
        as_of: dt.date | str | None = None,
        what_if: Mapping[tuple[str, str], str] | None = None,
    ) -> np.ndarray:
        """Effective status of every asset of ``layer`` (rows of ``self.layers[layer]``)
        as of a date and under a what-if, by the rules of :meth:`scenario`."""
        scen = self.scenario(as_of, what_if)
        return np.asarray(scen.status[self._asset_slice[layer]])

    def answer(
        self,
        plot_ids: Sequence[str] | str | None = None,
        *,
        as_of: dt.date | str | None = None,
        what_if: Mapping[tuple[str, str], str] | None = None,
    ) -> list[dict[str, Any]]:
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
            found = self._plot_index.get_indexer(pd.Index(ids, dtype=object))
            unknown = [p for p, i in zip(ids, found.tolist()) if i < 0]
            if unknown:
                raise ValueError(f"unknown plot id(s): {', '.join(unknown)}")
            pos = np.asarray(found, dtype=np.intp)
        return records(
            self,
            None,
            self.plot_ids,
            scen,
            (self._plot_power, self._plot_water, self._plot_status),
            self._plot_rail_need,
            select=pos,
        )

    def document(
        self,
        plot_ids: Sequence[str] | str | None = None,
        *,
        as_of: dt.date | str | None = None,
        what_if: Mapping[tuple[str, str], str] | None = None,
    ) -> dict[str, Any]:
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
        polygon: Any,
        *,
        as_of: dt.date | str | None = None,
        what_if: Mapping[tuple[str, str], str] | None = None,
        power_kw: float | None = None,
        water_m3d: float | None = None,
        rail_need: bool = False,
    ) -> dict[str, Any]:
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
        return records(
            self,
            sites,
            [None],
            scen,
            (power, water, np.array(["candidate"], object)),
            np.array([bool(rail_need)]),
            extra=[{"area_ha": round(polygon.area / 10_000.0, 4)}],
        )[0]

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
        rows = capacity_rows(self, scen)
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
        ev = self.plot_eval(scen)
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

    def network_report(self) -> dict[str, Any]:
        """Road and rail network summaries: tolerance, snapped endpoints, dead ends."""
        out: dict[str, Any] = {}
        for name, net in (("roads", self.road), ("rail", self.rail)):
            s = net.summary()
            at_gate = set(self._gate_node.tolist()) if name == "roads" else set()
            s["dangling"] = [
                {
                    "x": round(float(x), 2),
                    "y": round(float(y), 2),
                    "asset_id": aid,
                    "at_gate": int(node) in at_gate,
                }
                for x, y, aid, node in zip(
                    net.dangling["x"].tolist(),
                    net.dangling["y"].tolist(),
                    net.dangling["asset_id"].tolist(),
                    net.dangling["node"].tolist(),
                )
            ]
            out[name] = s
        return out

    def facts(
        self, as_of: dt.date | str | None = None, plot_ids: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The catalogue's servicing facts of every plot (or of ``plot_ids``, in that
        order; unknown ids get missing facts), by column, indexed by plot_id.

        Columns: ``rail`` and ``rail_distance_m``, ``power`` and ``power_headroom_kw``,
        ``water`` and ``water_headroom_m3d`` (numbers rounded as in :meth:`answer`,
        NaN when missing), ``ready`` and ``waits_for``: what :meth:`answer` says, built
        from the cached evaluations without a record per plot.  A few plots' facts read
        only their rows of the evaluations, so they cost what those plots do.
        """
        scen = self.scenario(as_of)
        pos: np.ndarray | None = None
        ids: np.ndarray = self.plot_ids
        if plot_ids is not None:
            found = self._plot_index.get_indexer(pd.Index([str(p) for p in plot_ids], dtype=object))
            pos = np.asarray(found[found >= 0], dtype=np.intp)
            ids = self.plot_ids[pos]
        ev = plot_fitted(self, scen, pos)

        def num(values: np.ndarray) -> np.ndarray:
            out = np.round(np.asarray(values, dtype=float), 1)
            return np.where(np.isfinite(out), out, np.nan)

        rail_need = self._plot_rail_need if pos is None else self._plot_rail_need[pos]
        out = pd.DataFrame(
            {
                "rail": ev["rail"]["ok"].astype(bool),
                "rail_distance_m": num(ev["rail"]["distance"]),
                "power": ev["power"]["ok"].astype(bool),
                "power_headroom_kw": num(ev["power"]["headroom"]),
                "water": ev["water"]["ok"].astype(bool),
                "water_headroom_m3d": num(ev["water"]["headroom"]),
                "ready": plot_readiness(self, scen.what_if, pos),
                "waits_for": waits_for(ev, _needed(self, rail_need)),
            },
            index=pd.Index(ids.astype(object), name="plot_id"),
        )
        if plot_ids is None or len(ids) == len(plot_ids):
            return out
        return out.reindex(pd.Index([str(p) for p in plot_ids], name="plot_id"))

    def updated(
        self,
        plots: gpd.GeoDataFrame | None = None,
        assets: Mapping[str, pd.DataFrame] | None = None,
        today: dt.date | None = None,
        *,
        plot_rows: gpd.GeoDataFrame | None = None,
        removed: Sequence[str] = (),
    ) -> ServicingModel:
        """This model after a write: the new content of the layers that changed.

        ``plots`` is the whole plots layer as now stored, ``assets`` the asset layers
        that changed, ``today`` a new date for overdue flags.  Instead of the whole
        plots layer, ``plot_rows`` (plots added or changed, as stored) and ``removed``
        (ids of plots deleted) may say what changed.  Only what changed is answered again (see
        :mod:`planner.servicing.incremental`); this model is left as it was.
        """
        from planner.servicing.incremental import updated

        return updated(self, plots, assets, today, plot_rows, removed)
