"""A reader's place in the audit trail, and the plots written since it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from geo.store.base import Store

#: How long an audit id below the newest one seen is looked for again: on PostGIS a
#: transaction takes its id before it commits, so ids may commit out of order.
GAP_SECONDS = 120.0


@dataclass(frozen=True)
class AuditMark:
    """Where a reader stands in the audit trail.

    Attributes
    ----------
    audit : int
        The newest audit id seen.
    gaps : dict of int to float
        Lower ids not seen yet (maybe still committing), and since when (monotonic).
    """

    audit: int
    gaps: dict[int, float] = field(default_factory=dict)


def newest_audit(store: Store) -> int:
    """The newest audit id of ``store`` (0 when none)."""
    newest = store.read("audit", order_by="-audit_id", limit=1)
    return int(newest["audit_id"].iloc[0]) if len(newest) else 0


def changed_plots(store: Store, mark: AuditMark) -> tuple[list[str] | None, AuditMark]:
    """The plot ids the audit trail names since ``mark`` (sorted, distinct), or None when
    it cannot say (a bulk write or clear, an import replacing the layer, or no record
    explaining the new revision); and the mark after them."""
    recent = store.changes_since(mark.audit, sorted(mark.gaps))
    ids = [audit_id for audit_id, _, _ in recent]
    newest = max([mark.audit, *ids])
    now = time.monotonic()
    seen = set(ids)
    gaps = {i: t for i, t in mark.gaps.items() if i not in seen and now - t < GAP_SECONDS}
    gaps.update({i: now for i in range(mark.audit + 1, newest) if i not in seen})
    keys = [feat for _, layer, feat in recent if layer == "plots"]
    after = AuditMark(newest, gaps)
    if not keys or "*" in keys:
        return None, after
    return sorted(set(keys)), after
