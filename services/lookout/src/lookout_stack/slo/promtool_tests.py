"""Generate prometheus/tests/slo.test.yml: promtool unit tests for the generated SLO rules.

The tests are generated because their numbers follow from the SLOs (an objective change
changes what must fire), and no target may be written twice. They are still a real check:
promtool evaluates the generated PromQL on input series built here, for every SLO of the
file, and compares with values computed here from the objectives in exact decimals.

Input series: per SLO, 1000 valid events a minute, ``bad`` of them bad, with labels chosen
to satisfy the indicator's selectors (a good event fails one of the `errors` matchers; a
latency histogram gets its ``_count`` and the threshold's ``_bucket``). Scenarios, each for
every SLO at once, at burn rates placed from the alert policy:

- fast burn: 1.25 x the highest page burn rate for an hour, then none; pages (and opens the
  ticket, which Alertmanager mutes), and stops paging 10 minutes after the errors stop
  although the long window still burns above the threshold (the short window's job);
- slow burn: between the ticket and the page burn rates; opens the ticket, does not page;
- just below the budget: 0.9 x the lowest ticket burn rate; quiet, and every recorded
  series checked (objective, budget, event rates, ratios and burn rates over each window,
  budget remaining).

promtool 2.42 compares sample values exactly, so recorded values are compared after
``round(x, 0.000001)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from lookout_stack.slo.errors import SloConfigError, SloConfigErrors
from lookout_stack.slo.loader import LoadedSlos
from lookout_stack.slo.model import Slo
from lookout_stack.slo.promql import (
    Matcher,
    Selector,
    duration_name,
    duration_seconds,
)
from lookout_stack.slo.rules import (
    ALERT_NAMES,
    BASE_WINDOW,
    SEVERITIES,
    AnnotationValues,
    alert_annotations,
    windows,
)
from lookout_stack.slo.yaml_text import block, key_value, scalar

__all__ = ["Scenario", "render_tests", "scenarios"]

#: Valid events per minute in every input series.
EVENTS_PER_MINUTE = Decimal(1000)
_ROUND = Decimal("0.000001")
#: The fast scenario burns at this factor of the highest page burn rate, for this long.
_FAST_FACTOR = Decimal("1.25")
_FAST_MINUTES = 60
_WIDTH = 100


@dataclass(frozen=True)
class Scenario:
    """Burn rates over time for every SLO, and what must fire when."""

    name: str
    burn_rate: Decimal
    #: Minutes at ``burn_rate``; then clean until the series end.
    burn_minutes: int
    total_minutes: int


def scenarios(loaded: LoadedSlos, slo: Slo) -> dict[str, Scenario]:
    """Return the fast, slow and quiet scenarios' burn rates for one SLO."""
    policy = loaded.document.alerts
    pages = [row.burn_rate for row in policy.page]
    tickets = [row.burn_rate for row in policy.ticket]
    ceiling = 1 / slo.error_budget  # every event bad
    fast = max(pages) * _FAST_FACTOR
    if fast >= ceiling:
        fast = (max(pages) + ceiling) / 2
    below_page = [rate for rate in tickets if rate < min(pages)]
    if not below_page:
        msg = (
            "no ticket burn rate is below every page burn rate, so no test can show a ticket "
            "without a page; lower a ticket burn_rate"
        )
        raise SloConfigErrors([SloConfigError(msg, file=loaded.source, field="alerts.ticket")])
    slow = (max(below_page) + min(pages)) / 2
    quiet = min(tickets) * Decimal("0.9")
    return {
        "fast": Scenario("fast", _exact(fast), _FAST_MINUTES, _fast_stop(loaded)),
        "slow": Scenario("slow", _exact(slow), 120, 120),
        "quiet": Scenario("quiet", _exact(quiet), 180, 180),
    }


def _fast_stop(loaded: LoadedSlos) -> int:
    """Return the minute the fast scenario checks the page has resolved (and ends)."""
    highest = max(row.burn_rate for row in loaded.document.alerts.page)
    return _FAST_MINUTES + _clean_minutes(loaded, _exact(highest * _FAST_FACTOR))


def _exact(burn: Decimal) -> Decimal:
    """Keep a burn rate to 4 decimals, so bad events per minute stay short numbers."""
    return burn.quantize(Decimal("0.0001")).normalize()


# --- input series ------------------------------------------------------------------------------


def _examples(matcher: Matcher) -> list[str]:
    """Return label values that a positive matcher's value or regex suggests (unchecked)."""
    if matcher.op == "=":
        return [matcher.value]
    if matcher.op != "=~":
        return []
    found = []
    for alternative in matcher.value.split("|"):
        text = alternative.strip("^$")
        text = text.replace(".*", "").replace(".+", "x").replace("\\.", "\0")
        found.append(text.replace(".", "0").replace("\0", "."))
    return found


def _preferred(label: str) -> list[str]:
    """Return readable values for a label with only negative constraints."""
    if "code" in label or "status" in label:
        return ["200"]
    if "route" in label or "path" in label:
        return ["/slo-test"]
    return ["ok"]


def _value(label: str, require: list[Matcher], refuse: Matcher | None = None) -> str | None:
    """Return a value of ``label`` that every ``require`` matcher accepts and ``refuse`` not."""
    candidates = [example for m in require for example in _examples(m)]
    candidates += [*_preferred(label), "200", "ok", "/slo-test", "slo-test"]
    for candidate in candidates:
        if all(m.matches(candidate) for m in require) and (
            refuse is None or not refuse.matches(candidate)
        ):
            return candidate
    return None


def _labels(
    slo: Slo, role: str, selectors: list[Selector], refuse: Matcher | None = None
) -> dict[str, str]:
    """Return labels a series needs to be selected by every selector (and not by ``refuse``)."""
    wanted = sorted(
        {m.label for selector in selectors for m in selector.matchers}
        | ({refuse.label} if refuse else set())
    )
    labels = {"job": slo.service, "instance": f"{slo.service}:1"}
    for label in wanted:
        require = [m for selector in selectors for m in selector.matchers if m.label == label]
        value = _value(label, require, refuse if refuse and refuse.label == label else None)
        if value is None:
            matchers = ", ".join(m.render() for m in require)
            msg = (
                f"cannot build a test series for {slo.service} {slo.name}: no value of label "
                f"{label!r} satisfies {matchers}"
                + (f" while failing {refuse.render()}" if refuse else "")
                + "; simplify the regular expression"
            )
            field = f"indicators.{slo.indicator_name}.{role}"
            raise SloConfigErrors([SloConfigError(msg, field=field)])
        if value:
            labels[label] = value
    return labels


def _series_text(metric: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return f"{metric}{{{inner}}}"


def _counter(per_minute: list[tuple[Decimal, int]]) -> str:
    """Return promtool's expanding notation for a counter growing ``step`` for ``n`` minutes."""
    parts: list[str] = []
    value = Decimal(0)
    for step, minutes in per_minute:
        if not parts:
            parts.append(f"{_num(value)}+{_num(step)}x{minutes}")
        else:
            parts.append(f"{_num(value + step)}+{_num(step)}x{minutes - 1}")
        value += step * minutes
    return " ".join(parts)


def _num(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text


def _input_series(slo: Slo, scenario: Scenario) -> list[tuple[str, str]]:
    """Return (series, values) for one SLO under one scenario."""
    bad = scenario.burn_rate * slo.error_budget * EVENTS_PER_MINUTE
    good = EVENTS_PER_MINUTE - bad
    clean = scenario.total_minutes - scenario.burn_minutes
    shape_bad = [(bad, scenario.burn_minutes)] + ([(Decimal(0), clean)] if clean else [])
    shape_good = [(good, scenario.burn_minutes)] + ([(EVENTS_PER_MINUTE, clean)] if clean else [])
    shape_all = [(EVENTS_PER_MINUTE, scenario.total_minutes)]
    selectors = slo.selectors()
    if "histogram" in selectors:
        histogram = selectors["histogram"]
        labels = _labels(slo, "histogram", [histogram])
        bucket = {**labels, "le": slo.bucket}
        return [
            (_series_text(f"{histogram.metric}_bucket", bucket), _counter(shape_good)),
            (_series_text(f"{histogram.metric}_count", labels), _counter(shape_all)),
        ]
    errors, total = selectors["errors"], selectors["total"]
    if errors.metric != total.metric:
        return [
            (_series_text(errors.metric, _labels(slo, "errors", [errors])), _counter(shape_bad)),
            (_series_text(total.metric, _labels(slo, "total", [total])), _counter(shape_all)),
        ]
    distinct = [m for m in errors.matchers if m not in total.matchers]
    if not distinct:
        msg = (
            f"{slo.service} {slo.name}: errors selects the same series as total, so no event "
            "could be good; add the matcher that marks a bad event"
        )
        raise SloConfigErrors([SloConfigError(msg, field=f"indicators.{slo.indicator_name}")])
    bad_labels = _labels(slo, "errors", [errors, total])
    good_labels = _labels(slo, "total", [total], refuse=distinct[0])
    return [
        (_series_text(errors.metric, bad_labels), _counter(shape_bad)),
        (_series_text(total.metric, good_labels), _counter(shape_good)),
    ]


# --- expectations ------------------------------------------------------------------------------


def _rounded(value: Decimal) -> str:
    return _num(value.quantize(_ROUND, rounding=ROUND_HALF_UP))


def _slo_labels(slo: Slo) -> str:
    return f'{{service="{slo.service}",slo="{slo.name}"}}'


def _go_percent(value: Decimal) -> str:
    """Render ``humanizePercentage`` as Prometheus does: Go's ``%.4g`` of value x 100."""
    return f"{float(value * 100):.4g}%"


def _expected_alerts(loaded: LoadedSlos, severity: str, burns: dict[Slo, Decimal]) -> list[str]:
    """Return exp_alerts lines for every SLO burning at ``burns[slo]`` over all windows."""
    window = loaded.document.window
    lines: list[str] = []
    for slo, burn in burns.items():
        values = AnnotationValues(
            service=slo.service,
            slo=slo.name,
            burn_rate=f"{float(burn):.1f}",
            remaining=_go_percent(1 - burn),
        )
        texts = alert_annotations(severity, loaded.document.alerts, window, values)
        lines += [
            "          - exp_labels:",
            f"              severity: {SEVERITIES[severity]}",
            f"              job: {scalar(slo.service)}",
            f"              service: {scalar(slo.service)}",
            f"              slo: {scalar(slo.name)}",
            "            exp_annotations:",
            f"              summary: {scalar(texts['summary'])}",
            *block("description", [texts["description"]], 14, width=_WIDTH),
            *block("runbook_url", [texts["runbook_url"]], 14),
            f"              dashboard: {scalar(texts['dashboard'])}",
        ]
    return lines


def _alert_case(
    eval_time: str, severity: str, lines: list[str], comment: str | None = None
) -> list[str]:
    head = [f"      # {comment}"] if comment else []
    if not lines:
        return [
            *head,
            f"      - eval_time: {eval_time}",
            f"        alertname: {ALERT_NAMES[severity]}",
            "        exp_alerts: []",
        ]
    return [
        *head,
        f"      - eval_time: {eval_time}",
        f"        alertname: {ALERT_NAMES[severity]}",
        "        exp_alerts:",
        *lines,
    ]


def _expr_case(eval_time: str, expr: str, samples: list[tuple[str, str]]) -> list[str]:
    lines = [
        f"      - expr: {scalar(expr)}",
        f"        eval_time: {eval_time}",
        "        exp_samples:",
    ]
    for labels, value in samples:
        lines += [f"          - labels: {scalar(labels)}", f"            value: {value}"]
    return lines


def _test_group(loaded: LoadedSlos, key: str, name: str) -> tuple[list[str], dict[Slo, Decimal]]:
    """Return a test's head and input series, and each SLO's burn rate in the scenario."""
    chosen = {slo: scenarios(loaded, slo)[key] for slo in loaded.slos}
    lines = [f"  - name: {scalar(name)}", "    interval: 1m", "    input_series:"]
    for slo, scenario in chosen.items():
        bad = scenario.burn_rate * slo.error_budget * EVENTS_PER_MINUTE
        then = scenario.total_minutes > scenario.burn_minutes
        lines.append(
            f"      # {slo.service} {slo.name}: burn rate {_num(scenario.burn_rate)}, "
            f"{_num(bad)} bad of {_num(EVENTS_PER_MINUTE)} events a minute for "
            f"{scenario.burn_minutes}m"
            + (f", then none until {scenario.total_minutes}m" if then else "")
        )
        for series, values in _input_series(slo, scenario):
            lines += key_value("series", series, 6, item=True)
            lines += key_value("values", values, 8)
    return lines, {slo: scenario.burn_rate for slo, scenario in chosen.items()}


def _rounded_case(eval_time: str, series: str, values: dict[Slo, Decimal]) -> list[str]:
    samples = [(_slo_labels(slo), _rounded(value)) for slo, value in values.items()]
    return _expr_case(eval_time, f"round({series}, {_num(_ROUND)})", samples)


def _window_minutes(text: str) -> int:
    return int(duration_seconds(text) // 60)


def _clean_minutes(loaded: LoadedSlos, burn: Decimal) -> int:
    """Return minutes without errors after which every page pair's short window is quiet.

    Rounded up to 5 minutes, with a 5% margin below each burn rate.
    """
    needed = 0
    for row in loaded.document.alerts.page:
        short = _window_minutes(row.short_window)
        clean = 0
        while burn * max(short - clean, 0) / short >= row.burn_rate * Decimal("0.95"):
            clean += 1
        needed = max(needed, clean)
    return -(-(needed + 1) // 5) * 5


def _fast(loaded: LoadedSlos) -> list[str]:
    lines, burns = _test_group(loaded, "fast", "a fast burn pages, and stops paging once it stops")
    burn_minutes = scenarios(loaded, loaded.slos[0])["fast"].burn_minutes
    stopped = _fast_stop(loaded)
    lines += [
        "    alert_rule_test:",
        *_alert_case(
            "10m",
            "page",
            _expected_alerts(loaded, "page", burns),
            "Every window burns above the page rate: every SLO pages.",
        ),
        *_alert_case(
            "10m",
            "ticket",
            _expected_alerts(loaded, "ticket", burns),
            "The ticket fires too; Alertmanager mutes it while the page fires (inhibit_rules).",
        ),
        *_alert_case(
            f"{stopped}m",
            "page",
            [],
            f"{stopped - burn_minutes} minutes after the errors stopped every short window is "
            "below its burn rate: the page has resolved...",
        ),
    ]
    # ... although a long window still burns above its rate: the short window's doing.
    for row in loaded.document.alerts.page:
        long = _window_minutes(row.long_window)
        burning = max(0, burn_minutes - max(0, stopped - long))
        if min(burn * burning / min(long, stopped) for burn in burns.values()) <= row.burn_rate:
            continue
        long_name = duration_name(duration_seconds(row.long_window))
        short_name = duration_name(duration_seconds(row.short_window))
        rate = _num(row.burn_rate)
        lines += [
            "    promql_expr_test:",
            f"      # ... although the {long_name} window still burns above {rate}x: the "
            f"{short_name} window stopped the page.",
            *_expr_case(
                f"{stopped}m",
                f"slo:burn_rate:rate{long_name} > bool {rate}",
                [(_slo_labels(slo), "1") for slo in burns],
            ),
            *_expr_case(
                f"{stopped}m",
                f"slo:burn_rate:rate{short_name} > bool {rate}",
                [(_slo_labels(slo), "0") for slo in burns],
            ),
        ]
        break
    return lines


def _slow(loaded: LoadedSlos) -> list[str]:
    lines, burns = _test_group(loaded, "slow", "a slow burn opens a ticket and does not page")
    minutes = scenarios(loaded, loaded.slos[0])["slow"].burn_minutes
    return [
        *lines,
        "    alert_rule_test:",
        *_alert_case(
            f"{minutes}m",
            "ticket",
            _expected_alerts(loaded, "ticket", burns),
            "Above a ticket burn rate over both of its windows: every SLO opens a ticket.",
        ),
        *_alert_case(
            f"{minutes}m", "page", [], "Below every page burn rate: no page (near its threshold)."
        ),
    ]


def _quiet(loaded: LoadedSlos, recorded: list[str]) -> list[str]:
    lines, burns = _test_group(
        loaded, "quiet", "a service spending its budget a little slower than it lasts stays quiet"
    )
    minutes = scenarios(loaded, loaded.slos[0])["quiet"].burn_minutes
    at = f"{minutes}m"
    compliance = recorded[-1]
    per_second = EVENTS_PER_MINUTE / 60
    lines += [
        "    alert_rule_test:",
        *_alert_case(at, "ticket", [], "Below the lowest ticket burn rate: no ticket..."),
        *_alert_case(at, "page", [], "... and no page."),
        "    promql_expr_test:",
        "      # Every recorded series of every SLO (values rounded to 6 decimals).",
    ]
    lines += _rounded_case(at, "slo:objective:ratio", {slo: slo.objective for slo in burns})
    lines += _rounded_case(at, "slo:error_budget:ratio", {slo: slo.error_budget for slo in burns})
    lines += _rounded_case(
        at,
        f"slo:sli_errors:rate{BASE_WINDOW}",
        {slo: burn * slo.error_budget * per_second for slo, burn in burns.items()},
    )
    lines += _rounded_case(
        at, f"slo:sli_requests:rate{BASE_WINDOW}", dict.fromkeys(burns, per_second)
    )
    for window in recorded:
        lines += _rounded_case(
            at,
            f"slo:sli_error:ratio_rate{window}",
            {slo: burn * slo.error_budget for slo, burn in burns.items()},
        )
    for window in recorded[:-1]:
        lines += _rounded_case(at, f"slo:burn_rate:rate{window}", burns)
    lines += _rounded_case(
        at,
        f"slo:error_budget_remaining:ratio{compliance}",
        {slo: 1 - burn for slo, burn in burns.items()},
    )
    return lines


def render_tests(loaded: LoadedSlos) -> str:
    """Return the text of prometheus/tests/slo.test.yml for the loaded SLOs."""
    recorded = windows(loaded)
    header = [
        f"# GENERATED by `lookout slo build` from {loaded.source}, with prometheus/rules/slo.yml:",
        "# do not edit; rebuild. promtool unit tests of the SLO rules, for every SLO of the file.",
        "# Run: promtool test rules prometheus/tests/slo.test.yml",
        "# Reference: https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/",
        "# How the inputs and expected values are made: the docstring of",
        "# services/lookout/src/lookout_stack/slo/promtool_tests.py. Series notation: `a+bxN`",
        "# = N+1 samples from a, step b, one a minute. promtool 2.42 compares values exactly:",
        "# recorded ones are compared rounded to 6 decimals.",
        "",
        "rule_files:",
        "  - ../rules/slo.yml",
        "",
        "evaluation_interval: 1m",
        "",
        "tests:",
    ]
    body = [*_fast(loaded), "", *_slow(loaded), "", *_quiet(loaded, recorded)]
    return "\n".join([*header, *body]) + "\n"
