"""Create a service's schema and seed it, once, even when replicas start together."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncConnection

from lookout_demo.storage.database import Database

__all__ = ["create_schema"]


async def create_schema(
    db: Database,
    metadata: MetaData,
    *,
    lock_id: int,
    seed: Callable[[AsyncConnection], Awaitable[None]] | None = None,
) -> None:
    """Create missing tables and seed them in one transaction.

    The transaction first takes a lock (Postgres: an advisory lock; SQLite: the file's write
    lock), so two replicas or workers starting at once never both create or both seed.
    """
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            # Take the file's write lock before looking at the schema: a deferred transaction
            # locks only at its first write, so two workers would both see no tables.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
        await conn.run_sync(metadata.create_all)
        if seed is not None:
            await seed(conn)
