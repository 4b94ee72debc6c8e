"""End to end over the native stack: Locust load, then every dashboard panel and every correlation.

One stack for the module (starting it is the slow part): real Prometheus and Alertmanager
(Debian's), the real Loki and Tempo (../shared/backends), shop, payments, the webhook relay and
the synthetic monitor, from the compose config files with addresses substituted mechanically
(stack_support.native), the machine's Postgres and Redis.

1. A bounded Locust run (tests/load/locustfile.py, budgets enforced) is the traffic.
2. The rare events some panels show are triggered deliberately, as they happen in production:
   a broken route (the shop's own fault injection, compose's DEMO_FAULT_TOKEN: /api/me answers
   500, so there are failed traces and the monitor's login journey fails a step); a
   brute-force burst against one account (the shop's guard detects it; Loki's ruler fires
   LogBruteForceDetected; Alertmanager routes it to the relay); a relay target that refuses
   deliveries (a test-owned routing file: the shipped one plus a webhook that answers 410, so
   the relay records failures and a dead letter, and RelayDeadLetters fires); a certificate
   check (the shipped journeys probe plain HTTP only: the monitor also gets a `tls` check of
   a local endpoint with a 30-day certificate, as a team adds one for its own site).
3. `lookout check --absent otel-collector` runs every panel of every committed dashboard,
   polled until the slow panels (1 h rates, alerts with `for:`) fill or a deadline passes; any
   empty or failing panel fails the test; panels of only the collector's metrics are reported
   as not checkable here, by name, never as passed (no collector runs here).
4. The correlations a person follows in Grafana: exemplar -> trace -> its logs; log -> trace;
   a synthetic journey's trace through the shop; the shop -> payments service-graph edge.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stack_support import PollTimeout, poll_until, require_binary, require_listening
from stack_support.locust import run_locust
from stack_support.native import NativeStack
from stack_support.report import PanelCounts, record_locust, record_panels

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "grafana" / "dashboards"
SHIPPED_ROUTING = ROOT / "services" / "webhook-relay" / "routing.compose.yml"
SHIPPED_JOURNEYS = ROOT / "services" / "synthetic-monitor" / "journeys"
SERVICES = [
    "prometheus", "alertmanager", "loki", "tempo", "payments", "shop", "webhook-relay",
    "synthetic-monitor",
]  # fmt: skip
#: The bounded load: enough for every journey and 1-minute rates, within CI's time budget.
LOAD_USERS, LOAD_SPAWN_RATE, LOAD_SECONDS = 8, 4, 60
#: How long the slow panels may take to fill after the load (RelayDeadLetters has `for: 1m`).
CHECK_DEADLINE = 240.0
#: The account the deliberate brute-force burst targets (it does not exist: the guard counts
#: failures per account and per address either way).
INTRUDER_TARGET = "e2e-intruder@example.com"


class RefusingTarget:
    """A webhook endpoint that refuses every delivery with 410 Gone (a permanent failure)."""

    def __init__(self) -> None:
        self.refused = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target.refused += 1
                self.send_response(410)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet: the relay's metrics tell what happened."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/alerts"

    def __enter__(self) -> RefusingTarget:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class TlsEndpoint:
    """A TLS listener on loopback with a 30-day self-signed certificate (made by openssl)."""

    def __init__(self, folder: Path) -> None:
        self.cert, key = folder / "endpoint-cert.pem", folder / "endpoint-key.pem"
        subprocess.run(
            [require_binary("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", str(key), "-out", str(self.cert), "-days", "30",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            capture_output=True, timeout=60, check=True,
        )  # fmt: skip
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet: the monitor's metrics tell what happened."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.port = int(self._server.server_address[1])

    def __enter__(self) -> TlsEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _journeys_with_certificate_check(folder: Path, endpoint: TlsEndpoint) -> Path:
    """Write the shipped journeys plus a `tls` check of ``endpoint`` into a folder of their own."""
    journeys = folder / "journeys"
    shutil.copytree(SHIPPED_JOURNEYS, journeys)
    check = {
        "name": "e2e-certificate",
        "type": "tls",
        "host": "127.0.0.1",
        "port": endpoint.port,
        "interval": "15s",
        "tls": {"ca_file": str(endpoint.cert)},
        "conditions": ["[CERT_DAYS_LEFT] > 14"],
    }
    (journeys / "e2e-certificate.yml").write_text(
        yaml.safe_dump({"checks": [check]}, sort_keys=False), encoding="utf-8"
    )
    return journeys


def _routing_with_refusing_target(folder: Path, url: str) -> Path:
    """Write the shipped relay routing plus a webhook target at ``url`` for every alert."""
    routing = yaml.safe_load(SHIPPED_ROUTING.read_text(encoding="utf-8"))
    routing["targets"]["e2e-refusing-webhook"] = {"type": "webhook", "url": url}
    for rule in routing["rules"]:
        if rule["name"] != "watchdog":
            rule["targets"] = [*rule["targets"], "e2e-refusing-webhook"]
    path = folder / "routing.yml"
    path.write_text(yaml.safe_dump(routing, sort_keys=False), encoding="utf-8")
    return path


#: The route the deliberate fault breaks: the monitor's login journey reads it, the load does
#: not any more (Locust has finished by then).
BROKEN_ROUTE = "/api/me"


def _break_profile_route(stack: NativeStack) -> None:
    """Make /api/me answer 500 (the shop's fault injection), and call it once as a shopper."""
    shop = stack.url("shop", 8000)
    token = stack.services["shop"].env["DEMO_FAULT_TOKEN"]
    with httpx.Client(base_url=shop, timeout=10) as client:
        client.put(
            "/admin/faults",
            json={"rules": [{"route": BROKEN_ROUTE, "error_rate": 1.0}]},
            headers={"X-Fault-Token": token},
        ).raise_for_status()
        login = client.post(
            "/api/login", json={"email": "load01@example.com", "password": "lookout-demo"}
        )
        login.raise_for_status()
        broken = client.get(
            BROKEN_ROUTE, headers={"Authorization": f"Bearer {login.json()['token']}"}
        )
        assert broken.status_code == 500, broken.text


def _brute_force_burst(shop: str) -> None:
    """Send one more wrong password than the shop's guard allows (5 in 300 s)."""
    with httpx.Client(base_url=shop, timeout=10) as client:
        for _ in range(6):
            client.post(
                "/api/login",
                json={"email": INTRUDER_TARGET, "password": "guess"},
                headers={"baggage": "lookout.synthetic=load"},
            )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    """Start the native stack, run the bounded load, then trigger the rare events."""
    for binary in ("prometheus", "alertmanager", "loki", "tempo"):
        require_binary(binary)
    require_listening("PostgreSQL", "127.0.0.1", 5432)
    require_listening("Redis", "127.0.0.1", 6379)
    workdir = tmp_path_factory.mktemp("e2e")
    with RefusingTarget() as refusing, TlsEndpoint(workdir) as endpoint:
        routing = _routing_with_refusing_target(workdir, refusing.url)
        journeys = _journeys_with_certificate_check(workdir, endpoint)
        native = NativeStack(
            workdir / "stack",
            SERVICES,
            extra_env={
                "webhook-relay": {"RELAY_ROUTING_FILE": str(routing)},
                "synthetic-monitor": {"MONITOR_CONFIG_PATH": str(journeys)},
            },
        )
        started = time.monotonic()
        native.start()
        try:
            print(f"\nnative stack of {len(SERVICES)} services up in "
                  f"{time.monotonic() - started:.1f} s")  # fmt: skip
            run = run_locust(
                native.url("shop", 8000),
                users=LOAD_USERS,
                spawn_rate=LOAD_SPAWN_RATE,
                seconds=LOAD_SECONDS,
            )
            record_locust(run.headline("e2e"))
            assert run.returncode == 0, f"Locust broke a budget:\n{run.stderr[-3000:]}"
            _break_profile_route(native)
            _brute_force_burst(native.url("shop", 8000))
            yield native
        finally:
            native.stop()


def _check(stack: NativeStack) -> dict[str, Any]:
    """Run `lookout check` over every committed dashboard; return its JSON report."""
    command = [
        sys.executable, "-m", "lookout_stack", "check", str(DASHBOARDS),
        "--prometheus", stack.url("prometheus", 9090), "--loki", stack.url("loki", 3100),
        "--tempo", stack.url("tempo", 3200), "--absent", "otel-collector",
        "--from", "now-15m", "--var", "service=shop", "--json", "--quiet",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode in {0, 1}, done.stderr[-2000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _problems(report: dict[str, Any]) -> list[str]:
    """Return "dashboard / panel: why" for each empty or failing panel (or dashboard)."""
    problems = []
    for dashboard in report["dashboards"]:
        if dashboard.get("error"):
            problems.append(f"{dashboard['uid']}: {dashboard['error']}")
        for panel in dashboard["panels"]:
            if panel["status"] in {"empty", "error"}:
                why = "; ".join(
                    f"{t['refId']} {t['status']}: {t['detail']}"
                    for t in panel["targets"]
                    if t["status"] in {"empty", "error"}
                )
                problems.append(f"{dashboard['uid']} / {panel['title']}: {why or panel['detail']}")
    return problems


def _not_checkable(report: dict[str, Any]) -> list[str]:
    """Return "dashboard / panel: why" for each panel not checkable here."""
    lines = []
    for dashboard in report["dashboards"]:
        for panel in dashboard["panels"]:
            if panel["status"] == "unchecked":
                why = {t["detail"] for t in panel["targets"] if t["status"] == "unchecked"}
                lines.append(
                    f"{dashboard['uid']} / {panel['title']}: "
                    f"{'; '.join(sorted(why)) or panel['detail']}"
                )
    return lines


def test_every_dashboard_panel_has_data_or_is_named_not_checkable(stack: NativeStack) -> None:
    """After the load and the rare events, no panel of any dashboard is empty or failing."""
    started = time.monotonic()
    last: dict[str, Any] = {}

    def clean() -> bool:
        last["report"] = _check(stack)
        return not _problems(last["report"])

    # A timeout is reported below, with every problem named.
    with contextlib.suppress(PollTimeout):
        poll_until(clean, "every dashboard panel to have data", CHECK_DEADLINE, 10)
    report = last["report"]
    panels = [p for d in report["dashboards"] for p in d["panels"]]
    problems = _problems(report)
    not_checkable = _not_checkable(report)
    with_data = sum(p["status"] == "data" for p in panels)
    record_panels(
        PanelCounts(
            checked=len(panels) - len(not_checkable),
            with_data=with_data,
            problems=problems,
            not_checkable=not_checkable,
        )
    )
    print(f"\nlookout check over {len(report['dashboards'])} dashboards, "
          f"{time.monotonic() - started:.0f} s after the load: {report['summary']}")  # fmt: skip
    assert len(report["dashboards"]) == len(list(DASHBOARDS.glob("*.json")))
    assert not problems, "empty or failing panels:\n" + "\n".join(problems)
    # Not checkable here means queries of only the collector's metrics (--absent), nothing
    # else: the reason of each such query, not the panel's or dashboard's name, says so.
    absent = "--absent says otel-collector does not run here"
    reasons = [
        reason
        for panel in panels
        if panel["status"] == "unchecked"
        for reason in [t["detail"] for t in panel["targets"] if t["status"] == "unchecked"]
        or [panel["detail"]]
    ]
    if any("otelcol_" in path.read_text() for path in DASHBOARDS.glob("*.json")):
        assert reasons, "the collector's panels were not reported not checkable (--absent)"
    assert all(absent in reason for reason in reasons), not_checkable


# --- correlations, as a person clicking through Grafana follows them --------------------------


def _prometheus(stack: NativeStack, path: str, **params: Any) -> Any:
    response = httpx.get(stack.url("prometheus", 9090, path), params=params, timeout=10)
    response.raise_for_status()
    return response.json()["data"]


def _tempo_trace(stack: NativeStack, trace_id: str) -> list[tuple[str, str]]:
    """Return (service.name, span kind) of every span of a trace Tempo returns (or [])."""
    response = httpx.get(stack.url("tempo", 3200, f"/api/traces/{trace_id}"), timeout=10)
    if response.status_code == 404:
        return []
    response.raise_for_status()
    body = response.json()
    batches = body.get("batches") or body.get("resourceSpans") or []
    spans = []
    for batch in batches:
        attributes = (batch.get("resource") or {}).get("attributes") or []
        service = next(
            (a["value"].get("stringValue", "") for a in attributes if a["key"] == "service.name"),
            "",
        )
        for scope in batch.get("scopeSpans") or batch.get("instrumentationLibrarySpans") or []:
            spans.extend((service, str(span.get("kind", ""))) for span in scope.get("spans", []))
    return spans


def _loki_lines(stack: NativeStack, query: str, limit: int = 20) -> list[dict[str, str]]:
    """Return the stream labels (structured metadata included) of each line a query finds."""
    now = time.time_ns()
    response = httpx.get(
        stack.url("loki", 3100, "/loki/api/v1/query_range"),
        params={"query": query, "start": now - 15 * 60 * 10**9, "end": now, "limit": limit},
        timeout=10,
    )
    response.raise_for_status()
    return [
        stream["stream"] for stream in response.json()["data"]["result"] for _ in stream["values"]
    ]


def _shop_exemplar_trace_ids(stack: NativeStack) -> list[str]:
    now = time.time()
    data = _prometheus(
        stack,
        "/api/v1/query_exemplars",
        query='http_server_request_duration_seconds_bucket{job="shop"}',
        start=now - 900,
        end=now,
    )
    return [
        exemplar["labels"]["trace_id"]
        for series in data
        for exemplar in series["exemplars"]
        if exemplar["labels"].get("trace_id")
    ]


def test_exemplar_trace_is_in_tempo_with_its_logs_in_loki(stack: NativeStack) -> None:
    """A shop latency exemplar's trace id is a trace Tempo returns, with that request's logs."""
    trace_ids = poll_until(
        lambda: _shop_exemplar_trace_ids(stack), "exemplars on the shop's latency histogram", 60
    )
    found: dict[str, Any] = {}

    def followed() -> bool:
        for trace_id in reversed(trace_ids[-10:]):  # the newest first
            spans = _tempo_trace(stack, trace_id)
            if not any(service == "shop" for service, _ in spans):
                continue
            lines = _loki_lines(stack, f'{{service_name="shop"}} | trace_id="{trace_id}"')
            if lines:
                found.update(trace_id=trace_id, lines=lines)
                return True
        return False

    poll_until(followed, "an exemplar's trace in Tempo with log lines in Loki", 60, 2)
    assert all(line["trace_id"] == found["trace_id"] for line in found["lines"])


def test_log_line_trace_id_finds_its_trace(stack: NativeStack) -> None:
    """A shop log line's trace_id (structured metadata) opens a trace of the shop in Tempo."""
    lines = poll_until(
        lambda: _loki_lines(stack, '{service_name="shop"} | trace_id!=""', limit=5),
        "shop log lines carrying a trace_id",
        60,
    )
    trace_id = lines[0]["trace_id"]
    spans = poll_until(
        lambda: _tempo_trace(stack, trace_id), f"trace {trace_id} of a log line in Tempo", 60
    )
    assert any(service == "shop" for service, _ in spans), spans


def test_synthetic_journey_trace_contains_the_shops_server_spans(stack: NativeStack) -> None:
    """A synthetic monitor journey's trace holds the shop's server spans (one trace id)."""
    query = (
        '{resource.service.name="synthetic-monitor"} >> '
        '{resource.service.name="shop" && kind=server}'
    )

    def journeys() -> list[str]:
        response = httpx.get(
            stack.url("tempo", 3200, "/api/search"),
            params={
                "q": query,
                "limit": 5,
                "start": int(time.time()) - 900,
                "end": int(time.time()),
            },
            timeout=10,
        )
        response.raise_for_status()
        return [t["traceID"] for t in response.json().get("traces") or []]

    trace_id = poll_until(journeys, "a journey trace through the shop", 90, 3)[0]
    spans = _tempo_trace(stack, trace_id)
    services = {service for service, _ in spans}
    assert "synthetic-monitor" in services, spans
    assert ("shop", "SPAN_KIND_SERVER") in spans, spans


def test_service_graph_has_the_shop_to_payments_edge(stack: NativeStack) -> None:
    """Tempo's metrics-generator wrote the shop -> payments edge to Prometheus."""
    edge = poll_until(
        lambda: _prometheus(
            stack,
            "/api/v1/query",
            query='traces_service_graph_request_total{client="shop", server="payments"} > 0',
        )["result"],
        "the service graph's shop -> payments edge",
        90,
        3,
    )
    assert edge[0]["metric"]["client"] == "shop"
