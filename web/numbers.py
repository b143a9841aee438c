"""Numbers as people read them on the pages, in the reader's language: 29.9 bn ₸ / 29,9 млрд ₸."""

from __future__ import annotations

import math
from typing import Any

from flask_babel import format_decimal
from flask_babel import gettext as _

from geo.i18n import N_

# The largest scale a value reaches names its unit (the CLI's zoneplan/numbers.py, in words
# the catalogues translate).
MONEY_SCALES = (
    (1e12, N_("%(n)s tn ₸")),
    (1e9, N_("%(n)s bn ₸")),
    (1e6, N_("%(n)s m ₸")),
    (1e3, N_("%(n)s k ₸")),
)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def number(value: Any, digits: int = 0) -> str:
    """``value`` with the locale's separators and at most ``digits`` decimals; ``–`` if none."""
    number_ = _finite(value)
    if number_ is None:
        return "–"
    pattern = "#,##0" + ("." + "#" * digits if digits else "")
    return format_decimal(round(number_, digits), format=pattern)


def money(value: Any) -> str:
    """Tenge in the largest unit reached, 3 significant figures at most (``29.9 bn ₸``)."""
    number_ = _finite(value)
    if number_ is None:
        return "–"
    for scale, template in MONEY_SCALES:
        if abs(number_) >= scale:
            shown = number_ / scale
            return _(template, n=number(shown, 0 if abs(shown) >= 100 else 1))
    return _("%(n)s ₸", n=number(number_))


def percent(ratio: Any) -> str:
    """A ratio as a whole percentage (``0.3846`` → ``38%``)."""
    number_ = _finite(ratio)
    return "–" if number_ is None else _("%(n)s%%", n=number(100 * number_))
