"""Lint helpers for the generated dashboards (grafana/dashboards/*.json).

What a panel asks for is checked against what the system really has: the data source uids
provisioned in grafana/provisioning/datasources, PromQL that Prometheus' grammar accepts (the
``promql-parser`` package), and metric names that the services export on /metrics (collected
from the real apps, run in-process), that a recording rule records, or that the backends
(Prometheus, Loki, Tempo, Alertmanager: their real processes; the collector: its docs) have.
Grafana's variables and macros are replaced the way Grafana would before a query is checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client.parser import text_string_to_metric_families

from lookout_stack.validate.checks import dashboard_lint
from lookout_stack.validate.checks.dashboard_lint import iter_panels

__all__ = [
    "COLLECTOR_METRICS",
    "DASHBOARDS_DIR",
    "Query",
    "app_metric_names",
    "dashboards",
    "exposition_names",
    "iter_panels",
    "iter_queries",
    "otlp_log",
    "otlp_trace",
    "promql_metric_names",
    "provisioned_datasources",
    "recorded_names",
    "substitute",
]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = ROOT / "grafana" / "dashboards"
DATASOURCES_DIR = ROOT / "grafana" / "provisioning" / "datasources"

#: The collector's own metrics the dashboards use, as collector-contrib 0.159 exposes them on
#: :8888 (counters with `_total`). No collector binary runs here: the names are taken from
#: https://opentelemetry.io/docs/collector/internal-telemetry/#lists-of-internal-metrics
#: (receiver, exporter and queue metrics at the default `normal` level).
COLLECTOR_METRICS = frozenset(
    {
        "otelcol_receiver_accepted_spans_total",
        "otelcol_receiver_refused_spans_total",
        "otelcol_receiver_accepted_log_records_total",
        "otelcol_receiver_refused_log_records_total",
        "otelcol_exporter_sent_spans_total",
        "otelcol_exporter_send_failed_spans_total",
        "otelcol_exporter_enqueue_failed_spans_total",
        "otelcol_exporter_sent_log_records_total",
        "otelcol_exporter_send_failed_log_records_total",
        "otelcol_exporter_enqueue_failed_log_records_total",
        "otelcol_exporter_queue_size",
        "otelcol_exporter_queue_capacity",
        "otelcol_process_memory_rss",
    }
)

#: What Grafana substitutes for its macros; any duration does for a syntax or name check.
MACROS = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__range": "1h",
    "__auto": "1m",
    "__range_s": "3600",
    "__interval_ms": "30000",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


@dataclass(frozen=True)
class Query:
    """One query of a dashboard: where it is, which data source, and its text."""

    dashboard: str
    panel: str
    datasource_type: str
    datasource_uid: str
    text: str
    query_type: str = ""

    @property
    def where(self) -> str:
        """Return 'dashboard.json / panel' for messages."""
        return f"{self.dashboard} / {self.panel}"


def dashboards(folder: Path = DASHBOARDS_DIR) -> dict[str, dict[str, Any]]:
    """Return {file name: parsed JSON} of every dashboard in ``folder``."""
    return {
        p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))
    }


def iter_queries(name: str, document: dict[str, Any]) -> Iterator[Query]:
    """Yield every panel target, query variable and annotation query of a dashboard."""
    for panel in iter_panels(document):
        panel_ds = panel.get("datasource") or {}
        for target in panel.get("targets", []):
            ds = target.get("datasource") or panel_ds
            text = target.get("expr") or target.get("query") or ""
            yield Query(
                name,
                panel.get("title", "?"),
                ds.get("type", ""),
                ds.get("uid", ""),
                text,
                target.get("queryType", ""),
            )
    for variable in document.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        ds = variable.get("datasource") or {}
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        yield Query(
            name,
            f"variable ${variable['name']}",
            ds.get("type", ""),
            ds.get("uid", ""),
            text,
            "variable",
        )
    for annotation in document.get("annotations", {}).get("list", []):
        ds = annotation.get("datasource") or {}
        if annotation.get("expr"):
            yield Query(
                name,
                f"annotation {annotation.get('name')}",
                ds.get("type", ""),
                ds.get("uid", ""),
                annotation["expr"],
            )


def substitute(text: str, value: str = "shop") -> str:
    """Replace Grafana's macros with durations and every variable with ``value``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        return MACROS.get(name, value)

    return _VARIABLE.sub(replace, text)


def promql(query: Query) -> str:
    """Return the PromQL a Prometheus query runs (a variable's label_values() selector)."""
    text = substitute(query.text)
    if query.query_type == "variable":
        match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", text, re.S)
        return match.group(1) if match else text
    return text


def promql_metric_names(expr: str) -> set[str]:
    """Return the metric names ``expr`` selects (ValueError when it does not parse)."""
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            names.update(m.value for m in node.matchers.matchers if m.name == "__name__")
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def exposition_names(text: str) -> set[str]:
    """Return every series name a /metrics text exposes or would expose for its families.

    A labelled family with no child yet shows only its HELP/TYPE lines: its sample names
    are derived from its type (``_total``/``_created`` for a counter, ``_bucket``/``_sum``/
    ``_count`` for a histogram, ...), as Prometheus would store them once it has values.
    """
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def recorded_names(root: Path = ROOT) -> set[str]:
    """Return every ``record:`` name of prometheus/rules/*.yml (slo.yml included once merged)."""
    names: set[str] = set()
    for path in sorted((root / "prometheus" / "rules").glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for group in document.get("groups") or []:
            names.update(r["record"] for r in group.get("rules") or [] if "record" in r)
    return names


def provisioned_datasources(folder: Path = DATASOURCES_DIR) -> dict[str, str]:
    """Return {uid: type} of every provisioned data source (lookout validate's reading)."""
    return dashboard_lint.provisioned_datasources(folder)


def app_metric_names(workdir: Path) -> dict[str, set[str]]:
    """Return {service: names} from the /metrics of the shop, payments, relay and monitor.

    Each runs in-process from its own app factory (SQLite in ``workdir``, no network), is
    given a little traffic so lazily created families exist, and is scraped like Prometheus.
    """
    return {
        "shop": _shop_names(workdir),
        "payments": _payments_names(workdir),
        "webhook-relay": _relay_names(workdir),
        "synthetic-monitor": _monitor_names(workdir),
    }


def _shop_names(workdir: Path) -> set[str]:
    from fastapi.testclient import TestClient
    from prometheus_client import CollectorRegistry

    from lookout_demo.settings import ShopSettings
    from lookout_demo.shop.app import create_app

    settings = ShopSettings(
        database_url=f"sqlite+aiosqlite:///{workdir / 'shop.db'}",
        password_hash_iterations=1000,
        payments_url="http://127.0.0.1:9",
        health_cache_ttl_seconds=0.0,
    )
    app = create_app(settings, registry=CollectorRegistry())
    with TestClient(app, raise_server_exceptions=False) as client:
        client.get("/api/products")
        client.get("/api/v1/products")
        client.get("/api/v2/products")
        client.post("/api/login", json={"email": "nobody@example.com", "password": "wrong"})
        return exposition_names(client.get("/metrics").text)


def _payments_names(workdir: Path) -> set[str]:
    from fastapi.testclient import TestClient
    from prometheus_client import CollectorRegistry

    from lookout_demo.payments.app import create_app
    from lookout_demo.settings import PaymentsSettings

    settings = PaymentsSettings(database_url=f"sqlite+aiosqlite:///{workdir / 'payments.db'}")
    app = create_app(settings, registry=CollectorRegistry())
    with TestClient(app, raise_server_exceptions=False) as client:
        return exposition_names(client.get("/metrics").text)


def _relay_names(workdir: Path) -> set[str]:
    from fastapi.testclient import TestClient
    from prometheus_client import CollectorRegistry

    from webhook_relay.app import create_app
    from webhook_relay.routing import load_routing
    from webhook_relay.settings import Settings

    routing = workdir / "routing.yml"
    routing.write_text(
        "targets:\n  hook: {type: webhook, url: 'http://127.0.0.1:9/unused'}\n"
        "rules:\n  - name: all\n    targets: [hook]\n",
        encoding="utf-8",
    )
    settings = Settings(
        routing_file=routing,
        database_url=f"sqlite:///{workdir / 'relay.db'}",
        token="lint-token",  # a throw-away token for an in-process relay
        workers=0,
    )
    app = create_app(settings, load_routing(routing), CollectorRegistry())
    with TestClient(app) as client:
        return exposition_names(client.get("/metrics").text)


def _monitor_names(workdir: Path) -> set[str]:
    from prometheus_client import CollectorRegistry
    from starlette.testclient import TestClient

    from synthetic_monitor.metrics import MonitorMetrics
    from synthetic_monitor.runner import JourneyRunner
    from synthetic_monitor.service import Monitor
    from synthetic_monitor.storage import MemoryStore
    from synthetic_monitor.web import create_app

    checks = workdir / "journeys.yml"
    checks.write_text(
        "checks:\n  - {name: home, url: 'http://127.0.0.1:9/', interval: 60}\n", encoding="utf-8"
    )
    registry = CollectorRegistry()
    metrics = MonitorMetrics(registry)
    monitor = Monitor(
        checks,
        JourneyRunner(observer=metrics),
        MemoryStore(),
        metrics,
        trace_url_template="http://127.0.0.1:3000/explore?trace={trace_id}",
    )
    monitor.load_initial()
    with TestClient(create_app(monitor, registry)) as client:
        return exposition_names(client.get("/metrics").text)


def otlp_log(service: str, body: str, time_ns: int, **attributes: str) -> dict[str, Any]:
    """Return an OTLP/JSON logs request with one WARNING record from ``service``."""
    record = {
        "timeUnixNano": str(time_ns),
        "severityText": "WARNING",
        "severityNumber": 13,
        "body": {"stringValue": body},
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()],
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    scope = {"scope": {"name": "lint"}, "logRecords": [record]}
    return {"resourceLogs": [{"resource": resource, "scopeLogs": [scope]}]}


def otlp_trace(trace_id: str, time_ns: int) -> dict[str, Any]:
    """Return an OTLP/JSON trace: a shop server span calling a payments server span."""
    root, child = trace_id[:16], trace_id[16:]

    def spans(service: str, span: dict[str, Any]) -> dict[str, Any]:
        resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
        return {"resource": resource, "scopeSpans": [{"scope": {"name": "lint"}, "spans": [span]}]}

    common = {"traceId": trace_id, "startTimeUnixNano": str(time_ns), "kind": 2, "status": {}}
    return {
        "resourceSpans": [
            spans(
                "shop",
                common
                | {
                    "spanId": root,
                    "name": "POST /api/checkout",
                    "endTimeUnixNano": str(time_ns + 80_000_000),
                },
            ),
            spans(
                "payments",
                common
                | {
                    "spanId": child,
                    "parentSpanId": root,
                    "name": "POST /payments",
                    "endTimeUnixNano": str(time_ns + 50_000_000),
                },
            ),
        ]
    }
