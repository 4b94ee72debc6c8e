"""``POST /webhook`` as a plain ASGI handler: the hot path, with nothing between it and uvicorn.

Each accept pays only for its own work (auth, body, validation, one span, the group commit);
FastAPI's middleware stack, router and Request objects cost about as much again per request
on this path, so every other route stays in FastAPI and this one is dispatched first
(``RelayApp``).

Answers: 202 after the durable commit (``accepted`` or ``duplicate``); 400 with what is
wrong; 401; 413; 503 with Retry-After only when the store cannot commit; 500 with a request id
for a bug (``internal_error``: logged as JSON with its stack and reported to the error tracker,
with the request id and the accept span's trace id). The error path costs nothing until an
error happens: no per-request work is added for it, with or without ``SENTRY_DSN``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind, Tracer

from lookout_telemetry.errortracking import (
    log_and_report,
    remember_context,
    remembered_context,
)
from webhook_relay.errors import PayloadError, StoreUnavailableError
from webhook_relay.metrics import exemplar
from webhook_relay.payload import idempotency_key, parse_notification, serialize
from webhook_relay.store import AcceptItem
from webhook_relay.telemetry import PROPAGATOR, current_traceparent

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from webhook_relay.app import Relay

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

__all__ = ["WebhookEndpoint", "internal_error"]

log = logging.getLogger("webhook_relay.app")

_Answer = tuple[int, dict[str, Any], dict[str, str]]


class _Disconnected(Exception):
    pass


class _TooLarge(Exception):
    pass


def internal_error(
    error: BaseException,
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
) -> dict[str, Any]:
    """Log and report a request's unhandled error; return the 500 body (with the request id).

    The request id is the caller's ``X-Request-ID`` or a new one; the trace and span ids are
    those ``remember_context`` kept on the error (the request's span has ended by now).
    """
    request_id = headers.get("x-request-id") or uuid.uuid4().hex
    context: dict[str, Any] = {**remembered_context(error), "request_id": request_id}
    log_and_report(
        "unhandled error while serving a request",
        error,
        context=context,
        tags={"route": path, "method": method},
        request={"method": method, "url": path, "headers": dict(headers)},
        logger=log,
        method=method,
        path=path,
        **context,
    )
    return {
        "error": "the relay failed to handle this request; quote the request id",
        "request_id": request_id,
    }


class WebhookEndpoint:
    """Accept Alertmanager notifications."""

    def __init__(self, relay: Relay, tracer: Tracer) -> None:
        self.relay = relay
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request."""
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope["headers"]
        }
        try:
            status, body, extra = await self._handle(scope, headers, receive)
        except _Disconnected:
            return
        except Exception as error:  # a bug: 500, logged and reported (no cost until it happens)
            status, extra = 500, {}
            body = internal_error(
                error,
                method="POST",
                path="/webhook",
                headers=headers,
            )
        payload = json.dumps(body, separators=(",", ":")).encode()
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            *(
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in extra.items()
            ),
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})

    async def _read(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.relay.settings.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _TooLarge
        chunks = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunks += message.get("body", b"")
            if len(chunks) > limit:
                raise _TooLarge
            if not message.get("more_body", False):
                return bytes(chunks)

    def _unauthorized(self, scope: Scope, reason: str) -> _Answer:
        self.relay.metrics.received.labels("unauthorized").inc()
        client = scope.get("client")
        log.warning(
            "webhook refused: unauthorized",
            extra={"reason": reason, "client": client[0] if client else None},
        )
        scheme = "Bearer" if self.relay.auth.mode == "bearer" else "Basic"
        return 401, {"error": reason}, {"WWW-Authenticate": scheme}

    async def _handle(self, scope: Scope, headers: dict[str, str], receive: Receive) -> _Answer:  # noqa: PLR0911 (one return per status)
        relay = self.relay
        started = time.perf_counter()
        reason = relay.auth.check_headers(headers.get("authorization"))
        if reason is not None:  # headers first: no body is read for strangers
            return self._unauthorized(scope, reason)
        try:
            body = await self._read(headers, receive)
        except _TooLarge:
            relay.metrics.received.labels("too_large").inc()
            limit = relay.settings.max_body_bytes
            return 413, {"error": f"the body exceeds {limit} bytes (RELAY_MAX_BODY_BYTES)"}, {}
        reason = relay.auth.check_signature(
            headers.get("x-relay-timestamp"), headers.get("x-relay-signature"), body
        )
        if reason is not None:
            return self._unauthorized(scope, reason)
        try:
            notification = parse_notification(body)
            payload = serialize(notification)
        except PayloadError as error:
            relay.metrics.received.labels("invalid").inc()
            log.warning("webhook refused: invalid payload", extra={"error": str(error)[:500]})
            return 400, {"error": str(error)}, {}
        parent = PROPAGATOR.extract({"traceparent": headers.get("traceparent", "")})
        token = otel_context.attach(parent)
        span: Span | None = None
        try:
            with self.tracer.start_as_current_span(
                "relay.accept",
                kind=SpanKind.SERVER,
                attributes={
                    "relay.receiver": notification.receiver,
                    "relay.status": notification.status,
                    "relay.alerts": len(notification.alerts),
                },
            ) as span:
                key = idempotency_key(notification)
                routes = relay.routing.routes(notification)
                targets = [route.target for route in routes]
                span.set_attribute("relay.targets", targets)
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
                    message = "the relay could not store the notification; retry"
                    return 503, {"error": message}, {"Retry-After": "5"}
                relay.metrics.accept_duration.observe(time.perf_counter() - started, exemplar())
                if result.duplicate:
                    relay.metrics.received.labels("duplicate").inc()
                    relay.metrics.deduplicated.inc()
                    span.set_attribute("relay.duplicate", True)
                    return 202, {"status": "duplicate", "idempotency_key": key}, {}
                relay.metrics.received.labels("accepted").inc()
                if relay.delivery is not None:
                    relay.delivery.wake()
                if not routes:
                    log.warning(
                        "notification matched no rule and no fallback",
                        extra={"receiver": notification.receiver},
                    )
                answer = {
                    "status": "accepted",
                    "notification_id": result.notification_id,
                    "deliveries": targets,
                }
                return 202, answer, {}
        except Exception as error:
            # The span ends before the error reaches __call__: keep its ids on the error.
            remember_context(error, span)
            raise
        finally:
            otel_context.detach(token)
