"""Where sites (plots or drawn parcels) meet the networks: scenario-independent geometry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np

#: ``(site, feature, distance)`` arrays, sorted by site then distance.
Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


def _sorted(pairs: Pairs, extra: np.ndarray | None = None) -> tuple[Pairs, np.ndarray | None]:
    order = np.argsort(pairs[0], kind="stable")
    out = (pairs[0][order], pairs[1][order], pairs[2][order])
    return out, None if extra is None else extra[order]


@dataclass(eq=False)
class Sites:
    """Polygons to be serviced and what lies within reach of each.

    Attributes
    ----------
    geoms : ndarray of polygons
    road_pairs : Pairs
        Road edges within the frontage distance (site, edge, gap).
    siding_pairs : Pairs
        Rail siding edges within the frontage distance (site, rail edge, gap).
    main_pairs : dict
        Per utility, the mains within its connection distance (site, feature, distance).
    road_t : ndarray
        For each road pair, where along the edge the site is nearest (0..1).
    """

    geoms: np.ndarray
    road_pairs: Pairs
    siding_pairs: Pairs
    main_pairs: dict[str, Pairs]
    road_t: np.ndarray

    @property
    def n(self) -> int:
        """How many sites."""
        return len(self.geoms)

    def subset(self, idx: np.ndarray) -> Sites:
        """The sites at positions ``idx`` (distinct; renumbered 0..len(idx)-1)."""
        idx = np.asarray(idx, dtype=np.intp)
        new = np.full(self.n, -1, np.intp)
        new[idx] = np.arange(len(idx))

        def cut(pairs: Pairs) -> tuple[Pairs, np.ndarray]:
            left = pairs[0]
            keep = new[left] >= 0 if len(left) else np.zeros(0, bool)
            return (new[left[keep]], pairs[1][keep], pairs[2][keep]), keep

        road, keep = cut(self.road_pairs)
        road, road_t = _sorted(road, self.road_t[keep])
        siding, _ = _sorted(cut(self.siding_pairs)[0])
        mains = {u: _sorted(cut(p)[0])[0] for u, p in self.main_pairs.items()}
        assert road_t is not None
        return Sites(self.geoms[idx], road, siding, mains, road_t)

    def concat(self, other: Sites) -> Sites:
        """These sites, then ``other``'s (numbered after them)."""
        n = self.n

        def join(a: Pairs, b: Pairs) -> Pairs:
            return (np.r_[a[0], b[0] + n], np.r_[a[1], b[1]], np.r_[a[2], b[2]])

        road, road_t = _sorted(
            join(self.road_pairs, other.road_pairs), np.r_[self.road_t, other.road_t]
        )
        assert road_t is not None
        return Sites(
            np.concatenate([self.geoms, other.geoms]),
            road,
            _sorted(join(self.siding_pairs, other.siding_pairs))[0],
            {u: _sorted(join(p, other.main_pairs[u]))[0] for u, p in self.main_pairs.items()},
            road_t,
        )

    def appended(self, other: Sites) -> Sites:
        """These sites, then ``other``'s (numbered after them): the pairs stay sorted by
        site without sorting (O(pairs) copying), the geometries are patched, not copied."""
        from planner.servicing.patches import patched

        n = self.n

        def join(a: Pairs, b: Pairs) -> Pairs:
            order = np.argsort(b[0], kind="stable")  # the few new pairs, by site
            return (
                np.r_[a[0], b[0][order] + n].astype(np.intp),
                np.r_[a[1], b[1][order]],
                np.r_[a[2], b[2][order]],
            )

        order = np.argsort(other.road_pairs[0], kind="stable")
        return Sites(
            cast(np.ndarray, patched(self.geoms, n + np.arange(other.n), other.geoms)),
            join(self.road_pairs, other.road_pairs),
            join(self.siding_pairs, other.siding_pairs),
            {u: join(p, other.main_pairs[u]) for u, p in self.main_pairs.items()},
            np.r_[self.road_t, other.road_t[order]],
        )

    def removed(self, p: int) -> Sites:
        """These sites without site ``p``: the last site takes its number (its pairs, at
        the end, move to ``p``'s place; O(pairs) copying, as :meth:`replaced`)."""
        from planner.servicing.patches import patched

        last = self.n - 1

        def cut(a: Pairs) -> tuple[Pairs, Pairs]:
            k = int(np.searchsorted(a[0], last))  # sorted by site: the last site's are last
            mine = (np.zeros(len(a[0]) - k, np.intp), a[1][k:], a[2][k:])
            return (a[0][:k], a[1][:k], a[2][:k]), mine

        (road, road_last), (siding, siding_last) = cut(self.road_pairs), cut(self.siding_pairs)
        mains = {u: cut(pairs) for u, pairs in self.main_pairs.items()}
        k = len(road[0])
        geoms = self.geoms
        kept = Sites(
            cast(np.ndarray, patched(geoms, np.zeros(0, np.intp), np.zeros(0, object), last)),
            road,
            siding,
            {u: pairs[0] for u, pairs in mains.items()},
            self.road_t[:k],
        )
        if p == last:
            return kept
        moved = Sites(
            np.asarray(geoms[np.array([last])], dtype=object),
            road_last,
            siding_last,
            {u: pairs[1] for u, pairs in mains.items()},
            self.road_t[k:],
        )
        return kept.replaced(np.array([p]), moved)

    def replaced(self, idx: np.ndarray, other: Sites) -> Sites:
        """These sites with those at positions ``idx`` (distinct) replaced by ``other``'s,
        in order (numbering kept).  The pairs stay sorted by site without sorting again:
        the new sites' pairs are inserted where their sites' go (O(pairs) copying, no
        sort), and the geometries are patched, not copied."""
        from planner.servicing.patches import patched

        idx = np.asarray(idx, dtype=np.intp)
        gone = np.zeros(self.n, bool)
        gone[idx] = True

        def swap(
            a: Pairs, b: Pairs, extra: tuple[np.ndarray, np.ndarray] | None = None
        ) -> tuple[Pairs, Any]:
            keep = ~gone[a[0]] if len(a[0]) else np.zeros(0, bool)
            left = idx[b[0]]
            order = np.argsort(left, kind="stable")  # the few new pairs, by site
            left = left[order]
            kept = a[0][keep]
            at = np.searchsorted(kept, left, side="right")
            pairs = (
                np.insert(kept, at, left).astype(np.intp),
                np.insert(a[1][keep], at, b[1][order]),
                np.insert(a[2][keep], at, b[2][order]),
            )
            more = None if extra is None else np.insert(extra[0][keep], at, extra[1][order])
            return pairs, more

        road, road_t = swap(self.road_pairs, other.road_pairs, (self.road_t, other.road_t))
        return Sites(
            # a PatchedArray reads as the array of every geometry
            cast(np.ndarray, patched(self.geoms, idx, np.asarray(other.geoms, dtype=object))),
            road,
            swap(self.siding_pairs, other.siding_pairs)[0],
            {u: swap(p, other.main_pairs[u])[0] for u, p in self.main_pairs.items()},
            road_t,
        )
