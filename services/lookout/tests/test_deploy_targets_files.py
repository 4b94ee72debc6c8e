"""Rule-file and Alertmanager-file targets against the REAL Debian Prometheus and Alertmanager.

Both processes run on loopback with their config in tmp_path; the targets write files,
reload through ``/-/reload`` and read back through the products' own APIs
(``/api/v1/rules``, ``/api/v2/status``). The rendered folder is a copy of the repo root's
prometheus/rules and alertmanager/ folders, so these are the configs users deploy.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from deploy_support import (
    BOOT_CONFIG,
    alertmanager_reading,
    apply_plan,
    loaded_groups,
    prometheus_reading,
    running_receivers,
    write_only,
)

from lookout_stack.deploy.model import AlertmanagerFile, DeployError, RuleFiles
from lookout_stack.deploy.targets import build_targets
from lookout_stack.deploy.targets.alertmanager import AlertmanagerFileTarget
from lookout_stack.deploy.targets.files import MANIFEST
from lookout_stack.deploy.targets.rendered import alertmanager_config, rule_files
from lookout_stack.deploy.targets.rulefiles import RuleFilesTarget
from stack_support import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    """A rendered folder: copies of the repo's Prometheus rules and Alertmanager config."""
    folder = tmp_path / "rendered"
    shutil.copytree(REPO / "prometheus" / "rules", folder / "prometheus" / "rules")
    shutil.copytree(REPO / "alertmanager", folder / "alertmanager")
    return folder


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real Prometheus reading rule files from an empty folder, reloadable over HTTP."""
    rules = tmp_path / "deployed-rules"
    with prometheus_reading(rules, tmp_path / "prometheus") as url:
        yield url, rules


def _repo_groups(rendered: Path) -> set[str]:
    files = rule_files(rendered, "prometheus")
    return {g["name"] for text in files.values() for g in yaml.safe_load(text)["groups"]}


def test_rule_files_create_then_in_sync(prometheus: tuple[str, Path], rendered: Path) -> None:
    """An empty folder plans one create per rule file; after apply Prometheus lists every group
    and a second plan is empty."""
    url, rules = prometheus
    target = RuleFilesTarget(
        RuleFiles(kind="files", directory=rules, reload_url=f"{url}/-/reload"),
        rule_files(rendered, "prometheus"),
        rendered / "prometheus" / "rules",
        reader="prometheus",
    )
    changes = target.plan()
    expected = sorted(rule_files(rendered, "prometheus"))
    assert [c.kind for c in changes] == ["create"] * len(expected)
    assert [c.object for c in changes] == [f"rule file {f} in {rules}" for f in expected]
    assert changes[0].diff.startswith(f"--- /dev/null\n+++ rendered/{expected[0]}\n")
    for change in changes:
        change.apply()
    target.finish()
    assert set(loaded_groups(url)) == _repo_groups(rendered)
    assert json.loads((rules / MANIFEST).read_text())["files"] == expected
    assert target.plan() == []


def test_one_changed_group_is_one_update(prometheus: tuple[str, Path], rendered: Path) -> None:
    """Changing one group's expression in the render plans exactly one file update, and the
    reloaded Prometheus evaluates the new expression."""
    url, rules = prometheus
    section = RuleFiles(kind="files", directory=rules, reload_url=f"{url}/-/reload")
    origin = rendered / "prometheus" / "rules"
    apply_plan(RuleFilesTarget(section, rule_files(rendered, "prometheus"), origin, "prometheus"))
    stack = origin / "stack.yml"
    text = stack.read_text()
    assert "        expr: up == 0\n" in text  # the first rule of the first group
    stack.write_text(text.replace("        expr: up == 0\n", "        expr: vector(42)\n", 1))
    group = yaml.safe_load(text)["groups"][0]
    target = RuleFilesTarget(section, rule_files(rendered, "prometheus"), origin, "prometheus")
    changes = target.plan()
    assert [(c.kind, c.object) for c in changes] == [("update", f"rule file stack.yml in {rules}")]
    assert "-        expr: up == 0\n+        expr: vector(42)\n" in changes[0].diff
    changes[0].apply()
    target.finish()
    loaded = loaded_groups(url)[group["name"]]["rules"]
    assert loaded[0]["query"] == "vector(42)"  # type: ignore[index]
    assert target.plan() == []


def test_refused_rule_file_names_it_and_keeps_rules(
    prometheus: tuple[str, Path], rendered: Path
) -> None:
    """A rule file Prometheus refuses raises DeployError naming the file and Prometheus'
    answer; the previous file is put back and the previous rules stay loaded."""
    url, rules = prometheus
    section = RuleFiles(kind="files", directory=rules, reload_url=f"{url}/-/reload")
    origin = rendered / "prometheus" / "rules"
    apply_plan(RuleFilesTarget(section, rule_files(rendered, "prometheus"), origin, "prometheus"))
    before = (rules / "stack.yml").read_text()
    loaded_before = loaded_groups(url)
    (origin / "stack.yml").write_text(
        "groups:\n  - name: broken\n    rules:\n      - record: x\n        expr: sum(\n"
    )
    target = RuleFilesTarget(section, rule_files(rendered, "prometheus"), origin, "prometheus")
    changes = target.plan()
    assert [c.object for c in changes] == [f"rule file stack.yml in {rules}"]
    changes[0].apply()
    with pytest.raises(DeployError) as raised:
        target.finish()
    message = str(raised.value)
    assert "stack.yml" in message
    assert "POST /-/reload answered 500" in message
    # promtool (Debian's, beside prometheus) says why: Prometheus' answer does not.
    assert "promtool check rules: stack.yml:" in message
    assert "could not parse expression" in message
    assert (rules / "stack.yml").read_text() == before
    assert set(loaded_groups(url)) == set(loaded_before)
    assert "broken" not in loaded_groups(url)


def test_only_files_it_wrote_are_deleted(prometheus: tuple[str, Path], rendered: Path) -> None:
    """A file the render dropped is deleted; a file someone else put in the folder is never
    touched, and Prometheus keeps its groups."""
    url, rules = prometheus
    section = RuleFiles(kind="files", directory=rules, reload_url=f"{url}/-/reload")
    origin = rendered / "prometheus" / "rules"
    foreign = rules / "team-owned.yml"
    foreign.write_text(
        "groups:\n  - name: team-owned\n    rules:\n      - record: t\n        expr: vector(1)\n"
    )
    apply_plan(RuleFilesTarget(section, rule_files(rendered, "prometheus"), origin, "prometheus"))
    (origin / "webhook-relay.yml").unlink()
    target = RuleFilesTarget(section, rule_files(rendered, "prometheus"), origin, "prometheus")
    changes = target.plan()
    assert [(c.kind, c.object) for c in changes] == [
        ("delete", f"rule file webhook-relay.yml in {rules}")
    ]
    assert changes[0].diff.splitlines()[1] == "+++ /dev/null"
    changes[0].apply()
    target.finish()
    assert not (rules / "webhook-relay.yml").exists()
    assert foreign.exists()
    assert "team-owned" in loaded_groups(url)
    assert target.plan() == []


RELOAD_RULES = "reload prometheus (running rules differ from the files)"


def test_rules_written_but_not_reloaded_plan_a_reload(
    prometheus: tuple[str, Path], rendered: Path
) -> None:
    """An apply killed after writing a renamed group (files current, Prometheus not) plans
    exactly one reload; applying it loads the files and the next plan is empty."""
    url, rules = prometheus
    section = RuleFiles(kind="files", directory=rules, reload_url=f"{url}/-/reload")
    origin = rendered / "prometheus" / "rules"
    apply_plan(RuleFilesTarget(section, rule_files(rendered, "prometheus"), origin, "prometheus"))
    stack = origin / "stack.yml"
    old = yaml.safe_load(stack.read_text())["groups"][0]["name"]
    stack.write_text(stack.read_text().replace(f"name: {old}\n", "name: renamed-group\n", 1))
    files = rule_files(rendered, "prometheus")
    assert write_only(RuleFilesTarget(section, files, origin, "prometheus")) == [
        f"update rule file stack.yml in {rules}"
    ]
    target = RuleFilesTarget(section, files, origin, "prometheus")
    changes = target.plan()
    assert [(c.kind, c.object) for c in changes] == [("update", RELOAD_RULES)]
    lines = changes[0].diff.splitlines()
    assert [ln.split()[-1] for ln in lines if ln.startswith(("-  ", "+  ")) and ":" in ln] == [
        f"{old}:",
        "renamed-group:",
    ]
    changes[0].apply()
    target.finish()
    assert "renamed-group" in loaded_groups(url)
    assert old not in loaded_groups(url)
    assert RuleFilesTarget(section, files, origin, "prometheus").plan() == []


def test_rule_file_deleted_but_not_reloaded_plans_a_reload(
    prometheus: tuple[str, Path], rendered: Path
) -> None:
    """An apply killed after deleting a rule file, whose groups Prometheus still runs, plans
    exactly one reload; applying it unloads them and the next plan is empty."""
    url, rules = prometheus
    section = RuleFiles(kind="files", directory=rules, reload_url=f"{url}/-/reload")
    origin = rendered / "prometheus" / "rules"
    apply_plan(RuleFilesTarget(section, rule_files(rendered, "prometheus"), origin, "prometheus"))
    dropped = {
        g["name"] for g in yaml.safe_load((origin / "webhook-relay.yml").read_text())["groups"]
    }
    (origin / "webhook-relay.yml").unlink()
    files = rule_files(rendered, "prometheus")
    assert write_only(RuleFilesTarget(section, files, origin, "prometheus")) == [
        f"delete rule file webhook-relay.yml in {rules}"
    ]
    target = RuleFilesTarget(section, files, origin, "prometheus")
    changes = target.plan()
    assert [(c.kind, c.object) for c in changes] == [("update", RELOAD_RULES)]
    changes[0].apply()
    assert not dropped & set(loaded_groups(url))
    assert RuleFilesTarget(section, files, origin, "prometheus").plan() == []


def test_unreachable_prometheus_plans_files_only(tmp_path: Path, rendered: Path) -> None:
    """With Prometheus down, plan compares the files alone (current files: nothing to do), and
    an apply of new files fails saying the reader could not be reached."""
    rules = tmp_path / "rules"
    section = RuleFiles(
        kind="files", directory=rules, reload_url=f"http://127.0.0.1:{free_port()}/-/reload"
    )
    origin = rendered / "prometheus" / "rules"
    files = rule_files(rendered, "prometheus")
    target = RuleFilesTarget(section, files, origin, "prometheus")
    for change in target.plan():
        change.apply()
    with pytest.raises(DeployError, match="the reader could not be reached to load the new files"):
        target.finish()
    assert not rules.exists() or not any(rules.glob("*.yml"))
    write_only(RuleFilesTarget(section, files, origin, "prometheus"))
    assert RuleFilesTarget(section, files, origin, "prometheus").plan() == []


# -- Alertmanager ------------------------------------------------------------------------------


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real Alertmanager started from a minimal config that is not the deploy's."""
    config = tmp_path / "alertmanager" / "alertmanager.yml"
    with alertmanager_reading(config, tmp_path / "am") as url:
        yield url, config


def test_alertmanager_file_applied_and_in_sync(
    alertmanager: tuple[str, Path], rendered: Path
) -> None:
    """The repo's Alertmanager config replaces a foreign file (said in the diff), is running
    after the reload (receivers in /api/v2/status), and a second plan is empty."""
    url, path = alertmanager
    config, templates = alertmanager_config(rendered)
    section = AlertmanagerFile(kind="file", path=path, reload_url=f"{url}/-/reload")
    target = AlertmanagerFileTarget(section, config, templates)
    changes = target.plan()
    assert [(c.kind, c.object) for c in changes] == [
        ("update", f"Alertmanager configuration file {path}")
    ]
    assert changes[0].diff.startswith("# alertmanager.yml was not written by lookout")
    assert running_receivers(url) == ["boot"]
    changes[0].apply()
    target.finish()
    assert running_receivers(url) == ["chat", "log", "page", "watchdog"]
    assert path.read_text() == config
    assert target.plan() == []


def test_refused_alertmanager_config_is_put_back(
    alertmanager: tuple[str, Path], rendered: Path
) -> None:
    """A configuration Alertmanager refuses raises DeployError with its answer; the previous
    file is back on disk and still running."""
    url, path = alertmanager
    bad = "route:\n  receiver: nowhere\nreceivers:\n  - name: boot\n"
    section = AlertmanagerFile(kind="file", path=path, reload_url=f"{url}/-/reload")
    target = AlertmanagerFileTarget(section, bad, {})
    for change in target.plan():
        change.apply()
    with pytest.raises(DeployError) as raised:
        target.finish()
    assert "POST /-/reload answered" in str(raised.value)
    assert "nowhere" in str(raised.value)
    assert path.read_text() == BOOT_CONFIG
    assert running_receivers(url) == ["boot"]


def test_alertmanager_written_but_not_reloaded_plans_a_reload(
    alertmanager: tuple[str, Path], rendered: Path
) -> None:
    """An apply killed after writing the configuration (file current, Alertmanager still on the
    boot one) plans exactly one reload; applying it runs the file and the next plan is empty."""
    url, path = alertmanager
    config, templates = alertmanager_config(rendered)
    section = AlertmanagerFile(kind="file", path=path, reload_url=f"{url}/-/reload")
    written = write_only(AlertmanagerFileTarget(section, config, templates))
    assert written[0] == f"update Alertmanager configuration file {path}"
    target = AlertmanagerFileTarget(section, config, templates)
    changes = target.plan()
    assert [(c.kind, c.object) for c in changes] == [
        ("update", "reload alertmanager (running configuration differs from the file)")
    ]
    assert "-root_receiver: boot\n" in changes[0].diff
    assert running_receivers(url) == ["boot"]
    changes[0].apply()
    target.finish()
    assert running_receivers(url) == ["chat", "log", "page", "watchdog"]
    assert AlertmanagerFileTarget(section, config, templates).plan() == []


class _Environment:
    """Just the sections build_targets reads."""

    def __init__(self, prometheus_rules: RuleFiles, alertmanager: AlertmanagerFile) -> None:
        self.grafana = None
        self.prometheus_rules = prometheus_rules
        self.loki_rules = None
        self.alertmanager = alertmanager


def test_build_targets_orders_alertmanager_before_rules(
    prometheus: tuple[str, Path], alertmanager: tuple[str, Path], rendered: Path
) -> None:
    """build_targets puts Alertmanager before the rules, and applying all of them in that
    order twice changes nothing the second time."""
    prom_url, rules = prometheus
    am_url, path = alertmanager
    environment = _Environment(
        RuleFiles(kind="files", directory=rules, reload_url=f"{prom_url}/-/reload"),
        AlertmanagerFile(kind="file", path=path, reload_url=f"{am_url}/-/reload"),
    )
    targets = build_targets(environment, rendered)
    assert [t.name for t in targets] == [
        f"alertmanager (file {path})",
        f"prometheus rules (files in {rules})",
    ]
    for target in targets:
        for change in target.plan():
            change.apply()
        target.finish()
    again = build_targets(environment, rendered)
    assert [c for t in again for c in t.plan()] == []


def test_rules_prometheus_does_not_read_are_reported(
    prometheus: tuple[str, Path], tmp_path: Path
) -> None:
    """A rule file the reader's `rule_files` glob misses (.yaml for a *.yml glob) reloads fine
    but is reported: Prometheus does not list its group."""
    url, rules = prometheus
    group = "groups:\n  - name: unseen\n    rules:\n      - record: u\n        expr: vector(1)\n"
    files = {"extra.yaml": group}
    section = RuleFiles(kind="files", directory=rules, reload_url=f"{url}/-/reload")
    target = RuleFilesTarget(section, files, tmp_path, "prometheus")
    for change in target.plan():
        change.apply()
    with pytest.raises(DeployError) as raised:
        target.finish()
    assert "GET /api/v1/rules does not list unseen (extra.yaml)" in str(raised.value)
    assert f"does the reader's `rule_files` glob cover {rules}?" in str(raised.value)


def test_alertmanager_templates_written_beside_and_loaded(
    alertmanager: tuple[str, Path],
) -> None:
    """Templates go to templates/ beside the config and load with it; a template that does not
    parse is refused and both files are put back."""
    url, path = alertmanager
    config = (
        f"templates:\n  - {path.parent}/templates/*.tmpl\n"
        "route:\n  receiver: with-template\nreceivers:\n  - name: with-template\n"
    )
    good = {"lookout.tmpl": '{{ define "lookout.title" }}{{ .CommonLabels.alertname }}{{ end }}\n'}
    section = AlertmanagerFile(kind="file", path=path, reload_url=f"{url}/-/reload")
    assert apply_plan(AlertmanagerFileTarget(section, config, good)) == [
        f"update Alertmanager configuration file {path}",
        f"create Alertmanager template templates/lookout.tmpl in {path.parent}",
    ]
    assert running_receivers(url) == ["with-template"]
    assert (path.parent / "templates" / "lookout.tmpl").read_text() == good["lookout.tmpl"]
    assert AlertmanagerFileTarget(section, config, good).plan() == []
    bad = {"lookout.tmpl": '{{ define "lookout.title" }}{{ .CommonLabels.alertname }\n'}
    target = AlertmanagerFileTarget(section, config.replace("with-template", "other"), bad)
    for change in target.plan():
        change.apply()
    with pytest.raises(DeployError, match="the reader refused the new files"):
        target.finish()
    assert (path.parent / "templates" / "lookout.tmpl").read_text() == good["lookout.tmpl"]
    assert running_receivers(url) == ["with-template"]
