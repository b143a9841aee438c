"""A grid of cells filing boxes by their lower-left corner, to find those a box meets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Side of a grid cell, metres: a plot is filed under the cell of its lower-left corner.
CELL_M = 500.0


@dataclass(eq=False)
class BoxGrid:
    """Rows of a ``(n, 4)`` array of boxes (minx, maxx, miny, maxy) filed by cell.

    Boxes wider or taller than a cell, and (after a patch) those outside the grid, are
    kept apart (``big``) and always tested.

    Attributes
    ----------
    x0, y0 : float
        The grid's lower-left corner.
    nx, ny : int
        Its columns and rows.
    cell_keys : ndarray of int
        Cell (``cy * nx + cx``) of each filed row, ascending.
    cell_rows : ndarray of int
        The filed rows in cell order, then the big ones.
    apart : int
        How many rows are kept apart (the last of ``cell_rows``).
    cell_boxes : list of ndarray
        Each bound of ``cell_rows``'s boxes, contiguous.
    """

    x0: float
    y0: float
    nx: int
    ny: int
    max_w: float
    max_h: float
    cell_keys: np.ndarray
    cell_rows: np.ndarray
    apart: int
    cell_boxes: list[np.ndarray]
    #: Filed boxes per square metre of the grid, and their mean size (a viewport's likely
    #: hits; kept as they were by a patch).
    density: float = 0.0
    mean_w: float = 0.0
    mean_h: float = 0.0

    @classmethod
    def of(cls, b: np.ndarray) -> BoxGrid:
        """The grid of every drawn box of ``b`` (NaN rows: no geometry, never filed)."""
        drawn = ~np.isnan(b).any(axis=1)
        wide = drawn & ((b[:, 1] - b[:, 0] > CELL_M) | (b[:, 3] - b[:, 2] > CELL_M))
        small = np.flatnonzero(drawn & ~wide)
        x0 = float(b[small, 0].min()) if len(small) else 0.0
        y0 = float(b[small, 2].min()) if len(small) else 0.0
        cx = np.floor((b[small, 0] - x0) / CELL_M).astype(np.int64)
        cy = np.floor((b[small, 2] - y0) / CELL_M).astype(np.int64)
        nx = int(cx.max()) + 1 if len(small) else 1
        ny = int(cy.max()) + 1 if len(small) else 1
        keys = cy * nx + cx
        order = np.argsort(keys, kind="stable")
        big = np.flatnonzero(wide)
        rows = np.concatenate([small[order], big])
        w, h = b[small, 1] - b[small, 0], b[small, 3] - b[small, 2]
        return cls(
            x0,
            y0,
            nx,
            ny,
            float(np.max(b[small, 1] - b[small, 0])) if len(small) else 0.0,
            float(np.max(b[small, 3] - b[small, 2])) if len(small) else 0.0,
            keys[order],
            rows,
            len(big),
            [np.ascontiguousarray(b[rows, k]) for k in range(4)],
            len(small) / (nx * ny * CELL_M * CELL_M),
            float(np.mean(w)) if len(small) else 0.0,
            float(np.mean(h)) if len(small) else 0.0,
        )

    def refiled(
        self, old: np.ndarray, b: np.ndarray, gone: np.ndarray, dropped: np.ndarray,
        place: np.ndarray, at: np.ndarray,
    ) -> BoxGrid:  # fmt: skip
        """A new grid after a patch (this one unchanged): entries move by copies of the
        arrays, never a sort or a gather of every row.

        Parameters
        ----------
        old, b : ndarray, shape (n, 4) and (m, 4)
            The boxes before and after the patch.
        gone : ndarray of int
            Old rows filed no more as they were (written or deleted).
        dropped, place : ndarray of int
            Old rows deleted (sorted), and where rows were inserted among the kept ones
            (``np.insert``'s indices).
        at : ndarray of int
            New rows to file (written or inserted).
        """
        filed = len(self.cell_keys)
        out = self._entries(old, gone)
        out_small = int(np.searchsorted(out, filed))
        keys = np.delete(self.cell_keys, out[:out_small])
        rows = np.delete(self.cell_rows, out)
        bounds = [np.delete(c, out) for c in self.cell_boxes]
        if len(dropped) or len(place):  # rows moved: kept row r is now at r - (dropped
            # below it) + (inserted up to it)
            j = rows - np.searchsorted(dropped, rows)
            rows = j + np.searchsorted(place, j, "right")
        small_n = filed - out_small
        box = b[at]
        new, key = self._cells(box)
        order = np.argsort(key[new], kind="stable")
        where = np.searchsorted(keys, key[new][order], "right")
        keys = np.insert(keys, where, key[new][order])
        part = [rows[:small_n], rows[small_n:]]
        rows = np.concatenate([np.insert(part[0], where, at[new][order]), part[1]])
        drawn = ~np.isnan(box).any(axis=1)
        apart = drawn & ~new
        rows = np.concatenate([rows, at[apart]])
        for k, c in enumerate(bounds):
            c = np.insert(c, where, box[new, k][order])
            bounds[k] = np.concatenate([c, box[apart, k]])
        w, h = box[new, 1] - box[new, 0], box[new, 3] - box[new, 2]
        return BoxGrid(
            self.x0,
            self.y0,
            self.nx,
            self.ny,
            max(self.max_w, float(np.max(w, initial=0.0))),
            max(self.max_h, float(np.max(h, initial=0.0))),
            keys,
            rows,
            len(rows) - len(keys),
            bounds,
            self.density,
            self.mean_w,
            self.mean_h,
        )

    def _cells(self, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which boxes are filed under a cell (not kept apart), and that cell."""
        drawn = ~np.isnan(box).any(axis=1)
        fits = drawn & (box[:, 1] - box[:, 0] <= CELL_M) & (box[:, 3] - box[:, 2] <= CELL_M)
        cx = np.floor((np.where(drawn, box[:, 0], self.x0) - self.x0) / CELL_M)
        cy = np.floor((np.where(drawn, box[:, 2], self.y0) - self.y0) / CELL_M)
        # outside the grid: kept apart too (its cells are fixed until the next full build)
        new = fits & (cx >= 0) & (cx < self.nx) & (cy >= 0) & (cy < self.ny)
        return new, (np.where(new, cy, 0) * self.nx + np.where(new, cx, 0)).astype(np.int64)

    def _entries(self, old: np.ndarray, gone: np.ndarray) -> np.ndarray:
        """Positions (sorted) in ``cell_rows`` of the rows ``gone`` (boxes ``old``): looked
        up in their own cell, or among the ones kept apart."""
        filed = len(self.cell_keys)
        new, key = self._cells(old[gone])
        lo = np.searchsorted(self.cell_keys, key[new], "left")
        n = np.searchsorted(self.cell_keys, key[new], "right") - lo
        cand = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
        small = cand[self.cell_rows[cand] == np.repeat(gone[new], n)]
        apart = filed + np.flatnonzero(np.isin(self.cell_rows[filed:], gone))
        return np.sort(np.concatenate([small, apart]))

    def hits(self, q: np.ndarray) -> np.ndarray:
        """Rows whose box meets ``q`` (minx, miny, maxx, maxy), in no particular order."""
        # a box filed under a cell left of or below q's reaches at most its widest
        # (tallest) one into it; a metre more for the rounding of these sums
        low = np.array([q[0] - self.max_w - 1.0, q[1] - self.max_h - 1.0])
        cx = np.floor((np.array([low[0], q[2]]) - self.x0) / CELL_M).astype(np.int64)
        cy = np.floor((np.array([low[1], q[3]]) - self.y0) / CELL_M).astype(np.int64)
        cx, cy = np.clip(cx, 0, self.nx - 1), np.clip(cy, 0, self.ny - 1)
        rows = np.arange(cy[0], cy[1] + 1, dtype=np.int64) * self.nx
        lo = np.searchsorted(self.cell_keys, rows + cx[0], "left")
        hi = np.searchsorted(self.cell_keys, rows + cx[1], "right")
        n = hi - lo
        starts = np.repeat(lo - np.cumsum(n) + n, n)
        first_big = len(self.cell_keys)
        cand = np.concatenate(
            [starts + np.arange(int(n.sum())), np.arange(first_big, len(self.cell_rows))]
        )
        x0, x1, y0, y1 = (bound[cand] for bound in self.cell_boxes)
        meets = (x0 <= q[2]) & (x1 >= q[0]) & (y0 <= q[3]) & (y1 >= q[1])
        found: np.ndarray = self.cell_rows[cand[meets]]
        return found
