"""Planning (every check, nothing written) and applying imports (one transaction)."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.io.formats import Source
from geo.io.read import Upload, importable_layer, problem_order, read_upload
from geo.layers import Layer, get_layer
from geo.store.checks import CheckedRows, check_rows
from geo.validate import (
    Problem,
    ValidationError,
    overlaps,
    zone_envelope,
)

MODES: tuple[str, ...] = ("update", "replace")
# Imports must lie within this distance (metres) of the zone and its expansion areas.
ZONE_MARGIN_M = 5_000.0
# Stored rows are looked up by this many ids per query, or all read at once beyond
# _WHOLE_LAYER_ROWS of them.
_ID_CHUNK = 500
_WHOLE_LAYER_ROWS = 20_000
# Plots a replace never removes: someone holds them.
COMMITTED_STATUSES: tuple[str, ...] = ("reserved", "allocated", "occupied")
# Vertices closer than this (metres) are the same geometry: a GeoJSON round trip at
# 9 decimals moves them ~0.1 mm, a shapefile may turn rings the other way.
SAME_GEOMETRY_M = 0.001
# Ids named one by one in a refusal before the rest are counted.
SHOWN_IDS = 200


@dataclass
class ImportPlan:
    """A validated import: what would be written, and why it may not be.

    Attributes
    ----------
    layer : str
    frame : DataFrame
        Schema-typed attributes (and geometry, working CRS), one row per input feature.
    mode : {"update", "replace"}
        ``update`` changes the stored features whose id is in the file and adds
        the new ids; ``replace`` also removes the stored features the file lacks.
    columns : tuple of str
        The input fields the file carries; updates change only these and the geometry.
    new_ids : list of str
        Ids new to the store (inserted).
    updates : dict
        ``{id: {field: new value}}`` of stored features the file changes.
    before : dict
        ``{id: {field: stored value}}`` of the same fields (for "cadastre 101 → 999").
    versions : dict
        ``{id: version}`` the updates were planned against; a later edit is refused.
    unchanged : int
        Stored features the file repeats as they are.
    removed : dict
        ``{id: status or None}`` of the stored features a replace removes, in id order.
    problems : list of Problem
        Every reason to refuse; the plan may be applied only when empty.
    source : str
    ignored_columns : list of str
    revision : str
        The store's revision the checks were made against.
    rows : CheckedRows or None
        The rows as checked (typed, single-part geometries), which the store inserts
        without checking them again.
    """

    layer: str
    frame: pd.DataFrame
    mode: str = "update"
    columns: tuple[str, ...] = ()
    new_ids: list[str] = dc_field(default_factory=list)
    updates: dict[str, dict[str, Any]] = dc_field(default_factory=dict)
    before: dict[str, dict[str, Any]] = dc_field(default_factory=dict)
    versions: dict[str, int] = dc_field(default_factory=dict)
    unchanged: int = 0
    removed: dict[str, str | None] = dc_field(default_factory=dict)
    problems: list[Problem] = dc_field(default_factory=list)
    source: str = ""
    ignored_columns: list[str] = dc_field(default_factory=list)
    revision: str = ""
    rows: CheckedRows | None = dc_field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the plan may be applied."""
        return not self.problems

    @property
    def replace(self) -> bool:
        """Whether stored features the file lacks are removed."""
        return self.mode == "replace"

    @property
    def adds(self) -> int:
        """Features whose id is new to the store."""
        return len(self.new_ids)

    @property
    def removals(self) -> int:
        """Stored features a replace removes."""
        return len(self.removed)

    @property
    def removals_by_status(self) -> dict[str, int]:
        """How many removals per status (the layer's status order; ``-`` without one)."""
        lyr = get_layer(self.layer)
        order = list(lyr.field("status").choices or ()) if lyr.has("status") else []
        counts: dict[str, int] = {}
        for status in self.removed.values():
            counts[status or "-"] = counts.get(status or "-", 0) + 1
        return dict(
            sorted(
                counts.items(),
                key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]),
            )
        )

    @property
    def bad_features(self) -> int:
        """How many features have at least one problem."""
        return len({p.index for p in self.problems if p.index is not None})

    def changes(self, key: str) -> list[tuple[str, Any, Any]]:
        """``(field, before, after)`` of one update, geometry shown as ``changed``."""
        return [
            (
                name,
                "…" if name == "geometry" else self.before[key].get(name),
                "changed" if name == "geometry" else value,
            )
            for name, value in self.updates[key].items()
        ]

    def summary(self) -> str:
        """One line: what the import would do."""
        text = (
            f"{self.layer}: {len(self.frame)} feature(s) from {self.source or 'input'}: "
            f"{self.adds} new, {len(self.updates)} updated, {self.unchanged} unchanged"
        )
        if self.replace:
            by_status = ", ".join(f"{n} {s}" for s, n in self.removals_by_status.items())
            text += f", {self.removals} removed" + (f" ({by_status})" if by_status else "")
        return text

    def input_frame(self) -> pd.DataFrame:
        """The input as the file gave it (its columns only), to plan again."""
        columns = list(self.columns) + (["geometry"] if "geometry" in self.frame.columns else [])
        return self.frame[columns]

    def to_dict(self, *, limit: int = 100) -> dict[str, Any]:
        """A JSON-ready preview (problems, updates and removals capped at ``limit``)."""
        return {
            "layer": self.layer,
            "source": self.source,
            "features": len(self.frame),
            "mode": self.mode,
            "replace": self.replace,
            "adds": self.adds,
            "updates": len(self.updates),
            "unchanged": self.unchanged,
            "removals": self.removals,
            "removals_by_status": self.removals_by_status,
            "removed": [{"id": k, "status": s} for k, s in list(self.removed.items())[:limit]],
            "updated": [
                {
                    "id": k,
                    "changes": {
                        f: [str(a), str(b)] if f == "geometry" else [a, b]
                        for f, a, b in self.changes(k)
                    },
                }
                for k in list(self.updates)[:limit]
            ],
            "ok": self.ok,
            "problem_count": len(self.problems),
            "problems": [dataclasses.asdict(p) for p in self.problems[:limit]],
            "ignored_columns": self.ignored_columns,
        }


def plan_import(
    store: Any, layer: str, data: pd.DataFrame | Upload, *, mode: str = "update"
) -> ImportPlan:
    """Check an import against the schema and the store; write nothing.

    Checks, per feature: the read problems of an :class:`Upload`; attribute
    types, vocabularies, id syntax and text lengths; geometry valid, of the
    layer's type, not degenerate and within 5 km of the stored zone and
    expansion areas (see :func:`import_envelope`); ids unique in the input;
    for plots, no overlap with each other or with stored plots the file does
    not mention. A replace may not remove committed plots (reserved,
    allocated, occupied) nor plots an application names.

    Parameters
    ----------
    store : Store
    layer : str
    data : DataFrame or Upload
        A frame, or what :func:`read_upload` returned; geometries are reprojected to
        the store's CRS (``store.epsg``) when they declare another (none: the store's).
    mode : {"update", "replace"}
        ``update`` (default): features whose id is stored are updated (only the
        fields the file carries, and the geometry), new ids are added, nothing
        is removed. ``replace``: the same, and stored features the file lacks
        are removed.

    Raises
    ------
    ValueError
        For an unknown mode or a layer that may not be imported.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use {' or '.join(MODES)}")
    lyr = importable_layer(layer)
    upload = data if isinstance(data, Upload) else Upload(lyr.name, data)
    frame = _in_crs(upload.frame.reset_index(drop=True), store.epsg)
    revision = store.revision(_checked_layers(lyr))
    plan = ImportPlan(
        lyr.name,
        frame,
        mode,
        source=upload.source,
        ignored_columns=upload.ignored_columns,
        revision=revision,
    )
    if len(frame) == 0:
        plan.problems = [
            Problem(
                None,
                None,
                None,
                f"{upload.source or 'the input'} holds no features; nothing to import",
            )
        ]
        return plan
    # Every row is checked once, here: the store takes the checked rows as they are.
    envelope, note = import_envelope(store, lyr.name) if lyr.is_feature else (None, "")
    rows = check_rows(lyr, frame, epsg=store.epsg, envelope=envelope, envelope_note=note)
    typed = rows.typed
    problems = list(upload.problems) + _missing_columns(lyr, frame, list(rows.attribute_problems))
    plan.columns = tuple(f.name for f in lyr.input_fields if f.name in frame.columns)
    ids = typed[lyr.key].tolist()
    plan.frame = typed
    plan.rows = rows
    if rows.geoms is not None:
        geoms = rows.geoms
        unread = {p.index for p in upload.problems if p.field == "geometry"}
        geo_problems = [p for p in rows.geometry_problems if p.index not in unread]
        problems += geo_problems
        usable = np.ones(len(frame), dtype=bool)
        usable[[i for i in unread | {p.index for p in geo_problems} if i is not None]] = False
        plan.frame = gpd.GeoDataFrame(typed, geometry=geoms, crs=store.epsg, copy=False)
        if lyr.name == "plots":
            tree = shapely.STRtree(geoms[usable])  # the input's, for both overlap tests
            problems += _self_overlaps(plan.frame, usable, tree)
    in_file = set(ids)  # typed ids are text
    in_file.discard(None)
    stored = _stored_rows(store, lyr, in_file)
    _plan_updates(plan, lyr, stored)
    if plan.replace:
        plan.removed = _removals(store, lyr, in_file)
        problems += _committed_removals(store, lyr, plan.removed)
    elif lyr.name == "plots":
        problems += _overlaps_with_store(
            store, cast(gpd.GeoDataFrame, plan.frame), in_file, usable, tree
        )
    plan.problems = sorted(problems, key=problem_order)
    return plan


def _in_crs(frame: pd.DataFrame, epsg: int) -> pd.DataFrame:
    """``frame`` with its geometries in ``epsg`` (a frame declaring no CRS is taken as in it)."""
    crs = getattr(frame, "crs", None)
    if crs is None or crs.to_epsg() == epsg:
        return frame
    return cast(gpd.GeoDataFrame, frame).to_crs(epsg)


def _checked_layers(layer: Layer) -> list[str]:
    """The layers a plan reads: the target, where the zone is, who holds plots."""
    return list(dict.fromkeys([layer.name, "zone", "expansion", "applications"]))


def import_envelope(store: Any, layer: str) -> tuple[tuple[float, float, float, float], str]:
    """The box imported features must lie in, and how to describe it.

    The extent of the stored zone and expansion areas grown by
    ``ZONE_MARGIN_M`` (5 km); the fixed ``ZONE_ENVELOPE`` when the store has no
    zone yet (in the store's CRS), and for imports of ``zone`` and ``expansion`` themselves (they
    define where the zone is).
    """
    fallback = (zone_envelope(store.epsg), "wrong CRS, or metres read as degrees?")
    if layer in ("zone", "expansion"):
        return fallback
    zone = store.extent("zone")
    if zone is None:
        return fallback
    boxes = [zone] + [b for b in [store.extent("expansion")] if b is not None]
    m = ZONE_MARGIN_M
    env = (
        min(b[0] for b in boxes) - m,
        min(b[1] for b in boxes) - m,
        max(b[2] for b in boxes) + m,
        max(b[3] for b in boxes) + m,
    )
    return env, (
        f"more than {m / 1000:g} km from the zone: wrong CRS, metres read as "
        "degrees, or data from elsewhere?"
    )


def _missing_columns(layer: Layer, frame: pd.DataFrame, problems: list[Problem]) -> list[Problem]:
    """One input-level problem per absent required column instead of one per feature."""
    absent = [f.name for f in layer.input_fields if f.required and f.name not in frame.columns]
    if not absent:
        return problems
    have = ", ".join(str(c) for c in frame.columns if c != "geometry") or "none"
    head = [
        Problem(
            None,
            None,
            name,
            f"the input has no column {name!r}, which {layer.name} requires (its columns: {have})",
        )
        for name in absent
    ]
    return head + [p for p in problems if p.field not in absent]


def _stored_rows(store: Any, layer: Layer, wanted: set[str]) -> pd.DataFrame:
    """The stored rows whose id is in ``wanted``, by id: none read when the ids are all new
    (the stored ids are listed first, nothing else decoded), the whole layer read once
    when the file repeats most of it, else queried in chunks by value."""
    present = sorted(wanted.intersection(store.keys(layer.name)))
    if not present:
        rows = store.read(layer.name, limit=0)
    elif len(present) > _WHOLE_LAYER_ROWS:
        rows = store.read(layer.name)
        rows = rows[_among(rows[layer.key], wanted)]
    else:
        rows = pd.concat(
            [
                store.read(layer.name, where={layer.key: present[start : start + _ID_CHUNK]})
                for start in range(0, len(present), _ID_CHUNK)
            ],
            ignore_index=True,
        )
    indexed: pd.DataFrame = rows.set_index(rows[layer.key].astype(str), drop=False)
    return indexed


def _plain(value: Any) -> Any:
    """A stored value as the schema's coercion gives it (None for missing, plain Python)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _plan_updates(plan: ImportPlan, lyr: Layer, stored: pd.DataFrame) -> None:
    """Sort the input into new ids and updates of stored features (fields that differ)."""
    keys = plan.frame[lyr.key].tolist()  # typed ids: text or None
    known = set(stored.index)
    if not known:  # a first import: every id is new
        plan.new_ids = [k for k in keys if k is not None]
        return
    rows = [i for i, k in enumerate(keys) if k is not None and k in known]
    plan.new_ids = [k for k in keys if k is not None and k not in known]
    if not rows:
        return
    old = stored.loc[[keys[i] for i in rows]]
    after: list[dict[str, Any]] = [{} for _ in rows]
    for name in plan.columns:
        if name == lyr.key:
            continue
        new_values = plan.frame[name].iloc[rows].tolist()
        for n, (a, b) in enumerate(zip(old[name].tolist(), new_values)):
            if _plain(a) != b:
                after[n][name] = b
    if lyr.is_feature:
        new_geoms = np.asarray(plan.frame.geometry.values, dtype=object)[rows]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            same = shapely.equals_exact(
                shapely.normalize(new_geoms),
                shapely.normalize(np.asarray(old.geometry.values)),
                tolerance=SAME_GEOMETRY_M,
            )
        for m in np.flatnonzero(~same).tolist():
            after[m]["geometry"] = new_geoms[m]
    for n, i in enumerate(rows):
        key = str(keys[i])
        if not after[n]:
            plan.unchanged += 1
            continue
        plan.updates[key] = after[n]
        plan.before[key] = {
            f: (old.geometry.iloc[n] if f == "geometry" else _plain(old[f].iloc[n]))
            for f in after[n]
        }
        plan.versions[key] = int(_plain(old["version"].iloc[n]) or 0)


def _removals(store: Any, layer: Layer, keep: set[str]) -> dict[str, str | None]:
    """``{id: status}`` of the stored features not in ``keep``, in id order."""
    stored = store.read(layer.name)
    keys = stored[layer.key].astype(str)
    gone = ~keys.isin(keep)
    status = (
        stored.loc[gone, "status"].tolist() if layer.has("status") else [None] * int(gone.sum())
    )
    return dict(zip(keys[gone].tolist(), status))


def _committed_removals(store: Any, layer: Layer, removed: dict[str, str | None]) -> list[Problem]:
    """Refuse a replace that would remove plots someone holds or an application names."""
    if layer.name != "plots" or not removed:
        return []
    apps = store.read("applications")
    named = set(apps["plot_id"].dropna().astype(str)) | set(apps["assigned"].dropna().astype(str))
    held = [k for k, status in removed.items() if status in COMMITTED_STATUSES or k in named]
    if not held:
        return []
    shown = ", ".join(
        f"{k} ({removed[k]}{', named by an application' if k in named else ''})"
        for k in held[:SHOWN_IDS]
    )
    more = f" and {len(held) - SHOWN_IDS} more" if len(held) > SHOWN_IDS else ""
    return [
        Problem(
            None,
            None,
            layer.key,
            f"a replace never removes committed plots, and the file lacks {len(held)} "
            f"of them: {shown}{more}. Put them in the file, or update instead of "
            "replacing (nothing is then removed)",
        )
    ]


def _among(values: pd.Series, wanted: set[str]) -> np.ndarray:
    """Which values (as text) are in ``wanted``: a set lookup per value, where pandas'
    ``isin`` on Arrow-backed strings goes through a slow Python path."""
    return np.fromiter((str(v) in wanted for v in values.tolist()), bool, len(values))


def _usable_geoms(frame: gpd.GeoDataFrame, usable: np.ndarray | None = None) -> np.ndarray:
    """The rows whose geometry can be tested for overlaps: ``usable`` when the checks
    already decided it (missing, empty and invalid geometries are problems there)."""
    if usable is not None:
        return np.flatnonzero(usable)
    geoms = np.asarray(frame.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    ok[ok] = shapely.is_valid(geoms[ok])
    return np.flatnonzero(ok)


def _self_overlaps(
    frame: gpd.GeoDataFrame, usable: np.ndarray, tree: shapely.STRtree | None = None
) -> list[Problem]:
    """Overlaps among the input's usable plots (``tree``: an STRtree over them)."""
    idx = _usable_geoms(frame, usable)
    sub = gpd.GeoSeries(frame.geometry.values[idx])
    keys = frame["plot_id"].tolist()
    out = []
    for a, b, area in overlaps(sub, tree=tree):
        i, j = int(idx[a]), int(idx[b])
        out.append(
            Problem(
                j,
                keys[j],
                "geometry",
                f"overlaps plot {keys[i]} (feature {i} of the input) by {area:.1f} m²",
            )
        )
    return out


def _overlaps_with_store(
    store: Any,
    frame: gpd.GeoDataFrame,
    in_file: set[str],
    usable: np.ndarray | None = None,
    tree: shapely.STRtree | None = None,
) -> list[Problem]:
    """Overlaps with stored plots the file does not mention (those it mentions get the
    file's geometry, checked among the input; ``tree``: an STRtree over the usable
    input, as the self-overlap test built it)."""
    idx = _usable_geoms(frame, usable)
    if not len(idx):
        return []
    sub = gpd.GeoSeries(frame.geometry.values[idx])
    stored = store.read("plots", bbox=tuple(sub.total_bounds))
    stored = stored[~_among(stored["plot_id"], in_file)]
    keys = frame["plot_id"].tolist()
    stored_keys = stored["plot_id"].tolist()
    out = []
    for a, b, area in overlaps(sub, gpd.GeoSeries(stored.geometry.values), tree=tree):
        i = int(idx[a])
        out.append(
            Problem(
                i, keys[i], "geometry", f"overlaps existing plot {stored_keys[b]} by {area:.1f} m²"
            )
        )
    return out


def apply_import(store: Any, plan: ImportPlan, *, user: str = "system") -> list[str]:
    """Write a checked plan in one transaction; return the ids added or updated.

    Removals, then updates (each a versioned ``Session.update``, so the audit
    trail holds field by field what changed), then one insert of the new ids.
    If the store changed since the plan was made, the import is planned again
    inside the transaction (other writers wait meanwhile) and refused when it
    now finds problems or would remove other features.

    Raises
    ------
    ValidationError
        When the plan has problems, or the fresh plan differs; nothing is written.
    """
    if plan.problems:
        raise ValidationError(plan.problems)
    with store.transaction(user) as tx:
        return write_import(tx, store, plan)


def write_import(tx: Any, store: Any, plan: ImportPlan) -> list[str]:
    """Write a checked plan inside the open transaction ``tx`` of ``store`` (see
    :func:`apply_import`); return the ids added or updated."""
    if plan.problems:
        raise ValidationError(plan.problems)
    lyr = importable_layer(plan.layer)
    # Writers that check this layer (new parcels, other imports) wait until this commits,
    # so the plan checked below is what the rows are written next to.
    tx.lock(lyr.name)
    if store.revision(_checked_layers(lyr)) != plan.revision:
        plan = _plan_again(store, plan)
    for key in plan.removed:
        tx.delete(lyr.name, key)
    for key, changes in plan.updates.items():
        tx.update(lyr.name, key, changes, version=plan.versions[key])
    new: pd.DataFrame | CheckedRows = plan.frame if plan.rows is None else plan.rows
    if len(plan.new_ids) != len(plan.frame):  # not every feature is new (not a first import)
        mask = _among(plan.frame[lyr.key], set(plan.new_ids))
        new = plan.frame[mask] if plan.rows is None else plan.rows.take(mask)
    added = tx.insert(lyr.name, new) if len(new) else []
    return [*added, *plan.updates]


def _plan_again(store: Any, plan: ImportPlan) -> ImportPlan:
    """The same import planned against the store as it is now; refused if it changed
    what was checked (new problems, other removals)."""
    fresh = plan_import(
        store,
        plan.layer,
        Upload(plan.layer, plan.input_frame(), source=plan.source),
        mode=plan.mode,
    )
    if fresh.problems:
        raise ValidationError(fresh.problems)
    if list(fresh.removed) != list(plan.removed):
        raise ValidationError(
            [
                Problem(
                    None,
                    None,
                    None,
                    f"{plan.layer} changed since the file was checked: the "
                    f"replace would now remove {fresh.removals} feature(s), "
                    f"not {plan.removals}; check the file again",
                )
            ]
        )
    # Features someone edited meanwhile would be overwritten (ids another writer just
    # added as the file has them are merely unchanged now).
    moved = sorted(
        k
        for k in set(fresh.updates) | set(plan.updates)
        if set(fresh.updates.get(k, ())) != set(plan.updates.get(k, ()))
    )
    if moved:
        raise ValidationError(
            [
                Problem(
                    None,
                    None,
                    None,
                    f"{plan.layer} changed since the file was checked "
                    f"({', '.join(moved[:20])}); check the file again",
                )
            ]
        )
    return fresh


def import_file(
    store: Any,
    layer: str,
    source: Source,
    *,
    mode: str = "update",
    src_layer: str | None = None,
    crs: int | str | None = None,
    encoding: str | None = None,
    user: str = "system",
    filename: str | None = None,
) -> ImportPlan:
    """Read, plan and apply an import in one call; return the applied plan.

    Raises
    ------
    ValidationError
        With every problem found; nothing is written.
    """
    upload = read_upload(
        source,
        layer,
        src_layer=src_layer,
        crs=crs,
        filename=filename,
        encoding=encoding,
        epsg=store.epsg,
    )
    plan = plan_import(store, layer, upload, mode=mode)
    apply_import(store, plan, user=user)
    return plan
