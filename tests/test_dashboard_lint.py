"""Lint every generated dashboard against what the stack really has.

Unit tier: no deprecated panel types; every panel and target names a provisioned data source;
every PromQL expression parses (Grafana's macros and variables substituted as Grafana would);
every metric name is exported by a service's /metrics (the real apps, in-process), recorded
by a rule, or one of the backends' (checked in the integration tier) or the collector's
documented ones. A renamed metric fails (proven on a mutated copy).
Integration tier: the backends' names come from a real Prometheus that scraped the real Loki,
Tempo, Alertmanager and itself (and received Tempo's span metrics); every LogQL query is
accepted by the real Loki (a parse error is a 400) and every TraceQL query by the real Tempo.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lookout_stack.validate.checks.dashboard_lint import datasource_problems, deprecated_panels
from stack_support import poll_until, require_binary
from stack_support.dashboards import (
    COLLECTOR_METRICS,
    DASHBOARDS_DIR,
    ROOT,
    Query,
    app_metric_names,
    dashboards,
    iter_queries,
    otlp_log,
    otlp_trace,
    promql,
    promql_metric_names,
    provisioned_datasources,
    recorded_names,
    substitute,
)
from stack_support.native import NativeStack

DASHBOARDS = dashboards()
QUERIES = [q for name, doc in DASHBOARDS.items() for q in iter_queries(name, doc)]
PROMQL = [q for q in QUERIES if q.datasource_type == "prometheus"]
LOGQL = [q for q in QUERIES if q.datasource_type == "loki" and q.query_type != "variable"]
TRACEQL = [q for q in QUERIES if q.datasource_type == "tempo"]
#: Series that only the backends have (their own /metrics, or made by Prometheus itself:
#: up, scrape_*, ALERTS): the integration tier checks them against the real processes.
BACKEND_PREFIXES = ("prometheus_", "loki_", "tempo_", "alertmanager_", "traces_", "scrape_")
BACKEND_NAMES = {"up", "ALERTS", "ALERTS_FOR_STATE"}

integration = pytest.mark.integration


def _ids(queries: list[Query]) -> list[str]:
    return [f"{q.where}#{i}" for i, q in enumerate(queries)]


def _is_backend(name: str) -> bool:
    return name in BACKEND_NAMES or name.startswith(BACKEND_PREFIXES)


def unknown_names(docs: dict[str, dict[str, Any]], known: set[str]) -> list[str]:
    """Return 'dashboard / panel: name' for each non-backend metric name not in ``known``."""
    problems = []
    for name, doc in docs.items():
        for query in iter_queries(name, doc):
            if query.datasource_type != "prometheus":
                continue
            for metric in sorted(promql_metric_names(promql(query))):
                if not _is_backend(metric) and metric not in known:
                    problems.append(f"{query.where}: {metric}")
    return problems


@pytest.fixture(scope="module")
def app_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Names the shop, payments, relay and monitor expose, plus recorded and collector names."""
    per_service = app_metric_names(tmp_path_factory.mktemp("apps"))
    return set().union(*per_service.values()) | recorded_names() | COLLECTOR_METRICS


# --- unit tier ----------------------------------------------------------------------------------


def test_every_dashboard_is_linted() -> None:
    """The nine dashboards are there and have queries (an empty glob would pass vacuously)."""
    assert len(DASHBOARDS) == 9, sorted(DASHBOARDS)
    assert PROMQL and LOGQL and TRACEQL


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_no_deprecated_panel_types(name: str) -> None:
    """No panel uses a type Grafana removed or replaced (graph, singlestat, table-old, ...)."""
    bad = deprecated_panels(DASHBOARDS[name])
    assert not bad, f"{name}: deprecated panel types: {bad}"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_uses_a_provisioned_datasource(name: str) -> None:
    """Each panel and each target names a data source by a uid (and type) that is provisioned."""
    problems = datasource_problems(DASHBOARDS[name], provisioned_datasources())
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("query", PROMQL, ids=_ids(PROMQL))
def test_promql_parses(query: Query) -> None:
    """Each PromQL expression parses once Grafana's macros and variables are substituted."""
    try:
        promql_metric_names(promql(query))
    except ValueError as error:
        pytest.fail(f"{query.where}: {error}\n  {promql(query)}")


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_metric_names_are_exported_or_recorded(name: str, app_names: set[str]) -> None:
    """Every metric a panel queries is on a service's /metrics, recorded by a rule, or documented.

    The SLO dashboard reads the slo:* series of prometheus/rules/slo.yml (committed, generated
    by `lookout slo build`): a missing file fails here rather than skipping the check.
    """
    problems = unknown_names({name: DASHBOARDS[name]}, app_names)
    assert not problems, "metrics nobody exports or records:\n" + "\n".join(problems)


def test_a_renamed_metric_fails_the_lint(app_names: set[str]) -> None:
    """Renaming a metric a panel uses (here shop_orders_total) makes the lint name that panel."""
    docs = {"lookout-business.json": copy.deepcopy(DASHBOARDS["lookout-business.json"])}
    assert not unknown_names(docs, app_names)
    text = json.dumps(docs["lookout-business.json"]).replace(
        "shop_orders_total", "shop_orders_count"
    )
    docs["lookout-business.json"] = json.loads(text)
    assert unknown_names(docs, app_names) == [
        "lookout-business.json / Orders by status: shop_orders_count"
    ]
    # And an app that stopped exporting it is caught the same way.
    assert unknown_names(
        {"lookout-business.json": DASHBOARDS["lookout-business.json"]},
        app_names - {"shop_orders_total"},
    )


def test_substitution_follows_grafana() -> None:
    """Macros become durations and variables a value, in every spelling Grafana accepts."""
    assert substitute('rate(x{job=~"$service"}[$__rate_interval])') == 'rate(x{job=~"shop"}[1m])'
    assert substitute("${service} [[route]] ${service:regex} $__range") == "shop shop shop 1h"


# --- integration tier: the real backends --------------------------------------------------------


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    """Run the real Prometheus, Alertmanager, Loki and Tempo from the shipped configs.

    A log line, a discarded (too old) log line and a trace go in, so the ingestion and
    discard series exist; then Prometheus has scraped every backend and Tempo has
    remote-written its span metrics.
    """
    for name in ("loki", "tempo", "prometheus", "alertmanager"):
        require_binary(name)
    stack = NativeStack(
        tmp_path_factory.mktemp("backends"), ["loki", "tempo", "prometheus", "alertmanager"]
    )
    stack.start()
    try:
        logs_url = stack.url("loki", 3100, "/otlp/v1/logs")
        now = time.time_ns()
        line = otlp_log("shop", "login failed", now, event="login_failed")
        assert httpx.post(logs_url, json=line, timeout=10).status_code == 204
        too_old = otlp_log("shop", "login failed", now - 30 * 86400 * 10**9)
        refused = httpx.post(logs_url, json=too_old, timeout=10)
        assert refused.status_code == 400, f"a 30-day-old line was not refused: {refused.text}"
        traces = f"http://{stack.hostport('tempo', 4318)}/v1/traces"
        httpx.post(
            traces, json=otlp_trace(os.urandom(16).hex(), now), timeout=10
        ).raise_for_status()
        yield stack
    finally:
        stack.stop(grace=5.0)


@pytest.fixture(scope="module")
def backend_names(backends: NativeStack) -> set[str]:
    """Every series name the real Prometheus holds once the backends' series are in."""
    url = backends.url("prometheus", 9090, "/api/v1/label/__name__/values")
    wanted = {"loki_discarded_samples_total", "traces_spanmetrics_calls_total", "ALERTS", "up"}

    def names() -> set[str] | None:
        found = set(httpx.get(url, timeout=10).json()["data"])
        return found if wanted <= found else None

    return poll_until(names, f"{sorted(wanted)} in the real Prometheus", timeout=90)


@integration
@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_backend_metric_names_exist_in_the_real_backends(
    name: str, backend_names: set[str]
) -> None:
    """Every Prometheus/Loki/Tempo/Alertmanager series a panel uses is one the real ones have."""
    problems = [
        f"{q.where}: {metric}"
        for q in iter_queries(name, DASHBOARDS[name])
        if q.datasource_type == "prometheus"
        for metric in sorted(promql_metric_names(promql(q)))
        if _is_backend(metric) and metric not in backend_names
    ]
    assert not problems, "series the real backends do not have:\n" + "\n".join(problems)


@integration
def test_a_renamed_backend_metric_fails(backend_names: set[str]) -> None:
    """A misspelt backend series (loki_distributor_lines_received) is caught."""
    assert "loki_distributor_lines_received_total" in backend_names
    assert "loki_distributor_lines_received" not in backend_names


@integration
@pytest.mark.parametrize("query", LOGQL, ids=_ids(LOGQL))
def test_logql_is_accepted_by_the_real_loki(query: Query, backends: NativeStack) -> None:
    """The real Loki parses each LogQL query (a syntax error would be a 400).

    ``$search`` is left empty, as the dashboard opens: a line filter on the empty string.
    """
    expr = substitute(query.text.replace("$search", ""))
    now = time.time_ns()
    response = httpx.get(
        backends.url("loki", 3100, "/loki/api/v1/query_range"),
        params={"query": expr, "start": str(now - 3600 * 10**9), "end": str(now), "limit": "10"},
        timeout=30,
    )
    assert response.status_code == 200, (
        f"{query.where}: {response.status_code} {response.text}\n  {expr}"
    )


@integration
@pytest.mark.parametrize("query", TRACEQL, ids=_ids(TRACEQL))
def test_traceql_is_accepted_by_the_real_tempo(query: Query, backends: NativeStack) -> None:
    """The real Tempo parses each TraceQL search (a syntax error would be a 400)."""
    expr = substitute(query.text)
    now = int(time.time())
    response = httpx.get(
        backends.url("tempo", 3200, "/api/search"),
        params={"q": expr, "start": str(now - 3600), "end": str(now), "limit": "5"},
        timeout=30,
    )
    assert response.status_code == 200, (
        f"{query.where}: {response.status_code} {response.text}\n  {expr}"
    )


@integration
def test_a_broken_logql_query_is_refused_by_the_real_loki(backends: NativeStack) -> None:
    """The Loki check can fail: an unbalanced query is a 400."""
    response = httpx.get(
        backends.url("loki", 3100, "/loki/api/v1/query_range"),
        params={"query": 'sum by (service_name (count_over_time({service_name=~".+"}[5m]))'},
        timeout=30,
    )
    assert response.status_code == 400, response.text


@integration
def test_a_broken_traceql_query_is_refused_by_the_real_tempo(backends: NativeStack) -> None:
    """The Tempo check can fail: an unclosed span set is a 400."""
    response = httpx.get(
        backends.url("tempo", 3200, "/api/search"),
        params={"q": '{resource.service.name="shop"'},
        timeout=30,
    )
    assert response.status_code == 400, response.text


def _alert_dashboard_links() -> list[tuple[str, str]]:
    """Return (alert, dashboard annotation) of every Prometheus and Loki alerting rule."""
    import yaml

    files = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
    files += sorted((ROOT / "loki" / "rules").rglob("*.yaml"))
    links = []
    for path in files:
        for group in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", []):
            for rule in group.get("rules") or []:
                if "alert" in rule:
                    dashboard = (rule.get("annotations") or {}).get("dashboard", "")
                    links.append((f"{path.name}:{rule['alert']}", str(dashboard)))
    return links


ALERT_LINKS = _alert_dashboard_links()


@pytest.mark.parametrize(("alert", "link"), ALERT_LINKS, ids=[a for a, _ in ALERT_LINKS])
def test_alert_dashboard_links_open_a_generated_dashboard(alert: str, link: str) -> None:
    """An alert's `dashboard` annotation opens a built dashboard; its var-* are its variables."""
    match = re.fullmatch(r"/d/([\w-]+)(?:\?(.*))?", link)
    assert match, f"{alert}: dashboard annotation {link!r} is not /d/<uid>[?var-...]"
    uid, query = match.group(1), match.group(2) or ""
    assert f"{uid}.json" in DASHBOARDS, f"{alert}: no dashboard {uid} in {DASHBOARDS_DIR}"
    variables = {v["name"] for v in DASHBOARDS[f"{uid}.json"]["templating"]["list"]}
    for param in filter(None, query.split("&")):
        name = param.split("=", 1)[0].removeprefix("var-")
        assert name in variables, f"{alert}: {uid} has no variable {name!r} ({sorted(variables)})"


def test_dashboards_dir_is_the_providers_folder() -> None:
    """Grafana's file provider reads the folder compose mounts grafana/dashboards at."""
    import yaml

    provider = yaml.safe_load(
        (ROOT / "grafana/provisioning/dashboards/dashboards.yaml").read_text()
    )
    path = provider["providers"][0]["options"]["path"]
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert f"./grafana/dashboards:{path}:ro" in compose
    assert DASHBOARDS_DIR == ROOT / "grafana" / "dashboards"
    assert not [p for p in DASHBOARDS_DIR.iterdir() if p.is_dir()], (
        "the provider reads one flat folder"
    )
