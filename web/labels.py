"""Words on the maps: schema labels and stored codes marked for translation, and popups."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd
from markupsafe import Markup

from geo.i18n import N_
from geo.layers import get_layer, parse_sectors

Translate = Callable[[str], str]

# Schema labels and codes are English in geo.layers; these marks put them in the catalogues.
LAYER_LABELS = (
    N_("Zone boundary"),
    N_("Expansion areas"),
    N_("Plots"),
    N_("Roads"),
    N_("Gates"),
    N_("Rail lines"),
    N_("Rail stations"),
    N_("Substations"),
    N_("Power lines"),
    N_("Water mains"),
    N_("Storm sewers"),
    N_("Gas mains"),
    N_("Protection zones"),
    N_("Applications"),
    N_("Users"),
    N_("Plan targets"),
    N_("Audit trail"),
)
FIELD_LABELS = (
    N_("Zone id"),
    N_("Name"),
    N_("Operator"),
    N_("Area, ha"),
    N_("Expansion id"),
    N_("Status"),
    N_("Note"),
    N_("Plot id"),
    N_("Cadastral number"),
    N_("Allowed sectors"),
    N_("Occupant's sector"),
    N_("Resident"),
    N_("Project"),
    N_("Investment, tenge"),
    N_("Jobs"),
    N_("Power demand, kW"),
    N_("Water demand, m³/day"),
    N_("Needs rail"),
    N_("Hazard class"),
    N_("Highest hazard class allowed"),
    N_("Production floor, m²"),
    N_("Start year"),
    N_("Expansion area"),
    N_("Asset id"),
    N_("Road class"),
    N_("Status since"),
    N_("Due"),
    N_("Kind"),
    N_("Built"),
    N_("Capacity, MVA"),
    N_("Load, MVA"),
    N_("Voltage, kV"),
    N_("Feeding substation"),
    N_("Capacity, m³/day"),
    N_("Load, m³/day"),
    N_("Diameter, mm"),
    N_("Pressure"),
    N_("Protects"),
    N_("Width, m"),
    N_("Application id"),
    N_("Investor (user)"),
    N_("Company"),
    N_("Sector"),
    N_("Plot applied for"),
    N_("Minimum area, ha"),
    N_("Maximum area, ha"),
    N_("Power, kW"),
    N_("Water, m³/day"),
    N_("Priority"),
    N_("Reason"),
    N_("Plot reserved"),
    N_("Created"),
    N_("Updated"),
    N_("User name"),
    N_("Role"),
    N_("Language"),
    N_("Active"),
    N_("Target"),
    N_("Metric"),
    N_("Target value"),
    N_("By year"),
    N_("Source"),
)
# What one feature of a layer is called (popup titles).
FEATURE_NOUNS: dict[str, str] = {
    "zone": N_("Zone"),
    "expansion": N_("Expansion area"),
    "plots": N_("Plot"),
    "roads": N_("Road"),
    "gates": N_("Gate"),
    "rail_lines": N_("Rail line"),
    "rail_stations": N_("Rail station"),
    "substations": N_("Substation"),
    "power_lines": N_("Power line"),
    "water_mains": N_("Water main"),
    "storm_sewers": N_("Storm sewer"),
    "gas_mains": N_("Gas main"),
    "prot_zones": N_("Protection zone"),
}
# Codes stored in the data -> English words (the msgids).
VALUE_LABELS: dict[str, str] = {
    # plot statuses
    "candidate": N_("candidate"),
    "available": N_("available"),
    "reserved": N_("reserved"),
    "allocated": N_("allocated"),
    "occupied": N_("occupied"),
    # asset statuses
    "operational": N_("operational"),
    "restricted": N_("restricted"),
    "closed": N_("closed"),
    "under_repair": N_("under repair"),
    "not_commissioned": N_("not commissioned"),
    "planned": N_("planned"),
    # expansion and application statuses
    "proposed": N_("proposed"),
    "approved": N_("approved"),
    "submitted": N_("submitted"),
    "rejected": N_("rejected"),
    "withdrawn": N_("withdrawn"),
    # sectors
    "machine": N_("machine building"),
    "materials": N_("building materials"),
    "food": N_("food"),
    "pharma": N_("pharmaceuticals"),
    "chemicals": N_("chemicals"),
    "light": N_("light industry"),
    "logistics": N_("logistics"),
    "energy": N_("energy"),
    # road classes, rail kinds, pressures, protection kinds
    "arterial": N_("arterial"),
    "collector": N_("collector"),
    "local": N_("local"),
    "access": N_("access"),
    "mainline": N_("mainline"),
    "siding": N_("siding"),
    "spur": N_("spur"),
    "low": N_("low"),
    "medium": N_("medium"),
    "high": N_("high"),
    "substation": N_("substation"),
    "rail": N_("rail"),
    "power": N_("power"),
    "gas": N_("gas"),
    "water": N_("water"),
    # roles
    "public": N_("public"),
    "investor": N_("investor"),
    "planner": N_("planner"),
    "admin": N_("admin"),
}


def tr_value(code: Any, translate: Translate) -> str:
    """A stored code (status, sector, class...) in the reader's language."""
    text = "" if code is None else str(code)
    return translate(VALUE_LABELS[text]) if text in VALUE_LABELS else text


def tr_label(text: str, translate: Translate) -> str:
    """A schema label (layer or field) in the reader's language."""
    return translate(text) if text else text


# --------------------------------------------------------------------------- popups
_HIDDEN = {"version", "pw_hash", "token_hash"}


def _present(value: Any) -> bool:
    if value is None or value is pd.NA:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, str) and not value.strip())


def format_value(layer: str, name: str, value: Any, translate: Translate) -> str:
    """One attribute as text for people: codes translated, numbers grouped, data as stored."""
    fld = get_layer(layer).field(name)
    if fld.type == "bool":
        return translate(N_("yes")) if bool(value) else translate(N_("no"))
    if name.endswith("_yr"):
        return str(int(value))  # a year, not a quantity: no grouping
    if fld.type in ("int", "float"):
        number = float(value)
        text = (
            f"{int(number):,d}" if fld.type == "int" else f"{number:,.2f}".rstrip("0").rstrip(".")
        )
        return text.replace(",", "\u202f")  # narrow no-break space groups thousands
    if name == "sectors":
        allowed = parse_sectors(value)
        return (
            translate(N_("all"))
            if allowed is None
            else ", ".join(tr_value(s, translate) for s in sorted(allowed))
        )
    if fld.choices is not None:
        return tr_value(value, translate)
    return str(value)


def popup_html(
    layer: str, row: Mapping[str, Any], translate: Translate, extra_lines: Iterable[str] = ()
) -> str:
    """Popup HTML for one feature; every value (and every extra line) is escaped."""
    lyr = get_layer(layer)
    title = row.get("name") if _present(row.get("name")) else row.get(lyr.key)
    noun = (
        translate(FEATURE_NOUNS[layer])
        if layer in FEATURE_NOUNS
        else tr_label(lyr.label, translate)
    )
    if str(title).casefold().startswith(str(noun).casefold()):
        # a name that already says what it is ("Substation No. 12") needs no noun before it
        parts = [Markup('<div class="zp-popup"><h6><span>{}</span></h6><table>').format(title)]
    else:
        parts = [
            Markup('<div class="zp-popup"><h6>{} <span>{}</span></h6><table>').format(noun, title)
        ]
    for fld in lyr.fields:
        if fld.name in _HIDDEN or (fld.name in ("name", lyr.key) and title == row.get(fld.name)):
            continue
        value = row.get(fld.name)
        if not _present(value):
            continue
        parts.append(
            Markup("<tr><th>{}</th><td>{}</td></tr>").format(
                tr_label(fld.label, translate), format_value(layer, fld.name, value, translate)
            )
        )
    parts.append(Markup("</table>"))
    lines = [line for line in extra_lines if line]
    if lines:
        parts.append(
            Markup('<p class="zp-servicing-title">{}</p><ul class="zp-servicing">').format(
                translate(N_("Servicing"))
            )
        )
        parts += [Markup("<li>{}</li>").format(line) for line in lines]
        parts.append(Markup("</ul>"))
    parts.append(Markup("</div>"))
    return str(Markup("").join(parts))
