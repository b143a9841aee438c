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
    big : ndarray of int
        The rows kept apart.
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
    big: np.ndarray
    cell_boxes: list[np.ndarray]

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
        return cls(
            x0,
            y0,
            nx,
            ny,
            float(np.max(b[small, 1] - b[small, 0])) if len(small) else 0.0,
            float(np.max(b[small, 3] - b[small, 2])) if len(small) else 0.0,
            keys[order],
            rows,
            big,
            [np.ascontiguousarray(b[rows, k]) for k in range(4)],
        )

    def refiled(
        self, b: np.ndarray, moved: np.ndarray, gone: np.ndarray, at: np.ndarray
    ) -> BoxGrid:
        """A new grid over the boxes ``b`` after a patch (this one unchanged).

        Parameters
        ----------
        b : ndarray, shape (m, 4)
            The boxes after the patch.
        moved : ndarray of int
            Each old row's new row (-1: deleted).
        gone : ndarray of bool
            Old rows whose box is filed again (written or deleted).
        at : ndarray of int
            New rows to file (written or inserted).
        """
        filed = len(self.cell_keys)
        keep = ~gone[self.cell_rows]
        keys = self.cell_keys[keep[:filed]]
        small = moved[self.cell_rows[:filed][keep[:filed]]]
        big = moved[self.cell_rows[filed:][keep[filed:]]]
        box = b[at]
        drawn = ~np.isnan(box).any(axis=1)
        w, h = box[:, 1] - box[:, 0], box[:, 3] - box[:, 2]
        cx = np.floor((box[:, 0] - self.x0) / CELL_M)
        cy = np.floor((box[:, 2] - self.y0) / CELL_M)
        # outside the grid: kept apart too (its cells are fixed until the next full build)
        inside = (cx >= 0) & (cx < self.nx) & (cy >= 0) & (cy < self.ny)
        fits = drawn & (w <= CELL_M) & (h <= CELL_M)
        new = fits & inside
        new_keys = (np.where(new, cy, 0) * self.nx + np.where(new, cx, 0)).astype(np.int64)[new]
        order = np.argsort(new_keys, kind="stable")
        where = np.searchsorted(keys, new_keys[order], "right")
        keys = np.insert(keys, where, new_keys[order])
        small = np.insert(small, where, at[new][order])
        big = np.concatenate([big, at[drawn & ~new]])
        rows = np.concatenate([small, big])
        return BoxGrid(
            self.x0,
            self.y0,
            self.nx,
            self.ny,
            max(self.max_w, float(np.max(w[new], initial=0.0))),
            max(self.max_h, float(np.max(h[new], initial=0.0))),
            keys,
            rows,
            big,
            [np.ascontiguousarray(b[rows, k]) for k in range(4)],
        )

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
