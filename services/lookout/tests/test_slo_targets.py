"""slo/slos.yaml against the real system: scrape jobs, metric and label names, bucket bounds.

A renamed metric or label, a latency threshold that is not a bucket boundary (the SLI would
select no series and the SLO would read as empty, not as failing) or a service that is not a
scrape job must fail here, not leave an empty SLO dashboard.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from slo_support import ROOT, SLO_TEXT

from lookout_demo.telemetry.metrics import PaymentsServiceMetrics, ShopMetrics
from lookout_stack.slo import parse_slos
from lookout_stack.slo.model import Slo
from lookout_stack.slo.promql import openmetrics_float
from webhook_relay.metrics import RelayMetrics

SLOS = parse_slos(SLO_TEXT).slos
Samples = dict[str, list[dict[str, str]]]


def _shop(registry: CollectorRegistry) -> None:
    metrics = ShopMetrics(registry, service="shop", version="test", revision="test")
    metrics.http.requests.labels("GET", "/api/products", "200").inc()
    metrics.http.duration.labels("GET", "/api/products").observe(0.1)


def _payments(registry: CollectorRegistry) -> None:
    metrics = PaymentsServiceMetrics(registry, service="payments", version="test", revision="t")
    metrics.http.requests.labels("POST", "/v1/authorizations", "201").inc()
    metrics.http.duration.labels("POST", "/v1/authorizations").observe(0.1)


def _relay(registry: CollectorRegistry) -> None:
    metrics = RelayMetrics.create(registry)
    metrics.received.labels("accepted").inc()
    metrics.accept_duration.observe(0.01)


#: How each service's real metrics are built (one observation each, so labelled series exist).
EXPORTERS: dict[str, Callable[[CollectorRegistry], None]] = {
    "shop": _shop,
    "payments": _payments,
    "webhook-relay": _relay,
}


def _samples(service: str) -> Samples:
    """Return the service's exposed samples by name, as Prometheus would scrape them."""
    registry = CollectorRegistry()
    EXPORTERS[service](registry)
    found: Samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(dict(sample.labels))
    return found


def _ids(slos: list[Slo]) -> list[str]:
    return [f"{slo.service}-{slo.name}" for slo in slos]


def test_every_service_is_a_prometheus_scrape_job() -> None:
    """The service names of slos.yaml are job names in prometheus.yml (the `job` they select)."""
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {scrape["job_name"] for scrape in config["scrape_configs"]}
    missing = sorted({slo.service for slo in SLOS} - jobs)
    assert not missing, f"slo/slos.yaml services {missing} are not scrape jobs in prometheus.yml"


@pytest.mark.parametrize("slo", SLOS, ids=_ids(SLOS))
def test_the_indicator_selects_metrics_and_labels_the_service_exports(slo: Slo) -> None:
    """Each selector's metric is exposed by the service, with every label it matches on."""
    assert slo.service in EXPORTERS, (
        f"add {slo.service!r} to EXPORTERS in {__file__} so its SLI's metrics are checked"
    )
    samples = _samples(slo.service)
    for role, selector in slo.selectors().items():
        names = (
            [f"{selector.metric}_bucket", f"{selector.metric}_count"]
            if role == "histogram"
            else [selector.metric]
        )
        for name in names:
            assert name in samples, (
                f"slo/slos.yaml {slo.indicator_name}.{role}: {slo.service} exposes no {name}; "
                f"it has {sorted(samples)}"
            )
            labels = set().union(*(sample.keys() for sample in samples[name]))
            unknown = sorted(selector.labels() - labels)
            assert not unknown, (
                f"slo/slos.yaml {slo.indicator_name}.{role}: {name} has no label(s) {unknown}; "
                f"its labels are {sorted(labels)}"
            )


LATENCY = [slo for slo in SLOS if slo.indicator.is_latency]


@pytest.mark.parametrize("slo", LATENCY, ids=_ids(LATENCY))
def test_the_declared_buckets_are_the_services_real_buckets(slo: Slo) -> None:
    """The indicator's `buckets` are exactly the histogram's `le` bounds (+Inf aside) as the
    service exposes them, so the loader's threshold check holds against the real series."""
    histogram = slo.selectors()["histogram"]
    real = [
        sample["le"]
        for sample in _samples(slo.service)[f"{histogram.metric}_bucket"]
        if sample["le"] != "+Inf"
    ]
    declared = [openmetrics_float(bound) for bound in slo.indicator.buckets or ()]
    assert declared == real, (
        f"slo/slos.yaml indicators.{slo.indicator_name}.buckets {declared} are not "
        f"{slo.service}'s {histogram.metric} buckets {real}; copy the service's"
    )


@pytest.mark.parametrize("slo", LATENCY, ids=_ids(LATENCY))
def test_the_latency_threshold_is_a_bucket_boundary(slo: Slo) -> None:
    """The threshold is one of the histogram's buckets, spelt as its `le` label is (1s -> 1.0)."""
    histogram = slo.selectors()["histogram"]
    buckets = sorted(
        {sample["le"] for sample in _samples(slo.service)[f"{histogram.metric}_bucket"]}
    )
    assert slo.bucket in buckets, (
        f"slo/slos.yaml services.{slo.service}.{slo.name}.threshold {slo.threshold}: "
        f"{histogram.metric} has no bucket le={slo.bucket!r} (its buckets: {buckets}); pick one "
        "of them or add the bucket in the service's metrics"
    )
