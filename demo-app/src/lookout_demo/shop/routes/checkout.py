"""Checkout and orders: reserve stock, take payment through the payments service."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import delete, select, update

from lookout_demo.shop import experiments
from lookout_demo.shop.deps import CurrentUser, State
from lookout_demo.shop.models import CartItem, Order, OrderItem, Product
from lookout_demo.shop.outbox import enqueue
from lookout_demo.shop.payments_client import PaymentsUnavailableError
from lookout_demo.shop.routes.carts import load_cart
from lookout_demo.web.deps import DbSession
from lookout_demo.web.errors import ApiError

__all__ = ["OrderOut", "router"]

router = APIRouter(tags=["checkout"])
log = logging.getLogger("lookout_demo.orders")


class Payment(BaseModel):
    """How the customer pays."""

    method: Literal["card", "paypal", "gift_card"]
    card_number: str | None = Field(default=None, pattern=r"^[0-9 -]{12,23}$")

    @model_validator(mode="after")
    def _card_needs_number(self) -> Payment:
        if self.method == "card" and not self.card_number:
            msg = "card_number is required when method is 'card'"
            raise ValueError(msg)
        return self


class AgeVerification(BaseModel):
    """Proof of age, required when the cart holds an age-restricted product."""

    method: Literal["id_document", "credit_check", "self_declared"]
    date_of_birth: date


class CheckoutIn(BaseModel):
    """A checkout request."""

    cart_id: str = Field(min_length=1, max_length=64)
    payment: Payment
    age_verification: AgeVerification | None = None


#: Age from which age-restricted products may be sold.
MINIMUM_AGE = 18


def _age(born: date, today: date) -> int:
    """Return the age in whole years on ``today`` of someone born on ``born``."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _verify_age(state: State, body: CheckoutIn, restricted: list[Product]) -> None:
    """Refuse the checkout unless an age verification passes; count the outcome."""
    metrics = state.metrics.compliance if state.metrics is not None else None
    proof = body.age_verification
    if proof is None:
        if metrics is not None:
            metrics.restricted_checkouts.labels("missing").inc()
        raise ApiError(
            403,
            "age_verification_required",
            "the cart holds age-restricted products "
            f"({', '.join(sorted(p.sku for p in restricted))}): send age_verification "
            "with a method and date_of_birth",
        )
    passed = _age(proof.date_of_birth, datetime.now(UTC).date()) >= MINIMUM_AGE
    outcome = "passed" if passed else "failed"
    if metrics is not None:
        metrics.verifications.labels(proof.method, outcome).inc()
        metrics.restricted_checkouts.labels(outcome).inc()
    log.info("age verification", extra={"method": proof.method, "outcome": outcome})
    if not passed:
        raise ApiError(
            403,
            "age_verification_failed",
            f"age-restricted products are sold from age {MINIMUM_AGE} only",
        )


class OrderLine(BaseModel):
    """A line of an order."""

    product_id: int
    quantity: int
    unit_price_cents: int


class OrderOut(BaseModel):
    """An order as the API shows it."""

    id: str
    status: str
    total_cents: int
    payment_method: str
    created_at: datetime
    items: list[OrderLine]


def _out(order: Order) -> OrderOut:
    return OrderOut(
        id=order.id,
        status=order.status,
        total_cents=order.total_cents,
        payment_method=order.payment_method,
        created_at=order.created_at,
        items=[
            OrderLine(
                product_id=i.product_id, quantity=i.quantity, unit_price_cents=i.unit_price_cents
            )
            for i in order.items
        ],
    )


@router.post("/api/checkout", status_code=201)
async def checkout(
    body: CheckoutIn, user: CurrentUser, session: DbSession, state: State
) -> OrderOut:
    """Turn a cart into a paid order, or say why it could not be paid."""
    cart = await load_cart(session, body.cart_id)
    if not cart.items:
        raise ApiError(409, "cart_empty", f"cart {cart.id!r} has no items to check out")
    ids = [item.product_id for item in cart.items]
    products = {
        p.id: p
        for p in (await session.execute(select(Product).where(Product.id.in_(ids)))).scalars()
    }
    restricted = [p for p in products.values() if p.age_restricted]
    if restricted:
        _verify_age(state, body, restricted)
    # Reserve stock and write the order in one transaction: a conditional decrement per
    # line, so two checkouts can never oversell and nothing is half-written on failure.
    lines = [(item.product_id, item.quantity) for item in cart.items]
    for product_id, quantity in lines:
        reserved = await session.execute(
            update(Product)
            .where(Product.id == product_id, Product.stock >= quantity)
            .values(stock=Product.stock - quantity)
        )
        if reserved.rowcount != 1:  # type: ignore[attr-defined]
            await session.rollback()
            raise ApiError(
                409,
                "insufficient_stock",
                f"product {product_id} no longer has {quantity} in stock",
            )
    order = Order(
        user_id=user.id,
        status="pending",
        payment_method=body.payment.method,
        total_cents=sum(products[pid].price_cents * quantity for pid, quantity in lines),
        items=[
            OrderItem(product_id=pid, quantity=quantity, unit_price_cents=products[pid].price_cents)
            for pid, quantity in lines
        ],
    )
    session.add(order)
    await session.commit()

    card = body.payment.card_number
    digits = "".join(ch for ch in card if ch.isdigit()) if card else None
    try:
        auth = await state.payments.authorize(
            order_id=order.id,
            amount_cents=order.total_cents,
            method=body.payment.method,
            card_number=digits,
        )
        if auth.status == "authorized":
            await state.payments.capture(auth.id)
    except PaymentsUnavailableError as exc:
        await _fail(session, state, order, "payment_error")
        log.error("payment service failed", extra={"order_id": order.id, "error": str(exc)})
        raise ApiError(
            502,
            "payments_unavailable",
            "the payments service did not answer; the order was not charged, try again",
            order_id=order.id,
        ) from exc
    if auth.status != "authorized":
        await _fail(session, state, order, "payment_declined")
        log.info(
            "payment declined",
            extra={"order_id": order.id, "decline_reason": auth.decline_reason},
        )
        raise ApiError(
            402,
            "payment_declined",
            f"the payment was declined ({auth.decline_reason or 'no reason given'})",
            order_id=order.id,
        )
    order.status = "paid"
    order.payment_id = auth.id
    await session.execute(delete(CartItem).where(CartItem.cart_id == cart.id))
    # The confirmation is queued in the transaction that marks the order paid: it is sent
    # exactly when the payment is recorded, even if this process dies right after.
    if state.flags.enabled("order_confirmation_email", True, user_id=str(user.id)):
        enqueue(
            session,
            "order_paid",
            {
                "order_id": order.id,
                "email": user.email,
                "total_cents": order.total_cents,
                "items": sum(line.quantity for line in order.items),
            },
        )
    await session.commit()
    if state.metrics is not None:
        business = state.metrics.business
        business.orders.labels("paid").inc()
        business.order_value.observe(order.total_cents / 100)
        business.revenue.inc(order.total_cents / 100)
        for line in order.items:
            business.items_sold.labels(products[line.product_id].category).inc(line.quantity)
        for name, variant in experiments.assignments(str(user.id)).items():
            state.metrics.experiments.conversions.labels(name, variant).inc()
    log.info(
        "order paid",
        extra={"order_id": order.id, "total_cents": order.total_cents, "items": len(order.items)},
    )
    return _out(order)


async def _fail(session: DbSession, state: State, order: Order, status: str) -> None:
    """Mark an order failed and give its reserved stock back, in one transaction."""
    for item in order.items:
        await session.execute(
            update(Product)
            .where(Product.id == item.product_id)
            .values(stock=Product.stock + item.quantity)
        )
    order.status = status
    await session.commit()
    if state.metrics is not None:
        state.metrics.business.orders.labels(status).inc()


@router.get("/api/orders/{order_id}")
async def get_order(order_id: str, user: CurrentUser, session: DbSession) -> OrderOut:
    """Show one of the logged-in user's orders."""
    order = await session.get(Order, order_id)
    if order is None or order.user_id != user.id:
        raise ApiError(404, "order_not_found", f"order {order_id!r} does not exist")
    return _out(order)
