"""lookout-stack: ingestion and drop rates of Prometheus, Loki, Tempo and the collector.

Metric names are the ones these binaries export: Prometheus 2.42/3.x, Loki 3.7.6 and
Tempo 3.0.3 as seen on their /metrics (the dashboard lint test collects them from the real
processes), the collector's from the 0.159 internal-telemetry docs (counters with `_total`,
https://opentelemetry.io/docs/collector/internal-telemetry/#lists-of-internal-metrics).
Thresholds are the stack alerts' (prometheus/rules/stack.yml).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from lookout_stack.dashboards.panels import (
    Steps,
    new_dashboard,
    or_zero,
    prom,
    timeseries_panel,
)
from lookout_stack.dashboards.rules import Rules

__all__ = ["UID", "build"]

UID = "lookout-stack"
RI = "[$__rate_interval]"
# The collector alerts compare a sum of label_replace()d rates: their tail before the comparison.
LABEL_REPLACE_END = '"job", ".*") )'


def build(rules: Rules) -> Dashboard:
    """Return the stack health dashboard."""
    dashboard = new_dashboard(
        UID,
        "Lookout / Stack health",
        "What the backends take in and what they drop: Prometheus samples and remote "
        "writes, Loki log lines, Tempo spans, the collector's receivers and exporters.",
        tags=["stack"],
        time_from="now-3h",
    )
    dashboard = _prometheus(dashboard, rules)
    dashboard = _loki(dashboard, rules)
    dashboard = _tempo(dashboard, rules)
    return _collector(dashboard, rules)


def _prometheus(dashboard: Dashboard, rules: Rules) -> Dashboard:
    write = 'handler="/api/v1/write"'
    return (
        dashboard.with_row(Row("Prometheus"))
        .with_panel(
            timeseries_panel(
                "Samples ingested",
                "Samples appended to the head block per second (scrapes, rules and remote "
                "writes), and the series in memory.",
                prom(
                    f"sum by (job) (rate(prometheus_tsdb_head_samples_appended_total{RI}))",
                    "{{job}} samples/s",
                ),
                unit="ops",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Remote-write receiver",
                "Remote-write requests per second (Tempo's span metrics) by status code. "
                "Dashed: PrometheusRemoteWriteReceiverErrors fires on any 4xx/5xx.",
                prom(
                    f"sum by (code) (rate(prometheus_http_requests_total{{{write}}}{RI}))",
                    "{{code}}",
                ),
                unit="reqps",
                steps=Steps.above(
                    None,
                    rules.threshold("PrometheusRemoteWriteReceiverErrors", "warning", "[5m]))"),
                ),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Rule evaluation failures and alert delivery errors",
                "Rule evaluations that failed and alerts that could not reach Alertmanager, "
                "per second (Prometheus and the Loki ruler). Dashed: RuleEvaluationFailures "
                "and AlertmanagerUnreachable fire on any.",
                prom(
                    f"sum by (job) (rate(prometheus_rule_evaluation_failures_total{RI}))",
                    "{{job}} rule failures",
                ),
                prom(
                    f"sum by (job) (rate(loki_prometheus_rule_evaluation_failures_total{RI}))",
                    "{{job}} rule failures",
                ),
                prom(
                    f"sum by (job) (rate(prometheus_notifications_errors_total{RI}))",
                    "{{job}} notification errors",
                ),
                unit="ops",
                steps=Steps.above(
                    None,
                    rules.threshold(
                        "RuleEvaluationFailures",
                        "critical",
                        "prometheus_rule_evaluation_failures_total",
                    ),
                ),
                span=8,
            )
        )
    )


def _loki(dashboard: Dashboard, rules: Rules) -> Dashboard:
    discarded = "loki_discarded_samples_total"
    return (
        dashboard.with_row(Row("Loki"))
        .with_panel(
            timeseries_panel(
                "Log lines received",
                "Lines the distributor accepted per second, by tenant.",
                prom(
                    f"sum by (tenant) (rate(loki_distributor_lines_received_total{RI}))",
                    "{{tenant}}",
                ),
                unit="ops",
                span=6,
            )
        )
        .with_panel(
            timeseries_panel(
                "Log bytes received",
                "Bytes of log lines (and of their structured metadata) received per second.",
                prom(f"sum(rate(loki_distributor_bytes_received_total{RI}))", "lines"),
                prom(
                    f"sum(rate(loki_distributor_structured_metadata_bytes_received_total{RI}))",
                    "structured metadata",
                ),
                unit="Bps",
                span=6,
            )
        )
        .with_panel(
            timeseries_panel(
                "Log lines discarded",
                "Lines Loki refused, per second by reason (rate limits, too old, too long). "
                "Dashed: LokiDiscardingLogs fires on any.",
                prom(or_zero(f"sum by (reason) (rate({discarded}{RI}))", "reason"), "{{reason}}"),
                unit="ops",
                steps=Steps.above(rules.threshold("LokiDiscardingLogs", "warning", discarded)),
                span=6,
            )
        )
        .with_panel(
            timeseries_panel(
                "Streams in memory",
                "Active log streams held by the ingester.",
                prom("sum(loki_ingester_memory_streams)", "streams"),
                unit="none",
                span=6,
            )
        )
    )


def _tempo(dashboard: Dashboard, rules: Rules) -> Dashboard:
    return (
        dashboard.with_row(Row("Tempo"))
        .with_panel(
            timeseries_panel(
                "Spans received",
                "Spans the distributor received and the OTLP receiver accepted, per second.",
                prom(f"sum(rate(tempo_distributor_spans_received_total{RI}))", "distributor"),
                prom(f"sum(rate(tempo_receiver_accepted_spans{RI}))", "receiver accepted"),
                unit="ops",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Spans refused or discarded",
                "Spans the OTLP receiver refused and spans the metrics-generator discarded, "
                "per second. Dashed: TempoDiscardingSpans fires on any refusal.",
                prom(
                    f"sum by (transport) (rate(tempo_receiver_refused_spans{RI}))",
                    "receiver refused ({{transport}})",
                ),
                prom(
                    f"sum by (reason) (rate(tempo_metrics_generator_spans_discarded_total{RI}))",
                    "generator discarded ({{reason}})",
                ),
                unit="ops",
                steps=Steps.above(
                    rules.threshold(
                        "TempoDiscardingSpans", "warning", "tempo_receiver_refused_spans"
                    )
                ),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Span metrics written to Prometheus",
                "Samples the metrics-generator remote-wrote, and those failed or retried. "
                "Dashed: TempoRemoteWriteFailing fires on any failure or retry.",
                prom(
                    f'sum(rate(prometheus_remote_storage_samples_total{{job="tempo"}}{RI}))',
                    "written",
                ),
                prom(
                    f'sum(rate(prometheus_remote_storage_samples_failed_total{{job="tempo"}}{RI}))',
                    "failed",
                ),
                prom(
                    'sum(rate(prometheus_remote_storage_samples_retried_total{job="tempo"}'
                    f"{RI}))",
                    "retried",
                ),
                unit="ops",
                steps=Steps.above(rules.threshold("TempoRemoteWriteFailing", "warning", "[5m]))")),
                span=8,
            )
        )
    )


def _collector(dashboard: Dashboard, rules: Rules) -> Dashboard:
    sent_failed = "otelcol_exporter_send_failed_spans_total"
    refused = "otelcol_receiver_refused_spans_total"
    return (
        dashboard.with_row(Row("OpenTelemetry Collector"))
        .with_panel(
            timeseries_panel(
                "Received",
                "Spans and log records the receivers accepted and refused, per second.",
                prom(
                    f"sum by (receiver) (rate(otelcol_receiver_accepted_spans_total{RI}))",
                    "spans accepted {{receiver}}",
                ),
                prom(
                    f"sum by (receiver) (rate(otelcol_receiver_accepted_log_records_total{RI}))",
                    "logs accepted {{receiver}}",
                ),
                prom(f"sum by (receiver) (rate({refused}{RI}))", "spans refused {{receiver}}"),
                prom(
                    f"sum by (receiver) (rate(otelcol_receiver_refused_log_records_total{RI}))",
                    "logs refused {{receiver}}",
                ),
                unit="ops",
                steps=Steps.above(
                    rules.threshold("OTelCollectorRefusingSpans", "warning", LABEL_REPLACE_END)
                ),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Exported",
                "Spans and log records the exporters sent and failed to send, per second. "
                "Dashed: OTelCollectorExportFailing fires on any failure.",
                prom(
                    f"sum by (exporter) (rate(otelcol_exporter_sent_spans_total{RI}))",
                    "spans sent {{exporter}}",
                ),
                prom(
                    f"sum by (exporter) (rate(otelcol_exporter_sent_log_records_total{RI}))",
                    "logs sent {{exporter}}",
                ),
                prom(f"sum by (exporter) (rate({sent_failed}{RI}))", "spans failed {{exporter}}"),
                prom(
                    f"sum by (exporter) (rate(otelcol_exporter_send_failed_log_records_total{RI}))",
                    "logs failed {{exporter}}",
                ),
                unit="ops",
                steps=Steps.above(
                    rules.threshold("OTelCollectorExportFailing", "warning", LABEL_REPLACE_END)
                ),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Exporter queue fill",
                "Batches in each exporter's sending queue per batch it can hold: at 100% new "
                "data is dropped (enqueue_failed).",
                prom(
                    "max by (exporter) (otelcol_exporter_queue_size) / "
                    "max by (exporter) (otelcol_exporter_queue_capacity)",
                    "{{exporter}}",
                ),
                unit="percentunit",
                maximum=1,
                span=8,
            )
        )
    )
