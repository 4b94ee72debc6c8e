"""`lookout check` in direct mode against the real Prometheus (Debian's), fed by scrapes.

Prometheus runs on loopback with a temporary data folder and scrapes a small /metrics server
of the test's (two jobs, every second); the fixture dashboards in fixtures/ hold one panel per
case: data, a metric that does not exist, a syntax error, variables, a repeated panel, a
collapsed row, a text panel and a server-side expression.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lookout_support import (
    FIXTURES,
    CliRun,
    MetricsServer,
    real_prometheus,
    run_cli,
    wait_for_series,
)

pytestmark = pytest.mark.integration

DASHBOARD = FIXTURES / "prometheus.json"
ALL_DATA = FIXTURES / "prometheus-ok.json"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run the real Prometheus scraping two jobs of a local /metrics server; yield its URL."""
    with MetricsServer() as a, MetricsServer() as b:
        targets = {"check-a": f"127.0.0.1:{a.port}", "check-b": f"127.0.0.1:{b.port}"}
        with real_prometheus(tmp_path_factory.mktemp("prometheus"), targets) as url:
            # The range queries' last step is aligned down to 15 s (as Grafana aligns it), and
            # rate() needs two samples in its window there: wait for 20 s of each job.
            wait_for_series(url, "min(count_over_time(check_requests_total[1m])) > 20", 60)
            wait_for_series(url, "count(count by (job) (check_requests_total)) == 2")
            yield url


def check(prometheus: str, *args: str, path: Path = DASHBOARD) -> CliRun:
    """Run `lookout check` against the Prometheus, JSON out, no progress."""
    return run_cli("check", str(path), "--prometheus", prometheus, "--quiet", *args)


def test_panel_with_data_reports_data(prometheus: str) -> None:
    """Range, instant and collapsed-row panels over scraped series report data."""
    run = check(prometheus, "--json")
    for title in ("Request rate", "Requests now", "p95 latency"):
        panel = run.panel(title)
        assert panel["status"] == "data", panel
    assert run.panel("p95 latency")["row"] == "Latency"
    assert "series" in run.panel("Request rate")["targets"][0]["detail"]


def test_all_panels_with_data_exit_zero(prometheus: str) -> None:
    """A dashboard whose panels all return data passes with exit code 0."""
    run = check(prometheus, path=ALL_DATA)
    assert run.code == 0, run.stdout
    assert "2 panels in 1 dashboards (direct): 2 data, 0 empty, 0 error" in run.stdout


def test_metric_that_does_not_exist_is_empty_and_exits_one(prometheus: str) -> None:
    """A panel over a metric nobody exports reports empty, and the run exits 1."""
    run = check(prometheus, "--json")
    assert run.code == 1
    panel = run.panel("Missing metric")
    assert panel["status"] == "empty"
    assert panel["targets"][0]["detail"] == "no series"
    assert run.report["ok"] is False


def test_syntax_error_is_an_error_naming_file_panel_and_ref_id(prometheus: str) -> None:
    """A PromQL syntax error is reported with the file, the panel's id and title, the refId."""
    run = check(prometheus)
    assert run.code == 1
    line = next(ln for ln in run.stdout.splitlines() if "Broken query" in ln and " A: " in ln)
    assert line.strip().startswith(f'{DASHBOARD}: panel #4 "Broken query" A: error:')
    assert "parse error" in line


def test_variables_are_expanded_as_grafana_does(prometheus: str) -> None:
    """Query, custom and constant variables, All as a regex, $__rate_interval by Grafana's rule."""
    run = check(prometheus, "--json")
    dashboard = run.report["dashboards"][0]
    assert dashboard["variables"] == {
        "job": "All (check-a, check-b)",
        "route": "/a",
        "quantile": "0.95",
    }
    rate = run.panel("Request rate")["targets"][0]["query"]
    # 15 min over a half-width panel: $__interval 15s (the scrape interval), so
    # $__rate_interval = max(15s + 15s, 4 * 15s) = 1m, written as Go writes durations.
    assert rate == (
        'sum by (route) (rate(check_requests_total{job=~"(check-a|check-b)", route="/a"}[1m0s]))'
    )
    assert run.panel("p95 latency")["targets"][0]["query"].startswith("histogram_quantile(0.95,")


def test_var_override_selects_another_value(prometheus: str) -> None:
    """--var route=/b runs the panels with that value, as Grafana's var-route=/b URL would."""
    run = check(prometheus, "--json", "--var", "route=/b", "--var", "job=check-a")
    query = run.panel("Request rate")["targets"][0]["query"]
    assert 'job=~"check-a"' in query
    assert 'route="/b"' in query
    assert run.panel("Request rate")["status"] == "data"


def test_repeated_panel_is_checked_once_per_value(prometheus: str) -> None:
    """A panel repeated over $job is run once for each job, each with that job alone."""
    run = check(prometheus, "--json")
    repeats = [
        (p["repeat"], p["targets"][0]["query"], p["status"])
        for p in run.report["dashboards"][0]["panels"]
        if p["title"] == "Per job"
    ]
    assert repeats == [
        ("job=check-a", 'sum(check_requests_total{job="check-a"})', "data"),
        ("job=check-b", 'sum(check_requests_total{job="check-b"})', "data"),
    ]


def test_grafana_only_panels_are_named_never_passed(prometheus: str) -> None:
    """A text panel and a server-side expression are listed as not checkable, not as data."""
    run = check(prometheus)
    assert "Not checkable here (direct mode; not counted as passed):" in run.stdout
    assert '#6 "Notes": a text panel has no queries' in run.stdout
    assert '#7 "Doubled": B (expression): a server-side expression' in run.stdout
    summary = run.stdout.strip().splitlines()[-1]
    assert summary.endswith("2 not checkable"), summary


def test_progress_goes_to_stderr_one_line_per_panel_when_not_a_tty(prometheus: str) -> None:
    """Without a terminal, progress is one stderr line per panel; stdout has only the report."""
    run = run_cli("check", str(ALL_DATA), "--prometheus", prometheus, "--json")
    lines = run.stderr.splitlines()
    assert [line[:6] for line in lines] == ["[1/2] ", "[2/2] "]
    assert {line[6:] for line in lines} == {
        f'{ALL_DATA} #1 "Request rate": data',
        f'{ALL_DATA} #2 "Requests now": data',
    }
    assert run.report["summary"]["panels"] == 2


def test_unreachable_prometheus_is_an_error_naming_the_address() -> None:
    """A Prometheus that does not answer makes every panel an error naming where it looked."""
    run = run_cli("check", str(ALL_DATA), "--prometheus", "http://127.0.0.1:9", "--quiet")
    assert run.code == 1
    assert "cannot reach http://127.0.0.1:9/api/v1/query_range" in run.stdout
