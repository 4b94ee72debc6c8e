"""Cart routes: create a cart, show it, add and remove products."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from lookout_demo.shop.deps import State
from lookout_demo.shop.models import Cart, CartItem, Product
from lookout_demo.web.deps import DbSession
from lookout_demo.web.errors import ApiError

__all__ = ["CartOut", "load_cart", "router"]

router = APIRouter(prefix="/api/carts", tags=["carts"])

MAX_QUANTITY = 100


class CartLine(BaseModel):
    """One product in a cart, with its current price."""

    product_id: int
    name: str
    quantity: int
    unit_price_cents: int


class CartOut(BaseModel):
    """A cart and its total."""

    id: str
    items: list[CartLine]
    total_cents: int


class AddItem(BaseModel):
    """A product to add to a cart."""

    product_id: int = Field(gt=0)
    quantity: int = Field(default=1, gt=0, le=MAX_QUANTITY)


async def load_cart(session: DbSession, cart_id: str) -> Cart:
    """Return a cart or raise 404."""
    cart = await session.get(Cart, cart_id)
    if cart is None:
        raise ApiError(404, "cart_not_found", f"cart {cart_id!r} does not exist")
    return cart


async def _render(session: DbSession, cart: Cart) -> CartOut:
    ids = [item.product_id for item in cart.items]
    products = {
        p.id: p
        for p in (await session.execute(select(Product).where(Product.id.in_(ids)))).scalars()
    }
    lines = [
        CartLine(
            product_id=item.product_id,
            name=products[item.product_id].name,
            quantity=item.quantity,
            unit_price_cents=products[item.product_id].price_cents,
        )
        for item in sorted(cart.items, key=lambda i: i.product_id)
    ]
    return CartOut(
        id=cart.id,
        items=lines,
        total_cents=sum(line.quantity * line.unit_price_cents for line in lines),
    )


@router.post("", status_code=201)
async def create_cart(session: DbSession) -> CartOut:
    """Create an empty cart."""
    cart = Cart(items=[])
    session.add(cart)
    await session.commit()
    return CartOut(id=cart.id, items=[], total_cents=0)


@router.get("/{cart_id}")
async def show_cart(cart_id: str, session: DbSession) -> CartOut:
    """Show a cart."""
    return await _render(session, await load_cart(session, cart_id))


@router.post("/{cart_id}/items")
async def add_item(cart_id: str, body: AddItem, session: DbSession, state: State) -> CartOut:
    """Add a quantity of a product to a cart (checked against stock)."""
    cart = await load_cart(session, cart_id)
    product = await session.get(Product, body.product_id)
    if product is None:
        raise ApiError(404, "product_not_found", f"product {body.product_id} does not exist")
    line = next((i for i in cart.items if i.product_id == body.product_id), None)
    wanted = body.quantity + (line.quantity if line else 0)
    if wanted > MAX_QUANTITY:
        raise ApiError(422, "quantity_too_large", f"at most {MAX_QUANTITY} of one product per cart")
    if wanted > product.stock:
        raise ApiError(
            409,
            "insufficient_stock",
            f"only {product.stock} of product {product.id} left, {wanted} wanted",
        )
    if line is None:
        cart.items.append(CartItem(product_id=product.id, quantity=body.quantity))
    else:
        line.quantity = wanted
    await session.commit()
    if state.metrics is not None:
        state.metrics.business.cart_additions.inc(body.quantity)
    return await _render(session, cart)


@router.delete("/{cart_id}/items/{product_id}", status_code=204)
async def remove_item(cart_id: str, product_id: int, session: DbSession) -> Response:
    """Remove a product from a cart."""
    cart = await load_cart(session, cart_id)
    line = next((i for i in cart.items if i.product_id == product_id), None)
    if line is None:
        raise ApiError(404, "item_not_found", f"product {product_id} is not in cart {cart_id!r}")
    cart.items.remove(line)
    await session.commit()
    return Response(status_code=204)
