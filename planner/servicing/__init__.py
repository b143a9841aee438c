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
  is ``overdue`` (``today``: an argument of the model, the system date by default;
  the CLI and the web app read ``ZONEPLAN_TODAY`` and pass it).
* **What-if**: ``{(layer, asset_id): status}`` flips statuses without saving,
  applied after the date projection; flipping an asset to operational also makes
  answers relying on it ``projected``.
* **Readiness** (``ready``): plots need road, power (and fitting demand) and
  water (``required``; storm sewer and gas on request) and rail when ``rail_need``.  ``"now"`` when all
  are met as recorded (with the what-if); else the first due date at which,
  projecting every asset due by then, all are met — the latest due date among the
  assets the plot waits for; ``"unknown"`` when that never happens (an asset
  without a due date, no network nearby, no capacity).

The package: :mod:`~planner.servicing.rules` (constants, scenarios),
:mod:`~planner.servicing.core` (set-up and caches), :mod:`~planner.servicing.evaluate`
(road, rail, power, mains), :mod:`~planner.servicing.readiness` (headroom, fit,
readiness), :mod:`~planner.servicing.records`, :mod:`~planner.servicing.explain` (words),
:mod:`~planner.servicing.model` (the public model) and
:mod:`~planner.servicing.incremental` (the model after a write).

Every message template is marked ``N_("...")`` for pybabel extraction and is
formatted only after translation, so :func:`explain` takes a ``gettext``.
"""

from planner.servicing.explain import describe, explain, readiness_basis
from planner.servicing.model import ServicingModel
from planner.servicing.rules import (
    ASSET_NOUNS,
    CONNECT_M,
    COUNTED_PLOT_STATUSES,
    FRONTAGE_M,
    POWER_FACTOR,
    RAIL_REACH_M,
    REQUIRED,
    STATION_SNAP_M,
    STATUS_WORDS,
    USABLE,
    UTILITIES,
    UTILITY_WORDS,
    Scenario,
    parse_what_if,
)

__all__ = [
    "ServicingModel",
    "Scenario",
    "describe",
    "explain",
    "readiness_basis",
    "parse_what_if",
    "UTILITIES",
    "UTILITY_WORDS",
    "STATUS_WORDS",
    "ASSET_NOUNS",
    "USABLE",
    "REQUIRED",
    "FRONTAGE_M",
    "CONNECT_M",
    "RAIL_REACH_M",
    "POWER_FACTOR",
    "STATION_SNAP_M",
    "COUNTED_PLOT_STATUSES",
]
