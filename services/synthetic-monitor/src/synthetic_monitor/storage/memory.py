"""History in a list: for tests and one-off ``run``s."""

from __future__ import annotations

from synthetic_monitor.results import RunResult
from synthetic_monitor.storage.base import HOUR, Bar, RunRecord, record_of

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps every run in memory (lost on restart)."""

    def __init__(self) -> None:
        """Start empty."""
        self.runs: list[RunRecord] = []

    async def start(self) -> None:
        """Nothing to set up."""

    async def close(self) -> None:
        """Nothing to release."""

    async def ping(self) -> None:
        """Always usable."""

    async def record(self, result: RunResult) -> None:
        """Keep one run."""
        self.runs.append(record_of(result))

    async def add(self, record: RunRecord) -> None:
        """Keep a ready-made record (tests seed history this way)."""
        self.runs.append(record)

    async def uptime(self, journey: str, since: float) -> float | None:
        """Return the share of runs since ``since`` that passed."""
        runs = [r for r in self.runs if r.journey == journey and r.started_at >= since]
        return sum(r.success for r in runs) / len(runs) if runs else None

    async def bars(self, journey: str, now: float, hours: int = 24) -> list[Bar]:
        """Return one bar per hour for the last ``hours`` hours, oldest first."""
        first = (int(now) // HOUR - hours + 1) * HOUR
        totals = {first + i * HOUR: [0, 0] for i in range(hours)}
        for run in self.runs:
            slot = int(run.started_at) // HOUR * HOUR
            if run.journey == journey and slot in totals:
                totals[slot][0] += 1
                totals[slot][1] += run.success
        return [Bar(float(start), total, good) for start, (total, good) in totals.items()]

    async def recent_runs(self, journey: str, limit: int = 20) -> list[RunRecord]:
        """Return the newest runs of ``journey``."""
        runs = [r for r in self.runs if r.journey == journey]
        return sorted(runs, key=lambda r: r.started_at, reverse=True)[:limit]

    async def recent_failures(self, limit: int = 20) -> list[RunRecord]:
        """Return the newest failed runs."""
        runs = [r for r in self.runs if not r.success]
        return sorted(runs, key=lambda r: r.started_at, reverse=True)[:limit]

    async def prune(self, before: float) -> int:
        """Drop runs older than ``before``."""
        kept = [r for r in self.runs if r.started_at >= before]
        dropped = len(self.runs) - len(kept)
        self.runs = kept
        return dropped
