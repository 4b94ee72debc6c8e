"""The history interface and the records it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from synthetic_monitor.results import RunResult

__all__ = ["HOUR", "Bar", "HistoryStore", "RunRecord", "record_of"]

HOUR = 3600


@dataclass(frozen=True)
class RunRecord:
    """One stored run."""

    journey: str
    started_at: float
    duration_seconds: float
    success: bool
    outcome: str
    attempts: int
    failing_step: str | None
    reason: str | None
    trace_id: str


@dataclass(frozen=True)
class Bar:
    """Runs in one hour: how many, how many passed."""

    start: float
    total: int
    good: int

    @property
    def ratio(self) -> float | None:
        """Return good/total, or None for an hour without runs."""
        return self.good / self.total if self.total else None


def record_of(result: RunResult) -> RunRecord:
    """Return the stored form of ``result``."""
    step = result.failing_step
    return RunRecord(
        journey=result.journey,
        started_at=result.started_at,
        duration_seconds=result.duration_seconds,
        success=result.success,
        outcome=result.outcome,
        attempts=result.attempts,
        failing_step=step.name if step is not None else None,
        reason=result.failure_reason() or None,
        trace_id=result.trace_id,
    )


class HistoryStore(Protocol):
    """Where runs are kept; uptime is good runs / runs since a time."""

    async def start(self) -> None:
        """Connect and create the schema when missing."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    async def record(self, result: RunResult) -> None:
        """Keep one run."""
        ...

    async def uptime(self, journey: str, since: float) -> float | None:
        """Return the share of runs since ``since`` that passed (None without runs)."""
        ...

    async def bars(self, journey: str, now: float, hours: int = 24) -> list[Bar]:
        """Return one bar per hour for the last ``hours`` hours, oldest first."""
        ...

    async def recent_runs(self, journey: str, limit: int = 20) -> list[RunRecord]:
        """Return the newest runs of ``journey``, newest first."""
        ...

    async def recent_failures(self, limit: int = 20) -> list[RunRecord]:
        """Return the newest failed runs of every journey, newest first."""
        ...

    async def prune(self, before: float) -> int:
        """Delete runs that started before ``before``; return how many."""
        ...

    async def ping(self) -> None:
        """Raise when the store cannot be used (readiness)."""
        ...
