"""History: uptime over 24h/7d/30d, hourly bars, failures, pruning (memory, SQLite, Postgres)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor_support import IN_CI
from synthetic_monitor.results import RunResult, StepResult
from synthetic_monitor.storage import HistoryStore, MemoryStore, RunRecord, SqlStore

NOW = 1_800_000_000.0
HOUR, DAY = 3600.0, 86400.0


def record(journey: str, age: float, success: bool, step: str | None = None) -> RunRecord:
    """Return a stored run ``age`` seconds before NOW."""
    return RunRecord(
        journey=journey,
        started_at=NOW - age,
        duration_seconds=0.1,
        success=success,
        outcome="success" if success else "failure",
        attempts=1,
        failing_step=step,
        reason=None if success else f"step {step!r}: boom",
        trace_id=uuid.uuid4().hex,
    )


async def seed(store: HistoryStore) -> None:
    """Within 24h: 3 good 1 bad; within 7d: +2 bad; within 30d: +4 good; older: 10 bad."""
    rows = (
        [record("shop", 10 * 60 * i, True) for i in range(1, 4)]
        + [record("shop", 2 * HOUR, False, "login")]
        + [record("shop", 3 * DAY, False, "cart") for _ in range(2)]
        + [record("shop", 20 * DAY, True) for _ in range(4)]
        + [record("shop", 40 * DAY, False, "old") for _ in range(10)]
        + [record("other", HOUR, True)]
    )
    for row in rows:
        await store.add(row)  # type: ignore[attr-defined]


async def exercise(store: HistoryStore) -> None:
    """Check every query of the interface against the seeded history."""
    await store.start()
    try:
        await seed(store)
        assert await store.uptime("shop", NOW - DAY) == pytest.approx(3 / 4)
        assert await store.uptime("shop", NOW - 7 * DAY) == pytest.approx(3 / 6)
        assert await store.uptime("shop", NOW - 30 * DAY) == pytest.approx(7 / 10)
        assert await store.uptime("nobody", NOW - DAY) is None
        bars = await store.bars("shop", NOW, 24)
        assert len(bars) == 24
        assert sum(b.total for b in bars) == 4
        assert sum(b.good for b in bars) == 3
        assert bars[-1].start <= NOW < bars[-1].start + HOUR
        failures = await store.recent_failures(3)
        assert [f.failing_step for f in failures] == ["login", "cart", "cart"]
        recent = await store.recent_runs("shop", 2)
        assert [r.started_at for r in recent] == [NOW - 600, NOW - 1200]
        assert await store.prune(NOW - 30 * DAY) == 10
        assert await store.uptime("shop", 0) == pytest.approx(7 / 10)
        await store.ping()
    finally:
        await store.close()


def test_memory_store_answers_uptime_bars_and_failures() -> None:
    """The in-memory store implements the interface."""
    asyncio.run(exercise(MemoryStore()))


def test_sqlite_store_answers_uptime_bars_and_failures(tmp_path: Path) -> None:
    """The SQLite store (the default) implements the interface."""
    asyncio.run(exercise(SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")))


def test_sqlite_history_survives_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    """Runs recorded by one process are there for the next (restart, reload)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    result = RunResult(
        journey="j",
        kind="check",
        success=False,
        attempts=2,
        first_attempt_success=False,
        started_at=NOW,
        duration_seconds=0.5,
        trace_id="ab" * 16,
        steps=[StepResult("check", "http", False, 0.5, 2, error="boom")],
    )

    async def scenario() -> list[RunRecord]:
        first = SqlStore(url)
        await first.start()
        await first.record(result)
        await first.close()
        second = SqlStore(url)
        await second.start()
        try:
            return await second.recent_failures()
        finally:
            await second.close()

    (stored,) = asyncio.run(scenario())
    assert stored.failing_step == "check"
    assert stored.attempts == 2
    assert stored.reason == "step 'check': boom"
    assert stored.trace_id == "ab" * 16


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """Create a throw-away database on the local Postgres; drop it afterwards."""
    asyncpg = pytest.importorskip("asyncpg")
    name = f"monitor_test_{uuid.uuid4().hex[:8]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=5432, user="postgres", database="postgres"
        )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except OSError as error:
        message = f"Postgres is not reachable on 127.0.0.1:5432 ({error}); start it and rerun"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.integration
def test_postgres_store_answers_uptime_bars_and_failures(postgres_url: str) -> None:
    """The Postgres store implements the interface against a real server."""
    asyncio.run(exercise(SqlStore(postgres_url)))
