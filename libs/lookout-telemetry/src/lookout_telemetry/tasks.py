"""Supervised background tasks: none dies silently, none is lost to the garbage collector.

``TaskSupervisor.spawn(coro, name=...)`` starts a task and keeps a reference to it (asyncio
holds only weak ones). When a task ends with an error, the error is logged as JSON with its
stack and reported to the error tracker, with the request id and trace id of whoever spawned
it (a task copies the context it was created in). A task spawned with ``critical=True`` is
one the process cannot serve without: its failure starts a graceful shutdown (SIGTERM to
this process, so the server drains as it would for an orchestrator). ``close()`` cancels
what is still running, at shutdown.

A task started some other way gets the same treatment from
``task.add_done_callback(report_task_failure)``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from lookout_telemetry.errortracking import log_and_report

__all__ = ["TaskSupervisor", "report_task_failure"]

log = logging.getLogger("lookout_telemetry.tasks")


def _terminate() -> None:
    """Ask this process to shut down gracefully, as an orchestrator would."""
    os.kill(os.getpid(), signal.SIGTERM)


def report_task_failure(task: asyncio.Task[Any], *, critical: bool = False) -> bool:
    """Log and report ``task`` if it ended with an error (a done-callback); return if it did."""
    if task.cancelled():
        return False
    error = task.exception()
    if error is None:
        return False
    log_and_report(
        "background task failed",
        error,
        tags={"task": task.get_name()},
        path="background_task",
        task=task.get_name(),
        critical=critical,
    )
    return True


class TaskSupervisor:
    """Start background tasks, keep them referenced, report the ones that fail."""

    def __init__(self, *, on_critical_failure: Callable[[], None] = _terminate) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.failures = 0
        self.on_critical_failure = on_critical_failure

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str, critical: bool = False
    ) -> asyncio.Task[Any]:
        """Start ``coro`` as a task named ``name``; watch how it ends."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(lambda done: self._finished(done, critical=critical))
        return task

    def _finished(self, task: asyncio.Task[Any], *, critical: bool) -> None:
        """Forget a finished task; log and report it when it failed."""
        self.tasks.discard(task)
        if not report_task_failure(task, critical=critical):
            return
        self.failures += 1
        if critical:
            log.critical(
                "a critical background task failed: shutting down", extra={"task": task.get_name()}
            )
            self.on_critical_failure()

    async def close(self, timeout_seconds: float = 5.0) -> None:
        """Cancel the tasks still running and wait for them (bounded)."""
        pending = list(self.tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=timeout_seconds)
