"""Schema migrations with Alembic, run at start-up by one starter at a time.

Each service has its own migration scripts (``lookout_demo/migrations/<service>``) and its
own version table (``alembic_version_<service>``), so the two schemas could even share a
database. ``migrate()`` runs them on start-up:

1. take the migration lock: on Postgres a transaction-level advisory lock
   (``pg_advisory_xact_lock``: released by commit, rollback or a dropped connection, so a
   crashed starter never leaves it held); on SQLite an exclusive ``flock`` on
   ``<database file>.migrate.lock`` (SQLite has no advisory locks, and the file lock also
   covers the moment the database file is created);
2. upgrade to ``head`` inside that transaction, then run the seed (idempotent) in it;
3. commit, which releases the Postgres lock; the SQLite lock is released after.

A second starter waits on the lock, then finds the schema at head and does nothing. A
connection failure (the database still starting) is retried with a growing delay. Metrics:
``db_migration_duration_seconds``, ``db_migration_lock_wait_seconds``,
``db_migrations_total{outcome}`` (applied, up_to_date, failed) and
``db_migration_retries_total``; each run that applied revisions is written to the audit log.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from lookout_demo.storage.database import Database
from lookout_demo.telemetry.metrics import MigrationMetrics

__all__ = [
    "MigrationError",
    "MigrationResult",
    "alembic_config",
    "current_revision",
    "describe",
    "head_revision",
    "migrate",
    "run_alembic_env",
    "target_metadata",
]

log = logging.getLogger(__name__)

#: Postgres advisory-lock keys of the schema migrations (any constant unique per schema).
LOCK_IDS = {"shop": 0x5407, "payments": 0x9A75}

Seed = Callable[[AsyncConnection], Awaitable[None]]


class MigrationError(RuntimeError):
    """The schema could not be brought to head; the message says which service and why."""


@dataclass(frozen=True)
class MigrationResult:
    """What one start-up's migration did."""

    outcome: str
    from_revision: str | None
    to_revision: str | None
    lock_wait_seconds: float
    duration_seconds: float
    retries: int


def target_metadata(service: str) -> MetaData:
    """Return the metadata a service's migrations must produce: its tables and the audit log."""
    from lookout_demo.storage.audit_model import AuditBase  # noqa: PLC0415 - avoid a cycle

    if service == "shop":
        from lookout_demo.shop.models import Base  # noqa: PLC0415
    elif service == "payments":
        from lookout_demo.payments.models import Base  # type: ignore[assignment]  # noqa: PLC0415
    else:
        msg = f"unknown service {service!r}: migrations exist for shop and payments"
        raise ValueError(msg)
    metadata = MetaData()
    for source in (Base.metadata, AuditBase.metadata):
        for table in source.tables.values():
            table.to_metadata(metadata)
    return metadata


def version_table(service: str) -> str:
    """Return the name of a service's Alembic version table."""
    return f"alembic_version_{service}"


def alembic_config(service: str) -> Config:
    """Return an Alembic config for a service's scripts (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(files("lookout_demo") / "migrations" / service))
    config.attributes["service"] = service
    return config


def head_revision(service: str) -> str | None:
    """Return the newest revision of a service's scripts."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    return ScriptDirectory.from_config(alembic_config(service)).get_current_head()


def current_revision(connection: Connection, service: str) -> str | None:
    """Return the revision a database's schema is at, or None before the first migration."""
    migration = MigrationContext.configure(
        connection, opts={"version_table": version_table(service)}
    )
    return migration.get_current_revision()


def run_alembic_env(service: str) -> None:
    """Body of each scripts folder's env.py: migrate the connection ``migrate()`` passes in."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        msg = (
            f"the {service} migrations run through lookout_demo.storage.migrations.migrate() "
            "(at start-up), which passes the locked connection; not from the alembic command"
        )
        raise MigrationError(msg)
    context.configure(
        connection=connection,
        target_metadata=target_metadata(service),
        version_table=version_table(service),
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _upgrade(connection: Connection, service: str) -> tuple[str | None, str | None]:
    """Upgrade to head on this connection; return the revisions before and after."""
    before = current_revision(connection, service)
    config = alembic_config(service)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    return before, current_revision(connection, service)


def _sqlite_path(url: str) -> Path | None:
    """Return the file of a SQLite URL, or None for an in-memory database."""
    path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
    return None if not path or path == ":memory:" else Path(path)


@contextmanager
def _file_lock(path: Path) -> Iterator[int | None]:
    """Open (creating) a lock file; yield its descriptor; close it, which releases the lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        yield fd
    finally:
        os.close(fd)


async def _migrate_once(
    db: Database, service: str, seed: Seed | None
) -> tuple[str | None, str | None, float, float]:
    """Lock, upgrade, seed, commit; return (before, after, lock wait, migration time)."""
    lock_path = _sqlite_path(db.url) if db.is_sqlite else None
    lock = (
        _file_lock(lock_path.with_name(lock_path.name + ".migrate.lock"))
        if lock_path is not None
        else _no_lock()
    )
    with lock as fd:
        waited = time.perf_counter()
        if fd is not None:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        async with db.engine.connect() as conn:
            if not db.is_sqlite:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_IDS[service]}
                )
            lock_wait = time.perf_counter() - waited
            started = time.perf_counter()
            before, after = await conn.run_sync(_upgrade, service)
            if seed is not None:
                await seed(conn)
            await conn.commit()
            return before, after, lock_wait, time.perf_counter() - started


@contextmanager
def _no_lock() -> Iterator[int | None]:
    """Stand in for the file lock where there is no file (Postgres, in-memory SQLite)."""
    yield None


#: Errors that mean "the database is not reachable yet", worth another try.
_RETRYABLE = (OperationalError, InterfaceError, OSError, ConnectionError)


async def migrate(
    db: Database,
    service: str,
    *,
    seed: Seed | None = None,
    metrics: MigrationMetrics | None = None,
    attempts: int = 5,
    retry_delay_seconds: float = 0.5,
) -> MigrationResult:
    """Bring a service's schema to head under the migration lock, then seed; retry when down."""
    retries = 0
    while True:
        try:
            before, after, lock_wait, seconds = await _migrate_once(db, service, seed)
            break
        except _RETRYABLE as exc:
            if isinstance(exc, DBAPIError) and not exc.connection_invalidated and not _down(exc):
                _count_failure(metrics)
                raise
            if retries + 1 >= attempts:
                _count_failure(metrics)
                msg = (
                    f"{service} schema migration gave up after {attempts} attempts: "
                    f"{type(exc).__name__}: {exc}"
                )
                raise MigrationError(msg) from exc
            retries += 1
            if metrics is not None:
                metrics.retries.inc()
            delay = retry_delay_seconds * 2 ** (retries - 1)
            log.warning(
                "database not reachable for migration; retrying",
                extra={"service": service, "attempt": retries, "delay_seconds": delay},
            )
            await asyncio.sleep(delay)
        except Exception:
            _count_failure(metrics)
            raise
    outcome = "up_to_date" if before == after else "applied"
    if metrics is not None:
        metrics.runs.labels(outcome).inc()
        metrics.duration.set(seconds)
        metrics.lock_wait.set(lock_wait)
    result = MigrationResult(outcome, before, after, lock_wait, seconds, retries)
    log.info(
        "schema migrated" if outcome == "applied" else "schema up to date",
        extra={
            "service": service,
            "from_revision": before,
            "to_revision": after,
            "lock_wait_ms": round(lock_wait * 1000, 2),
            "duration_ms": round(seconds * 1000, 2),
            "retries": retries,
        },
    )
    return result


def _down(exc: DBAPIError) -> bool:
    """Tell whether a driver error means the server is unreachable (not a bad migration)."""
    text_ = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return any(
        hint in text_
        for hint in ("connect", "refused", "starting up", "shutting down", "timeout", "closed")
    )


def _count_failure(metrics: MigrationMetrics | None) -> None:
    if metrics is not None:
        metrics.runs.labels("failed").inc()


def describe(result: MigrationResult) -> dict[str, Any]:
    """Return a result as audit-log details."""
    return {
        "from_revision": result.from_revision,
        "to_revision": result.to_revision,
        "duration_ms": round(result.duration_seconds * 1000, 2),
        "retries": result.retries,
    }
