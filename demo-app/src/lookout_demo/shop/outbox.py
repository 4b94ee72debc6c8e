"""The outbox: order events written in the order's transaction, delivered by a worker.

``enqueue()`` adds a message inside the caller's transaction, so an event exists exactly
when the change it reports was committed. ``OutboxWorker.run()`` (a supervised background
task) delivers due messages in id order: an ``order_paid`` event becomes a confirmation
e-mail through SMTP (``DEMO_SMTP_URL``), or a log line when no relay is configured. A
failure is retried after ``DEMO_OUTBOX_RETRY_SECONDS``, doubling per attempt (at most an
hour). On Postgres, ``FOR UPDATE SKIP LOCKED`` lets several replicas share the work; each
round also refreshes ``outbox_pending_messages`` and ``outbox_oldest_pending_age_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from lookout_demo.shop.models import OutboxMessage
from lookout_demo.storage.database import Database
from lookout_demo.telemetry.metrics import OutboxMetrics

__all__ = ["Mailer", "OutboxWorker", "enqueue"]

log = logging.getLogger("lookout_demo.outbox")

#: Topics the worker knows (a bounded label on the delivery counter).
TOPICS = frozenset({"order_paid"})
_MAX_RETRY = timedelta(hours=1)


def enqueue(session: AsyncSession, topic: str, payload: dict[str, Any]) -> None:
    """Add a message to the caller's transaction (committed, or not, with it)."""
    if topic not in TOPICS:
        msg = f"outbox topic {topic!r} is not one of {sorted(TOPICS)}"
        raise ValueError(msg)
    now = datetime.now(UTC)
    session.add(
        OutboxMessage(
            topic=topic,
            payload=json.dumps(payload, sort_keys=True),
            created_at=now,
            next_attempt_at=now,
            attempts=0,
        )
    )


class Mailer:
    """Send order confirmations through an SMTP relay, or to the log when there is none."""

    def __init__(self, smtp_url: str | None, *, sender: str, timeout_seconds: float = 5.0) -> None:
        self.sender = sender
        self.timeout_seconds = timeout_seconds
        self.host: str | None = None
        self.port = 25
        if smtp_url:
            parts = urlsplit(smtp_url)
            if parts.scheme != "smtp" or not parts.hostname:
                msg = f"DEMO_SMTP_URL={smtp_url!r}: use smtp://host:port"
                raise ValueError(msg)
            self.host, self.port = parts.hostname, parts.port or 25

    def _send(self, message: EmailMessage) -> None:
        assert self.host is not None  # noqa: S101 - checked by the caller
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
            smtp.send_message(message)

    async def order_confirmation(self, payload: dict[str, Any]) -> None:
        """Send the confirmation of a paid order."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = str(payload["email"])
        message["Subject"] = f"Your order {payload['order_id']} is confirmed"
        message.set_content(
            f"Thank you for your order {payload['order_id']}: "
            f"{payload['total_cents'] / 100:.2f} USD, {payload['items']} item(s)."
        )
        if self.host is None:
            log.info(
                "order confirmation (no SMTP relay configured: logged only)",
                extra={"order_id": payload["order_id"]},
            )
            return
        await asyncio.to_thread(self._send, message)


class OutboxWorker:
    """Deliver due outbox messages in rounds; keep the outbox gauges current."""

    def __init__(
        self,
        db: Database,
        mailer: Mailer,
        *,
        metrics: OutboxMetrics | None,
        poll_seconds: float,
        batch_size: int,
        retry_seconds: float,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.retry_seconds = retry_seconds
        self.handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "order_paid": mailer.order_confirmation
        }
        self.delivered = 0
        self.rounds = 0

    async def run(self) -> None:
        """Deliver forever; a failed round is logged and the next one goes on."""
        while True:
            try:
                await self.deliver_due()
            except Exception:  # the database may be away: log, wait, try again
                log.warning("outbox round failed; retrying next round", exc_info=True)
            await asyncio.sleep(self.poll_seconds)

    async def deliver_due(self) -> int:
        """Deliver the messages that are due now; return how many were delivered."""
        now = datetime.now(UTC)
        delivered = 0
        async with self.db.session() as session:
            query = (
                select(OutboxMessage)
                .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.id)
                .limit(self.batch_size)
            )
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            for message in (await session.execute(query)).scalars():
                if await self._deliver(message):
                    delivered += 1
            await session.commit()
        self.delivered += delivered
        await self.refresh_gauges()
        self.rounds += 1
        return delivered

    async def _deliver(self, message: OutboxMessage) -> bool:
        """Deliver one message; on failure schedule its retry. Return whether it went."""
        outcome = "delivered"
        try:
            await self.handlers[message.topic](json.loads(message.payload))
        except Exception as exc:  # a failed delivery is retried, never lost
            outcome = "failed"
            message.attempts += 1
            delay = min(
                timedelta(seconds=self.retry_seconds * 2 ** (message.attempts - 1)), _MAX_RETRY
            )
            message.next_attempt_at = datetime.now(UTC) + delay
            message.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning(
                "outbox delivery failed; will retry",
                extra={
                    "outbox_id": message.id,
                    "topic": message.topic,
                    "attempts": message.attempts,
                    "retry_in_seconds": delay.total_seconds(),
                    "error": message.last_error,
                },
            )
        else:
            message.attempts += 1
            message.delivered_at = datetime.now(UTC)
        if self.metrics is not None:
            self.metrics.deliveries.labels(message.topic, outcome).inc()
        return outcome == "delivered"

    async def refresh_gauges(self) -> tuple[int, float]:
        """Recompute the backlog gauges; return (pending messages, oldest age in seconds)."""
        async with self.db.session() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(OutboxMessage.created_at)).where(
                        OutboxMessage.delivered_at.is_(None)
                    )
                )
            ).one()
        age = 0.0
        if oldest is not None:
            if oldest.tzinfo is None:  # SQLite returns naive UTC
                oldest = oldest.replace(tzinfo=UTC)
            age = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        if self.metrics is not None:
            self.metrics.depth.set(count)
            self.metrics.oldest_age.set(age)
        return int(count), age
