"""`lookout check` in direct mode against the real Loki 3.7.6 and Tempo 3.0.3.

Both run from the shipped loki/loki.yaml and tempo/tempo.yaml through the native harness
(tests/stack_support/native.py), the Loki ruler's Alertmanager and Tempo's remote-write
Prometheus replaced by receivers the test owns. The test sends OTLP logs and a trace of the
shop, then checks fixtures/loki-tempo.json: per backend a panel with data, one that is empty
and one with a syntax error; the Search-builder panel's filters become TraceQL.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lookout_support import FIXTURES, CliRun, run_cli
from stack_support import poll_until, require_binary
from stack_support.native import NativeStack
from stack_support.receiver import WebhookReceiver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DASHBOARD = FIXTURES / "loki-tempo.json"


def _logs(service: str, lines: list[str]) -> dict[str, Any]:
    now = time.time_ns()
    records = [
        {"timeUnixNano": str(now + i), "severityText": "INFO", "body": {"stringValue": line}}
        for i, line in enumerate(lines)
    ]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return {
        "resourceLogs": [
            {"resource": resource, "scopeLogs": [{"scope": {"name": "t"}, "logRecords": records}]}
        ]
    }


def _trace(service: str) -> dict[str, Any]:
    now = time.time_ns()
    span = {
        "traceId": os.urandom(16).hex(),
        "spanId": os.urandom(8).hex(),
        "name": "POST /api/checkout",
        "kind": 2,
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": str(now + 50_000_000),
        "status": {},
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return {
        "resourceSpans": [
            {"resource": resource, "scopeSpans": [{"scope": {"name": "t"}, "spans": [span]}]}
        ]
    }


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    """Run the real Loki and Tempo from the shipped configs; send them the shop's telemetry."""
    require_binary("loki")
    require_binary("tempo")
    with WebhookReceiver() as alertmanager, WebhookReceiver() as prometheus:
        stack = NativeStack(
            tmp_path_factory.mktemp("loki-tempo"),
            ["loki", "tempo"],
            endpoints={
                "alertmanager:9093": alertmanager.hostport,
                "prometheus:9090": prometheus.hostport,
            },
        )
        stack.start()
        try:
            lines = ["checkout completed order=1", "checkout completed order=2", "GET /cart"]
            logs = httpx.post(stack.url("loki", 3100, "/otlp/v1/logs"), json=_logs("shop", lines))
            assert logs.status_code == 204, logs.text
            otlp = f"http://{stack.hostport('tempo', 4318)}/v1/traces"
            assert httpx.post(otlp, json=_trace("shop"), timeout=10).status_code == 200
            yield stack
        finally:
            stack.stop(grace=5)


def _check(stack: NativeStack, *args: str) -> CliRun:
    return run_cli(
        "check",
        str(DASHBOARD),
        "--loki",
        stack.url("loki", 3100),
        "--tempo",
        stack.url("tempo", 3200),
        "--quiet",
        "--json",
        *args,
    )


@pytest.fixture(scope="module")
def report(backends: NativeStack) -> CliRun:
    """Run the check until Tempo's search finds the trace (it does a few seconds after)."""

    def settled() -> CliRun | None:
        run = _check(backends)
        wanted = ("Checkout logs", "Traces (TraceQL)", "Traces (search builder)")
        return run if all(run.panel(t)["status"] == "data" for t in wanted) else None

    return poll_until(settled, "the Loki and Tempo panels to have data", timeout=60, interval=2)


@pytest.mark.parametrize(
    ("title", "status"),
    [
        ("Checkout logs", "data"),
        ("Log rate", "data"),
        ("No such service", "empty"),
        ("Broken LogQL", "error"),
        ("Traces (TraceQL)", "data"),
        ("Traces (search builder)", "data"),
        ("No such traces", "empty"),
        ("Broken TraceQL", "error"),
    ],
    ids=lambda value: str(value).lower().replace(" ", "-").strip("()"),
)
def test_panel_status(report: CliRun, title: str, status: str) -> None:
    """Each Loki and Tempo panel reports what the real backend answered."""
    panel = report.panel(title)
    assert panel["status"] == status, panel


def test_queries_are_expanded_and_errors_say_why(report: CliRun) -> None:
    """Variables are substituted in LogQL and TraceQL; a syntax error carries the parser's text."""
    assert report.panel("Checkout logs")["targets"][0]["query"] == (
        '{service_name="shop"} |= "checkout"'
    )
    rate = report.panel("Log rate")["targets"][0]["query"]
    assert rate.startswith('sum(count_over_time({service_name="shop"}[') and "$" not in rate
    assert report.panel("Traces (search builder)")["targets"][0]["query"] == (
        '{resource.service.name="shop"}'
    )
    assert "parse error" in report.panel("Broken LogQL")["targets"][0]["detail"]
    assert "HTTP 400" in report.panel("Broken TraceQL")["targets"][0]["detail"]
    assert report.code == 1


def test_other_variable_value_finds_nothing(backends: NativeStack) -> None:
    """--var service=payments (no telemetry sent for it) empties the service's panels."""
    run = _check(backends, "--var", "service=payments")
    assert run.panel("Checkout logs")["status"] == "empty"
    assert run.panel("Traces (TraceQL)")["status"] == "empty"
