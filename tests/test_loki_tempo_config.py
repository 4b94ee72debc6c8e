"""loki/loki.yaml, loki/rules and tempo/tempo.yaml, proven with the real Loki 3.7.6 and Tempo 3.0.3.

Each backend runs alone through the native stack's harness (tests/stack_support/native.py): the
shipped file with only addresses and container paths substituted, and Alertmanager or Prometheus
replaced by a receiver the test owns (`endpoints=`), so the test sees exactly what Loki's ruler
and Tempo's metrics-generator send. tests/test_native_stack.py runs them with the real ones.

The rule-file checks need no binary and run as unit tests; everything else is `integration`.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lookout_stack.validate.checks import alert_conventions as conventions
from stack_support import poll_until, require_binary
from stack_support.native import NativeStack, ServiceProcess
from stack_support.receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parent.parent
LOKI_CONFIG = ROOT / "loki" / "loki.yaml"
LOKI_RULES = ROOT / "loki" / "rules"
TEMPO_CONFIG = ROOT / "tempo" / "tempo.yaml"
# Single-node start-up goal (DESIGN.md): Loki's default ring wait alone is about 15 s.
READY_WITHIN_SECONDS = 10.0
# Tempo 3.0.3 may ignore SIGTERM for over a minute (DESIGN.md): a few seconds, then SIGKILL.
STOP_GRACE_SECONDS = 5.0

integration = pytest.mark.integration


# --- running one backend alone ------------------------------------------------------------------


@dataclass
class Backend:
    """A real Loki or Tempo, running alone from the shipped config (made native)."""

    stack: NativeStack
    name: str
    http_port: int

    def url(self, path: str) -> str:
        """Return the URL of ``path`` on the backend's HTTP port."""
        return self.stack.url(self.name, self.http_port, path)

    @property
    def ready_after(self) -> float:
        """Return the seconds from start until /ready answered."""
        return self.stack.services[self.name].ready_after or 0.0

    @property
    def otlp_http(self) -> str:
        """Return host:port of the OTLP/HTTP receiver (Tempo)."""
        return self.stack.hostport(self.name, 4318)


def _config_path(service: ServiceProcess) -> Path:
    return Path(next(a.split("=", 1)[1] for a in service.argv if a.startswith("-config.file=")))


def _rendered(name: str, workdir: Path) -> Path:
    """Write the native copy of a backend's config (nothing started); return its path."""
    require_binary(name)
    return _config_path(NativeStack(workdir, [name]).render(name))


def _get_json(url: str, params: dict[str, str] | None = None, **headers: str) -> Any:
    """GET ``url`` and return the decoded JSON body; an HTTP error status raises."""
    response = httpx.get(url, params=params, headers=headers, timeout=10)
    response.raise_for_status()
    return response.json()


def _post_json(url: str, body: object) -> int:
    """POST ``body`` as JSON to ``url`` and return the status code."""
    return httpx.post(url, json=body, timeout=10).status_code


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a backend binary to completion (config checks) and return what it printed."""
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alertmanager() -> Iterator[WebhookReceiver]:
    """Stand in for Alertmanager: record the alerts the Loki ruler posts."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def prometheus() -> Iterator[WebhookReceiver]:
    """Stand in for Prometheus' remote-write receiver: record what Tempo writes."""
    with WebhookReceiver() as receiver:
        yield receiver


def _run_alone(name: str, port: int, workdir: Path, endpoints: dict[str, str]) -> Iterator[Backend]:
    """Start one backend from its shipped config, yield it, stop it."""
    require_binary(name)
    stack = NativeStack(workdir, [name], endpoints=endpoints)
    stack.start()
    try:
        yield Backend(stack, name, port)
    finally:
        stack.stop(grace=STOP_GRACE_SECONDS)


@pytest.fixture(scope="module")
def loki(
    tmp_path_factory: pytest.TempPathFactory, alertmanager: WebhookReceiver
) -> Iterator[Backend]:
    """Run the real Loki from loki.yaml (made native) until the module's tests are done."""
    yield from _run_alone(
        "loki", 3100, tmp_path_factory.mktemp("loki"), {"alertmanager:9093": alertmanager.hostport}
    )


@pytest.fixture(scope="module")
def tempo(
    tmp_path_factory: pytest.TempPathFactory, prometheus: WebhookReceiver
) -> Iterator[Backend]:
    """Run the real Tempo from tempo.yaml (made native) until the module's tests are done."""
    yield from _run_alone(
        "tempo", 3200, tmp_path_factory.mktemp("tempo"), {"prometheus:9090": prometheus.hostport}
    )


# --- the rule files (no binary needed) ----------------------------------------------------------


# The rule conventions live in `lookout validate`'s alert-conventions check (one implementation).
LOKI_ALERTS = conventions.loki_alerts(ROOT)


def test_rule_files_live_in_the_fake_tenant_folder() -> None:
    """Rule files sit in loki/rules/fake/, the folder of the only tenant when auth is off."""
    assert sorted(LOKI_RULES.rglob("*.yaml")), f"no rule files under {LOKI_RULES}"
    misplaced = conventions.misplaced_loki_rule_files(ROOT)
    assert not misplaced, f"rule files outside loki/rules/fake/ are never loaded: {misplaced}"


@pytest.mark.parametrize("alert", LOKI_ALERTS, ids=lambda alert: alert.name)
def test_every_loki_alert_has_severity_annotations_and_a_runbook(
    alert: conventions.Alert,
) -> None:
    """Each Loki alert has a severity, summary, description, runbook_url and dashboard."""
    dashboards = conventions.Rules.load(ROOT).dashboard_uids()
    problems = conventions.alert_problems(alert, dashboards)
    problems += conventions.runbook_problems(ROOT, alert.name)
    assert not problems, f"{alert.where}: {problems}"


# --- config checks by the binaries themselves ---------------------------------------------------


@integration
def test_loki_verifies_the_shipped_config(tmp_path: Path) -> None:
    """`loki -verify-config` accepts loki.yaml (made native)."""
    config = _rendered("loki", tmp_path)
    result = _run([str(require_binary("loki")), f"-config.file={config}", "-verify-config"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "config is valid" in result.stderr


@integration
def test_tempo_verifies_the_shipped_config(tmp_path: Path) -> None:
    """`tempo -config.verify=true` accepts tempo.yaml (made native)."""
    config = _rendered("tempo", tmp_path)
    result = _run([str(require_binary("tempo")), f"-config.file={config}", "-config.verify=true"])
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]


@integration
def test_loki_printed_config_has_retention_streams_and_no_ring_wait(tmp_path: Path) -> None:
    """Loki's effective config keeps 30 days by default, a year for security, 90 days for errors."""
    result = _run(
        [
            str(require_binary("loki")),
            f"-config.file={_rendered('loki', tmp_path)}",
            "-verify-config",
            "-print-config-stderr",
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    printed = result.stderr.split("\nlevel=", 1)[0]
    config = yaml.safe_load(printed)
    limits = config["limits_config"]
    assert limits["retention_period"] == "30d"
    streams = {s["selector"]: s["period"] for s in limits["retention_stream"]}
    assert streams == {'{security="true"}': "1y", '{level=~"error|critical|fatal"}': "90d"}
    assert config["compactor"]["retention_enabled"] is True
    assert config["ingester"]["lifecycler"]["min_ready_duration"] == "0s"


# --- Loki, running ------------------------------------------------------------------------------


def _otlp_logs(service: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Return an OTLP/JSON logs request with ``records`` from ``service``."""
    return {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": service}},
                        {"key": "service.namespace", "value": {"stringValue": "lookout-demo"}},
                    ]
                },
                "scopeLogs": [{"scope": {"name": "lookout_demo.security"}, "logRecords": records}],
            }
        ]
    }


def _security_record(event: str, severity: str, **extra: str) -> dict[str, Any]:
    """Return an OTLP log record like the shop's login guard writes (extra={"security": True})."""
    attributes = [
        {"key": "security", "value": {"boolValue": True}},
        {"key": "event", "value": {"stringValue": event}},
    ]
    attributes += [{"key": k, "value": {"stringValue": v}} for k, v in extra.items()]
    return {
        "timeUnixNano": str(time.time_ns()),
        "severityText": severity,
        "severityNumber": {"WARNING": 13, "ERROR": 17}[severity],
        "body": {"stringValue": event.replace("_", " ")},
        "attributes": attributes,
    }


@integration
def test_loki_is_ready_within_seconds(loki: Backend) -> None:
    """A single Loki node answers /ready within seconds, not after the default ring waits."""
    assert loki.ready_after < READY_WITHIN_SECONDS, f"ready after {loki.ready_after:.1f} s"


@integration
def test_loki_health_command_is_a_working_compose_healthcheck(loki: Backend) -> None:
    """`loki -health` (the compose healthcheck: the image has no shell or wget) sees /ready."""
    result = _run([str(require_binary("loki")), "-health", f"-health.url={loki.url('/ready')}"])
    assert result.returncode == 0, result.stdout + result.stderr


@integration
def test_loki_otlp_log_is_found_by_logql_with_labels_and_metadata(loki: Backend) -> None:
    """An OTLP log is found by LogQL: service_name and security labels, trace_id as metadata."""
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    record = _security_record("login_failed", "WARNING", reason="bad_password")
    record |= {"traceId": trace_id, "spanId": span_id}
    assert _post_json(loki.url("/otlp/v1/logs"), _otlp_logs("shop", [record])) == 204
    query = {
        "query": f'{{service_name="shop", security="true"}} | trace_id="{trace_id}"',
        "start": str(time.time_ns() - 300 * 10**9),
    }

    def found() -> dict[str, Any] | None:
        # The flag asks Loki to say which labels are stream labels and which metadata.
        body = _get_json(
            loki.url("/loki/api/v1/query_range"),
            query,
            **{"X-Loki-Response-Encoding-Flags": "categorize-labels"},
        )
        results: list[dict[str, Any]] = body["data"]["result"]
        return results[0] if results else None

    stream = poll_until(found, f"the log line with trace_id {trace_id} in Loki", timeout=30)
    assert stream["stream"]["service_name"] == "shop"
    assert stream["stream"]["security"] == "true"
    metadata = stream["values"][0][2]["structuredMetadata"]
    assert metadata["trace_id"] == trace_id
    assert metadata["span_id"] == span_id
    assert metadata["event"] == "login_failed"
    assert "event" not in stream["stream"], "event is per-line data, not a stream label"


@integration
def test_loki_ruler_loads_the_rule_groups(loki: Backend) -> None:
    """The ruler has loaded every group of loki/rules/fake/*.yaml, without evaluation errors."""
    expected = {
        group["name"]
        for path in (LOKI_RULES / "fake").glob("*.yaml")
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    }

    def loaded() -> list[dict[str, Any]] | None:
        groups: list[dict[str, Any]] = _get_json(loki.url("/prometheus/api/v1/rules"))["data"][
            "groups"
        ]
        return groups if {g["name"] for g in groups} == expected else None

    groups = poll_until(loaded, f"rule groups {sorted(expected)} in the ruler", timeout=30)
    unhealthy = [
        (rule["name"], rule.get("lastError"))
        for group in groups
        for rule in group["rules"]
        if rule.get("health") == "err"
    ]
    assert not unhealthy, unhealthy


@integration
def test_loki_ruler_alerts_reach_alertmanager_on_brute_force(
    loki: Backend, alertmanager: WebhookReceiver
) -> None:
    """Ten failed logins and a brute-force detection alert; three failures elsewhere stay quiet."""
    records = [
        _security_record("login_failed", "WARNING", reason="bad_password") for _ in range(10)
    ]
    records.append(_security_record("bruteforce_detected", "ERROR", scope="account"))
    assert _post_json(loki.url("/otlp/v1/logs"), _otlp_logs("shop", records)) == 204
    few = [_security_record("login_failed", "WARNING", reason="bad_password") for _ in range(3)]
    assert _post_json(loki.url("/otlp/v1/logs"), _otlp_logs("payments", few)) == 204
    wanted = {("LogLoginFailureBurst", "shop"), ("LogBruteForceDetected", "shop")}

    def delivered() -> dict[tuple[str, str], dict[str, str]] | None:
        alerts = {}
        for delivery in alertmanager.snapshot():
            if delivery.path == "/api/v2/alerts":
                for alert in delivery.json:
                    labels = alert["labels"]
                    alerts[labels["alertname"], labels.get("service", "")] = labels
        return alerts if wanted <= set(alerts) else None

    alerts = poll_until(delivered, f"{sorted(wanted)} posted to Alertmanager", timeout=90)
    detected = alerts["LogBruteForceDetected", "shop"]
    assert (detected["severity"], detected["scope"]) == ("critical", "account")
    assert alerts["LogLoginFailureBurst", "shop"]["severity"] == "warning"
    # The same evaluation counted payments' three failures: below the threshold, no alert.
    assert ("LogLoginFailureBurst", "payments") not in alerts


@integration
def test_loki_ruler_error_burst_goes_pending_for_that_service_only(loki: Backend) -> None:
    """25 error lines from one service put LogErrorBurst in pending (for: 1m) for that service."""
    errors = [
        {
            "timeUnixNano": str(time.time_ns()),
            "severityText": "ERROR",
            "severityNumber": 17,
            "body": {"stringValue": "payment provider unreachable"},
        }
        for _ in range(25)
    ]
    body = _otlp_logs("payments", errors)
    body["resourceLogs"][0]["scopeLogs"][0]["scope"]["name"] = "lookout_demo.payments"
    assert _post_json(loki.url("/otlp/v1/logs"), body) == 204

    def burst_services() -> set[str] | None:
        alerts = _get_json(loki.url("/prometheus/api/v1/alerts"))["data"]["alerts"]
        services = {
            a["labels"]["service"] for a in alerts if a["labels"]["alertname"] == "LogErrorBurst"
        }
        return services or None

    services = poll_until(burst_services, "LogErrorBurst pending or firing", timeout=60)
    assert services == {"payments"}, "only payments logged more than 20 errors"


@integration
def test_loki_running_config_shows_the_retention_rules(loki: Backend) -> None:
    """GET /config (what the native stack checks) shows the retention rules per stream."""
    response = httpx.get(loki.url("/config"), timeout=10)
    response.raise_for_status()
    config = yaml.safe_load(response.text)
    selectors = [s["selector"] for s in config["limits_config"]["retention_stream"]]
    assert selectors == ['{security="true"}', '{level=~"error|critical|fatal"}']


# --- Tempo, running -----------------------------------------------------------------------------


def _otlp_trace(trace_id: str) -> dict[str, Any]:
    """Return an OTLP/JSON trace: a shop server span and its payments child span."""
    now = time.time_ns()
    root, child = os.urandom(8).hex(), os.urandom(8).hex()

    def resource_spans(service: str, span: dict[str, Any]) -> dict[str, Any]:
        return {
            "resource": {
                "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
            },
            "scopeSpans": [{"scope": {"name": "tests"}, "spans": [span]}],
        }

    common = {"traceId": trace_id, "startTimeUnixNano": str(now), "status": {}}
    return {
        "resourceSpans": [
            resource_spans(
                "shop",
                common
                | {
                    "spanId": root,
                    "name": "POST /checkout",
                    "kind": 2,  # SERVER
                    "endTimeUnixNano": str(now + 80_000_000),
                },
            ),
            resource_spans(
                "payments",
                common
                | {
                    "spanId": child,
                    "parentSpanId": root,
                    "name": "POST /charge",
                    "kind": 2,
                    "endTimeUnixNano": str(now + 50_000_000),
                },
            ),
        ]
    }


@integration
def test_tempo_is_ready_within_seconds(tempo: Backend) -> None:
    """A monolithic Tempo answers /ready within seconds."""
    assert tempo.ready_after < READY_WITHIN_SECONDS, f"ready after {tempo.ready_after:.1f} s"


@integration
def test_tempo_health_command_is_a_working_compose_healthcheck(tempo: Backend) -> None:
    """`tempo -health` (the compose healthcheck: the image has no shell or wget) sees /ready."""
    result = _run([str(require_binary("tempo")), "-health", f"-health.url={tempo.url('/ready')}"])
    assert result.returncode == 0, result.stdout + result.stderr


@integration
def test_tempo_trace_is_found_by_id_and_by_traceql(tempo: Backend) -> None:
    """An OTLP/HTTP trace is found by id at once, and by TraceQL within seconds."""
    trace_id = os.urandom(16).hex()
    sent = int(time.time())
    otlp = f"http://{tempo.otlp_http}/v1/traces"
    assert _post_json(otlp, _otlp_trace(trace_id)) == 200

    def by_id() -> dict[str, Any]:
        body: dict[str, Any] = _get_json(tempo.url(f"/api/v2/traces/{trace_id}"))
        return body

    trace = poll_until(by_id, f"trace {trace_id} by id", timeout=15)
    services = {
        attribute["value"]["stringValue"]
        for batch in trace["trace"]["resourceSpans"]
        for attribute in batch["resource"]["attributes"]
        if attribute["key"] == "service.name"
    }
    assert services == {"shop", "payments"}
    search = {
        "q": '{ resource.service.name = "payments" && name = "POST /charge" }',
        "start": str(sent - 60),
        "end": str(sent + 60),
    }

    def by_traceql() -> bool:
        found = _get_json(tempo.url("/api/search"), search).get("traces", [])
        return any(t["traceID"].lstrip("0") == trace_id.lstrip("0") for t in found)

    # query_end_cutoff is 5 s (tempo.yaml): allow for it, the live-store's cut and a margin.
    poll_until(by_traceql, f"trace {trace_id} by TraceQL", timeout=30)


@integration
def test_tempo_metrics_generator_remote_writes_to_prometheus(
    tempo: Backend, prometheus: WebhookReceiver
) -> None:
    """The metrics-generator sees the shop -> payments edge and remote-writes to Prometheus."""
    otlp = f"http://{tempo.otlp_http}/v1/traces"
    assert _post_json(otlp, _otlp_trace(os.urandom(16).hex())) == 200

    def edge_seen() -> bool:
        text = httpx.get(tempo.url("/metrics"), timeout=10).text
        match = re.search(
            r"^tempo_metrics_generator_processor_service_graphs_edges\{.*\} (\S+)$", text, re.M
        )
        return bool(match and float(match.group(1)) >= 1)

    poll_until(edge_seen, "a service-graph edge in Tempo's metrics-generator", timeout=30)
    # The registry collects every 15 s; remote write sends within seconds after that.
    poll_until(
        lambda: any(d.path == "/api/v1/write" for d in prometheus.snapshot()),
        "a remote-write request from Tempo",
        timeout=60,
    )
    headers = next(d.headers for d in prometheus.snapshot() if d.path == "/api/v1/write")
    assert headers.get("Content-Encoding") == "snappy"
