"""History in SQL through SQLAlchemy's async engine: SQLite (aiosqlite) or Postgres (asyncpg).

One table, ``synthetic_runs``, created when missing (there is one version of the schema so
far; a change will bring migrations). Times are Unix seconds (float) so SQLite and Postgres
bucket them the same way; ``hour`` is stored for the hourly uptime bars. SQLite runs in WAL
mode with a busy timeout, so the status page reads while runs are written.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from synthetic_monitor.results import RunResult
from synthetic_monitor.storage.base import HOUR, Bar, RunRecord, record_of

__all__ = ["SqlStore", "runs_table"]

metadata = MetaData()

runs_table = Table(
    "synthetic_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("journey", String(100), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("hour", Integer, nullable=False),
    Column("duration_seconds", Float, nullable=False),
    Column("success", Boolean, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("failing_step", String(100)),
    Column("reason", Text),
    Column("trace_id", String(32), nullable=False),
    Index("ix_synthetic_runs_journey_started", "journey", "started_at"),
    Index("ix_synthetic_runs_started", "started_at"),
)

_COLUMNS = (
    "journey",
    "started_at",
    "duration_seconds",
    "success",
    "outcome",
    "attempts",
    "failing_step",
    "reason",
    "trace_id",
)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")  # before WAL: a second process may hold a lock
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL makes this safe against corruption
    cursor.close()


class SqlStore:
    """Keeps runs in an SQL database."""

    def __init__(self, url: str) -> None:
        """Use the database at ``url`` (an SQLAlchemy async URL)."""
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    async def start(self) -> None:
        """Create the table and indexes when missing."""
        async with self.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    async def close(self) -> None:
        """Dispose of the connection pool."""
        await self.engine.dispose()

    async def ping(self) -> None:
        """Run ``SELECT 1``."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def record(self, result: RunResult) -> None:
        """Insert one run."""
        row = record_of(result)
        values = {name: getattr(row, name) for name in _COLUMNS}
        if values["reason"] is not None:
            values["reason"] = values["reason"][:2000]
        values["hour"] = int(row.started_at) // HOUR
        async with self.engine.begin() as connection:
            await connection.execute(insert(runs_table).values(**values))

    async def add(self, record: RunRecord) -> None:
        """Insert a ready-made record (tests seed history this way)."""
        values = {name: getattr(record, name) for name in _COLUMNS}
        values["hour"] = int(record.started_at) // HOUR
        async with self.engine.begin() as connection:
            await connection.execute(insert(runs_table).values(**values))

    async def uptime(self, journey: str, since: float) -> float | None:
        """Return the share of runs since ``since`` that passed."""
        query = select(
            func.count(),
            func.sum(func.cast(runs_table.c.success, Integer)),
        ).where(runs_table.c.journey == journey, runs_table.c.started_at >= since)
        async with self.engine.connect() as connection:
            total, good = (await connection.execute(query)).one()
        return (good or 0) / total if total else None

    async def bars(self, journey: str, now: float, hours: int = 24) -> list[Bar]:
        """Return one bar per hour for the last ``hours`` hours, oldest first."""
        last = int(now) // HOUR
        first = last - hours + 1
        query = (
            select(
                runs_table.c.hour,
                func.count(),
                func.sum(func.cast(runs_table.c.success, Integer)),
            )
            .where(runs_table.c.journey == journey, runs_table.c.hour >= first)
            .group_by(runs_table.c.hour)
        )
        async with self.engine.connect() as connection:
            rows = {int(h): (int(t), int(g or 0)) for h, t, g in await connection.execute(query)}
        return [Bar(float(hour * HOUR), *rows.get(hour, (0, 0))) for hour in range(first, last + 1)]

    async def _records(self, where: object, limit: int) -> list[RunRecord]:
        columns = [getattr(runs_table.c, name) for name in _COLUMNS]
        query = select(*columns).where(where).order_by(runs_table.c.started_at.desc()).limit(limit)  # type: ignore[arg-type]
        async with self.engine.connect() as connection:
            rows = await connection.execute(query)
            return [RunRecord(**dict(zip(_COLUMNS, row, strict=True))) for row in rows]

    async def recent_runs(self, journey: str, limit: int = 20) -> list[RunRecord]:
        """Return the newest runs of ``journey``."""
        return await self._records(runs_table.c.journey == journey, limit)

    async def recent_failures(self, limit: int = 20) -> list[RunRecord]:
        """Return the newest failed runs."""
        return await self._records(runs_table.c.success.is_(False), limit)

    async def prune(self, before: float) -> int:
        """Delete runs that started before ``before``."""
        async with self.engine.begin() as connection:
            result = await connection.execute(
                delete(runs_table).where(runs_table.c.started_at < before)
            )
        return int(result.rowcount or 0)
