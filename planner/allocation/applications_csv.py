"""Applications from a CSV file, every row checked and bad rows reported by line."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from planner.allocation.inputs import (
    APPLICATION_COLUMNS,
    FALSE_WORDS,
    OPTIONAL_APPLICATION_NUMBERS,
    TRUE_WORDS,
    AllocationInputError,
)


def read_applications_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Load applications from a CSV file, checking every row.

    Parameters
    ----------
    path : str or path-like
        UTF-8 CSV with a header containing at least ``app_id, min_ha, max_ha, sector,
        rail_need, power_kw, invest, jobs``; optional ``water_m3d, hazard, priority,
        plot_pref``.  ``rail_need`` accepts yes/no, true/false, 1/0.

    Returns
    -------
    pandas.DataFrame
        The rows with numeric columns as floats and ``rail_need`` as bool.

    Raises
    ------
    AllocationInputError
        Listing every bad row by file line, e.g. ``line 4: power_kw 'abc' is not a number``.
    """
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in APPLICATION_COLUMNS if name not in header]
        if missing:
            raise AllocationInputError(f"line 1: missing column(s) {', '.join(missing)}")
        records: list[dict[str, str]] = []
        problems: list[str] = []
        seen: dict[str, int] = {}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                problems.append(
                    f"line {reader.line_num}: {len(row)} fields, header has {len(header)}"
                )
                continue
            record = {name: cell.strip() for name, cell in zip(header, row)}
            problems.extend(
                f"line {reader.line_num}: {problem}"
                for problem in _record_problems(record, reader.line_num, seen)
            )
            records.append(record)
    if problems:
        raise AllocationInputError("bad applications file:\n" + "\n".join(problems))
    return _typed_applications(pd.DataFrame(records, columns=header))


def _record_problems(record: dict[str, str], line: int, seen: dict[str, int]) -> list[str]:
    problems = [f"{name} is empty" for name in ("app_id", "sector") if not record[name]]
    if record["app_id"] in seen:
        problems.append(f"app_id {record['app_id']!r} repeats line {seen[record['app_id']]}")
    seen.setdefault(record["app_id"], line)
    numbers: dict[str, float] = {}
    for name in ("min_ha", "max_ha", "power_kw", "invest", "jobs", *OPTIONAL_APPLICATION_NUMBERS):
        text = record.get(name, "")
        if not text:
            if name in APPLICATION_COLUMNS:
                problems.append(f"{name} is empty")
            continue
        try:
            numbers[name] = float(text)
        except ValueError:
            problems.append(f"{name} {text!r} is not a number")
            continue
        if not math.isfinite(numbers[name]):
            problems.append(f"{name} {text!r} is not a finite number")
        elif numbers[name] < 0:
            problems.append(f"{name} {text} is negative")
    if "min_ha" in numbers and "max_ha" in numbers and numbers["min_ha"] > numbers["max_ha"]:
        problems.append(f"min_ha {record['min_ha']} > max_ha {record['max_ha']}")
    if record["rail_need"].lower() not in TRUE_WORDS | FALSE_WORDS:
        problems.append(f"rail_need {record['rail_need']!r} is not yes/no")
    return problems


def _typed_applications(frame: pd.DataFrame) -> pd.DataFrame:
    for name in ("min_ha", "max_ha", "power_kw", "invest", "jobs", *OPTIONAL_APPLICATION_NUMBERS):
        if name in frame.columns:
            frame[name] = pd.to_numeric(frame[name].replace("", np.nan)).astype(float)
    frame["rail_need"] = frame["rail_need"].str.lower().isin(TRUE_WORDS)
    if "plot_pref" in frame.columns:
        frame["plot_pref"] = frame["plot_pref"].replace("", None)
    return frame
