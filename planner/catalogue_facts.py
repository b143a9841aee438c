"""Servicing facts of catalogue plots: one row per plot from the servicing model's answers,
cached per model and date (see :mod:`planner.catalogue`, which re-exports them)."""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["FACT_COLUMNS", "servicing_facts", "facts_for", "fact_columns"]

FACT_COLUMNS = (
    "rail",
    "rail_distance_m",
    "power",
    "power_headroom_kw",
    "water",
    "water_headroom_m3d",
    "ready",
    "waits_for",
)
_FACTS_PER_MODEL = 8  # as_of dates kept per servicing model
_FLAGS = ("rail", "power", "water")


def servicing_facts(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The catalogue's servicing facts from servicing records, indexed by plot_id.

    Columns: ``rail`` (bool), ``rail_distance_m``, ``power`` (bool),
    ``power_headroom_kw``, ``water`` (bool), ``water_headroom_m3d``, ``ready``
    (``"now"``, ``"YYYY-MM-DD"`` or ``"unknown"``) and ``waits_for`` (the required
    utilities not met as recorded: what readiness waits for).
    """
    rows = []
    for rec in records:
        rail, power, water = (rec.get(k) or {} for k in ("rail", "power", "water"))
        rows.append(
            {
                "plot_id": str(rec["plot_id"]),
                "rail": bool(rail.get("available", False)),
                "rail_distance_m": _number(rail.get("distance_m")),
                "power": bool(power.get("available", False)),
                "power_headroom_kw": _number(power.get("headroom_kw")),
                "water": bool(water.get("available", False)),
                "water_headroom_m3d": _number(water.get("headroom_m3d")),
                "ready": str(rec.get("ready") or "unknown"),
                "waits_for": list(rec.get("waits_for") or []),
            }
        )
    frame = pd.DataFrame(rows, columns=["plot_id", *FACT_COLUMNS])
    return frame.set_index("plot_id")


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out if np.isfinite(out) else float("nan")


_FACTS: weakref.WeakKeyDictionary[Any, dict[dt.date | None, _Once]] = weakref.WeakKeyDictionary()
_FACTS_LOCK = threading.Lock()


class _Facts:
    """Facts by column with a plot_id lookup: what pages read by position.

    The lookup is a dict (plot_id → row): pandas' index lookup costs ~0.5 ms for a page of
    100 ids at a million plots, the dict ~0.01 ms. Columns are numpy arrays; text that
    pandas keeps in Arrow (``ready``: a few distinct values) is held as codes into its
    distinct values, which a page takes faster than Arrow's own ``take``.
    """

    def __init__(self, frame: pd.DataFrame, every: bool = True):
        self.frame = frame
        #: Whether this holds every plot (else one page's, in its order).
        self.every = every
        self.position = dict(zip(frame.index.astype(str).tolist(), range(len(frame))))
        self.arrays = {column: _column(frame[column]) for column in FACT_COLUMNS}

    def page(self, ids: list[str]) -> dict[str, list[Any]]:
        """The facts of ``ids`` as plain columns (None where missing or unknown)."""
        get = self.position.get
        pos = np.fromiter((get(i, -1) for i in ids), dtype=np.intp, count=len(ids))
        found = pos >= 0
        every = bool(found.all())
        take = np.where(found, pos, 0)
        out: dict[str, list[Any]] = {}
        for column, values in self.arrays.items():
            if isinstance(values, np.ndarray):
                picked = values[take]
                if picked.dtype.kind == "f":
                    boxed = picked.astype(object)
                    boxed[~np.isfinite(picked)] = None
                    items = boxed.tolist()
                elif picked.dtype.kind == "O":
                    items = [None if _missing(v) else v for v in picked.tolist()]
                else:
                    items = picked.tolist()
            else:
                codes, words = values
                items = words[codes[take]].tolist()
            if column in _FLAGS:
                items = [None if v is None else bool(v) for v in items]
            out[column] = items if every else [v if ok else None for v, ok in zip(items, found)]
        return out


def _column(series: pd.Series) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """A facts column as numpy (numbers, flags, objects), or Arrow text as codes into its
    distinct values (the last one None, for missing values)."""
    if isinstance(series.dtype, np.dtype):
        return series.to_numpy()
    coded = pa.chunked_array(pa.array(series.array)).combine_chunks().dictionary_encode()
    words = np.array([*coded.dictionary.to_pylist(), None], dtype=object)
    return coded.indices.fill_null(-1).to_numpy(), words


class _Once:
    """A value built once, by the first caller; the others wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: _Facts | None = None

    def get(self, build: Any) -> _Facts:
        with self._lock:
            if self._value is None:
                self._value = build()
            return self._value

    def peek(self) -> _Facts | None:
        """The value if it is built already (never waits)."""
        return self._value


def fact_columns(
    model: Any, plot_ids: Sequence[str], as_of: dt.date | None
) -> dict[str, list[Any]]:
    """The servicing facts of a page of ``plot_ids`` (as :func:`facts_for` with ``page``),
    as plain columns: lists of bool, float, str, list of str or None (never NaN).

    Read by position from the cached facts of every plot (their plot_id index finds the
    rows), so a page costs its rows, not a frame join.
    """
    ids = [str(i) for i in plot_ids]
    facts = _facts(model, ids, as_of, page=True)
    if facts is None or len(facts.frame) == 0:
        return {column: [None] * len(ids) for column in FACT_COLUMNS}
    return facts.page(ids)


def _missing(value: Any) -> bool:
    """None, NA or a non-finite number: no fact."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, (float, np.floating)) and not np.isfinite(value)


def facts_for(
    model: Any, plot_ids: Sequence[str], as_of: dt.date | None, *, page: bool = False
) -> pd.DataFrame:
    """Servicing facts of ``plot_ids`` as recorded (``as_of`` None) or as of a date, in order.

    The model answers every plot at once, by column (:meth:`ServicingModel.facts`), once
    per model (the web layer keeps one, updated after each write) and date; the last
    ``_FACTS_PER_MODEL`` dates are kept.  A ``page`` of plots (shown, not filtered on)
    is answered from its own rows until every plot's facts are built, so the first page
    after a write costs that page, not the zone.  Without a model every fact is missing.
    """
    ids = [str(i) for i in plot_ids]
    facts = _facts(model, ids, as_of, page=page)
    if facts is None:
        return servicing_facts([]).reindex(ids)
    return facts.frame.reindex(ids) if facts.every else facts.frame


def _facts(model: Any, ids: list[str], as_of: dt.date | None, *, page: bool) -> _Facts | None:
    """Every plot's facts (cached, see :func:`facts_for`; ``every`` True), or, for a ``page``
    asked before those are built, the page's own in ``ids`` order; None without a model
    or ids."""
    if model is None or not ids:
        return None
    with _FACTS_LOCK:
        per_model = _FACTS.setdefault(model, {})
        entry = per_model.get(as_of)
        if entry is None and not page:
            entry = per_model[as_of] = _Once()
            while len(per_model) > _FACTS_PER_MODEL:
                per_model.pop(next(iter(per_model)))
    built = None if entry is None else entry.peek()
    if built is None and page:
        return _Facts(model.facts(as_of, ids), every=False)
    if built is None:
        assert entry is not None  # made above for anything but a page
        built = entry.get(lambda: _Facts(model.facts(as_of)))
    return built


def _ready_by(ready: pd.Series, by: dt.date) -> np.ndarray:
    """Whether each ``ready`` value ("now", a date, "unknown") is on or before ``by``."""
    text = ready.fillna("unknown").astype(str)
    dates = pd.to_datetime(text.where(~text.isin(["now", "unknown"])), errors="coerce")
    return ((text == "now") | (dates <= pd.Timestamp(by))).to_numpy()
