"""The ``/alarms`` operations: the alarm list, acknowledgements and clears (docs/alarms.md).

Shapes in :mod:`linkserver.wire.alarm_shapes`, routes in
:data:`linkserver.wire.routes.OPERATIONS`; the work (and the permission checks:
observer reads, operator acknowledges and clears) is
:class:`~linkserver.server.alarms.Alarms`'. An alarm the caller may not see answers like a
missing one (404).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from linkserver.core.alarm_records import Alarm
from linkserver.core.alarms import AlarmState
from linkserver.core.filters import parse_filter
from linkserver.core.levels import Level
from linkserver.core.paths import compile_mask
from linkserver.history.alarms import AlarmQuery
from linkserver.server.alarms import Alarms
from linkserver.wire import alarm_shapes as shapes

if TYPE_CHECKING:
    from linkserver.net.app import Api, Call


def alarm_query(params: shapes.AlarmParams) -> AlarmQuery:
    """An AlarmQuery (without visibility) from ``GET /alarms``'s parameters."""
    masks = tuple(params.mask) or ("**",)
    for mask in masks:
        compile_mask(mask)
    return AlarmQuery(
        masks=masks,
        names=tuple(params.event),
        states=tuple(AlarmState(state) for state in dict.fromkeys(params.state)),
        min_level=Level.parse(params.min_level) if params.min_level is not None else None,
        max_level=Level.parse(params.max_level) if params.max_level is not None else None,
        since=params.since,
        until=params.until,
        filter=parse_filter(params.filter) if params.filter else None,
        newest_first=params.order == "newest",
        limit=params.limit,
        cursor=params.cursor or None,
    )


class AlarmRoutes:
    """The handlers of ``/alarms``; they run in worker threads like every operation."""

    def __init__(self, api: Api, alarms: Alarms) -> None:
        self.api, self.alarm_list = api, alarms

    def _answer(self, alarm: Alarm) -> dict[str, Any]:
        return {"alarm": self.alarm_list.marshal(alarm)}

    def alarms(self, call: Call) -> dict[str, Any]:
        page = self.alarm_list.query(alarm_query(call.query), call.principal)
        return {"alarms": [self.alarm_list.marshal(a) for a in page.alarms], "next_cursor": page.next_cursor}

    def alarm(self, call: Call) -> dict[str, Any]:
        return self._answer(self.alarm_list.get(call.args.id, call.principal))

    def alarm_events(self, call: Call) -> dict[str, Any]:
        params: shapes.AlarmEventsParams = call.query
        events, cursor = self.alarm_list.events(
            call.args.id,
            call.principal,
            limit=params.limit,
            cursor=params.cursor or None,
            newest_first=params.order == "newest",
        )
        return {"events": [event.marshal() for event in events], "next_cursor": cursor}

    def acknowledge_alarm(self, call: Call) -> dict[str, Any]:
        body: shapes.AlarmText = call.body
        return self._answer(self.alarm_list.acknowledge(call.args.id, call.principal, body.text))

    def unacknowledge_alarm(self, call: Call) -> dict[str, Any]:
        return self._answer(self.alarm_list.unacknowledge(call.args.id, call.principal))

    def clear_alarm(self, call: Call) -> dict[str, Any]:
        return self._answer(self.alarm_list.clear(call.args.id, call.principal))
