"""Fixtures for the monitor's tests: fresh metrics registries and in-memory spans."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry


@pytest.fixture
def registry() -> CollectorRegistry:
    """Give a test a fresh metrics registry."""
    return CollectorRegistry()


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    """Collect the monitor's spans in memory."""
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> TracerProvider:
    """Give a test a tracer provider whose spans land in ``span_exporter``."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider
