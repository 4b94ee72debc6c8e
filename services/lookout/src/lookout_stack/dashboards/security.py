"""lookout-security: failed logins, brute-force detections, 401/403s and the matching logs.

Metrics from the shop's login guard (``auth_*``) and HTTP status codes, next to the security
log lines Loki keeps for a year (stream label ``security="true"``). Thresholds come from the
Prometheus alerts (LoginFailuresHigh, BruteForceLoginDetected) and the Loki ruler's
(LogLoginFailureBurst).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from lookout_stack.dashboards.panels import (
    LOKI,
    Steps,
    drill_link,
    logs_panel,
    loki,
    new_dashboard,
    prom,
    service_variable,
    stat_panel,
    timeseries_panel,
)
from lookout_stack.dashboards.rules import Rules

__all__ = ["UID", "build"]

UID = "lookout-security"
FAILURES = "job:auth_login_failures:rate5m"
RI = "[$__rate_interval]"


def build(rules: Rules) -> Dashboard:
    """Return the security dashboard."""
    bruteforce = rules.threshold(
        "BruteForceLoginDetected", "warning", "auth_bruteforce_detections_total"
    )
    return (
        new_dashboard(
            UID,
            "Lookout / Security",
            "Failed logins, brute-force detections, 401/403 answers and the security log "
            "lines behind them.",
            tags=["security"],
            time_from="now-6h",
        )
        .with_variable(service_variable("auth_logins_total", multi=True, default_all=True))
        .with_row(Row("Logins"))
        .with_panel(
            stat_panel(
                "Failed logins per second",
                "Rejected logins (unknown user, bad password), 5m rate (recorded); colours "
                "at LoginFailuresHigh's threshold.",
                prom(f'sum({FAILURES}{{job=~"$service"}})'),
                unit="ops",
                steps=Steps.above(rules.threshold("LoginFailuresHigh", "warning", FAILURES)),
            )
        )
        .with_panel(
            stat_panel(
                "Brute-force detections",
                "Accounts or addresses that crossed the failed-login threshold over the range.",
                prom(
                    'sum(increase(auth_bruteforce_detections_total{job=~"$service"}[$__range]))',
                    instant=True,
                ),
                unit="none",
                steps=Steps.above(None, bruteforce + 1),
                graph=False,
            )
        )
        .with_panel(
            stat_panel(
                "Successful logins",
                "Logins that succeeded over the range.",
                prom(
                    "sum(increase(auth_logins_total"
                    '{job=~"$service", outcome="success"}[$__range]))',
                    instant=True,
                ),
                unit="none",
                graph=False,
            )
        )
        .with_panel(
            stat_panel(
                "401 and 403 answers per second",
                "Requests refused as unauthenticated (401) or forbidden (403).",
                prom(
                    'sum(rate(http_server_requests_total{job=~"$service", '
                    f'status_code=~"401|403"}}{RI}))'
                ),
                unit="reqps",
            )
        )
        .with_panel(
            timeseries_panel(
                "Failed logins by reason",
                "Rejected logins per second by reason; `blocked` are attempts refused while "
                "an account or address is blocked (recorded). Dashed: LoginFailuresHigh.",
                prom(
                    'job_reason:auth_login_failures:rate5m{job=~"$service"}',
                    "{{job}} {{reason}}",
                ),
                unit="ops",
                steps=Steps.above(rules.threshold("LoginFailuresHigh", "warning", FAILURES)),
                links=[drill_link("Service detail: ${__field.labels.job}", "lookout-service")],
            )
        )
        .with_panel(
            timeseries_panel(
                "Brute-force detections",
                "Detections per 5 minutes, per account or client address (scope). Dashed: "
                "BruteForceLoginDetected fires above it.",
                prom(
                    "sum by (job, scope) "
                    '(increase(auth_bruteforce_detections_total{job=~"$service"}[5m]))',
                    "{{job}} per {{scope}}",
                ),
                unit="none",
                steps=Steps.above(bruteforce),
            )
        )
        .with_panel(
            timeseries_panel(
                "401 / 403 by route",
                "Unauthenticated and forbidden answers per second, by route and status.",
                prom(
                    "sum by (job, route, status_code) "
                    '(rate(http_server_requests_total{job=~"$service", '
                    f'status_code=~"401|403"}}{RI}))',
                    "{{job}} {{route}} {{status_code}}",
                ),
                unit="reqps",
            )
        )
        .with_panel(
            timeseries_panel(
                "Logins by outcome",
                "Login attempts per second by outcome.",
                prom(
                    f'sum by (outcome) (rate(auth_logins_total{{job=~"$service"}}{RI}))',
                    "{{outcome}}",
                ),
                unit="ops",
                stack=True,
            )
        )
        .with_row(Row("Security log lines (Loki)"))
        .with_panel(
            timeseries_panel(
                "Security events by type",
                "Security log lines per event (login_failed, login_blocked, "
                "bruteforce_detected, ...) in each 5-minute window. Dashed: the Loki ruler's "
                "LogLoginFailureBurst threshold for login_failed.",
                loki(
                    'sum by (service_name, event) (count_over_time({security="true", '
                    'service_name=~"$service"} | event=~".+" [5m]))',
                    "{{service_name}} {{event}}",
                ),
                unit="none",
                steps=Steps.above(
                    rules.threshold("LogLoginFailureBurst", "warning", '"login_failed" [5m]) )')
                ),
                datasource=LOKI,
                span=24,
            )
        )
        .with_panel(
            logs_panel(
                "Security log lines",
                "Every security event line (kept a year). Open a line for its trace.",
                '{security="true", service_name=~"$service"}',
                height=12,
            )
        )
    )
