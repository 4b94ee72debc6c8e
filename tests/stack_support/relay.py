"""A routing file for the real webhook relay that delivers everything to a target a test owns.

The relay (services/webhook-relay) reads its routing from RELAY_ROUTING_FILE; compose mounts
services/webhook-relay/routing.compose.yml there (everything to the relay's own log). A native
stack gives it this file instead (``NativeStack(mount_sources=relay_mount(path))``), so every
notification Alertmanager routes to the relay is delivered, by the relay's own `webhook` target,
to a stack_support.receiver.WebhookReceiver: the payload as Alertmanager sent it (receiver,
status, labels, annotations such as runbook_url and dashboard), signed with HMAC-SHA256.
Routing file reference: services/webhook-relay/README.md, "Routing file".
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import yaml

from stack_support.receiver import Delivery

__all__ = [
    "RELAY_ROUTING_MOUNT",
    "RELAY_TARGET",
    "relay_mount",
    "signature_is_valid",
    "write_relay_routing",
]

#: Where compose mounts the relay's routing file (docker-compose.yml, services.webhook-relay).
RELAY_ROUTING_MOUNT = "/etc/webhook-relay/routing.yml"
#: The name of the one target in the test's routing file (the Idempotency-Key starts with it).
RELAY_TARGET = "test-receiver"


def write_relay_routing(path: Path, url: str, secret: str) -> Path:
    """Write a routing file that sends every notification to ``url``, signed with ``secret``."""
    routing = {
        "targets": {RELAY_TARGET: {"type": "webhook", "url": url, "secret": secret}},
        # Every Alertmanager receiver (page, chat, log, watchdog): the payload keeps its
        # `receiver`, so the test still sees how Alertmanager routed each alert.
        "rules": [{"name": "every-receiver", "match": {}, "targets": [RELAY_TARGET]}],
        "fallback": [RELAY_TARGET],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(routing, sort_keys=False), encoding="utf-8")
    return path


def relay_mount(path: Path) -> dict[str, dict[str, Path]]:
    """Return NativeStack's ``mount_sources`` that give the relay this routing file."""
    return {"webhook-relay": {RELAY_ROUTING_MOUNT: path}}


def signature_is_valid(delivery: Delivery, secret: str) -> bool:
    """Return whether a delivery carries the relay's HMAC-SHA256 signature of its body."""
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    timestamp = headers.get("x-relay-timestamp", "")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + delivery.body, hashlib.sha256)
    return hmac.compare_digest(
        headers.get("x-relay-signature", ""), "sha256=" + expected.hexdigest()
    )
