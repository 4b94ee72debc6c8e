"""Authorisation and capture routes, with simulated processor latency and declines."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from lookout_demo.payments.models import PaymentRecord
from lookout_demo.settings import PaymentsSettings
from lookout_demo.telemetry.metrics import PaymentsServiceMetrics
from lookout_demo.web.deps import DbSession
from lookout_demo.web.errors import ApiError
from lookout_demo.web.faults import FaultSet

__all__ = ["DECLINED_TEST_CARD", "PaymentsState", "router"]

log = logging.getLogger("lookout_demo.payments")
router = APIRouter(prefix="/v1/authorizations", tags=["payments"])

#: A card that is always declined, like the processors' test cards.
DECLINED_TEST_CARD = "4000000000000002"
#: Largest single authorisation the simulated processor accepts, in cents.
AMOUNT_LIMIT_CENTS = 1_000_000


@dataclass
class PaymentsState:
    """What the payments handlers use."""

    settings: PaymentsSettings
    metrics: PaymentsServiceMetrics | None


def _state(request: Request) -> PaymentsState:
    state: PaymentsState = request.app.state.payments
    return state


State = Annotated[PaymentsState, Depends(_state)]


class AuthorizationIn(BaseModel):
    """An authorisation request from the shop."""

    order_id: str = Field(min_length=1, max_length=64)
    amount_cents: int = Field(gt=0)
    currency: Literal["USD", "EUR", "GBP"] = "USD"
    method: Literal["card", "paypal", "gift_card"]
    card_number: str | None = Field(default=None, pattern=r"^[0-9]{12,19}$")


class AuthorizationOut(BaseModel):
    """The processor's answer."""

    id: str
    order_id: str
    status: Literal["authorized", "declined", "captured"]
    decline_reason: str | None = None
    amount_cents: int
    method: str


def _out(record: PaymentRecord) -> AuthorizationOut:
    return AuthorizationOut(
        id=record.id,
        order_id=record.order_id,
        status=record.status,
        decline_reason=record.decline_reason,
        amount_cents=record.amount_cents,
        method=record.method,
    )


def _decline_reason(body: AuthorizationIn, failure_rate: float) -> str | None:
    if body.method == "card" and body.card_number is None:
        return "card_missing"
    if body.card_number == DECLINED_TEST_CARD:
        return "card_declined"
    if body.amount_cents > AMOUNT_LIMIT_CENTS:
        return "amount_limit"
    if failure_rate and random.random() < failure_rate:
        return "processor_declined"
    return None


@router.post("", status_code=201)
async def authorize(
    body: AuthorizationIn, request: Request, state: State, session: DbSession
) -> AuthorizationOut:
    """Authorise a payment; the same order id returns the first answer again."""
    existing = (
        await session.execute(select(PaymentRecord).where(PaymentRecord.order_id == body.order_id))
    ).scalar_one_or_none()
    if existing is not None:
        return _out(existing)
    settings = state.settings
    started = time.perf_counter()
    delay = settings.latency_ms + random.uniform(0, settings.latency_jitter_ms)
    await asyncio.sleep(delay / 1000)  # the simulated processor's round trip
    faults: FaultSet = request.app.state.faults
    rule = faults.for_route("/v1/authorizations")
    failure_rate = max(settings.failure_rate, rule.payment_failure_rate if rule else 0.0)
    reason = _decline_reason(body, failure_rate)
    record = PaymentRecord(
        order_id=body.order_id,
        amount_cents=body.amount_cents,
        currency=body.currency,
        method=body.method,
        card_last4=body.card_number[-4:] if body.card_number else None,
        status="declined" if reason else "authorized",
        decline_reason=reason,
    )
    session.add(record)
    await session.commit()
    if state.metrics is not None:
        state.metrics.payments.processing.labels("authorize").observe(time.perf_counter() - started)
        state.metrics.payments.payments.labels(
            "authorize", body.method, "declined" if reason else "approved"
        ).inc()
    log.info(
        "authorisation %s",
        record.status,
        extra={
            "payment_id": record.id,
            "order_id": record.order_id,
            "method": record.method,
            "decline_reason": reason,
            "amount_cents": record.amount_cents,
        },
    )
    return _out(record)


@router.post("/{payment_id}/capture")
async def capture(payment_id: str, state: State, session: DbSession) -> AuthorizationOut:
    """Capture an authorised payment (idempotent once captured)."""
    record = await session.get(PaymentRecord, payment_id)
    if record is None:
        raise ApiError(404, "payment_not_found", f"payment {payment_id!r} does not exist")
    if record.status == "captured":
        return _out(record)
    if record.status != "authorized":
        raise ApiError(
            409, "not_capturable", f"payment {payment_id!r} is {record.status}, not authorized"
        )
    record.status = "captured"
    await session.commit()
    if state.metrics is not None:
        state.metrics.payments.payments.labels("capture", record.method, "captured").inc()
        state.metrics.payments.amount.labels(record.method).inc(record.amount_cents / 100)
    return _out(record)


@router.get("/{payment_id}")
async def show(payment_id: str, session: DbSession) -> AuthorizationOut:
    """Show a payment."""
    record = await session.get(PaymentRecord, payment_id)
    if record is None:
        raise ApiError(404, "payment_not_found", f"payment {payment_id!r} does not exist")
    return _out(record)
