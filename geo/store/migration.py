"""Copying a whole store between backends, verified feature by feature."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from geo.layers import LAYERS, get_layer
from geo.store.base import Store, StoreError, redact
from geo.store.rows import RowSession


@dataclass(frozen=True)
class LayerCopy:
    """What one layer's copy moved and whether the target reads back the same."""

    layer: str
    source: int
    target: int
    differing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Every row arrived and reads back equal."""
        return self.source == self.target and not self.differing


def fill_from(
    source: Store, progress: Callable[[str], None] | None = None
) -> Callable[[RowSession], None]:
    """A filler for :func:`geo.store.create_store` writing every layer of ``source``
    as it is (ids, versions, audit records), adding no audit records of its own."""

    def fill(session: RowSession) -> None:
        for name in LAYERS:
            n = session.restore(name, source.read(name))
            if progress is not None:
                progress(f"{name}: {n} copied")

    return fill


def compare(source: Store, target: Store) -> list[LayerCopy]:
    """Read every layer from both stores and compare them row by row.

    Attributes must be equal and geometries exactly equal (same vertices).
    """
    return [_compare_layer(name, source.read(name), target.read(name)) for name in LAYERS]


def _compare_layer(name: str, a: pd.DataFrame, b: pd.DataFrame) -> LayerCopy:
    lyr = get_layer(name)
    a_by = a.set_index(lyr.key, drop=False)
    b_by = b.set_index(lyr.key, drop=False)
    keys = a_by.index.union(b_by.index)
    missing = set(keys.difference(a_by.index)) | set(keys.difference(b_by.index))
    common = a_by.index.intersection(b_by.index)
    a_c, b_c = a_by.loc[common], b_by.loc[common]
    bad = np.zeros(len(common), dtype=bool)
    for fld in lyr.fields:
        x, y = a_c[fld.name].astype(object), b_c[fld.name].astype(object)
        bad |= np.array([not _same(u, v) for u, v in zip(x.tolist(), y.tolist())], dtype=bool)
    if lyr.is_feature:
        ga, gb = np.asarray(a_c.geometry.values), np.asarray(b_c.geometry.values)
        same = shapely.equals_exact(ga, gb, tolerance=0.0)
        bad |= ~(same | (shapely.is_missing(ga) & shapely.is_missing(gb)))
    differing = sorted(map(str, missing | set(common[bad])))
    return LayerCopy(name, len(a), len(b), tuple(differing))


def _same(a: Any, b: Any) -> bool:
    if pd.isna(a) or pd.isna(b):
        return bool(pd.isna(a) and pd.isna(b))
    return bool(a == b)


def migrate(
    source_location: str | Path,
    target_location: str | Path,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[LayerCopy]:
    """Copy every layer and table of one store into a new store, then verify it.

    The target is created (``force`` replaces an existing store there) and filled
    in one step: a failure leaves no half-copied store.

    Raises
    ------
    StoreError
        When the copy reads back differently (naming the layers and ids).
    """
    from geo.store import create_store, is_url, open_store

    if (
        str(source_location) == str(target_location)
        if is_url(source_location)
        else not is_url(target_location)
        and Path(source_location).resolve() == Path(target_location).resolve()
    ):
        raise StoreError(f"--from and --to name the same store ({redact(source_location)})")
    source = open_store(source_location)
    try:
        target = create_store(target_location, force=force, fill=fill_from(source, progress))
        try:
            report = compare(source, target)
        finally:
            target.close()
    finally:
        source.close()
    bad = [r for r in report if not r.ok]
    if bad:
        raise StoreError(
            "the copy differs from its source: "
            + "; ".join(
                f"{r.layer} ({r.source} → {r.target} rows, e.g. {', '.join(r.differing[:5])})"
                for r in bad
            )
        )
    return report
