"""The ``/rules`` operations: alert rules, their state and the dry run (docs/rules.md).

Shapes in :mod:`linkserver.wire.rule_shapes`, routes in
:data:`linkserver.wire.routes.OPERATIONS`; the work is
:class:`~linkserver.server.rules.RuleHost`'s. A rule whose alert context the
caller may not observe answers like a missing one (404); a dry run replays
only the events the caller may receive.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from linkserver.core.durations import InvalidDuration, parse_duration
from linkserver.core.errors import UnknownRule
from linkserver.core.levels import Permission
from linkserver.history.base import HistoryPage, HistoryQuery
from linkserver.net.codec import BadRequest
from linkserver.server.rules import RuleHost

if TYPE_CHECKING:
    from linkserver.net.app import Api, Call


class RuleRoutes:
    """The handlers of ``/rules``; they run in worker threads like every operation."""

    def __init__(self, api: Api, rules: RuleHost) -> None:
        self.api, self.host = api, rules

    def _visible(self, call: Call, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            rule
            for rule in found
            if call.principal.may(self.host.get(rule["name"]).alert, Permission.OBSERVER)
        ]

    def rules(self, call: Call) -> dict[str, Any]:
        return {"rules": self._visible(call, self.host.status())}

    def _one(self, call: Call, name: str) -> dict[str, Any]:
        visible = self._visible(call, self.host.status())
        for rule in visible:
            if rule["name"] == name:
                return rule
        raise UnknownRule(name, [rule["name"] for rule in visible])  # an invisible one is missing

    def rule(self, call: Call) -> dict[str, Any]:
        return {"rule": self._one(call, call.args.name)}

    def test_rule(self, call: Call) -> dict[str, Any]:
        self._one(call, call.args.name)
        principal = call.principal
        access = self.api.access

        def read(query: HistoryQuery) -> HistoryPage:
            return access.query(query, principal)

        return self.host.test(
            call.args.name, since=replay_start(call.query.since), until=call.query.until, read=read
        )


def replay_start(text: str) -> timedelta | datetime:
    """``since`` of a dry run: a duration (that long before ``until``) or an RFC 3339 time with
    a timezone; BadRequest naming both forms otherwise."""
    try:
        return parse_duration(text)
    except InvalidDuration:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadRequest(
            f"'since' is {text!r}: give a duration such as 7d, 6h or 30m, or an RFC 3339 time with "
            "a timezone such as 2026-05-01T08:00:00Z"
        )
    return moment
