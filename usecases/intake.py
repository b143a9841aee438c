"""Batch intake: applications received outside the site (a CSV file) checked row by row and
filed as pending in one transaction, all or none."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from geo.layers import get_layer
from geo.store import Session, Store
from geo.store.base import now_iso
from geo.validate import coerce_value
from planner import reservation
from planner.allocation import AllocationInputError, read_applications_csv
from planner.applications import INVESTOR_FIELDS
from planner.catalogue import PUBLIC_PLOT_STATUS
from usecases.applications import read_servicing

__all__ = ["IntakeRefused", "Imported", "import_csv", "check_against_schema", "MAX_ROWS"]

#: Rows one file may hold.
MAX_ROWS = 10_000
#: Columns the store needs besides those ``zoneplan allocate --applications`` reads.
STORE_COLUMNS = ("project",)
_STORED = ("app_id", "investor", *INVESTOR_FIELDS, "priority")
#: Reservation rules that refuse filing for a named plot (as :func:`usecases.applications.apply`).
_FILING_RULES = ("size", "sector")
_LINE = re.compile(r"^line (\d+): (.*)$")


class IntakeRefused(ValueError):
    """The file was refused; ``problems`` holds ``(line, message)`` pairs (line None: the file)."""

    def __init__(self, problems: Sequence[tuple[int | None, str]]):
        self.problems = list(problems)
        shown = "; ".join(_said(line, text) for line, text in self.problems[:20])
        more = f" (and {len(self.problems) - 20} more)" if len(self.problems) > 20 else ""
        super().__init__(f"nothing was imported: {shown}{more}")


def _said(line: int | None, text: str) -> str:
    return text if line is None else f"line {line}: {text}"


@dataclass
class Imported:
    """What an import filed."""

    app_ids: list[str]
    ignored_columns: list[str] = field(default_factory=list)


def check_against_schema(frame: pd.DataFrame, lines: Sequence[int] | None = None) -> None:
    """Refuse CSV rows the applications table would refuse (sector codes, hazard 1–5, …).

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows as read by :func:`planner.allocation.read_applications_csv`.
    lines : sequence of int, optional
        The file line of each row (default: the header on line 1, no blank lines).

    Raises
    ------
    ValueError
        Listing every bad cell by its line in the file.
    """
    problems = _schema_problems(frame, lines)
    if problems:
        raise ValueError("bad applications file:\n" + "\n".join(_said(*p) for p in problems))


def _schema_problems(
    frame: pd.DataFrame, lines: Sequence[int] | None = None
) -> list[tuple[int, str]]:
    layer = get_layer("applications")
    lines = list(lines) if lines is not None else [i + 2 for i in range(len(frame))]
    problems = []
    for name in frame.columns:
        if not layer.has(name) or layer.field(name).computed or layer.field(name).system:
            continue
        fld = replace(layer.field(name), required=False)
        for line, value in zip(lines, frame[name].tolist()):
            try:
                coerce_value(fld, value)
            except ValueError as err:
                problems.append((line, f"{name}: {err}"))
    return sorted(problems)


def import_csv(store: Store, data: bytes, *, user: str, investor: str | None = None) -> Imported:
    """File the applications of a CSV file as pending (``submitted``), all or none.

    The file is checked as ``zoneplan allocate --applications`` checks it
    (:func:`planner.allocation.read_applications_csv`, :func:`check_against_schema`),
    then against the store: each needs a ``project``, a new ``app_id``, an ``investor``
    that is a user here (default: ``investor``, else ``user``, who files on the
    investor's behalf), and a
    plot applied for (``plot_id``, or one id in ``plot_pref``) that exists, is available,
    has an area within the range and is zoned for the sector.

    Raises
    ------
    IntakeRefused
        Listing every problem by its line in the file; nothing is written.
    """
    frame, lines = _read(data)
    ignored = [c for c in frame.columns if c not in _STORED and c not in ("plot_pref", "status")]
    problems = _schema_problems(frame, lines) + _row_problems(frame, lines)
    rows = _rows(frame, investor or user)
    with store.transaction(user) as tx:
        problems += _store_problems(tx, rows, lines)
        if problems:
            raise IntakeRefused(sorted(problems, key=lambda p: (p[0] or 0, p[1])))
        tx.insert("applications", pd.DataFrame(rows))
    return Imported([r["app_id"] for r in rows], ignored)


def _read(data: bytes) -> tuple[pd.DataFrame, list[int]]:
    """The rows (checked by the allocator's reader) and the file line of each."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise IntakeRefused(
            [
                (
                    None,
                    f"the file is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8",
                )
            ]
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    lines = [reader.line_num for row in reader if any(cell.strip() for cell in row)]
    if len(lines) > MAX_ROWS:
        raise IntakeRefused([(None, f"the file holds {len(lines):,} rows; at most {MAX_ROWS:,}")])
    missing = [c for c in STORE_COLUMNS if c not in {h.strip() for h in header}]
    with tempfile.TemporaryDirectory(prefix="zoneplan-intake-") as folder:
        path = Path(folder) / "applications.csv"
        path.write_bytes(data)
        try:
            frame = read_applications_csv(path)
        except AllocationInputError as err:
            problems = _parsed(str(err))
        else:
            problems = []
    if missing:
        problems.insert(0, (1, f"missing column(s) {', '.join(missing)}"))
    if problems:
        raise IntakeRefused(problems)
    if not lines:
        raise IntakeRefused([(None, "the file holds no applications")])
    return frame, lines


def _parsed(message: str) -> list[tuple[int | None, str]]:
    """``(line, text)`` pairs from the allocator reader's ``line N: text`` lines."""
    out: list[tuple[int | None, str]] = []
    for text in message.splitlines():
        match = _LINE.match(text.strip())
        if match:
            out.append((int(match.group(1)), match.group(2)))
        elif text.strip() and text.strip() != "bad applications file:":
            out.append((None, text.strip()))
    return out


def _row_problems(frame: pd.DataFrame, lines: list[int]) -> list[tuple[int, str]]:
    problems = []
    for line, row in zip(lines, frame.to_dict("records")):
        if not str(row.get("project") or "").strip():
            problems.append((line, "project is empty"))
        status = str(row.get("status") or "").strip()
        if status not in ("", "submitted"):
            problems.append((line, f"status {status!r}: only pending (submitted) applications"))
        prefs = [p for p in str(row.get("plot_pref") or "").split(",") if p.strip()]
        if len(prefs) > 1 and not row.get("plot_id"):
            problems.append((line, "plot_pref: name one plot applied for (the store keeps one)"))
    return problems


def _rows(frame: pd.DataFrame, user: str) -> list[dict[str, Any]]:
    stamp = now_iso()
    out = []
    for row in frame.to_dict("records"):
        plot = str(row.get("plot_id") or "").strip() or str(row.get("plot_pref") or "").strip()
        record = {name: _clean(row.get(name)) for name in _STORED}
        record.update(
            investor=_clean(row.get("investor")) or user,
            plot_id=plot or None,
            status="submitted",
            created=stamp,
            updated=stamp,
        )
        out.append(record)
    return out


def _clean(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        return value.strip() or None
    return value


def _store_problems(
    tx: Session, rows: list[dict[str, Any]], lines: list[int]
) -> list[tuple[int, str]]:
    ids = [r["app_id"] for r in rows]
    stored = set(tx.read("applications", where={"app_id": ids})["app_id"].astype(str))
    users = set(tx.read("users")["username"].astype(str))
    named = sorted({r["plot_id"] for r in rows if r["plot_id"]})
    stored_plots = tx.read("plots", where={"plot_id": named}) if named else pd.DataFrame()
    plots: dict[str, dict[str, Any]] = {
        str(p["plot_id"]): {str(k): v for k, v in p.items()}
        for p in stored_plots.to_dict("records")
    }
    problems: list[tuple[int, str]] = []
    checks: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for line, row in zip(lines, rows):
        if row["app_id"] in stored:
            problems.append((line, f"app_id {row['app_id']} is already stored"))
        if row["investor"] not in users:
            problems.append((line, f"investor {row['investor']!r} is not a user of this service"))
        plot = plots.get(row["plot_id"]) if row["plot_id"] else None
        if row["plot_id"] and plot is None:
            problems.append((line, f"plot_id: there is no plot {row['plot_id']}"))
        elif plot is not None and plot["status"] != PUBLIC_PLOT_STATUS:
            problems.append((line, f"plot_id: plot {row['plot_id']} is {plot['status']}"))
        elif plot is not None:
            checks.append((line, plot, row))
    if checks:
        checked = reservation.check_many(
            [(plot, row) for _, plot, row in checks], read_servicing(tx), shared=False
        )
        for (line, _, _), breaches in zip(checks, checked):
            problems += [(line, b.message()) for b in breaches if b.rule in _FILING_RULES]
    return problems
