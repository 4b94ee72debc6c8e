"""Scheduling: intervals with jitter, no overlap, isolation from hanging targets, updates."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor_support import target, write
from synthetic_monitor import scheduler as scheduler_module
from synthetic_monitor.config import Journey, load_config
from synthetic_monitor.metrics import MonitorMetrics
from synthetic_monitor.results import RunResult
from synthetic_monitor.runner import JourneyRunner
from synthetic_monitor.scheduler import Scheduler


def journeys(tmp_path: Path, text: str) -> dict[str, Journey]:
    """Load ``text`` and return its journeys by name."""
    return load_config(write(tmp_path / "s.yml", text), {}).journeys


class Recorder:
    """Collects (journey, start, end) of every finished run."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, float, float]] = []

    async def __call__(self, journey: Journey, result: RunResult) -> None:
        self.runs.append(
            (journey.name, result.started_at, result.started_at + result.duration_seconds)
        )

    def of(self, name: str) -> list[tuple[str, float, float]]:
        return [run for run in self.runs if run[0] == name]


async def run_for(scheduler: Scheduler, seconds: float, grace: float = 2.0) -> None:
    """Run the scheduler for ``seconds`` then stop it."""
    scheduler.start()
    await asyncio.sleep(seconds)
    await scheduler.stop(grace)


def test_journeys_run_at_their_interval(tmp_path: Path, registry: CollectorRegistry) -> None:
    """A 0.2 s journey runs about five times a second, with lateness measured."""
    recorder = Recorder()
    metrics = MonitorMetrics(registry)
    with target() as server:
        config = journeys(
            tmp_path,
            f"checks: [{{name: fast, url: '{server.url}/ok', interval: 0.2, jitter: 0.02}}]",
        )
        scheduler = Scheduler(JourneyRunner(), metrics, on_result=recorder, rng=random.Random(1))
        scheduler.update(config)
        asyncio.run(run_for(scheduler, 1.1))
    assert 4 <= len(recorder.of("fast")) <= 7
    lateness_count = registry.get_sample_value("synthetic_scheduler_lateness_seconds_count")
    assert lateness_count == len(recorder.of("fast"))
    assert (registry.get_sample_value("synthetic_scheduler_lateness_seconds_sum") or 0) < 0.5


def test_a_journey_that_overruns_its_interval_never_overlaps_itself(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    """A 0.35 s run on a 0.1 s interval: runs are sequential and skipped slots counted."""
    recorder = Recorder()
    metrics = MonitorMetrics(registry)
    with target() as server:
        config = journeys(
            tmp_path,
            f"checks: [{{name: slow, url: '{server.url}/slow?ms=350', interval: 0.1, jitter: 0}}]",
        )
        scheduler = Scheduler(JourneyRunner(), metrics, on_result=recorder)
        scheduler.update(config)
        asyncio.run(run_for(scheduler, 1.3))
    runs = sorted(recorder.of("slow"), key=lambda run: run[1])
    assert len(runs) >= 2
    for earlier, later in itertools.pairwise(runs):
        assert later[1] >= earlier[2] - 0.01, "a run started before the previous one ended"
    assert (
        registry.get_sample_value("synthetic_runs_skipped_total", {"journey": "slow"}) or 0
    ) >= 2


def test_a_hanging_target_does_not_delay_other_journeys(tmp_path: Path) -> None:
    """While one journey hangs until its timeout, another keeps its 0.1 s rhythm."""
    recorder = Recorder()
    with target() as server:
        config = journeys(
            tmp_path,
            f"""
checks:
  - {{name: hangs, url: '{server.url}/hang', interval: 0.1, jitter: 0, timeout: 5s}}
  - {{name: quick, url: '{server.url}/ok', interval: 0.1, jitter: 0}}
""",
        )
        scheduler = Scheduler(JourneyRunner(), on_result=recorder)
        scheduler.update(config)
        started = time.monotonic()
        asyncio.run(run_for(scheduler, 1.0, grace=0.2))
        elapsed = time.monotonic() - started
    assert len(recorder.of("quick")) >= 5  # ten slots; a loaded CI machine may lose a few
    assert recorder.of("hangs") == []
    assert elapsed < 2.5, "stop() waited for the hanging run beyond its grace period"


def test_update_adds_replaces_and_removes_journeys(tmp_path: Path) -> None:
    """A new configuration starts new journeys, stops removed ones, keeps the rest."""
    recorder = Recorder()
    with target() as server:
        ok, data = f"{server.url}/ok", f"{server.url}/json"
        first = journeys(
            tmp_path,
            f"checks: [{{name: a, url: '{ok}', interval: 0.1}}, "
            f"{{name: b, url: '{ok}', interval: 0.1}}]",
        )
        second = journeys(
            tmp_path,
            f"checks: [{{name: b, url: '{data}', interval: 0.1}}, "
            f"{{name: c, url: '{ok}', interval: 0.1}}]",
        )
        scheduler = Scheduler(JourneyRunner(), on_result=recorder)

        async def scenario() -> list[str]:
            scheduler.update(first)
            scheduler.start()
            await asyncio.sleep(0.5)
            removed = scheduler.update(second)
            mark = len(recorder.runs)
            await asyncio.sleep(0.5)
            await scheduler.stop(1.0)
            assert {name for name, _, _ in recorder.runs[mark + 1 :]} <= {"b", "c"}
            return [j.name for j in removed]

        removed = asyncio.run(scenario())
        paths = {seen.path for seen in server.seen}
    assert removed == ["a"]
    assert {"/ok", "/json"} <= paths
    assert len(recorder.of("c")) >= 2
    assert sorted(scheduler.journeys) == ["b", "c"]


def test_a_hanging_history_store_does_not_stall_the_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A result handler that never returns is cut off; the journey keeps running."""
    monkeypatch.setattr(scheduler_module, "RESULT_HANDLER_TIMEOUT_SECONDS", 0.05)
    started: list[float] = []

    async def hangs(_: Journey, result: RunResult) -> None:
        started.append(result.started_at)
        await asyncio.sleep(30)

    with target() as server:
        config = journeys(tmp_path, f"checks: [{{name: a, url: '{server.url}/ok', interval: 0.1}}]")
        scheduler = Scheduler(JourneyRunner(), on_result=hangs)
        scheduler.update(config)
        asyncio.run(run_for(scheduler, 0.8, grace=0.2))
    assert len(started) >= 4
