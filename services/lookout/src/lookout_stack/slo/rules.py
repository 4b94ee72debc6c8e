"""Generate prometheus/rules/slo.yml from the SLOs: recording rules and burn-rate alerts.

Series (labels ``service`` = the scrape job, ``slo`` = the SLO name), as the SLO dashboard
reads them:

- ``slo:sli_errors:rate5m``, ``slo:sli_requests:rate5m``: bad and valid events per second
  over 5 minutes, per SLO (the inputs of every window of a day or more);
- ``slo:sli_error:ratio_rate<W>``: bad events over valid events over each window W;
- ``slo:objective:ratio`` (e.g. 0.999) and ``slo:error_budget:ratio`` (1 - objective);
- ``slo:burn_rate:rate<W>``: the error ratio over W divided by the error budget, for every
  window but the compliance window (1 = the pace that spends the budget exactly over it);
- ``slo:error_budget_remaining:ratio<window>``: 1 - error ratio / error budget over the
  compliance window (negative once the budget is overspent).

Windows: those the SLO dashboard reads (``DASHBOARD_WINDOWS``), every window of the alert
policy, and the compliance window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from lookout_stack.slo.loader import LoadedSlos
from lookout_stack.slo.model import AlertPolicy, BurnRateWindows, Slo
from lookout_stack.slo.promql import Matcher, Selector, duration_name, duration_seconds
from lookout_stack.slo.yaml_text import block, comment, scalar

__all__ = [
    "ALERT_NAMES",
    "BASE_WINDOW",
    "DASHBOARD_WINDOWS",
    "RAW_WINDOW_MAX_SECONDS",
    "RUNBOOK_URL",
    "SEVERITIES",
    "AnnotationValues",
    "alert_annotations",
    "alert_expr",
    "render_rules",
    "windows",
]

#: The windows the SLO dashboard reads (the contract's series), recorded whatever the policy.
DASHBOARD_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
#: The window recorded per SLO from the raw counters, that every longer window is built from.
BASE_WINDOW = "5m"
#: Windows up to this long are rates over the raw counters; longer ones sum recorded 5m rates.
RAW_WINDOW_MAX_SECONDS = 6 * 3600.0
#: The alert of each severity of the policy, and its Prometheus severity label.
ALERT_NAMES = {"page": "SLOErrorBudgetFastBurn", "ticket": "SLOErrorBudgetSlowBurn"}
SEVERITIES = {"page": "critical", "ticket": "warning"}
RUNBOOK_URL = "https://github.com/lookout-observability/lookout/blob/main/docs/runbooks/{}.md"
#: The recording interval of the long-window group (see the header of the generated file).
LONG_GROUP_INTERVAL = "1m"

_WIDTH = 100  # wrap comments and descriptions here
_MAX_LINE = 120  # yamllint's line-length (.yamllint.yaml)
_EXPR_COLUMN = 10  # where an expression's lines start inside a rule


def windows(loaded: LoadedSlos) -> list[str]:
    """Return every recorded window's name, shortest first, the compliance window last."""
    policy = loaded.document.alerts
    texts = [*DASHBOARD_WINDOWS, BASE_WINDOW, loaded.document.window]
    for row in (*policy.page, *policy.ticket):
        texts.extend((row.long_window, row.short_window))
    seconds = sorted({duration_seconds(text) for text in texts})
    return [duration_name(value) for value in seconds]


def _number(value: Decimal) -> str:
    """Write an exact decimal without exponent or trailing zeros (14.40 -> 14.4)."""
    text = f"{value.normalize():f}"
    return text


def _labels(slo: Slo, indent: int) -> list[str]:
    pad = " " * indent
    return [
        f"{pad}labels:",
        f"{pad}  service: {scalar(slo.service)}",
        f"{pad}  slo: {scalar(slo.name)}",
    ]


def _record(
    record: str, expr: list[str], indent: int = 6, labels: list[str] | None = None
) -> list[str]:
    pad = " " * indent
    lines = [f"{pad}- record: {record}"]
    if len(expr) == 1 and len(pad) + 8 + len(expr[0]) <= _MAX_LINE:
        lines.append(f"{pad}  expr: {scalar(expr[0])}")
    else:
        lines.extend(block("expr", expr, indent + 2))
    return lines + (labels or [])


def _job(slo: Slo) -> tuple[Matcher, ...]:
    return (Matcher("job", "=", slo.service),)


def _term(selector: Selector, window: str, slo: Slo, column: int, **rename: str) -> list[str]:
    """Return ``sum(rate(<selector with job>[window]))`` as lines that fit from ``column``.

    Continuation lines are indented relative to the first; a selector too long for one line
    gets its matchers on a line of their own.
    """
    extra = (*_job(slo), *((Matcher("le", "=", rename["le"]),) if "le" in rename else ()))
    metric = rename.get("metric", selector.metric)
    single = f"sum(rate({selector.render(extra=extra, metric=metric)}[{window}]))"
    if column + len(single) <= _MAX_LINE:
        return [single]
    matchers = ", ".join(m.render() for m in (*extra, *selector.matchers))
    return [f"sum(rate({metric}{{", f"  {matchers}", f"}}[{window}]))"]


def _prefixed(prefix: str, lines: list[str]) -> list[str]:
    """Put ``prefix`` before the first line and align the others under it."""
    pad = " " * len(prefix)
    return [prefix + lines[0], *(pad + line for line in lines[1:])]


def _errors_and_total(slo: Slo, window: str, column: int) -> tuple[list[str], list[str]]:
    """Return PromQL for bad and valid events per second over ``window``, from ``column``.

    Both are lists of lines relative to ``column``; the total's first line is meant to follow
    a 2-character operator (``/ ``).
    """
    selectors = slo.selectors()
    if "histogram" in selectors:
        histogram = selectors["histogram"]
        count_metric = f"{histogram.metric}_count"
        count = _term(histogram, window, slo, column, metric=count_metric)
        fast = _term(
            histogram,
            window,
            slo,
            column + 4,
            metric=f"{histogram.metric}_bucket",
            le=slo.bucket,
        )
        total = _term(histogram, window, slo, column + 2, metric=count_metric)
        return [*count, *_prefixed("  - ", fast)], total
    errors = _term(selectors["errors"], window, slo, column)
    total = _term(selectors["total"], window, slo, column + 2)
    # No bad event yet means no series at all, not 0: `or vector(0)` keeps the ratio defined.
    return [*errors, "  or vector(0)"], total


def _slo_rules(slo: Slo, raw_windows: list[str]) -> list[str]:
    """Return the per-SLO rules: objective, 5m event rates, error ratios over short windows."""
    if slo.indicator.is_latency:
        what = (
            f"{_number(slo.objective_percent)}% of events within {slo.threshold} "
            f"(indicator {slo.indicator_name}: {slo.indicator.description})"
        )
    else:
        what = (
            f"{_number(slo.objective_percent)}% of events good "
            f"(indicator {slo.indicator_name}: {slo.indicator.description})"
        )
    lines = comment(f"{slo.service} {slo.name}: {what}.", 6, _WIDTH)
    labels = _labels(slo, 8)
    lines += _record("slo:objective:ratio", [f"vector({_number(slo.objective)})"], labels=labels)
    errors, _ = _errors_and_total(slo, BASE_WINDOW, _EXPR_COLUMN)
    _, total = _errors_and_total(slo, BASE_WINDOW, _EXPR_COLUMN - 2)
    lines += _record(f"slo:sli_errors:rate{BASE_WINDOW}", errors, labels=labels)
    lines += _record(f"slo:sli_requests:rate{BASE_WINDOW}", total, labels=labels)
    for window in raw_windows:
        if window == BASE_WINDOW:
            continue
        errors, total = _errors_and_total(slo, window, _EXPR_COLUMN + 2)
        expr = ["(", *(f"  {line}" for line in errors), ")", *_prefixed("/ ", total)]
        lines += _record(f"slo:sli_error:ratio_rate{window}", expr, labels=labels)
    return lines


def _burn_rate(window: str) -> list[str]:
    return _record(
        f"slo:burn_rate:rate{window}",
        [f"slo:sli_error:ratio_rate{window} / slo:error_budget:ratio"],
    )


def alert_expr(rows: Iterable[BurnRateWindows]) -> list[str]:
    """Return the alert expression of one severity: any row whose two windows both burn."""
    parts = []
    for row in rows:
        long_name = duration_name(duration_seconds(row.long_window))
        short_name = duration_name(duration_seconds(row.short_window))
        rate = _number(row.burn_rate)
        parts.append(
            f"(slo:burn_rate:rate{long_name} > {rate} and slo:burn_rate:rate{short_name} > {rate})"
        )
    lines: list[str] = []
    for index, part in enumerate(parts):
        lines.append(part if index == 0 else f"or {part}")
    return lines


def _policy_text(rows: Iterable[BurnRateWindows], window: str) -> str:
    """Describe a severity's rows: '14.4x over 1h and 5m (2% of the budget gone) or ...'."""
    window_seconds = Decimal(str(duration_seconds(window)))
    texts = []
    for row in rows:
        spent = row.burn_rate * Decimal(str(duration_seconds(row.long_window))) / window_seconds
        texts.append(
            f"{_number(row.burn_rate)}x over {row.long_window} and {row.short_window} "
            f"({float(spent * 100):.3g}% of the budget gone)"
        )
    return " or ".join(texts)


@dataclass(frozen=True)
class AnnotationValues:
    """What the annotations show: template actions in the rule, their results in a test."""

    service: str = "{{ $labels.service }}"
    slo: str = "{{ $labels.slo }}"
    burn_rate: str = '{{ printf "%.1f" $value }}'


def alert_annotations(
    severity: str, policy: AlertPolicy, window: str, values: AnnotationValues
) -> dict[str, str]:
    """Return an alert's annotations, as templates (default values) or as rendered text.

    The budget left is not in the text: a template query would read the long-window group's
    latest evaluation, which lags the alert's by up to an interval (and in promtool by one
    evaluation or none, in no fixed order), so its value could not be tested. It is one
    click away: the dashboard link.
    """
    name = ALERT_NAMES[severity]
    rows = policy.page if severity == "page" else policy.ticket
    verb = "Pages" if severity == "page" else "Opens a ticket"
    window_name = duration_name(duration_seconds(window))
    description = (
        f"{values.service}'s {values.slo} SLO spends its {window} error budget "
        f"{values.burn_rate} times as fast as the objective allows, over the long window and "
        f"still over the short one. {verb} at {_policy_text(rows, window)}. The budget left "
        f"(slo:error_budget_remaining:ratio{window_name}) is on the dashboard."
    )
    return {
        "summary": f"{values.service} {values.slo} SLO burns its error budget at "
        f"{values.burn_rate}x",
        "description": description,
        "runbook_url": RUNBOOK_URL.format(name),
        "dashboard": f"/d/lookout-slo?var-service={values.service}",
    }


def _alert(severity: str, policy: AlertPolicy, window: str) -> list[str]:
    name = ALERT_NAMES[severity]
    rows = policy.page if severity == "page" else policy.ticket
    texts = alert_annotations(severity, policy, window, AnnotationValues())
    lines = [f"      - alert: {name}"]
    lines += block("expr", alert_expr(rows), 8)
    lines += [
        "        labels:",
        f"          severity: {SEVERITIES[severity]}",
        "          # Alertmanager groups and inhibits by job (alertmanager.yml): the service's.",
        f"          job: {scalar('{{ $labels.service }}')}",
        "        annotations:",
        *_key_value("summary", texts["summary"], 10),
        *block("description", [texts["description"]], 10, width=_WIDTH),
        *_key_value("runbook_url", texts["runbook_url"], 10),
        *_key_value("dashboard", texts["dashboard"], 10),
    ]
    return lines


def _key_value(key: str, value: str, indent: int) -> list[str]:
    """Return ``key: value``, or a folded block when the line would be too long."""
    line = f"{' ' * indent}{key}: {scalar(value)}"
    return [line] if len(line) <= _MAX_LINE else block(key, [value], indent)


def _header(loaded: LoadedSlos, recorded: list[str]) -> list[str]:
    window = duration_name(duration_seconds(loaded.document.window))
    raw = [w for w in recorded if duration_seconds(w) <= RAW_WINDOW_MAX_SECONDS]
    long = [w for w in recorded if duration_seconds(w) > RAW_WINDOW_MAX_SECONDS]
    docs = "https://prometheus.io/docs/prometheus/latest/configuration"
    base = BASE_WINDOW
    lines = [
        *comment(
            f"GENERATED by `lookout slo build` from {loaded.source}: do not edit. Change the "
            "SLOs there, run `uv run lookout slo build` and commit both; `lookout slo verify` "
            "and services/lookout/tests/test_slo_generated.py fail while this file is stale.",
            0,
            _WIDTH,
        ),
        f"# Reference (Prometheus 3.x): {docs}/recording_rules/",
        f"#   and {docs}/alerting_rules/",
        *comment(
            'Method: Google SRE workbook, chapter 5 "Alerting on SLOs", multiwindow, '
            "multi-burn-rate alerts (https://sre.google/workbook/alerting-on-slos/, Table 5-8 "
            "and the expressions above it). Unit tests: prometheus/tests/slo.test.yml "
            "(generated too); runbooks: docs/runbooks/SLOErrorBudgetFastBurn.md and "
            "SLOErrorBudgetSlowBurn.md.",
            0,
            _WIDTH,
        ),
        "#",
        *comment(
            "Compatibility: loads in Debian's Prometheus 2.42 (the tests here) and the pinned "
            "3.x image: rate() and sum_over_time() over classic histograms and counters, and a "
            "group `interval`, which 2.x has too.",
            0,
            _WIDTH,
        ),
        "#",
        "# Series, each with labels service=<scrape job> and slo=<SLO name>:",
        "#   slo:objective:ratio              the objective (0.999 for 99.9%)",
        "#   slo:error_budget:ratio           1 - objective: the share of events allowed bad",
        f"#   slo:sli_errors:rate{base}, slo:sli_requests:rate{base}",
        "#                                    bad and valid events per second (inputs)",
        "#   slo:sli_error:ratio_rate<W>      bad / valid events over W, W in",
        f"#                                    {', '.join(recorded)}",
        "#   slo:burn_rate:rate<W>            ratio over W / error budget (1 = spends the",
        f"#                                    budget exactly over {window}), every W but {window}",
        f"#   slo:error_budget_remaining:ratio{window}",
        f"#                                    1 - ratio over {window} / budget (< 0: overspent)",
        "#",
        *comment(
            f"How each window is computed. Up to {duration_name(RAW_WINDOW_MAX_SECONDS)} "
            f"({', '.join(raw)}): rate() over the raw counters, per SLO, exact, evaluated with "
            "everything else (the detection and reset times the workbook gives assume exact "
            f"windows). Longer ({', '.join(long)}): the ratio of sum_over_time() of the "
            f"recorded {base} rates, sum_over_time(slo:sli_errors:rate{base}[W]) / "
            f"sum_over_time(slo:sli_requests:rate{base}[W]), i.e. the ratio of the increases "
            f"over W, weighted by traffic. Why not rate() over the raw counters for {window}: "
            "that reads every raw series (per route, method, status, bucket) over the whole "
            f"window at each evaluation, where the recorded rates are 2 series per SLO. Why not "
            f"the mean of the {base} ratios (Sloth's approach): it weighs a quiet night's hour "
            f"like a busy hour's. The cost is a {base} smear at the window's edges (under 0.4% "
            f"of a day). These rules run in their own group every {LONG_GROUP_INTERVAL}: a "
            "day's or a month's ratio barely moves in 15 s, and it keeps the longest query to "
            f"one a minute; the ticket alert reads them at most {LONG_GROUP_INTERVAL} late.",
            0,
            _WIDTH,
        ),
        "",
    ]
    return lines


def render_rules(loaded: LoadedSlos) -> str:
    """Return the text of prometheus/rules/slo.yml for the loaded SLOs."""
    recorded = windows(loaded)
    compliance = recorded[-1]
    raw = [w for w in recorded if duration_seconds(w) <= RAW_WINDOW_MAX_SECONDS]
    long = [w for w in recorded if duration_seconds(w) > RAW_WINDOW_MAX_SECONDS]
    lines = _header(loaded, recorded)
    lines += [
        "groups:",
        "  # Per SLO: the objective, bad and valid events per second, error ratios over the short",
        "  # windows from the raw counters. Then, for every SLO at once: budget and burn rates.",
        "  - name: slo-sli",
        "    rules:",
    ]
    for slo in loaded.slos:
        lines += _slo_rules(slo, raw)
    lines += ["      # Every SLO: error budget, the 5m ratio, burn rates over the short windows."]
    lines += _record("slo:error_budget:ratio", ["1 - slo:objective:ratio"])
    lines += _record(
        f"slo:sli_error:ratio_rate{BASE_WINDOW}",
        [f"slo:sli_errors:rate{BASE_WINDOW} / slo:sli_requests:rate{BASE_WINDOW}"],
    )
    for window in raw:
        lines += _burn_rate(window)
    lines += [
        "",
        "  # Windows of a day or more, from the recorded 5m rates (see the header), every minute.",
        "  - name: slo-sli-long",
        f"    interval: {LONG_GROUP_INTERVAL}",
        "    rules:",
    ]
    for window in long:
        lines += _record(
            f"slo:sli_error:ratio_rate{window}",
            [
                f"sum_over_time(slo:sli_errors:rate{BASE_WINDOW}[{window}])",
                f"/ sum_over_time(slo:sli_requests:rate{BASE_WINDOW}[{window}])",
            ],
        )
    for window in long:
        if window != compliance:
            lines += _burn_rate(window)
    lines += _record(
        f"slo:error_budget_remaining:ratio{compliance}",
        [f"1 - slo:sli_error:ratio_rate{compliance} / slo:error_budget:ratio"],
    )
    policy = loaded.document.alerts
    lines += [
        "",
        "  # Multiwindow, multi-burn-rate alerts, one rule per severity for every SLO. No `for`:",
        "  # the short window already shows the burn is still going on, and a `for` would only",
        "  # delay the page (the workbook's iteration 3 shows why). A service with no valid",
        "  # events has an error ratio of NaN (0/0), which compares false: it stays quiet.",
        "  - name: slo-alerts",
        "    rules:",
        "      # Fast burn pages: at the first pair's rate the whole budget is gone in"
        f" {_exhaustion(policy.page[0], loaded.document.window)}.",
        *_alert("page", policy, loaded.document.window),
        "      # Slow burn opens a ticket (chat): the budget runs out within the window.",
        *_alert("ticket", policy, loaded.document.window),
    ]
    return "\n".join(lines) + "\n"


def _exhaustion(row: BurnRateWindows, window: str) -> str:
    """Return how long the budget lasts at a row's burn rate, in hours or days."""
    hours = Decimal(str(duration_seconds(window))) / 3600 / row.burn_rate
    if hours < 72:
        return f"{float(hours):.3g} hours"
    return f"{float(hours / 24):.3g} days"
