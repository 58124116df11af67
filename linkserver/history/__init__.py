"""Event history: the HistoryStore interface and its implementations."""

from linkserver.history.base import HistoryPage, HistoryQuery, HistoryStore

__all__ = ["HistoryPage", "HistoryQuery", "HistoryStore"]
