"""Database values typed as the Store contract says: whole columns for frames, single values
for plain rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from geo.layers import Field


def _iso(fld: Field, value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if fld.type == "datetime" and isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return value.isoformat()


def typed_column(fld: Field, values: Sequence[Any], *, native_dates: bool = False) -> Any:
    """One column of database values typed as the Store contract says (no dtype inference):
    ``Int64``, ``float64`` (NaN for missing), ``boolean``, and ``object`` for text, dates
    and datetimes (ISO strings; ``native_dates`` when the driver hands date objects)."""
    if fld.type == "int":
        return pd.array(values, dtype="Int64")
    if fld.type == "float":
        return np.array([np.nan if v is None else v for v in values], dtype="float64")
    if fld.type == "bool":
        return pd.array([None if v is None else bool(v) for v in values], dtype="boolean")
    if native_dates and fld.type in ("date", "datetime"):
        values = [_iso(fld, v) for v in values]
    text = np.empty(len(values), dtype=object)
    text[:] = values
    return pd.Series(text, dtype=object, copy=False)


def plain_value(fld: Field, value: Any) -> Any:
    """One database value as a plain Python value of the Store contract (booleans as
    bool, dates as ISO text)."""
    if value is None:
        return None
    if fld.type == "bool":
        return bool(value)
    if fld.type in ("date", "datetime"):
        return _iso(fld, value)
    return value
