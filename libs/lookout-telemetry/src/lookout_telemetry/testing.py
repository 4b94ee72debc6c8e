"""Helpers for the tests of every service that uses this library (like structlog's).

* ``MemoryTransport``: a sentry-sdk transport that keeps each event as the JSON it would send;
* ``error_tracking(dsn, ...)``: sentry-sdk on for a block (as a service's start-up turns it
  on), then off again, flushed, so the next test starts clean.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import sentry_sdk
import sentry_sdk.envelope
import sentry_sdk.transport

from lookout_telemetry.errortracking import setup_error_tracking

__all__ = ["MemoryTransport", "error_tracking"]


class MemoryTransport(sentry_sdk.transport.Transport):
    """A sentry-sdk transport that keeps each event it is given, as the JSON it would send."""

    def __init__(self) -> None:
        """Start with no event."""
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: sentry_sdk.envelope.Envelope) -> None:
        """Keep the envelope's event, round-tripped through JSON as it would go on the wire."""
        for item in envelope.items:
            if item.type in {"event", "transaction"} and item.payload.json is not None:
                payload = item.payload.json
                self.events.append(json.loads(json.dumps(payload, default=str)))


@contextlib.contextmanager
def error_tracking(
    dsn: str = "http://public@127.0.0.1:9/1",
    *,
    service: str = "test",
    release: str = "test@0+abc1234",
    environment: str = "test",
    transport: Any = None,
) -> Iterator[None]:
    """Turn sentry-sdk on for the block, then flush and turn it off again."""
    if not setup_error_tracking(
        dsn, service=service, release=release, environment=environment, transport=transport
    ):
        msg = "error_tracking() needs a DSN"
        raise ValueError(msg)
    try:
        yield
    finally:
        sentry_sdk.flush(timeout=5)
        sentry_sdk.get_client().close(timeout=5)
        sentry_sdk.get_global_scope().set_client(None)
