"""Run history behind one interface: in memory (tests, ``run``) or SQL (SQLite, Postgres)."""

from __future__ import annotations

from synthetic_monitor.storage.base import Bar, HistoryStore, RunRecord
from synthetic_monitor.storage.memory import MemoryStore
from synthetic_monitor.storage.sql import SqlStore

__all__ = ["Bar", "HistoryStore", "MemoryStore", "RunRecord", "SqlStore", "create_store"]


def create_store(url: str) -> HistoryStore:
    """Return the store for ``url`` (``memory://`` or an SQLAlchemy async URL)."""
    if url.startswith("memory:"):
        return MemoryStore()
    return SqlStore(url)
