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
  ticket, which Alertmanager mutes), and has stopped paging once every short window is clean
  although a long window still burns above its rate (the short window's job);
- slow burn: between the ticket and the page burn rates; opens the ticket, does not page;
- each pair alone: a burn 10% above the pair's rate (below the next higher rate) fires the
  alert through that pair only; pairs with lower rates are kept quiet by a clean history that
  dilutes their longer windows, and 10% below the rate it stays quiet. A pair that needs
  more than ``_ISOLATION_LIMIT`` minutes of data for that (the workbook's 3x over 1d and 2h
  ticket: under constant traffic it never fires without the 1x over 3d and 6h pair) is named
  in a comment instead;
- just below the budget: 0.9 x the lowest ticket burn rate; quiet, and every recorded
  series checked (objective, budget, event rates, ratios and burn rates over each window,
  budget remaining);
- no bad event at all (the series does not exist): every ratio is 0, not absent.

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
    RAW_WINDOW_MAX_SECONDS,
    SEVERITIES,
    AnnotationValues,
    alert_annotations,
    windows,
)
from lookout_stack.slo.yaml_text import block, comment, key_value, scalar

__all__ = ["Scenario", "render_tests", "scenarios"]

#: Valid events per minute in every input series.
EVENTS_PER_MINUTE = Decimal(1000)
_ROUND = Decimal("0.000001")
#: The fast scenario burns at this factor of the highest page burn rate, for this long.
_FAST_FACTOR = Decimal("1.25")
_FAST_MINUTES = 60
#: Longest test, in minutes of data (promtool runs every rule each minute; 2 days take 25 s).
_ISOLATION_LIMIT = 8 * 60
_WIDTH = 100


@dataclass(frozen=True)
class Scenario:
    """One SLO's events over time: phases of (burn rate, minutes), 0 meaning no bad event."""

    name: str
    phases: tuple[tuple[Decimal, int], ...]
    #: No bad event at all: the series of bad events does not exist (ratio 0, not absent).
    errorless: bool = False
    #: Valid events a minute in each phase (default: ``EVENTS_PER_MINUTE`` in all).
    events: tuple[Decimal, ...] = ()

    def events_per_minute(self) -> list[Decimal]:
        """Return the valid events a minute of each phase."""
        return list(self.events) or [EVENTS_PER_MINUTE] * len(self.phases)

    @property
    def total_minutes(self) -> int:
        """Return the minutes of data (the series hold one more sample, at minute 0)."""
        return sum(minutes for _, minutes in self.phases)

    @property
    def burn_rate(self) -> Decimal:
        """Return the burn rate of the last phase with bad events (0 if none)."""
        return next((burn for burn, _ in reversed(self.phases) if burn), Decimal(0))


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
        "fast": Scenario(
            "fast",
            ((_exact(fast), _FAST_MINUTES), (Decimal(0), _fast_stop(loaded) - _FAST_MINUTES)),
        ),
        "slow": Scenario("slow", ((_exact(slow), 30),)),
        "quiet": Scenario("quiet", ((_exact(quiet), 30),)),
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
    # A made-up target: `shop:1` would read as a compose address with a wrong port
    # (tests/test_stack_wiring.py checks every `service:port` under prometheus/).
    labels = {"job": slo.service, "instance": "slo-test:1"}
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
    phases = scenario.phases
    events = scenario.events_per_minute()
    shape_bad = [
        (burn * slo.error_budget * per_minute, n)
        for (burn, n), per_minute in zip(phases, events, strict=True)
    ]
    shape_good = [
        (per_minute - bad, n) for (bad, n), per_minute in zip(shape_bad, events, strict=True)
    ]
    shape_all = [(per_minute, n) for (_, n), per_minute in zip(phases, events, strict=True)]
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
    bad_series: list[tuple[str, str]] = []
    if errors.metric != total.metric:
        if not scenario.errorless:
            labels = _labels(slo, "errors", [errors])
            bad_series = [(_series_text(errors.metric, labels), _counter(shape_bad))]
        labels = _labels(slo, "total", [total])
        return [*bad_series, (_series_text(total.metric, labels), _counter(shape_all))]
    distinct = [m for m in errors.matchers if m not in total.matchers]
    if not distinct:
        msg = (
            f"{slo.service} {slo.name}: errors selects the same series as total, so no event "
            "could be good; add the matcher that marks a bad event"
        )
        raise SloConfigErrors([SloConfigError(msg, field=f"indicators.{slo.indicator_name}")])
    if not scenario.errorless:
        labels = _labels(slo, "errors", [errors, total])
        bad_series = [(_series_text(errors.metric, labels), _counter(shape_bad))]
    good_labels = _labels(slo, "total", [total], refuse=distinct[0])
    return [*bad_series, (_series_text(total.metric, good_labels), _counter(shape_good))]


# --- expectations ------------------------------------------------------------------------------


def _rounded(value: Decimal) -> str:
    return _num(value.quantize(_ROUND, rounding=ROUND_HALF_UP))


def _slo_labels(slo: Slo) -> str:
    return f'{{service="{slo.service}",slo="{slo.name}"}}'


def _expected_alerts(loaded: LoadedSlos, severity: str, burns: dict[Slo, Decimal]) -> list[str]:
    """Return exp_alerts lines: every SLO firing, showing its long-window burn rate."""
    window = loaded.document.window
    lines: list[str] = []
    for slo, burn in burns.items():
        values = AnnotationValues(service=slo.service, slo=slo.name, burn_rate=f"{float(burn):.1f}")
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


def _firing(chosen: dict[Slo, Scenario]) -> dict[Slo, Decimal]:
    """Return each SLO's long-window burn rate when that window saw only the last burn."""
    return {slo: scenario.burn_rate for slo, scenario in chosen.items()}


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


def _test_group(name: str, chosen: dict[Slo, Scenario]) -> list[str]:
    """Return a test's head and its input series, each SLO's commented."""
    lines = [f"  - name: {scalar(name)}", "    interval: 1m", "    input_series:"]
    for slo, scenario in chosen.items():
        parts = []
        for (burn, minutes), per_minute in zip(
            scenario.phases, scenario.events_per_minute(), strict=True
        ):
            if not per_minute:
                parts.append(f"no event at all for {minutes}m")
            elif scenario.errorless:
                parts.append(f"no bad event (no such series) for {minutes}m")
            elif not burn:
                parts.append(f"no bad event of {_num(per_minute)} a minute for {minutes}m")
            else:
                bad = burn * slo.error_budget * per_minute
                parts.append(
                    f"burn rate {_num(burn)}: {_num(bad)} bad of {_num(per_minute)} "
                    f"events a minute for {minutes}m"
                )
        lines += comment(f"{slo.service} {slo.name}: " + ", then ".join(parts), 6, _WIDTH)
        for series, values in _input_series(slo, scenario):
            lines += key_value("series", series, 6, item=True)
            lines += key_value("values", values, 8)
    return lines


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


def _chosen(loaded: LoadedSlos, key: str) -> dict[Slo, Scenario]:
    return {slo: scenarios(loaded, slo)[key] for slo in loaded.slos}


def _fast(loaded: LoadedSlos) -> list[str]:
    chosen = _chosen(loaded, "fast")
    lines = _test_group("a fast burn pages, and stops paging once it stops", chosen)
    burn_minutes = _FAST_MINUTES
    stopped = _fast_stop(loaded)
    lines += [
        "    alert_rule_test:",
        *_alert_case(
            "10m",
            "page",
            _expected_alerts(loaded, "page", _firing(chosen)),
            "Every window burns above the page rate: every SLO pages.",
        ),
        *_alert_case(
            "10m",
            "ticket",
            _expected_alerts(loaded, "ticket", _firing(chosen)),
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
    burns = {slo: scenario.burn_rate for slo, scenario in chosen.items()}
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
    chosen = _chosen(loaded, "slow")
    minutes = next(iter(chosen.values())).total_minutes
    return [
        *_test_group("a slow burn opens a ticket and does not page", chosen),
        "    alert_rule_test:",
        *_alert_case(
            f"{minutes}m",
            "ticket",
            _expected_alerts(loaded, "ticket", _firing(chosen)),
            "Above a ticket burn rate over both of its windows: every SLO opens a ticket.",
        ),
        *_alert_case(
            f"{minutes}m", "page", [], "Below every page burn rate: no page (near its threshold)."
        ),
    ]


def _isolated(loaded: LoadedSlos, severity: str) -> list[list[str]]:
    """Return tests where one pair of windows alone fires its alert, each pair in turn.

    The burn sits between the pair's rate and the next higher one of the severity (so pairs
    with higher rates stay quiet); pairs with lower rates are kept quiet by a clean history
    that dilutes their longer long windows. Pairs that cannot be isolated that way, or only
    with over ``_ISOLATION_LIMIT`` minutes of data, are named in a comment instead.
    """
    policy = loaded.document.alerts
    rows = policy.page if severity == "page" else policy.ticket
    tests: list[list[str]] = []
    for index, row in enumerate(rows):
        where = f"alerts.{severity}[{index}]"
        pair = f"{_num(row.burn_rate)}x over {row.long_window} and {row.short_window}"
        higher = [other.burn_rate for other in rows if other.burn_rate > row.burn_rate]
        lower = [other for other in rows if other is not row and other.burn_rate <= row.burn_rate]
        long = _window_minutes(row.long_window)
        if any(_window_minutes(other.long_window) <= long for other in lower):
            tests.append(
                [
                    f"  # {where} ({pair}): no test fires it alone (a pair with a lower "
                    "rate has a long window as short)."
                ]
            )
            continue
        history = max((_window_minutes(other.long_window) for other in lower), default=0)
        history = history - long + 10 if history else 0
        burn_minutes = long if history else 30
        if history + 2 * burn_minutes > _ISOLATION_LIMIT:
            tests.append(
                comment(
                    f"{where} ({pair}) is not tested alone: it fires without the pair(s) with a "
                    f"lower rate only after {history} minutes of traffic (constant traffic "
                    "always fires those too); the scenarios above fire it together with them.",
                    2,
                    _WIDTH,
                )
            )
            continue
        burn = row.burn_rate * Decimal("1.1")
        if higher and burn >= min(higher):
            burn = (row.burn_rate + min(higher)) / 2
        above, below = _exact(burn), _exact(row.burn_rate * Decimal("0.9"))
        if history:
            # Below the rate for a long window, then above it for another: one test, two checks.
            phases: tuple[tuple[Decimal, int], ...] = (
                (Decimal(0), history),
                (below, burn_minutes),
                (above, burn_minutes),
            )
        else:
            # Below the lowest rate of the severity the quiet scenario already stays quiet.
            phases = ((above, burn_minutes),)
        chosen = {
            slo: Scenario("alone", phases) for slo in loaded.slos if above < 1 / slo.error_budget
        }
        end = sum(minutes for _, minutes in phases)
        lines = _test_group(f"{ALERT_NAMES[severity]}: the {pair} pair alone", chosen)
        lines.append("    alert_rule_test:")
        if history:
            lines += _alert_case(
                f"{history + burn_minutes}m",
                severity,
                [],
                f"{_num(below)}x over the last {row.long_window} (after a clean history that "
                "keeps the longer windows low): quiet...",
            )
        lines += _alert_case(
            f"{end}m",
            severity,
            _expected_alerts(loaded, severity, _firing(chosen)),
            f"{'... then ' if history else ''}{_num(above)}x over the last {row.long_window}: "
            f"the {pair} pair alone fires.",
        )
        tests.append(lines)
    return tests


def _errorless(loaded: LoadedSlos) -> list[str]:
    chosen = {
        slo: Scenario("errorless", ((Decimal(0), 30),), errorless=True) for slo in loaded.slos
    }
    recorded = windows(loaded)
    raw = [w for w in recorded if duration_seconds(w) <= RAW_WINDOW_MAX_SECONDS]
    lines = [
        *_test_group("a service without a single bad event has a ratio of 0, not none", chosen),
        "    promql_expr_test:",
        "      # The bad-event series does not exist: the ratios are 0 (`or vector(0)`).",
    ]
    for window in raw:
        lines += _rounded_case(
            "30m", f"slo:sli_error:ratio_rate{window}", dict.fromkeys(chosen, Decimal(0))
        )
    lines += _rounded_case(
        "30m", f"slo:error_budget_remaining:ratio{recorded[-1]}", dict.fromkeys(chosen, Decimal(1))
    )
    return lines


def _weighted(loaded: LoadedSlos, recorded: list[str]) -> list[str]:
    """Return a test that the long windows weigh each minute by its traffic.

    Half the events fail during a quiet half hour (10 a minute), none during a busy one
    (1000 a minute), then traffic stops so the values hold still. A day's ratio must be
    150 bad in 30300 events (with the 5m rates' smear at the edges), not the mean of the
    5m ratios (about a quarter).
    """
    chosen = {
        slo: Scenario(
            "weighted",
            ((Decimal("0.5") / slo.error_budget, 30), (Decimal(0), 30), (Decimal(0), 10)),
            events=(Decimal(10), EVENTS_PER_MINUTE, Decimal(0)),
        )
        for slo in loaded.slos
    }
    end = 70
    expected = {slo: _long_ratio(slo, scenario, end) for slo, scenario in chosen.items()}
    lines = [
        *_test_group("a day's error ratio weighs each minute by its traffic", chosen),
        "    promql_expr_test:",
        "      # Bad over valid events, not the mean of the 5m ratios (rounded to 6 decimals).",
    ]
    for window in recorded:
        if duration_seconds(window) > RAW_WINDOW_MAX_SECONDS:
            lines += _rounded_case(f"{end}m", f"slo:sli_error:ratio_rate{window}", expected)
    return lines


def _long_ratio(slo: Slo, scenario: Scenario, minute: int) -> Decimal:
    """Return a long window's error ratio as the rules compute it, exactly.

    sum_over_time of the recorded 5m rates, one a minute here: a 5m rate at minute t is
    (counter(t) - counter(t - 5)) / 300 s, from minute 1 on (the counters start at 0, so a
    shorter window needs no extrapolation); the 300 s cancel out in the ratio.
    """
    bad, valid = [Decimal(0)], [Decimal(0)]
    for (burn, minutes), per_minute in zip(
        scenario.phases, scenario.events_per_minute(), strict=True
    ):
        for _ in range(minutes):
            bad.append(bad[-1] + burn * slo.error_budget * per_minute)
            valid.append(valid[-1] + per_minute)
    window = range(1, minute + 1)
    bad_sum = sum((bad[t] - bad[max(t - 5, 0)] for t in window), Decimal(0))
    valid_sum = sum((valid[t] - valid[max(t - 5, 0)] for t in window), Decimal(0))
    return bad_sum / valid_sum


def _quiet(loaded: LoadedSlos, recorded: list[str]) -> list[str]:
    chosen = _chosen(loaded, "quiet")
    burns = {slo: scenario.burn_rate for slo, scenario in chosen.items()}
    minutes = next(iter(chosen.values())).total_minutes
    at = f"{minutes}m"
    compliance = recorded[-1]
    per_second = EVENTS_PER_MINUTE / 60
    lines = [
        *_test_group(
            "a service spending its budget a little slower than it lasts stays quiet", chosen
        ),
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
    blocks = [
        _fast(loaded),
        _slow(loaded),
        *_isolated(loaded, "page"),
        *_isolated(loaded, "ticket"),
        _quiet(loaded, recorded),
        _errorless(loaded),
        _weighted(loaded, recorded),
    ]
    body = [line for lines in blocks for line in ["", *lines]][1:]
    return "\n".join([*header, *body]) + "\n"
