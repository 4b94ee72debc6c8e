"""Routes: ``/`` (status page), ``/api/v1/...`` (JSON), ``/metrics``, ``/health/live|ready``.

The status page is server-rendered HTML (Jinja2, autoescaped) with inline CSS and no
script, so it reads the same without JavaScript and loads nothing from elsewhere.
"""

from __future__ import annotations

import time
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import (
    CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Lifespan

from synthetic_monitor.service import Monitor

__all__ = ["create_app"]

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}%"


_TEMPLATES.filters["when"] = _when
_TEMPLATES.filters["percent"] = _percent


def create_app(
    monitor: Monitor, registry: CollectorRegistry, lifespan: Lifespan[Starlette] | None = None
) -> Starlette:
    """Return the web app reading from ``monitor`` and exposing ``registry``.

    ``lifespan`` starts and stops the monitor with the server (``cli.serve`` passes one
    that also installs the SIGHUP handler).
    """

    async def summaries() -> list[dict[str, object]]:
        journeys = monitor.scheduler.journeys.values()
        return [await monitor.journey_summary(j) for j in sorted(journeys, key=lambda j: j.name)]

    async def failures(limit: int = 20) -> list[dict[str, object]]:
        return [
            {
                "journey": r.journey,
                "started_at": r.started_at,
                "failing_step": r.failing_step,
                "reason": r.reason,
                "attempts": r.attempts,
                "trace_id": r.trace_id,
                "trace_url": monitor.trace_url(r.trace_id),
            }
            for r in await monitor.store.recent_failures(limit)
        ]

    async def status_page(_: Request) -> Response:
        journeys = await summaries()
        down = sum(1 for j in journeys if j["state"] == "failure")
        html = _TEMPLATES.get_template("status.html").render(
            journeys=journeys,
            failures=await failures(),
            down=down,
            generated=time.time(),
            reload_error=monitor.last_reload_error,
        )
        return HTMLResponse(html)

    async def api_journeys(_: Request) -> Response:
        return JSONResponse({"journeys": await summaries(), "generated": time.time()})

    async def api_journey(request: Request) -> Response:
        name = request.path_params["name"]
        journey = monitor.scheduler.journeys.get(name)
        if journey is None:
            return JSONResponse({"error": f"no journey named {name!r}"}, status_code=404)
        data = await monitor.journey_summary(journey)
        data["recent_runs"] = [
            {**vars(r), "trace_url": monitor.trace_url(r.trace_id)}
            for r in await monitor.store.recent_runs(name, 50)
        ]
        return JSONResponse(data)

    async def api_failures(_: Request) -> Response:
        return JSONResponse({"failures": await failures(50)})

    async def metrics(request: Request) -> Response:
        if "application/openmetrics-text" in request.headers.get("accept", ""):
            return Response(generate_openmetrics(registry), media_type=OPENMETRICS_CONTENT_TYPE)
        return Response(
            generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def live(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(_: Request) -> Response:
        checks = {
            "config": monitor.config is not None,
            "store": monitor.store_ok,
            "scheduler": monitor.scheduler.started,
        }
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/", status_page),
            Route("/api/v1/journeys", api_journeys),
            Route("/api/v1/journeys/{name}", api_journey),
            Route("/api/v1/failures", api_failures),
            Route("/metrics", metrics),
            Route("/health/live", live),
            Route("/health/ready", ready),
        ],
    )
