"""lookout-synthetic: the synthetic monitor's journeys (services/synthetic-monitor).

Blackbox-style ``probe_*`` gauges per journey and step (``step=""`` is the journey as a
whole), the ``synthetic_*`` histograms with trace exemplars, the journeys' SLO (recorded in
prometheus/rules/synthetic-monitor.yml) and the monitor's own health.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, Row

from lookout_stack.dashboards.panels import (
    GREEN,
    RED,
    Steps,
    all_values_variable,
    new_dashboard,
    or_zero,
    prom,
    stat_panel,
    state_timeline,
    table_panel,
    timeseries_panel,
    value_map,
)
from lookout_stack.dashboards.rules import Rules

__all__ = ["UID", "build"]

UID = "lookout-synthetic"
JOB = 'job="synthetic-monitor"'
JOURNEY = f'{JOB}, journey=~"$journey"'
RI = "[$__rate_interval]"


def _journey_variable() -> QueryVariable:
    return all_values_variable(
        "journey", "Journey", f"label_values(probe_success{{{JOB}}}, journey)"
    )


def build(rules: Rules) -> Dashboard:
    """Return the synthetic journeys dashboard."""
    fast = "journey:synthetic_slo_error_ratio:rate1h"
    slow = "journey:synthetic_slo_error_ratio:rate6h"
    days_left = (
        f'(min by (journey) (probe_ssl_earliest_cert_expiry{{{JOURNEY}, step=""}}) - time()) '
        "/ 86400"
    )
    return (
        new_dashboard(
            UID,
            "Lookout / Synthetic journeys",
            "Scripted journeys run by the synthetic monitor: pass/fail per journey and step, "
            "durations with the run's trace, the journeys' SLO and certificates.",
            tags=["synthetic"],
            time_from="now-6h",
        )
        .with_variable(_journey_variable())
        .with_row(Row("Journeys"))
        .with_panel(
            state_timeline(
                "Journey result",
                "probe_success of each journey as a whole (after retries): red while failing "
                "(SyntheticJourneyFailing after 2 minutes).",
                prom(f'max by (journey) (probe_success{{{JOURNEY}, step=""}})', "{{journey}}"),
                mappings=[value_map({"0": ("fail", RED), "1": ("pass", GREEN)})],
                steps=Steps(RED, ((1, GREEN),)),
            )
        )
        .with_panel(
            timeseries_panel(
                "Journey duration",
                "Duration of each journey's last run (all steps).",
                prom(
                    f'max by (journey) (probe_duration_seconds{{{JOURNEY}, step=""}})',
                    "{{journey}}",
                ),
                unit="s",
            )
        )
        .with_panel(
            timeseries_panel(
                "Step duration p95 (with exemplars)",
                "95th percentile duration per step; a dot is a run's trace, click to open it.",
                prom(
                    "histogram_quantile(0.95, sum by (journey, step, le) "
                    f"(rate(synthetic_step_duration_seconds_bucket{{{JOURNEY}}}{RI})))",
                    "{{journey}} / {{step}}",
                    exemplar=True,
                ),
                unit="s",
            )
        )
        .with_panel(
            table_panel(
                "Failing steps now",
                "Steps whose last run failed, with their last HTTP status.",
                prom(
                    f'probe_http_status_code{{{JOURNEY}, step!=""}} '
                    f'and on (journey, step) (probe_success{{{JOURNEY}, step!=""}} == 0)',
                    instant=True,
                    table=True,
                ),
                span=12,
            )
        )
        .with_panel(
            timeseries_panel(
                "Runs by result",
                "Finished runs per second: success, flaky (passed after a retry), failure.",
                prom(
                    "sum by (journey, result) "
                    f"(rate(synthetic_journey_runs_total{{{JOURNEY}}}{RI}))",
                    "{{journey}} {{result}}",
                ),
                unit="ops",
                stack=True,
            )
        )
        .with_row(Row("SLO and certificates"))
        .with_panel(
            timeseries_panel(
                "Journey SLO: error ratio 1h",
                "Share of runs failing at their first attempt over 1h (recorded). Dashed: "
                "the fast-burn alert's threshold (SyntheticJourneySLOBurnRateHigh, critical).",
                prom(f'{fast}{{journey=~"$journey"}}', "{{journey}}"),
                unit="percentunit",
                steps=Steps.above(
                    None, rules.threshold("SyntheticJourneySLOBurnRateHigh", "critical", fast)
                ),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Journey SLO: error ratio 6h",
                "Share of runs failing at their first attempt over 6h (recorded). Dashed: "
                "the slow-burn alert's threshold (warning).",
                prom(f'{slow}{{journey=~"$journey"}}', "{{journey}}"),
                unit="percentunit",
                steps=Steps.above(
                    rules.threshold("SyntheticJourneySLOBurnRateHigh", "warning", slow)
                ),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Certificate days left",
                "Days until the earliest certificate a journey saw expires. Dashed: "
                "SyntheticCertificateExpiringSoon (critical below 3, warning below 14).",
                prom(days_left, "{{journey}}"),
                unit="d",
                steps=Steps(
                    RED,
                    (
                        (
                            rules.threshold(
                                "SyntheticCertificateExpiringSoon", "critical", "/ 86400"
                            ),
                            "orange",
                        ),
                        (
                            rules.threshold(
                                "SyntheticCertificateExpiringSoon", "warning", "/ 86400"
                            ),
                            GREEN,
                        ),
                    ),
                    alert=True,
                ),
                minimum=None,
                span=8,
            )
        )
        .with_row(Row("The monitor itself"))
        .with_panel(
            stat_panel(
                "Configuration loaded",
                "Whether the last reload of the journeys succeeded (SyntheticMonitorConfigRejected "
                "fires while it is 0).",
                prom(f"min(synthetic_config_last_reload_successful{{{JOB}}})"),
                unit="none",
                mappings=[value_map({"0": ("rejected", RED), "1": ("ok", GREEN)})],
                steps=Steps(RED, ((1, GREEN),)),
                graph=False,
            )
        )
        .with_panel(
            stat_panel(
                "Journeys configured",
                "Journeys and checks in the running configuration.",
                prom(f"max(synthetic_journeys_configured{{{JOB}}})"),
                unit="none",
                graph=False,
            )
        )
        .with_panel(
            stat_panel(
                "Runs in progress",
                "Journey runs executing now.",
                prom(f"sum(synthetic_runs_in_progress{{{JOB}}})"),
                unit="none",
            )
        )
        .with_panel(
            stat_panel(
                "Since last run",
                "Seconds since the least recently finished journey ran.",
                prom(f"time() - min(synthetic_journey_last_run_timestamp_seconds{{{JOURNEY}}})"),
                unit="s",
            )
        )
        .with_panel(
            timeseries_panel(
                "Scheduler lateness p95",
                "How late runs start against their slot (95th percentile).",
                prom(
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate(synthetic_scheduler_lateness_seconds_bucket{{{JOB}}}{RI})))",
                    "p95 lateness",
                ),
                unit="s",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Attempts and skipped slots",
                "Attempts per second (retries included) and slots skipped because the previous "
                "run was still going.",
                prom(f"sum(rate(synthetic_journey_attempts_total{{{JOURNEY}}}{RI}))", "attempts"),
                prom(
                    or_zero(f"sum(rate(synthetic_runs_skipped_total{{{JOURNEY}}}{RI}))"), "skipped"
                ),
                unit="ops",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Attempts of the last run",
                "Attempts each journey's last run needed (1 = passed first time).",
                prom(
                    f"max by (journey) (synthetic_journey_last_attempts{{{JOURNEY}}})",
                    "{{journey}}",
                ),
                unit="none",
                span=8,
            )
        )
    )
