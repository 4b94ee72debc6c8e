"""Liveness, readiness and start-up probes, with per-check status and latency.

- ``/health/live``: the event loop answers and resident memory is under the configured
  bound (a leak shows as a restart, not as a slow death).
- ``/health/ready``: every dependency check passes (DB, cache, and for the shop, payments),
  and the process is not draining. Checks run concurrently, each under its own timeout, and
  the result is reused for a TTL so frequent probes do not hammer the dependencies.
- ``/health/startup``: 200 once start-up (schema, seed, clients) has finished.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psutil
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lookout_demo.web.lifecycle import Lifecycle

__all__ = ["Check", "HealthChecker", "health_router"]

Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class _Result:
    at: float
    ok: bool
    body: dict[str, Any]


class HealthChecker:
    """Run the readiness checks concurrently, each with a timeout; cache the outcome."""

    def __init__(
        self,
        checks: Mapping[str, Check],
        *,
        timeout_seconds: float,
        ttl_seconds: float,
    ) -> None:
        self.checks = dict(checks)
        self.timeout_seconds = timeout_seconds
        self.ttl_seconds = ttl_seconds
        self._cached: _Result | None = None
        self._lock = asyncio.Lock()

    async def _run_one(self, name: str, check: Check) -> tuple[str, dict[str, Any]]:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(check(), timeout=self.timeout_seconds)
        except TimeoutError:
            outcome: dict[str, Any] = {
                "status": "fail",
                "error": f"no answer within {self.timeout_seconds:g}s",
            }
        except Exception as exc:  # a failing dependency is data here, not a crash
            outcome = {"status": "fail", "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            outcome = {"status": "ok"}
        outcome["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return name, outcome

    async def run(self) -> tuple[bool, dict[str, Any]]:
        """Return (all passed, per-check detail), from the cache when it is fresh."""
        async with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached.at < self.ttl_seconds:
                return self._cached.ok, {**self._cached.body, "cached": True}
            results = await asyncio.gather(
                *(self._run_one(name, check) for name, check in self.checks.items())
            )
            checks = dict(results)
            ok = all(c["status"] == "ok" for c in checks.values())
            body = {"checks": checks, "checked_at": time.time()}
            self._cached = _Result(at=time.monotonic(), ok=ok, body=body)
            return ok, {**body, "cached": False}


def health_router(
    *,
    lifecycle: Callable[[Request], Lifecycle],
    checker: Callable[[Request], HealthChecker],
    max_rss_bytes: Callable[[Request], int],
) -> APIRouter:
    """Build the /health routes; the callables find the app's objects on the request."""
    router = APIRouter(prefix="/health", tags=["health"])
    process = psutil.Process()

    @router.get("/live")
    async def live(request: Request) -> JSONResponse:
        """Answer 200 while the loop runs and memory is under the bound."""
        rss = process.memory_info().rss
        limit = max_rss_bytes(request)
        ok = rss <= limit
        body = {
            "status": "ok" if ok else "fail",
            "checks": {
                "memory": {"status": "ok" if ok else "fail", "rss_bytes": rss, "limit_bytes": limit}
            },
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/ready")
    async def ready(request: Request) -> JSONResponse:
        """Answer 200 when every dependency answers and the process is not draining."""
        state = lifecycle(request)
        if state.draining:
            return JSONResponse({"status": "draining", "checks": {}}, status_code=503)
        if not state.startup_complete:
            return JSONResponse({"status": "starting", "checks": {}}, status_code=503)
        ok, detail = await checker(request).run()
        return JSONResponse(
            {"status": "ok" if ok else "fail", **detail}, status_code=200 if ok else 503
        )

    @router.get("/startup")
    async def startup(request: Request) -> JSONResponse:
        """Answer 200 once start-up has finished."""
        state = lifecycle(request)
        if not state.startup_complete:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok", "startup_seconds": state.startup_seconds})

    return router
