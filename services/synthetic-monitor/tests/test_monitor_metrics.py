"""Metrics: blackbox-style probe gauges per journey and step, histograms, SLO counters."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest

from monitor_support import make_certs, target, write
from synthetic_monitor.config import load_config
from synthetic_monitor.metrics import MonitorMetrics
from synthetic_monitor.runner import JourneyRunner


def test_a_run_sets_probe_gauges_for_the_journey_and_each_step(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    """probe_* per step and with step="" for the journey; status, duration, cert expiry."""
    certs = make_certs(tmp_path / "pki", days_left=20)
    metrics = MonitorMetrics(registry)
    with target(certs) as server:
        text = f"""
journeys:
  - name: shop
    labels: {{team: web}}
    steps:
      - {{name: home, url: "{server.url}/ok", tls: {{ca_file: {certs.ca_file}}}}}
      - {{name: missing, url: "{server.url}/status/404", tls: {{ca_file: {certs.ca_file}}}}}
"""
        config = load_config(write(tmp_path / "m.yml", text), {})
        metrics.configure(config.journeys.values())
        result = asyncio.run(JourneyRunner(observer=metrics).run(config.journeys["shop"]))
    value = registry.get_sample_value
    assert value("probe_success", {"journey": "shop", "step": "home"}) == 1
    assert value("probe_success", {"journey": "shop", "step": "missing"}) == 0
    assert value("probe_success", {"journey": "shop", "step": ""}) == 0
    assert value("probe_http_status_code", {"journey": "shop", "step": "missing"}) == 404
    expiry = value("probe_ssl_earliest_cert_expiry", {"journey": "shop", "step": ""})
    assert expiry == certs.not_after.timestamp()
    assert (value("probe_duration_seconds", {"journey": "shop", "step": "home"}) or 0) > 0
    assert value("synthetic_step_duration_seconds_count", {"journey": "shop", "step": "home"}) == 1
    assert value("synthetic_journey_runs_total", {"journey": "shop", "result": "failure"}) == 1
    assert value("synthetic_journey_runs_total", {"journey": "shop", "result": "success"}) == 0
    assert value("synthetic_slo_runs_total", {"journey": "shop"}) == 1
    assert value("synthetic_slo_good_runs_total", {"journey": "shop"}) == 0
    assert value("synthetic_journey_last_attempts", {"journey": "shop"}) == 1
    assert (
        value("synthetic_journey_info", {"journey": "shop", "kind": "journey", "team": "web"}) == 1
    )
    exposition = generate_latest(registry).decode()
    assert f'# {{trace_id="{result.trace_id}"}}' in exposition


def test_a_flaky_run_counts_attempts_and_is_not_a_good_slo_event(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    """Passing after a retry: result=flaky, 2 attempts, SLO total +1 but good +0."""
    metrics = MonitorMetrics(registry)
    with target() as server:
        text = f"""
checks:
  - {{name: f, url: "{server.url}/flaky?key=m1&fail=1", retries: 1, retry_delay: 0s}}
"""
        config = load_config(write(tmp_path / "f.yml", text), {})
        asyncio.run(JourneyRunner(observer=metrics).run(config.journeys["f"]))
    value = registry.get_sample_value
    assert value("synthetic_journey_runs_total", {"journey": "f", "result": "flaky"}) == 1
    assert value("synthetic_journey_attempts_total", {"journey": "f"}) == 2
    assert value("synthetic_slo_runs_total", {"journey": "f"}) == 1
    assert value("synthetic_slo_good_runs_total", {"journey": "f"}) == 0
    assert value("probe_success", {"journey": "f", "step": ""}) == 1


def test_removed_journeys_lose_their_series(tmp_path: Path, registry: CollectorRegistry) -> None:
    """A journey dropped from the configuration no longer shows in /metrics."""
    metrics = MonitorMetrics(registry)
    with target() as server:
        config = load_config(
            write(tmp_path / "r.yml", f"checks: [{{name: gone, url: '{server.url}/ok'}}]"), {}
        )
        journey = config.journeys["gone"]
        metrics.configure([journey])
        asyncio.run(JourneyRunner(observer=metrics).run(journey))
    assert registry.get_sample_value("probe_success", {"journey": "gone", "step": ""}) == 1
    metrics.configure([], removed=[journey])
    exposition = generate_latest(registry).decode()
    assert 'journey="gone"' not in exposition
