"""The async SQLAlchemy engine, its spans, query metrics and connection-pool metrics.

SQLite (aiosqlite, WAL) by default so the app runs with zero set-up; Postgres (asyncpg)
when ``DATABASE_URL`` points at one. Every statement is timed by SQL operation, the pool is
measured on each checkout and checkin, and the time to get a connection is observed per
session, with the trace id as exemplar.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from lookout_demo.telemetry.metrics import DbMetrics, current_exemplar

__all__ = ["CONNECT", "Database", "DatabaseBusyError", "sql_operation"]

log = logging.getLogger(__name__)

_OPERATIONS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT", "ROLLBACK"})
#: The ``operation`` label of a connection that could not be opened (db_query_errors_total).
CONNECT = "CONNECT"


class DatabaseBusyError(Exception):
    """No pooled connection became free within the pool timeout."""


def sql_operation(statement: str) -> str:
    """Name a statement's operation for a metric label (a small fixed set, else OTHER)."""
    head = statement.lstrip().split(None, 1)
    word = head[0].upper() if head else ""
    return word if word in _OPERATIONS else "OTHER"


class Database:
    """One engine and session factory, instrumented."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        max_overflow: int = 10,
        pool_timeout_seconds: float = 5.0,
        slow_query_seconds: float = 0.5,
        metrics: DbMetrics | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if not self.is_sqlite:
            # pre_ping: a Postgres restart or an idle timeout must not fail the next request.
            # (A local SQLite file has no connection to lose.)
            kwargs |= {
                "pool_pre_ping": True,
                "pool_size": pool_size,
                "max_overflow": max_overflow,
                "pool_timeout": pool_timeout_seconds,
            }
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.metrics = metrics
        #: Pool waits seen by this process: count, total and longest, in seconds (/health/db).
        self.wait_count = 0
        self.wait_total_seconds = 0.0
        self.wait_max_seconds = 0.0
        self.pool_timeout_seconds = pool_timeout_seconds
        self.slow_query_seconds = slow_query_seconds
        sync_engine = self.engine.sync_engine
        if self.is_sqlite:
            event.listen(sync_engine, "connect", _sqlite_pragmas)
        if tracer_provider is not None:
            # EngineTracer is what SQLAlchemyInstrumentor().instrument(engine=...) builds; the
            # instrumentor is a process-wide singleton that instruments only its first engine,
            # and a process here may hold several (tests, shop and payments in one process).
            EngineTracer(
                tracer_provider.get_tracer("opentelemetry.instrumentation.sqlalchemy"),
                sync_engine,
                NoOpMeterProvider()
                .get_meter("lookout_demo")
                .create_up_down_counter("db.client.connections.usage"),
            )
        if metrics is not None:
            self._measure(sync_engine, metrics)

    def _measure(self, sync_engine: Engine, metrics: DbMetrics) -> None:
        pool = sync_engine.pool
        size = getattr(pool, "size", None)
        if callable(size):
            metrics.pool_size.set(size())

        overflow = getattr(pool, "overflow", None)

        # Counted by the events themselves: when "checkin" fires the pool still counts the
        # connection as checked out, so reading pool.checkedout() there is one too high.
        def checked_out(*_: object) -> None:
            metrics.pool_checked_out.inc()
            if callable(overflow):
                metrics.pool_overflow.set(max(0, overflow()))

        def checked_in(*_: object) -> None:
            metrics.pool_checked_out.dec()
            if callable(overflow):
                metrics.pool_overflow.set(max(0, overflow()))

        event.listen(pool, "checkout", checked_out)
        event.listen(pool, "checkin", checked_in)

        @event.listens_for(sync_engine, "before_cursor_execute")
        def _start(conn: Any, _c: Any, _s: str, _p: Any, _ctx: Any, _many: bool) -> None:
            conn.info.setdefault("lookout_query_start", []).append(time.perf_counter())

        @event.listens_for(sync_engine, "after_cursor_execute")
        def _end(conn: Any, _c: Any, statement: str, _p: Any, _ctx: Any, _many: bool) -> None:
            started = conn.info["lookout_query_start"].pop()
            seconds = time.perf_counter() - started
            operation = sql_operation(statement)
            metrics.query_duration.labels(operation).observe(seconds, exemplar=current_exemplar())
            if seconds >= self.slow_query_seconds:
                log.warning(
                    "slow query",
                    extra={
                        "operation": operation,
                        "duration_ms": round(seconds * 1000, 2),
                        "statement": statement[:200],
                    },
                )

        # A connection that cannot be opened (refused, reset, unknown database, bad password)
        # counts as operation CONNECT. handle_error alone misses most of them: it sees only
        # the driver's own exceptions, and asyncpg raises a refused connection as a plain
        # OSError. Returning the connection from do_connect is the hook's documented use.
        @event.listens_for(sync_engine, "do_connect")
        def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            try:
                return dialect.connect(*cargs, **cparams)
            except BaseException:
                metrics.query_errors.labels(CONNECT).inc()
                raise

        @event.listens_for(sync_engine, "handle_error")
        def _error(ctx: Any) -> None:
            if ctx.connection is None:  # failed while connecting: counted by _connect
                return
            starts = ctx.connection.info.get("lookout_query_start")
            if starts:
                starts.pop()
            metrics.query_errors.labels(sql_operation(ctx.statement or "")).inc()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """Open a session with its connection already taken from the pool (wait measured)."""
        async with self.sessions() as session:
            started = time.perf_counter()
            try:
                await session.connection()
            except PoolTimeoutError:
                if self.metrics is not None:
                    self.metrics.pool_timeouts.inc()
                msg = f"no database connection was free within {self.pool_timeout_seconds:g}s"
                raise DatabaseBusyError(msg) from None
            waited = time.perf_counter() - started
            self.wait_count += 1
            self.wait_total_seconds += waited
            self.wait_max_seconds = max(self.wait_max_seconds, waited)
            if self.metrics is not None:
                self.metrics.pool_wait.observe(waited, exemplar=current_exemplar())
            yield session

    def pool_status(self) -> dict[str, Any]:
        """Describe the connection pool: size, checked out, overflow, and the waits seen."""
        pool = self.engine.sync_engine.pool
        status: dict[str, Any] = {"class": type(pool).__name__}
        for key, attr in (
            ("size", "size"),
            ("checked_out", "checkedout"),
            ("overflow", "overflow"),
            ("idle", "checkedin"),
        ):
            reader = getattr(pool, attr, None)
            status[key] = reader() if callable(reader) else None
        if status["overflow"] is not None:
            status["overflow"] = max(0, status["overflow"])
        status["timeout_seconds"] = self.pool_timeout_seconds
        status["wait_seconds"] = {
            "count": self.wait_count,
            "mean": round(self.wait_total_seconds / self.wait_count, 6) if self.wait_count else 0.0,
            "max": round(self.wait_max_seconds, 6),
        }
        return status

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises when the database does not answer."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run while one writer commits; busy_timeout waits for the lock
    # instead of failing at once when two requests write together.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except Exception as exc:
        # Switching a fresh file to WAL needs it to itself, and SQLite answers "locked" at
        # once (no busy wait) while another process is switching or creating the schema.
        # WAL is a property of the file: whoever switches it, every connection then uses it,
        # and the pool's next new connection tries again.
        if "locked" not in str(exc):
            raise
        log.debug("SQLite WAL switch deferred: the file is busy")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
