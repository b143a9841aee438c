"""A store's servicing model kept current: built once, then updated from the layers a write
changed (per-layer revisions), so a reader after a write pays for that write only."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

from geo.layers import ASSET_LAYERS
from geo.store import Store
from geo.store.plot_changes import AuditMark, changed_plots, newest_audit
from planner.servicing import ServicingModel

#: The layers the servicing model reads; a write elsewhere never touches it.
SERVICING_LAYERS: tuple[str, ...] = ("plots", *ASSET_LAYERS)


@dataclass(frozen=True)
class _Current:
    token: str
    revisions: dict[str, str]
    model: ServicingModel
    audit: int  # the newest audit id of plots seen
    gaps: dict[int, float]  # lower ids not seen yet (maybe still committing), since when


class LiveServicing:
    """The servicing model of a store as it is now, for every thread of one process.

    Each call reads the servicing layers' revision (one query); when it moved, the
    per-layer revisions say which layers changed, only those are read again (of the
    plots, only the rows the audit trail names since the last call), and the model is
    updated from them (:meth:`ServicingModel.updated`): an edited plot is
    evaluated again, a changed asset re-evaluates what it serves.  Several processes
    over one store each keep their own, and see each other's writes through the
    store's revisions.  Only the current model is kept (the one it replaced is freed
    when its last reader is done).

    Updates compare the layers' content with the model's, so one instance may serve
    apps over byte-identical copies of one store (the test suite's), where equal
    revisions mean equal content.
    """

    def __init__(self) -> None:
        self._current: _Current | None = None
        self._lock = threading.Lock()
        self._building = threading.Lock()

    def model(self, store: Store, today: dt.date) -> ServicingModel:
        """The model of ``store`` as it is now (updated first if a servicing layer moved);
        ``today`` is the date overdue flags compare with (a new day updates the assets)."""
        token = store.revision(SERVICING_LAYERS)
        current = self._current
        if current is not None and current.token == token and current.model.today == today:
            return current.model
        with self._building:  # one update at a time; the others then find it done
            current = self._current
            if current is not None and current.token == token and current.model.today == today:
                return current.model
            # Revisions first, then the data: the data is at least as new as what is
            # recorded, so a write landing in between is seen (again) on the next call.
            revisions = store.revisions(SERVICING_LAYERS)
            if current is None:
                audit, gaps = newest_audit(store), {}
                model = ServicingModel(
                    {name: store.read(name) for name in SERVICING_LAYERS}, today=today
                )
            else:
                moved = [n for n in SERVICING_LAYERS if revisions[n] != current.revisions[n]]
                audit, gaps = current.audit, current.gaps
                plots: dict[str, Any] = {}
                if "plots" in moved:
                    plots, audit, gaps = _plot_changes(store, current)
                model = current.model.updated(
                    assets={name: store.read(name) for name in moved if name != "plots"},
                    today=today,
                    **plots,
                )
            with self._lock:
                self._current = _Current(token, revisions, model, audit, gaps)
            return model


def _plot_changes(store: Store, current: _Current) -> tuple[dict[str, Any], int, dict[int, float]]:
    """What changed in the plots layer since ``current``: the rows the audit trail names
    (``plot_rows``, ``removed``), or the whole layer when it cannot say (a bulk write, an
    import replacing the layer, or no record explaining the new revision)."""
    keys, mark = changed_plots(store, AuditMark(current.audit, current.gaps))
    if keys is None:
        top = newest_audit(store)  # before the read: what it holds is at least that new
        return {"plots": store.read("plots")}, max(mark.audit, top), mark.gaps
    rows = store.read("plots", where={"plot_id": keys})
    present = set(rows["plot_id"].astype(str))
    return (
        {"plot_rows": rows, "removed": [k for k in keys if k not in present]},
        mark.audit,
        mark.gaps,
    )
