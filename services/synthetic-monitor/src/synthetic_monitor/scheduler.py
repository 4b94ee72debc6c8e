"""Scheduling: one asyncio task per journey, so a hanging target only ever holds up itself.

Each journey runs at slots ``interval`` apart, each run starting at a random offset in
``[0, jitter]`` after its slot (journeys with the same interval spread out instead of
firing together; the first run is offset the same way). A journey's task awaits its own
run before planning the next, so the same journey never runs twice at once; slots that
pass while a run overruns are skipped and counted (``synthetic_runs_skipped_total``). Every
run is bounded by a hard limit derived from its timeout, retries and cleanup.

``update()`` applies a new configuration without a restart: unchanged journeys keep their
rhythm, changed ones pick up the new definition at their next slot, removed ones stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping

from lookout_telemetry.errortracking import log_and_report
from lookout_telemetry.tasks import report_task_failure
from synthetic_monitor.config.model import Journey
from synthetic_monitor.metrics import MonitorMetrics
from synthetic_monitor.results import RunResult
from synthetic_monitor.runner import JourneyRunner

__all__ = ["Scheduler", "hard_limit"]

log = logging.getLogger("synthetic_monitor.scheduler")

ResultHandler = Callable[[Journey, RunResult], Awaitable[None]]

#: How long the result handler (the history store) may take per run.
RESULT_HANDLER_TIMEOUT_SECONDS = 10.0


def hard_limit(journey: Journey) -> float:
    """Return the longest a run of ``journey`` may take before it is cancelled."""
    attempts = journey.retries + 1
    cleanup = journey.timeout if journey.cleanup else 0.0
    return attempts * (journey.timeout + cleanup) + journey.retries * journey.retry_delay + 5.0


class _Worker:
    """The task that runs one journey on its schedule."""

    def __init__(self, scheduler: Scheduler, journey: Journey) -> None:
        self.scheduler = scheduler
        self.journey = journey
        self.wake = asyncio.Event()
        self.running = False
        self.stopping = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name=f"journey {self.journey.name}")
        self.task.add_done_callback(report_task_failure)

    def replace(self, journey: Journey) -> None:
        self.journey = journey
        self.wake.set()

    async def _sleep_until(self, target: float) -> bool:
        """Sleep until ``target`` (monotonic); return False when woken early."""
        delay = target - time.monotonic()
        if delay <= 0:
            return True
        self.wake.clear()
        try:
            await asyncio.wait_for(self.wake.wait(), timeout=delay)
        except TimeoutError:
            return True
        return False

    async def _loop(self) -> None:
        scheduler = self.scheduler
        rng = scheduler.rng
        base = time.monotonic()
        target = base + rng.uniform(0.0, self.journey.effective_jitter)
        while not self.stopping:
            if not await self._sleep_until(target):
                if self.stopping:
                    return  # type: ignore[unreachable]  # set by stop() while asleep
                # Replaced: start the new definition's rhythm from now.
                base = time.monotonic()
                target = base + rng.uniform(0.0, self.journey.effective_jitter)
                continue
            journey = self.journey
            if scheduler.metrics is not None:
                scheduler.metrics.lateness.observe(max(0.0, time.monotonic() - target))
            await self._run_once(journey)
            base += journey.interval
            now = time.monotonic()
            skipped = 0
            while base + journey.interval <= now:
                base += journey.interval
                skipped += 1
            if skipped and scheduler.metrics is not None:
                scheduler.metrics.skipped.labels(journey.name).inc(skipped)
            if skipped:
                log.warning(
                    "run overran its interval; slots skipped",
                    extra={"journey": journey.name, "skipped": skipped},
                )
            target = base + rng.uniform(0.0, journey.effective_jitter)

    async def _run_once(self, journey: Journey) -> None:
        scheduler = self.scheduler
        self.running = True
        if scheduler.metrics is not None:
            scheduler.metrics.in_progress.inc()
        try:
            async with asyncio.timeout(hard_limit(journey)):
                result = await scheduler.runner.run(journey)
        except TimeoutError:
            log.error(
                "run exceeded its hard limit and was cancelled",
                extra={"journey": journey.name, "limit_seconds": hard_limit(journey)},
            )
            return
        except Exception as error:  # a bug: logged with its stack and reported, with its trace
            log_and_report(
                "run crashed",
                error,
                logger=log,
                tags={"journey": journey.name},
                journey=journey.name,
            )
            return
        finally:
            self.running = False
            if scheduler.metrics is not None:
                scheduler.metrics.in_progress.dec()
        scheduler.latest[journey.name] = result
        if scheduler.on_result is None:
            return
        try:
            # A history store that hangs must not hold up this journey's schedule for long.
            async with asyncio.timeout(RESULT_HANDLER_TIMEOUT_SECONDS):
                await scheduler.on_result(journey, result)
        except TimeoutError:
            log.error(
                "storing a run timed out; the run is counted in metrics but not in history",
                extra={"journey": journey.name},
            )
        except Exception as error:
            log_and_report(
                "handling a run's result failed",
                error,
                logger=log,
                tags={"journey": journey.name},
                journey=journey.name,
            )

    async def stop(self, grace: float) -> None:
        self.stopping = True
        self.wake.set()
        if self.task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=grace)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


class Scheduler:
    """Runs every configured journey on its own schedule."""

    def __init__(
        self,
        runner: JourneyRunner,
        metrics: MonitorMetrics | None = None,
        on_result: ResultHandler | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Run through ``runner``; report each result to ``on_result``."""
        self.runner = runner
        self.metrics = metrics
        self.on_result = on_result
        self.rng = rng or random.Random()
        self.workers: dict[str, _Worker] = {}
        self.latest: dict[str, RunResult] = {}
        self.started = False

    @property
    def journeys(self) -> dict[str, Journey]:
        """Return the journeys being scheduled, by name."""
        return {name: worker.journey for name, worker in self.workers.items()}

    def update(self, journeys: Mapping[str, Journey]) -> list[Journey]:
        """Schedule exactly ``journeys``; return the journeys that were removed."""
        removed = []
        for name in list(self.workers):
            if name not in journeys:
                worker = self.workers.pop(name)
                removed.append(worker.journey)
                self.latest.pop(name, None)
                worker.stopping = True
                worker.wake.set()
                if worker.task is not None and not worker.running:
                    worker.task.cancel()
        for name, journey in journeys.items():
            existing = self.workers.get(name)
            if existing is None:
                created = _Worker(self, journey)
                self.workers[name] = created
                if self.started:
                    created.start()
            elif existing.journey != journey:
                existing.replace(journey)
        return removed

    def start(self) -> None:
        """Start a task per journey (call inside the running event loop)."""
        self.started = True
        for worker in self.workers.values():
            if worker.task is None:
                worker.start()

    async def stop(self, grace: float = 10.0) -> None:
        """Let runs in progress finish within ``grace`` seconds, then cancel the rest."""
        self.started = False
        await asyncio.gather(*(worker.stop(grace) for worker in self.workers.values()))
