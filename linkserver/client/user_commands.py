"""``linkserver user add|passwd|grant|revoke|list|remove`` and ``linkserver login|logout``.

``user`` manages the users of a running server (admin on root; see
docs/server.md). Passwords are asked twice without echo in a terminal, or
read as one line from standard input (scripts). ``login`` begins a session
on purpose (the server fires ``login``) and keeps its token for the
following commands; ``logout`` ends it (``logout``) and forgets the token.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from linkserver.client.cli import (
    OK,
    USAGE,
    _client,
    _fail,
    _guarded,
    _print_json,
    format_table,
)
from linkserver.client.errors import AuthenticationFailed
from linkserver.client.values import UsageError


def add_user_commands(subparsers: Any, common: argparse.ArgumentParser) -> None:
    user = subparsers.add_parser(
        "user",
        help="manage the users of a running server (admin)",
        description="Users live in the server's history database; every change takes effect at once "
        "and fires an event in users.NAME. See docs/server.md.",
    )
    actions = user.add_subparsers(dest="action", required=True)

    add = actions.add_parser("add", parents=[common], help="add a user (asks for its password)")
    add.add_argument("name")
    add.add_argument(
        "--grant", action="append", default=[], metavar="MASK=LEVEL", help="e.g. 'devices.**=operator'"
    )
    add.add_argument("--no-password", action="store_true", help="no password for now (API tokens only)")
    add.set_defaults(handler=_guarded(_add))

    passwd = actions.add_parser("passwd", parents=[common], help="set a user's password (asks for it)")
    passwd.add_argument("name")
    passwd.set_defaults(handler=_guarded(_passwd))

    grant = actions.add_parser("grant", parents=[common], help="add or change grants of a user")
    grant.add_argument("name")
    grant.add_argument("grants", nargs="+", metavar="MASK=LEVEL", help="e.g. 'alerts.**=operator'")
    grant.set_defaults(handler=_guarded(_grant))

    revoke = actions.add_parser("revoke", parents=[common], help="remove grants of a user")
    revoke.add_argument("name")
    revoke.add_argument("masks", nargs="+", metavar="MASK", help="the masks whose grants go")
    revoke.set_defaults(handler=_guarded(_revoke))

    listing = actions.add_parser("list", parents=[common], help="list the users and their grants")
    listing.set_defaults(handler=_guarded(_list))

    remove = actions.add_parser("remove", parents=[common], help="remove a user; its sessions end")
    remove.add_argument("name")
    remove.set_defaults(handler=_guarded(_remove))

    login = subparsers.add_parser(
        "login", parents=[common], help="log in and keep the session for the following commands"
    )
    login.set_defaults(handler=_guarded(_login))
    logout = subparsers.add_parser("logout", parents=[common], help="end the kept session")
    logout.set_defaults(handler=_guarded(_logout))


def _grants(items: list[str]) -> dict[str, str]:
    grants = {}
    for item in items:
        mask, sep, level = item.rpartition("=")
        if not sep or not mask:
            raise UsageError(f"{item!r}: write MASK=LEVEL, e.g. 'devices.**=operator'")
        grants[mask] = level
    return grants


def new_password(name: str) -> str:
    """Asked twice without echo in a terminal; otherwise one line of standard input.
    Checked here as the server checks it, so that a bad one is said before anything is sent."""
    from linkserver.server.passwords import check_new_password

    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise UsageError("no password on standard input (one line expected)")
    else:
        password = getpass.getpass(f"new password for {name}: ")
        if getpass.getpass("again: ") != password:
            raise UsageError("the passwords differ; nothing changed")
    problem = check_new_password(password)
    if problem:
        raise UsageError(f"{problem}; nothing changed")
    return password


def _show(args: argparse.Namespace, user: dict[str, Any], done: str) -> int:
    if args.json:
        _print_json(user)
    else:
        grants = ", ".join(f"{mask}={level}" for mask, level in user.get("grants", {}).items()) or "none"
        print(f"{done} {user.get('name')}: grants {grants}")
    return OK


def _add(args: argparse.Namespace) -> int:
    grants = _grants(args.grant)
    password = None if args.no_password else new_password(args.name)
    with _client(args) as client:
        user = client.add_user(args.name, password=password, grants=grants)
    return _show(args, user, "added")


def _passwd(args: argparse.Namespace) -> int:
    password = new_password(args.name)
    with _client(args) as client:
        client.set_password(args.name, password)
    if not args.json:
        print(f"password of {args.name} changed; its other sessions ended")
    return OK


def _grant(args: argparse.Namespace) -> int:
    grants = _grants(args.grants)
    with _client(args) as client:
        user = client.grant(args.name, grants)
    return _show(args, user, "granted to")


def _revoke(args: argparse.Namespace) -> int:
    with _client(args) as client:
        user = client.revoke(args.name, args.masks)
    return _show(args, user, "revoked from")


def _list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        users = client.users()
    if args.json:
        _print_json(users)
        return OK
    rows = [
        [
            u["name"],
            "yes" if u.get("password") else "no",
            str(u.get("updated", ""))[:19].replace("T", " "),
            ", ".join(f"{m}={lvl}" for m, lvl in u.get("grants", {}).items()) or "-",
        ]
        for u in users
    ]
    print(format_table(["USER", "PASSWORD", "CHANGED (UTC)", "GRANTS"], rows))
    return OK


def _remove(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.remove_user(args.name)
    if not args.json:
        print(f"removed {args.name}; its sessions ended")
    return OK


def _login(args: argparse.Namespace) -> int:
    from linkserver.client.sessions import CachedSessionClient

    client = _client(args)
    with client:
        if not isinstance(client, CachedSessionClient):
            return _fail(
                USAGE, "login needs a user (--user NAME, or the local admin credentials), not a token"
            )
        if client.cached:
            try:
                client.logout()  # a new session begins: the kept one ends
            except AuthenticationFailed:
                pass  # it had ended already
        client.login()
        me = client.me()
    if args.json:
        _print_json({"user": me.get("user"), "url": client.url})
    else:
        print(f"logged in as {me.get('user')} at {client.url}; later commands use this session")
    return OK


def _logout(args: argparse.Namespace) -> int:
    from linkserver.client.sessions import CachedSessionClient

    client = _client(args)
    with client:
        if not isinstance(client, CachedSessionClient) or not client.cached:
            print("no kept session to end", file=sys.stderr)
            return OK
        try:
            client.logout()
        except AuthenticationFailed:
            pass  # the server had ended it already; it is forgotten here all the same
    if not args.json:
        print(f"logged out of {client.url}")
    return OK
