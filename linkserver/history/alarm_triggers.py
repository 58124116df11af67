"""The alarm list written by SQLite itself: TEMP triggers of the writer's connection on the
events' INSERT (docs/alarms.md, docs/performance.md).

With them a batch of events is ONE autocommitted INSERT again, as without alarms: each stored
event of a raising definition upserts its alarm, and each of a clearing one clears the alarms
it names, inside that statement (so in the events' commit: a crash never leaves them apart),
with no fold in Python and no BEGIN/COMMIT. What they write is what the Python fold and
:mod:`linkserver.history.alarm_sql`'s upserts write for the same events in order: a cleared
alarm whose key occurs again is deleted and a new one inserted (its id the event's); an open
or acknowledged one adds to its count, takes the event as its last, its level by the policy.

A trigger is made only for what SQL renders exactly as :class:`~linkserver.core.alarms.KeyTemplate`
renders it in Python (:func:`key_sql`): literal text, ``{context}``, ``{name}`` and
``{data.FIELD}`` of a top-level string, integer, float or boolean field, without a format spec
(a ``|default`` is fine). SQLite's ``->`` gives a number's or boolean's JSON text as stored,
which is Python's ``str`` of it (``true``/``false`` for booleans, as templates show them);
``->>`` gives a string's value. A value that is missing or null renders the placeholder, as
in Python. Anything else (``{level}``, ``{created}``, specs, datetimes, nested fields) has no
trigger: :class:`~linkserver.server.alarms.Alarms` then keeps the Python fold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import attrs

from linkserver.core.alarms import AlarmLevel, KeyTemplate
from linkserver.core.checks import FieldType
from linkserver.core.events import Event
from linkserver.core.formats import TableFormat
from linkserver.core.templates import Placeholder
from linkserver.history.alarm_sql import OCCUR_SET, UPSERT_COLUMNS

PREFIX = "linkserver_alarm_"
_TEXT = {FieldType.STRING}
_JSON_TEXT = {FieldType.INTEGER, FieldType.FLOAT, FieldType.BOOLEAN}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _part_sql(part: Placeholder, fmt: TableFormat, cleared_name: str | None) -> str | None:
    if part.spec:
        return None
    if part.operand == "context" and part.default is None:
        return "coalesce(nullif(NEW.context, ''), 'root')"  # the root's path is '', shown as root
    if part.operand == "name" and part.default is None:
        return "NEW.name" if cleared_name is None else _literal(cleared_name)
    if part.operand != "data" or len(part.path) != 1:
        return None
    field = fmt.field(part.path[0])
    if field is None:
        return None
    path = _literal(f'$[0]."{part.path[0]}"')  # the first record's field, as templates read it
    if field.type in _TEXT:
        value = f"NEW.data ->> {path}"
    elif field.type in _JSON_TEXT:
        value = f"nullif(NEW.data -> {path}, 'null')"
    else:
        return None
    return f"coalesce({value}, {_literal(part.missing)})"


def key_sql(template: KeyTemplate, fmt: TableFormat, cleared_name: str | None = None) -> str | None:
    """The SQL expression (over the trigger's ``NEW`` event row) of the key ``template`` renders
    for events of ``fmt``; None when SQL cannot render it exactly as Python does. With
    ``cleared_name``: the key a clearing event renders for the event it clears (``{name}`` the
    cleared event's name)."""
    pieces = []
    for part in template.template.parts:
        if isinstance(part, str):
            pieces.append(_literal(part))
            continue
        sql = _part_sql(part, fmt, cleared_name)
        if sql is None:
            return None
        pieces.append(sql)
    return " || ".join(pieces) if pieces else None


def raise_trigger(name: str, key: str, policy: AlarmLevel, auto_clear: timedelta | None) -> str:
    """The trigger of events named ``name`` that raise (or reduce into) the alarm of ``key``.

    Its first statement inserts the alarm or adds the event to the open or acknowledged one of
    the key: one change, the common case, after which ``RAISE(IGNORE)`` ends the trigger for
    this event (only the trigger: the INSERT goes on with the batch's next row). No change
    means the key's alarm is cleared: it is deleted and a new one inserted (its id the
    event's). So the cleared alarm's lookup (a second key rendered, a descent of the key index
    and a read of the row) is paid only when a problem comes back, not on every event (raw
    sqlite3, batches of 500 into 1,000 open alarms: 4.9-5.1 -> 4.1-4.6 ms, the INSERT without
    alarms 2.1-2.3). Within a trigger, ``changes()`` is the count of its previous statement."""
    auto = "NULL" if auto_clear is None else f"NEW.created + {auto_clear // timedelta(microseconds=1)}"
    values = (
        f"NEW.id, {key}, NEW.context, NEW.name, 'open', NEW.level, {_literal(policy.value)}, 1, "
        f"NEW.created, NEW.created, NEW.id, {auto}, NULL, NULL, NULL, NULL"
    )
    insert = f"INSERT INTO alarms ({', '.join(UPSERT_COLUMNS)}) SELECT {values} WHERE true"
    return (
        f'CREATE TEMP TRIGGER "{PREFIX}{name}" AFTER INSERT ON main.events '
        f"WHEN NEW.name = {_literal(name)} BEGIN "
        f"{insert} ON CONFLICT (key) DO UPDATE SET {OCCUR_SET.format(max='max')} "
        "WHERE alarms.state <> 'cleared'; "
        "SELECT RAISE(IGNORE) WHERE changes() = 1; "
        f"DELETE FROM alarms WHERE key = {key} AND state = 'cleared'; "
        f"{insert}; END"
    )


def clear_trigger(name: str, keys: Sequence[str]) -> str:
    """The trigger of events named ``name`` that clear the alarms of ``keys``."""
    updates = "".join(
        "UPDATE alarms SET state = 'cleared', cleared = NEW.created, cleared_by = 'event', "
        "cleared_event = NEW.id, cleared_user = NULL, auto_clear_at = NULL "
        f"WHERE key = {key} AND state <> 'cleared'; "
        for key in keys
    )
    return (
        f'CREATE TEMP TRIGGER "{PREFIX}{name}" AFTER INSERT ON main.events '
        f"WHEN NEW.name = {_literal(name)} BEGIN {updates}END"
    )


def drop_trigger(name: str) -> str:
    return f'DROP TRIGGER IF EXISTS temp."{PREFIX}{name}"'


@attrs.frozen(eq=False)
class AlarmTriggers:
    """What :class:`~linkserver.history.alarms.AlarmWrites` needs to let SQLite write the alarm
    list: ``on`` installs the triggers on a writer connection, ``off`` removes them (each DDL
    is idempotent), and ``take(events)`` says whether they write exactly what the Python fold
    would for this batch: None when not (an event of a context that is gone, or whose
    definitions differ from the triggers'), else the batch's alarm events whose context
    someone watches (their ``alarmChanged`` is still the Python side's)."""

    on: tuple[str, ...]
    off: tuple[str, ...]
    take: Callable[[Sequence[Event]], list[Event] | None]
