"""Fixtures for the demo app's tests: fresh apps, in-memory spans, real Postgres and Redis."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from demo_support import (
    PG_HOST,
    PG_PORT,
    REDIS_HOST,
    REDIS_PORT,
    ShopFactory,
    Spans,
    ThreadedServer,
    payments_settings,
    shop_settings,
)
from lookout_demo.payments.app import create_app as create_payments_app
from lookout_demo.shop.app import create_app as create_shop_app
from stack_support.backends import require_listening
from stack_support.bugsink import Bugsink, bugsink_server


@pytest.fixture
def spans() -> Spans:
    """Give a test its own in-memory span exporter."""
    return Spans()


@pytest.fixture
def registry() -> CollectorRegistry:
    """Give a test a fresh metrics registry."""
    return CollectorRegistry()


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


@pytest.fixture
def make_shop(
    tmp_path: Path, payments_server: ThreadedServer, registry: CollectorRegistry, spans: Spans
) -> Iterator[ShopFactory]:
    """Build and start shop apps (lifespan run) against the real payments server.

    The first shop records into the test's ``registry``; each further one gets its own
    (two apps cannot register the same metrics on one registry) unless one is passed.
    """
    clients: list[TestClient] = []
    lock = threading.Lock()

    def make(registry_: CollectorRegistry | None = None, **overrides: Any) -> TestClient:
        overrides.setdefault("payments_url", payments_server.url)
        with lock:
            if registry_ is None:
                registry_ = registry if not clients else CollectorRegistry()
            app = create_shop_app(
                shop_settings(tmp_path, **overrides), registry=registry_, telemetry=spans.telemetry
            )
            client = TestClient(app, raise_server_exceptions=False)
            clients.append(client)
        client.__enter__()
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def shop(make_shop: ShopFactory) -> TestClient:
    """A started shop with default test settings."""
    return make_shop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """Create a throw-away database on the machine's Postgres; drop it afterwards."""
    require_listening("PostgreSQL", PG_HOST, PG_PORT)
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
    require_listening("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/11"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def bugsink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bugsink]:
    """Run the real Bugsink (PyPI, SQLite) on loopback once per session, a project per service."""
    with bugsink_server(tmp_path_factory.mktemp("bugsink")) as server:
        yield server
