"""The plot overview merge of a bulk insert in a forked worker process, beside the writes."""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import traceback
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import shapely

from geo.overview import Block
from geo.store.base import StoreError

#: The fewest plots whose merge is worth a process: below it the fork and the blocks' trip
#: back cost more than merging in place (a 200k import merges for ~1 s).
FORK_ROWS = 20_000

# The fewest inserted plots whose merge forks; None: never (the default: only a caller
# that knows its process is single-threaded, the command line, turns it on).
_fork_rows: list[int | None] = [None]


@contextmanager
def forked_merges(min_rows: int = FORK_ROWS) -> Iterator[None]:
    """Inside the block, a transaction's first plot insert of at least ``min_rows`` plots
    merges its overview blocks in a forked process (no GIL shared with the writes, which
    then run on the other core).

    Only for a process that runs one thread, such as the command line: a fork copies the
    calling thread alone, and a lock another thread held (a server's, a connection pool's)
    stays held in the child. The fork is skipped (the merge runs in place) when more than
    one thread runs at the time, e.g. PostGIS's connection pool, whose merge then runs on
    a thread during the server's work instead.
    """
    before, _fork_rows[0] = _fork_rows[0], min_rows
    try:
        yield
    finally:
        _fork_rows[0] = before


def fork_allowed(rows: int) -> bool:
    """Whether an insert of ``rows`` plots merges in a forked process now."""
    least = _fork_rows[0]
    return least is not None and rows >= least and threading.active_count() == 1


class _Child:
    """A forked process running ``merges`` and sending their blocks back through a pipe."""

    def __init__(self, merges: Sequence[Callable[[], list[Block]]]):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's code
            os.close(read)
            code = 1
            try:
                payload = pickle.dumps(_pack([merge() for merge in merges]), protocol=5)
                with os.fdopen(write, "wb") as out:
                    out.write(payload)
                code = 0
            except BaseException:
                traceback.print_exc(file=sys.stderr)
                sys.stderr.flush()
            finally:
                os._exit(code)  # no atexit handlers, no flush of the parent's buffers
        os.close(write)
        self._pid, self._read = pid, read
        self._result: list[list[Block]] | None = None
        # a transaction that fails before reading the result must not leave the child
        self._reap = weakref.finalize(self, _kill, pid, read)

    def result(self) -> list[list[Block]]:
        """Every merge's blocks, waiting for the child; a child that failed fails here."""
        if self._result is None:
            self._reap.detach()
            with os.fdopen(self._read, "rb") as src:
                payload = src.read()
            _, status = os.waitpid(self._pid, 0)
            code = os.waitstatus_to_exitcode(status)
            if code != 0 or not payload:
                raise StoreError(
                    f"the plot overview merge failed in its process (exit code {code}); "
                    "nothing was written"
                )
            self._result = _unpack(pickle.loads(payload))
        return self._result

    def stop(self) -> None:
        """End the child unread (the transaction failed or its merge went stale)."""
        self._reap()


def _kill(pid: int, read: int) -> None:
    os.close(read)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def _pack(parts: list[list[Block]]) -> list[tuple[list[tuple[int, int, int, str, int]], Any]]:
    """Each part's blocks as plain rows and one WKB array (vectorised, not pickled one
    geometry at a time); WKB round-trips a geometry exactly, so the blocks stored are
    byte-identical to a merge in place."""
    out = []
    for rows in parts:
        wkb = shapely.to_wkb(np.asarray([b.geometry for b in rows], dtype=object))
        fields = [(b.level, b.cx, b.cy, b.status, b.plots) for b in rows]
        out.append((fields, wkb))
    return out


def _unpack(packed: list[tuple[list[tuple[int, int, int, str, int]], Any]]) -> list[list[Block]]:
    out = []
    for fields, wkb in packed:
        geoms = shapely.from_wkb(wkb).tolist()
        out.append([Block(*f, g) for f, g in zip(fields, geoms)])
    return out


class _Part:
    """One merge's result from a :class:`_Child` (a ``Future``'s ``result``/``cancel``)."""

    def __init__(self, child: _Child, n: int):
        self._child, self._n = child, n

    def result(self) -> list[Block]:
        return self._child.result()[self._n]

    def cancel(self) -> bool:
        self._child.stop()
        return True


def forked(merges: Sequence[Callable[[], list[Block]]]) -> list[_Part]:
    """Run ``merges`` in one forked process; one pending result per merge, in order."""
    child = _Child(merges)
    return [_Part(child, n) for n in range(len(merges))]
