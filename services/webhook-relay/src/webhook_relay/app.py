"""The web app: wiring only (``create_app``); the work lives in the modules it wires.

Routes: ``POST /webhook`` (Alertmanager), ``GET /metrics``, ``GET /health/live``,
``GET /health/ready``, ``GET /api/v1/dead-letters``, ``POST /api/v1/dead-letters/replay``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel, Field

from lookout_telemetry.errortracking import install_loop_handler, log_and_report
from lookout_telemetry.tasks import report_task_failure
from webhook_relay import __version__
from webhook_relay.accept import Committer
from webhook_relay.auth import Authenticator
from webhook_relay.delivery import DeliveryThread
from webhook_relay.errors import StoreUnavailableError
from webhook_relay.ingest import WebhookEndpoint, internal_error
from webhook_relay.metrics import RelayMetrics
from webhook_relay.routing import Routing, load_routing
from webhook_relay.settings import Settings, get_settings
from webhook_relay.store import Store
from webhook_relay.telemetry import tracer

__all__ = ["Relay", "create_app"]

log = logging.getLogger("webhook_relay.app")


@dataclass
class Relay:
    """The components one process runs, kept on ``app.state.relay``."""

    settings: Settings
    routing: Routing
    store: Store
    metrics: RelayMetrics
    registry: CollectorRegistry
    auth: Authenticator
    committer: Committer
    delivery: DeliveryThread | None = None
    draining: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class ReplayRequest(BaseModel):
    """Which dead letters to send again (none given: all of them)."""

    ids: list[int] | None = None
    target: str | None = Field(default=None, max_length=64)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _maintenance(relay: Relay) -> None:
    """Refresh the queue gauges; prune past the retention now and then."""
    last_prune = 0.0
    while True:
        try:
            await asyncio.to_thread(relay.store.checkpoint)
            stats = await asyncio.to_thread(relay.store.queue_stats)
            now = time.time()
            seen: set[tuple[str, str]] = set()
            oldest: dict[str, float] = {}
            for stat in stats:
                relay.metrics.queue_depth.labels(stat.target, stat.state).set(stat.count)
                seen.add((stat.target, stat.state))
                if stat.state != "dead" and stat.oldest is not None:
                    oldest[stat.target] = max(oldest.get(stat.target, 0.0), now - stat.oldest)
            for target in relay.routing.targets:
                for state in ("pending", "inflight", "dead"):
                    if (target, state) not in seen:
                        relay.metrics.queue_depth.labels(target, state).set(0)
                relay.metrics.queue_oldest_age.labels(target).set(oldest.get(target, 0.0))
            if now - last_prune > 3600:
                last_prune = now
                removed = await asyncio.to_thread(
                    relay.store.prune, relay.settings.retention_days * 86400
                )
                if any(removed.values()):
                    log.info("retention: pruned old records", extra=removed)
        except StoreUnavailableError as error:
            log.warning("maintenance skipped: store unavailable", extra={"error": str(error)})
        except Exception as error:  # logged and reported; the next round tries again
            log_and_report(
                "maintenance failed",
                error,
                logger=log,
                tags={"task": "maintenance"},
                path="background_task",
                task="maintenance",
            )
        await asyncio.sleep(relay.settings.maintenance_interval_seconds)


def create_app(  # noqa: PLR0915 (wiring: one closure per route, read top to bottom)
    settings: Settings | None = None,
    routing: Routing | None = None,
    registry: CollectorRegistry | None = None,
) -> RelayApp:
    """Build the app; settings, routing and metrics registry are injectable for tests."""
    settings = settings or get_settings()
    routing = routing or load_routing(settings.routing_file)
    registry = registry if registry is not None else CollectorRegistry()
    store = Store(settings.database_url, dedup_window_seconds=settings.dedup_window_seconds)
    metrics = RelayMetrics.create(registry)
    for name in routing.targets:  # every per-target series exists from the start (value 0)
        metrics.delivered.labels(name)
        metrics.retries.labels(name)
        metrics.dead_lettered.labels(name)
        metrics.circuit_open.labels(name).set(0)
        metrics.queue_oldest_age.labels(name).set(0)
        for state in ("pending", "inflight", "dead"):
            metrics.queue_depth.labels(name, state).set(0)
    relay = Relay(
        settings=settings,
        routing=routing,
        store=store,
        metrics=metrics,
        registry=registry,
        auth=Authenticator.from_settings(settings),
        committer=Committer(store),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Errors no task awaited are logged and reported (lookout_telemetry.errortracking).
        install_loop_handler()
        await asyncio.to_thread(store.create_schema)
        relay.committer.start()
        if settings.workers > 0:
            relay.delivery = DeliveryThread(store, routing, settings, metrics)
            await asyncio.to_thread(relay.delivery.start)
        maintenance = asyncio.create_task(_maintenance(relay), name="maintenance")
        maintenance.add_done_callback(report_task_failure)
        relay.tasks.append(maintenance)
        log.info(
            "relay started",
            extra={
                "targets": sorted(routing.targets),
                "rules": len(routing.rules),
                "workers": settings.workers,
            },
        )
        try:
            yield
        finally:
            relay.draining = True
            if relay.delivery is not None:
                await asyncio.to_thread(relay.delivery.stop, settings.graceful_timeout_seconds)
            for task in relay.tasks:
                task.cancel()
            await asyncio.gather(*relay.tasks, return_exceptions=True)
            await asyncio.to_thread(relay.committer.stop)
            store.dispose()
            log.info("relay stopped")

    # FastAPI's native telemetry would add several spans per request (route, endpoint,
    # dependencies) and halve the accept rate; the relay makes its own span per
    # notification (relay.accept) and per delivery (relay.deliver) instead.
    app = FastAPI(
        title="Lookout webhook relay",
        version=__version__,
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.relay = relay

    def authenticate(request: Request, body: bytes) -> JSONResponse | None:
        reason = relay.auth.check_headers(request.headers.get("authorization"))
        if reason is None:
            reason = relay.auth.check_signature(
                request.headers.get("x-relay-timestamp"),
                request.headers.get("x-relay-signature"),
                body,
            )
        if reason is None:
            return None
        relay.metrics.received.labels("unauthorized").inc()
        log.warning(
            "webhook refused: unauthorized",
            extra={"reason": reason, "client": request.client.host if request.client else None},
        )
        return _error(
            401, reason, {"WWW-Authenticate": "Bearer" if relay.auth.mode == "bearer" else "Basic"}
        )

    @app.get("/metrics")
    async def metrics_endpoint(request: Request) -> Response:
        """Prometheus metrics (OpenMetrics with exemplars when asked for)."""
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        """The process serves HTTP."""
        return {"status": "ok"}

    @app.get("/health/ready")
    async def ready() -> Response:
        """Ready when the store answers and the relay is not shutting down."""
        if relay.draining:
            return _error(503, "shutting down")
        try:
            await asyncio.wait_for(asyncio.to_thread(store.ping), 2.0)
        except StoreUnavailableError as error:
            return _error(503, str(error))
        except TimeoutError:
            return _error(503, "the store is unavailable: no answer within 2 s")
        return JSONResponse({"status": "ok"})

    @app.get("/api/v1/dead-letters")
    async def list_dead_letters(
        request: Request, target: str | None = None, limit: int = 100
    ) -> Response:
        """List dead letters (same authentication as the webhook)."""
        refused = authenticate(request, b"")
        if refused is not None:
            return refused
        rows = await asyncio.to_thread(store.dead_letters, target, max(1, min(limit, 1000)))
        return JSONResponse({"dead_letters": rows})

    @app.post("/api/v1/dead-letters/replay")
    async def replay(request: Request) -> Response:
        """Queue dead letters again: all, some ids, or one target's."""
        body = await request.body()
        refused = authenticate(request, body)
        if refused is not None:
            return refused
        try:
            wanted = ReplayRequest.model_validate_json(body or b"{}")
        except ValueError as error:
            return _error(400, f"invalid replay request: {error}")
        count = await asyncio.to_thread(store.replay, wanted.ids, wanted.target)
        if relay.delivery is not None:
            relay.delivery.wake()
        log.info("dead letters replayed", extra={"count": count, "target": wanted.target})
        return JSONResponse({"replayed": count})

    @app.exception_handler(StoreUnavailableError)
    async def store_unavailable(_request: Request, error: Exception) -> Response:
        return _error(503, str(error), {"Retry-After": "5"})

    # Any other error a route did not handle: 500, logged and reported. Starlette calls it
    # only when an error happens, so it costs the other requests nothing.
    @app.exception_handler(Exception)
    async def unhandled(request: Request, error: Exception) -> Response:
        body = internal_error(
            error,
            method=request.method,
            path=request.url.path,
            headers={key.lower(): value for key, value in request.headers.items()},
        )
        return JSONResponse(body, status_code=500)

    return RelayApp(app, WebhookEndpoint(relay, tracer))


class RelayApp:
    """The ASGI app uvicorn runs: ``POST /webhook`` straight to its handler, the rest to FastAPI."""

    def __init__(self, app: FastAPI, webhook: WebhookEndpoint) -> None:
        self.app = app
        self.webhook = webhook
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Dispatch one ASGI connection."""
        if scope["type"] == "http" and scope["path"] == "/webhook" and scope["method"] == "POST":
            await self.webhook(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def app_summary(app: RelayApp) -> dict[str, Any]:
    """Return a short description of a built app (used by ``check-config``)."""
    relay: Relay = app.state.relay
    return {
        "targets": sorted(relay.routing.targets),
        "rules": [rule.name for rule in relay.routing.rules],
    }
