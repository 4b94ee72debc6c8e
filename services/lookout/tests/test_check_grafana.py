"""`lookout check --grafana`: our client of Grafana's /api/ds/query, against a TEST DOUBLE.

No Grafana runs here (no binary, no Docker). ``GrafanaDouble`` (lookout_support.py) is a
protocol-level double of Grafana 13's /api/ds/query and data source proxy: these tests prove
the request our client sends (shape, substituted variables, auth header), and how answers map
to data / empty / error; they do NOT prove what Grafana does with the queries. That is proven
only where Docker runs (`pytest -m compose`, issue 12).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from lookout_support import FIXTURES, GrafanaDouble, run_cli

TOKEN = "glsa_test-token-0123456789"  # a fake token for the double
PROMETHEUS = FIXTURES / "prometheus.json"
LOGS_TRACES = FIXTURES / "loki-tempo.json"


@pytest.fixture
def token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give the CLI the token through LOOKOUT_GRAFANA_TOKEN_FILE, as a deployment would."""
    path = tmp_path / "grafana-token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    for name in ("LOOKOUT_GRAFANA_TOKEN", "LOOKOUT_GRAFANA_USER", "LOOKOUT_GRAFANA_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOKOUT_GRAFANA_TOKEN_FILE", str(path))
    return path


@pytest.fixture
def grafana() -> Iterator[GrafanaDouble]:
    """Run the Grafana double, accepting only TOKEN."""
    with GrafanaDouble(token=TOKEN) as double:
        yield double


def test_request_has_grafana_13_shape(grafana: GrafanaDouble, token_file: Path) -> None:
    """Each query has refId, datasource {type, uid}, intervalMs, maxDataPoints; from/to in ms."""
    run = run_cli("check", str(PROMETHEUS), "--grafana", grafana.url, "--quiet", "--json")
    assert run.report["mode"] == "grafana"
    posts = [s for s in grafana.seen if s.path == "/api/ds/query"]
    assert posts
    for post in posts:
        assert set(post.body) == {"from", "to", "queries"}
        assert re.fullmatch(r"\d{13}", post.body["from"])
        assert re.fullmatch(r"\d{13}", post.body["to"])
        assert int(post.body["to"]) - int(post.body["from"]) == 15 * 60 * 1000
        assert post.headers["Content-Type"] == "application/json"
    query = next(q for q in grafana.ds_queries() if "route=" in q.get("expr", ""))
    assert query["refId"] == "A"
    assert query["datasource"] == {"type": "prometheus", "uid": "prometheus"}
    assert query["intervalMs"] == 15_000  # 15 min / 960 px rounds to 1 s, below the 15 s scrape
    assert query["maxDataPoints"] == 960  # half of a 1920-px screen: gridPos.w 12 of 24


def test_variables_substituted_builtins_left_to_grafana(
    grafana: GrafanaDouble, token_file: Path
) -> None:
    """Dashboard variables are substituted (query variables via the proxy); $__ ones are not."""
    run_cli("check", str(PROMETHEUS), "--grafana", grafana.url, "--quiet")
    lookups = [s for s in grafana.seen if s.method == "GET"]
    assert lookups[0].path == "/api/datasources/proxy/uid/prometheus/api/v1/label/job/values"
    assert lookups[0].query["match[]"] == ["check_requests_total"]
    exprs = [q["expr"] for q in grafana.ds_queries() if "expr" in q]
    assert (
        'sum by (route) (rate(check_requests_total{job=~"(payments|shop)", route="/a"}'
        "[$__rate_interval]))"
    ) in exprs
    assert 'sum(check_requests_total{job="shop"})' in exprs  # the repeated panel, per job


def test_expression_goes_with_its_queries(grafana: GrafanaDouble, token_file: Path) -> None:
    """A server-side expression is sent in the same request as the query it reads."""
    run_cli("check", str(PROMETHEUS), "--grafana", grafana.url, "--quiet")
    posts = [s for s in grafana.seen if s.path == "/api/ds/query"]
    post = next(s for s in posts if any(q.get("type") == "math" for q in s.body["queries"]))
    refs = {q["refId"]: q["datasource"] for q in post.body["queries"]}
    assert refs == {
        "A": {"type": "prometheus", "uid": "prometheus"},
        "B": {"type": "__expr__", "uid": "__expr__"},
    }


def test_answers_map_to_data_empty_and_error(grafana: GrafanaDouble, token_file: Path) -> None:
    """Rows are data, a frame without rows is empty, a refId's error is an error (HTTP 400)."""
    run = run_cli("check", str(PROMETHEUS), "--grafana", grafana.url, "--quiet", "--json")
    assert run.code == 1
    assert run.panel("Request rate")["status"] == "data"
    assert run.panel("Missing metric")["status"] == "empty"
    broken = run.panel("Broken query")
    assert broken["status"] == "error"
    assert "parse error: unclosed left parenthesis (downstream)" in broken["targets"][0]["detail"]
    assert run.panel("Doubled")["status"] == "data"  # Grafana evaluates the expression
    assert run.panel("Notes")["status"] == "unchecked"


def test_bearer_token_is_sent_and_never_printed(grafana: GrafanaDouble, token_file: Path) -> None:
    """Every request carries the token from the file; no output line contains it."""
    run = run_cli("check", str(PROMETHEUS), "--grafana", grafana.url, "--json")
    assert grafana.seen
    assert all(s.headers.get("Authorization") == f"Bearer {TOKEN}" for s in grafana.seen)
    assert TOKEN not in run.stdout
    assert TOKEN not in run.stderr


def test_basic_auth_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """LOOKOUT_GRAFANA_USER with LOOKOUT_GRAFANA_PASSWORD_FILE sends basic auth."""
    password = tmp_path / "password"
    password.write_text("s3cret\n", encoding="utf-8")
    monkeypatch.delenv("LOOKOUT_GRAFANA_TOKEN", raising=False)
    monkeypatch.delenv("LOOKOUT_GRAFANA_TOKEN_FILE", raising=False)
    monkeypatch.setenv("LOOKOUT_GRAFANA_USER", "viewer")
    monkeypatch.setenv("LOOKOUT_GRAFANA_PASSWORD_FILE", str(password))
    with GrafanaDouble() as double:
        run = run_cli("check", str(PROMETHEUS), "--grafana", double.url, "--quiet")
    assert run.code == 1  # the fixture's empty and broken panels
    assert double.seen[0].headers["Authorization"] == "Basic dmlld2VyOnMzY3JldA=="
    assert "s3cret" not in run.stdout + run.stderr


def test_refused_credentials_are_an_error_saying_what_to_set(
    grafana: GrafanaDouble, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A 401 from Grafana makes the panels errors naming the variables to set, exit 1."""
    wrong = tmp_path / "wrong"
    wrong.write_text("glsa_wrong", encoding="utf-8")
    monkeypatch.delenv("LOOKOUT_GRAFANA_TOKEN", raising=False)
    monkeypatch.setenv("LOOKOUT_GRAFANA_TOKEN_FILE", str(wrong))
    run = run_cli("check", str(LOGS_TRACES), "--grafana", grafana.url, "--quiet")
    assert run.code == 1
    assert "HTTP 401 Unauthorized: Grafana refused the credentials" in run.stdout
    assert "LOOKOUT_GRAFANA_TOKEN" in run.stdout
    assert "glsa_wrong" not in run.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grafana", "http://admin:pw@127.0.0.1:3000"], "credentials in the URL are refused"),
        (["--grafana", "ftp://admin:pw@127.0.0.1"], "credentials in the URL are refused"),
        (["--grafana", "ftp://x"], "expected an http(s):// URL"),
        (["--grafana", "http://[::1"], "--grafana: not a URL"),
        (
            ["--grafana", "http://127.0.0.1:3000", "--prometheus", "http://127.0.0.1:9090"],
            "exclude each other",
        ),
    ],
    ids=["userinfo", "userinfo-and-scheme", "scheme", "malformed", "two-modes"],
)
def test_bad_grafana_options_exit_two(args: list[str], message: str, token_file: Path) -> None:
    """Credentials in the URL (never echoed), a non-HTTP or malformed URL or two modes at once
    are refused with exit 2."""
    run = run_cli("check", str(PROMETHEUS), *args, "--quiet")
    assert run.code == 2
    assert message in run.stderr
    assert "pw" not in run.stderr.replace("--grafana", "")


def test_loki_and_tempo_targets_go_through_grafana(
    grafana: GrafanaDouble, token_file: Path
) -> None:
    """Loki and Tempo targets are sent with their data source and substituted queries."""
    run = run_cli("check", str(LOGS_TRACES), "--grafana", grafana.url, "--quiet", "--json")
    queries = {
        q["datasource"]["uid"] + ":" + str(q.get("expr") or q.get("query")): q
        for q in grafana.ds_queries()
    }
    assert 'loki:{service_name="shop"} |= "checkout"' in queries
    assert queries['loki:{service_name="shop"} |= "checkout"']["queryType"] == "range"
    assert 'tempo:{ resource.service.name = "shop" }' in queries
    search = queries['tempo:{resource.service.name="shop"}']
    assert search["queryType"] == "traceql"  # the Search builder's filters, as TraceQL
    assert run.panel("Checkout logs")["status"] == "data"
    assert run.panel("Broken LogQL")["status"] == "error"
    assert run.panel("Broken TraceQL")["status"] == "data"  # the double only checks brackets


@pytest.mark.parametrize(
    ("code", "answer", "detail"),
    [
        (404, {"message": "data source not found"}, "HTTP 404: data source not found"),
        (500, {"message": "internal error"}, "HTTP 500: internal error"),
        (200, {"results": {}}, "no result for refId A in the answer"),
        (200, {"results": {"A": {"status": 200}}}, "no frames"),
    ],
    ids=["404", "500", "missing-refid", "no-frames"],
)
def test_whole_request_failures_map_to_each_target(
    token_file: Path, code: int, answer: dict[str, object], detail: str
) -> None:
    """An answer without the refId's result is an error (or empty) naming what Grafana said."""
    with GrafanaDouble(token=TOKEN, respond=lambda _seen: (code, answer)) as double:
        run = run_cli("check", str(FIXTURES / "prometheus-ok.json"), "--grafana", double.url,
                      "--quiet", "--json")  # fmt: skip
    assert run.code == 1
    target = run.panel("Request rate")["targets"][0]
    assert target["detail"] == detail
    assert target["status"] == ("empty" if detail == "no frames" else "error")
