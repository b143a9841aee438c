"""``zoneplan serve``: run the web app under waitress."""

from __future__ import annotations

import argparse

from geo.store.base import redact
from zoneplan.commands.core import add_db_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the web app (map, catalogue, API) under waitress")
    add_db_option(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    p.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from waitress.server import create_server

    from web import SetupError, create_app
    from web.deps import EXTENSION
    from zoneplan.cli import CommandError

    config = {"ZONEPLAN_DB": args.db} if args.db else None
    try:
        app = create_app(config)
    except SetupError as err:
        raise CommandError(str(err)) from None
    # The servicing model and the catalogue's facts build while the server starts
    # answering (a minute or more at a million plots); catalogue requests wait for them.
    app.extensions[EXTENSION].warm_up()
    try:
        server = create_server(
            app, host=args.host, port=args.port, threads=args.threads, ident="zoneplan"
        )
    except OSError as err:
        raise CommandError(
            f"cannot listen on {args.host}:{args.port} ({err.strerror or err}); "
            "is another server running there? choose another --port"
        ) from None
    host = args.host if ":" not in args.host else f"[{args.host}]"
    # one listen address gives a TcpWSGIServer; the stubs type the multi-socket union
    port = getattr(server, "effective_port", args.port)
    print(
        f"zoneplan serving {redact(app.config['ZONEPLAN_DB'])} at http://{host}:{port}/ "
        f"(Ctrl+C to stop)",
        flush=True,
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
