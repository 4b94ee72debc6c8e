"""lookout-business: orders, payments, revenue, and the shop's long tail.

Orders by status, payments by method and outcome, revenue per hour, average order value;
then inventory, the outbox, experiments, feature flags and age verification (the demo
shop's long-tail metrics). Expensive aggregations over an hour come from the recording rules
in ``prometheus/rules/dashboards.yml``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from lookout_stack.dashboards.panels import (
    Steps,
    bar_gauge,
    new_dashboard,
    or_zero,
    pie,
    prom,
    stat_panel,
    timeseries_panel,
)
from lookout_stack.dashboards.rules import Rules

__all__ = ["UID", "build"]

UID = "lookout-business"
DECLINED = "job:payments_authorizations_declined:ratio_rate5m"
# The recorded ratio has no series until the first decline: 0 for every job that authorises.
DECLINED_OR_ZERO = f"{DECLINED} or (job:payments_authorizations:rate5m * 0)"
RI = "[$__rate_interval]"


def build(rules: Rules) -> Dashboard:
    """Return the business dashboard."""
    dashboard = new_dashboard(
        UID,
        "Lookout / Business",
        "The shop as the business sees it: orders, payments, revenue, average order value, "
        "stock, order e-mails (outbox), experiments, feature flags and age checks.",
        tags=["business"],
        time_from="now-6h",
        refresh="1m",
    )
    dashboard = _sales(dashboard, rules)
    dashboard = _inventory_and_outbox(dashboard, rules)
    return _experiments_and_compliance(dashboard)


def _sales(dashboard: Dashboard, rules: Rules) -> Dashboard:
    return (
        dashboard.with_row(Row("Sales"))
        .with_panel(
            stat_panel(
                "Revenue, last hour",
                "US dollars from paid orders over the last hour (recorded).",
                prom("sum(job:shop_revenue_usd:increase1h)"),
                unit="currencyUSD",
            )
        )
        .with_panel(
            stat_panel(
                "Paid orders, last hour",
                "Orders paid over the last hour (recorded).",
                prom('sum(job_status:shop_orders:increase1h{status="paid"})'),
                unit="none",
            )
        )
        .with_panel(
            stat_panel(
                "Average order value",
                "Mean value of a paid order over the last hour (recorded).",
                prom("avg(job:shop_order_value_usd:avg_rate1h)"),
                unit="currencyUSD",
            )
        )
        .with_panel(
            stat_panel(
                "Authorisations declined",
                "Share of payment authorisations declined over 5m; colours at "
                "PaymentFailureRateHigh's thresholds.",
                prom(f"max({DECLINED_OR_ZERO})"),
                unit="percentunit",
                steps=Steps.above(*rules.warning_and_critical("PaymentFailureRateHigh", DECLINED)),
            )
        )
        .with_panel(
            timeseries_panel(
                "Revenue per hour",
                "US dollars from paid orders in the hour before each point (recorded).",
                prom("sum(job:shop_revenue_usd:increase1h)", "revenue / h"),
                unit="currencyUSD",
            )
        )
        .with_panel(
            timeseries_panel(
                "Orders by status",
                "Orders per second by final status (paid, payment_declined, payment_error).",
                prom(f"sum by (status) (rate(shop_orders_total{RI}))", "{{status}}"),
                unit="ops",
                stack=True,
            )
        )
        .with_panel(
            timeseries_panel(
                "Payments by method and outcome",
                "Payment operations per second by operation, method and outcome (recorded).",
                prom(
                    "sum by (operation, method, outcome) "
                    "(job_operation_method_outcome:payments_transactions:rate5m)",
                    "{{operation}} {{method}} {{outcome}}",
                ),
                unit="ops",
            )
        )
        .with_panel(
            timeseries_panel(
                "Declined authorisations",
                "Share of authorisations declined (recorded). Dashed: PaymentFailureRateHigh.",
                prom(DECLINED_OR_ZERO, "{{job}}"),
                unit="percentunit",
                steps=Steps.above(*rules.warning_and_critical("PaymentFailureRateHigh", DECLINED)),
            )
        )
        .with_panel(
            timeseries_panel(
                "Average order value",
                "Mean value of paid orders over the hour before each point (recorded).",
                prom("avg(job:shop_order_value_usd:avg_rate1h)", "average order"),
                unit="currencyUSD",
                span=8,
            )
        )
        .with_panel(
            pie(
                "Captured by payment method",
                "US dollars captured over the range, by method.",
                prom(
                    "sum by (method) (increase(payments_captured_usd_total[$__range]))",
                    "{{method}}",
                    instant=True,
                ),
                unit="currencyUSD",
            )
        )
        .with_panel(
            timeseries_panel(
                "Payment processing p95",
                "95th percentile time the payment processor took, per operation (recorded).",
                prom(
                    "max by (operation) (job_operation:payments_processing_duration_seconds:"
                    'histogram_quantile_rate5m{quantile="0.95"})',
                    "{{operation}}",
                ),
                unit="s",
                span=8,
            )
        )
        .with_panel(
            bar_gauge(
                "Items sold by category",
                "Items sold over the range, by product category.",
                prom(
                    "sum by (category) (increase(shop_items_sold_total[$__range]))",
                    "{{category}}",
                    instant=True,
                ),
                unit="none",
                span=12,
            )
        )
        .with_panel(
            timeseries_panel(
                "Cart additions",
                "Products added to carts per second: the top of the funnel.",
                prom(f"sum(rate(shop_cart_additions_total{RI}))", "added to cart"),
                unit="ops",
            )
        )
    )


def _inventory_and_outbox(dashboard: Dashboard, rules: Rules) -> Dashboard:
    low = "shop_inventory_low_stock_items"
    age = "outbox_oldest_pending_age_seconds"
    return (
        dashboard.with_row(Row("Stock and order e-mails"))
        .with_panel(
            bar_gauge(
                "Stock by category",
                "Units in stock per product category.",
                prom("sum by (category) (shop_inventory_stock_units)", "{{category}}"),
                unit="none",
            )
        )
        .with_panel(
            timeseries_panel(
                "Products low on stock",
                "Products at or below the low-stock threshold, by category. Dashed: "
                "ShopLowStock fires above it (after 15 minutes).",
                prom(f"sum by (category) ({low})", "{{category}}"),
                unit="none",
                steps=Steps.above(rules.threshold("ShopLowStock", "warning", low)),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Units held in carts",
                "Units reserved by open carts.",
                prom("sum(shop_inventory_reserved_units)", "reserved"),
                unit="none",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Outbox backlog",
                "Order messages waiting for delivery, by topic.",
                prom("sum by (topic) (outbox_pending_messages)", "{{topic}}"),
                unit="none",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Oldest undelivered message",
                "Age of the oldest message still in the outbox. Dashed: OutboxBacklog.",
                prom(f"max({age})", "oldest"),
                unit="s",
                steps=Steps.above(rules.threshold("OutboxBacklog", "warning", age)),
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Outbox deliveries",
                "Deliveries per second by topic and outcome.",
                prom(
                    f"sum by (topic, outcome) (rate(outbox_deliveries_total{RI}))",
                    "{{topic}} {{outcome}}",
                ),
                unit="ops",
                span=8,
            )
        )
    )


def _experiments_and_compliance(dashboard: Dashboard) -> Dashboard:
    return (
        dashboard.with_row(Row("Experiments, flags and compliance"))
        .with_panel(
            timeseries_panel(
                "Experiment conversion rate",
                "Conversions per assignment, by experiment and variant (1h windows, recorded).",
                prom(
                    "sum by (experiment, variant) "
                    "(job_experiment_variant:experiment_conversions:rate1h) / "
                    "sum by (experiment, variant) "
                    "(job_experiment_variant:experiment_assignments:rate1h)",
                    "{{experiment}} {{variant}}",
                ),
                unit="percentunit",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Experiment assignments",
                "Users assigned per second, by experiment and variant.",
                prom(
                    or_zero(
                        f"sum by (experiment, variant) (rate(experiment_assignments_total{RI}))",
                        "experiment",
                        "variant",
                    ),
                    "{{experiment}} {{variant}}",
                ),
                unit="ops",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Feature flag evaluations",
                "Flag evaluations per second, by flag and variant.",
                prom(
                    f"sum by (flag, variant) (rate(feature_flag_evaluations_total{RI}))",
                    "{{flag}} {{variant}}",
                ),
                unit="ops",
                span=8,
            )
        )
        .with_panel(
            timeseries_panel(
                "Age verifications",
                "Age verifications per second, by method and outcome.",
                prom(
                    or_zero(
                        f"sum by (method, outcome) (rate(compliance_age_verifications_total{RI}))",
                        "method",
                        "outcome",
                    ),
                    "{{method}} {{outcome}}",
                ),
                unit="ops",
            )
        )
        .with_panel(
            timeseries_panel(
                "Checkouts of age-restricted products",
                "Checkouts holding an age-restricted product, by verification result.",
                prom(
                    or_zero(
                        "sum by (verification) "
                        f"(rate(compliance_age_restricted_checkouts_total{RI}))",
                        "verification",
                    ),
                    "{{verification}}",
                ),
                unit="ops",
            )
        )
    )
