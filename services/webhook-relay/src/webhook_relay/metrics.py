"""The relay's Prometheus metrics, created on an injectable registry.

Labels are bounded: ``target`` is a name from the routing file, ``reason`` and
``outcome`` are fixed vocabularies, ``state`` is pending|inflight|dead.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from webhook_relay import __version__

__all__ = ["RelayMetrics", "exemplar"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_ACCEPT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass
class RelayMetrics:
    """Every metric the relay exports."""

    received: Counter
    deduplicated: Counter
    delivered: Counter
    failed: Counter
    retries: Counter
    dead_lettered: Counter
    queue_depth: Gauge
    queue_oldest_age: Gauge
    delivery_duration: Histogram
    accept_duration: Histogram
    circuit_open: Gauge
    build_info: Info

    @classmethod
    def create(cls, registry: CollectorRegistry) -> RelayMetrics:
        """Create the metrics on ``registry``."""
        metrics = cls(
            received=Counter(
                "relay_notifications_received",
                "Webhook requests received, by outcome (accepted, duplicate, invalid, "
                "unauthorized, too_large, unavailable).",
                ["outcome"],
                registry=registry,
            ),
            deduplicated=Counter(
                "relay_notifications_deduplicated",
                "Notifications acknowledged, not delivered: key seen within the window.",
                registry=registry,
            ),
            delivered=Counter(
                "relay_deliveries_delivered",
                "Deliveries a target accepted.",
                ["target"],
                registry=registry,
            ),
            failed=Counter(
                "relay_delivery_failures",
                "Failed delivery attempts, by target and reason.",
                ["target", "reason"],
                registry=registry,
            ),
            retries=Counter(
                "relay_delivery_retries",
                "Delivery attempts scheduled again after a failure.",
                ["target"],
                registry=registry,
            ),
            dead_lettered=Counter(
                "relay_dead_letters",
                "Deliveries dead-lettered (permanent failure or attempts exhausted).",
                ["target"],
                registry=registry,
            ),
            queue_depth=Gauge(
                "relay_queue_depth",
                "Deliveries in the store, by target and state.",
                ["target", "state"],
                registry=registry,
            ),
            queue_oldest_age=Gauge(
                "relay_queue_oldest_age_seconds",
                "Age of the oldest pending or inflight delivery, by target (0 when none).",
                ["target"],
                registry=registry,
            ),
            delivery_duration=Histogram(
                "relay_delivery_duration_seconds",
                "Duration of one delivery attempt to a target.",
                ["target"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            accept_duration=Histogram(
                "relay_accept_duration_seconds",
                "Time from request to durable commit for accepted webhooks.",
                buckets=_ACCEPT_BUCKETS,
                registry=registry,
            ),
            circuit_open=Gauge(
                "relay_circuit_open",
                "1 while a target's circuit breaker is open.",
                ["target"],
                registry=registry,
            ),
            build_info=Info("relay_build", "Version of the relay.", registry=registry),
        )
        metrics.build_info.info({"version": __version__})
        return metrics


def exemplar() -> dict[str, str] | None:
    """Return the current trace id as an exemplar, when a sampled span is active."""
    from opentelemetry import trace  # noqa: PLC0415

    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {"trace_id": format(context.trace_id, "032x")}
