"""lookout-alerts (Alerts & relay): what fires, what Alertmanager sends, what the relay delivers.

Prometheus' ``ALERTS`` series, Alertmanager's own metrics, and the webhook relay's
``relay_*`` metrics (services/webhook-relay/src/webhook_relay/metrics.py): notifications in,
deliveries out per target, failures, retries, dead letters, the queue and its age.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, DashboardLink, Row
from grafana_foundation_sdk.models import dashboard as model

from lookout_stack.dashboards.panels import (
    GREEN,
    RED,
    Steps,
    logs_panel,
    new_dashboard,
    prom,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from lookout_stack.dashboards.rules import Rules

__all__ = ["UID", "build"]

UID = "lookout-alerts"
RELAY = 'job="webhook-relay"'
RI = "[$__rate_interval]"


def build(rules: Rules) -> Dashboard:
    """Return the Alerts & relay dashboard."""
    dashboard = new_dashboard(
        UID,
        "Lookout / Alerts & relay",
        "Alerts firing, Alertmanager's notifications, and the webhook relay delivering them to "
        "Slack, PagerDuty, Teams, webhooks and e-mail.",
        tags=["alerts"],
        time_from="now-6h",
    )
    return _relay(_alerts(dashboard, rules), rules)


def _alerts(dashboard: Dashboard, rules: Rules) -> Dashboard:
    failed = "alertmanager_notifications_failed_total"
    return (
        dashboard.with_row(Row("Alerts"))
        .with_panel(
            stat_panel(
                "Firing",
                "Alerts firing now by severity (the Watchdog heartbeat left out).",
                prom(
                    'count by (severity) (ALERTS{alertstate="firing", alertname!="Watchdog"})',
                    "{{severity}}",
                ),
                unit="none",
                no_value="0",
                steps=Steps(GREEN, ((1, RED),)),
                span=8,
            )
        )
        .with_panel(
            stat_panel(
                "Pending",
                "Alerts whose condition holds but whose `for` has not elapsed yet.",
                prom('count(ALERTS{alertstate="pending"})'),
                unit="none",
                no_value="0",
                span=8,
            )
        )
        .with_panel(
            stat_panel(
                "Watchdog",
                "The always-firing heartbeat: 1 means the alerting pipeline evaluates.",
                prom('count(ALERTS{alertname="Watchdog", alertstate="firing"})'),
                unit="none",
                no_value="0",
                steps=Steps(RED, ((1, GREEN),)),
                span=8,
            )
        )
        .with_panel(
            table_panel(
                "Alerts firing now",
                "Every firing alert with its labels; click a row to open its service's "
                "detail. Its dashboard and runbook are in the notification (annotations).",
                prom(
                    'ALERTS{alertstate="firing", alertname!="Watchdog"}',
                    instant=True,
                    table=True,
                ),
                links=[
                    DashboardLink("Service detail: ${__data.fields.job}")
                    .type(model.DashboardLinkType.LINK)
                    .url("/d/lookout-service?var-service=${__data.fields.job}&${__url_time_range}")
                ],
                span=24,
            )
        )
        .with_panel(
            timeseries_panel(
                "Firing alerts over time",
                "Firing alerts by name and severity.",
                prom(
                    "count by (alertname, severity) "
                    '(ALERTS{alertstate="firing", alertname!="Watchdog"})',
                    "{{alertname}} ({{severity}})",
                ),
                unit="none",
                stack=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "Alertmanager notifications",
                "Notifications Alertmanager sent and failed per second, by integration. "
                "Dashed: AlertmanagerNotificationsFailing fires on any failure.",
                prom(
                    f"sum by (integration) (rate(alertmanager_notifications_total{RI}))",
                    "sent {{integration}}",
                ),
                prom(f"sum by (integration) (rate({failed}{RI}))", "failed {{integration}}"),
                unit="ops",
                steps=Steps.above(
                    None, rules.threshold("AlertmanagerNotificationsFailing", "critical", failed)
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Alerts held by Alertmanager",
                "Alerts Alertmanager holds, by state (active, suppressed by a silence or an "
                "inhibition, unprocessed).",
                prom("sum by (state) (alertmanager_alerts)", "{{state}}"),
                unit="none",
            )
        )
        .with_panel(
            timeseries_panel(
                "Alerts received by Alertmanager",
                "Alerts Prometheus and the Loki ruler posted per second, by status.",
                prom(
                    f"sum by (status) (rate(alertmanager_alerts_received_total{RI}))",
                    "{{status}}",
                ),
                unit="ops",
            )
        )
    )


def _relay(dashboard: Dashboard, rules: Rules) -> Dashboard:
    depth = "relay_queue_depth"
    age = "relay_queue_oldest_age_seconds"
    return (
        dashboard.with_row(Row("Webhook relay"))
        .with_panel(
            timeseries_panel(
                "Notifications received",
                "Webhook requests from Alertmanager per second, by outcome (accepted, "
                "duplicate, invalid, unauthorized, ...).",
                prom(
                    f"sum by (outcome) (rate(relay_notifications_received_total{{{RELAY}}}{RI}))",
                    "{{outcome}}",
                ),
                prom(
                    f"sum(rate(relay_notifications_deduplicated_total{{{RELAY}}}{RI}))",
                    "deduplicated",
                ),
                unit="ops",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Deliveries per target",
                "Deliveries each target accepted, per second.",
                prom(
                    f"sum by (target) (rate(relay_deliveries_delivered_total{{{RELAY}}}{RI}))",
                    "{{target}}",
                ),
                unit="ops",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Delivery failure share",
                "Failed attempts per attempt, per target (held-back attempts left out), as "
                "recorded. Dashed: RelayDeliveriesFailing.",
                prom(
                    f"job_target:relay_delivery_failures:ratio_rate5m{{{RELAY}}}",
                    "{{target}}",
                ),
                unit="percentunit",
                steps=Steps.above(
                    None, rules.threshold("RelayDeliveriesFailing", "critical", "[5m])) )")
                ),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Failures by reason",
                "Failed delivery attempts per second by target and reason; retries scheduled.",
                prom(
                    f"sum by (target, reason) (rate(relay_delivery_failures_total{{{RELAY}}}{RI}))",
                    "{{target}} {{reason}}",
                ),
                prom(
                    f"sum by (target) (rate(relay_delivery_retries_total{{{RELAY}}}{RI}))",
                    "{{target}} retries",
                ),
                unit="ops",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Queue by state",
                "Deliveries in the store per target and state. Dashed: RelayQueueBacklogHigh "
                "(pending and inflight).",
                prom(f"sum by (target, state) ({depth}{{{RELAY}}})", "{{target}} {{state}}"),
                unit="none",
                steps=Steps.above(rules.threshold("RelayQueueBacklogHigh", "warning", depth)),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Dead letters",
                "Undeliverable notifications waiting for a replay, per target. Dashed: "
                "RelayDeadLetters fires on any.",
                prom(f'sum by (target) ({depth}{{{RELAY}, state="dead"}})', "{{target}}"),
                prom(
                    f"sum by (target) (increase(relay_dead_letters_total{{{RELAY}}}[5m]))",
                    "{{target}} new in 5m",
                ),
                unit="none",
                steps=Steps.above(rules.threshold("RelayDeadLetters", "warning", depth)),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Oldest waiting delivery",
                "Age of the oldest pending or inflight delivery per target. Dashed: "
                "RelayQueueOldestAgeHigh.",
                prom(f"max by (target) ({age}{{{RELAY}}})", "{{target}}"),
                unit="s",
                steps=Steps.above(rules.threshold("RelayQueueOldestAgeHigh", "warning", age)),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Delivery and accept latency p95",
                "95th percentile of one delivery attempt per target (recorded), and of "
                "accepting a webhook (request to durable commit).",
                prom(
                    "job_target:relay_delivery_duration_seconds:histogram_quantile_rate5m"
                    f'{{{RELAY}, quantile="0.95"}}',
                    "deliver {{target}}",
                ),
                prom(
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(relay_accept_duration_seconds_bucket{{{RELAY}}}{RI})))",
                    "accept",
                ),
                unit="s",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Circuit breakers open",
                "1 while a target's circuit breaker holds deliveries back.",
                prom(f"max by (target) (relay_circuit_open{{{RELAY}}})", "{{target}}"),
                unit="none",
                span=8,
            )
        )
        .with_panel(
            logs_panel(
                "Relay log lines",
                "The relay's own log (deliveries, failures, dead letters).",
                '{service_name="webhook-relay"}',
                height=10,
            )
        )
    )
