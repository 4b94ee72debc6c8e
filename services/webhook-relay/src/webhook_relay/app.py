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

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel, Field

from webhook_relay import __version__
from webhook_relay.accept import Committer
from webhook_relay.auth import Authenticator
from webhook_relay.delivery import Dispatcher
from webhook_relay.errors import PayloadError, StoreUnavailableError
from webhook_relay.metrics import RelayMetrics, exemplar
from webhook_relay.payload import idempotency_key, parse_notification, serialize
from webhook_relay.routing import Routing, load_routing
from webhook_relay.settings import Settings, get_settings
from webhook_relay.store import AcceptItem, Store
from webhook_relay.telemetry import PROPAGATOR, current_traceparent, tracer

__all__ = ["Relay", "create_app"]

log = logging.getLogger("webhook_relay.app")


class _BodyTooLargeError(Exception):
    pass


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
    dispatcher: Dispatcher | None = None
    draining: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class ReplayRequest(BaseModel):
    """Which dead letters to send again (none given: all of them)."""

    ids: list[int] | None = None
    target: str | None = Field(default=None, max_length=64)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLargeError
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise _BodyTooLargeError
    return bytes(chunks)


async def _maintenance(relay: Relay) -> None:
    """Refresh the queue gauges; prune past the retention now and then."""
    last_prune = 0.0
    while True:
        try:
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
        except Exception:
            log.exception("maintenance failed")
        await asyncio.sleep(relay.settings.maintenance_interval_seconds)


def create_app(  # noqa: PLR0915 (wiring: one closure per route, read top to bottom)
    settings: Settings | None = None,
    routing: Routing | None = None,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
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
        await asyncio.to_thread(store.create_schema)
        relay.committer.start()
        limits = httpx.Limits(max_connections=max(10, settings.workers * 2))
        async with httpx.AsyncClient(
            limits=limits, headers={"User-Agent": f"lookout-webhook-relay/{__version__}"}
        ) as http:
            if settings.workers > 0:
                relay.dispatcher = Dispatcher(store, routing, settings, metrics, http)
                relay.tasks.append(asyncio.create_task(relay.dispatcher.run()))
            relay.tasks.append(asyncio.create_task(_maintenance(relay)))
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
                if relay.dispatcher is not None:
                    await relay.dispatcher.stop(settings.graceful_timeout_seconds)
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

    def authenticate(request: Request, body: bytes | None) -> JSONResponse | None:
        reason = relay.auth.check_headers(request.headers.get("authorization"))
        if reason is None and body is not None:
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

    async def webhook(request: Request) -> Response:  # noqa: PLR0911 (one return per status)
        """Accept an Alertmanager notification: 202 once it is durably stored."""
        started = time.perf_counter()
        refused = authenticate(request, None)  # headers first: no body read for strangers
        if refused is not None:
            return refused
        try:
            body = await _read_body(request, settings.max_body_bytes)
        except _BodyTooLargeError:
            relay.metrics.received.labels("too_large").inc()
            return _error(
                413, f"the body exceeds {settings.max_body_bytes} bytes (RELAY_MAX_BODY_BYTES)"
            )
        refused = authenticate(request, body)
        if refused is not None:
            return refused
        try:
            notification = parse_notification(body)
            payload = serialize(notification)
        except PayloadError as error:
            relay.metrics.received.labels("invalid").inc()
            log.warning("webhook refused: invalid payload", extra={"error": str(error)[:500]})
            return _error(400, str(error))
        parent = PROPAGATOR.extract({"traceparent": request.headers.get("traceparent", "")})
        token = otel_context.attach(parent)
        try:
            with tracer.start_as_current_span(
                "relay.accept",
                kind=SpanKind.SERVER,
                attributes={
                    "relay.receiver": notification.receiver,
                    "relay.status": notification.status,
                    "relay.alerts": len(notification.alerts),
                },
            ) as span:
                key = idempotency_key(notification)
                routes = routing.routes(notification)
                span.set_attribute("relay.targets", [route.target for route in routes])
                item = AcceptItem(
                    receiver=notification.receiver,
                    group_key=notification.groupKey,
                    status=notification.status,
                    idempotency_key=key,
                    payload=payload,
                    traceparent=current_traceparent(),
                    routes=[(route.target, route.rule) for route in routes],
                    alert_count=len(notification.alerts),
                )
                try:
                    result = await relay.committer.submit(item)
                except StoreUnavailableError as error:
                    relay.metrics.received.labels("unavailable").inc()
                    log.error("webhook not stored: store unavailable", extra={"error": str(error)})
                    return _error(
                        503,
                        "the relay could not store the notification; retry",
                        {"Retry-After": "5"},
                    )
                relay.metrics.accept_duration.observe(time.perf_counter() - started, exemplar())
                if result.duplicate:
                    relay.metrics.received.labels("duplicate").inc()
                    relay.metrics.deduplicated.inc()
                    span.set_attribute("relay.duplicate", True)
                    return JSONResponse(
                        {"status": "duplicate", "idempotency_key": key}, status_code=202
                    )
                relay.metrics.received.labels("accepted").inc()
                if relay.dispatcher is not None:
                    relay.dispatcher.wakeup.set()
                if not routes:
                    log.warning(
                        "notification matched no rule and no fallback",
                        extra={"receiver": notification.receiver},
                    )
                return JSONResponse(
                    {
                        "status": "accepted",
                        "notification_id": result.notification_id,
                        "deliveries": [route.target for route in routes],
                    },
                    status_code=202,
                )
        finally:
            otel_context.detach(token)

    # A plain Starlette route: the hot path skips FastAPI's dependency solving.
    app.add_route("/webhook", webhook, methods=["POST"], include_in_schema=False)

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
        except (StoreUnavailableError, TimeoutError) as error:
            return _error(503, f"store unavailable: {error}")
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
        if relay.dispatcher is not None:
            relay.dispatcher.wakeup.set()
        log.info("dead letters replayed", extra={"count": count, "target": wanted.target})
        return JSONResponse({"replayed": count})

    @app.exception_handler(StoreUnavailableError)
    async def store_unavailable(_request: Request, error: Exception) -> Response:
        return _error(503, str(error), {"Retry-After": "5"})

    return app


def app_summary(app: FastAPI) -> dict[str, Any]:
    """Return a short description of a built app (used by ``check-config``)."""
    relay: Relay = app.state.relay
    return {
        "targets": sorted(relay.routing.targets),
        "rules": [rule.name for rule in relay.routing.rules],
    }
