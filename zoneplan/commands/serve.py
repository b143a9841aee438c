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
from zoneplan.commands.core import add_db_option

#: Seconds the workers get to stop after SIGTERM before they are killed.
STOP_GRACE_S = 10.0


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
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _waitress(app: Any, sock: socket.socket, threads: int) -> Any:
    from waitress.server import create_server

    return create_server(app, sockets=[sock], threads=threads, ident="zoneplan")


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

    def start(number: int) -> int:
        pid = os.fork()
        if pid == 0:
            _worker(app, sock, threads, number)  # never returns
        return pid

    pids = {start(k): k for k in range(workers)}
    _banner(app, sock, workers)
    _supervise(pids, start)
    sock.close()


def _worker(app: Any, sock: socket.socket, threads: int, number: int) -> None:
    """A forked worker: its own connections, then waitress on the shared socket, until
    SIGTERM or SIGINT."""
    from web.deps import EXTENSION

    code = 0
    try:
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        app.extensions[EXTENSION].store.reopen()
        server = _waitress(app, sock, threads)
        try:
            server.run()
        except KeyboardInterrupt:
            pass
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


def _supervise(pids: dict[int, int], start: Callable[[int], int]) -> None:
    """Wait on the workers, starting again one that ends on its own, until SIGTERM or
    SIGINT; then stop them all (SIGTERM, SIGKILL after :data:`STOP_GRACE_S`)."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while pids:
            pid, status = os.wait()
            number = pids.pop(pid, None)
            if number is None:
                continue
            print(
                f"zoneplan: worker {number} (pid {pid}) ended ({_how(status)}); starting it again",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(1.0)  # a worker failing at start must not spin the machine
            pids[start(number)] = number
    except KeyboardInterrupt:
        pass
    finally:
        _stop(pids)


def _stop(pids: dict[int, int]) -> None:
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
