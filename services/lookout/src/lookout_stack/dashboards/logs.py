"""lookout-logs: log volume by service and level, error lines, and the lines themselves.

Loki only: ``service_name`` is the stream label Loki's OTLP ingestion makes of service.name
(= the Prometheus job); ``detected_level`` is the level Loki detects and keeps as structured
metadata. The error-burst threshold is the Loki ruler's LogErrorBurst
(loki/rules/fake/logs.yaml).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from lookout_stack.dashboards.panels import (
    LOKI,
    Steps,
    drill_link,
    logs_panel,
    loki,
    loki_service_variable,
    new_dashboard,
    search_variable,
    timeseries_panel,
)
from lookout_stack.dashboards.rules import Rules

__all__ = ["UID", "build"]

UID = "lookout-logs"
STREAM = '{service_name=~"$service"}'
ERRORS = 'detected_level=~"error|critical|fatal"'


def build(rules: Rules) -> Dashboard:
    """Return the logs dashboard."""
    burst = rules.threshold("LogErrorBurst", "warning", 'fatal" [5m]) )')
    detail = drill_link(
        "Service detail: ${__field.labels.service_name}", "lookout-service", field="service_name"
    )
    return (
        new_dashboard(
            UID,
            "Lookout / Logs",
            "Log volume per service and level, error lines, and the lines themselves (filter "
            "with the search box). A line's trace_id opens its trace in Tempo.",
            tags=["logs"],
        )
        .with_variable(loki_service_variable())
        .with_variable(search_variable())
        .with_row(Row("Volume"))
        .with_panel(
            timeseries_panel(
                "Log lines by service and level",
                "Lines per interval by service and detected level.",
                loki(
                    f"sum by (service_name, detected_level) (count_over_time({STREAM} [$__auto]))",
                    "{{service_name}} {{detected_level}}",
                ),
                unit="none",
                stack=True,
                datasource=LOKI,
                links=[detail],
            )
        )
        .with_panel(
            timeseries_panel(
                "Error lines per 5 minutes",
                "Lines at error level or above in each 5-minute window, per service. Dashed: "
                "the Loki ruler's LogErrorBurst threshold.",
                loki(
                    f"sum by (service_name) (count_over_time({STREAM} | {ERRORS} [5m]))",
                    "{{service_name}}",
                ),
                unit="none",
                steps=Steps.above(burst),
                datasource=LOKI,
                links=[detail],
            )
        )
        .with_panel(
            timeseries_panel(
                "Log bytes by service",
                "Bytes of log lines per second, per service.",
                loki(
                    f"sum by (service_name) (bytes_rate({STREAM} [$__auto]))",
                    "{{service_name}}",
                ),
                unit="Bps",
                datasource=LOKI,
                span=24,
                height=6,
            )
        )
        .with_row(Row("Lines"))
        .with_panel(
            logs_panel(
                "Error lines",
                "Lines at error level or above (kept 90 days).",
                f"{STREAM} | {ERRORS} |= `$search`",
                height=10,
            )
        )
        .with_panel(
            logs_panel(
                "All lines",
                "Every line of the selected services that contains the search text.",
                f"{STREAM} |= `$search`",
                height=14,
            )
        )
    )
