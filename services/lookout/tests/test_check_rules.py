"""Grafana's rules as `lookout check` applies them: times, intervals, variable formatting,
the dashboard model. Unit tests: no backend runs.

Expected values come from Grafana's documentation and backend code (cited in
lookout_stack/check/timing.py and variables.py).
"""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from lookout_stack.check.backends.prometheus import PrometheusBackend
from lookout_stack.check.command import Progress
from lookout_stack.check.errors import CheckInputError, VariableError
from lookout_stack.check.model import PanelSpec, load_dashboard
from lookout_stack.check.results import PanelResult
from lookout_stack.check.runner import panel_repetitions
from lookout_stack.check.timing import (
    TimeRange,
    format_go_duration,
    intervals_for,
    loki_step_ms,
    parse_duration_ms,
    parse_time,
    round_interval_ms,
)
from lookout_stack.check.variables import VariableValue, interpolate, resolve_variables
from lookout_support import run_cli

NOW = datetime(2026, 11, 25, 16, 37, 12, 345000, tzinfo=UTC)
HOUR = 3_600_000


@pytest.mark.parametrize(
    ("text", "round_up", "expected"),
    [
        ("now", False, "2026-11-25T16:37:12.345+00:00"),
        ("now-6h", False, "2026-11-25T10:37:12.345+00:00"),
        ("now-7d", False, "2026-11-18T16:37:12.345+00:00"),
        ("now/d", False, "2026-11-25T00:00:00+00:00"),
        ("now/d", True, "2026-11-25T23:59:59.999+00:00"),
        ("now-1d/d", False, "2026-11-24T00:00:00+00:00"),
        ("now-1M", False, "2026-10-25T16:37:12.345+00:00"),
        ("2026-11-01T00:00:00Z", False, "2026-11-01T00:00:00+00:00"),
        ("1764000000000", False, "2025-11-24T16:00:00+00:00"),
    ],
    ids=str,
)
def test_grafana_times(text: str, round_up: bool, expected: str) -> None:
    """Relative times, rounding to a unit, ISO times and epoch ms read as Grafana reads them."""
    ms = parse_time(text, NOW, round_up=round_up)
    assert datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="auto") == (
        datetime.fromisoformat(expected).isoformat(timespec="auto")
    )


def test_bad_time_names_the_accepted_forms() -> None:
    """A time Grafana would not accept is refused with the forms it would."""
    with pytest.raises(ValueError, match="now-6h"):
        parse_time("yesterday", NOW)


@pytest.mark.parametrize(
    ("ms", "rounded"),
    [(937.5, 1000), (3600, 5000), (13_000, 15_000), (90_000, 60_000), (100_000, 120_000)],
)
def test_round_interval_as_gtime(ms: float, rounded: int) -> None:
    """Intervals round down to Grafana's table (gtime.RoundInterval)."""
    assert round_interval_ms(ms) == rounded


@pytest.mark.parametrize(
    ("span", "points", "interval", "step", "rate"),
    [
        (HOUR, 960, 15_000, 15_000, "1m0s"),  # 3.75 s rounds to 5 s: the 15 s scrape wins
        (24 * HOUR, 960, 60_000, 60_000, "1m15s"),  # 90 s rounds to 1 m: 1 m + 15 s
        (7 * 24 * HOUR, 1920, 300_000, 300_000, "5m15s"),
        (30 * 24 * HOUR, 100_000, 30_000, 300_000, "1m0s"),  # the 11,000-point cap
    ],
    ids=["1h", "24h", "7d", "30d-many-points"],
)
def test_interval_step_and_rate_interval(
    span: int, points: int, interval: int, step: int, rate: str
) -> None:
    """$__interval, the step and $__rate_interval follow Grafana's Prometheus backend."""
    found = intervals_for(TimeRange(0, span), points, 15_000)
    assert (found.interval_ms, found.step_ms) == (interval, step)
    assert found.builtins(TimeRange(0, span))["__rate_interval"] == rate


def test_min_step_and_range_variables() -> None:
    """A query's Min step is the scrape interval of $__rate_interval; $__range is in seconds."""
    rng = TimeRange(0, HOUR)
    found = intervals_for(rng, 960, 15_000, min_step="1m")
    assert found.step_ms == 60_000
    assert found.rate_interval_ms == max(15_000 + 60_000, 4 * 60_000)
    builtins = found.builtins(rng)
    assert (builtins["__range"], builtins["__range_s"], builtins["__range_ms"]) == (
        "3600s",
        "3600",
        "3600000",
    )


def test_durations_and_loki_step() -> None:
    """Durations parse as Grafana's; Loki's step is interval x resolution or range / 11000."""
    assert parse_duration_ms("1m30s") == 90_000
    assert parse_duration_ms("15") == 15_000
    assert format_go_duration(75_000) == "1m15s"
    assert format_go_duration(3_600_000) == "1h0m0s"
    assert loki_step_ms(500, TimeRange(0, HOUR)) == 500
    assert loki_step_ms(500, TimeRange(0, 30 * 24 * HOUR)) == 235_637


def _value(*values: str, multi: bool = False, custom_all: str | None = None) -> VariableValue:
    return VariableValue("v", values, multi, custom_all)


@pytest.mark.parametrize(
    ("text", "value", "flavor", "expected"),
    [
        ('{job="$v"}', _value("shop"), "prometheus", '{job="shop"}'),
        ('{job=~"$v"}', _value("a", "b.c", multi=True), "prometheus", '{job=~"(a|b\\\\.c)"}'),
        ('{job=~"${v}"}', _value("x", multi=True, custom_all=".+"), "prometheus", '{job=~".+"}'),
        ('{job="[[v]]"}', _value("o'k"), "prometheus", "{job=\"o\\\\'k\"}"),
        ("${v:csv}", _value("a", "b", multi=True), "prometheus", "a,b"),
        ("${v:pipe}", _value("a", "b", multi=True), "prometheus", "a|b"),
        ("${v:json}", _value("a", "b", multi=True), "prometheus", '["a", "b"]'),
        ("${v:raw}", _value("a.b", multi=True), "prometheus", "a.b"),
        ("$unknown stays", _value("a"), "prometheus", "$unknown stays"),
    ],
    ids=["single", "multi-regex", "custom-all", "brackets-escape", "csv", "pipe", "json",
         "raw", "unknown"],
)  # fmt: skip
def test_variable_formatting(text: str, value: VariableValue, flavor: Any, expected: str) -> None:
    """Values are inserted as Grafana's Prometheus data source and formats insert them."""
    assert interpolate(text, {"v": value}, flavor) == expected


def test_builtins_are_left_for_grafana_when_not_given() -> None:
    """Without builtins (the --grafana mode) $__rate_interval stays for Grafana's backend."""
    text = "rate(x[$__rate_interval]) * ${__range_s}"
    assert interpolate(text, {}, "prometheus") == text
    assert interpolate(text, {}, "prometheus", {"__rate_interval": "1m0s", "__range_s": "60"}) == (
        "rate(x[1m0s]) * 60"
    )


class _Source:
    async def options(self, query: Any, time_range: TimeRange) -> list[str]:
        return ["payments-canary", "payments", "shop"]


def _resolve(templating: list[dict[str, Any]], **overrides: list[str]) -> dict[str, VariableValue]:
    return asyncio.run(
        resolve_variables(
            templating, TimeRange(0, HOUR), {"prometheus": _Source()}, overrides,
            lambda _ref, _resolved: "prometheus",
        )
    )  # fmt: skip


def test_query_variable_regex_sort_and_first_option() -> None:
    """A query variable's regex filters and captures, sort orders, no saved value -> first."""
    resolved = _resolve(
        [{"name": "svc", "type": "query", "query": "label_values(up, job)",
          "regex": "/^(pay.*|shop)$/", "sort": 2}]
    )  # fmt: skip
    assert resolved["svc"].values == ("shop",)


def test_saved_value_not_among_options_falls_back_to_all() -> None:
    """A stale saved value falls back to the first option, "All" when the variable has one."""
    resolved = _resolve(
        [{"name": "svc", "type": "query", "query": "label_values(job)", "includeAll": True,
          "current": {"value": "gone"}}]
    )  # fmt: skip
    assert resolved["svc"].all_selected
    assert resolved["svc"].values == ("payments-canary", "payments", "shop")


def test_unknown_override_value_is_refused() -> None:
    """--var with a value the variable does not offer is an error naming the options."""
    with pytest.raises(VariableError, match="not among the options"):
        _resolve([{"name": "svc", "type": "query", "query": "label_values(job)"}], svc=["nope"])


def test_interval_variable_auto() -> None:
    """An interval variable on auto takes range / auto_count, at least auto_min."""
    resolved = _resolve(
        [{"name": "iv", "type": "interval", "query": "1m,10m", "auto": True, "auto_count": 30,
          "auto_min": "10s", "current": {"value": "$__auto_interval_iv"}}]
    )  # fmt: skip
    assert resolved["iv"].values == ("2m",)  # 1 h / 30 = 2 min


def _dashboard(tmp_path: Path, body: Any) -> Path:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(body) if not isinstance(body, str) else body, encoding="utf-8")
    return path


def test_rows_expanded_and_collapsed_are_walked(tmp_path: Path) -> None:
    """Panels after an expanded row and inside a collapsed one are found, with their row."""
    body = {
        "panels": [
            {"type": "row", "title": "Open", "collapsed": False, "panels": []},
            {"id": 1, "type": "stat", "title": "one", "targets": [{"expr": "up"}]},
            {"type": "row", "title": "Shut", "collapsed": True,
             "panels": [{"id": 2, "type": "timeseries", "title": "two",
                         "targets": [{"refId": "B", "expr": "up"}]}]},
        ]
    }  # fmt: skip
    panels = list(load_dashboard(_dashboard(tmp_path, body)).panels())
    assert [(p.id, p.row, p.targets[0].ref_id) for p in panels] == [
        (1, "Open", "A"),
        (2, "Shut", "B"),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"panels": [1,}', "d.json:1:15: not JSON"),
        ({"spec": {"elements": {}}}, "a v2"),
        ({"title": "x"}, "no `panels` field"),
        ({"panels": [], "time": "now-1h"}, "`time` is str, expected an object"),
        ({"panels": [], "templating": {"list": {}}}, "`templating.list` is dict, expected a list"),
        ({"rows": ["x"]}, r"`rows\[0\]` is str, expected an object"),
        ({"panels": [{"type": "stat", "gridPos": 6}]}, r"`panels\[0\].gridPos` is int"),
        (
            {"panels": [{"type": "row", "panels": [{"type": "stat", "gridPos": []}]}]},
            r"`panels\[0\].panels\[0\].gridPos` is list",
        ),
    ],
    ids=[
        "bad-json",
        "v2-schema",
        "not-a-dashboard",
        "time",
        "templating",
        "rows",
        "gridPos",
        "gridPos-in-row",
    ],
)
def test_bad_dashboard_files_exit_two_naming_the_file(
    tmp_path: Path, body: Any, message: str
) -> None:
    """A file that is not a classic dashboard is refused with exit 2, naming file and line."""
    path = _dashboard(tmp_path, body)
    with pytest.raises(CheckInputError, match=message):
        load_dashboard(path)
    run = run_cli("check", str(path), "--prometheus", "http://127.0.0.1:9", "--quiet")
    assert run.code == 2
    assert str(path) in run.stderr


def test_no_dashboards_is_bad_input(tmp_path: Path) -> None:
    """An empty folder is refused with exit 2 and says where it looked."""
    run = run_cli("check", str(tmp_path), "--quiet")
    assert run.code == 2
    assert f"no dashboard files (*.json) in {tmp_path}" in run.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_one_counter_redrawn() -> None:
    """On a terminal, progress is a counter redrawn in place, ending with a newline."""
    stream = _Terminal()
    progress = Progress(stream, enabled=True)
    progress.start(2)
    for title in ("a", "b"):
        progress.panel(PanelResult("f.json", "uid", 1, title, "stat", status="data"))
    assert stream.getvalue() == (
        "\rchecking 2 panels ...\rchecked 1/2 panels \rchecked 2/2 panels \n"
    )


@pytest.mark.parametrize("flag", ["--from", "--to"])
def test_bad_time_option_exits_two_naming_the_flag(tmp_path: Path, flag: str) -> None:
    """A --from or --to that is not a Grafana time is bad input: exit 2, naming the flag."""
    path = _dashboard(tmp_path, {"panels": []})
    run = run_cli("check", str(path), "--prometheus", "http://127.0.0.1:9", flag, "yesterday")
    assert run.code == 2
    assert f"{flag}: not a Grafana time: 'yesterday'" in run.stderr


class _OneAnswer:
    """An Http stand-in answering every request with the same Prometheus body."""

    def __init__(self, body: Any) -> None:
        self.body = body

    async def request(self, method: str, url: str, **_: Any) -> httpx.Response:
        return httpx.Response(200, json=self.body)


def test_metrics_variable_with_a_bad_regex_is_a_variable_error() -> None:
    """metrics(<regex that does not compile>) is a VariableError naming the query, not a crash."""
    backend = PrometheusBackend(
        _OneAnswer({"status": "success", "data": ["up"]}),  # type: ignore[arg-type]
        "http://prometheus",
    )
    with pytest.raises(VariableError, match=r"metrics\(\[\): the regex does not compile"):
        asyncio.run(backend.options("metrics([)", TimeRange(0, HOUR)))


def test_repeated_panel_formats_each_value_as_the_multi_value_variable_it_is() -> None:
    """Each repetition's value is regex-escaped, as Grafana formats a multi-value variable."""
    panel = PanelSpec(1, "p", "timeseries", {}, (), repeat="v")
    repetitions = panel_repetitions(panel, {"v": _value("a", "b.c", multi=True)})
    assert [interpolate('{job=~"$v"}', scoped, "prometheus") for _, scoped in repetitions] == [
        '{job=~"a"}',
        '{job=~"b\\\\.c"}',
    ]
