"""Plot allocation: match investor applications to zone plots under size, zoning, rail and utility-headroom rules."""

from __future__ import annotations

from planner.allocation.applications_csv import read_applications_csv
from planner.allocation.inputs import (
    DEFAULT_WEIGHTS,
    METHODS,
    OBJECTIVES,
    AllocationInputError,
)
from planner.allocation.solver import AllocationResult, pair_rules, solve

__all__ = [
    "AllocationInputError",
    "AllocationResult",
    "DEFAULT_WEIGHTS",
    "METHODS",
    "OBJECTIVES",
    "pair_rules",
    "read_applications_csv",
    "solve",
]
