"""Health probes, fault injection and settings errors."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi.testclient import TestClient

from demo_support import ShopFactory, ThreadedServer, login, new_cart
from lookout_demo.settings import SettingsError, ShopSettings, load_settings
from lookout_demo.web.health import HealthChecker

TOKEN = {"X-Fault-Token": "test-fault-token"}


def test_ready_reports_each_check_with_latency(shop: TestClient) -> None:
    """Readiness lists database, cache and payments, each ok with a latency."""
    body = shop.get("/health/ready").json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "payments"}
    assert all(c["status"] == "ok" and c["latency_ms"] >= 0 for c in body["checks"].values())


def test_ready_is_503_naming_the_failed_dependency(make_shop: ShopFactory) -> None:
    """With payments unreachable the shop is not ready, and says which check failed."""
    shop = make_shop(payments_url="http://127.0.0.1:9", health_check_timeout_seconds=0.5)
    response = shop.get("/health/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["payments"]["status"] == "fail"
    assert "Connect" in checks["payments"]["error"]
    assert checks["database"]["status"] == "ok"


def test_ready_is_503_while_draining_and_live_stays_200(shop: TestClient) -> None:
    """Once draining starts readiness reads 503 while liveness and the API still answer."""
    shop.app.state.lifecycle.start_draining()  # type: ignore[attr-defined]
    assert shop.get("/health/ready").json() == {"status": "draining", "checks": {}}
    assert shop.get("/health/ready").status_code == 503
    assert shop.get("/health/live").status_code == 200
    assert shop.get("/api/products/1").status_code == 200


def test_startup_probe_reports_start_time(shop: TestClient) -> None:
    """The start-up probe answers 200 with how long start-up took."""
    body = shop.get("/health/startup").json()
    assert body["status"] == "ok"
    assert body["startup_seconds"] > 0


def test_live_fails_over_the_memory_bound(make_shop: ShopFactory) -> None:
    """Liveness turns 503 when resident memory is over the configured bound."""
    shop = make_shop(health_max_rss_bytes=1024)
    response = shop.get("/health/live")
    assert response.status_code == 503
    assert response.json()["checks"]["memory"]["limit_bytes"] == 1024


def test_checks_are_cached_for_the_ttl() -> None:
    """Within the TTL the checks run once; each check has its own timeout."""
    calls = []

    async def counted() -> None:
        calls.append(1)

    async def hangs() -> None:
        await asyncio.sleep(10)

    async def scenario() -> tuple[bool, dict[str, object], bool]:
        checker = HealthChecker(
            {"counted": counted, "hangs": hangs}, timeout_seconds=0.05, ttl_seconds=60
        )
        ok, detail = await checker.run()
        again, cached = await checker.run()
        return ok, detail, bool(cached["cached"]) and again == ok

    ok, detail, second_cached = asyncio.run(scenario())
    assert not ok
    assert detail["checks"]["hangs"] == {  # type: ignore[index]
        "status": "fail",
        "error": "no answer within 0.05s",
        "latency_ms": detail["checks"]["hangs"]["latency_ms"],  # type: ignore[index]
    }
    assert second_cached
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-Fault-Token": "wrong"}, 401), (TOKEN, 200)],
    ids=["no-token", "wrong-token", "right-token"],
)
def test_fault_api_needs_the_token(shop: TestClient, headers: dict[str, str], status: int) -> None:
    """The fault API answers only to the configured token."""
    assert shop.get("/admin/faults", headers=headers).status_code == status


@pytest.mark.parametrize("token", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_fault_api_is_off_without_a_token(make_shop: ShopFactory, token: str | None) -> None:
    """With no (or an empty) DEMO_FAULT_TOKEN the fault API is off, and says how to turn it on."""
    shop = make_shop(fault_token=token)
    response = shop.get("/admin/faults", headers={"X-Fault-Token": token or ""})
    assert response.status_code == 404
    assert "DEMO_FAULT_TOKEN" in response.json()["message"]


def test_injected_errors_and_latency_hit_only_their_route(shop: TestClient) -> None:
    """An error rule on one route fails that route only, and clearing it restores service."""
    rules = {"rules": [{"route": "/api/products/{product_id}", "error_rate": 1.0}]}
    assert shop.put("/admin/faults", json=rules, headers=TOKEN).status_code == 200
    failed = shop.get("/api/products/1")
    assert failed.status_code == 500
    assert failed.json()["error"] == "injected_fault"
    assert shop.get("/api/products").status_code == 200
    assert shop.delete("/admin/faults", headers=TOKEN).status_code == 204
    assert shop.get("/api/products/1").status_code == 200


@pytest.mark.parametrize(
    "payments_server", [{"fault_token": "pay-token"}], indirect=True, ids=["payments-faults"]
)
def test_injected_payment_failures_decline_checkouts(
    shop: TestClient, payments_server: ThreadedServer
) -> None:
    """A payment_failure_rate of 1 on payments declines checkouts until it is cleared."""
    rules = {"rules": [{"route": "*", "payment_failure_rate": 1.0}]}
    faults = f"{payments_server.url}/admin/faults"
    headers = {"X-Fault-Token": "pay-token"}
    assert httpx.put(faults, json=rules, headers=headers).status_code == 200
    auth = login(shop)
    declined = shop.post(
        "/api/checkout",
        json={"cart_id": new_cart(shop, (1, 1)), "payment": {"method": "paypal"}},
        headers=auth,
    )
    assert declined.status_code == 402
    assert "processor_declined" in declined.json()["message"]
    assert httpx.delete(faults, headers=headers).status_code == 204
    paid = shop.post(
        "/api/checkout",
        json={"cart_id": new_cart(shop, (1, 1)), "payment": {"method": "paypal"}},
        headers=auth,
    )
    assert paid.status_code == 201


@pytest.mark.parametrize(
    "payments_server", [{"failure_rate": 1.0}], indirect=True, ids=["failure-rate-1"]
)
def test_payments_failure_rate_setting_declines(
    shop: TestClient, payments_server: ThreadedServer
) -> None:
    """DEMO_FAILURE_RATE on payments declines authorisations without any API call."""
    response = shop.post(
        "/api/checkout",
        json={"cart_id": new_cart(shop, (1, 1)), "payment": {"method": "gift_card"}},
        headers=login(shop),
    )
    assert response.status_code == 402


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"DEMO_LOG_SUCCESS_SAMPLE_RATE": "2"}, "DEMO_LOG_SUCCESS_SAMPLE_RATE"),
        ({"DATABASE_URL": "mysql://db/shop"}, "DATABASE_URL"),
        ({"DEMO_DB_POOL_SIZE": "zero"}, "DEMO_DB_POOL_SIZE"),
    ],
    ids=["sample-rate", "database-url", "pool-size"],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], names: str
) -> None:
    """A bad setting fails start-up with a message naming its environment variable."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=names):
        load_settings(ShopSettings)


def test_settings_errors_hide_the_fault_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """A settings error never prints the fault token's value."""
    monkeypatch.setenv("DEMO_FAULT_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("DEMO_DB_POOL_SIZE", "-1")
    with pytest.raises(SettingsError) as caught:
        load_settings(ShopSettings)
    assert "s3cr3t-value" not in str(caught.value)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
    ids=["postgres-scheme", "postgresql-scheme", "sqlite"],
)
def test_database_url_gets_the_async_driver(
    monkeypatch: pytest.MonkeyPatch, given: str, used: str
) -> None:
    """Platform-style database URLs are accepted and given the async driver."""
    monkeypatch.setenv("DATABASE_URL", given)
    assert load_settings(ShopSettings).database_url == used
