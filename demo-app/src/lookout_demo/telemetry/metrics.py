"""Prometheus metrics of both services, and the /metrics exposition.

Every metric family takes ``registry=`` so each test builds a fresh ``CollectorRegistry``.
Label values are bounded: route templates (``/api/products/{product_id}``, or ``unmatched``
for a 404), SQL operations, fixed enumerations of statuses, reasons and methods.

Several uvicorn workers: when ``PROMETHEUS_MULTIPROC_DIR`` is set (``lookout-demo serve
--workers N`` sets it), prometheus-client writes each worker's values to memory-mapped files
in that directory and ``/metrics`` aggregates them all (``MultiProcessCollector``), so any
worker that answers a scrape reports the whole process group: counters and histograms are
summed, gauges declare how they combine (``livesum``, ``max``). prometheus-client does not
keep exemplars in that mode: run one worker per container (the compose default) to keep
metric-to-trace links.
"""

from __future__ import annotations

import os
from functools import lru_cache

from opentelemetry import trace
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder

__all__ = [
    "LATENCY_BUCKETS",
    "ApiVersionMetrics",
    "BusinessMetrics",
    "CacheMetrics",
    "ComplianceMetrics",
    "DbMetrics",
    "ExperimentMetrics",
    "HttpMetrics",
    "InventoryMetrics",
    "MigrationMetrics",
    "OutboxMetrics",
    "PaymentsMetrics",
    "PaymentsServiceMetrics",
    "RestockMetrics",
    "SecurityMetrics",
    "ServiceMetrics",
    "ShopMetrics",
    "current_exemplar",
    "multiprocess_enabled",
    "render",
]

# The ``_created`` series double the series count and no dashboard or rule reads them.
disable_created_metrics()

#: Seconds; 1.0 is the latency SLO's threshold, 0.3 and 0.5 match the p95 alert levels.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ORDER_VALUE_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500)


def multiprocess_enabled() -> bool:
    """Tell whether metrics are shared between worker processes through files."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def current_exemplar() -> dict[str, str] | None:
    """Return the active span's trace id as an exemplar, or None outside a sampled span.

    Only ``trace_id``: it is what Grafana's exemplar link to Tempo reads, and one request
    observes several histograms, so the formatted id is cached per trace.
    """
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid or not ctx.trace_flags.sampled:
        return None
    return _exemplar_for(ctx.trace_id)


@lru_cache(maxsize=256)
def _exemplar_for(trace_id: int) -> dict[str, str]:
    return {"trace_id": format(trace_id, "032x")}


class HttpMetrics:
    """RED metrics per route template, and requests in flight."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_server_requests",
            "HTTP requests served, by method, route template and status code.",
            ["method", "route", "status_code"],
            registry=registry,
        )
        self.duration = Histogram(
            "http_server_request_duration_seconds",
            "Time to serve an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "http_server_active_requests",
            "HTTP requests being served right now.",
            ["method"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.by_client = Counter(
            "http_server_requests_by_client",
            "HTTP requests by client class (browser, OS, device: allow-lists with other) and "
            "outcome (success, client_error, server_error).",
            ["browser", "os", "device", "outcome"],
            registry=registry,
        )
        self.by_region = Counter(
            "http_server_requests_by_region",
            "HTTP requests by region (from the trusted region header; allow-list, other, "
            "unknown) and outcome.",
            ["region", "outcome"],
            registry=registry,
        )
        self.rejected = Counter(
            "http_server_rejected_requests",
            "Requests refused before routing, by reason (body_too_large).",
            ["reason"],
            registry=registry,
        )


class DbMetrics:
    """Query latency by SQL operation, and the connection pool."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.query_duration = Histogram(
            "db_query_duration_seconds",
            "Database statement duration, by SQL operation.",
            ["operation"],
            buckets=DB_BUCKETS,
            registry=registry,
        )
        self.query_errors = Counter(
            "db_query_errors",
            "Database statements that raised, by SQL operation; CONNECT: connections that "
            "could not be opened.",
            ["operation"],
            registry=registry,
        )
        self.pool_size = Gauge(
            "db_pool_size",
            "Connections the pool keeps open at most (without overflow).",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_checked_out = Gauge(
            "db_pool_checked_out_connections",
            "Connections lent out of the pool right now.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_overflow = Gauge(
            "db_pool_overflow_connections",
            "Connections open beyond the pool size right now.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_wait = Histogram(
            "db_pool_wait_seconds",
            "Time a request waited to get a connection from the pool.",
            buckets=DB_BUCKETS,
            registry=registry,
        )
        self.pool_timeouts = Counter(
            "db_pool_timeouts",
            "Requests that gave up waiting for a pooled connection.",
            registry=registry,
        )


class MigrationMetrics:
    """Start-up schema migrations: duration, lock wait, outcome, retries; time to ready."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Gauge(
            "db_migration_duration_seconds",
            "Time the last start-up's schema migration took (under the lock).",
            multiprocess_mode="max",
            registry=registry,
        )
        self.lock_wait = Gauge(
            "db_migration_lock_wait_seconds",
            "Time the last start-up waited for the migration lock (another replica migrating).",
            multiprocess_mode="max",
            registry=registry,
        )
        self.runs = Counter(
            "db_migrations",
            "Start-up migration runs by outcome (applied, up_to_date, failed).",
            ["outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "db_migration_retries",
            "Migration attempts retried because the database was not reachable.",
            registry=registry,
        )
        self.startup = Gauge(
            "app_startup_duration_seconds",
            "Time from process start to ready (cold start: imports, migrations, seed, clients).",
            multiprocess_mode="max",
            registry=registry,
        )


class CacheMetrics:
    """Cache hits and misses, by cache name."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.hits = Counter(
            "cache_hits", "Cache look-ups that found a value.", ["cache"], registry=registry
        )
        self.misses = Counter(
            "cache_misses", "Cache look-ups that found nothing.", ["cache"], registry=registry
        )
        self.errors = Counter(
            "cache_errors",
            "Cache operations that failed (the app falls back to the database).",
            ["cache"],
            registry=registry,
        )


class BusinessMetrics:
    """Orders and revenue as the shop sees them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.orders = Counter(
            "shop_orders",
            "Orders by final status (paid, payment_declined, payment_error).",
            ["status"],
            registry=registry,
        )
        self.order_value = Histogram(
            "shop_order_value_usd",
            "Value of paid orders, in US dollars.",
            buckets=ORDER_VALUE_BUCKETS,
            registry=registry,
        )
        self.revenue = Counter(
            "shop_revenue_usd", "Revenue from paid orders, in US dollars.", registry=registry
        )
        self.items_sold = Counter(
            "shop_items_sold", "Items sold, by product category.", ["category"], registry=registry
        )
        self.cart_additions = Counter(
            "shop_cart_additions", "Products added to carts.", registry=registry
        )


class InventoryMetrics:
    """Stock per category, units held in carts, low-stock products (refreshed periodically)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.stock = Gauge(
            "shop_inventory_stock_units",
            "Units in stock, by product category (allow-list, else other).",
            ["category"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.low_stock = Gauge(
            "shop_inventory_low_stock_items",
            "Products at or below the low-stock threshold, by category.",
            ["category"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.reserved = Gauge(
            "shop_inventory_reserved_units",
            "Units held in open carts (not yet checked out).",
            multiprocess_mode="max",
            registry=registry,
        )


class RestockMetrics:
    """The restock task: products brought back to the restock level, and units added."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.restocks = Counter(
            "shop_restocks",
            "Products restocked (from at or below the low-stock threshold), by category.",
            ["category"],
            registry=registry,
        )
        self.units = Counter(
            "shop_restocked_units",
            "Units added by restocks, by category.",
            ["category"],
            registry=registry,
        )


class OutboxMetrics:
    """The order-event outbox: backlog, oldest pending message, deliveries by outcome."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge(
            "outbox_pending_messages",
            "Outbox messages not delivered yet.",
            multiprocess_mode="max",
            registry=registry,
        )
        self.oldest_age = Gauge(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest undelivered outbox message (0 when none is pending).",
            multiprocess_mode="max",
            registry=registry,
        )
        self.deliveries = Counter(
            "outbox_deliveries",
            "Outbox delivery attempts by topic and outcome (delivered, failed).",
            ["topic", "outcome"],
            registry=registry,
        )


class ApiVersionMetrics:
    """Requests per API version, and to deprecated versions."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "api_version_requests",
            "Requests to versioned API routes, by version and whether it is deprecated.",
            ["version", "deprecated"],
            registry=registry,
        )


class ComplianceMetrics:
    """Age verification at checkout for age-restricted products."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.verifications = Counter(
            "compliance_age_verifications",
            "Age verifications at checkout, by method and outcome (passed, failed).",
            ["method", "outcome"],
            registry=registry,
        )
        self.restricted_checkouts = Counter(
            "compliance_age_restricted_checkouts",
            "Checkouts of carts holding an age-restricted product, by verification "
            "(passed, failed, missing).",
            ["verification"],
            registry=registry,
        )


class ExperimentMetrics:
    """A/B experiments: assignments shown and conversions, per variant."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.assignments = Counter(
            "experiment_assignments",
            "Times a user was shown their variant, by experiment and variant.",
            ["experiment", "variant"],
            registry=registry,
        )
        self.conversions = Counter(
            "experiment_conversions",
            "Paid orders, by experiment and the buyer's variant.",
            ["experiment", "variant"],
            registry=registry,
        )


class SecurityMetrics:
    """Logins, failed logins by reason, brute-force detections."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.logins = Counter(
            "auth_logins",
            "Login attempts by outcome (success, failure, blocked).",
            ["outcome"],
            registry=registry,
        )
        self.login_failures = Counter(
            "auth_login_failures",
            "Failed logins by reason (unknown_user, bad_password, blocked).",
            ["reason"],
            registry=registry,
        )
        self.bruteforce = Counter(
            "auth_bruteforce_detections",
            "Accounts or client addresses that crossed the failed-login threshold.",
            ["scope"],
            registry=registry,
        )


class PaymentsMetrics:
    """Authorisations and captures by method and outcome (the payments service's view)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.payments = Counter(
            "payments_transactions",
            "Payment operations by operation (authorize, capture), method and outcome.",
            ["operation", "method", "outcome"],
            registry=registry,
        )
        self.amount = Counter(
            "payments_captured_usd",
            "Money captured, in US dollars, by payment method.",
            ["method"],
            registry=registry,
        )
        self.processing = Histogram(
            "payments_processing_duration_seconds",
            "Time the payment processor took, by operation.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class ServiceMetrics:
    """The metric families every service exports, built on one registry."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        service: str,
        version: str,
        revision: str,
    ) -> None:
        self.registry = registry
        self.http = HttpMetrics(registry)
        self.db = DbMetrics(registry)
        self.cache = CacheMetrics(registry)
        self.migrations = MigrationMetrics(registry)
        self.build_info = Gauge(
            "lookout_demo_build_info",
            "Always 1; labels say which build is running.",
            ["service", "version", "revision"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.build_info.labels(service=service, version=version, revision=revision).set(1)


class ShopMetrics(ServiceMetrics):
    """The shop's metrics: the common ones, orders and revenue, security events."""

    def __init__(
        self, registry: CollectorRegistry, *, service: str, version: str, revision: str
    ) -> None:
        super().__init__(registry, service=service, version=version, revision=revision)
        self.business = BusinessMetrics(registry)
        self.security = SecurityMetrics(registry)
        self.inventory = InventoryMetrics(registry)
        self.restock = RestockMetrics(registry)
        self.outbox = OutboxMetrics(registry)
        self.api_versions = ApiVersionMetrics(registry)
        self.compliance = ComplianceMetrics(registry)
        self.experiments = ExperimentMetrics(registry)


class PaymentsServiceMetrics(ServiceMetrics):
    """The payments service's metrics: the common ones and payment operations."""

    def __init__(
        self, registry: CollectorRegistry, *, service: str, version: str, revision: str
    ) -> None:
        super().__init__(registry, service=service, version=version, revision=revision)
        self.payments = PaymentsMetrics(registry)


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """Render the metrics for a scrape, OpenMetrics (with exemplars) when asked for."""
    source = registry
    if multiprocess_enabled():
        source = CollectorRegistry()
        multiprocess.MultiProcessCollector(source)
    encoder, content_type = choose_encoder(accept or "")
    return encoder(source), content_type
