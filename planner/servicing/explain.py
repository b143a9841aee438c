"""Servicing answers in words: one line per utility, readiness and what it counted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from geo.i18n import N_
from planner.servicing.rules import (
    ASSET_NOUNS,
    STATUS_WORDS,
    USABLE,
    UTILITIES,
    UTILITY_WORDS,
)

Translate = Callable[[str], str]


def _identity(s: str) -> str:
    return s


def asset_phrase(asset: Mapping[str, Any], translate: Callable[[str], str] | None) -> str:
    """``Industrialnaya station closed (derailment threat), due 2022-10-30, overdue``; for an
    asset counted operational by projection: ``..., closed until 2022-10-30, overdue``."""
    tr = translate or _identity
    name = asset.get("name") or asset.get("asset_id") or "?"
    noun = tr(ASSET_NOUNS.get(str(asset.get("layer")), N_("asset")))
    projected = bool(asset.get("projected"))
    code = str(asset.get("recorded") if projected else asset.get("status") or "")
    status = tr(STATUS_WORDS.get(code, code))
    lowered = str(name).lower()
    if noun.lower() in lowered or any(w in lowered for w in noun.lower().split() if len(w) > 3):
        text = tr(N_("{name} {status}")).format(name=name, status=status)
    else:
        text = tr(N_("{name} {noun} {status}")).format(name=name, noun=noun, status=status)
    if asset.get("note"):
        text += tr(N_(" ({note})")).format(note=asset["note"])
    if asset.get("what_if"):
        text += tr(N_(", assumed {status} (what-if)")).format(
            status=tr(STATUS_WORDS.get(str(asset.get("status")), asset.get("status") or ""))
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
    return "; ".join(asset_phrase(a, tr) for a in item.get("blocked_by") or [])


def _fmt(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, float):
        # one precision for metres, minutes, kW alike: 1590 m, 19.4 m, 1.4 min
        if abs(value) >= 100 or value.is_integer():
            return str(round(value))
        return f"{value:.1f}"
    return str(value)


class _Params(dict[str, str]):
    """Template parameters formatted on demand from a utility answer."""

    def __init__(
        self, item: Mapping[str, Any], tr: Callable[[str], str] | None = None, **extra: Any
    ):
        super().__init__(extra)
        self._item = item
        self._tr = tr or _identity

    def __missing__(self, key: str) -> str:
        if key == "blockers":
            out = self[key] = _blockers(self._item, self._tr)
            return out
        value = self._item.get(key)
        if isinstance(value, (list, dict)):
            raise KeyError(key)
        out = self[key] = _fmt(value)
        return out


def line(
    utility: str,
    item: Mapping[str, Any],
    translate: Callable[[str], str] | None,
    *,
    prefix: bool = True,
) -> str:
    tr = translate or _identity
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
                others="; ".join(asset_phrase(a, tr) for a in item["bypassed"])
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
                assets="; ".join(asset_phrase(a, tr) for a in item["relies_on"])
            )
    if not prefix:
        return body
    return tr(N_("{utility}: {text}")).format(utility=tr(UTILITY_WORDS[utility]), text=body)


def describe(
    utility: str, item: Mapping[str, Any], translate: Callable[[str], str] | None = None
) -> str:
    """One utility's answer in words without its label, e.g. ``none — no station or siding
    within 1500 m`` (``item`` is ``record[utility]``)."""
    return line(utility, item, translate, prefix=False)


def readiness_basis(
    record: Mapping[str, Any], translate: Callable[[str], str] | None = None
) -> str:
    """What a record's readiness counted, e.g. ``counts road, power, water; not required:
    rail, storm sewer, gas`` (each utility's ``needed`` flag)."""
    tr = translate or _identity
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
    tr = translate or _identity
    lines = [line(u, record[u], translate) for u in UTILITIES if u in record]
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
