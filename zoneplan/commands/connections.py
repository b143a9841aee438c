"""Connections spread over forked server workers: least connections first."""

from __future__ import annotations

import mmap
import time
from typing import Any

import numpy as np

#: A worker whose last entry in the table is older than this many seconds (dead,
#: draining or stuck) is left out of the balance: waitress's loop polls at least once a
#: second (its loop timeout) and writes the worker's entry on every poll.
STALE_S = 3.0


class ConnectionShares:
    """How many connections each forked worker holds, in memory the fork shares.

    Every worker polls the one listening socket and the kernel hands a new connection to
    whichever wakes first, so a few keep-alive clients (a proxy's pool, a load test) may
    all land on one worker while another idles: one core serving, one waiting. With the
    table, a worker holding more connections than another live one stops listening until
    that one has caught up (least connections, as nginx's ``least_conn``).

    Parameters
    ----------
    workers
        How many workers there are, numbered from 0; made before the fork.
    """

    def __init__(self, workers: int) -> None:
        # Anonymous mmap is MAP_SHARED: parent and forked workers see one table. Rows are
        # (connections held, monotonic time written); one writer per row, no lock needed.
        self._memory = mmap.mmap(-1, workers * 2 * 8)
        self._table = np.frombuffer(self._memory, dtype=np.float64).reshape(workers, 2)
        self._table[:, 1] = -np.inf

    def balance(self, server: Any, number: int) -> None:
        """Make waitress's ``server`` (in worker ``number``) listen only while it holds no
        more connections than the least loaded live worker, besides waitress's own
        conditions (its connection limit)."""
        readable = server.readable
        table = self._table

        def balanced() -> bool:
            if not readable():
                return False
            now = time.monotonic()
            held = len(server.active_channels)
            table[number] = held, now
            others = table[:, 1] > now - STALE_S
            others[number] = False
            return not others.any() or held <= table[others, 0].min()

        server.readable = balanced  # the loop asks it before every poll

    def leave(self, number: int) -> None:
        """Leave worker ``number`` out of the balance (it stops, or has ended) until it
        writes its entry again."""
        self._table[number, 1] = -np.inf
