"""``zoneplan user add|passwd|list|token``: manage accounts from the command line."""

from __future__ import annotations

import argparse
import getpass
import sys

from geo.layers import ROLES
from usecases import accounts
from zoneplan.commands.core import add_db_option, open_db


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("user", help="manage user accounts (add, passwd, list, token)")
    users = p.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    a = users.add_parser("add", help="create a user")
    add_db_option(a)
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=ROLES)
    a.add_argument("--lang", choices=accounts.LANGUAGES, default=None)
    a.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else prompt, or generate when "
        "standard input is not a terminal)",
    )
    a.set_defaults(func=cmd_add)
    w = users.add_parser("passwd", help="set a user's password")
    add_db_option(w)
    w.add_argument("name")
    w.add_argument("--password-stdin", action="store_true", help="read it from standard input")
    w.set_defaults(func=cmd_passwd)
    ls = users.add_parser("list", help="list users and roles")
    add_db_option(ls)
    ls.set_defaults(func=cmd_list)
    t = users.add_parser("token", help="print a new API token for a user (replaces the old one)")
    add_db_option(t)
    t.add_argument("name")
    t.add_argument("--revoke", action="store_true", help="remove the user's token instead")
    t.set_defaults(func=cmd_token)


def _read_password(args: argparse.Namespace, *, allow_generate: bool) -> tuple[str, bool]:
    """The new password and whether it was generated here."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise ValueError("the two passwords differ")
        return first, False
    if allow_generate:
        return accounts.generate_password(), True
    raise ValueError("no terminal to ask for a password: use --password-stdin")


def cmd_add(args: argparse.Namespace) -> int:
    store = open_db(args)
    password, generated = _read_password(args, allow_generate=True)
    accounts.create_user(store, args.name, args.role, password, lang=args.lang, by="cli")
    note = f" with password {password} (shown once)" if generated else ""
    print(f"created user {args.name!r} (role {args.role}){note}")
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    store = open_db(args)
    password, _ = _read_password(args, allow_generate=False)
    accounts.set_password(store, args.name, password, by="cli")
    print(f"password of {args.name!r} changed")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = open_db(args)
    rows = accounts.list_users(store)
    print(f"{'user':<20} {'role':<9} {'active':<6} {'token':<5} {'lang':<4} created")
    for u in rows:
        print(
            f"{u['username']:<20} {u['role']:<9} {'yes' if u['active'] else 'no':<6} "
            f"{'yes' if u['has_token'] else 'no':<5} {u['lang'] or '-':<4} {u['created'] or ''}"
        )
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    store = open_db(args)
    if args.revoke:
        accounts.revoke_token(store, args.name, by="cli")
        print(f"token of {args.name!r} revoked", file=sys.stderr)
        return 0
    token = accounts.issue_token(store, args.name, by="cli")
    print(
        f"new API token for {args.name!r} (only its hash is stored; send it as "
        "'Authorization: Bearer <token>'):",
        file=sys.stderr,
    )
    print(token)
    return 0
