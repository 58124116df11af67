"""Event history: the HistoryStore interface and its implementations."""

from linkserver.history.base import HistoryPage, HistoryQuery, HistoryStore, Visibility
from linkserver.history.engine import sqlite_url
from linkserver.history.errors import (
    InvalidAcknowledgement,
    InvalidCursor,
    InvalidQuery,
    SchemaOutdated,
    SchemaTooNew,
    UnstorableContext,
    UnstorableEvent,
)
from linkserver.history.memory import MemoryHistoryStore
from linkserver.history.sql import SqlHistoryStore
from linkserver.history.tree import StoredContext, TreeStore

__all__ = [
    # The interface
    "HistoryStore",
    "HistoryQuery",
    "HistoryPage",
    "Visibility",
    "TreeStore",
    "StoredContext",
    # Implementations
    "MemoryHistoryStore",
    "SqlHistoryStore",
    "sqlite_url",
    # Errors (besides core's HistoryError, EventNotFound, ServerStopped)
    "InvalidAcknowledgement",
    "InvalidCursor",
    "InvalidQuery",
    "SchemaOutdated",
    "SchemaTooNew",
    "UnstorableEvent",
    "UnstorableContext",
]
