"""Refusal listings people can read: near-identical problems folded into one line each."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

#: How many ids a folded line names before "and N more".
SHOWN_IDS = 3


def _without(message: str, ident: str) -> str:
    """``message`` with the one id it names taken out, so equal problems compare equal."""
    if not ident:
        return message
    text = message.replace(f"'{ident}'", "").replace(f'"{ident}"', "").replace(ident, "")
    return re.sub(r"\s{2,}", " ", text).strip()


def fold(items: Iterable[tuple[str, str, str]], shown: int = SHOWN_IDS) -> list[str]:
    """One line per distinct problem: its count and the first few places it occurs.

    Parameters
    ----------
    items : iterable of (where, ident, message)
        ``where`` names the feature, row or line in full (``feature 0 (P-001)``,
        ``line 4``), ``ident`` in short for lists (``P-001``); ``message`` says what is
        wrong there and may repeat ``ident``, which is taken out.

    Returns
    -------
    list of str
        ``"feature 0 (P-001): status: 'x' is not one of ..."`` for a problem found once,
        else ``"50 features: id is already in the store (P-001, P-002, P-003 and 47
        more)"``, in the order first found.
    """
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for where, ident, message in items:
        groups.setdefault(_without(message, ident), []).append((where, ident, message))
    lines = []
    for message, places in groups.items():
        if len(places) == 1:
            lines.append(f"{places[0][0]}: {places[0][2]}")
            continue
        names = ", ".join(p[1] for p in places[:shown])
        more = f" and {len(places) - shown} more" if len(places) > shown else ""
        noun = "lines" if places[0][0].startswith("line ") else "features"
        lines.append(f"{len(places)} {noun}: {message} ({names}{more})")
    return lines


def problem_items(problems: Iterable[Any]) -> list[tuple[str, str, str]]:
    """:class:`geo.validate.Problem` objects as ``fold``'s (where, ident, message)."""
    items = []
    for p in problems:
        if p.index is None:
            where = ident = "input"
        else:
            ident = p.feature_id or f"feature {p.index}"
            where = f"feature {p.index}" + (f" ({p.feature_id})" if p.feature_id else "")
        items.append((where, ident, f"{p.field + ': ' if p.field else ''}{p.reason}"))
    return items
