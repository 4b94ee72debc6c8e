"""Start-up migrations (Alembic under a lock) and the hash-chained audit log, with its CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from prometheus_client import CollectorRegistry
from sqlalchemy import Connection, text

from demo_support import ShopFactory, login
from lookout_demo.cli import main as cli_main
from lookout_demo.storage.audit import RETENTION, AuditLog
from lookout_demo.storage.database import Database
from lookout_demo.storage.migrations import (
    MigrationError,
    current_revision,
    head_revision,
    migrate,
    target_metadata,
    version_table,
)
from lookout_demo.telemetry.metrics import MigrationMetrics
from stack_support.backends import free_port


def _async_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


def _schema_drift(connection: Connection, service: str) -> list[object]:
    """Return Alembic's differences between the migrated database and the models."""
    context = MigrationContext.configure(connection, opts={"version_table": version_table(service)})
    return list(compare_metadata(context, target_metadata(service)))


async def _migrate_and_compare(url: str, service: str) -> tuple[str, list[object], str | None]:
    db = Database(url)
    try:
        registry = CollectorRegistry()
        result = await migrate(db, service, metrics=MigrationMetrics(registry))
        assert result.lock_wait_seconds >= 0
        gauge = registry.get_sample_value("db_migration_lock_wait_seconds")
        assert gauge == result.lock_wait_seconds
        async with db.engine.connect() as conn:
            drift = await conn.run_sync(_schema_drift, service)
            revision = await conn.run_sync(current_revision, service)
        return result.outcome, drift, revision
    finally:
        await db.close()


@pytest.mark.parametrize("service", ["shop", "payments"])
def test_upgrade_on_empty_sqlite_matches_the_models(tmp_path: Path, service: str) -> None:
    """Migrating an empty SQLite file reaches head and leaves no difference from the models."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    outcome, drift, revision = asyncio.run(_migrate_and_compare(url, service))
    assert (outcome, drift, revision) == ("applied", [], head_revision(service))


@pytest.mark.integration
@pytest.mark.parametrize("service", ["shop", "payments"])
def test_upgrade_on_empty_postgres_matches_the_models(postgres_url: str, service: str) -> None:
    """Migrating an empty Postgres database reaches head and leaves no difference."""
    outcome, drift, revision = asyncio.run(_migrate_and_compare(_async_url(postgres_url), service))
    assert (outcome, drift, revision) == ("applied", [], head_revision(service))


def test_startup_metrics_and_audit_of_the_migration(
    make_shop: ShopFactory, registry: CollectorRegistry
) -> None:
    """A first start migrates (counted, timed, audited); the next start finds it up to date."""
    shop = make_shop()
    assert registry.get_sample_value("db_migrations_total", {"outcome": "applied"}) == 1.0
    assert (registry.get_sample_value("db_migration_duration_seconds") or 0) > 0
    assert (registry.get_sample_value("app_startup_duration_seconds") or 0) > 0
    audit: AuditLog = shop.app.state.audit  # type: ignore[attr-defined]
    actions = [r["action"] for r in asyncio.run(_records(audit))]
    assert actions == ["schema_migrated"]
    again = CollectorRegistry()
    make_shop(again)
    assert again.get_sample_value("db_migrations_total", {"outcome": "up_to_date"}) == 1.0


async def _records(audit: AuditLog) -> list[dict[str, object]]:
    # A fresh engine: the app's pool belongs to the app's event loop.
    db = Database(audit.db.url)
    try:
        return await AuditLog(db).records()
    finally:
        await db.close()


def test_unreachable_database_is_retried_then_fails_naming_it() -> None:
    """A database that never answers is retried with backoff, counted, then reported."""
    registry = CollectorRegistry()
    metrics = MigrationMetrics(registry)
    db = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")

    async def run() -> None:
        try:
            await migrate(db, "shop", metrics=metrics, attempts=3, retry_delay_seconds=0.01)
        finally:
            await db.close()

    with pytest.raises(MigrationError, match="shop schema migration gave up after 3 attempts"):
        asyncio.run(run())
    assert registry.get_sample_value("db_migration_retries_total") == 2.0
    assert registry.get_sample_value("db_migrations_total", {"outcome": "failed"}) == 1.0


def test_logins_and_fault_changes_are_audited_and_chain(make_shop: ShopFactory) -> None:
    """Logins (good and bad) and fault-API calls are appended to a chain that verifies."""
    shop = make_shop()
    login(shop)
    assert (
        shop.post("/api/login", json={"email": "bob@example.com", "password": "nope"}).status_code
        == 401
    )
    shop.put("/admin/faults", json={"rules": []}, headers={"X-Fault-Token": "test-fault-token"})
    shop.get("/admin/faults", headers={"X-Fault-Token": "wrong"})
    audit: AuditLog = shop.app.state.audit  # type: ignore[attr-defined]
    records = asyncio.run(_records(audit))
    assert [(r["category"], r["action"]) for r in records] == [
        ("migration", "schema_migrated"),
        ("security", "login_succeeded"),
        ("security", "login_failed"),
        ("fault", "faults_changed"),
        ("fault", "fault_api_denied"),
    ]
    assert "nope" not in json.dumps(records, default=str)
    assert cli_main(["audit", "--database-url", audit.db.url, "verify"]) == 0


async def _fill(url: str, count: int) -> AuditLog:
    db = Database(url)
    await migrate(db, "shop")
    audit = AuditLog(db)
    for n in range(count):
        await audit.append("admin", "test_action", actor=f"tester-{n}", details={"n": n})
    return audit


def test_tampered_record_is_named_by_audit_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Changing one record's details breaks the chain there; the CLI names that record."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"

    async def tamper() -> None:
        audit = await _fill(url, 5)
        async with audit.db.engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER audit_log_append_only"))
            await conn.execute(text("UPDATE audit_log SET details = '{\"n\": 99}' WHERE id = 3"))
        await audit.db.close()

    asyncio.run(tamper())
    assert cli_main(["audit", "--database-url", url, "verify"]) == 1
    err = capsys.readouterr().err
    assert "first broken record id=3" in err
    assert "do not hash" in err


def test_audit_log_refuses_updates(tmp_path: Path) -> None:
    """The append-only trigger refuses an UPDATE of an audit record."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"

    async def run() -> None:
        audit = await _fill(url, 1)
        try:
            async with audit.db.engine.begin() as conn:
                await conn.execute(text("UPDATE audit_log SET actor = 'x'"))
        finally:
            await audit.db.close()

    with pytest.raises(Exception, match="append-only"):
        asyncio.run(run())


async def _retention_round_trip(url: str, export: Path) -> tuple[int, int, list[str]]:
    """Age four records past retention, prune (export), restore, return what each step saw."""
    audit = await _fill(url, 5)
    try:
        old = datetime.now(UTC) - RETENTION - timedelta(days=30)
        # Back-date the first four records (recomputing the chain) as if written 7 years ago.
        rows = await audit.records()
        async with audit.db.engine.begin() as conn:
            if audit.db.is_sqlite:
                await conn.execute(text("DROP TRIGGER audit_log_append_only"))
            else:
                await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            await conn.execute(text("DELETE FROM audit_log"))
        for row in rows:
            row["at"] = old if row["id"] <= 4 else row["at"]
        await _rewrite_chain(audit, rows)
        if not audit.db.is_sqlite:  # the prune must get through the trigger on its own
            async with audit.db.engine.begin() as conn:
                await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
        pruned = await audit.prune(export)
        after_prune = [r["action"] for r in await audit.records()]
        restored = await audit.restore(export)
        verified = await audit.verify()
        assert verified.ok, verified
        return pruned, restored, after_prune
    finally:
        await audit.db.close()


async def _rewrite_chain(audit: AuditLog, rows: list[dict[str, object]]) -> None:
    from sqlalchemy import insert

    from lookout_demo.storage.audit import GENESIS_HASH, record_hash
    from lookout_demo.storage.audit_model import AuditRecord

    prev = GENESIS_HASH
    async with audit.db.engine.begin() as conn:
        for row in rows:
            at = row["at"]
            assert isinstance(at, datetime)
            at = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at
            digest = record_hash(
                prev,
                at,
                category=str(row["category"]),
                action=str(row["action"]),
                actor=str(row["actor"]),
                details=str(row["details"]),
            )
            await conn.execute(
                insert(AuditRecord).values(**{**row, "at": at, "prev_hash": prev, "hash": digest})
            )
            prev = digest


def test_retention_prune_exports_and_restores_verified(tmp_path: Path) -> None:
    """Records past 7 years are exported, verified, pruned, and restore into a chain that holds."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
    export = tmp_path / "archive" / "audit-old.jsonl"
    pruned, restored, after_prune = asyncio.run(_retention_round_trip(url, export))
    assert (pruned, restored) == (4, 4)
    assert after_prune == ["test_action", "audit_pruned"]
    assert cli_main(["audit", "verify", "--file", str(export)]) == 0


@pytest.mark.integration
def test_retention_prune_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    """On Postgres the prune passes the append-only trigger (and only the prune does)."""
    export = tmp_path / "audit-old.jsonl"
    url = _async_url(postgres_url)
    pruned, restored, _ = asyncio.run(_retention_round_trip(url, export))
    assert (pruned, restored) == (4, 4)

    async def plain_delete() -> None:
        db = Database(url)
        try:
            async with db.engine.begin() as conn:
                await conn.execute(text("DELETE FROM audit_log"))
        finally:
            await db.close()

    with pytest.raises(Exception, match="append-only: DELETE refused"):
        asyncio.run(plain_delete())


def test_restore_of_a_mismatched_export_is_refused(tmp_path: Path) -> None:
    """An export that overlaps the log, or does not chain into it, is refused; nothing stored."""
    other_url = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
    export = tmp_path / "other.jsonl"

    async def run() -> tuple[list[int], list[int]]:
        other = await _fill(other_url, 3)
        try:
            await other.export(export, before=datetime.now(UTC) + timedelta(days=1))
        finally:
            await other.db.close()
        audit = await _fill(url, 5)
        try:
            with pytest.raises(ValueError, match=r"overlap the audit log \(record 1 already"):
                await audit.restore(export)
            overlapped = [int(r["id"]) for r in await audit.records()]
            # As if ids 1..3 were pruned: the file's ids fit, but its hashes are another log's.
            async with audit.db.engine.begin() as conn:
                await conn.execute(text("DROP TRIGGER audit_log_append_only"))
                await conn.execute(text("DELETE FROM audit_log WHERE id <= 3"))
            with pytest.raises(ValueError, match="does not chain into the audit log: record 4"):
                await audit.restore(export)
            return overlapped, [int(r["id"]) for r in await audit.records()]
        finally:
            await audit.db.close()

    overlapped, mismatched = asyncio.run(run())
    assert overlapped == [1, 2, 3, 4, 5]
    assert mismatched == [4, 5]


def test_malformed_export_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A broken export line is reported with the file and line number, not a traceback."""
    export = tmp_path / "bad.jsonl"
    export.write_text('{"id": 1, "at": "2020-01-01T00:00:00"}\n', encoding="utf-8")
    assert cli_main(["audit", "verify", "--file", str(export)]) == 2
    assert f"{export}:1: missing field(s) category" in capsys.readouterr().err
    export.write_text("\n{not json\n", encoding="utf-8")
    assert cli_main(["audit", "verify", "--file", str(export)]) == 2
    assert f"{export}:2: not valid JSON" in capsys.readouterr().err
