"""Build a service's FastAPI app: the parts both services share, wired in one place."""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psutil
from fastapi import APIRouter, FastAPI, Request, Response
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.util.http import parse_excluded_urls
from prometheus_client import multiprocess

from lookout_demo import __version__
from lookout_demo.settings import CommonSettings
from lookout_demo.telemetry.metrics import multiprocess_enabled, render
from lookout_demo.web.clients import ClientClassifier
from lookout_demo.web.errors import ApiError, install_error_handlers
from lookout_demo.web.faults import FaultDependency, FaultSet, faults_router
from lookout_demo.web.foundation import Foundation
from lookout_demo.web.health import Check, HealthChecker, HealthDetail, health_router
from lookout_demo.web.lifecycle import Lifecycle
from lookout_demo.web.middleware import RequestMiddleware
from lookout_telemetry.errortracking import install_loop_handler
from lookout_telemetry.tasks import TaskSupervisor

__all__ = ["build_app"]

log = logging.getLogger("lookout_demo.lifecycle")

#: This process, for its start time (the start-up gauge measures from process start).
PROCESS = psutil.Process()

#: Probes and scrapes are not traced: they would drown the traces people look for.
UNTRACED_URLS = r"/health($|/|\?),/metrics"


def build_app(
    *,
    title: str,
    settings: CommonSettings,
    foundation: Foundation[Any],
    health: HealthChecker,
    routers: Sequence[APIRouter],
    startup: Callable[[], Awaitable[None]],
    shutdown: Callable[[], Awaitable[None]],
    external: Mapping[str, Check] | None = None,
    tasks: TaskSupervisor | None = None,
) -> FastAPI:
    """Return an app with middleware, errors, health, metrics, faults and the routers.

    The lifespan runs ``startup``, then on shutdown ``shutdown``, closes the cache and the
    database, and flushes telemetry last so the shutdown's own spans and logs are sent.
    """
    metrics, telemetry = foundation.metrics, foundation.telemetry
    lifecycle = Lifecycle()
    tasks = tasks or TaskSupervisor()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Errors no task awaited are logged and reported instead of printed to stderr.
        install_loop_handler()
        await startup()
        # Everything built so far (modules, routes, models, pools) lives as long as the
        # process: move it out of the collector's generations so that full collections,
        # which request-heavy telemetry triggers often, stop rescanning it.
        gc.freeze()
        lifecycle.mark_started()
        if metrics is not None:
            metrics.migrations.startup.set(time.time() - PROCESS.create_time())
        log.info(
            "started",
            extra={
                "startup_seconds": round(lifecycle.startup_seconds or 0.0, 3),
                "version": __version__,
            },
        )
        try:
            yield
        finally:
            await tasks.close()
            await shutdown()
            await foundation.cache.close()
            await foundation.db.close()
            log.info("stopped")
            if telemetry is not None:
                telemetry.shutdown()
            if multiprocess_enabled():
                multiprocess.mark_process_dead(os.getpid())

    # FastAPI's built-in OpenTelemetry support stays off: the OpenTelemetry FastAPI
    # instrumentation below makes the server spans, and the app its own metrics and access log.
    # Left on, FastAPI checks the global providers and walks the middleware stack on every
    # request (the relay turns it off for the same reason).
    app = FastAPI(
        title=title,
        version=__version__,
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.lifecycle = lifecycle
    app.state.tasks = tasks
    app.state.db = foundation.db
    app.state.health = health
    app.state.health_detail = HealthDetail(
        db=foundation.db,
        cache=foundation.cache,
        external=external or {},
        timeout_seconds=settings.health_check_timeout_seconds,
    )
    app.state.faults = FaultSet()
    app.state.fault_token = (
        settings.fault_token.get_secret_value() if settings.fault_token is not None else None
    )
    install_error_handlers(app)
    app.add_middleware(
        RequestMiddleware,
        metrics=metrics.http if metrics is not None else None,
        max_body_bytes=settings.max_body_bytes,
        classifier=ClientClassifier(
            region_header=settings.region_header,
            regions=frozenset(r.strip().lower() for r in settings.regions.split(",") if r.strip()),
        ),
    )
    app.include_router(
        health_router(
            lifecycle=lambda request: request.app.state.lifecycle,
            checker=lambda request: request.app.state.health,
            max_rss_bytes=lambda _: settings.health_max_rss_bytes,
            detail=lambda request: request.app.state.health_detail,
        )
    )
    app.include_router(faults_router())

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint(request: Request) -> Response:
        """Expose the metrics; OpenMetrics with exemplars when the scraper asks for it."""
        if metrics is None:
            raise ApiError(404, "not_found", "metrics are off (DEMO_TELEMETRY_ENABLED=false)")
        body, content_type = render(metrics.registry, request.headers.get("accept"))
        return Response(body, media_type=content_type)

    for router in routers:
        app.include_router(router, dependencies=[FaultDependency])
    if telemetry is not None:
        # The server span of each request, from the ASGI middleware that FastAPIInstrumentor
        # wraps, added last so it is outermost (RequestMiddleware runs inside its span). It
        # names the span by the method at the start; RequestMiddleware renames it
        # "<METHOD> <route template>" and sets http.route once routing has matched.
        # FastAPIInstrumentor finds the route before routing instead, by matching every route
        # of the app again on every request: a tenth of the cost of telemetry in
        # bench/demo_overhead.py. Exceptions: RequestMiddleware records them on the span.
        app.add_middleware(
            OpenTelemetryMiddleware,
            tracer_provider=telemetry.tracer_provider,
            excluded_urls=parse_excluded_urls(UNTRACED_URLS),
            default_span_details=_method_span_details,
            exclude_spans=["receive", "send"],
        )
    return app


def _method_span_details(scope: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """Name a server span by its method until RequestMiddleware knows the route."""
    method = str(scope.get("method", "")).strip().upper()
    return (method if method in _SPAN_METHODS else "HTTP"), {}


#: Methods a span is named by; any other is named "HTTP" (OpenTelemetry's semantic conventions).
_SPAN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
