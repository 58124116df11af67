"""Every document of the network API, declared once (docs/protocol.md).

The server decodes requests and WebSocket messages with these types
(:mod:`linkserver.wire.decode`) and /openapi.json takes its schemas from them
(:mod:`linkserver.net.openapi`), so what the document promises is what the
server checks. Constraints (``Meta``) are the server's own rules: a value the
schema allows is never refused for its shape, only for what it names (a
context that does not exist, a grant the caller lacks).

Answers are declared too; the tests check every answer against them.

msgspec rather than pydantic: it decodes JSON straight into these types in
one strict pass (bool is never an int, no unknown keys, no NaN, no lone
surrogates), writes JSON Schema for them, costs a few milliseconds to import
(the CLI imports the client) and is fast enough for the WebSocket fire path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from linkserver.core.paths import NAME_PATTERN

MAX_ID = 2**63 - 1  # event ids are signed 64-bit (the SQL column), time-ordered
MAX_HISTORY_LIMIT = 10_000
LEVEL_NAMES = ("NONE", "NOTICE", "INFO", "WARNING", "ERROR", "FATAL")
PERMISSION_NAMES = ("none", "observer", "operator", "manager", "engineer", "admin")

_SEGMENT = rf"(?:{NAME_PATTERN}|\*\*|\*)"

EventId = Annotated[int, Meta(ge=1, le=MAX_ID, description="An event id (a positive 64-bit integer)")]
ResumeId = Annotated[int, Meta(ge=0, le=MAX_ID, description="The last event id received (0: all)")]
Name = Annotated[str, Meta(pattern=f"^{NAME_PATTERN}$", description="A name: letters, digits and '_' only")]
ContextPath = Annotated[
    str,
    Meta(
        pattern=rf"^(?:|{NAME_PATTERN}(?:\.{NAME_PATTERN})*)$",
        description="A context path: names separated by single dots; '' or 'root' is the root",
    ),
]
PathSegment = Annotated[  # a context path in a URL path, where it cannot be empty
    str,
    Meta(
        pattern=rf"^{NAME_PATTERN}(?:\.{NAME_PATTERN})*$",
        description="A context path: names separated by single dots; 'root' is the root",
    ),
]
Mask = Annotated[
    str,
    Meta(
        pattern=rf"^{_SEGMENT}(?:\.{_SEGMENT})*$",
        description="A context mask: names, '*' (one name) and '**' (any names), dotted",
    ),
]
EventPattern = Annotated[str, Meta(pattern=rf"^(?:{NAME_PATTERN}|\*)$", description="An event name or '*'")]
LevelName = Literal["NONE", "NOTICE", "INFO", "WARNING", "ERROR", "FATAL"]
# An enum in the document too: JSON Schema counts 3.0 as an integer, the decoder does not.
LevelNumber = Annotated[int, Meta(ge=0, le=5, extra_json_schema={"enum": [0, 1, 2, 3, 4, 5]})]


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" for c in word)  # portable: no (?i) in ECMA regexes


LevelText = Annotated[
    str,
    Meta(
        pattern=f"^(?:{'|'.join(map(_any_case, LEVEL_NAMES))}|[0-5])$",
        description="A level: NONE, NOTICE, INFO, WARNING, ERROR or FATAL (any case), or 0 to 5",
    ),
]
LevelValue = LevelText | LevelNumber
PermissionName = Literal["none", "observer", "operator", "manager", "engineer", "admin"]
CategoryName = Literal["ActionEvent", "AlertEvent", "UsageEvent", "ResourceStateEvent", "AsyncJobEvent"]
Text = Annotated[str, Meta(pattern=r"\S", description="Some text (not only spaces)")]
Time = Annotated[datetime, Meta(tz=True, description="ISO-8601 with a timezone, e.g. 2026-05-01T12:00:00Z")]
Record = dict[str, Any]
Data = list[Record] | Record | None
# Batch entries are decoded one by one (a bad entry is that entry's error, not the batch's),
# so the list holds any values here and FireItem in the document.
FireItems = Annotated[list[Any], Meta(extra_json_schema={"items": {"$ref": "#/components/schemas/FireItem"}})]
Ref = Annotated[int | str | None, Meta(description="Echoed in the answer")]


class Shape(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every declared document: unknown keys are an error."""


# -- HTTP requests -----------------------------------------------------------------


class LoginRequest(Shape):
    user: str
    password: str


class NewContext(Shape):
    """``POST /contexts``; ``controller`` adds a device that device controller owns, ``adopt``
    takes over an existing one that no other controller owns."""

    path: ContextPath
    template: Name | None = None
    description: str = ""
    controller: Name | None = None
    adopt: bool = False


class FireItem(Shape):
    """One event to fire: ``POST /fire`` (with ``durable``), a batch entry, a WebSocket fire."""

    context: ContextPath
    event: Name
    data: Data = None
    level: LevelValue | None = None


class FireRequest(FireItem):
    durable: bool = False


class FireBatchRequest(Shape):
    events: FireItems
    durable: bool = False


class Acknowledge(Shape):
    text: Text


class FilterCheck(Shape):
    """``POST /filters/check``: is ``filter`` valid for the events of ``mask`` and ``event``
    (as a history query or a subscription with them would check it)?"""

    filter: Text
    mask: list[Mask] = []
    event: list[Name] = []


Password = Annotated[str, Meta(min_length=8, max_length=1024, description="8 to 1024 characters")]
GrantTable = dict[Mask, PermissionName]  # 'root' is the root mask


class NewUser(Shape):
    name: Name
    password: Password | None = None  # none: no password login until one is set
    grants: GrantTable = {}


class PasswordChange(Shape):
    password: Password
    current_password: str | None = None  # needed to change one's own


class GrantChange(Shape):
    grants: Annotated[GrantTable, Meta(min_length=1)]


class Revocation(Shape):
    masks: Annotated[list[Mask], Meta(min_length=1)]


# -- HTTP query and path parameters ---------------------------------------------------


class RemoveContextQuery(Shape):
    """``DELETE /contexts/{path}``: the device controller removing a device of its own."""

    controller: Name | None = None


class TreeQuery(Shape):
    path: ContextPath = ""
    depth: Annotated[int, Meta(ge=0, le=1000)] | None = None


class HistoryParams(Shape):
    """``GET /history``: ``mask`` and ``event`` may repeat; every other parameter is given once."""

    mask: list[Mask] = []
    event: list[Name] = []
    filter: str | None = None
    min_level: LevelValue | None = None
    max_level: LevelValue | None = None
    since: Time | None = None
    until: Time | None = None
    group: str | None = None
    author: str | None = None
    acknowledged: bool | None = None
    requires_acknowledgement: bool | None = None
    order: Literal["newest", "oldest"] = "newest"
    limit: Annotated[int, Meta(ge=1, le=MAX_HISTORY_LIMIT)] = 100
    cursor: str | None = None
    count: bool = False


REPEATABLE_PARAMS = frozenset({"mask", "event", "state"})  # state: GET /alarms


class EventPath(Shape):
    id: EventId


class ContextPathParam(Shape):
    path: PathSegment


class UserPath(Shape):
    name: Name


class WebSocketQuery(Shape):
    token: str | None = None


# -- HTTP answers --------------------------------------------------------------------


class ErrorField(Shape):
    field: str
    message: str


class ErrorDetail(Shape):
    type: str
    message: str
    fields: list[ErrorField] | None = None
    column: Annotated[int | None, Meta(description="FilterError: where in the expression (from 1)")] = None


class ErrorAnswer(Shape):
    error: ErrorDetail


class Acknowledgement(Shape):
    time: datetime
    user: str
    text: str


class Event(Shape):
    """``Event.marshal()``: times ISO-8601 UTC, ``data`` a list of records."""

    id: EventId
    context: str
    name: str
    level: LevelName
    created: datetime
    data: list[Record]
    expires: datetime | None = None
    author: str | None = None
    group: str | None = None
    category: CategoryName | None = None
    acknowledgements: list[Acknowledgement] = []
    message: Annotated[
        str | None,
        Meta(
            description="what operators read first: the definition's message template rendered "
            "from this event (else its description, else its name), at read time"
        ),
    ] = None
    labels: Annotated[
        list[dict[str, Any]] | None,
        Meta(description="per record, the labels of its coded values ({field: label}); absent if none"),
    ] = None
    instructions: Annotated[
        str | None, Meta(description="the definition's operator instructions (GET /events/{id} only)")
    ] = None
    alarms: Annotated[
        list[EventAlarm] | None,
        Meta(
            description="the alarm keys the event raises or clears, with the alarm it is part of "
            "(GET /events/{id} only; absent when it raises and clears none)"
        ),
    ] = None


class EventAlarm(Shape):
    """An alarm key an event ``raises`` (reduces into) or ``clears``; ``id``/``state`` those of
    the alarm it is part of while that alarm is in the list and visible to the reader, else null
    (GET /alarms/{id}/events lists the alarm's events)."""

    key: str
    role: Literal["raises", "clears"]
    id: EventId | None = None
    state: Literal["open", "acknowledged", "cleared"] | None = None


class EventAnswer(Shape):
    event: Event


class Field(Shape):
    name: str
    type: Literal["string", "integer", "float", "boolean", "datetime", "table"]
    description: str
    nullable: bool
    default: Any = None
    allowed: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    format: Format | None = None
    labels: Annotated[
        list[Label] | None, Meta(description="value labels of a coded field: stored as value, shown as label")
    ] = None


class Label(Shape):
    value: int | str
    label: str


class Format(Shape):
    min_records: int
    max_records: int | None
    fields: list[Field]


class Retention(Shape):
    """How long a context's events of a definition are kept there (the expiration table
    applied) and why; ``mask``/``event`` name the table entry when ``source`` is table."""

    seconds: float
    source: Literal["table", "definition", "default"]
    mask: str | None = None
    event: str | None = None


class Definition(Shape):
    name: str
    description: str
    help: str
    level: LevelName
    persistent: bool
    expiration: Annotated[float | None, Meta(description="seconds")]
    permissions: PermissionName
    fire_permissions: PermissionName
    group: str | None
    hidden: bool
    requires_acknowledgement: bool
    category: CategoryName
    format: Format
    message: Annotated[str | None, Meta(description="the message template; null if none")] = None
    instructions: Annotated[str, Meta(description="what an operator should do about these events")] = ""
    retention: Annotated[
        Retention | None, Meta(description="in a context's listing; null if not persistent")
    ] = None


class TreeNode(Shape):
    path: str
    name: str
    description: str
    children: Annotated[list[TreeNode] | None, Meta(description="null where 'depth' stopped the walk")]


class ContextAnswer(Shape):
    path: str
    name: str
    description: str
    children: list[str]
    events: list[Definition]


class LoginAnswer(Shape):
    token: str
    user: str
    expires: datetime


class MeAnswer(Shape):
    user: str
    grants: dict[str, PermissionName]
    component: bool


class User(Shape):
    name: str
    grants: dict[str, PermissionName]
    password: bool  # whether it can log in with a password
    created: datetime
    updated: datetime


class UserAnswer(Shape):
    user: User


class UsersAnswer(Shape):
    users: list[User]


class PathAnswer(Shape):
    path: str


class RemovedPaths(Shape):
    removed: list[str]


class Purged(Shape):
    removed: int  # expired events
    alarms_removed: int  # alarms cleared longer ago than alarms.keep_cleared


class Empty(Shape):
    pass


class BatchResult(Shape):
    event: Event | None = None
    error: ErrorDetail | None = None


class BatchAnswer(Shape):
    results: list[BatchResult]


class FilterChecked(Shape):
    filter: str
    data_fields: list[str]


class HistoryAnswer(Shape):
    events: list[Event]
    next_cursor: str | None
    count: int | None = None


class Document(Shape):
    """An OpenAPI document (not described further here)."""


# -- WebSocket: client messages ----------------------------------------------------------


class FireMessage(FireItem, tag_field="type", tag="fire"):
    ref: Ref = None
    durable: bool = False


class FireBatchMessage(Shape, tag_field="type", tag="fire_batch"):
    events: FireItems
    ref: Ref = None
    durable: bool = False


class SubscribeMessage(Shape, tag_field="type", tag="subscribe"):
    mask: Mask
    ref: Ref = None
    event: EventPattern = "*"
    filter: str | None = None
    min_level: LevelValue | None = None
    resume_from: ResumeId | None = None
    batch: bool = False


class UnsubscribeMessage(Shape, tag_field="type", tag="unsubscribe"):
    subscription: str
    ref: Ref = None


class PingMessage(Shape, tag_field="type", tag="ping"):
    ref: Ref = None


ClientMessage = FireMessage | FireBatchMessage | SubscribeMessage | UnsubscribeMessage | PingMessage
MESSAGE_TYPES = ("fire", "fire_batch", "subscribe", "unsubscribe", "ping")
