"""The catalog as a versioned API: ``/api/v1/products`` (deprecated) and ``/api/v2/products``.

v1 answers with its old shape (price in dollars, an ``in_stock`` flag) and marks itself
deprecated the standard way: ``Deprecation`` (RFC 9745, the date it was deprecated),
``Sunset`` (RFC 8594, the date it goes away) and a ``Link`` to its successor. v2 wraps the
list in a page (``items``, ``next_offset``). Both count into ``api_version_requests_total``
so a dashboard shows who still calls v1 before the sunset.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from lookout_demo.shop.deps import State
from lookout_demo.shop.models import Product
from lookout_demo.shop.routes.catalog import ProductOut
from lookout_demo.storage.cache import read_through

__all__ = ["V1_DEPRECATED_AT", "V1_SUNSET_AT", "router"]

router = APIRouter(tags=["catalog"])

#: When v1 was deprecated, and when it will stop answering.
V1_DEPRECATED_AT = datetime(2026, 9, 1, tzinfo=UTC)
V1_SUNSET_AT = datetime(2027, 3, 1, tzinfo=UTC)
_V1_HEADERS = {
    "Deprecation": f"@{int(V1_DEPRECATED_AT.timestamp())}",
    "Sunset": format_datetime(V1_SUNSET_AT, usegmt=True),
    "Link": '</api/v2/products>; rel="successor-version"',
}

Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=10_000)]


async def _products(state: State, limit: int, offset: int) -> list[dict[str, Any]]:
    """Return a page of products (read through the catalog cache)."""

    async def load() -> str:
        query = select(Product).order_by(Product.id).limit(limit).offset(offset)
        async with state.db.session() as session:
            rows = (await session.execute(query)).scalars().all()
        return json.dumps([ProductOut.model_validate(p).model_dump() for p in rows])

    payload = await read_through(
        state.cache,
        state.metrics.cache if state.metrics else None,
        name="catalog",
        key=f"catalog:list:*:{limit}:{offset}",
        ttl_seconds=state.settings.catalog_cache_ttl_seconds,
        loader=load,
    )
    products: list[dict[str, Any]] = json.loads(payload)
    return products


def _count(state: State, version: str, *, deprecated: bool) -> None:
    if state.metrics is not None:
        state.metrics.api_versions.requests.labels(version, str(deprecated).lower()).inc()


@router.get("/api/v1/products", deprecated=True)
async def list_products_v1(state: State, limit: Limit = 20, offset: Offset = 0) -> Response:
    """List products in the v1 shape (deprecated: use /api/v2/products)."""
    _count(state, "v1", deprecated=True)
    items = [
        {
            "id": p["id"],
            "sku": p["sku"],
            "name": p["name"],
            "category": p["category"],
            "price": p["price_cents"] / 100,
            "in_stock": p["stock"] > 0,
        }
        for p in await _products(state, limit, offset)
    ]
    return Response(json.dumps(items), media_type="application/json", headers=_V1_HEADERS)


@router.get("/api/v2/products")
async def list_products_v2(state: State, limit: Limit = 20, offset: Offset = 0) -> Response:
    """List a page of products: items, and the offset of the next page (null at the end)."""
    _count(state, "v2", deprecated=False)
    items = await _products(state, limit, offset)
    body = {
        "items": items,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(items) == limit else None,
    }
    return Response(json.dumps(body), media_type="application/json")
