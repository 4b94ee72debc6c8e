"""``lookout diff/apply --env`` end to end with the real targets (lookout_stack.deploy.targets):
against the protocol-level doubles of Grafana's, Mimir's and Loki's documented APIs
(deploy_doubles: they test our client code, not those products), and against rule and
Alertmanager files in a folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from deploy_doubles import GrafanaDouble, MimirAlertmanagerDouble, RulerDouble, serve

from lookout_support import CliRun, run_cli

ROOT = Path(__file__).resolve().parents[3]
SECRETS = {
    "QA_GRAFANA_TOKEN": "grafana-tok-5e1f0c",
    "QA_MIMIR_PASSWORD": "mimir-pw-8d2a71",
    "QA_LOKI_PASSWORD": "loki-pw-44b9e0",
    "QA_RELAY_TOKEN": "relay-tok-a7c3d9",
}


@dataclass
class Stack:
    """The doubles of one staging-like stack and the environment file naming them."""

    grafana: GrafanaDouble
    mimir: RulerDouble
    loki: RulerDouble
    alertmanager: MimirAlertmanagerDouble
    env: Path

    def lookout(self, *args: str) -> CliRun:
        """Run ``lookout <args> --env <env> --root <repo>``."""
        run = run_cli(*args, "--env", str(self.env), "--root", str(ROOT))
        for value in SECRETS.values():
            assert value not in run.stdout + run.stderr, f"a secret was printed by {args}"
        return run


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Serve the four doubles on loopback and write an environment that deploys to them."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    grafana = GrafanaDouble(
        expected_headers={"Authorization": f"Bearer {SECRETS['QA_GRAFANA_TOKEN']}"}
    )
    mimir, loki = RulerDouble(kind="mimir"), RulerDouble(kind="loki")
    manager = MimirAlertmanagerDouble()
    with serve(grafana) as g, serve(mimir) as m, serve(loki) as lo, serve(manager) as am:
        basic = "{username: qa, password: {env: QA_MIMIR_PASSWORD}}"
        env = tmp_path / "qa.yaml"
        env.write_text(
            f"grafana: {{url: {g}, auth: {{token: {{env: QA_GRAFANA_TOKEN}}}}}}\n"
            f"prometheus_rules: {{kind: mimir, url: {m}, tenant: qa, auth: {basic}}}\n"
            f"loki_rules: {{kind: loki, url: {lo}, tenant: qa,"
            " auth: {username: qa, password: {env: QA_LOKI_PASSWORD}}}\n"
            f"alertmanager: {{kind: mimir, url: {am}, tenant: qa, auth: {basic}}}\n"
            "datasources:\n"
            f"  prometheus: {{url: {m}/prometheus, tenant: qa, implementation: mimir,"
            f" auth: {basic}}}\n"
            "alert_relay: {url: https://relay.qa/webhook, token: {env: QA_RELAY_TOKEN}}\n"
            "bugsink_url: https://bugsink.qa\n"
            "alert_thresholds:\n"
            "  - {alert: OutboxBacklog, severity: warning, value: 600}\n",
            encoding="utf-8",
        )
        yield Stack(grafana, mimir, loki, manager, env)


def test_diff_apply_then_in_sync_against_the_api_doubles(stack: Stack) -> None:
    """diff exits 1, apply deploys everything in order, then apply and diff find nothing."""
    before = stack.lookout("diff")
    assert before.code == 1, before.stderr
    assert "+ create Alertmanager configuration of tenant qa" in before.stdout
    # The target shows the token's reference, not its value (the command's filter aside).
    assert "credentials: $__env{QA_RELAY_TOKEN}" in before.stdout
    applied = stack.lookout("apply")
    assert applied.code == 0, applied.stderr
    progress = [line for line in applied.stderr.splitlines() if line.startswith("[")]
    assert progress[0].startswith("[1/")
    assert "alertmanager (mimir API): create Alertmanager configuration" in progress[0]
    assert all(line.endswith("... ok") for line in progress)
    heads = [line.split("] ", 1)[1].split(":", 1)[0] for line in progress]
    assert heads == sorted(
        heads,
        key=[
            "alertmanager (mimir API)",
            "prometheus rules (mimir ruler API)",
            "loki rules (loki ruler API)",
            "grafana",
        ].index,
    )
    again = stack.lookout("apply")
    assert (again.code, again.stdout.strip()) == (0, "in sync: nothing to apply")
    after = stack.lookout("diff")
    assert after.code == 0
    assert after.stdout.strip().endswith("in sync: nothing to change")


def test_what_arrives_is_the_rendered_overlay_with_secrets_resolved(stack: Stack) -> None:
    """Mimir gets the tuned rule and the relay token; Grafana the datasource secret."""
    assert stack.lookout("apply").code == 0
    config = yaml.safe_load(stack.alertmanager.configs["qa"]["alertmanager_config"])
    webhook = config["receivers"][0]["webhook_configs"][0]
    assert webhook["url"] == "https://relay.qa/webhook"
    assert webhook["http_config"]["authorization"]["credentials"] == SECRETS["QA_RELAY_TOKEN"]
    groups = stack.mimir.groups["qa"]["lookout"]
    backlog = next(
        rule
        for group in groups.values()
        for rule in group["rules"]
        if rule.get("alert") == "OutboxBacklog"
    )
    assert " ".join(backlog["expr"].split()).endswith("> 600")
    assert stack.grafana.secure["prometheus"]["basicAuthPassword"] == SECRETS["QA_MIMIR_PASSWORD"]
    assert stack.grafana.secure["prometheus"]["httpHeaderValue1"] == "qa"
    assert set(stack.loki.groups["qa"]["lookout"]) == {
        "lookout-security-logs",
        "lookout-error-logs",
    }


def test_a_refusal_stops_apply_and_names_what_was_not_applied(stack: Stack) -> None:
    """Mimir's ruler refusing a group stops apply before Loki and Grafana are touched."""
    stack.mimir.fail("POST", "/prometheus/config/v1/rules", 400, "invalid rule group\n")
    run = stack.lookout("apply")
    assert run.code == 1
    assert "failed: [2/" in run.stderr
    assert "invalid rule group" in run.stderr
    assert "  loki rules (loki ruler API): create" in run.stderr
    assert not stack.loki.groups.get("qa")
    assert not stack.grafana.dashboards
    assert stack.lookout("apply").code == 0
    assert stack.lookout("diff").code == 0


def test_file_targets_write_the_rendered_files_then_are_in_sync(tmp_path: Path) -> None:
    """Rule files and the Alertmanager file are written into their folders, once."""
    rules, loki, manager = tmp_path / "rules", tmp_path / "loki-rules", tmp_path / "am"
    for folder in (rules, loki, manager):
        folder.mkdir()
    env = tmp_path / "box.yaml"
    env.write_text(
        f"prometheus_rules: {{kind: files, directory: {rules}}}\n"
        f"loki_rules: {{kind: files, directory: {loki}}}\n"
        f"alertmanager: {{kind: file, path: {manager / 'alertmanager.yml'}}}\n",
        encoding="utf-8",
    )
    first = run_cli("apply", "--env", str(env), "--root", str(ROOT))
    assert first.code == 0, first.stderr
    assert (rules / "slo.yml").read_text(encoding="utf-8") == (
        ROOT / "prometheus/rules/slo.yml"
    ).read_text(encoding="utf-8")
    assert (loki / "fake" / "logs.yaml").is_file()
    assert (manager / "alertmanager.yml").read_bytes() == (
        ROOT / "alertmanager/alertmanager.yml"
    ).read_bytes()
    second = run_cli("apply", "--env", str(env), "--root", str(ROOT))
    assert (second.code, second.stdout.strip()) == (0, "in sync: nothing to apply")
