"""Helpers for the demo app's tests: test servers, settings, spans, logins and carts.

Kept out of conftest.py so tests can import them by a name no other package's tests use.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lookout_demo import __version__
from lookout_demo.settings import PaymentsSettings, ShopSettings
from lookout_demo.shop.seed import DEMO_PASSWORD
from lookout_demo.telemetry.otel import Telemetry
from lookout_telemetry import testing as telemetry_testing
from lookout_telemetry.errortracking import release_name

# Re-exported: the demo tests took it from here before it moved to the shared harness.

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
IN_CI = os.environ.get("CI", "").lower() == "true"


class Spans:
    """A telemetry set-up whose spans land in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.telemetry = Telemetry(tracer_provider=provider)

    def finished(self) -> list[Any]:
        """Return the spans ended so far."""
        return list(self.exporter.get_finished_spans())


class ThreadedServer:
    """A real uvicorn server on a loopback port, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                break
            threading.Event().wait(0.05)
        else:
            msg = "the test server did not start within 10 s"
            raise RuntimeError(msg)
        return self

    @property
    def url(self) -> str:
        """Return the server's base URL."""
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def payments_settings(tmp_path: Path, **overrides: Any) -> PaymentsSettings:
    """Return payments settings for a test: SQLite in tmp_path, no simulated latency."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'payments.db'}",
        "latency_ms": 0.0,
        "latency_jitter_ms": 0.0,
        "shutdown_delay_seconds": 0.0,
    }
    values.update(overrides)
    return PaymentsSettings(**values)


def shop_settings(tmp_path: Path, **overrides: Any) -> ShopSettings:
    """Return shop settings for a test: SQLite in tmp_path, cheap password hashing."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}",
        "password_hash_iterations": 1000,
        "health_cache_ttl_seconds": 0.0,
        "fault_token": "test-fault-token",
    }
    values.update(overrides)
    return ShopSettings(**values)


ShopFactory = Callable[..., TestClient]


def login(client: TestClient, email: str = "alice@example.com") -> dict[str, str]:
    """Log in as a demo user; return the Authorization header."""
    response = client.post("/api/login", json={"email": email, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def new_cart(client: TestClient, *lines: tuple[int, int]) -> str:
    """Create a cart holding (product_id, quantity) lines; return its id."""
    cart_id = str(client.post("/api/carts").json()["id"])
    for product_id, quantity in lines:
        response = client.post(
            f"/api/carts/{cart_id}/items", json={"product_id": product_id, "quantity": quantity}
        )
        assert response.status_code == 200, response.text
    return cart_id


# --------------------------------------------------------------------------- Sentry


@contextlib.contextmanager
def error_tracking(
    dsn: str = "http://public@127.0.0.1:9/1", transport: Any = None, revision: str = "abc1234"
) -> Iterator[None]:
    """Turn sentry-sdk on for the block as the shop's entrypoint does, then off again."""
    with telemetry_testing.error_tracking(
        dsn,
        service="shop",
        release=release_name("lookout-demo", __version__, revision),
        transport=transport,
    ):
        yield
