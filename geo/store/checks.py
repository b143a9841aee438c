"""Rows checked once before they are stored: typing, single parts, geometry rules, updates."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.layers import Layer
from geo.store.base import Bbox, Invalid
from geo.validate import Problem, check_geometries, coerce_attributes, coerce_value


@dataclasses.dataclass(frozen=True, eq=False)
class CheckedRows:
    """Rows of one layer checked by :func:`check_rows`: the schema-typed attributes, the
    geometries (single parts, in the CRS ``epsg``) and every problem found.

    A session inserts them without checking again (the import plan checks each row once);
    rows with problems are refused there. Made only by :func:`check_rows` and :meth:`take`.
    """

    layer: str
    typed: pd.DataFrame
    geoms: np.ndarray | None
    epsg: int | None = None
    attribute_problems: tuple[Problem, ...] = ()
    geometry_problems: tuple[Problem, ...] = ()

    @property
    def problems(self) -> list[Problem]:
        """Every problem: the attributes', then the geometries'."""
        return [*self.attribute_problems, *self.geometry_problems]

    def __len__(self) -> int:
        return len(self.typed)

    def take(self, rows: np.ndarray) -> CheckedRows:
        """The rows at positions (or the boolean mask) ``rows``; only clean rows are split.

        Raises
        ------
        ValueError
            When the rows have problems (their positions would no longer match).
        """
        if self.problems:
            raise ValueError("rows with problems are not split; refuse them instead")
        typed = self.typed.iloc[rows].reset_index(drop=True)
        geoms = None if self.geoms is None else self.geoms[rows]
        return dataclasses.replace(self, typed=typed, geoms=geoms)


def check_rows(
    layer: Layer,
    frame: pd.DataFrame,
    *,
    epsg: int | None = None,
    envelope: Bbox | None = None,
    envelope_note: str = "",
) -> CheckedRows:
    """Type the attributes of ``frame`` by the schema and check its geometries (in CRS
    ``epsg``): the one place the rules of a stored row are applied.

    ``envelope`` (and the note saying why) also refuses features outside that box (what
    an import adds to the store's own rules).

    Raises
    ------
    Invalid
        When a feature layer's input has no geometry at all.
    """
    typed, problems = coerce_attributes(layer, frame.reset_index(drop=True))
    if not layer.is_feature:
        return CheckedRows(layer.name, typed, None, epsg, tuple(problems))
    if "geometry" not in frame.columns and not isinstance(frame, gpd.GeoDataFrame):
        raise Invalid([Problem(None, None, "geometry", "the input has no geometry")])
    geoms = _single_parts(np.asarray(frame.geometry.values, dtype=object))
    extra = {"envelope_note": envelope_note} if envelope_note else {}
    geo = check_geometries(layer, geoms, typed[layer.key].tolist(), envelope=envelope, **extra)
    return CheckedRows(layer.name, typed, geoms, epsg, tuple(problems), tuple(geo))


def stored_rows(layer: Layer, rows: CheckedRows) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The typed attributes with the computed fields (``area_ha``) derived, so every
    backend stores the same values, and the geometries.

    Raises
    ------
    Invalid
        When ``rows`` has problems or belongs to another layer.
    """
    if rows.layer != layer.name:
        raise Invalid([Problem(None, None, None, f"rows of {rows.layer} given for {layer.name}")])
    if rows.problems:
        raise Invalid(rows.problems)
    typed = rows.typed.copy(deep=False)
    if rows.geoms is not None and layer.has("area_ha"):
        typed["area_ha"] = np.round(shapely.area(rows.geoms) / 10_000.0, 4)
    return typed, rows.geoms


def prepare_rows(layer: Layer, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Validate ``frame`` for insertion: typed attributes and checked geometries
    (:func:`check_rows`), computed fields derived (:func:`stored_rows`).

    Raises
    ------
    Invalid
        Listing every problem; nothing may be written.
    """
    return stored_rows(layer, check_rows(layer, frame))


def _single(geom: Any) -> Any:
    return _single_parts(np.array([geom], dtype=object))[0]


def _single_parts(geoms: np.ndarray) -> np.ndarray:
    """One-part multi-geometries as their part (vectorised); everything else as it is."""
    multi = np.isin(shapely.get_type_id(geoms), (4, 5, 6)) & (
        shapely.get_num_geometries(geoms) == 1
    )
    if not multi.any():
        return geoms
    out = geoms.copy()
    out[multi] = shapely.get_geometry(geoms[multi], 0)
    return out


def prepare_changes(layer: Layer, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a partial update: known, settable fields typed by the schema.

    Raises
    ------
    Invalid
        For unknown, computed or badly typed fields.
    """
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, value in changes.items():
        if name == "geometry" and layer.is_feature:
            geom = _single(value)
            problems += check_geometries(layer, [geom], [None], envelope=None)
            out["geometry"] = geom
            if layer.has("area_ha") and geom is not None:
                out["area_ha"] = round(float(shapely.area(geom)) / 10_000.0, 4)
            continue
        if not layer.has(name) or layer.field(name).computed or layer.field(name).system:
            problems.append(
                Problem(None, None, name, f"{layer.name} has no settable field {name!r}")
            )
            continue
        if name == layer.key:
            problems.append(Problem(None, None, name, "the id of a feature cannot change"))
            continue
        try:
            out[name] = coerce_value(layer.field(name), value)
        except ValueError as err:
            problems.append(Problem(None, None, name, str(err)))
    if problems:
        raise Invalid(problems)
    return out


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Field-by-field ``{name: [old, new]}`` of what an update changes (geometry as WKT)."""
    out = {}
    for name, value in new.items():
        before = old.get(name)
        if name == "geometry":
            before = None if before is None else shapely.to_wkt(before, rounding_precision=2)
            value = None if value is None else shapely.to_wkt(value, rounding_precision=2)
        if before != value:
            out[name] = [before, value]
    return out
