"""Restocking: products that ran low are brought back up, as a shop's replenishment would.

A supervised background task (``Restocker.run()``) wakes every
``DEMO_RESTOCK_INTERVAL_SECONDS`` and, in one transaction, sets every product at or below
``DEMO_LOW_STOCK_THRESHOLD`` units back to ``DEMO_RESTOCK_LEVEL``. Each product is updated
only if its stock is still the value just read (a compare-and-set), so a checkout that
decrements the same row in between is never overwritten: that product waits for the next
round. On Postgres the rows are also locked (``FOR UPDATE``) for the transaction, so
several replicas never restock one product twice. Each round is a span
(``shop.restock``); each restocked product counts in ``shop_restocks_total{category}`` and
its units in ``shop_restocked_units_total{category}``, with one log line per round that
restocked anything.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import select, update

from lookout_demo.shop.inventory import category_label
from lookout_demo.shop.models import Product
from lookout_demo.storage.database import Database
from lookout_demo.telemetry.metrics import RestockMetrics

__all__ = ["Restocked", "Restocker"]

log = logging.getLogger("lookout_demo.restock")


@dataclass(frozen=True)
class Restocked:
    """One product brought back to the restock level."""

    sku: str
    category: str
    before: int
    after: int


class Restocker:
    """Bring low products back to the restock level, in rounds."""

    def __init__(
        self,
        db: Database,
        metrics: RestockMetrics | None,
        *,
        low_stock_threshold: int,
        restock_level: int,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        if restock_level <= low_stock_threshold:
            msg = (
                f"the restock level ({restock_level}) must be above the low-stock threshold "
                f"({low_stock_threshold})"
            )
            raise ValueError(msg)
        self.db = db
        self.metrics = metrics
        self.low_stock_threshold = low_stock_threshold
        self.restock_level = restock_level
        self.tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        self.rounds = 0

    async def restock(self) -> list[Restocked]:
        """Restock every product at or below the threshold; return what was restocked."""
        with self.tracer.start_as_current_span("shop.restock") as span:
            span.set_attribute("shop.restock.threshold", self.low_stock_threshold)
            span.set_attribute("shop.restock.level", self.restock_level)
            restocked: list[Restocked] = []
            async with self.db.session() as session:
                query = (
                    select(Product.id, Product.sku, Product.category, Product.stock)
                    .where(Product.stock <= self.low_stock_threshold)
                    .order_by(Product.id)
                )
                if not self.db.is_sqlite:
                    query = query.with_for_update()
                for product_id, sku, category, stock in (await session.execute(query)).all():
                    result = await session.execute(
                        update(Product)
                        .where(Product.id == product_id, Product.stock == stock)
                        .values(stock=self.restock_level)
                    )
                    if result.rowcount == 1:  # type: ignore[attr-defined]
                        restocked.append(Restocked(sku, category, stock, self.restock_level))
                await session.commit()
            units = sum(item.after - item.before for item in restocked)
            span.set_attribute("shop.restock.products", len(restocked))
            span.set_attribute("shop.restock.units", units)
        self.rounds += 1
        for item in restocked:
            if self.metrics is not None:
                label = category_label(item.category)
                self.metrics.restocks.labels(label).inc()
                self.metrics.units.labels(label).inc(item.after - item.before)
        if restocked:
            log.info(
                "restocked products at or below the low-stock threshold",
                extra={
                    "products": len(restocked),
                    "units": units,
                    "skus": ",".join(item.sku for item in restocked),
                    "restock_level": self.restock_level,
                },
            )
        return restocked

    async def run(self, interval_seconds: float) -> None:
        """Restock every ``interval_seconds``, forever; a failed round is logged, not fatal."""
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.restock()
            except Exception:  # the database may be away: log, wait, try again
                log.warning("restock round failed; retrying next round", exc_info=True)
