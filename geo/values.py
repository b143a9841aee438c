"""Plain Python values out of frames: one converter for JSON and messages."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["plain"]


def plain(value: Any) -> Any:
    """``value`` as a JSON-ready scalar.

    Parameters
    ----------
    value
        A cell of a frame: a Python or numpy scalar, or a missing marker.

    Returns
    -------
    Any
        None for every missing marker (None, ``pd.NA``, ``pd.NaT``, NaN, infinities),
        Python numbers and booleans for numpy ones, anything else unchanged.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
