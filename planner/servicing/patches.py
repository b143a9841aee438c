"""Per-site arrays and maps written row by row: a shared base plus the rows written since.

A plot write changes a few sites' answers; copying every per-site array (and the gates x
sites, stations x sites and substations x sites matrices) for each kept evaluation made a
write cost O(sites).  A :class:`PatchedArray` instead keeps the base array (shared by every
revision that derives from it, never written) and the rows written since, sorted by
position, so a write costs O(rows written) and a reader of the previous revision keeps
its own object, unchanged.  Reading a few sites (``a[pos]``, ``a[:, pos]``) gathers from
the base and the patch; anything else materialises the whole array once per object (a
reader that wants every site pays O(sites), as it would to read them).  When a patch grows
past a fraction of the sites it is folded into a new base (amortised O(1) per row).
:class:`PatchedMap` does the same for the per-site ``{site: value}`` maps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.mixins import NDArrayOperatorsMixin

#: A patch is folded into a new base when it holds more rows than this share of the sites.
FOLD_SHARE = 16
#: ... and more than this many rows (small arrays are cheap to copy anyway).
FOLD_MIN = 2048


class PatchedArray(NDArrayOperatorsMixin):
    """A read-only array whose last axis is per site: ``base`` with the sites ``at``
    (sorted, distinct; they may lie beyond the base: appended sites) holding ``values``.

    Behaves as the array it stands for under numpy (``np.asarray``, ufuncs, operators)
    and indexing; gathers of a few sites do not materialise it.
    """

    __slots__ = ("_base", "_at", "_values", "_n", "_full", "_lock")

    def __init__(self, base: np.ndarray, at: np.ndarray, values: np.ndarray, n: int):
        self._base = base
        self._at = at
        self._values = values
        self._n = n
        self._full: np.ndarray | None = None
        self._lock = threading.Lock()

    # ----------------------------------------------------------- array protocol
    @property
    def ndim(self) -> int:
        """Number of dimensions (the last is per site)."""
        return int(self._base.ndim)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the array it stands for."""
        return (*self._base.shape[:-1], self._n)

    @property
    def dtype(self) -> np.dtype[Any]:
        """A dtype wide enough for the base and the patch."""
        return np.result_type(self._base, self._values)

    @property
    def patched_rows(self) -> int:
        """How many sites the patch holds."""
        return len(self._at)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        full = self.materialised()
        if copy:  # the caller may write to it: never hand out the cached array
            return full.astype(dtype or full.dtype, copy=True)
        return full if dtype is None else full.astype(dtype, copy=False)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        plain = tuple(np.asarray(x) if isinstance(x, PatchedArray) else x for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(
                np.asarray(x) if isinstance(x, PatchedArray) else x for x in kwargs["out"]
            )
        return getattr(ufunc, method)(*plain, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Anything else an ndarray offers (copy, astype, tolist, any, ...): on the whole.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.materialised(), name)

    def materialised(self) -> np.ndarray:
        """The whole array (built once per object; read-only by convention)."""
        full = self._full
        if full is None:
            with self._lock:
                full = self._full
                if full is None:
                    full = np.empty(self.shape, dtype=self.dtype)
                    nb = self._base.shape[-1]
                    full[..., :nb] = self._base
                    full[..., self._at] = self._values
                    full.flags.writeable = False  # shared by every reader of this revision
                    self._full = full
        return full

    # ----------------------------------------------------------------- indexing
    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, PatchedArray):
            key = np.asarray(key)
        if self.ndim == 1 and _is_sites(key):
            return self._gather((), _positions(key, self._n))
        if self.ndim == 2 and isinstance(key, tuple) and len(key) == 2:
            lead, sites = key
            if isinstance(lead, slice) and lead == slice(None) and _is_sites(sites):
                return self._gather((slice(None),), _positions(sites, self._n))
        if self.ndim == 2 and not isinstance(key, tuple) and _is_rows(key):
            return self._rows(key)
        return self.materialised()[key]

    def _gather(self, lead: tuple[Any, ...], idx: np.ndarray) -> np.ndarray:
        nb = self._base.shape[-1]
        dtype = self.dtype
        out = np.empty((*self._base.shape[:-1], len(idx)), dtype=dtype)
        inside = idx < nb
        if inside.all():
            out[...] = self._base[(*lead, idx)]
        elif inside.any():
            out[..., inside] = self._base[(*lead, idx[inside])]
        at = self._at
        if not len(at) or not len(idx):
            return out
        if len(idx) > 8 * len(at) and bool(np.all(idx[1:] > idx[:-1])):
            # Many sites in order (a mask): look the few patched ones up in them instead.
            k = np.minimum(np.searchsorted(idx, at), len(idx) - 1)
            hit = idx[k] == at
            if hit.any():
                out[..., k[hit]] = self._values[(*lead, np.flatnonzero(hit))]
            return out
        k = np.minimum(np.searchsorted(at, idx), len(at) - 1)
        hit = at[k] == idx
        if hit.any():
            out[..., hit] = self._values[(*lead, k[hit])]
        return out

    def written(self, idx: np.ndarray, new: np.ndarray) -> np.ndarray:
        """A plain copy of the whole array with the sites ``idx`` holding ``new`` (one pass:
        for writes to most sites)."""
        dtype = np.result_type(self.dtype, new.dtype)
        out = np.empty((*self._base.shape[:-1], max(self._n, int(idx.max()) + 1)), dtype=dtype)
        nb = self._base.shape[-1]
        out[..., :nb] = self._base if self._full is None else self._full[..., :nb]
        if self._full is None:
            out[..., self._at] = self._values
        else:
            out[..., nb : self._n] = self._full[..., nb:]
        out[..., idx] = new
        return out

    def _rows(self, key: Any) -> np.ndarray:
        """Whole rows (every site) of a 2-D array: ``a[rows]``."""
        base = self._base[key]
        out = np.empty((*base.shape[:-1], self._n), dtype=self.dtype)
        out[..., : self._base.shape[-1]] = base
        out[..., self._at] = self._values[key]
        return out


def _is_sites(key: Any) -> bool:
    """Whether ``key`` picks sites by position or mask (an integer or bool array)."""
    return isinstance(key, (np.ndarray, list)) and np.asarray(key).dtype.kind in "iub"


def _is_rows(key: Any) -> bool:
    return isinstance(key, (int, np.integer)) or _is_sites(key)


def _positions(key: Any, n: int) -> np.ndarray:
    key = np.asarray(key)
    if key.dtype.kind == "b":
        return np.flatnonzero(key)
    idx = key.astype(np.intp, copy=False)
    out: np.ndarray = np.where(idx < 0, idx + n, idx) if len(idx) and idx.min() < 0 else idx
    return out


def patched(
    value: Any, idx: np.ndarray, new: np.ndarray, size: int | None = None
) -> np.ndarray | PatchedArray:
    """``value`` (an array or :class:`PatchedArray`, per site on its last axis) with the
    sites ``idx`` (distinct; at or past the end: appended) holding ``new``, cut to ``size``
    sites if given (the base is viewed, not copied); ``value`` is left as it was.  Costs
    O(sites patched since the last fold)."""
    idx = np.asarray(idx, dtype=np.intp)
    new = np.asarray(new)
    if isinstance(value, PatchedArray) and value._full is not None:
        value = value._full  # materialised already: a base of its own (the old one can go)
    if isinstance(value, PatchedArray):
        base, at, vals, n = value._base, value._at, value._values, value._n
    else:
        value = np.asarray(value)
        base, n = value, value.shape[-1]
        at = np.zeros(0, np.intp)
        vals = np.zeros((*value.shape[:-1], 0), dtype=value.dtype)
    if size is not None:  # the sites past ``size`` leave: the base and the patch are cut
        base, n = base[..., :size], size
        inside = at < size
        at, vals = at[inside], vals[..., inside]
        if not len(idx):
            return PatchedArray(base, at, vals, n) if len(at) else base
    elif len(idx) == 0:
        return value  # type: ignore[no-any-return]
    n = max(n, int(idx.max()) + 1) if len(idx) else n
    keep = np.ones(len(at), bool)
    if len(at) and len(idx):  # the sites written again leave the old patch
        ordered = np.sort(idx)
        k = np.minimum(np.searchsorted(ordered, at), len(ordered) - 1)
        keep = ordered[k] != at
    at2 = np.concatenate([at[keep], idx])
    vals2 = np.concatenate(
        [vals[..., keep].astype(np.result_type(vals, new), copy=False), new], axis=-1
    )
    order = np.argsort(at2, kind="stable")
    out = PatchedArray(base, at2[order], vals2[..., order], n)
    if len(at2) > max(FOLD_MIN, n // FOLD_SHARE):
        return out.materialised()
    return out


def swap_removed(value: Any, p: int) -> np.ndarray | PatchedArray:
    """``value`` (per site on its last axis) without site ``p``: the last site takes its
    place (one site written, the base viewed)."""
    last = value.shape[-1] - 1
    if p == last:
        return patched(value, np.zeros(0, np.intp), np.zeros(0), size=last)
    moved = value[np.array([last])] if value.ndim == 1 else value[:, np.array([last])]
    return patched(value, np.array([p]), np.asarray(moved), size=last)


class PatchedMap(Mapping[int, Any]):
    """A read-only ``{site: value}`` map: ``base`` without the sites in ``gone``, plus
    ``extra`` (sites written since)."""

    __slots__ = ("_base", "_gone", "_extra", "_len")

    def __init__(self, base: Mapping[int, Any], gone: frozenset[int], extra: dict[int, Any]):
        self._base = base
        self._gone = gone
        self._extra = extra
        dropped = sum(1 for s in gone if s in base)
        self._len = len(base) - dropped + len(extra)

    def __getitem__(self, site: int) -> Any:
        if site in self._extra:
            return self._extra[site]
        if site in self._gone:
            raise KeyError(site)
        return self._base[site]

    def __iter__(self) -> Iterator[int]:
        gone = self._gone
        yield from (s for s in self._base if s not in gone)
        yield from self._extra

    def __len__(self) -> int:
        return self._len

    def plain(self) -> dict[int, Any]:
        """The map as a plain dict (copied at C speed, then the few sites written)."""
        out = dict(self._base)
        for site in self._gone:
            out.pop(site, None)
        out.update(self._extra)
        return out


def patched_map(value: Mapping[int, Any], idx: np.ndarray, new: Mapping[int, Any]) -> Any:
    """``value`` with the sites ``idx`` holding what ``new`` holds (keyed by position in
    ``idx``; a site ``new`` lacks has no entry); ``value`` is left as it was."""
    sites = [int(s) for s in np.asarray(idx).tolist()]
    written = {sites[k]: v for k, v in new.items()}
    if isinstance(value, PatchedMap):
        base, gone, extra = value._base, value._gone, value._extra
    else:
        base, gone, extra = value, frozenset(), {}
    at = frozenset(sites)
    extra = {s: v for s, v in extra.items() if s not in at}
    extra.update(written)
    gone = gone | at  # the base's entries of every written site are hidden
    out = PatchedMap(base, gone, extra)
    return out.plain() if len(gone) + len(extra) > FOLD_MIN else out  # fold: a dict again


def swap_removed_map(value: Mapping[int, Any], p: int, last: int) -> Any:
    """``value`` (a per-site map of ``last + 1`` sites) without site ``p``: the last site's
    entry, if any, moves to ``p``."""
    if p == last:
        return patched_map(value, np.array([last]), {})
    return patched_map(value, np.array([p, last]), {0: value[last]} if last in value else {})


class PlotIndex:
    """Plot ids to positions: a ``pd.Index`` (its hash table shared by every revision
    derived from it) and the ids placed since (added, moved; -1: gone), so adding or
    removing a plot costs that plot, not a new index of every id."""

    __slots__ = ("_base", "_placed", "_lookup")

    def __init__(self, base: pd.Index, placed: dict[str, int] | None = None):
        self._base = base
        self._placed = placed or {}
        self._lookup: tuple[pd.Index, np.ndarray] | None = None

    @classmethod
    def of(cls, ids: np.ndarray) -> PlotIndex:
        """The index of these ids (positions 0..n-1)."""
        return cls(pd.Index(np.asarray(ids).astype(object), dtype=object))

    def placed(self, changes: Mapping[str, int], ids: np.ndarray) -> PlotIndex:
        """This index with ``changes`` (id: new position, -1 for gone); ``ids``: every
        plot's id after them (the index is built again from them past a fold)."""
        placed = {**self._placed, **changes}
        if len(placed) > FOLD_MIN:
            return PlotIndex.of(ids)
        return PlotIndex(self._base, placed)

    def get_indexer(self, target: Any) -> np.ndarray:
        """Positions of ``target``'s ids (-1 where unknown), as ``pd.Index.get_indexer``."""
        pos = np.asarray(self._base.get_indexer(target), dtype=np.intp)
        if not self._placed:
            return pos
        if self._lookup is None:  # small: built once per revision
            self._lookup = (
                pd.Index(list(self._placed), dtype=object),
                np.fromiter(self._placed.values(), dtype=np.intp, count=len(self._placed)),
            )
        keys, values = self._lookup
        hit = np.asarray(keys.get_indexer(target))
        found = hit >= 0
        pos = pos.copy()
        pos[found] = values[hit[found]]
        return pos

    def __contains__(self, key: object) -> bool:
        if key in self._placed:
            return self._placed[key] >= 0
        return key in self._base


class Lazy:
    """A value (an evaluation, a headroom table) built by the first model to ask for it;
    the others wait for it."""

    def __init__(self, build: Callable[[Any], Any]):
        self._build: Callable[[Any], Any] | None = build
        self._value: Any = None
        self._lock = threading.Lock()

    @property
    def built(self) -> Any:
        """The value if it is built already, else None (never waits)."""
        return self._value

    def get(self, model: Any) -> Any:
        """The value (built now by ``model`` if it is not yet)."""
        with self._lock:
            if self._value is None:
                assert self._build is not None
                self._value = self._build(model)
                self._build = None  # frees what building needed
            return self._value


class PendingFrame:
    """A frame not built yet: ``base`` with ``rows`` written in, merged by ``build(base,
    rows)`` when first read (once; readers wait for it)."""

    def __init__(self, base: Any, rows: Any, build: Any):
        self.base = base
        self.rows = rows
        self._build = build
        self._frame: Any = None
        self._lock = threading.Lock()

    @property
    def built(self) -> Any:
        """The merged frame if it is built already, else None (never waits)."""
        return self._frame

    def frame(self) -> Any:
        """The merged frame (built now if it is not yet)."""
        with self._lock:
            if self._frame is None:
                self._frame = self._build(self.base, self.rows)
            return self._frame


class Layers(Mapping[str, Any]):
    """A servicing model's layers by name; one of them may be a :class:`PendingFrame`,
    merged when first read (readers of the model's answers never need it)."""

    __slots__ = ("_frames",)

    def __init__(self, frames: Mapping[str, Any]):
        self._frames = dict(frames)

    def __getitem__(self, name: str) -> Any:
        value = self._frames[name]
        return value.frame() if isinstance(value, PendingFrame) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    def raw(self, name: str) -> Any:
        """Layer ``name`` as held: a frame or a :class:`PendingFrame`."""
        return self._frames[name]

    def replaced(self, frames: Mapping[str, Any]) -> Layers:
        """These layers with ``frames`` in place of the same names (nothing is built)."""
        return Layers({**self._frames, **frames})
