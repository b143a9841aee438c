"""``zoneplan serve``: run the web app under waitress, in one process or several."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from geo.store.base import redact
from zoneplan.commands.connections import ConnectionShares
from zoneplan.commands.core import add_db_option

#: Seconds a server that was told to stop (SIGTERM, Ctrl+C) keeps answering the requests
#: it has begun (accepting no new ones) before it closes what is left.
DRAIN_S = 10.0
#: Seconds the workers get to stop after SIGTERM before they are killed: their drain, the
#: poll that notices the signal (waitress's loop timeout, 1 s) and a margin.
STOP_GRACE_S = DRAIN_S + 5.0
#: A worker that ends on its own is started again after this many seconds, doubled for
#: each further end in a row of one that lived less than :data:`RESTART_RESET_S`, up to
#: :data:`RESTART_MAX_S`: a worker failing at start must not spin the machine.
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 30.0
RESTART_RESET_S = 60.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the web app (map, catalogue, API) under waitress")
    add_db_option(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    p.add_argument("--threads", type=int, default=8, help="threads per process (default 8)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port (default 1); more than one builds the "
        "servicing model first, then forks them (POSIX only)",
    )
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from web import SetupError, create_app
    from zoneplan.cli import CommandError

    if args.workers < 1:
        raise CommandError("--workers: give 1 or more")
    if args.threads < 1:
        raise CommandError("--threads: give 1 or more")
    if args.workers > 1 and not hasattr(os, "fork"):
        raise CommandError("--workers above 1 needs fork(), which this system lacks")
    config = {"ZONEPLAN_DB": args.db} if args.db else None
    try:
        app = create_app(config)
    except SetupError as err:
        raise CommandError(str(err)) from None
    serve_app(app, args.host, args.port, threads=args.threads, workers=args.workers)
    return 0


def serve_app(app: Any, host: str, port: int, *, threads: int = 8, workers: int = 1) -> None:
    """Serve ``app`` (from :func:`web.create_app`) on ``host``:``port`` until SIGTERM or
    Ctrl+C: in this process, or in ``workers`` forked processes sharing the socket.

    Raises
    ------
    CommandError
        When the address cannot be listened on.
    """
    sock = _listen(host, port)
    if workers == 1:
        _serve_one(app, sock, threads)
    else:
        _serve_forked(app, sock, threads, workers)


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (the workers share it)."""
    from zoneplan.cli import CommandError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(1024)
        except OSError:
            sock.close()
            raise
    except OSError as err:
        raise CommandError(
            f"cannot listen on {host}:{port} ({err.strerror or err}); "
            "is another server running there? choose another --port"
        ) from None
    return sock


def _banner(app: Any, sock: socket.socket, workers: int) -> None:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    many = f" with {workers} workers" if workers > 1 else ""
    print(
        f"zoneplan serving {redact(app.config['ZONEPLAN_DB'])} at http://{shown}:{port}/"
        f"{many} (Ctrl+C to stop)",
        flush=True,
    )


def _serve_one(app: Any, sock: socket.socket, threads: int) -> None:
    """One process: answer at once while the servicing model builds in the background."""
    from web.deps import EXTENSION

    # The servicing model and the catalogue's facts build while the server starts
    # answering (a minute or more at a million plots); catalogue requests wait for them.
    app.extensions[EXTENSION].warm_up()
    server = _waitress(app, sock, threads)
    _banner(app, sock, 1)
    _run_until_signalled(server)


def _waitress(app: Any, sock: socket.socket, threads: int) -> Any:
    from waitress.server import create_server

    return create_server(app, sockets=[sock], threads=threads, ident="zoneplan")


def _run_until_signalled(
    server: Any, parent: int | None = None, stopping: Callable[[], None] | None = None
) -> None:
    """Run a waitress ``server`` until SIGTERM or SIGINT, or (for a worker) until its
    ``parent`` process is gone, then call ``stopping`` and drain it (:func:`_drain`).

    The handlers only note the signal; waitress's loop notices it at its next poll (within
    its loop timeout), so no exception lands in the middle of reading a request. SIGINT is
    handled even when the server was started with it ignored (a background job of a
    script): a server that Ctrl+C or ``kill -INT`` cannot stop outlives its callers.
    """
    from waitress import wasyncore

    signalled: list[int] = []

    def note(signum: int, frame: Any) -> None:
        signalled.append(signum)

    signal.signal(signal.SIGTERM, note)
    signal.signal(signal.SIGINT, note)
    adj = server.adj
    # A worker whose parent died (SIGKILL leaves no time to stop the workers) would keep
    # the port and its memory with nobody to stop it: it stops as if told to.
    while not signalled and (parent is None or os.getppid() == parent):
        wasyncore.loop(
            timeout=adj.asyncore_loop_timeout,
            map=server._map,
            use_poll=adj.asyncore_use_poll,
            count=1,
        )
    if stopping is not None:
        stopping()
    _drain(server, DRAIN_S)


def _drain(server: Any, seconds: float) -> None:
    """Stop accepting connections, close the idle ones, and keep serving the others until
    the requests they have begun (received in part, queued, running or being sent) are
    answered, at most ``seconds``; then close everything."""
    from waitress import wasyncore
    from waitress.channel import HTTPChannel

    wasyncore.dispatcher.close(server)  # this process's listening socket: no new connections
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        busy = False
        for channel in list(server._map.values()):
            if not isinstance(channel, HTTPChannel):
                continue  # waitress's trigger
            if channel.requests or channel.request is not None or channel.total_outbufs_len:
                busy = True
            else:  # idle keep-alive: nothing begun, nobody waits
                channel.handle_close()
        if not busy:
            break
        wasyncore.loop(
            timeout=0.05, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1
        )
    server.close()  # the task threads (those still running after the deadline abandoned)


def _serve_forked(app: Any, sock: socket.socket, threads: int, workers: int) -> None:
    """Warm the app here, then fork ``workers`` processes that share ``sock``.

    The servicing model and the catalogue's facts are built once, before the fork, so
    every worker starts with them (their numpy arrays shared copy-on-write). Nothing
    that a fork breaks crosses it: the warm-up thread has ended, the store's
    connections are closed here and each worker opens its own.
    """
    from web.deps import EXTENSION

    deps = app.extensions[EXTENSION]
    print("zoneplan: building the servicing model before starting the workers", flush=True)
    deps.warm_up().join()
    deps.store.close()
    if threading.active_count() > 1:  # a lock held by another thread would stay held
        names = ", ".join(t.name for t in threading.enumerate() if t is not threading.main_thread())
        raise RuntimeError(f"threads still running before the fork: {names}")
    # Garbage collected once here rather than copied into every worker. Not gc.freeze():
    # a frozen object is never collected, so a superseded servicing model that sits in
    # a reference cycle would stay in every worker; the model's big numpy buffers are
    # shared whatever the collector does, as it never writes to them.
    gc.collect()

    supervisor = os.getpid()
    shares = ConnectionShares(workers)

    def start(number: int) -> int:
        pid = os.fork()
        if pid == 0:
            _worker(app, sock, threads, number, supervisor, shares)  # never returns
        return pid

    pids = {start(k): k for k in range(workers)}
    _banner(app, sock, workers)
    _supervise(pids, start, sock, ended=shares.leave)


def _worker(
    app: Any,
    sock: socket.socket,
    threads: int,
    number: int,
    parent: int,
    shares: ConnectionShares,
) -> None:
    """A forked worker: its own connections, then waitress on the shared socket (taking
    new connections by ``shares``), until SIGTERM or SIGINT or until its ``parent`` (the
    supervisor's pid, taken before the fork) is gone, then the requests in flight are
    answered (:func:`_drain`)."""
    from web.deps import EXTENSION

    code = 0
    try:
        # Until the server runs a signal ends the worker at once: it has begun nothing.
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        app.extensions[EXTENSION].store.reopen()
        server = _waitress(app, sock, threads)
        shares.balance(server, number)
        _run_until_signalled(server, parent, stopping=lambda: shares.leave(number))
    except KeyboardInterrupt:
        pass
    except BaseException:
        traceback.print_exc()
        print(f"zoneplan: worker {number} (pid {os.getpid()}) failed", file=sys.stderr)
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # never back into the parent's code


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def restart_delay(failures: int) -> float:
    """Seconds before starting again a worker that ended ``failures`` times in a row (each
    having lived less than :data:`RESTART_RESET_S`): :data:`RESTART_FIRST_S`, doubled
    per further failure, at most :data:`RESTART_MAX_S`."""
    return float(min(RESTART_MAX_S, RESTART_FIRST_S * 2 ** max(0, failures - 1)))


def _supervise(
    pids: dict[int, int],
    start: Callable[[int], int],
    sock: socket.socket,
    ended: Callable[[int], None],
) -> None:
    """Wait on the workers, starting again one that ends on its own (after
    :func:`restart_delay`), until SIGTERM or SIGINT; then stop them all (:func:`_stop`).

    ``pids`` maps each worker's pid to its number; ``start`` forks worker ``number`` and
    returns its pid; ``sock`` is the listening socket, closed here first when stopping so
    that the port refuses new connections once the workers close theirs; ``ended`` is
    told the number of a worker that ended.
    """
    # SIGINT too, even if the server was started with it ignored (see _run_until_signalled):
    # else the workers would stop on it and be started again.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    born = {pid: time.monotonic() for pid in pids}
    failures = dict.fromkeys(pids.values(), 0)
    due: dict[int, float] = {}  # worker number -> when to start it again
    try:
        while True:
            pid, status = _reap(block=not due)
            now = time.monotonic()
            number = pids.pop(pid, None) if pid else None
            if number is not None:
                ended(number)
                lived = now - born.pop(pid)
                failures[number] = 1 if lived >= RESTART_RESET_S else failures[number] + 1
                delay = restart_delay(failures[number])
                due[number] = now + delay
                print(
                    f"zoneplan: worker {number} (pid {pid}) ended ({_how(status)}) after "
                    f"{lived:.0f} s; starting it again in {delay:g} s",
                    file=sys.stderr,
                    flush=True,
                )
            for number, when in list(due.items()):
                if when <= now:
                    del due[number]
                    new = start(number)
                    pids[new], born[new] = number, time.monotonic()
            if pid == 0 and due:
                time.sleep(min(0.2, max(0.0, min(due.values()) - now)))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        _stop(pids)


def _reap(*, block: bool) -> tuple[int, int]:
    """``os.wait()``, or when not ``block`` the same without waiting: ``(0, 0)`` when no
    child has ended (or none is left)."""
    try:
        return os.wait() if block else os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:  # every worker is waiting for its restart
        return 0, 0


def _stop(pids: dict[int, int]) -> None:
    """SIGTERM to every worker (each drains, :func:`_drain`), SIGKILL to those still
    running after :data:`STOP_GRACE_S`."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    left = set(pids)
    while left and time.monotonic() < deadline:
        for pid in list(left):
            if os.waitpid(pid, os.WNOHANG)[0]:
                left.discard(pid)
        time.sleep(0.05)
    for pid in left:
        _signal(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
