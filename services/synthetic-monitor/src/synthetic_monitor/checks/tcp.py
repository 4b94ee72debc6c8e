"""TCP steps: open a connection, note how long it took, close it."""

from __future__ import annotations

import asyncio
import contextlib
import time

from synthetic_monitor.checks.base import StepContext, StepOutcome
from synthetic_monitor.conditions import Observation
from synthetic_monitor.config.model import TcpStep
from synthetic_monitor.templates import render_text

__all__ = ["TcpExecutor"]


class TcpExecutor:
    """Connect to host:port within the step's timeout."""

    async def execute(self, step: TcpStep, context: StepContext) -> StepOutcome:
        """Connect; a refused or timed-out connection is an observation, not an exception."""
        host = render_text(step.host, context.values)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(context.timeout):
                _, writer = await asyncio.open_connection(host, step.port)
        except TimeoutError:
            elapsed = (time.perf_counter() - started) * 1000
            return StepOutcome(
                Observation(kind="tcp", response_time_ms=elapsed),
                error=f"connect to {host}:{step.port} timed out after {context.timeout:g}s",
            )
        except OSError as error:
            elapsed = (time.perf_counter() - started) * 1000
            return StepOutcome(
                Observation(kind="tcp", response_time_ms=elapsed),
                error=f"connect to {host}:{step.port} failed: {error.strerror or error}",
            )
        elapsed = (time.perf_counter() - started) * 1000
        writer.close()
        with contextlib.suppress(OSError):  # the peer closing first is not the probe's failure
            await writer.wait_closed()
        return StepOutcome(Observation(kind="tcp", response_time_ms=elapsed, connected=True))
