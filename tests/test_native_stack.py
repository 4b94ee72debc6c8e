"""The native run: the compose stack's backends and apps as local processes, checked for real.

Debian's Prometheus and Alertmanager, the real Loki 3.7.6 and Tempo 3.0.3, the demo shop and
payments all start from the compose file's own config files, with only addresses and data
folders substituted (tests/stack_support/native.py). There is no collector here: the apps send
traces straight to Tempo and logs straight to Loki's OTLP endpoint. The webhook relay's address
is a receiver this module owns, so the test sees exactly what Alertmanager delivers.

One stack serves the whole module. Traffic starts as soon as it is up (a traced checkout,
failed logins, payment declines in the background) so the slow paths (scrapes, rule
evaluations, `for:` durations, Alertmanager's group wait) overlap; each test then polls its
backend with a deadline.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stack_support import poll_until, require_binary, require_listening
from stack_support.native import NOT_RUN_HERE, NativeStack
from stack_support.receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
NATIVE_SERVICES = [
    "alertmanager",
    "prometheus",
    "loki",
    "tempo",
    "payments",
    "shop",
    "synthetic-monitor",
]
DEMO_PASSWORD = "lookout-demo"
# The Prometheus alert the injected payment declines raise, and the receiver that
# alertmanager/route-tests.yaml says its severity goes to.
PAYMENT_ALERT = "PaymentFailureRateHigh"
PAYMENT_ALERT_RECEIVERS = {"chat", "page"}
# The Loki ruler's alert on the `bruteforce_detected` security line the failed logins cause.
LOKI_ALERT = "LogBruteForceDetected"
# Background payment declines: one checkout every DECLINE_INTERVAL s, at most DECLINE_LIMIT.
DECLINE_INTERVAL = 1.0
DECLINE_LIMIT = 400


@dataclass
class Traffic:
    """What the module's traffic did, for the tests to look up."""

    trace_id: str
    order_id: str
    failed_logins: int
    started: float
    declines: int = 0
    last_error: str = ""
    stop: threading.Event = field(default_factory=threading.Event)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    """Stand in for the webhook relay: record what Alertmanager delivers."""
    with WebhookReceiver() as sink:
        yield sink


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, receiver: WebhookReceiver
) -> Iterator[NativeStack]:
    """Start the native stack from the compose config files; stop it after the module."""
    for binary in ("prometheus", "alertmanager", "loki", "tempo"):
        require_binary(binary)
    require_listening("PostgreSQL", "127.0.0.1", 5432)
    require_listening("Redis", "127.0.0.1", 6379)
    native = NativeStack(
        tmp_path_factory.mktemp("native"),
        NATIVE_SERVICES,
        endpoints={"webhook-relay:8080": receiver.hostport},
    )
    native.start()
    try:
        yield native
    finally:
        native.stop()


def _login(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post("/api/login", json={"email": email, "password": password})


def _checkout(client: httpx.Client, token: str, headers: dict[str, str]) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token}", **headers}
    cart = client.post("/api/carts", headers=headers).json()["id"]
    added = client.post(
        f"/api/carts/{cart}/items", json={"product_id": 1, "quantity": 1}, headers=headers
    )
    added.raise_for_status()
    return client.post(
        "/api/checkout",
        json={"cart_id": cart, "payment": {"method": "card", "card_number": "4242424242424242"}},
        headers=auth,
    )


@pytest.fixture(scope="module")
def traffic(stack: NativeStack) -> Iterator[Traffic]:
    """Drive the shop: one traced checkout, failed logins, then declines in the background."""
    shop = httpx.Client(base_url=stack.url("shop", 8000), timeout=10)
    payments = httpx.Client(base_url=stack.url("payments", 8001), timeout=10)
    trace_id = secrets.token_hex(16)
    traced = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    login = _login(shop, "bob@example.com", DEMO_PASSWORD)
    login.raise_for_status()
    token = login.json()["token"]
    order = _checkout(shop, token, traced)
    assert order.status_code == 201, order.text
    # Failed logins for one account: security log lines for the Loki ruler, and the shop's
    # own brute-force counters for Prometheus.
    failed = 0
    for _ in range(12):
        # load10: an account neither the synthetic journeys (alice) nor this module logs in as.
        if _login(shop, "load10@example.com", "not-the-password").status_code in {401, 429}:
            failed += 1
    # Every authorisation now declines (the fault API the chaos scenario uses too).
    fault_token = stack.services["payments"].env["DEMO_FAULT_TOKEN"]
    payments.put(
        "/admin/faults",
        json={"rules": [{"route": "/v1/authorizations", "payment_failure_rate": 1.0}]},
        headers={"X-Fault-Token": fault_token},
    ).raise_for_status()
    result = Traffic(trace_id, order.json()["id"], failed, time.time())

    def declines() -> None:
        for _ in range(DECLINE_LIMIT):
            if result.stop.wait(DECLINE_INTERVAL):
                return
            try:
                if _checkout(shop, token, {}).status_code == 402:
                    result.declines += 1
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                # A failed request is data too (the alert tests look at the backends, not
                # at this loop); the last one is kept for a failure message.
                result.last_error = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=declines, name="payment-declines", daemon=True)
    worker.start()
    try:
        yield result
    finally:
        result.stop.set()
        worker.join(timeout=15)
        shop.close()
        payments.close()


def _prometheus(stack: NativeStack, path: str, **params: str) -> Any:
    response = httpx.get(stack.url("prometheus", 9090, path), params=params, timeout=5)
    response.raise_for_status()
    return response.json()["data"]


def _query(stack: NativeStack, promql: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _prometheus(stack, "/api/v1/query", query=promql)["result"]
    return result


def test_every_scrape_target_that_runs_here_is_up(stack: NativeStack) -> None:
    """Prometheus scrapes each service running here; the rest are the ones that cannot run."""

    def health() -> dict[str, str] | None:
        targets = _prometheus(stack, "/api/v1/targets")["activeTargets"]
        jobs = {t["labels"]["job"]: t["health"] for t in targets}
        return jobs if all(jobs.get(s) == "up" for s in NATIVE_SERVICES) else None

    jobs = poll_until(health, "every native service's scrape target to be up", timeout=60)
    absent = {job for job, state in jobs.items() if state != "up"}
    assert absent <= set(NOT_RUN_HERE) | {"webhook-relay", "synthetic-monitor", "bugsink"}, (
        f"targets down that should run here: {absent - set(NOT_RUN_HERE)}"
    )


def test_rules_load_and_evaluate_without_errors(stack: NativeStack) -> None:
    """Every rule group in prometheus/rules/ is loaded and each rule evaluates cleanly."""
    expected = {
        group["name"]
        for path in sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
        for group in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", [])
    }
    assert expected, "prometheus/rules/ has no rule groups"

    def evaluated() -> list[dict[str, Any]] | None:
        groups = _prometheus(stack, "/api/v1/rules")["groups"]
        if {g["name"] for g in groups} != expected:
            return None
        rules = [rule for group in groups for rule in group["rules"]]
        never = [r["name"] for r in rules if r.get("lastEvaluation", "").startswith("0001")]
        return None if never else rules

    rules = poll_until(evaluated, "every rule group to load and evaluate once", timeout=60)
    failing = {r["name"]: r.get("lastError") for r in rules if r.get("health") == "err"}
    assert not failing, f"rules failing to evaluate: {failing}"


def _tempo_trace(stack: NativeStack, trace_id: str) -> set[str]:
    response = httpx.get(stack.url("tempo", 3200, f"/api/v2/traces/{trace_id}"), timeout=5)
    response.raise_for_status()
    batches = response.json().get("trace", {}).get("resourceSpans", [])
    services = set()
    for batch in batches:
        for attribute in batch.get("resource", {}).get("attributes", []):
            if attribute["key"] == "service.name":
                services.add(attribute["value"]["stringValue"])
    return services


def test_checkout_trace_is_found_in_tempo_by_id(stack: NativeStack, traffic: Traffic) -> None:
    """The checkout's trace, fetched by id, has spans of both shop and payments."""
    services = poll_until(
        lambda: (s := _tempo_trace(stack, traffic.trace_id)) >= {"shop", "payments"} and s,
        f"trace {traffic.trace_id} with shop and payments spans in Tempo",
        timeout=60,
    )
    assert {"shop", "payments"} <= services


def test_checkout_trace_is_found_by_traceql(stack: NativeStack, traffic: Traffic) -> None:
    """TraceQL finds the checkout's trace through a span of payments."""
    query = f'{{ trace:id = "{traffic.trace_id}" && resource.service.name = "payments" }}'

    def search() -> list[str] | None:
        response = httpx.get(
            stack.url("tempo", 3200, "/api/search"),
            params={"q": query, "start": int(traffic.started) - 600, "end": int(time.time()) + 60},
            timeout=5,
        )
        response.raise_for_status()
        found = [t["traceID"].rjust(32, "0") for t in response.json().get("traces", [])]
        return found or None

    found = poll_until(search, f"TraceQL {query}", timeout=60, interval=1)
    assert traffic.trace_id in found


def test_checkout_logs_are_found_in_loki(stack: NativeStack, traffic: Traffic) -> None:
    """The checkout's log lines carry service_name as a label and trace_id as metadata."""
    query = f'{{service_name="shop"}} | trace_id="{traffic.trace_id}"'

    def lines() -> list[Any] | None:
        response = httpx.get(
            stack.url("loki", 3100, "/loki/api/v1/query_range"),
            params={"query": query, "start": str(int((traffic.started - 600) * 1e9))},
            headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"},
            timeout=5,
        )
        response.raise_for_status()
        return response.json()["data"]["result"] or None

    streams = poll_until(lines, f"LogQL {query}", timeout=60)
    assert all(stream["stream"].get("service_name") == "shop" for stream in streams)
    metadata = [
        entry[2].get("structuredMetadata", {})
        for stream in streams
        for entry in stream["values"]
        if len(entry) > 2
    ]
    assert metadata, "Loki returned no structured metadata with the lines"
    assert all(m.get("trace_id") == traffic.trace_id for m in metadata)


@pytest.mark.parametrize(
    "promql",
    [
        'traces_spanmetrics_calls_total{service="shop"}',
        'traces_service_graph_request_total{client="shop", server="payments"}',
    ],
    ids=["span-metrics", "service-graph-edge"],
)
def test_tempo_metrics_generator_writes_to_prometheus(
    stack: NativeStack, traffic: Traffic, promql: str
) -> None:
    """Tempo's span metrics and the shop -> payments edge reach Prometheus by remote write."""
    series = poll_until(lambda: _query(stack, promql), promql, timeout=120, interval=2)
    assert series


def test_prometheus_alert_reaches_the_relay_as_routed(
    stack: NativeStack, traffic: Traffic, receiver: WebhookReceiver
) -> None:
    """Injected payment declines fire the alert; Alertmanager delivers it with the token."""

    def delivered() -> list[Any] | None:
        found = [
            d
            for d in receiver.snapshot()
            if any(a["labels"].get("alertname") == PAYMENT_ALERT for a in d.json["alerts"])
        ]
        return found or None

    deliveries = poll_until(
        delivered, f"{PAYMENT_ALERT} delivered to the relay's address", timeout=420, interval=2
    )
    first = deliveries[0]
    token = (ROOT / "alertmanager" / "relay-token.dev").read_text(encoding="utf-8").strip()
    assert first.path == "/webhook"
    assert first.headers.get("Authorization") == f"Bearer {token}"
    assert first.json["version"] == "4"
    assert first.json["receiver"] in PAYMENT_ALERT_RECEIVERS
    alert = next(a for a in first.json["alerts"] if a["labels"]["alertname"] == PAYMENT_ALERT)
    assert alert["labels"]["job"] == "payments" or alert["labels"].get("service") == "payments"
    assert alert["annotations"]["runbook_url"].endswith(f"/docs/runbooks/{PAYMENT_ALERT}.md")


def test_loki_ruler_alert_reaches_alertmanager(stack: NativeStack, traffic: Traffic) -> None:
    """The failed logins' security log lines fire the Loki ruler's alert in Alertmanager."""

    def active() -> list[Any] | None:
        response = httpx.get(
            stack.url("alertmanager", 9093, "/api/v2/alerts"),
            params={"filter": f'alertname="{LOKI_ALERT}"'},
            timeout=5,
        )
        response.raise_for_status()
        return response.json() or None

    alerts = poll_until(active, f"{LOKI_ALERT} in Alertmanager", timeout=240, interval=2)
    assert alerts[0]["labels"]["alertname"] == LOKI_ALERT


def test_loki_running_config_has_retention_per_stream(stack: NativeStack) -> None:
    """Loki's /config shows longer retention for error and security streams than the default."""
    response = httpx.get(stack.url("loki", 3100, "/config"), timeout=5)
    response.raise_for_status()
    limits = yaml.safe_load(response.text)["limits_config"]
    streams = limits.get("retention_stream") or []
    assert streams, "limits_config.retention_stream is empty"
    default = _hours(limits["retention_period"])
    assert all(_hours(s["period"]) > default for s in streams)
    selectors = " ".join(s["selector"] for s in streams)
    assert "security" in selectors or "audit" in selectors
    assert "error" in selectors


def _hours(duration: str) -> float:
    """Return a Prometheus-style duration (``30d``, ``2160h``, ``4w2d``) in hours."""
    units = {"ms": 1 / 3_600_000, "s": 1 / 3600, "m": 1 / 60, "h": 1, "d": 24, "w": 168, "y": 8760}
    parts = re.findall(r"(\d+)(ms|[smhdwy])", duration)
    assert parts, f"not a duration: {duration!r}"
    return sum(int(number) * units[unit] for number, unit in parts)
