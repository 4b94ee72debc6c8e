"""Liveness, readiness and start-up probes, with per-check status and latency.

- ``/health/live``: the event loop answers and resident memory is under the configured
  bound (a leak shows as a restart, not as a slow death).
- ``/health/ready``: every dependency check passes (DB, cache, and for the shop, payments),
  and the process is not draining. Checks run concurrently, each under its own timeout, and
  the result is reused for a TTL so frequent probes do not hammer the dependencies.
- ``/health/startup``: 200 once start-up (schema, seed, clients) has finished.

The detail endpoints answer people and dashboards rather than orchestrators (never cached,
200 or 503 each):

- ``/health/db``: ``SELECT 1`` latency and the pool: size, checked out, overflow, idle, and
  the waits for a connection this process has seen (count, mean, max);
- ``/health/redis``: PING latency, the hit rate of this process's cache look-ups, and what
  Redis says of itself (memory used, its server-wide hit rate); the in-process cache when
  no Redis is configured;
- ``/health/external``: every other service this one calls (the shop: payments), each with
  status and latency;
- ``/health``: all of the above in one answer, 503 as soon as one fails, or while starting
  or draining.
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

from lookout_demo.storage.cache import Cache
from lookout_demo.storage.database import Database
from lookout_demo.web.lifecycle import Lifecycle

__all__ = ["Check", "HealthChecker", "HealthDetail", "health_router"]

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


async def _timed(check: Check, timeout_seconds: float) -> dict[str, Any]:
    """Run one check under a timeout; return its status, latency and error."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=timeout_seconds)
    except TimeoutError:
        outcome: dict[str, Any] = {
            "status": "fail",
            "error": f"no answer within {timeout_seconds:g}s",
        }
    except Exception as exc:  # a failing dependency is data here, not a crash
        outcome = {"status": "fail", "error": f"{type(exc).__name__}: {exc}"[:300]}
    else:
        outcome = {"status": "ok"}
    outcome["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return outcome


class HealthDetail:
    """The detail checks: database pool, cache, external services; run on every call."""

    def __init__(
        self,
        *,
        db: Database,
        cache: Cache,
        external: Mapping[str, Check],
        timeout_seconds: float,
    ) -> None:
        self.db = db
        self.cache = cache
        self.external = dict(external)
        self.timeout_seconds = timeout_seconds

    async def database(self) -> dict[str, Any]:
        """Return the database's ping outcome and its pool's state."""
        outcome = await _timed(self.db.ping, self.timeout_seconds)
        outcome["backend"] = "sqlite" if self.db.is_sqlite else "postgresql"
        outcome["pool"] = self.db.pool_status()
        return outcome

    async def redis(self) -> dict[str, Any]:
        """Return the cache's ping outcome, this process's hit rate and the backend's stats."""
        outcome = await _timed(self.cache.ping, self.timeout_seconds)
        lookups = self.cache.hits + self.cache.misses
        outcome["backend"] = self.cache.backend
        outcome["hit_rate"] = round(self.cache.hits / lookups, 4) if lookups else None
        outcome["lookups"] = lookups
        if outcome["status"] == "ok":
            try:
                outcome.update(
                    await asyncio.wait_for(self.cache.stats(), timeout=self.timeout_seconds)
                )
            except Exception as exc:  # stats are a bonus; the ping said it answers
                outcome["stats_error"] = f"{type(exc).__name__}: {exc}"[:300]
        return outcome

    async def externals(self) -> dict[str, Any]:
        """Return each external service's status and latency, checked concurrently."""
        names = list(self.external)
        results = await asyncio.gather(
            *(_timed(self.external[name], self.timeout_seconds) for name in names)
        )
        return dict(zip(names, results, strict=True))

    async def everything(self) -> tuple[bool, dict[str, Any]]:
        """Return (all ok, every detail), the three groups checked concurrently."""
        database, cache, external = await asyncio.gather(
            self.database(), self.redis(), self.externals()
        )
        ok = (
            database["status"] == "ok"
            and cache["status"] == "ok"
            and all(e["status"] == "ok" for e in external.values())
        )
        return ok, {"database": database, "cache": cache, "external": external}


def _answer(ok: bool, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"status": "ok" if ok else "fail", **body}, status_code=200 if ok else 503)


def health_router(
    *,
    lifecycle: Callable[[Request], Lifecycle],
    checker: Callable[[Request], HealthChecker],
    max_rss_bytes: Callable[[Request], int],
    detail: Callable[[Request], HealthDetail] | None = None,
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

    if detail is None:
        return router

    @router.get("")
    async def aggregate(request: Request) -> JSONResponse:
        """Answer 200 when the process is serving and every dependency answers, else 503."""
        state = lifecycle(request)
        ok, checks = await detail(request).everything()
        phase = (
            "draining" if state.draining else "serving" if state.startup_complete else "starting"
        )
        body = {"phase": phase, "checks": checks}
        return _answer(ok and phase == "serving", body)

    @router.get("/db")
    async def database(request: Request) -> JSONResponse:
        """Answer with the database's latency and connection-pool state."""
        outcome = await detail(request).database()
        return _answer(outcome.pop("status") == "ok", outcome)

    @router.get("/redis")
    async def redis(request: Request) -> JSONResponse:
        """Answer with the cache's latency, hit rate and memory use."""
        outcome = await detail(request).redis()
        return _answer(outcome.pop("status") == "ok", outcome)

    @router.get("/external")
    async def external(request: Request) -> JSONResponse:
        """Answer with each external service's status and latency."""
        checks = await detail(request).externals()
        return _answer(all(c["status"] == "ok" for c in checks.values()), {"checks": checks})

    return router
