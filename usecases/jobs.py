"""Background jobs: long work run off the request thread, its state kept in the store."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from geo.store import Conflict, NotFound, Store, StoreError
from geo.store.base import now_iso
from geo.validate import ValidationError

__all__ = ["Cancelled", "JobContext", "JobRunner", "Busy", "ACTIVE", "STALE_AFTER_S"]

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
#: A running job whose worker has shown no sign of life for this long has died with its process.
STALE_AFTER_S = 60.0
HEARTBEAT_S = 10.0
#: Progress is written at most this often; the cancel flag is read as often.
PROGRESS_EVERY_S = 0.5


class Cancelled(Exception):
    """Raised inside a job by :meth:`JobContext.progress` once someone cancelled it."""


class Busy(Conflict):
    """An exclusive job of this kind is already queued or running on this store."""


@dataclass
class JobContext:
    """What a job function sees: its id and parameters, and a way to report progress."""

    runner: JobRunner
    job_id: str
    params: dict[str, Any]
    _last_write: float = 0.0

    def progress(
        self, fraction: float, message: str = "", interim: Mapping[str, Any] | None = None
    ) -> None:
        """Record how far the job is (0..1) and what it does; raise Cancelled when cancelled.

        ``interim`` (JSON-ready) is kept as the job's ``result`` while it runs, e.g. the
        best solution value so far; the final result replaces it, and a job that fails or
        is cancelled has none. Calls are cheap: the store is written at most every
        ``PROGRESS_EVERY_S`` seconds.
        """
        now = time.monotonic()
        if now - self._last_write < PROGRESS_EVERY_S and fraction < 1.0:
            return
        self._last_write = now
        row = self.runner.store.get("jobs", self.job_id)
        if row.get("cancel"):
            raise Cancelled(self.job_id)
        changes: dict[str, Any] = {"result": _dumps(interim)} if interim is not None else {}
        self.runner._set(
            self.job_id,
            progress=min(max(float(fraction), 0.0), 1.0),
            message=str(message)[:500],
            heartbeat=now_iso(),
            **changes,
        )

    @property
    def cancelled(self) -> bool:
        """Whether someone asked to cancel this job."""
        return bool(self.runner.store.get("jobs", self.job_id).get("cancel"))


JobFunction = Callable[[JobContext], Mapping[str, Any]]


class JobRunner:
    """Runs job functions on a small thread pool and keeps their state in the store's ``jobs``.

    Any server process on the same store can report on and cancel a job another started,
    since state, progress, result and the cancel flag live in the store.

    Parameters
    ----------
    store : Store
        Where job state is kept.
    workers : int
        Jobs run at once by this process; more wait as ``queued``.
    """

    def __init__(self, store: Store, *, workers: int = 1):
        self.store = store
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zoneplan-job")
        self._mine: set[str] = set()
        self._lock = threading.Lock()
        self._beat = threading.Thread(
            target=self._heartbeat, name="zoneplan-job-heartbeat", daemon=True
        )
        self._beat.start()

    def submit(
        self,
        kind: str,
        params: Mapping[str, Any],
        fn: JobFunction,
        *,
        user: str,
        exclusive: bool = False,
    ) -> str:
        """Queue ``fn`` and return the new job's id.

        Raises
        ------
        Busy
            When ``exclusive`` and a job of ``kind`` is queued or running on this store.
        """
        job_id = uuid.uuid4().hex[:16]
        with self.store.transaction(user) as tx:
            if exclusive:
                active = tx.read("jobs", where={"kind": kind, "state": list(ACTIVE)})
                active = active[[not _stale(r) for r in active.to_dict("records")]]
                if len(active):
                    raise Busy(
                        f"a {kind} job ({active['job_id'].iloc[0]}) is already running "
                        "on this store; wait for it or cancel it"
                    )
            tx.insert(
                "jobs",
                pd.DataFrame(
                    [
                        {
                            "job_id": job_id,
                            "kind": kind,
                            "state": "queued",
                            "username": user,
                            "params": _dumps(params),
                            "progress": 0.0,
                            "cancel": False,
                            "worker": self.worker,
                            "created": now_iso(),
                            "heartbeat": now_iso(),
                        }
                    ]
                ),
            )
        with self._lock:
            self._mine.add(job_id)
        self._pool.submit(self._run, job_id, dict(params), fn)
        return job_id

    def get(self, job_id: str) -> dict[str, Any]:
        """A job's state as a plain dict (``params`` and ``result`` decoded). Raises NotFound."""
        try:
            row = self.store.get("jobs", job_id)
        except NotFound:
            raise NotFound(f"no job {job_id!r}") from None
        return _public(row)

    def list(self, *, kind: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The newest jobs first (of one ``kind`` when given)."""
        rows = self.store.read(
            "jobs", where={"kind": kind} if kind else None, order_by="-created", limit=limit
        )
        return [_public(r) for r in rows.to_dict("records")]

    def cancel(self, job_id: str, *, user: str) -> dict[str, Any]:
        """Ask a job to stop; a queued one is cancelled at once. Returns its state."""
        with self.store.transaction(user) as tx:
            row = tx.get("jobs", job_id, for_update=True)
            if row["state"] == "queued":
                tx.update(
                    "jobs",
                    job_id,
                    {
                        "cancel": True,
                        "state": "cancelled",
                        "finished": now_iso(),
                        "message": "cancelled",
                    },
                )
            elif row["state"] == "running":
                tx.update("jobs", job_id, {"cancel": True})
        return self.get(job_id)

    def wait(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Block until the job has ended (for the command line and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job["state"] not in ACTIVE or time.monotonic() > deadline:
                return job
            time.sleep(0.05)

    def shutdown(self) -> None:
        """Stop taking jobs and wait for the running ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ internals
    def _run(self, job_id: str, params: dict[str, Any], fn: JobFunction) -> None:
        try:
            with self.store.transaction("system") as tx:
                if tx.get("jobs", job_id, for_update=True)["state"] != "queued":
                    return
                tx.update(
                    "jobs",
                    job_id,
                    {
                        "state": "running",
                        "started": now_iso(),
                        "heartbeat": now_iso(),
                        "worker": self.worker,
                    },
                )
            result = fn(JobContext(self, job_id, params))
            self._finish(job_id, result)
        except Cancelled:
            self._set(
                job_id, state="cancelled", finished=now_iso(), message="cancelled", result=None
            )
        except (StoreError, ValidationError, ValueError) as err:
            self._set(
                job_id, state="failed", finished=now_iso(), error=str(err)[:2000], result=None
            )
        except Exception as err:  # a bug must end the job visibly, not leave it running
            log.exception("job %s failed", job_id)
            self._set(
                job_id,
                state="failed",
                finished=now_iso(),
                error=f"internal error ({type(err).__name__}); see the server log",
                result=None,
            )
        finally:
            with self._lock:
                self._mine.discard(job_id)

    def _finish(self, job_id: str, result: Mapping[str, Any] | None) -> None:
        """Keep a finished job's result, unless a cancel came while it ran: the planner who
        pressed Cancel before it finished never gets a result to act on."""
        with self.store.transaction("system") as tx:
            if tx.get("jobs", job_id, for_update=True).get("cancel"):
                raise Cancelled(job_id)
            tx.update(
                "jobs",
                job_id,
                {
                    "state": "done",
                    "progress": 1.0,
                    "result": _dumps(dict(result or {})),
                    "finished": now_iso(),
                    "message": "",
                },
            )

    def _set(self, job_id: str, **changes: Any) -> None:
        self.store.update("jobs", job_id, changes, user="system")

    def _heartbeat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            with self._lock:
                mine = list(self._mine)
            for job_id in mine:
                try:
                    self._set(job_id, heartbeat=now_iso())
                except Exception:  # the store may be busy; the next beat tries again
                    log.debug("heartbeat of job %s failed", job_id, exc_info=True)


def _stale(row: Mapping[Any, Any]) -> bool:
    beat = row.get("heartbeat")
    if row.get("state") not in ACTIVE or not beat:
        return False
    return datetime.fromisoformat(str(beat)) < datetime.fromisoformat(now_iso()) - timedelta(
        seconds=STALE_AFTER_S
    )


def _public(row: Mapping[Any, Any]) -> dict[str, Any]:
    out = {k: (None if _missing(v) else v) for k, v in row.items() if k != "version"}
    params, result = out.get("params"), out.get("result")
    out["params"] = json.loads(params) if params else {}
    out["result"] = json.loads(result) if result else None
    out["cancel"] = bool(out.get("cancel"))
    if _stale(out):
        out.update(
            state="failed", error="the server process running this job stopped; start it again"
        )
    return out


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
