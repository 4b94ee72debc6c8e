"""lookout-service: one service in detail (variables ``service`` and ``route``).

RED per route, the database (query latency, the pool), the cache, then the same service's
logs (Loki) and traces (Tempo TraceQL), and its build, start-up and API-version facts. Alert
annotations link here with ``?var-service=<job>``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, DashboardLink, Row

from lookout_stack.dashboards.panels import (
    Steps,
    drill_link,
    logs_panel,
    new_dashboard,
    or_zero,
    prom,
    route_variable,
    service_variable,
    stat_panel,
    table_panel,
    timeseries_panel,
    traces_panel,
)
from lookout_stack.dashboards.rules import Rules

__all__ = ["UID", "build"]

UID = "lookout-service"
# Recording rules of prometheus/rules/demo-app.yml and dashboards.yml.
ROUTE_REQUESTS = "job_route:http_server_requests:rate5m"
ROUTE_ERRORS = "job_route:http_server_requests_errors:ratio_rate5m"
ERROR_RATIO = "job:http_server_requests_errors:ratio_rate5m"
# The error ratios have no series before the first 5xx: `or (requests * 0)` shows 0 instead.
LATENCY = "job:http_server_request_duration_seconds:histogram_quantile_rate5m"
ROUTE_LATENCY = "job_route:http_server_request_duration_seconds:histogram_quantile_rate5m"
DB_LATENCY = "job_operation:db_query_duration_seconds:histogram_quantile_rate5m"
POOL_RATIO = "job:db_pool_checked_out_connections:ratio"
POOL_WAIT = "job:db_pool_wait_seconds:histogram_quantile_rate5m"
CACHE_RATIO = "job:cache_hits:ratio_rate5m"
CACHE_LOOKUPS = "job:cache_lookups:rate5m"
SERVICE = 'job="$service"'


def build(rules: Rules) -> Dashboard:
    """Return the service detail dashboard."""
    logs_link = drill_link("Logs of ${service}", "lookout-logs", field=None)
    slo_link = drill_link("SLO of ${service}", "lookout-slo", field=None)
    dashboard = new_dashboard(
        UID,
        "Lookout / Service detail",
        "One service: RED per route, database, pool, cache, its logs and traces. Alerts about "
        "a service link here with ?var-service=<job>.",
        tags=["service"],
        alerts_of='job="$service"',
    )
    dashboard = dashboard.with_variable(service_variable("http_server_requests_total"))
    dashboard = dashboard.with_variable(route_variable("http_server_requests_total"))
    dashboard = _red(dashboard, rules, [slo_link, logs_link])
    dashboard = _database(dashboard, rules)
    dashboard = _cache(dashboard, rules)
    dashboard = _logs_and_traces(dashboard)
    return _build_facts(dashboard, rules)


def _red(dashboard: Dashboard, rules: Rules, links: list[DashboardLink]) -> Dashboard:
    p95 = f'{LATENCY}{{{SERVICE}, quantile="0.95"}}'
    return (
        dashboard.with_row(Row("Rate, errors, duration"))
        .with_panel(
            stat_panel(
                "Requests per second",
                "All routes, 5m rate (recorded).",
                prom(f"job:http_server_requests:rate5m{{{SERVICE}}}"),
                unit="reqps",
                links=links,
            )
        )
        .with_panel(
            stat_panel(
                "5xx share",
                "Share of the service's requests answered with a 5xx over 5m; colours at "
                "HTTPErrorRateHigh's thresholds.",
                prom(
                    f"{ERROR_RATIO}{{{SERVICE}}} "
                    f"or (job:http_server_requests:rate5m{{{SERVICE}}} * 0)"
                ),
                unit="percentunit",
                steps=Steps.above(*rules.warning_and_critical("HTTPErrorRateHigh", ERROR_RATIO)),
            )
        )
        .with_panel(
            stat_panel(
                "p95 latency",
                "95th percentile over 5m; colours at HTTPLatencyP95High's thresholds.",
                prom(p95),
                unit="s",
                steps=Steps.above(*rules.warning_and_critical("HTTPLatencyP95High", LATENCY)),
            )
        )
        .with_panel(
            stat_panel(
                "Requests in flight",
                "Requests being served now.",
                prom(f"sum(http_server_active_requests{{{SERVICE}}})"),
                unit="none",
            )
        )
        .with_panel(
            timeseries_panel(
                "Requests per route",
                "Requests per second per route template (recorded 5m rate).",
                prom(f'{ROUTE_REQUESTS}{{{SERVICE}, route=~"$route"}}', "{{route}}"),
                unit="reqps",
            )
        )
        .with_panel(
            timeseries_panel(
                "Responses by status code",
                "Responses per second by HTTP status code.",
                prom(
                    "sum by (status_code) (rate(http_server_requests_total"
                    f'{{{SERVICE}, route=~"$route"}}[$__rate_interval]))',
                    "{{status_code}}",
                ),
                unit="reqps",
                stack=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "5xx share per route",
                "Share of each route's requests answered with a 5xx (recorded). Dashed: "
                "HTTPErrorRateHigh's thresholds (they apply to the whole service).",
                prom(
                    f'{ROUTE_ERRORS}{{{SERVICE}, route=~"$route"}} '
                    f'or ({ROUTE_REQUESTS}{{{SERVICE}, route=~"$route"}} * 0)',
                    "{{route}}",
                ),
                unit="percentunit",
                steps=Steps.above(*rules.warning_and_critical("HTTPErrorRateHigh", ERROR_RATIO)),
            )
        )
        .with_panel(
            timeseries_panel(
                "Latency p50 / p95 / p99",
                "Request duration quantiles of the whole service (recorded). Dashed: "
                "HTTPLatencyP95High's thresholds and HTTPLatencyP99High's.",
                prom(f"{LATENCY}{{{SERVICE}}}", "p{{quantile}}"),
                unit="s",
                steps=Steps.above(*rules.warning_and_critical("HTTPLatencyP95High", LATENCY)),
            )
        )
        .with_panel(
            timeseries_panel(
                "Latency p95 per route",
                "95th percentile of request duration per route (recorded). Exemplars, the "
                "dots that open a request's trace, are on the overview's latency panel; this "
                'service\'s traces are in the "Logs and traces" row below.',
                # Recorded (demo-app.yml): from the raw histogram this was the slowest panel
                # query over 24 h in bench/dashboard_queries.py (see bench/README.md).
                prom(
                    f'{ROUTE_LATENCY}{{{SERVICE}, route=~"$route", quantile="0.95"}}', "{{route}}"
                ),
                unit="s",
                steps=Steps.above(None, rules.threshold("HTTPLatencyP99High", "warning", LATENCY)),
                span=24,
            )
        )
        .with_panel(
            timeseries_panel(
                "Requests rejected",
                "Requests refused before a handler ran (draining, overload), by reason.",
                prom(
                    or_zero(
                        "sum by (reason) (rate(http_server_rejected_requests_total"
                        f"{{{SERVICE}}}[$__rate_interval]))",
                        "reason",
                    ),
                    "{{reason}}",
                ),
                unit="reqps",
            )
        )
        .with_panel(
            timeseries_panel(
                "Requests by region",
                "Requests per second by region (from the trusted region header) and outcome.",
                prom(
                    "sum by (region, outcome) (rate(http_server_requests_by_region_total"
                    f"{{{SERVICE}}}[$__rate_interval]))",
                    "{{region}} {{outcome}}",
                ),
                unit="reqps",
                stack=True,
            )
        )
    )


def _database(dashboard: Dashboard, rules: Rules) -> Dashboard:
    return (
        dashboard.with_row(Row("Database"))
        .with_panel(
            timeseries_panel(
                "Query latency p95 by operation",
                "95th percentile of SQL statement duration per operation (recorded). Dashed: "
                "DBQueriesSlow.",
                prom(f'{DB_LATENCY}{{{SERVICE}, quantile="0.95"}}', "{{operation}}"),
                unit="s",
                steps=Steps.above(rules.threshold("DBQueriesSlow", "warning", DB_LATENCY)),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Query errors",
                "Failed SQL statements per second by operation; CONNECT: connections that "
                "could not be opened. Dashed: DBQueriesFailing (on the sum of all operations).",
                prom(
                    or_zero(
                        "sum by (operation) (rate(db_query_errors_total"
                        f"{{{SERVICE}}}[$__rate_interval]))",
                        "operation",
                    ),
                    "{{operation}}",
                ),
                unit="ops",
                steps=Steps.above(
                    None, rules.threshold("DBQueriesFailing", "critical", "db_query_errors_total")
                ),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Pool in use",
                "Connections lent out per connection the pool keeps. Dashed: DBPoolSaturated.",
                prom(f"{POOL_RATIO}{{{SERVICE}}}", "in use"),
                unit="percentunit",
                steps=Steps.above(rules.threshold("DBPoolSaturated", "warning", POOL_RATIO)),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Pool connections",
                "The pool's size, connections checked out and overflow connections.",
                prom(f"sum(db_pool_size{{{SERVICE}}})", "size"),
                prom(f"sum(db_pool_checked_out_connections{{{SERVICE}}})", "checked out"),
                prom(f"sum(db_pool_overflow_connections{{{SERVICE}}})", "overflow"),
                unit="none",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Pool wait p95",
                "95th percentile wait for a pooled connection (recorded). Dashed: DBPoolWaitHigh.",
                prom(f'{POOL_WAIT}{{{SERVICE}, quantile="0.95"}}', "p95 wait"),
                unit="s",
                steps=Steps.above(rules.threshold("DBPoolWaitHigh", "warning", POOL_WAIT)),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Pool timeouts",
                "Requests that gave up waiting for a connection, per second. Dashed: "
                "DBPoolTimeouts fires on any.",
                prom(
                    f"sum(rate(db_pool_timeouts_total{{{SERVICE}}}[$__rate_interval]))", "timeouts"
                ),
                unit="ops",
                steps=Steps.above(
                    None, rules.threshold("DBPoolTimeouts", "critical", "db_pool_timeouts_total")
                ),
                span=8,
            )
        )
    )


def _cache(dashboard: Dashboard, rules: Rules) -> Dashboard:
    return (
        dashboard.with_row(Row("Cache"))
        .with_panel(
            timeseries_panel(
                "Cache hit ratio",
                "Share of look-ups that found a value (recorded). Dashed: CacheHitRatioLow "
                "(below it is bad).",
                prom(f"{CACHE_RATIO}{{{SERVICE}}}", "hit ratio"),
                unit="percentunit",
                steps=Steps.below(rules.threshold("CacheHitRatioLow", "warning", CACHE_RATIO)),
                maximum=1,
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Cache look-ups",
                "Look-ups per second (hits plus misses, recorded).",
                prom(f"{CACHE_LOOKUPS}{{{SERVICE}}}", "look-ups"),
                unit="ops",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Cache errors",
                "Cache operations that failed (Redis unreachable, ...) per second, by cache.",
                prom(
                    or_zero(
                        f"sum by (cache) (rate(cache_errors_total{{{SERVICE}}}[$__rate_interval]))",
                        "cache",
                    ),
                    "{{cache}}",
                ),
                unit="ops",
                span=8,
            )
        )
    )


def _logs_and_traces(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Logs and traces"))
        .with_panel(
            logs_panel(
                "Logs of ${service}",
                "The service's log lines (Loki, service_name = the job). Open a line: its "
                "trace_id links to the trace in Tempo.",
                '{service_name="$service"}',
                span=24,
                height=10,
            )
        )
        .with_panel(
            traces_panel(
                "Traces of ${service}",
                "Recent traces with a span of this service (TraceQL). Click a trace id to open it.",
                '{resource.service.name="$service"}',
            )
        )
        .with_panel(
            traces_panel(
                "Slow or failed traces of ${service}",
                "Traces of this service that failed or took over a second (the latency SLO's "
                "threshold).",
                '{resource.service.name="$service" && (status = error || duration > 1s)}',
            )
        )
    )


def _build_facts(dashboard: Dashboard, rules: Rules) -> Dashboard:
    return (
        dashboard.with_row(Row("Build, start-up and API versions"))
        .with_panel(
            table_panel(
                "Build",
                "Which build is running (lookout_demo_build_info).",
                prom(
                    f"max by (service, version, revision) (lookout_demo_build_info{{{SERVICE}}})",
                    instant=True,
                    table=True,
                ),
                span=8,
                height=6,
            )
        )
        .with_panel(
            stat_panel(
                "Start-up time",
                "Seconds from process start to ready, and the migrations' share.",
                prom(f"max(app_startup_duration_seconds{{{SERVICE}}})", "start-up"),
                prom(f"max(db_migration_duration_seconds{{{SERVICE}}})", "migrations"),
                prom(f"max(db_migration_lock_wait_seconds{{{SERVICE}}})", "migration lock wait"),
                unit="s",
                span=8,
                height=6,
                graph=False,
            )
        )
        .with_panel(
            stat_panel(
                "Migrations",
                "Migration runs by outcome and retries since start.",
                prom(f"sum by (outcome) (db_migrations_total{{{SERVICE}}})", "{{outcome}}"),
                prom(f"sum(db_migration_retries_total{{{SERVICE}}})", "retries"),
                unit="none",
                span=8,
                height=6,
                graph=False,
            )
        )
        .with_panel(
            timeseries_panel(
                "API versions",
                "Requests per second per API version; deprecated=true is traffic that breaks "
                "at the Sunset date. Dashed: DeprecatedApiVersionTraffic fires above it.",
                prom(
                    "sum by (version, deprecated) (rate(api_version_requests_total"
                    f"{{{SERVICE}}}[$__rate_interval]))",
                    "{{version}} deprecated={{deprecated}}",
                ),
                unit="reqps",
                steps=Steps.above(
                    rules.threshold("DeprecatedApiVersionTraffic", "info", "[10m]))")
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Clients",
                "Requests per second by browser and device class (from the User-Agent).",
                prom(
                    "sum by (browser, device) (rate(http_server_requests_by_client_total"
                    f"{{{SERVICE}}}[$__rate_interval]))",
                    "{{browser}} / {{device}}",
                ),
                unit="reqps",
                stack=True,
            )
        )
    )
