"""``zoneplan applications list|import|accept|reject|withdraw``: the operator's side of applications."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from geo.layers import APPLICATION_STATUSES
from geo.store import Invalid
from planner.applications import list_applications
from usecases import applications as usecase
from usecases import intake
from zoneplan.cli import CommandError
from zoneplan.commands.core import add_db_option, add_user_option, audit_user, open_db

#: The operator acts with a planner's rights (every application, accept and reject).
ROLE = "admin"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "applications",
        help="list, accept, reject or withdraw investors' applications",
        description="Accepting checks the plot against every reservation rule (area range, "
        "sector, rail, hazard class, power and water headroom of its substation "
        "and main as recorded today) in the transaction that reserves it, and "
        "writes the application's demand onto the plot. A refusal names each "
        "broken rule and exits 1; rejecting or withdrawing an accepted "
        "application releases the plot.",
    )
    actions = p.add_subparsers(dest="applications_command", required=True, metavar="ACTION")

    im = actions.add_parser(
        "import",
        help="file applications received outside the site from a CSV file (all or none)",
        description="The same checks as `zoneplan allocate --applications`, then against "
        "the store (new ids, a known investor, the plot applied for available, of the right "
        "area and zoned for the sector); every bad row is listed by its line and nothing is "
        "stored. The applications join the pending list.",
    )
    add_db_option(im)
    im.add_argument("file", metavar="FILE.csv", type=Path)
    im.add_argument(
        "--investor",
        default=None,
        metavar="NAME",
        help="investor (a user here) of rows without one (default: --user)",
    )
    add_user_option(im)
    im.set_defaults(func=cmd_import)

    ls = actions.add_parser("list", help="applications, newest first")
    add_db_option(ls)
    ls.add_argument(
        "--status",
        choices=APPLICATION_STATUSES,
        default=None,
        help="only applications in this state",
    )
    ls.add_argument("--json", action="store_true", help="print JSON to stdout")
    ls.set_defaults(func=cmd_list)

    a = actions.add_parser("accept", help="reserve a plot for a submitted application")
    add_db_option(a)
    a.add_argument("app_id", metavar="APP_ID")
    a.add_argument(
        "--plot", default=None, metavar="ID", help="plot to reserve (default: the plot applied for)"
    )
    _add_common(a)
    a.set_defaults(func=cmd_accept)

    r = actions.add_parser(
        "reject",
        help="reject an application with a reason the investor "
        "sees (an accepted one releases its plot)",
    )
    add_db_option(r)
    r.add_argument("app_id", metavar="APP_ID")
    r.add_argument("--reason", required=True, help="why, in words")
    _add_common(r)
    r.set_defaults(func=cmd_reject)

    w = actions.add_parser(
        "withdraw",
        help="withdraw an application for its investor (an accepted one releases its plot)",
    )
    add_db_option(w)
    w.add_argument("app_id", metavar="APP_ID")
    _add_common(w)
    w.set_defaults(func=cmd_withdraw)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--version",
        type=int,
        default=None,
        metavar="N",
        help="the version you saw; refused when the application changed since",
    )
    add_user_option(parser)


def _store(args: argparse.Namespace):
    return open_db(args)


def _number(value: Any, unit: str) -> str:
    return "" if value is None else f"{value:g} {unit}"


def _table(records: Iterable[dict[str, Any]]) -> list[str]:
    header = (
        "app_id",
        "status",
        "investor",
        "project",
        "sector",
        "area ha",
        "power",
        "water",
        "rail",
        "plot",
    )
    rows = [header]
    for a in records:
        plot = f"{a['plot_id']} (applied)" if a["plot_id"] else "any"
        if a["assigned"]:
            plot = a["assigned"] + ("" if a["status"] == "reserved" else " (released)")
        rows.append(
            (
                a["app_id"],
                a["status"],
                a["investor"],
                a["project"],
                a["sector"],
                f"{a['min_ha']:g}-{a['max_ha']:g}",
                _number(a["power_kw"], "kW"),
                _number(a["water_m3d"], "m3/d"),
                "yes" if a["rail_need"] else "",
                plot,
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    return ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]


def cmd_list(args: argparse.Namespace) -> int:
    # The operator's role sees every application, whoever filed it.
    records = list_applications(_store(args), user="", role=ROLE, status=args.status)
    if args.json:
        json.dump(records, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    elif not records:
        print("no applications" + (f" {args.status}" if args.status else ""))
    else:
        print("\n".join(_table(records)))
    return 0


def cmd_accept(args: argparse.Namespace) -> int:
    try:
        app = usecase.accept(
            _store(args),
            args.app_id,
            args.plot,
            user=audit_user(args),
            role=ROLE,
            version=args.version,
            servicing=partial(usecase.read_servicing, today=args.today),
        )
    except Invalid as err:
        if args.plot is None and [p.field for p in err.problems] == ["plot_id"]:
            raise CommandError(
                f"{args.app_id} is for any plot matching its needs: name the "
                "plot to reserve with --plot ID"
            ) from None
        raise
    except usecase.Refused as err:
        print(
            f"zoneplan applications accept: refused: application {err.app_id} cannot take "
            f"plot {err.plot_id}; nothing was written:",
            file=sys.stderr,
        )
        for breach in err.breaches:
            print(f"  - {breach.message()}", file=sys.stderr)
        return 1
    demand = ", ".join(
        t for t in (_number(app["power_kw"], "kW"), _number(app["water_m3d"], "m3/day")) if t
    )
    print(
        f"{app['app_id']} accepted: plot {app['assigned']} is reserved"
        + (f" and carries its demand ({demand})" if demand else "")
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise CommandError(f"no file {args.file}")
    try:
        done = intake.import_csv(
            _store(args), args.file.read_bytes(), user=audit_user(args), investor=args.investor
        )
    except intake.IntakeRefused as err:
        print(f"zoneplan applications import: {args.file}: nothing was imported:", file=sys.stderr)
        for line, text in err.problems:
            print(f"  {'line ' + str(line) + ': ' if line else ''}{text}", file=sys.stderr)
        return 1
    print(f"imported {len(done.app_ids)} applications (pending): {', '.join(done.app_ids)}")
    if done.ignored_columns:
        print(f"columns not stored: {', '.join(done.ignored_columns)}", file=sys.stderr)
    return 0


def _ended(app: dict[str, Any], verb: str) -> int:
    print(
        f"{app['app_id']} {verb}"
        + (f"; plot {app['assigned']} is released" if app["assigned"] else "")
    )
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    return _ended(
        usecase.reject(
            _store(args),
            args.app_id,
            args.reason,
            user=audit_user(args),
            role=ROLE,
            version=args.version,
        ),
        "rejected",
    )


def cmd_withdraw(args: argparse.Namespace) -> int:
    return _ended(
        usecase.withdraw(
            _store(args), args.app_id, user=audit_user(args), role=ROLE, version=args.version
        ),
        "withdrawn",
    )
