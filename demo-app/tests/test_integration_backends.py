"""The shop against the machine's real Postgres and Redis: checkout, cache, locks, readiness.

Each test gets a throw-away Postgres database and an emptied Redis database (fixtures
``postgres_url`` and ``redis_url``: skipped locally, failed in CI, when either is down).
Payments runs in a thread on SQLite, as everywhere else in these tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from demo_support import (
    ShopFactory,
    login,
    new_cart,
)
from lookout_demo.shop.security import fingerprint
from lookout_demo.shop.seed import DEMO_PASSWORD, DEMO_USERS, PRODUCTS

pytestmark = pytest.mark.integration

CARD = "4242 4242 4242 4242"


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    """Run one query on Postgres with a connection of its own; return the rows."""

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def pg_value(url: str, sql: str, *args: object) -> Any:
    """Run a query that returns one value."""
    rows = pg_fetch(url, sql, *args)
    assert len(rows) == 1, rows
    return rows[0][0]


def test_checkout_on_postgres_with_redis(
    postgres_url: str, redis_url: str, make_shop: ShopFactory
) -> None:
    """A checkout on Postgres (Redis as cache) writes a paid order and takes its stock."""
    shop = make_shop(database_url=postgres_url, redis_url=redis_url)
    assert shop.app.state.shop.cache.backend == "redis"  # type: ignore[attr-defined]
    stock_before = pg_value(postgres_url, "SELECT stock FROM products WHERE id = $1", 2)
    auth = login(shop)
    cart_id = new_cart(shop, (2, 3))
    response = shop.post(
        "/api/checkout",
        json={"cart_id": cart_id, "payment": {"method": "card", "card_number": CARD}},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["status"], order["total_cents"]) == ("paid", 3 * 1500)
    row = pg_fetch(
        postgres_url,
        "SELECT status, total_cents, payment_id FROM orders WHERE id = $1",
        order["id"],
    )
    assert [(r["status"], r["total_cents"]) for r in row] == [("paid", 4500)]
    assert row[0]["payment_id"]
    assert pg_value(postgres_url, "SELECT stock FROM products WHERE id = $1", 2) == stock_before - 3
    assert (
        pg_value(postgres_url, "SELECT count(*) FROM cart_items WHERE cart_id = $1", cart_id) == 0
    )


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/api/products/3", "catalog:product:3"),
        ("/api/products?category=optics", "catalog:list:optics:20:0"),
    ],
    ids=["one-product", "category-list"],
)
def test_catalog_reads_hit_the_redis_cache(
    postgres_url: str,
    redis_url: str,
    make_shop: ShopFactory,
    registry: CollectorRegistry,
    path: str,
    key: str,
) -> None:
    """A second catalog read is a cache hit from Redis, also for another replica."""
    shop = make_shop(database_url=postgres_url, redis_url=redis_url)
    first = shop.get(path)
    assert first.status_code == 200
    assert registry.get_sample_value("cache_misses_total", {"cache": "catalog"}) == 1.0
    assert registry.get_sample_value("cache_hits_total", {"cache": "catalog"}) is None
    second = shop.get(path)
    assert second.text == first.text
    assert registry.get_sample_value("cache_hits_total", {"cache": "catalog"}) == 1.0
    stored = redis.Redis.from_url(redis_url).get(key)
    assert stored is not None and stored.decode() == first.text

    other_registry = CollectorRegistry()
    other = make_shop(other_registry, database_url=postgres_url, redis_url=redis_url)
    assert other.get(path).text == first.text
    assert other_registry.get_sample_value("cache_hits_total", {"cache": "catalog"}) == 1.0
    assert other_registry.get_sample_value("cache_misses_total", {"cache": "catalog"}) is None


def test_readiness_reports_every_backend_ok(
    postgres_url: str, redis_url: str, make_shop: ShopFactory
) -> None:
    """Readiness is 200 with database, cache and payments each ok on real backends."""
    shop = make_shop(database_url=postgres_url, redis_url=redis_url)
    response = shop.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "cache": "ok",
        "payments": "ok",
    }


@pytest.mark.parametrize(
    "order",
    [("a", "b", "a"), ("b", "b", "a"), ("a", "a", "b")],
    ids=["alternating", "two-on-b", "two-on-a"],
)
def test_bruteforce_detection_is_shared_through_redis(
    postgres_url: str,
    redis_url: str,
    make_shop: ShopFactory,
    registry: CollectorRegistry,
    order: tuple[str, ...],
) -> None:
    """Failed logins split between two replicas on one Redis still reach the block threshold."""
    backends = {"database_url": postgres_url, "redis_url": redis_url, "bruteforce_max_failures": 3}
    replicas = {"a": make_shop(**backends), "b": make_shop(**backends)}
    wrong = [
        replicas[name]
        .post("/api/login", json={"email": "bob@example.com", "password": f"guess-{n}"})
        .status_code
        for n, name in enumerate(order)
    ]
    assert wrong == [401, 401, 401]
    right = [
        replicas[name]
        .post("/api/login", json={"email": "bob@example.com", "password": DEMO_PASSWORD})
        .status_code
        for name in ("a", "b")
    ]
    assert right == [429, 429]
    counter = redis.Redis.from_url(redis_url).get(
        f"loginfail:account:{fingerprint('bob@example.com')}"
    )
    assert counter == b"3"
    # The replica that saw the third failure counted the detection (a's registry is ours).
    detections = registry.get_sample_value("auth_bruteforce_detections_total", {"scope": "account"})
    assert detections == (1.0 if order[-1] == "a" else None)


def test_checkout_failing_on_stock_writes_nothing_to_postgres(
    postgres_url: str, redis_url: str, make_shop: ShopFactory
) -> None:
    """A checkout refused for stock leaves no order row and every stock level unchanged."""
    shop = make_shop(database_url=postgres_url, redis_url=redis_url)
    auth = login(shop)
    cart_a = new_cart(shop, (9, 30))
    cart_b = new_cart(shop, (8, 1), (9, 30))
    first = shop.post(
        "/api/checkout", json={"cart_id": cart_a, "payment": {"method": "paypal"}}, headers=auth
    )
    assert first.status_code == 201, first.text

    def snapshot() -> tuple[int, int, list[tuple[int, int]]]:
        orders = pg_value(postgres_url, "SELECT count(*) FROM orders")
        items = pg_value(postgres_url, "SELECT count(*) FROM order_items")
        stock = pg_fetch(postgres_url, "SELECT id, stock FROM products ORDER BY id")
        return orders, items, [(r["id"], r["stock"]) for r in stock]

    before = snapshot()
    assert dict(before[2])[9] == 0
    second = shop.post(
        "/api/checkout", json={"cart_id": cart_b, "payment": {"method": "paypal"}}, headers=auth
    )
    assert second.status_code == 409, second.text
    assert second.json()["error"] == "insufficient_stock"
    assert snapshot() == before


def test_two_shops_starting_at_once_seed_once(
    postgres_url: str, redis_url: str, make_shop: ShopFactory
) -> None:
    """Two shops starting together on a fresh database both come up; the seed runs once."""
    barrier = threading.Barrier(2)
    started: list[TestClient] = []
    errors: list[BaseException] = []

    def boot() -> None:
        try:
            barrier.wait(timeout=10)
            started.append(make_shop(database_url=postgres_url, redis_url=redis_url))
        except BaseException as exc:  # reported below, with the other thread's outcome
            errors.append(exc)

    threads = [threading.Thread(target=boot, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(started) == 2
    assert [shop.get("/health/startup").status_code for shop in started] == [200, 200]
    assert pg_value(postgres_url, "SELECT count(*) FROM products") == len(PRODUCTS)
    assert pg_value(postgres_url, "SELECT count(DISTINCT sku) FROM products") == len(PRODUCTS)
    assert pg_value(postgres_url, "SELECT count(*) FROM users") == len(DEMO_USERS)


class TcpProxy:
    """A loopback TCP forwarder to a backend; ``close()`` makes the backend unreachable."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = int(self.listener.getsockname()[1])
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop accepting and cut every forwarded connection."""
        self.closed.set()
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def _through(proxy: TcpProxy, url: str) -> str:
    """Return ``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    auth = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{proxy.port}"))


@pytest.mark.parametrize(
    "failing", ["cache", "database"], ids=["redis-closed-port", "postgres-down"]
)
def test_readiness_names_the_failing_backend(
    postgres_url: str, redis_url: str, make_shop: ShopFactory, failing: str
) -> None:
    """Readiness turns 503 and names the check that fails when Redis or Postgres is unreachable."""
    parts = urlsplit(postgres_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    try:
        if failing == "cache":
            shop = make_shop(
                database_url=postgres_url, redis_url=f"redis://127.0.0.1:{free_port()}/0"
            )
        else:
            shop = make_shop(database_url=_through(proxy, postgres_url), redis_url=redis_url)
            assert shop.get("/health/ready").status_code == 200
            proxy.close()
        response = shop.get("/health/ready")
    finally:
        proxy.close()
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "fail"
    statuses = {name: check["status"] for name, check in body["checks"].items()}
    expected = {"database": "ok", "cache": "ok", "payments": "ok"} | {failing: "fail"}
    assert statuses == expected
    assert body["checks"][failing]["error"]


def test_saturated_pool_answers_503_naming_the_wait(
    postgres_url: str, make_shop: ShopFactory, registry: CollectorRegistry
) -> None:
    """With every pooled connection taken, a request waits the pool timeout, then gets 503."""
    shop = make_shop(
        database_url=postgres_url,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout_seconds=0.3,
        # The background tasks (outbox, inventory) share the pool: after their first round
        # at start-up, keep them asleep so the only waiter is the request under test.
        outbox_poll_seconds=3600,
        inventory_refresh_seconds=3600,
    )
    outbox = shop.app.state.outbox  # type: ignore[attr-defined]
    for _ in range(100):
        stock = registry.get_sample_value("shop_inventory_stock_units", {"category": "optics"})
        if outbox.rounds and stock is not None:
            break
        time.sleep(0.05)
    db = shop.app.state.db  # type: ignore[attr-defined]
    held = shop.portal.call(db.engine.connect().start)  # type: ignore[union-attr]
    try:
        response = shop.post("/api/carts")
    finally:
        shop.portal.call(held.close)  # type: ignore[union-attr]
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "database_busy"
    assert "within 0.3s" in response.json()["message"]
    assert registry.get_sample_value("db_pool_timeouts_total") == 1.0
    assert shop.post("/api/carts").status_code == 201


def test_health_detail_on_postgres_and_redis(
    postgres_url: str, redis_url: str, make_shop: ShopFactory
) -> None:
    """/health and its db, redis and external parts answer 200 with pool, cache and latency."""
    shop = make_shop(database_url=postgres_url, redis_url=redis_url, db_pool_size=3)
    shop.get("/api/products/1")
    shop.get("/api/products/1")  # one miss, then one hit
    db = shop.app.state.db  # type: ignore[attr-defined]
    held = shop.portal.call(db.engine.connect().start)  # type: ignore[union-attr]
    try:
        database = shop.get("/health/db")
    finally:
        shop.portal.call(held.close)  # type: ignore[union-attr]
    assert database.status_code == 200, database.text
    pool = database.json()["pool"]
    assert database.json()["backend"] == "postgresql"
    assert (pool["size"], pool["checked_out"], pool["overflow"]) == (3, 1, 0)
    assert pool["wait_seconds"]["count"] >= 1
    assert database.json()["latency_ms"] > 0

    cache = shop.get("/health/redis")
    assert cache.status_code == 200, cache.text
    body = cache.json()
    assert (body["backend"], body["hit_rate"], body["lookups"]) == ("redis", 0.5, 2)
    assert body["memory_used_bytes"] > 0
    assert body["latency_ms"] > 0

    external = shop.get("/health/external")
    assert external.status_code == 200, external.text
    assert external.json()["checks"]["payments"]["status"] == "ok"
    assert external.json()["checks"]["payments"]["latency_ms"] > 0

    everything = shop.get("/health")
    assert everything.status_code == 200, everything.text
    assert everything.json()["phase"] == "serving"
    assert set(everything.json()["checks"]) == {"database", "cache", "external"}


@pytest.mark.parametrize(
    ("failing", "endpoint"),
    [("database", "/health/db"), ("cache", "/health/redis"), ("payments", "/health/external")],
    ids=["postgres-down", "redis-closed-port", "payments-closed-port"],
)
def test_health_detail_fails_with_its_dependency(
    postgres_url: str, redis_url: str, make_shop: ShopFactory, failing: str, endpoint: str
) -> None:
    """A dependency down turns its detail endpoint and /health to 503, naming the error."""
    parts = urlsplit(postgres_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    overrides: dict[str, Any] = {
        "database_url": _through(proxy, postgres_url),
        "redis_url": redis_url,
        "health_check_timeout_seconds": 0.5,
    }
    if failing == "cache":
        overrides["redis_url"] = f"redis://127.0.0.1:{free_port()}/0"
    if failing == "payments":
        overrides["payments_url"] = f"http://127.0.0.1:{free_port()}"
    try:
        shop = make_shop(**overrides)
        if failing == "database":
            assert shop.get(endpoint).status_code == 200
            proxy.close()
        detail = shop.get(endpoint)
        everything = shop.get("/health")
    finally:
        proxy.close()
    assert detail.status_code == 503, detail.text
    assert everything.status_code == 503, everything.text
    body = detail.json()
    outcome = body["checks"]["payments"] if failing == "payments" else body
    assert body["status"] == "fail"
    assert outcome["error"]
    group = {"database": "database", "cache": "cache", "payments": "external"}[failing]
    assert everything.json()["checks"][group]
