"""Servicing rules: constants, vocabularies, scenarios and small shared helpers."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from geo.i18n import N_
from geo.validate import parse_date

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
MAIN_LAYERS = {"water": "water_mains", "storm": "storm_sewers", "gas": "gas_mains"}
# Reasons that depend only on the utility, code and blockers (shared between plots).
CACHED_REASONS = frozenset(
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


def to_date(value: Any, what: str) -> dt.date | None:
    """A date from a date, datetime or ISO text (None stays None); ValueError naming ``what``."""
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
    usable : ndarray of bool
        Whether each asset counts (effective status operational): all an evaluation
        depends on.
    ukey : bytes
        ``usable`` packed: the key of evaluations, shared by scenarios that differ
        only in how an unusable asset is unusable.
    """

    as_of: dt.date | None
    what_if: dict[tuple[str, str], str]
    status: np.ndarray
    projected: np.ndarray
    overrides: dict[tuple[str, str], str]
    key: tuple[tuple[tuple[str, str], str], ...]

    usable: np.ndarray
    ukey: bytes


def col(values: np.ndarray, digits: int) -> list[Any]:
    """Rounded numbers as a list, None where missing / NaN / inf (JSON-safe)."""
    a = np.round(np.asarray(values, dtype=float), digits)
    out = a.astype(object)
    out[~np.isfinite(a)] = None
    return list(out.tolist())


def first(keys: np.ndarray) -> np.ndarray:
    """Positions of the first of each run of equal ``keys`` (sorted)."""
    if len(keys) == 0:
        return np.zeros(0, np.intp)
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])


def clean_text(value: Any) -> str | None:
    """Stripped text, None for missing / NaN / blank."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    out = str(value).strip()
    return out or None
