"""Delivery workers: claim due deliveries, send them, record the outcome.

Retries use exponential backoff with full jitter, unless the target asked for a delay
(429/503 Retry-After), which is honoured (capped). Each target has a circuit breaker: after
``breaker_failure_threshold`` consecutive failures it opens for ``breaker_cooldown_seconds``,
during which its deliveries wait without spending attempts; then one trial goes through.
A permanent failure, or ``max_attempts`` transient ones, moves the delivery to the dead
letters. Each delivery is independent: one target failing never makes Alertmanager resend,
and never re-sends to the targets that already have it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, Status, StatusCode

from webhook_relay import __version__
from webhook_relay.accept import Batcher
from webhook_relay.errors import (
    DeliveryError,
    PermanentDeliveryError,
    StoreUnavailableError,
    TransientDeliveryError,
)
from webhook_relay.metrics import RelayMetrics, exemplar
from webhook_relay.payload import Notification
from webhook_relay.routing import Routing
from webhook_relay.settings import Settings
from webhook_relay.store import ClaimedDelivery, Finish, Store
from webhook_relay.targets import DeliveryContext
from webhook_relay.telemetry import PROPAGATOR, tracer
from webhook_relay.templating import render_message

__all__ = ["CircuitBreaker", "DeliveryThread", "Dispatcher", "backoff_delay"]

log = logging.getLogger("webhook_relay.delivery")


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Return the wait before attempt ``attempt + 1``: full jitter over base * 2**attempt."""
    ceiling = min(cap, base * (2 ** min(attempt, 32)))
    return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass
class CircuitBreaker:
    """Consecutive-failure breaker for one target (closed, open, half-open)."""

    threshold: int
    cooldown: float
    failures: int = 0
    open_until: float = 0.0
    trial_running: bool = False
    #: A target's Retry-After holds every delivery to it (not just the refused one) until then.
    paused_until: float = 0.0

    def pause(self, until: float) -> None:
        """Hold calls until ``until`` (the target asked for it with Retry-After)."""
        self.paused_until = max(self.paused_until, until)

    def allow(self, now: float) -> float | None:
        """Return None if a call may go now, else the time the breaker allows one."""
        if now < self.paused_until:
            return self.paused_until
        if self.failures < self.threshold:
            return None
        if now < self.open_until:
            return self.open_until
        if self.trial_running:
            return now + min(self.cooldown, 1.0)
        self.trial_running = True  # half-open: one trial
        return None

    def success(self) -> None:
        """Close the breaker."""
        self.failures = 0
        self.trial_running = False

    def failure(self, now: float) -> None:
        """Count a failure; open (again) once the threshold is reached."""
        self.failures += 1
        self.trial_running = False
        if self.failures >= self.threshold:
            self.open_until = now + self.cooldown

    @property
    def is_open(self) -> bool:
        """Return whether calls are currently being held back."""
        return self.failures >= self.threshold and time.time() < self.open_until


class _StoreState:
    """The store's target-state table, seen through the targets' async StateStore protocol."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, target: str, key: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.store.get_state, target, key)

    async def put(self, target: str, key: str, value: dict[str, Any]) -> None:
        await asyncio.to_thread(self.store.put_state, target, key, value)


@dataclass
class Dispatcher:
    """Runs up to ``settings.workers`` deliveries at once until stopped."""

    store: Store
    routing: Routing
    settings: Settings
    metrics: RelayMetrics
    http: httpx.AsyncClient
    owner: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    _tasks: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    _stopping: bool = False
    _finisher: Batcher[Finish, bool] | None = None

    async def _finish(self, outcome: Finish) -> bool:
        """Record an outcome through the batcher (one transaction for many deliveries)."""
        if self._finisher is None:
            return (await asyncio.to_thread(self.store.finish_many, [outcome]))[0]
        return await self._finisher.submit(outcome)

    def breaker(self, target: str) -> CircuitBreaker:
        """Return (creating) the breaker of a target."""
        if target not in self.breakers:
            self.breakers[target] = CircuitBreaker(
                self.settings.breaker_failure_threshold, self.settings.breaker_cooldown_seconds
            )
        return self.breakers[target]

    async def run(self) -> None:
        """Claim and start deliveries until ``stop`` is called."""
        self._finisher = Batcher(self.store.finish_many, "relay-finisher")
        self._finisher.start()
        limit = self.settings.workers
        # Claim in batches: each claim is a write transaction, so with deliveries running,
        # wait until half the slots are free rather than claiming one slot at a time.
        batch = max(1, limit // 2)
        while not self._stopping:
            free = limit - len(self._tasks)
            claimed: list[ClaimedDelivery] = []
            if free >= batch or (free > 0 and not self._tasks):
                try:
                    claimed = await asyncio.to_thread(
                        self.store.claim, self.owner, free, self.settings.lease_seconds
                    )
                except StoreUnavailableError as error:
                    log.warning("claiming deliveries failed", extra={"error": str(error)})
                except Exception:
                    log.exception("claiming deliveries failed unexpectedly")
            for delivery in claimed:
                task = asyncio.create_task(self._deliver(delivery))
                self._tasks[delivery.id] = task
                task.add_done_callback(functools.partial(self._done, delivery.id))
            if claimed and len(claimed) == free:
                await asyncio.sleep(0)  # more may be due: claim again once a slot frees
                if len(self._tasks) >= limit:
                    await self._wait(self.settings.poll_interval_seconds)
                continue
            await self._wait(self.settings.poll_interval_seconds)

    def _done(self, key: int, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(key, None)
        self.wakeup.set()

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeup.wait(), seconds)
        self.wakeup.clear()

    async def stop(self, grace_seconds: float) -> None:
        """Stop claiming; let in-flight deliveries finish, then return the rest to the queue."""
        self._stopping = True
        self.wakeup.set()
        pending = list(self._tasks.values())
        if pending:
            _done, still = await asyncio.wait(pending, timeout=grace_seconds)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=2.0)
        if self._finisher is not None:
            await asyncio.to_thread(self._finisher.stop)
            self._finisher = None
        try:
            released = await asyncio.to_thread(self.store.release, self.owner)
        except StoreUnavailableError:
            released = 0  # their leases expire and another worker takes them
        if released:
            log.info("returned in-flight deliveries to the queue", extra={"count": released})

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        """Send one delivery and record its outcome."""
        parent = PROPAGATOR.extract(
            {"traceparent": delivery.traceparent} if delivery.traceparent else {}
        )
        token = otel_context.attach(parent)
        try:
            with tracer.start_as_current_span(
                "relay.deliver",
                kind=SpanKind.CLIENT,
                attributes={
                    "relay.target": delivery.target,
                    "relay.rule": delivery.rule,
                    "relay.delivery_id": delivery.id,
                    "relay.attempt": delivery.attempts + 1,
                },
            ) as span:
                try:
                    await self._attempt(delivery)
                except DeliveryError as error:
                    span.set_status(Status(StatusCode.ERROR, str(error)[:200]))
        finally:
            otel_context.detach(token)

    async def _attempt(self, delivery: ClaimedDelivery) -> None:
        target = self.routing.targets.get(delivery.target)
        now = time.time()
        if target is None:
            await self._record_failure(
                delivery,
                PermanentDeliveryError(
                    f"target {delivery.target!r} is no longer in the routing file",
                    reason="unknown_target",
                ),
            )
            raise PermanentDeliveryError("unknown target", reason="unknown_target")
        breaker = self.breaker(delivery.target)
        reopen = breaker.allow(now)
        if reopen is not None:
            reason = "circuit_open" if breaker.failures >= breaker.threshold else "paused"
            self.metrics.failed.labels(delivery.target, reason).inc()
            await self._finish(
                Finish(
                    delivery.id,
                    self.owner,
                    state="pending",
                    attempts=delivery.attempts,
                    next_attempt_at=reopen,
                    error=f"held back: {reason}",
                    reason=reason,
                )
            )
            return
        started = time.perf_counter()
        try:
            notification = Notification.model_validate_json(delivery.payload)
            message = render_message(
                notification, self.routing.templates_for(delivery.target, delivery.rule)
            )
            headers: dict[str, str] = {}
            PROPAGATOR.inject(headers)
            await target.deliver(
                DeliveryContext(
                    delivery_id=delivery.id,
                    notification=notification,
                    message=message,
                    http=self.http,
                    state=_StoreState(self.store),
                    timeout=self.settings.delivery_timeout_seconds,
                    headers=headers,
                )
            )
        except DeliveryError as error:
            self.metrics.delivery_duration.labels(delivery.target).observe(
                time.perf_counter() - started, exemplar()
            )
            if isinstance(error, TransientDeliveryError):
                breaker.failure(time.time())
            self.metrics.circuit_open.labels(delivery.target).set(1 if breaker.is_open else 0)
            await self._record_failure(delivery, error)
            raise
        except Exception as error:  # a bug in a target must not kill the worker
            log.exception("target raised unexpectedly", extra={"target": delivery.target})
            failure = TransientDeliveryError(f"{type(error).__name__}: {error}", reason="other")
            await self._record_failure(delivery, failure)
            raise failure from error
        elapsed = time.perf_counter() - started
        breaker.success()
        self.metrics.circuit_open.labels(delivery.target).set(0)
        self.metrics.delivery_duration.labels(delivery.target).observe(elapsed, exemplar())
        self.metrics.delivered.labels(delivery.target).inc()
        await self._finish(
            Finish(
                delivery.id,
                self.owner,
                state="delivered",
                attempts=delivery.attempts + 1,
                audit_kind="delivered",
            )
        )
        log.info(
            "delivered",
            extra={
                "target": delivery.target,
                "delivery_id": delivery.id,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )

    async def _record_failure(self, delivery: ClaimedDelivery, error: DeliveryError) -> None:
        attempts = delivery.attempts + 1
        self.metrics.failed.labels(delivery.target, error.reason).inc()
        transient = isinstance(error, TransientDeliveryError)
        if transient and attempts < self.settings.max_attempts:
            delay = backoff_delay(
                attempts - 1, self.settings.backoff_base_seconds, self.settings.backoff_max_seconds
            )
            retry_after = error.retry_after if isinstance(error, TransientDeliveryError) else None
            if retry_after is not None:
                delay = min(max(retry_after, 0.0), self.settings.retry_after_max_seconds)
                self.breaker(delivery.target).pause(time.time() + delay)
            self.metrics.retries.labels(delivery.target).inc()
            await self._finish(
                Finish(
                    delivery.id,
                    self.owner,
                    state="pending",
                    attempts=attempts,
                    next_attempt_at=time.time() + delay,
                    error=str(error)[:1000],
                    reason=error.reason,
                )
            )
            log.warning(
                "delivery failed; will retry",
                extra={
                    "target": delivery.target,
                    "delivery_id": delivery.id,
                    "attempt": attempts,
                    "reason": error.reason,
                    "retry_in_seconds": round(delay, 2),
                    "error": str(error)[:500],
                },
            )
            return
        self.metrics.dead_lettered.labels(delivery.target).inc()
        await self._finish(
            Finish(
                delivery.id,
                self.owner,
                state="dead",
                attempts=attempts,
                error=str(error)[:1000],
                reason=error.reason,
                audit_kind="dead_lettered",
            )
        )
        log.error(
            "delivery dead-lettered",
            extra={
                "target": delivery.target,
                "delivery_id": delivery.id,
                "attempt": attempts,
                "reason": error.reason,
                "error": str(error)[:500],
            },
        )


class DeliveryThread:
    """A Dispatcher on its own event loop and thread: deliveries never queue behind accepts.

    httpx costs the delivery path most of its CPU; on the web server's loop that work sat
    in front of every accept's response. On a loop of its own it only shares the GIL.
    """

    def __init__(
        self, store: Store, routing: Routing, settings: Settings, metrics: RelayMetrics
    ) -> None:
        self.store = store
        self.routing = routing
        self.settings = settings
        self.metrics = metrics
        self.dispatcher: Dispatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="relay-delivery", daemon=True)

    def start(self) -> None:
        """Start the thread and wait until its dispatcher runs."""
        self._thread.start()
        self._started.wait(30)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        limits = httpx.Limits(max_connections=max(10, self.settings.workers * 2))
        headers = {"User-Agent": f"lookout-webhook-relay/{__version__}"}
        async with httpx.AsyncClient(limits=limits, headers=headers) as http:
            self.dispatcher = Dispatcher(
                self.store, self.routing, self.settings, self.metrics, http
            )
            self._stopped = asyncio.Event()
            self._started.set()
            await self.dispatcher.run()
            await self._stopped.wait()  # keep the loop (and the client) until stop() is done

    async def _stop(self, grace_seconds: float) -> None:
        try:
            if self.dispatcher is not None:
                await self.dispatcher.stop(grace_seconds)
        finally:
            if self._stopped is not None:
                self._stopped.set()

    def wake(self) -> None:
        """Tell the dispatcher that new deliveries are due (from any thread)."""
        if self._loop is not None and self.dispatcher is not None:
            self._loop.call_soon_threadsafe(self.dispatcher.wakeup.set)

    def stop(self, grace_seconds: float) -> None:
        """Finish or return in-flight deliveries, then end the thread (blocking)."""
        if self._loop is None or self.dispatcher is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._stop(grace_seconds), self._loop)
        with contextlib.suppress(Exception):
            future.result(timeout=grace_seconds + 15)
        self._thread.join(timeout=15)
