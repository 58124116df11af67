"""The ``/tokens`` operations: API tokens managed over the API (docs/protocol.md, "API tokens").

Their shapes are in :mod:`linkserver.wire.token_shapes`, their routes in
:data:`linkserver.wire.routes.OPERATIONS`; the tokens themselves in the history
database (:mod:`linkserver.net.tokens`), so a token made through any node works on
every node. Everything needs admin on the root, as user management does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from linkserver.core.durations import parse_duration
from linkserver.core.errors import PermissionDenied, TokenNotFound
from linkserver.core.levels import Permission
from linkserver.core.permissions import Principal
from linkserver.history.api_tokens import TokenTable
from linkserver.net.tokens import create_token, list_tokens, revoke_token
from linkserver.wire import token_shapes

if TYPE_CHECKING:
    from linkserver.net.app import Api, Call


def _check_admin(actor: Principal, what: str) -> None:
    if not actor.may("", Permission.ADMIN):
        held = actor.grants.level_for("")
        raise PermissionDenied(f"{actor.name} may not {what}: that needs admin on root, it has {held}")


def _shown(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A token as the API shows it: the root mask written ``root``, as for users."""
    return {
        "name": name,
        **entry,
        "grants": {mask or "root": level for mask, level in entry["grants"].items()},
    }


class TokenRoutes:
    """The handlers of ``/tokens``; they run in worker threads like every operation."""

    def __init__(self, api: Api, table: TokenTable) -> None:
        self.api, self.table = api, table

    def _described(self, name: str) -> dict[str, Any]:
        return _shown(name, list_tokens(self.table)[name])

    def api_tokens(self, call: Call) -> dict[str, Any]:
        _check_admin(call.principal, "list the API tokens")
        return {"tokens": [_shown(name, entry) for name, entry in list_tokens(self.table).items()]}

    def add_api_token(self, call: Call) -> dict[str, Any]:
        body: token_shapes.NewToken = call.body
        _check_admin(call.principal, "create API tokens")
        lifetime = parse_duration(body.lifetime) if body.lifetime is not None else None
        grants = {("" if mask == "root" else mask): level for mask, level in body.grants.items()}
        token = create_token(self.table, body.name, grants, lifetime)
        return {"token": token, "api_token": self._described(body.name)}

    def remove_api_token(self, call: Call) -> dict[str, Any]:
        _check_admin(call.principal, "revoke API tokens")
        if not revoke_token(self.table, call.args.name):
            raise TokenNotFound(call.args.name)
        return {}
