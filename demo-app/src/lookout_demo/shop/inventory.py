"""Inventory gauges: stock per category, units held in open carts, low-stock products.

A supervised background task recomputes them every ``DEMO_INVENTORY_REFRESH_SECONDS`` with
three aggregate queries (cheap on the demo's catalog; a scrape never waits on the database).
Category labels come from an allow-list; any other category is counted as ``other``.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import case, func, select

from lookout_demo.shop.models import CartItem, Product
from lookout_demo.storage.database import Database
from lookout_demo.telemetry.metrics import InventoryMetrics

__all__ = ["CATEGORIES", "InventoryGauges", "category_label"]

log = logging.getLogger("lookout_demo.inventory")

#: The catalog's categories: the label values the inventory metrics may take, and "other".
CATEGORIES = frozenset({"optics", "outdoor", "navigation", "stationery"})


def category_label(category: str) -> str:
    """Return a category as a bounded label value."""
    return category if category in CATEGORIES else "other"


class InventoryGauges:
    """Recompute the inventory gauges from the database."""

    def __init__(
        self, db: Database, metrics: InventoryMetrics, *, low_stock_threshold: int
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.low_stock_threshold = low_stock_threshold

    async def refresh(self) -> None:
        """Query stock, low stock and reservations; set the gauges."""
        low = case((Product.stock <= self.low_stock_threshold, 1), else_=0)
        async with self.db.session() as session:
            per_category = (
                await session.execute(
                    select(Product.category, func.sum(Product.stock), func.sum(low)).group_by(
                        Product.category
                    )
                )
            ).all()
            reserved = (await session.execute(select(func.sum(CartItem.quantity)))).scalar()
        stock: dict[str, float] = dict.fromkeys([*CATEGORIES, "other"], 0.0)
        lows: dict[str, float] = dict.fromkeys([*CATEGORIES, "other"], 0.0)
        for category, units, low_count in per_category:
            label = category_label(category)
            stock[label] += float(units or 0)
            lows[label] += float(low_count or 0)
        for label, units in stock.items():
            self.metrics.stock.labels(label).set(units)
            self.metrics.low_stock.labels(label).set(lows[label])
        self.metrics.reserved.set(float(reserved or 0))

    async def run(self, interval_seconds: float) -> None:
        """Refresh forever; a failed refresh is logged and the next one goes on."""
        while True:
            try:
                await self.refresh()
            except Exception:  # the database may be away for a while
                log.warning("inventory refresh failed", exc_info=True)
            await asyncio.sleep(interval_seconds)
