"""The restock task on the real Postgres: low products back to the level, safely with checkouts.

Each test gets a throw-away Postgres database (fixture ``postgres_url``: skipped locally, failed
in CI, when Postgres is down). The settings' checks run without a database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from demo_support import ShopFactory, Spans
from lookout_demo.settings import SettingsError, ShopSettings, load_settings
from lookout_demo.shop.seed import PRODUCTS

THRESHOLD, LEVEL = 10, 100


def _wait(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll until check() is truthy; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    pytest.fail(f"{what}: not within {timeout:g} s (last: {last!r})")


def _sql(url: str, *statements: str) -> list[list[asyncpg.Record]]:
    """Run statements on Postgres, each on the same fresh connection; return their rows."""

    async def run() -> list[list[asyncpg.Record]]:
        conn = await asyncpg.connect(url)
        try:
            return [list(await conn.fetch(sql)) for sql in statements]
        finally:
            await conn.close()

    return asyncio.run(run())


def _stocks(url: str) -> dict[str, int]:
    """Return every product's stock by SKU."""
    return {row["sku"]: row["stock"] for row in _sql(url, "SELECT sku, stock FROM products")[0]}


@pytest.mark.integration
def test_background_task_restocks_low_products_on_postgres(
    postgres_url: str,
    make_shop: ShopFactory,
    registry: CollectorRegistry,
    spans: Spans,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Products at or below the threshold go back to the level; the others are left alone."""
    caplog.set_level(logging.INFO, logger="lookout_demo.restock")
    shop = make_shop(
        database_url=postgres_url,
        restock_interval_seconds=0.2,
        low_stock_threshold=THRESHOLD,
        restock_level=LEVEL,
    )
    _sql(
        postgres_url,
        "UPDATE products SET stock = 3 WHERE sku = 'TEL-001'",
        "UPDATE products SET stock = 10 WHERE sku = 'CMP-001'",  # at THRESHOLD
        "UPDATE products SET stock = 11 WHERE sku = 'LOG-001'",  # one above
    )
    _wait(lambda: _stocks(postgres_url)["CMP-001"] == LEVEL, "CMP-001 restocked")
    stocks = _stocks(postgres_url)
    assert stocks["TEL-001"] == LEVEL
    assert stocks["LOG-001"] == THRESHOLD + 1
    seeded = {sku: stock for sku, _n, _c, _p, stock, _d in PRODUCTS}
    untouched = set(seeded) - {"TEL-001", "CMP-001", "LOG-001"}
    assert {sku: stocks[sku] for sku in untouched} == {sku: seeded[sku] for sku in untouched}
    value = registry.get_sample_value
    assert value("shop_restocks_total", {"category": "optics"}) == 1
    assert value("shop_restocks_total", {"category": "navigation"}) == 1
    assert value("shop_restocked_units_total", {"category": "optics"}) == LEVEL - 3
    assert value("shop_restocked_units_total", {"category": "navigation"}) == LEVEL - THRESHOLD
    assert value("shop_restocks_total", {"category": "stationery"}) is None
    rounds = [s for s in spans.finished() if s.name == "shop.restock"]
    busy = [s for s in rounds if s.attributes["shop.restock.products"]]
    assert busy, [s.attributes for s in rounds]
    assert dict(busy[0].attributes) == {
        "shop.restock.threshold": THRESHOLD,
        "shop.restock.level": LEVEL,
        "shop.restock.products": 2,
        "shop.restock.units": (LEVEL - 3) + (LEVEL - THRESHOLD),
    }
    lines = [r for r in caplog.records if r.name == "lookout_demo.restock"]
    assert [(r.getMessage(), r.skus, r.units) for r in lines] == [  # type: ignore[attr-defined]
        (
            "restocked products at or below the low-stock threshold",
            "TEL-001,CMP-001",
            (LEVEL - 3) + (LEVEL - THRESHOLD),
        )
    ]
    assert shop.get("/api/products/1").json()["stock"] == LEVEL


@pytest.mark.integration
def test_restock_waits_for_a_checkout_on_the_same_row_and_keeps_its_decrement(
    postgres_url: str, make_shop: ShopFactory, registry: CollectorRegistry
) -> None:
    """A restock that meets an uncommitted stock decrement waits for it and counts from it."""
    shop = make_shop(database_url=postgres_url, restock_interval_seconds=0)
    restocker = shop.app.state.restocker  # type: ignore[attr-defined]
    _sql(postgres_url, "UPDATE products SET stock = 5 WHERE sku = 'GPS-001'")

    async def race() -> list[Any]:
        checkout = await asyncpg.connect(postgres_url)
        try:
            async with checkout.transaction():
                # The checkout's conditional decrement (routes/checkout.py), not yet committed.
                await checkout.execute(
                    "UPDATE products SET stock = stock - 2 WHERE sku = 'GPS-001' AND stock >= 2"
                )
                restock = asyncio.ensure_future(
                    asyncio.wrap_future(
                        asyncio.run_coroutine_threadsafe(restocker.restock(), shop_loop)
                    )
                )
                await asyncio.sleep(0.5)
                assert not restock.done(), "the restock did not wait for the checkout's row lock"
            return list(await restock)
        finally:
            await checkout.close()

    shop_loop = shop.portal.call(asyncio.get_running_loop)  # type: ignore[union-attr]
    restocked = asyncio.run(race())
    assert [(r.sku, r.before, r.after) for r in restocked] == [("GPS-001", 3, LEVEL)]
    assert _stocks(postgres_url)["GPS-001"] == LEVEL
    assert registry.get_sample_value("shop_restocked_units_total", {"category": "navigation"}) == (
        LEVEL - 3
    )


@pytest.mark.integration
def test_two_replicas_restock_a_product_once(
    postgres_url: str, make_shop: ShopFactory, registry: CollectorRegistry
) -> None:
    """Two shops restocking at the same moment restock each low product exactly once."""
    first = make_shop(database_url=postgres_url, restock_interval_seconds=0)
    other_registry = CollectorRegistry()
    second = make_shop(other_registry, database_url=postgres_url, restock_interval_seconds=0)
    _sql(postgres_url, "UPDATE products SET stock = 1 WHERE sku IN ('TEN-001', 'BAG-001')")
    loops = [c.portal.call(asyncio.get_running_loop) for c in (first, second)]  # type: ignore[union-attr]
    futures = [
        asyncio.run_coroutine_threadsafe(c.app.state.restocker.restock(), loop)  # type: ignore[attr-defined]
        for c, loop in zip((first, second), loops, strict=True)
    ]
    results = [future.result(timeout=15) for future in futures]
    assert sorted(r.sku for result in results for r in result) == ["BAG-001", "TEN-001"]
    total = sum(
        reg.get_sample_value("shop_restocks_total", {"category": "outdoor"}) or 0
        for reg in (registry, other_registry)
    )
    assert total == 2
    stocks = _stocks(postgres_url)
    assert (stocks["TEN-001"], stocks["BAG-001"]) == (LEVEL, LEVEL)


def test_interval_zero_turns_restocking_off(make_shop: ShopFactory) -> None:
    """With DEMO_RESTOCK_INTERVAL_SECONDS=0 no restock task runs and stock stays put."""
    shop = make_shop(restock_interval_seconds=0)
    tasks = shop.app.state.tasks  # type: ignore[attr-defined]
    assert "restock" not in {task.get_name() for task in tasks.tasks}
    assert "outbox-worker" in {task.get_name() for task in tasks.tasks}
    on = make_shop(CollectorRegistry(), restock_interval_seconds=300)
    assert "restock" in {t.get_name() for t in on.app.state.tasks.tasks}  # type: ignore[attr-defined]


def test_restock_settings_are_validated_by_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A level not above the threshold, or a negative interval, names its variable."""
    monkeypatch.setenv("DEMO_LOW_STOCK_THRESHOLD", "20")
    monkeypatch.setenv("DEMO_RESTOCK_LEVEL", "20")
    above = r"DEMO_RESTOCK_LEVEL='20': .*above DEMO_LOW_STOCK_THRESHOLD"
    with pytest.raises(SettingsError, match=above):
        load_settings(ShopSettings)
    monkeypatch.setenv("DEMO_RESTOCK_LEVEL", "21")
    monkeypatch.setenv("DEMO_RESTOCK_INTERVAL_SECONDS", "-1")
    with pytest.raises(SettingsError, match=r"DEMO_RESTOCK_INTERVAL_SECONDS='-1'"):
        load_settings(ShopSettings)
    monkeypatch.setenv("DEMO_RESTOCK_INTERVAL_SECONDS", "0")
    assert load_settings(ShopSettings).restock_interval_seconds == 0


def test_seeded_stock_starts_above_the_threshold() -> None:
    """Every seeded product starts above the default threshold, so a fresh shop is not low."""
    defaults = ShopSettings()
    assert defaults.restock_level > defaults.low_stock_threshold
    low = [sku for sku, _n, _c, _p, stock, _d in PRODUCTS if stock <= defaults.low_stock_threshold]
    assert low == []
