"""The ``/users`` operations: users managed at run time (docs/protocol.md, "Users").

Their shapes are declared in :mod:`linkserver.wire.shapes` and their routes in
:data:`linkserver.wire.routes.OPERATIONS` like every other; the handlers are
here. Everything needs admin on the root, except that a user may read
itself and change its own password (giving the current one, which is
throttled like a login). The work is the
:class:`~linkserver.server.users.UserDirectory`'s; these functions say which
session is the caller's own, so that a password change ends the user's
*other* sessions.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from linkserver.core.errors import PermissionDenied
from linkserver.server.users import UserDirectory
from linkserver.wire import shapes

if TYPE_CHECKING:
    from linkserver.net.app import Api, Call

_caller = threading.local()


@contextlib.contextmanager
def acting_with(token: str | None) -> Iterator[None]:
    """While this runs, the session of ``token`` is the caller's own (kept by a password change)."""
    previous = getattr(_caller, "token", None)
    _caller.token = token
    try:
        yield
    finally:
        _caller.token = previous


def caller_token() -> str | None:
    return getattr(_caller, "token", None)


class UserRoutes:
    """The handlers of ``/users``; they run in worker threads like every operation."""

    def __init__(self, api: Api, users: UserDirectory) -> None:
        self.api, self.directory = api, users

    def _one(self, call: Call, name: str) -> dict[str, Any]:
        return {"user": self.directory.describe(call.principal, name)[0]}

    def users(self, call: Call) -> dict[str, Any]:
        return {"users": self.directory.describe(call.principal)}

    def user(self, call: Call) -> dict[str, Any]:
        return self._one(call, call.args.name)

    def add_user(self, call: Call) -> dict[str, Any]:
        body: shapes.NewUser = call.body
        self.directory.add(call.principal, body.name, password=body.password, grants=body.grants)
        return self._one(call, body.name)

    def remove_user(self, call: Call) -> dict[str, Any]:
        self.directory.remove(call.principal, call.args.name)
        return {}

    def set_password(self, call: Call) -> dict[str, Any]:
        body: shapes.PasswordChange = call.body
        name = call.args.name
        own = call.principal.name == name and not call.principal.is_component
        if own:
            if body.current_password is None:
                raise PermissionDenied(
                    "changing your own password needs 'current_password' (the shell's passwd asks for it)"
                )
            self.api.auth.check_password(name, body.current_password, call.address)
        with acting_with(call.token if own else None):
            self.directory.set_password(call.principal, name, body.password)
        return {}

    def grant(self, call: Call) -> dict[str, Any]:
        body: shapes.GrantChange = call.body
        self.directory.grant(call.principal, call.args.name, body.grants)
        return self._one(call, call.args.name)

    def revoke(self, call: Call) -> dict[str, Any]:
        body: shapes.Revocation = call.body
        self.directory.revoke(call.principal, call.args.name, body.masks)
        return self._one(call, call.args.name)
