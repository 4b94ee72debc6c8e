"""The status page, its JSON API, /metrics and the health endpoints."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.testclient import TestClient

from monitor_support import target, wait_for, write
from synthetic_monitor.metrics import MonitorMetrics
from synthetic_monitor.runner import JourneyRunner
from synthetic_monitor.service import Monitor
from synthetic_monitor.storage import MemoryStore, RunRecord
from synthetic_monitor.web import create_app


def build(tmp_path: Path, base: str, registry: CollectorRegistry) -> tuple[Monitor, Starlette]:
    """Return a monitor with two checks (one failing) and its app that starts it."""
    path = write(
        tmp_path / "web.yml",
        f"""
checks:
  - {{name: home, url: "{base}/ok", interval: 0.2, description: "The <home> page"}}
  - {{name: broken, url: "{base}/status/500", interval: 0.2, labels: {{team: pay}}}}
""",
    )
    metrics = MonitorMetrics(registry)
    store = MemoryStore()
    monitor = Monitor(
        path,
        JourneyRunner(observer=metrics),
        store,
        metrics,
        trace_url_template="https://grafana.example/explore?trace={trace_id}",
    )
    monitor.load_initial()

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await store.add(
            RunRecord(
                "home", time.time() - 3 * 86400, 0.1, False, "failure", 1, "check", "old", "0" * 32
            )
        )
        await monitor.start()
        yield
        await monitor.stop(1.0)

    return monitor, create_app(monitor, registry, lifespan)


@pytest.fixture
def client(tmp_path: Path, registry: CollectorRegistry) -> Iterator[TestClient]:
    """Serve the app (monitor running) against a local target."""
    with target() as server:
        _, app = build(tmp_path, server.url, registry)
        with TestClient(app) as test_client:
            wait_for(
                lambda: all(
                    j["state"] != "unknown"
                    for j in test_client.get("/api/v1/journeys").json()["journeys"]
                ),
                "both checks to have run",
            )
            yield test_client


def test_the_status_page_shows_state_uptime_bars_and_failures(client: TestClient) -> None:
    """Server-rendered HTML: each journey's state, uptimes, 24 bars, failures with trace links."""
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert 'id="journey-home"' in html and 'id="journey-broken"' in html
    assert "The &lt;home&gt; page" in html, "descriptions are escaped"
    assert 'class="state failure">failure' in html
    assert 'class="state success">success' in html
    assert html.count('class="bar') >= 48
    assert "[STATUS] (500) &lt; 400" in html
    assert "https://grafana.example/explore?trace=" in html
    assert "1 of 2 failing" in html


def test_the_status_page_needs_no_script_and_loads_nothing_from_elsewhere(
    client: TestClient,
) -> None:
    """No <script>, no external stylesheet, image or font: readable without JavaScript."""
    html = client.get("/").text
    assert "<script" not in html.lower()
    assert not re.search(r"<link[^>]+stylesheet", html)
    assert not re.search(r"""(src|@import|url\()\s*=?\s*["']?https?:""", html)


def test_the_json_api_lists_journeys_details_and_failures(client: TestClient) -> None:
    """/api/v1/journeys, /api/v1/journeys/{name} and /api/v1/failures answer JSON."""
    journeys = {j["name"]: j for j in client.get("/api/v1/journeys").json()["journeys"]}
    assert journeys["broken"]["state"] == "failure"
    assert journeys["broken"]["labels"] == {"team": "pay"}
    assert set(journeys["home"]["uptime"]) == {"24h", "7d", "30d"}
    assert journeys["home"]["uptime"]["24h"] == 1.0
    assert journeys["home"]["uptime"]["7d"] < 1.0
    assert len(journeys["home"]["bars"]) == 24
    detail = client.get("/api/v1/journeys/broken").json()
    assert detail["recent_runs"][0]["failing_step"] == "check"
    assert detail["recent_runs"][0]["trace_url"].endswith(detail["recent_runs"][0]["trace_id"])
    assert client.get("/api/v1/journeys/nope").status_code == 404
    failures = client.get("/api/v1/failures").json()["failures"]
    assert failures[0]["journey"] in {"broken", "home"}
    assert all(f["trace_id"] for f in failures)


def test_metrics_are_served_as_openmetrics_with_exemplars(client: TestClient) -> None:
    """Asked for OpenMetrics, /metrics carries trace exemplars on the step histograms."""
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert re.search(
        r'synthetic_step_duration_seconds_bucket\{.*# \{trace_id="[0-9a-f]{32}"\}', response.text
    )
    plain = client.get("/metrics")
    assert plain.headers["content-type"].startswith("text/plain")
    assert 'probe_success{journey="broken",step=""} 0.0' in plain.text


def test_health_endpoints_report_liveness_and_readiness(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    """Live always; ready only once the configuration, the store and the scheduler are up."""
    monitor, app = build(tmp_path, "http://127.0.0.1:9", registry)
    bare = create_app(monitor, CollectorRegistry())
    with TestClient(bare) as not_started:
        assert not_started.get("/health/live").status_code == 200
        response = not_started.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["scheduler"] is False
    with TestClient(app) as started:
        assert started.get("/health/ready").json() == {
            "status": "ok",
            "checks": {"config": True, "store": True, "scheduler": True},
        }
