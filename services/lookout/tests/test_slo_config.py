"""slo/slos.yaml: the real file loads, and every mistake is reported with file, line and field."""

from __future__ import annotations

from decimal import Decimal

import pytest
from slo_support import SLO_TEXT, line_of

from lookout_stack.slo import SloConfigErrors, parse_slos

SOURCE = "slo/slos.yaml"


def errors_of(text: str) -> list[str]:
    """Parse ``text`` as the SLO file; return its error lines (empty when it loads)."""
    try:
        parse_slos(text, SOURCE)
    except SloConfigErrors as errors:
        return [str(error) for error in errors.errors]
    return []


def replaced(old: str, new: str, *, after: str = "") -> str:
    """Return the real SLO file with the first ``old`` after ``after`` replaced by ``new``."""
    start = SLO_TEXT.index(after) if after else 0
    index = SLO_TEXT.index(old, start)
    return SLO_TEXT[:index] + new + SLO_TEXT[index + len(old) :]


def test_the_real_file_loads_every_service_with_exact_objectives() -> None:
    """The committed file is valid; objectives are exact decimals (99.9% -> 0.999, no float)."""
    loaded = parse_slos(SLO_TEXT, SOURCE)
    assert {slo.service for slo in loaded.slos} >= {"shop", "payments"}
    for slo in loaded.slos:
        assert slo.objective == slo.objective_percent / 100
        assert slo.error_budget + slo.objective == Decimal(1)
        assert str(slo.objective) == str(slo.objective_percent / Decimal(100))


# (case id, old text, new text, anchor the old text follows, field, message fragment); the
# error's line is that of the new text, or of `LINE_AT[case id]` when it is the parent key's.
BAD_CASES = [
    (
        "objective over 100",
        "objective: 99.9}",
        "objective: 100.5}",
        "  shop:",
        "services.shop.availability.objective",
        "less than 100",
    ),
    (
        "objective not a number",
        "objective: 95,",
        "objective: ninety-five,",
        "  payments:",
        "services.payments.latency.objective",
        "valid decimal",
    ),
    (
        "unknown indicator",
        "indicator: http-requests,",
        "indicator: http-request,",
        "  payments:",
        "services.payments.availability.indicator",
        "unknown indicator 'http-request'; known: http-request-duration, http-requests",
    ),
    (
        "latency without a threshold",
        ", threshold: 1s}",
        "}",
        "  shop:",
        "services.shop.latency",
        "give a threshold",
    ),
    (
        "threshold on a ratio",
        "objective: 99.9}",
        "objective: 99.9, threshold: 1s}",
        "  shop:",
        "services.shop.availability.threshold",
        "applies only to a histogram indicator",
    ),
    (
        "misspelt field",
        "{indicator: http-requests, objective: 99.9}",
        "{indicator: http-requests, objectiv: 99.9}",
        "  shop:",
        "services.shop.availability.objectiv",
        "unknown field",
    ),
    (
        "window not a duration",
        "window: 30d",
        "window: 30 days",
        "",
        "window",
        "not a duration",
    ),
    (
        "burn rate not a number",
        "burn_rate: 14.4}",
        "burn_rate: fast}",
        "",
        "alerts.page[0].burn_rate",
        "valid decimal",
    ),
    (
        "short window not shorter",
        "short_window: 30m",
        "short_window: 6h",
        "",
        "alerts.page[1]",
        "short_window 6h must be shorter than long_window 6h",
    ),
    (
        "long window beyond the SLO window",
        "long_window: 3d",
        "long_window: 31d",
        "",
        "alerts.ticket[1].long_window",
        "longer than the window (30d)",
    ),
    (
        "an alert that can never fire",
        "objective: 95,",
        "objective: 90,",
        "  webhook-relay:",
        "services.webhook-relay.latency.objective",
        "could never fire",
    ),
    (
        "a selector that does not parse",
        'status_code=~"5.."}',
        "status_code=~5..}",
        "",
        "indicators.http-requests.errors",
        "cannot read the matcher",
    ),
    (
        "a selector that sets job",
        "total: relay_notifications_received_total",
        'total: relay_notifications_received_total{job="webhook-relay"}',
        "",
        "indicators.relay-webhooks.total",
        "leave `job` out",
    ),
    (
        "a histogram named with its suffix",
        "histogram: relay_accept_duration_seconds",
        "histogram: relay_accept_duration_seconds_bucket",
        "",
        "indicators.relay-accept-duration.histogram",
        "without its suffix (relay_accept_duration_seconds)",
    ),
    (
        "a threshold that is not a bucket boundary",
        "threshold: 1s}",
        "threshold: 7s}",
        "  payments:",
        "services.payments.latency.threshold",
        'no bucket le="7.0", so the SLO would have no data); use one of: 5ms, 10ms, 25ms',
    ),
    (
        "a histogram without its buckets",
        "    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]\n",
        "",
        "",
        "indicators.relay-accept-duration",
        "a histogram indicator needs `buckets`",
    ),
    (
        "buckets out of order",
        "buckets: [0.001, 0.0025,",
        "buckets: [0.0025, 0.001,",
        "",
        "indicators.relay-accept-duration.buckets",
        "in increasing order",
    ),
    (
        "buckets on a ratio indicator",
        "total: relay_notifications_received_total\n",
        "total: relay_notifications_received_total\n    buckets: [1.0]\n",
        "",
        "indicators.relay-webhooks",
        "`buckets` applies only to a histogram indicator",
    ),
    (
        "a service name that is not a job name",
        "  payments:\n",
        "  Payments:\n",
        "services:",
        "services.Payments",
        "'Payments' is not a valid name",
    ),
]


LINE_AT = {
    "latency without a threshold": "latency:",
    "short window not shorter": "{long_window: 6h",
    "a histogram without its buckets": "relay-accept-duration:",
    "buckets on a ratio indicator": "relay-webhooks:",
}


@pytest.mark.parametrize(
    ("case", "old", "new", "after", "field", "message"),
    BAD_CASES,
    ids=[case[0] for case in BAD_CASES],
)
def test_a_mistake_is_reported_with_file_line_and_field(
    case: str, old: str, new: str, after: str, field: str, message: str
) -> None:
    """A mistake gives the error `slo/slos.yaml:<its line>: <field>: <message>`."""
    text = replaced(old, new, after=after)
    start = text.index(after) if after else 0
    line = line_of(text, LINE_AT.get(case, new.strip()), start)
    errors = errors_of(text)
    expected = f"{SOURCE}:{line}: {field}: "
    found = [error for error in errors if error.startswith(expected)]
    assert found, f"no error starts with {expected!r}: {errors}"
    assert message in found[0], found[0]


def test_every_mistake_is_reported_at_once() -> None:
    """Two mistakes in different sections come back together, in file order."""
    text = replaced("window: 30d", "window: 1 month")
    text = text.replace("objective: 99.9}", "objective: 199.9}", 1)
    errors = errors_of(text)
    assert [error.split(": ")[1] for error in errors] == [
        "window",
        "services.shop.availability.objective",
    ], errors


def test_a_duplicate_key_is_an_error_naming_both_lines() -> None:
    """A service written twice is refused (PyYAML alone would silently keep the second)."""
    again = "  shop:\n    availability: {indicator: http-requests, objective: 99}\n"
    text = SLO_TEXT.replace("  payments:\n", again + "  payments:\n", 1)
    first, second = line_of(text, "  shop:\n"), line_of(text, again)
    assert errors_of(text) == [
        f"{SOURCE}:{second}: services.shop: duplicate key (first at line {first}); keep one"
    ]


def test_invalid_yaml_names_the_line() -> None:
    """A YAML syntax error is reported with its line, before any validation."""
    text = replaced("window: 30d", "window: [30d")
    errors = errors_of(text)
    assert len(errors) == 1 and errors[0].startswith(f"{SOURCE}:")
    assert "not valid YAML" in errors[0]


def test_a_file_that_is_not_a_mapping_is_refused() -> None:
    """A list (or a scalar) at the top level is refused with a sentence naming the sections."""
    assert errors_of("- window: 30d\n") == [
        f"{SOURCE}:1: the file must be a mapping with window, alerts, indicators and services"
    ]
