"""Least-connections balance of forked workers: who listens, and who is left out."""

from __future__ import annotations

import time
from types import SimpleNamespace

from waitress.server import create_server

from zoneplan.commands.connections import STALE_S, ConnectionShares


def _hold(server, n: int) -> None:
    """Entries for ``n`` more connections (busy ones, which waitress's clean-up keeps)."""
    start = len(server.active_channels)
    for k in range(start, start + n):
        server.active_channels[k] = SimpleNamespace(requests=[1], last_activity=time.time())


def _server(held: int):
    """A real waitress server on a free port, holding ``held`` connections."""
    server = create_server(lambda environ, start: [], host="127.0.0.1", port=0)
    _hold(server, held)
    return server


def test_the_busier_worker_stops_listening_until_the_other_catches_up():
    shares = ConnectionShares(2)
    busy, idle = _server(2), _server(0)
    try:
        shares.balance(busy, 0)
        shares.balance(idle, 1)
        assert busy.readable()  # the other has not written its entry yet
        assert idle.readable()
        assert not busy.readable()
        _hold(idle, 2)
        assert idle.readable()  # equal: both listen
        assert busy.readable()
    finally:
        busy.close()
        idle.close()


def test_a_worker_that_left_or_went_quiet_is_not_waited_for(monkeypatch):
    shares = ConnectionShares(2)
    busy, idle = _server(3), _server(0)
    try:
        shares.balance(busy, 0)
        shares.balance(idle, 1)
        assert idle.readable()
        assert not busy.readable()
        shares.leave(1)
        assert busy.readable()
        assert idle.readable()  # it writes its entry again
        assert not busy.readable()
        later = time.monotonic() + STALE_S + 1
        monkeypatch.setattr(time, "monotonic", lambda: later)
        assert busy.readable()  # the other's entry is stale
    finally:
        busy.close()
        idle.close()
