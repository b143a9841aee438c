"""The ``zoneplan`` command line: a thin translation between people and geo/planner."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
import warnings
from collections.abc import Sequence

# Collect cycles every 10,000 new container objects rather than 700: the imports below make
# tens of thousands of them, a command hundreds of thousands (see _settle_collector).
GC_THRESHOLD = (10_000, 10, 10)
gc.set_threshold(*GC_THRESHOLD)

from geo.store import StoreError  # noqa: E402
from geo.validate import ValidationError  # noqa: E402
from zoneplan.commands.core import db_from_env, epsg_from_env, today_from_env  # noqa: E402

DESCRIPTION = """\
Plan and run an industrial zone from the command line: build the store, import and
export layers (shapefile, GeoPackage, GeoJSON), see what each plot can connect to and
when, track the zone against its plan targets, allocate investors' applications to
plots, design access roads, rail spurs and feeders, and serve the web app.

Every command takes --db STORE (a .gpkg file or a postgresql:// URL; default
$ZONEPLAN_DB or data/zone.gpkg). `zoneplan COMMAND --help` explains one command."""

# Each module defines register(subparsers) and sets func on its parsers.
COMMAND_MODULES = (
    "core",
    "files",
    "servicing",
    "kpi",
    "allocation",
    "applications",
    "access",
    "subdivide",
    "serve",
    "users",
)


# The module that registers each command: a run of one command imports only that module
# (the others pull in scipy, the solvers and the web app: ~1.5 s before any work). Help
# and unknown commands build the whole parser; tests/test_cli_output.py checks the table.
COMMAND_OWNERS = {
    "init": "core",
    "info": "core",
    "migrate": "core",
    "overview": "core",
    "import": "files",
    "export": "files",
    "servicing": "servicing",
    "kpi": "kpi",
    "allocate": "allocation",
    "applications": "applications",
    "access": "access",
    "subdivide": "subdivide",
    "serve": "serve",
    "user": "users",
}


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every available sub-command, or only with ``command``
    when it is a known one."""
    parser = argparse.ArgumentParser(
        prog="zoneplan",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    owner = COMMAND_OWNERS.get(command or "")
    for name in (owner,) if owner else COMMAND_MODULES:
        importlib.import_module(f"zoneplan.commands.{name}").register(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"zoneplan: warning: {message}", file=sys.stderr)


def _settle_collector() -> None:
    """Once per process, with the command's modules imported: what exists now (modules,
    classes, the libraries' tables) lives until exit, so the cycle collector stops walking
    it. With the default thresholds and nothing frozen the collector spent ~0.7 s CPU of a
    200k-plot import (eight full passes over every object alive), now ~0.15 s."""
    if gc.get_freeze_count() == 0:
        gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors print a message (never a traceback) and exit 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    _settle_collector()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", UserWarning)
            warnings.showwarning = _show_warning
            # The environment is read here, once, and passed on as arguments.
            args.today = today_from_env()
            args.epsg = epsg_from_env()
            if hasattr(args, "db"):
                args.db = args.db or db_from_env()
            return int(args.func(args) or 0)
    except BrokenPipeError:
        # The reader (e.g. `| head`) closed early: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CommandError, StoreError, ValidationError, ValueError, KeyError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        if isinstance(err, (FileNotFoundError, IsADirectoryError)) and err.filename:
            # what the OS says ("[Errno 2] No such file or directory: 'x'") in our words
            kind = "no file" if isinstance(err, FileNotFoundError) else "a folder, not a file:"
            message = f"{kind} {err.filename}"
        print(f"zoneplan {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"zoneplan {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the installed module so its exception classes are the ones commands raise.
    from zoneplan.cli import main as installed_main

    sys.exit(installed_main())
