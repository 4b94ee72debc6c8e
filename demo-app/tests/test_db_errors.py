"""db_query_errors_total counts each failure once, refused connections too (DBQueriesFailing).

A Postgres that refuses connections fails each statement before it is sent: asyncpg raises a
plain OSError there, which SQLAlchemy's handle_error never sees, so the shop counts those
failures where connections are opened (operation ``CONNECT``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from lookout_demo.storage.database import Database
from lookout_demo.telemetry.metrics import DbMetrics
from stack_support.backends import free_port


def _errors(registry: CollectorRegistry) -> dict[str, float]:
    """Return db_query_errors_total by operation."""
    return {
        sample.labels["operation"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "db_query_errors_total"
    }


def _run(
    url: str, attempt: Callable[[Database], Awaitable[None]], times: int = 1
) -> dict[str, float]:
    """Make ``times`` attempts on a fresh Database at ``url`` (each must raise); return errors."""
    registry = CollectorRegistry()
    db = Database(url, pool_size=1, max_overflow=0, metrics=DbMetrics(registry))

    async def go() -> None:
        try:
            for _ in range(times):
                with pytest.raises(Exception):  # noqa: B017 - any driver error will do
                    await attempt(db)
        finally:
            await db.close()

    asyncio.run(go())
    return _errors(registry)


async def _query(db: Database) -> None:
    async with db.session() as session:
        await session.execute(text("SELECT 1"))


async def _missing_table(db: Database) -> None:
    async with db.session() as session:
        await session.execute(text("SELECT * FROM no_such_table"))


async def _ping(db: Database) -> None:
    await db.ping()


@pytest.mark.parametrize("attempt", [_query, _ping], ids=["session", "ping"])
def test_refused_connections_count_as_connect_errors(
    attempt: Callable[[Database], Awaitable[None]],
) -> None:
    """Each statement that cannot connect (nothing listens) counts once as CONNECT."""
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/shop"
    assert _run(url, attempt, times=3) == {"CONNECT": 3.0}


@pytest.mark.integration
def test_unknown_database_counts_once_as_connect(postgres_url: str) -> None:
    """A connection Postgres itself refuses (a driver error) is counted once, as CONNECT."""
    url = postgres_url.rsplit("/", 1)[0] + "/lookout_no_such_database"
    assert _run(url.replace("postgresql://", "postgresql+asyncpg://"), _query) == {"CONNECT": 1.0}


@pytest.mark.integration
def test_failing_statement_counts_once_by_operation(postgres_url: str) -> None:
    """A statement that fails on an open connection counts once, by its SQL operation."""
    url = postgres_url.replace("postgresql://", "postgresql+asyncpg://")
    assert _run(url, _missing_table) == {"SELECT": 1.0}
