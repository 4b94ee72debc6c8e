"""Generic webhooks: Alertmanager's payload as received, signed with HMAC-SHA256.

Headers: ``X-Relay-Timestamp`` (Unix seconds), ``X-Relay-Signature: sha256=<hex>`` over
``<timestamp>.<body>``, and ``Idempotency-Key`` (stable per delivery, so a receiver can
drop the rare duplicate after a crash between sending and recording).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import ClassVar

from pydantic import Field

from webhook_relay.targets.base import DeliveryContext, TargetConfig, check_response, send

__all__ = ["WebhookConfig", "WebhookTarget", "sign"]


class WebhookConfig(TargetConfig):
    """Settings of a generic webhook target."""

    url: str
    secret: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the signature header value for a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class WebhookTarget:
    """POST the notification as JSON to any URL."""

    kind: ClassVar[str] = "webhook"

    def __init__(self, name: str, config: WebhookConfig) -> None:
        self.name = name
        self.config = config

    async def deliver(self, context: DeliveryContext) -> None:
        """Post the signed payload."""
        body = json.dumps(
            context.notification.model_dump(mode="json"), separators=(",", ":")
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            **context.headers,
            **self.config.headers,
            "Content-Type": "application/json",
            "X-Relay-Timestamp": timestamp,
            "Idempotency-Key": f"{self.name}-{context.delivery_id}",
        }
        if self.config.secret:
            headers["X-Relay-Signature"] = sign(self.config.secret, timestamp, body)
        response = await send(
            lambda: context.http.post(
                self.config.url, content=body, headers=headers, timeout=context.timeout
            ),
            "webhook",
        )
        check_response(response, "webhook")
