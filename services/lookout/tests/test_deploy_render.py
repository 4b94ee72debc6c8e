"""``render_environment``: each overlay changes what it should and nothing else; the rendered
configs pass the backends' own checks (promtool, amtool, the real Loki and Tempo)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lookout_stack.deploy.environment import Environment, load_environment
from lookout_stack.deploy.render import MANIFEST, RenderError, render_environment
from stack_support import require_binary

ROOT = Path(__file__).resolve().parents[3]
integration = pytest.mark.integration


def _environment(**overlay: Any) -> Environment:
    return Environment.model_validate({"name": "test", **overlay})


def _render(tmp_path: Path, environment: Environment) -> Path:
    out = tmp_path / "out"
    render_environment(environment, ROOT, out)
    return out


def _changed(out: Path) -> set[str]:
    """Return the rendered files that differ from the repository's (or that it lacks)."""
    changed = set()
    for path in out.rglob("*"):
        if path.is_file() and path.name != MANIFEST:
            relative = path.relative_to(out)
            base = ROOT / relative
            if not base.is_file() or base.read_bytes() != path.read_bytes():
                changed.add(relative.as_posix())
    return changed


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, cwd=cwd)


# --- what is rendered ------------------------------------------------------------------------


def test_without_overlay_every_file_is_the_repositorys(tmp_path: Path) -> None:
    """An empty overlay renders the repository's files byte for byte (plus grafana.ini)."""
    out = _render(tmp_path, _environment())
    assert _changed(out) == {"grafana/grafana.ini"}


def test_render_uses_the_repository_layout_and_lists_each_file(tmp_path: Path) -> None:
    """Files land at their repository paths; render.json names each with its source."""
    out = tmp_path / "out"
    written = render_environment(_environment(), ROOT, out)
    names = {p.as_posix() for p in written}
    for expected in (
        "grafana/dashboards/lookout-overview.json",
        "grafana/provisioning/datasources/datasources.yaml",
        "prometheus/rules/demo-app.yml",
        "prometheus/rules/slo.yml",
        "prometheus/tests/slo.test.yml",
        "loki/rules/fake/logs.yaml",
        "alertmanager/alertmanager.yml",
        "loki/loki.yaml",
        "tempo/tempo.yaml",
        "otel-collector/config.yaml",
        MANIFEST,
    ):
        assert expected in names
    assert "alertmanager/relay-token.dev" not in names
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    listed = {entry["path"]: entry["source"] for entry in manifest["files"]}
    assert set(listed) == names - {MANIFEST}
    assert listed["prometheus/rules/demo-app.yml"] == "prometheus/rules/demo-app.yml"


def test_slo_override_regenerates_the_slo_rules_and_their_tests_only(tmp_path: Path) -> None:
    """A new objective changes slo.yml and slo.test.yml, through the SLO generator."""
    out = _render(tmp_path, _environment(slos={"shop": {"availability": {"objective": 99.5}}}))
    assert _changed(out) == {
        "grafana/grafana.ini",
        "prometheus/rules/slo.yml",
        "prometheus/tests/slo.test.yml",
    }
    rules = _yaml(out / "prometheus/rules/slo.yml")
    objectives = [
        rule
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("record") == "slo:objective:ratio"
        and rule["labels"] == {"service": "shop", "slo": "availability"}
    ]
    assert [rule["expr"] for rule in objectives] == ["vector(0.995)"]


def test_threshold_override_rewrites_the_rule_and_moves_the_dashboard_lines(
    tmp_path: Path,
) -> None:
    """HTTPErrorRateHigh warning at 0.1 changes its rule and the panels that draw it."""
    threshold = {
        "alert": "HTTPErrorRateHigh",
        "severity": "warning",
        "compares": "job:http_server_requests_errors:ratio_rate5m",
        "value": 0.1,
    }
    out = _render(tmp_path, _environment(alert_thresholds=[threshold]))
    assert _changed(out) == {
        "grafana/grafana.ini",
        "prometheus/rules/demo-app.yml",
        "grafana/dashboards/lookout-overview.json",
        "grafana/dashboards/lookout-service.json",
    }
    rules = _yaml(out / "prometheus/rules/demo-app.yml")
    exprs = {
        (rule["alert"], rule["labels"]["severity"]): " ".join(rule["expr"].split())
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert (
        "ratio_rate5m > 0.1 and job:http_server_requests:rate5m > 0.05"
        in exprs[("HTTPErrorRateHigh", "warning")]
    )
    # The critical level and the traffic guard keep their numbers.
    assert "ratio_rate5m > 0.2 and" in exprs[("HTTPErrorRateHigh", "critical")]
    steps = _threshold_steps(out / "grafana/dashboards/lookout-service.json")
    base = _threshold_steps(ROOT / "grafana/dashboards/lookout-service.json")
    assert 0.1 in steps
    assert steps.count(0.05) == base.count(0.05) - 2


def _threshold_steps(path: Path) -> list[float]:
    found: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "steps" in node and isinstance(node["steps"], list):
                found.extend(s["value"] for s in node["steps"] if s.get("value") is not None)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(path.read_text(encoding="utf-8")))
    return found


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        (
            {"alert": "NoSuchAlert", "severity": "warning", "value": 1},
            "alert_thresholds[0] (NoSuchAlert, warning): no alert rule",
        ),
        (
            {"alert": "HTTPErrorRateHigh", "severity": "warning", "value": 1},
            "compares 2 things with a number",
        ),
        (
            {"alert": "Watchdog", "severity": "info", "value": 1},
            "is not of the shape `<expr> > <number>`",
        ),
        (
            {"alert": "SLOErrorBudgetFastBurn", "severity": "critical", "value": 1},
            "prometheus/rules/slo.yml is generated from slo/slos.yaml",
        ),
        (
            {
                "alert": "HTTPErrorRateHigh",
                "severity": "warning",
                "compares": "no_such_series",
                "value": 1,
            },
            "no comparison of 'no_such_series' with a plain number",
        ),
    ],
    ids=["missing-alert", "ambiguous", "no-number", "generated-slo-rule", "unknown-compares"],
)
def test_a_threshold_that_does_not_fit_names_the_alert_and_file(
    tmp_path: Path, threshold: dict[str, Any], message: str
) -> None:
    """An override the rules cannot take fails naming the environment field and the alert."""
    with pytest.raises(RenderError, match=r"deploy/environments/test\.yaml") as caught:
        _render(tmp_path, _environment(alert_thresholds=[threshold]))
    assert message in str(caught.value)


def test_retention_changes_loki_and_tempo_only(tmp_path: Path) -> None:
    """Logs and traces retention land in loki.yaml and tempo.yaml (both 3.0 places)."""
    out = _render(tmp_path, _environment(retention={"logs": "14d", "traces": "3d"}))
    assert _changed(out) == {"grafana/grafana.ini", "loki/loki.yaml", "tempo/tempo.yaml"}
    loki = _yaml(out / "loki/loki.yaml")
    assert loki["limits_config"]["retention_period"] == "336h"
    assert loki["limits_config"]["retention_stream"][0]["period"] == "8760h"
    tempo = _yaml(out / "tempo/tempo.yaml")
    scheduler = tempo["backend_scheduler"]["provider"]["compaction"]["compaction"]
    assert scheduler["block_retention"] == "72h"
    assert tempo["backend_worker"]["compaction"]["block_retention"] == "72h"
    assert "retention.logs" in (out / "loki/loki.yaml").read_text(encoding="utf-8")


def test_metrics_retention_is_named_where_it_goes(tmp_path: Path) -> None:
    """Metrics retention is in no file: render.json says it is a flag or a Mimir limit."""
    out = _render(tmp_path, _environment(retention={"metrics": "90d"}))
    assert _changed(out) == {"grafana/grafana.ini"}
    settings = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["settings"]
    assert settings[0]["field"] == "retention.metrics"
    assert "--storage.tsdb.retention.time=90d" in settings[0]["where"]
    assert "compactor_blocks_retention_period: 90d" in settings[0]["where"]


def test_sampling_sets_the_collectors_probabilistic_policy_only(tmp_path: Path) -> None:
    """trace_sampling_percent replaces the probabilistic policy's percentage."""
    out = _render(tmp_path, _environment(trace_sampling_percent=10))
    assert _changed(out) == {"grafana/grafana.ini", "otel-collector/config.yaml"}
    config = _yaml(out / "otel-collector/config.yaml")
    policies = {p["name"]: p for p in config["processors"]["tail_sampling"]["policies"]}
    assert policies["keep-share-of-the-rest"]["probabilistic"]["sampling_percentage"] == 10
    assert (
        policies["keep-slow"]
        == _yaml(ROOT / "otel-collector/config.yaml")["processors"]["tail_sampling"]["policies"][1]
    )


def test_datasources_get_urls_tenant_and_secrets_by_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The datasource file holds the URL, X-Scope-OrgID and $__env/$__file refs, never a secret."""
    monkeypatch.setenv("DS_PASSWORD", "s3cret-password-value")
    monkeypatch.setenv("DS_TOKEN", "s3cret-token-value")
    out = _render(
        tmp_path,
        _environment(
            datasources={
                "prometheus": {
                    "url": "https://mimir.example.com/prometheus",
                    "tenant": "team-a",
                    "implementation": "mimir",
                    "auth": {"username": "team-a", "password": {"env": "DS_PASSWORD"}},
                },
                "tempo": {
                    "url": "https://tempo.example.com",
                    "auth": {"token": {"env": "DS_TOKEN"}},
                },
                "loki": {
                    "url": "https://loki.example.com",
                    "auth": {"username": "u", "password": {"file": "/run/secrets/loki"}},
                },
            }
        ),
    )
    assert _changed(out) == {
        "grafana/grafana.ini",
        "grafana/provisioning/datasources/datasources.yaml",
    }
    path = out / "grafana/provisioning/datasources/datasources.yaml"
    text = path.read_text(encoding="utf-8")
    assert "s3cret" not in text
    sources = {s["uid"]: s for s in _yaml(path)["datasources"]}
    prometheus = sources["prometheus"]
    assert prometheus["url"] == "https://mimir.example.com/prometheus"
    assert prometheus["basicAuth"] is True
    assert prometheus["basicAuthUser"] == "team-a"
    assert prometheus["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID"
    assert prometheus["jsonData"]["prometheusType"] == "Mimir"
    assert prometheus["secureJsonData"] == {
        "basicAuthPassword": "$__env{DS_PASSWORD}",
        "httpHeaderValue1": "team-a",
    }
    assert sources["tempo"]["jsonData"]["httpHeaderName1"] == "Authorization"
    assert sources["tempo"]["secureJsonData"] == {"httpHeaderValue1": "Bearer $__env{DS_TOKEN}"}
    assert sources["loki"]["secureJsonData"]["basicAuthPassword"] == "$__file{/run/secrets/loki}"
    assert sources["alertmanager"]["url"] == "http://alertmanager:9093"


def test_grafana_ini_turns_anonymous_access_off(tmp_path: Path) -> None:
    """The rendered grafana.ini sets [auth.anonymous] enabled = false."""
    out = _render(tmp_path, _environment())
    text = (out / "grafana/grafana.ini").read_text(encoding="utf-8")
    assert "[auth.anonymous]\nenabled = false\n" in text


def test_relay_points_every_receiver_at_it_with_the_token_by_reference(tmp_path: Path) -> None:
    """With Mimir's Alertmanager the token is a reference; no credentials_file remains."""
    out = _render(
        tmp_path,
        _environment(
            alertmanager={"kind": "mimir", "url": "https://mimir.example.com"},
            alert_relay={"url": "https://relay.example.com/webhook", "token": {"env": "RELAY"}},
        ),
    )
    assert _changed(out) == {"grafana/grafana.ini", "alertmanager/alertmanager.yml"}
    config = _yaml(out / "alertmanager/alertmanager.yml")
    webhooks = [w for r in config["receivers"] for w in r["webhook_configs"]]
    assert {w["url"] for w in webhooks} == {"https://relay.example.com/webhook"}
    assert {json.dumps(w["http_config"]["authorization"]) for w in webhooks} == {
        json.dumps({"type": "Bearer", "credentials": "$__env{RELAY}"})
    }


def test_a_loki_tenant_renames_the_rule_folder(tmp_path: Path) -> None:
    """Loki rules go under loki/rules/<tenant>/, the folder Loki's ruler reads for it."""
    out = _render(
        tmp_path,
        _environment(loki_rules={"kind": "loki", "url": "https://loki", "tenant": "team-a"}),
    )
    assert (out / "loki/rules/team-a/logs.yaml").read_bytes() == (
        ROOT / "loki/rules/fake/logs.yaml"
    ).read_bytes()
    assert not (out / "loki/rules/fake").exists()


# --- the backends' own checks ----------------------------------------------------------------


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Render the shipped staging environment once for the checks below."""
    out = tmp_path_factory.mktemp("staging")
    render_environment(load_environment("staging", ROOT), ROOT, out)
    return out


@integration
def test_rendered_prometheus_rules_pass_promtool(staging: Path) -> None:
    """`promtool check rules` accepts every rendered rule file of staging."""
    rules = sorted(str(p) for p in (staging / "prometheus/rules").glob("*.yml"))
    result = _run([str(require_binary("promtool")), "check", "rules", *rules])
    assert result.returncode == 0, result.stdout + result.stderr


@integration
def test_regenerated_slo_tests_pass_promtool(staging: Path) -> None:
    """The SLO tests generated with staging's objectives pass against its SLO rules."""
    result = _run(
        [str(require_binary("promtool")), "test", "rules", "prometheus/tests/slo.test.yml"],
        cwd=staging,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@integration
def test_rendered_alertmanager_config_passes_amtool(staging: Path) -> None:
    """`amtool check-config` accepts staging's Alertmanager configuration."""
    config = staging / "alertmanager/alertmanager.yml"
    result = _run([str(require_binary("amtool")), "check-config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr


@integration
def test_rendered_loki_config_passes_the_real_loki(staging: Path) -> None:
    """The real Loki 3.7.6 (`-verify-config`) accepts staging's loki.yaml."""
    config = staging / "loki/loki.yaml"
    result = _run([str(require_binary("loki")), f"-config.file={config}", "-verify-config"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "config is valid" in result.stderr


@integration
def test_rendered_tempo_config_passes_the_real_tempo(staging: Path) -> None:
    """The real Tempo 3.0.3 (`-config.verify=true`) accepts staging's tempo.yaml."""
    config = staging / "tempo/tempo.yaml"
    result = _run(
        [
            str(require_binary("tempo")),
            f"-config.file={config}",
            "-config.verify=true",
            "-config.expand-env=true",
        ]
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]


@integration
def test_rendered_yaml_passes_yamllint(staging: Path) -> None:
    """Every rendered YAML file passes the repository's yamllint rules, strict."""
    result = _run(
        ["yamllint", "--strict", "-c", str(ROOT / ".yamllint.yaml"), str(staging)], cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_bugsink_url_fills_the_loki_link_and_nothing_else(tmp_path: Path) -> None:
    """bugsink_url replaces ${BUGSINK_URL} in the Loki datasource's link, keeping `$${...}`."""
    out = _render(tmp_path, _environment(bugsink_url="https://bugsink.example.com"))
    assert _changed(out) == {
        "grafana/grafana.ini",
        "grafana/provisioning/datasources/datasources.yaml",
    }
    sources = {
        s["uid"]: s
        for s in _yaml(out / "grafana/provisioning/datasources/datasources.yaml")["datasources"]
    }
    links = {f["name"]: f["url"] for f in sources["loki"]["jsonData"]["derivedFields"]}
    assert links["Bugsink event"] == "https://bugsink.example.com/issues/event/$${__value.raw}/"
    assert links["TraceID"] == "$${__value.raw}"
