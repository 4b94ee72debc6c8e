"""Fixtures for the demo app's tests: fresh apps, in-memory spans, real Postgres and Redis."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from lookout_demo.payments.app import create_app as create_payments_app
from lookout_demo.settings import PaymentsSettings, ShopSettings
from lookout_demo.shop.app import create_app as create_shop_app
from lookout_demo.shop.seed import DEMO_PASSWORD
from lookout_demo.telemetry.otel import Telemetry
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
IN_CI = os.environ.get("CI", "").lower() == "true"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (in CI) when a service the test needs is not listening."""
    if _reachable(host, port):
        return
    message = f"{name} is not listening on {host}:{port}; start it (see the README) and rerun"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


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


@pytest.fixture
def spans() -> Spans:
    """Give a test its own in-memory span exporter."""
    return Spans()


@pytest.fixture
def registry() -> CollectorRegistry:
    """Give a test a fresh metrics registry."""
    return CollectorRegistry()


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


@pytest.fixture
def payments_server(
    tmp_path: Path, spans: Spans, request: pytest.FixtureRequest
) -> Iterator[ThreadedServer]:
    """Run a real payments service on a loopback port (spans into the test's exporter).

    A test parametrises it indirectly with a dict of PaymentsSettings overrides.
    """
    overrides = getattr(request, "param", {})
    app = create_payments_app(
        payments_settings(tmp_path, **overrides),
        registry=CollectorRegistry(),
        telemetry=spans.telemetry,
    )
    with ThreadedServer(app) as server:
        yield server


ShopFactory = Callable[..., TestClient]


@pytest.fixture
def make_shop(
    tmp_path: Path, payments_server: ThreadedServer, registry: CollectorRegistry, spans: Spans
) -> Iterator[ShopFactory]:
    """Build and start shop apps (lifespan run) against the real payments server."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        overrides.setdefault("payments_url", payments_server.url)
        settings = shop_settings(tmp_path, **overrides)
        app = create_shop_app(settings, registry=registry, telemetry=spans.telemetry)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def shop(make_shop: ShopFactory) -> TestClient:
    """A started shop with default test settings."""
    return make_shop()


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


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """Create a throw-away database on the machine's Postgres; drop it afterwards."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    import asyncpg

    name = f"lookout_test_{uuid.uuid4().hex[:10]}"
    admin = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Give a test an emptied Redis database (index 11) on the machine's Redis."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/11"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()
