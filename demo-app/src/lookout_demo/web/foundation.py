"""What every service builds first: its metrics, telemetry, database and cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
)

from lookout_demo import __version__
from lookout_demo.settings import CommonSettings
from lookout_demo.storage.cache import Cache, build_cache
from lookout_demo.storage.database import Database
from lookout_demo.telemetry.metrics import ServiceMetrics
from lookout_demo.telemetry.otel import Telemetry

__all__ = ["Foundation", "build_foundation", "process_registry"]

M = TypeVar("M", bound=ServiceMetrics)


def process_registry() -> CollectorRegistry:
    """Return a registry with the process, platform and GC collectors on it."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


@dataclass
class Foundation(Generic[M]):
    """A service's metrics and telemetry (None when off), database and cache."""

    metrics: M | None
    telemetry: Telemetry | None
    db: Database
    cache: Cache

    @property
    def tracer_provider(self) -> TracerProvider | None:
        """Return the tracer provider to instrument clients with, or None when off."""
        return self.telemetry.tracer_provider if self.telemetry is not None else None


def build_foundation(
    settings: CommonSettings,
    metrics_cls: type[M],
    *,
    registry: CollectorRegistry | None,
    telemetry: Telemetry | None,
) -> Foundation[M]:
    """Build metrics (on a fresh process registry unless given one), the database, the cache.

    With ``telemetry_enabled`` off there are no metrics and the telemetry given is ignored,
    so nothing is instrumented: the overhead benchmark's "off" side.
    """
    metrics = None
    if settings.telemetry_enabled:
        metrics = metrics_cls(
            registry if registry is not None else process_registry(),
            service=settings.service_name,
            version=__version__,
            revision=settings.revision,
        )
    else:
        telemetry = None
    tracer_provider = telemetry.tracer_provider if telemetry is not None else None
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout_seconds=settings.db_pool_timeout_seconds,
        slow_query_seconds=settings.db_slow_query_seconds,
        metrics=metrics.db if metrics is not None else None,
        tracer_provider=tracer_provider,
    )
    cache = build_cache(settings.redis_url, tracer_provider=tracer_provider)
    return Foundation(metrics=metrics, telemetry=telemetry, db=db, cache=cache)
