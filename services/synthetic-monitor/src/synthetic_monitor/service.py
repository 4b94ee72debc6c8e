"""The long-running monitor: configuration, scheduler, history, reload, shutdown.

``Monitor.reload()`` loads the configuration again (on SIGHUP, or when a journeys file
changes with ``MONITOR_RELOAD_POLL_SECONDS``); a configuration with errors is rejected, the
old one is kept, and every error is logged with its file and line. History lives in the
store, so a reload never drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from pathlib import Path

from lookout_telemetry.errortracking import log_and_report
from lookout_telemetry.tasks import report_task_failure
from synthetic_monitor.config import load_config
from synthetic_monitor.config.loader import collect_files
from synthetic_monitor.config.model import Journey, MonitorConfig
from synthetic_monitor.errors import ConfigErrors
from synthetic_monitor.metrics import MonitorMetrics
from synthetic_monitor.results import RunResult
from synthetic_monitor.runner import JourneyRunner
from synthetic_monitor.scheduler import Scheduler
from synthetic_monitor.storage import HistoryStore

__all__ = ["Monitor", "tune_gc"]

log = logging.getLogger("synthetic_monitor.service")

DAY = 86400.0

#: Young-generation threshold: a run's objects (spans, results, HTTP state) live for
#: milliseconds; collecting less often lets them die young instead of being promoted.
GC_GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """Keep garbage collection pauses out of the schedule.

    Full (oldest generation) collections scan every object the process holds and took over
    100 ms with 1,000 journeys here, making runs start late. Freezing what exists after
    start-up (modules, configuration) removes it from every later scan, and a larger young
    generation threshold keeps short-lived per-run objects from reaching the old generation.
    Called after start-up and after each reload.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 100)


class Monitor:
    """Owns the scheduler and the store; the web app reads from it."""

    def __init__(
        self,
        config_path: Path,
        runner: JourneyRunner,
        store: HistoryStore,
        metrics: MonitorMetrics,
        *,
        retention_days: int = 35,
        reload_poll_seconds: float = 0.0,
        trace_url_template: str = "",
    ) -> None:
        """Wire the parts; nothing runs before ``start()``."""
        self.config_path = config_path
        self.runner = runner
        self.store = store
        self.metrics = metrics
        self.retention_days = retention_days
        self.reload_poll_seconds = reload_poll_seconds
        self.trace_url_template = trace_url_template
        self.scheduler = Scheduler(runner, metrics, on_result=self._store_result)
        self.config: MonitorConfig | None = None
        self.last_reload_error: str | None = None
        self.store_ok = False
        self._tasks: list[asyncio.Task[None]] = []
        self._mtimes: dict[str, float] = {}

    @property
    def ready(self) -> bool:
        """Return whether a configuration is loaded, the store works and runs are scheduled."""
        return self.config is not None and self.store_ok and self.scheduler.started

    def load_initial(self) -> MonitorConfig:
        """Load the configuration at start-up; raise ConfigErrors when it is invalid."""
        config = load_config(self.config_path)
        self._apply(config)
        self.metrics.reloads.labels("success").inc()
        self.metrics.reload_ok.set(1)
        return config

    def _apply(self, config: MonitorConfig) -> None:
        removed = self.scheduler.update(config.journeys)
        self.metrics.configure(config.journeys.values(), removed)
        self.config = config
        self._mtimes = self._snapshot()

    def reload(self) -> bool:
        """Load the configuration again; keep the old one (and log why) when it is invalid."""
        try:
            config = load_config(self.config_path)
        except ConfigErrors as errors:
            self.last_reload_error = str(errors)
            self.metrics.reloads.labels("failure").inc()
            self.metrics.reload_ok.set(0)
            log.error(
                "configuration rejected; the previous one stays in force",
                extra={"errors": [str(e) for e in errors.errors], "path": str(self.config_path)},
            )
            self._mtimes = self._snapshot()
            return False
        self._apply(config)
        tune_gc()
        self.last_reload_error = None
        self.metrics.reloads.labels("success").inc()
        self.metrics.reload_ok.set(1)
        log.info("configuration reloaded", extra={"journeys": len(config.journeys)})
        return True

    def _snapshot(self) -> dict[str, float]:
        try:
            return {str(p): p.stat().st_mtime for p in collect_files([self.config_path])}
        except (ConfigErrors, OSError):
            return {}

    async def _store_result(self, _: Journey, result: RunResult) -> None:
        try:
            await self.store.record(result)
            self.store_ok = True
        except Exception:
            self.store_ok = False
            log.exception("could not store a run", extra={"journey": result.journey})

    async def start(self) -> None:
        """Open the store, start the scheduler and the housekeeping tasks."""
        await self.store.start()
        self.store_ok = True
        self.scheduler.start()
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        if self.reload_poll_seconds > 0:
            self._tasks.append(asyncio.create_task(self._watch(), name="config watch"))
        for task in self._tasks:  # a task that dies is logged and reported, never silent
            task.add_done_callback(report_task_failure)

    async def _housekeeping(self) -> None:
        while True:
            try:
                before = time.time() - self.retention_days * DAY
                pruned = await self.store.prune(before)
                if pruned:
                    log.info("old runs deleted", extra={"runs": pruned})
                await self.store.ping()
                self.store_ok = True
            except Exception as error:  # logged and reported; the next round tries again
                self.store_ok = False
                log_and_report(
                    "history store check failed",
                    error,
                    logger=log,
                    tags={"task": "housekeeping"},
                    path="background_task",
                    task="housekeeping",
                )
            await asyncio.sleep(300)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.reload_poll_seconds)
            if self._snapshot() != self._mtimes:
                log.info("a journeys file changed; reloading")
                self.reload()

    async def stop(self, grace: float) -> None:
        """Stop scheduling, let runs finish within ``grace``, close the store."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.scheduler.stop(grace)
        await self.store.close()

    async def journey_summary(
        self, journey: Journey, now: float | None = None
    ) -> dict[str, object]:
        """Return what the status page and the API show for one journey."""
        now = time.time() if now is None else now
        latest = self.scheduler.latest.get(journey.name)
        runs = await self.store.recent_runs(journey.name, 1) if latest is None else []
        state: str
        if latest is not None:
            state, last_run, reason = latest.outcome, latest.started_at, latest.failure_reason()
            trace_id: str | None = latest.trace_id
        elif runs:
            state, last_run, reason = runs[0].outcome, runs[0].started_at, runs[0].reason or ""
            trace_id = runs[0].trace_id
        else:
            state, last_run, reason, trace_id = "unknown", None, "", None
        bars = await self.store.bars(journey.name, now, 24)
        return {
            "name": journey.name,
            "kind": journey.kind,
            "description": journey.description,
            "labels": dict(journey.labels),
            "interval_seconds": journey.interval,
            "state": state,
            "last_run": last_run,
            "reason": reason or None,
            "trace_id": trace_id,
            "trace_url": self.trace_url(trace_id),
            "uptime": {
                "24h": await self.store.uptime(journey.name, now - DAY),
                "7d": await self.store.uptime(journey.name, now - 7 * DAY),
                "30d": await self.store.uptime(journey.name, now - 30 * DAY),
            },
            "bars": [{"start": b.start, "total": b.total, "good": b.good} for b in bars],
        }

    def trace_url(self, trace_id: str | None) -> str | None:
        """Return the link to a trace, or None."""
        if not trace_id or not self.trace_url_template:
            return None
        return self.trace_url_template.replace("{trace_id}", trace_id)
