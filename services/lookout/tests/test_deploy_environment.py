"""Environment overlays (deploy/environments/*.yaml): what loads, and how a bad file is reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lookout_stack.deploy.environment import EnvironmentErrors, load_environment
from lookout_stack.deploy.model import AlertmanagerApi, AlertmanagerFile, RuleFiles, RulerApi

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Return a root holding slo/slos.yaml and an empty deploy/environments folder."""
    (tmp_path / "slo").mkdir()
    shutil.copy(ROOT / "slo" / "slos.yaml", tmp_path / "slo" / "slos.yaml")
    (tmp_path / "deploy" / "environments").mkdir(parents=True)
    return tmp_path


def _write(repo: Path, text: str, name: str = "staging") -> None:
    (repo / "deploy" / "environments" / f"{name}.yaml").write_text(text, encoding="utf-8")


def _errors(repo: Path, text: str) -> list[str]:
    _write(repo, text)
    with pytest.raises(EnvironmentErrors) as caught:
        load_environment("staging", repo)
    return [str(error) for error in caught.value.errors]


def test_shipped_environments_load_with_the_targets_they_name() -> None:
    """staging deploys through Mimir's and Loki's APIs, local through the compose stack's files."""
    staging = load_environment("staging", ROOT)
    assert isinstance(staging.prometheus_rules, RulerApi)
    assert staging.prometheus_rules.kind == "mimir"
    assert isinstance(staging.loki_rules, RulerApi)
    assert staging.loki_rules.kind == "loki"
    assert isinstance(staging.alertmanager, AlertmanagerApi)
    assert staging.grafana is not None
    assert staging.name == "staging"
    local = load_environment("local", ROOT)
    assert isinstance(local.prometheus_rules, RuleFiles)
    assert local.prometheus_rules.reload_url == "http://127.0.0.1:9090/-/reload"
    assert isinstance(local.alertmanager, AlertmanagerFile)
    # Relative paths mean the repository's folders, wherever the command runs.
    assert local.prometheus_rules.directory == ROOT / "prometheus" / "rules"
    assert local.alertmanager.path == ROOT / "alertmanager" / "alertmanager.yml"
    assert local.grafana is not None
    assert local.grafana.url == "http://127.0.0.1:3000"


def test_a_section_left_out_is_not_deployed(repo: Path) -> None:
    """An environment with only Grafana has no rule or Alertmanager target."""
    _write(repo, "grafana: {url: http://127.0.0.1:3000}\n")
    environment = load_environment("staging", repo)
    assert environment.prometheus_rules is None
    assert environment.loki_rules is None
    assert environment.alertmanager is None


def test_an_environment_file_can_be_given_by_path(repo: Path) -> None:
    """A path (not a name) is read as it is, and the name is its file name."""
    path = repo / "elsewhere.yaml"
    path.write_text("description: a path\n", encoding="utf-8")
    assert load_environment(str(path), repo).name == "elsewhere"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "grafana:\n  url: http://g\n  colour: blue\n",
            "deploy/environments/staging.yaml:3: grafana.colour: unknown field",
        ),
        (
            "retention:\n  logs: 14 days\n",
            "deploy/environments/staging.yaml:2: retention.logs: '14 days' is not a duration",
        ),
        (
            "prometheus_rules:\n  kind: loki\n  url: http://ruler\n",
            "deploy/environments/staging.yaml:1: prometheus_rules: Prometheus rules go to Mimir",
        ),
        (
            "alertmanager:\n  kind: file\n  reload_url: ftp://am\n",
            "deploy/environments/staging.yaml:1: alertmanager.path: required field is missing",
        ),
        (
            "datasources:\n  loki:\n    url: http://loki\n    implementation: mimir\n",
            "deploy/environments/staging.yaml:1: datasources: loki.implementation: only prometheus",
        ),
        (
            "slos:\n  shop:\n    availabilty: {objective: 99}\n",
            "deploy/environments/staging.yaml:3: slos.shop.availabilty: shop has no SLO",
        ),
        (
            "slos:\n  shop:\n    latency:\n      threshold: 7s\n",
            "deploy/environments/staging.yaml:4: slos.shop.latency.threshold: 7s is not a "
            "bucket boundary of indicator 'http-request-duration'",
        ),
        (
            "retention:\n  metrics: 7d\n",
            "deploy/environments/staging.yaml:2: retention.metrics: 7d is shorter than the SLO",
        ),
        (
            "trace_sampling_percent: 0\n",
            "deploy/environments/staging.yaml:1: trace_sampling_percent: Input should be greater",
        ),
        (
            "alert_thresholds:\n  - {alert: A, severity: warning, value: .inf}\n",
            "deploy/environments/staging.yaml:2: alert_thresholds[0].value: "
            "Input should be a finite number",
        ),
        (
            "grafana: {url: http://g}\ngrafana: {url: http://h}\n",
            "deploy/environments/staging.yaml:2: grafana: duplicate key (first at line 1)",
        ),
    ],
    ids=[
        "unknown-field",
        "bad-duration",
        "wrong-ruler-kind",
        "missing-field",
        "implementation-on-loki",
        "unknown-slo",
        "threshold-off-the-buckets",
        "retention-shorter-than-slo-window",
        "sampling-zero",
        "threshold-infinite",
        "duplicate-key",
    ],
)
def test_errors_name_file_line_and_field(repo: Path, text: str, expected: str) -> None:
    """Each problem is reported as file:line: field: message."""
    errors = _errors(repo, text)
    assert any(error.startswith(expected) for error in errors), errors


def test_a_literal_secret_is_refused_naming_the_field_never_the_value(repo: Path) -> None:
    """A password written inline is an error at its field; the message does not repeat it."""
    errors = _errors(
        repo,
        "grafana:\n  url: http://g\n  auth:\n    username: admin\n    password: hunter2-inline\n",
    )
    assert errors == [
        "deploy/environments/staging.yaml:5: grafana.auth.password: a secret goes by reference, "
        "never inline: write {env: VARIABLE} or {file: PATH}"
    ]
    assert not any("hunter2" in error for error in errors)


def test_a_literal_relay_token_is_refused(repo: Path) -> None:
    """The alert relay's token is a reference too."""
    errors = _errors(repo, "alert_relay:\n  url: https://relay\n  token: abc123\n")
    assert errors[0].startswith("deploy/environments/staging.yaml:3: alert_relay.token: a secret")


def test_anonymous_access_on_is_refused_for_any_environment(repo: Path) -> None:
    """grafana_anonymous_access: true is an error saying why."""
    errors = _errors(repo, "grafana_anonymous_access: true\n")
    assert errors[0].startswith(
        "deploy/environments/staging.yaml:1: grafana_anonymous_access: anonymous access stays off"
    )


def test_mimir_alertmanager_needs_the_relay_by_reference(repo: Path) -> None:
    """Mimir's Alertmanager refuses credentials_file, so the relay token must be given."""
    errors = _errors(repo, "alertmanager:\n  kind: mimir\n  url: https://mimir\n")
    assert "alert_relay: required with Mimir's Alertmanager" in errors[0]


def test_a_file_alertmanager_reads_the_relay_token_from_a_file(repo: Path) -> None:
    """An Alertmanager reading its file needs the relay token as {file: PATH}, not {env: X}."""
    errors = _errors(
        repo,
        "alertmanager: {kind: file, path: am.yml}\n"
        "alert_relay: {url: https://relay, token: {env: RELAY_TOKEN}}\n",
    )
    assert "alert_relay.token: an Alertmanager that reads its file" in errors[0]


def test_a_missing_environment_lists_the_known_ones(repo: Path) -> None:
    """An unknown name says which environments exist."""
    _write(repo, "description: x\n", name="qa")
    with pytest.raises(
        EnvironmentErrors, match=r"staging\.yaml: cannot read: .*known environments: qa"
    ):
        load_environment("staging", repo)


def test_every_error_is_reported_at_once(repo: Path) -> None:
    """Two bad fields give two errors, in one exception."""
    errors = _errors(repo, "colour: blue\ntrace_sampling_percent: 101\n")
    assert len(errors) == 2


def test_retention_is_read_in_hours() -> None:
    """30d and 3d become 720h and 72h, the form Loki and Tempo both read."""
    staging = load_environment("staging", ROOT)
    assert staging.retention.hours("logs") == "336h"
    assert staging.retention.hours("traces") == "72h"
