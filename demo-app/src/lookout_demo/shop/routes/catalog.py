"""Catalog routes: list products and show one, read through the cache."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from lookout_demo.shop.deps import State
from lookout_demo.shop.models import Product
from lookout_demo.storage.cache import read_through
from lookout_demo.web.errors import ApiError

__all__ = ["ProductOut", "router"]

router = APIRouter(prefix="/api/products", tags=["catalog"])


class ProductOut(BaseModel):
    """A product as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str
    name: str
    description: str
    category: str
    price_cents: int
    stock: int
    #: Checkout asks for an age verification when the cart holds such a product.
    age_restricted: bool = False


def _json(payload: str) -> Response:
    return Response(payload, media_type="application/json")


@router.get("", response_model=list[ProductOut])
async def list_products(
    state: State,
    category: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> Response:
    """List products, optionally of one category.

    Catalog reads open a database session only on a cache miss: a hit never waits for the
    connection pool, so the catalog stays up while the pool is saturated.
    """

    async def load() -> str:
        query = select(Product).order_by(Product.id).limit(limit).offset(offset)
        if category is not None:
            query = query.where(Product.category == category)
        async with state.db.session() as session:
            rows = (await session.execute(query)).scalars().all()
        return json.dumps([ProductOut.model_validate(p).model_dump() for p in rows])

    key = f"catalog:list:{category or '*'}:{limit}:{offset}"
    payload = await read_through(
        state.cache,
        state.metrics.cache if state.metrics else None,
        name="catalog",
        key=key,
        ttl_seconds=state.settings.catalog_cache_ttl_seconds,
        loader=load,
    )
    return _json(payload)


@router.get("/{product_id}", response_model=ProductOut)
async def get_product(product_id: int, state: State) -> Response:
    """Show one product."""

    async def load() -> str:
        async with state.db.session() as session:
            product = await session.get(Product, product_id)
        if product is None:
            raise ApiError(404, "product_not_found", f"product {product_id} does not exist")
        return ProductOut.model_validate(product).model_dump_json()

    payload = await read_through(
        state.cache,
        state.metrics.cache if state.metrics else None,
        name="catalog",
        key=f"catalog:product:{product_id}",
        ttl_seconds=state.settings.catalog_cache_ttl_seconds,
        loader=load,
    )
    return _json(payload)
