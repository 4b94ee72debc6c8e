"""lookout-overview: the golden signals of every service on one screen.

Traffic, errors, latency and saturation per service (the ``job`` label), each series linking
to the service's detail dashboard. The latency panel queries the raw histogram with exemplars
on: a dot is one request's trace, which the Prometheus data source's exemplar link
(``exemplarTraceIdDestinations`` -> ``tempo``) opens.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from lookout_stack.dashboards.panels import (
    GREEN,
    RED,
    Steps,
    drill_link,
    new_dashboard,
    or_zero,
    prom,
    service_variable,
    stat_panel,
    state_timeline,
    timeseries_panel,
    value_map,
)
from lookout_stack.dashboards.rules import Rules

__all__ = ["UID", "build"]

UID = "lookout-overview"
# Series of the recording rules in prometheus/rules/demo-app.yml.
REQUESTS = "job:http_server_requests:rate5m"
ERROR_RATIO = "job:http_server_requests_errors:ratio_rate5m"
# The error ratio has no series before a service's first 5xx: `or (requests * 0)` shows 0.
LATENCY = "job:http_server_request_duration_seconds:histogram_quantile_rate5m"
POOL_RATIO = "job:db_pool_checked_out_connections:ratio"


def build(rules: Rules) -> Dashboard:
    """Return the overview dashboard."""
    detail = drill_link("Service detail: ${__field.labels.job}", "lookout-service")
    up_mapping = value_map({"0": ("down", RED), "1": ("up", GREEN)})
    return (
        new_dashboard(
            UID,
            "Lookout / Overview",
            "Golden signals per service: traffic, errors, latency (with exemplars that open "
            "the trace) and saturation. Click a series to open that service's detail.",
            tags=["overview"],
            alerts_of='job=~"$service"',
        )
        .with_variable(service_variable(multi=True, default_all=True))
        .with_row(Row("Is everything up?"))
        .with_panel(
            state_timeline(
                "Scrape targets",
                "Prometheus' `up` per job: red while a target does not answer its scrape "
                "(TargetDown fires after 2 minutes).",
                prom('max by (job) (up{job=~"$service"})', "{{job}}"),
                mappings=[up_mapping],
                steps=Steps(RED, ((1, GREEN),)),
                span=16,
                height=7,
            )
        )
        .with_panel(
            stat_panel(
                "Alerts firing",
                "Alerts Prometheus evaluates as firing now, by severity (the Alerts & relay "
                "dashboard lists them).",
                prom(
                    'count by (severity) (ALERTS{alertstate="firing", alertname!="Watchdog"})',
                    "{{severity}}",
                ),
                unit="none",
                steps=Steps(GREEN, ((1, RED),)),
                no_value="0",
                links=[drill_link("Alerts & relay", "lookout-alerts", var=None)],
                span=8,
                height=7,
            )
        )
        .with_row(Row("Golden signals"))
        .with_panel(
            timeseries_panel(
                "Traffic",
                "Requests per second per service (5m rate, recorded).",
                prom(f'{REQUESTS}{{job=~"$service"}}', "{{job}}"),
                unit="reqps",
                links=[detail],
            )
        )
        .with_panel(
            timeseries_panel(
                "Errors (5xx share)",
                "Share of requests answered with a 5xx, per service. Dashed: HTTPErrorRateHigh's "
                "warning and critical thresholds.",
                prom(
                    f'{ERROR_RATIO}{{job=~"$service"}} or ({REQUESTS}{{job=~"$service"}} * 0)',
                    "{{job}}",
                ),
                unit="percentunit",
                steps=Steps.above(*rules.warning_and_critical("HTTPErrorRateHigh", ERROR_RATIO)),
                links=[detail],
            )
        )
        .with_panel(
            timeseries_panel(
                "Latency p95 (with exemplars)",
                "95th percentile of request duration per service, from the raw histogram so "
                "that exemplars (dots) show: click one to open its trace in Tempo. Dashed: "
                "HTTPLatencyP95High's thresholds.",
                prom(
                    "histogram_quantile(0.95, sum by (job, le) "
                    '(rate(http_server_request_duration_seconds_bucket{job=~"$service"}'
                    "[$__rate_interval])))",
                    "{{job}}",
                    exemplar=True,
                ),
                unit="s",
                steps=Steps.above(*rules.warning_and_critical("HTTPLatencyP95High", LATENCY)),
                links=[detail],
            )
        )
        .with_panel(
            timeseries_panel(
                "Saturation: database pool in use",
                "Connections lent out per connection the pool keeps (recorded). Above 1 the "
                "service runs on overflow connections; dashed: DBPoolSaturated.",
                prom(f'{POOL_RATIO}{{job=~"$service"}}', "{{job}}"),
                unit="percentunit",
                steps=Steps.above(rules.threshold("DBPoolSaturated", "warning", POOL_RATIO)),
                links=[detail],
            )
        )
        .with_panel(
            timeseries_panel(
                "Saturation: requests in flight",
                "Requests being served right now, per service.",
                prom('sum by (job) (http_server_active_requests{job=~"$service"})', "{{job}}"),
                unit="none",
                links=[detail],
            )
        )
        .with_panel(
            timeseries_panel(
                "Requests rejected",
                "Requests refused before reaching a handler (draining, overload), per second.",
                prom(
                    or_zero(
                        "sum by (job, reason) (rate(http_server_rejected_requests_total"
                        '{job=~"$service"}[$__rate_interval]))',
                        "reason",
                    ),
                    "{{job}} {{reason}}",
                ),
                unit="reqps",
                links=[detail],
            )
        )
    )
