"""The history tables (SQLAlchemy Core) and the conversions between rows and events.

The DDL here and in ``migrations/versions`` must stay the same; a test compares
them. Every index is justified next to its definition: each one slows down
every insert, so only queries and the purge that need one get one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects import postgresql

from linkserver.core.events import Acknowledgement, Event
from linkserver.core.levels import Level
from linkserver.history.codec import (
    EPOCH,
    MICROSECOND,
    UTC,
    check_event,
    decode_data,
    encode_data,
    from_micros,
    micros,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes: ``timestamptz`` on PostgreSQL, integer microseconds on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return micros(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, int):
            return from_micros(value)
        return value if value.tzinfo is UTC else value.astimezone(UTC)


# SQLite: INTEGER PRIMARY KEY makes the id the rowid, so the table itself is
# clustered by id and keyset pages walk it in order without a separate index.
Id = BigInteger().with_variant(Integer(), "sqlite")
# PostgreSQL: byte order ("C" collation) so that prefix ranges on context paths
# use the index and agree with Python's string order.
ContextPath = Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
Data = JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = MetaData()

events = Table(
    "events",
    metadata,
    # Time-ordered 64-bit ids: the primary key serves get(), keyset pagination
    # (ORDER BY id) and time ranges (since/until become id ranges).
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("context", ContextPath, nullable=False),
    Column("name", Text, nullable=False),
    Column("level", SmallInteger, nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("expires", UtcDateTime, nullable=True),
    Column("author", Text, nullable=True),
    Column("group", Text, nullable=True),
    Column("data", Data, nullable=False),
    Column("requires_ack", Boolean, nullable=False, default=False),
    # The definition's category (linkserver/core/categories.py); null for events stored before 0004.
    # Not indexed: filters on it combine with a context or name, which are.
    Column("category", Text, nullable=True),
)

# The common read: newest N events of one context (or a prefix range of
# contexts) at some level. Seek the context, walk ids backwards, stop after N.
Index("ix_events_context_id", events.c.context, events.c.id)
# Newest N events of given names in any context (e.g. every "login").
Index("ix_events_name_id", events.c.name, events.c.id)
# The purge: the oldest expiry first, a bounded batch at a time.
Index("ix_events_expires", events.c.expires)
# The operators' to-do list: events that require an acknowledgement, newest
# first. Partial, so it holds only those few events.
Index(
    "ix_events_requires_ack",
    events.c.id,
    sqlite_where=events.c.requires_ack == True,  # noqa: E712 - the queries say it the same way
    postgresql_where=events.c.requires_ack == True,  # noqa: E712
)

acknowledgements = Table(
    "acknowledgements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "event_id",
        Id,
        ForeignKey("events.id", ondelete="CASCADE", name="fk_acknowledgements_event_id"),
        nullable=False,
    ),
    Column("time", UtcDateTime, nullable=False),
    Column("user", Text, nullable=False),
    Column("text", Text, nullable=False),
)

# get() and queries load the acknowledgements of an event in time order;
# "acknowledged or not" is an EXISTS on it; the purge deletes by event id.
Index("ix_acknowledgements_event_id_time", acknowledgements.c.event_id, acknowledgements.c.time)

# The run-time tree (linkserver/history/tree.py): one row per context path added or
# removed since the YAML tree. The primary key serves the upsert of a change;
# seq (unique) numbers the changes, so "rows after seq N" is a change feed.
contexts = Table(
    "contexts",
    metadata,
    Column("path", ContextPath, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("removed", Boolean, nullable=False),
    Column("template", Text, nullable=True),
    Column("child_template", Text, nullable=True),
    Column("description", Text, nullable=False),
    Column("changed", UtcDateTime, nullable=False),
    Column("node", Integer, nullable=False),
)
Index("ix_contexts_seq", contexts.c.seq, unique=True)
users = Table(
    "users",
    metadata,
    # A handful to a few thousand rows, read whole at start and by name: the primary key is enough.
    Column("name", Text, primary_key=True),
    Column("password_hash", Text, nullable=True),
    Column("grants", Data, nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Column("removed", Boolean, nullable=False),
    # Changes with every write (linkserver/history/users.py): max(revision) tells a node that
    # another one changed a user. Not indexed: the table is small.
    Column("revision", BigInteger, nullable=False),
)

# The outbox of outbound bridges (linkserver/history/outbox.py): one row per (bridge, node,
# event) committed with the event and deleted once the broker confirmed it. The primary key
# serves the drain (rows of one bridge and node in event id order) and the delete.
bridge_outbox = Table(
    "bridge_outbox",
    metadata,
    Column("bridge", Text, primary_key=True),
    Column("node", Integer, primary_key=True, autoincrement=False),
    Column("event_id", BigInteger, primary_key=True, autoincrement=False),
)

# The current state of each resource (linkserver/history/resource_states.py): one row per
# context whose state machine left its initial state; absent means the initial state.
# Written in the transaction of the stateChanged event that reports the change.
resource_states = Table(
    "resource_states",
    metadata,
    Column("path", ContextPath, primary_key=True),  # read whole at start, deleted by path prefix
    Column("machine", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("changed", UtcDateTime, nullable=False),
    Column("event_id", BigInteger, nullable=False),  # the stateChanged event of the change
    Column("actor", Text, nullable=True),
    Column("cause", Text, nullable=True),
)

# The node-id leases of a cluster (linkserver/history/nodes.py): one row per node id
# (0..1023) ever claimed. ``owner`` is the claiming process's random token; the lease holds
# until ``expires_ms`` (milliseconds since 1970, renewed by the node's heartbeat). A row whose
# lease ran out long enough ago may be claimed by another process. A few dozen rows at most:
# read whole, no index besides the key.
nodes = Table(
    "nodes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)

# What alert rules remember (linkserver/history/rule_state.py): one row per rule and key
# (a context, a data value, an alert's event id), ``state`` the JSON of core/rule_state.py's
# dump, ``updated_ms`` milliseconds since 1970. Read whole at start, written in batches.
rule_state = Table(
    "rule_state",
    metadata,
    Column("rule", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

# The alarm list (linkserver/history/alarms.py): one row per reduction key, written in the
# transaction of the events that raise, reduce or clear it. The primary key (the id of the
# alarm's first event) serves get() and keyset pages; the unique key the upserts. Nothing
# else is indexed but the cleared alarms' keys (partial: occurrences never change it), which
# the writer's DELETE of recurring cleared alarms looks up per key in each batch; every other
# index would cost each upsert, and the list is small enough to scan for the purge and the
# auto-clear sweep.
alarms = Table(
    "alarms",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("key", Text, nullable=False),
    Column("context", ContextPath, nullable=False),
    Column("name", Text, nullable=False),
    Column("state", Text, nullable=False),  # open, acknowledged, cleared
    Column("level", SmallInteger, nullable=False),
    Column("alarm_level", Text, nullable=False),  # the level policy: highest or last
    Column("count", BigInteger, nullable=False),
    Column("first", UtcDateTime, nullable=False),
    Column("last", UtcDateTime, nullable=False),
    Column("event_id", BigInteger, nullable=False),  # the last event
    Column("auto_clear_at", UtcDateTime, nullable=True),
    Column("cleared", UtcDateTime, nullable=True),
    Column("cleared_by", Text, nullable=True),  # event, user or auto_clear
    Column("cleared_event", BigInteger, nullable=True),
    Column("cleared_user", Text, nullable=True),
)
Index("ix_alarms_key", alarms.c.key, unique=True)
Index(
    "ix_alarms_cleared_key",
    alarms.c.key,
    sqlite_where=alarms.c.state == "cleared",  # as the DELETE says it
    postgresql_where=alarms.c.state == "cleared",
)

# Acknowledgements of alarms, by alarm id (an alarm that recurs after a clear gets a new id,
# so the old one's acknowledgements stay with it until the purge removes both).
alarm_acknowledgements = Table(
    "alarm_acknowledgements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("alarm_id", BigInteger, nullable=False),
    Column("time", UtcDateTime, nullable=False),
    Column("user", Text, nullable=False),
    Column("text", Text, nullable=False),
)
Index("ix_alarm_acknowledgements_alarm_id", alarm_acknowledgements.c.alarm_id, alarm_acknowledgements.c.time)

# Login sessions (linkserver/history/sessions.py): one row per session token, by the token's
# digest (the primary key serves every lookup of a token). seq numbers the writes (the rows of
# one transaction share it), so "rows after seq N" is the feed other nodes follow.
sessions = Table(
    "sessions",
    metadata,
    Column("digest", Text, primary_key=True),
    Column("user", Text, nullable=False),
    Column("address", Text, nullable=True),
    Column("created", UtcDateTime, nullable=False),
    Column("expires", UtcDateTime, nullable=False),
    Column("ended", UtcDateTime, nullable=True),
    Column("reason", Text, nullable=True),
    Column("why", Text, nullable=True),
    Column("seq", BigInteger, nullable=False),
)
# The feed: rows after the last change number a node saw.
Index("ix_sessions_seq", sessions.c.seq)
# Ending every session of one user (password changed, user removed).
Index("ix_sessions_user", sessions.c.user)
# The expiry sweep (open sessions past their expiry) and forgetting old rows.
Index("ix_sessions_expires", sessions.c.expires)

# Device owners shared by the nodes of a database (linkserver/history/device_owners.py): one
# row per owned device context. The primary key serves every lookup, and (byte order on
# PostgreSQL) the prefix range of a removal's subtree.
device_owners = Table(
    "device_owners",
    metadata,
    Column("path", ContextPath, primary_key=True),
    Column("controller", Text, nullable=False),
    Column("principal", Text, nullable=True),  # None: a controller in the node's own process
    Column("node", Integer, nullable=False),
    Column("claimed", UtcDateTime, nullable=False),
)

# Failed logins and unknown tokens per key (linkserver/history/failures.py), shared by the
# nodes so a guesser spread over them gets no more attempts. The key serves every read and
# write; the purge's scan of old rows reads a table that only guessers make large.
login_failures = Table(
    "login_failures",
    metadata,
    Column("rule", Text, primary_key=True),  # user, address or token
    Column("key", Text, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last", UtcDateTime, nullable=False),
    Column("locked_until", UtcDateTime, nullable=False),
)

# API tokens (linkserver/history/api_tokens.py): in the database so every node accepts the same
# ones. Few rows, each node rereads them all; grants are JSON text (mask -> level).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("name", Text, primary_key=True),
    Column("digest", Text, nullable=False),
    Column("grants", Text, nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("expires", UtcDateTime, nullable=True),
)

# The job view (linkserver/history/jobs.py): one row per job id, written in the commit of the
# job events that move it (a same-commit hook), so every node and every restart sees the same jobs.
jobs = Table(
    "jobs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("resource", ContextPath, nullable=False),
    Column("user", Text, nullable=True),
    Column("asynchronous", Boolean, nullable=False),
    Column("status", Text, nullable=False),  # scheduled, started, completed, failed
    Column("scheduled", UtcDateTime, nullable=True),
    Column("started", UtcDateTime, nullable=True),
    Column("finished", UtcDateTime, nullable=True),
    Column("progress", Integer, nullable=True),
    Column("message", Text, nullable=True),
    Column("result", Text, nullable=True),
    Column("start_within", Float, nullable=True),  # seconds
    Column("timeout", Float, nullable=True),  # seconds
    Column("hanging", Text, nullable=True),  # why jobHanging was fired (once per job)
    Column("event_id", BigInteger, nullable=False),  # the last job event that moved it
    Index("ix_jobs_status", "status"),
)

EVENT_COLUMNS = tuple(column.name for column in events.columns)
"""The column order of rows made by :func:`row_maker` (the writer's INSERT/COPY order)."""


def row_maker(dialect_name: str) -> Callable[[Event, bool], tuple[Any, ...]]:
    """A fast ``(event, requires_ack) -> row tuple`` for the writer, bypassing SQLAlchemy types.

    Raises UnstorableEvent for data that JSON cannot hold.
    """
    if dialect_name == "sqlite":

        def make_sqlite(event: Event, requires_ack: bool) -> tuple[Any, ...]:
            expires = event.expires
            try:
                created = (event.created - EPOCH) // MICROSECOND
                expires = None if expires is None else (expires - EPOCH) // MICROSECOND
            except TypeError:  # a naive datetime
                check_event(event)
                raise
            return (
                event.id,
                event.context,
                event.name,
                int(event.level),
                created,
                expires,
                event.author,
                event.group,
                encode_data(event.data),
                requires_ack,
                event.category,
            )

        return make_sqlite

    def make(event: Event, requires_ack: bool) -> tuple[Any, ...]:
        check_event(event)
        return (
            event.id,
            event.context,
            event.name,
            int(event.level),
            event.created,
            event.expires,
            event.author,
            event.group,
            encode_data(event.data),
            requires_ack,
            event.category,
        )

    return make


def event_from_row(row: Any, acks: Sequence[Acknowledgement] = ()) -> Event:
    """An Event from a selected ``events`` row (all columns, SQLAlchemy types applied)."""
    return Event(
        id=row.id,
        context=row.context,
        name=row.name,
        level=Level(row.level),
        created=row.created,
        expires=row.expires,
        author=row.author,
        group=row.group,
        data=decode_data(row.data),
        acknowledgements=tuple(acks),
        category=row.category,
    )


def ack_from_row(row: Any) -> Acknowledgement:
    return Acknowledgement(time=row.time, user=row.user, text=row.text)
