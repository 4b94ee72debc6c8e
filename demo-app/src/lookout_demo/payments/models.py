"""The payments service's table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "PaymentRecord"]


class Base(DeclarativeBase):
    """Declarative base of the payments schema."""


class PaymentRecord(Base):
    """One authorisation and its capture; only the card's last four digits are kept."""

    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: "pay_" + uuid.uuid4().hex
    )
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    decline_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=lambda: datetime.now(UTC)
    )
