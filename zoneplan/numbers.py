"""Numbers as people read them on the command line: tenge in bn/m, counts without decimals."""

from __future__ import annotations

import math

_SCALES = ((1e12, "tn"), (1e9, "bn"), (1e6, "m"), (1e3, "k"))


def tenge(value: float | None) -> str:
    """``29,858,000,000`` → ``29.9 bn ₸``; ``350,000`` → ``350 k ₸``; None → ``-``."""
    if value is None or not math.isfinite(value):
        return "-"
    for scale, word in _SCALES:
        if abs(value) >= scale:
            shown = value / scale
            digits = 0 if abs(shown) >= 100 else 1
            return f"{shown:,.{digits}f} {word} ₸"
    return f"{value:,.0f} ₸"


def count(value: float | None) -> str:
    """A whole number with thousands separators (``867``, ``12,400``); None → ``-``."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{round(value):,}"
