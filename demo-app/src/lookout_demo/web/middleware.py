"""The ASGI middleware in front of every route: request id, limits, RED metrics, access log.

Written as plain ASGI rather than Starlette's BaseHTTPMiddleware: that one runs the app in
a separate task (contextvars set by handlers would not be seen here) and costs a copy of
every response body. It sits inside OpenTelemetry's server span, so the span is current here.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookout_demo.telemetry.metrics import HttpMetrics, current_exemplar
from lookout_demo.web.clients import ClientClassifier
from lookout_demo.web.errors import error_body
from lookout_telemetry.context import request_id_var, user_id_var
from lookout_telemetry.errortracking import current_context, dashed_event_id, report_exception

__all__ = ["REQUEST_ID_HEADER", "RequestMiddleware"]

REQUEST_ID_HEADER = "x-request-id"
#: An incoming request id is reused only when it is short and plain (no log injection).
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

#: Methods kept as label values; anything else is "_OTHER" (as OpenTelemetry's HTTP
#: conventions do), so a client sending made-up methods cannot add series.
_KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)

access_log = logging.getLogger("lookout_demo.access")
error_log = logging.getLogger("lookout_demo.errors")


class _BodyTooLarge(Exception):
    pass


def _name_server_span(scope: Scope, method: str) -> None:
    """Name the server span "<METHOD> <route template>" and set http.route, once routed.

    web.service names it by the method alone when it starts (finding the route before routing
    costs a match against every route); by the response's start the router has put the route
    in the scope, and the span (which ends with the response body) still records.
    """
    route = getattr(scope.get("route"), "path", None)
    span = trace.get_current_span()
    if route is not None and span.is_recording():
        span.update_name(f"{'HTTP' if method == '_OTHER' else method} {route}")
        span.set_attribute("http.route", route)


class RequestMiddleware:
    """Give each request an id, enforce the body limit, measure and log it, catch errors."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics | None,
        max_body_bytes: int,
        classifier: ClientClassifier | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.classifier = classifier
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request through the app, with the bookkeeping around it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get(REQUEST_ID_HEADER)
        request_id = incoming if incoming and _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        rid_token = request_id_var.set(request_id)
        uid_token = user_id_var.set(None)
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "_OTHER"
        started = time.perf_counter()
        response: dict[str, Any] = {"status": 500, "started": False}
        if self.metrics is not None:
            self.metrics.in_flight.labels(method).inc()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                _name_server_span(scope, method)
                response["status"] = message["status"]
                response["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
            return message

        try:
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                raise _BodyTooLarge
            await self.app(scope, receive_limited, send_with_id)
        except _BodyTooLarge:
            if self.metrics is not None:
                self.metrics.rejected.labels("body_too_large").inc()
            if not response["started"]:
                await self._send_json(
                    send_with_id,
                    413,
                    error_body(
                        "payload_too_large",
                        f"the request body is larger than {self.max_body_bytes} bytes",
                    ),
                )
        except Exception as exc:
            await self._unhandled(exc, scope, send_with_id, started=response["started"])
            response["status"] = 500
        finally:
            self._finish(scope, method, response["status"], time.perf_counter() - started)
            user_id_var.reset(uid_token)
            request_id_var.reset(rid_token)

    def _finish(self, scope: Scope, method: str, status: int, seconds: float) -> None:
        route_obj = scope.get("route")
        route = getattr(route_obj, "path", None) or "unmatched"
        user_id = scope.get("state", {}).get("user_id")
        if user_id is not None:
            user_id_var.set(str(user_id))
        if self.metrics is not None:
            self.metrics.in_flight.labels(method).dec()
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.duration.labels(method, route).observe(
                seconds, exemplar=current_exemplar()
            )
            if self.classifier is not None:
                outcome = (
                    "server_error"
                    if status >= 500
                    else "client_error"
                    if status >= 400
                    else "success"
                )
                client, region = self.classifier.classify(scope.get("headers", []))
                self.metrics.by_client.labels(
                    client.browser, client.os, client.device, outcome
                ).inc()
                self.metrics.by_region.labels(region, outcome).inc()
        access_log.info(
            "%s %s %s",
            method,
            scope.get("path"),
            status,
            extra={
                "method": method,
                "path": scope.get("path"),
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
            },
        )

    async def _unhandled(self, exc: Exception, scope: Scope, send: Send, *, started: bool) -> None:
        """Record an unhandled error on the span, report it, log it; answer 500 if we can.

        This is the global exception handler: every error a route did not handle ends here.
        """
        span = trace.get_current_span()
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        context = current_context()
        user_id = scope.get("state", {}).get("user_id")
        if user_id is not None:
            context["user_id"] = str(user_id)
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        event_id = report_exception(
            exc,
            context=context,
            tags={"route": route, "method": scope.get("method", "")},
            request={
                "method": scope.get("method"),
                "url": scope.get("path"),
                "query_string": scope.get("query_string", b"").decode("latin-1"),
                "headers": dict(Headers(scope=scope)),
            },
        )
        extra: dict[str, Any] = {
            "method": scope.get("method"),
            "path": scope.get("path"),
            "route": route,
            "error_type": type(exc).__name__,
        }
        if event_id is not None:
            extra["sentry_event_id"] = dashed_event_id(event_id)
        error_log.exception("unhandled error while serving a request", extra=extra)
        if not started:
            await self._send_json(
                send,
                500,
                error_body(
                    "internal_error",
                    "the server failed to handle this request; quote the request id "
                    "when reporting it",
                ),
            )

    @staticmethod
    async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
