"""Deploy-target pieces without a server: Grafana's interpolation, durations, the rendered
folder's errors, file ownership, and the order build_targets returns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deploy_support import apply_plan

from lookout_stack.deploy.model import (
    AlertmanagerApi,
    AlertmanagerFile,
    DeployError,
    GrafanaSection,
    RuleFiles,
    RulerApi,
)
from lookout_stack.deploy.targets import build_targets
from lookout_stack.deploy.targets.files import MANIFEST, OwnedDirectory
from lookout_stack.deploy.targets.provisioning import describe_references, expand
from lookout_stack.deploy.targets.reload import ReloadRefused
from lookout_stack.deploy.targets.rendered import dashboards, rule_files
from lookout_stack.deploy.targets.rulefiles import RuleFilesTarget
from lookout_stack.deploy.targets.textdiff import canonical_duration
from stack_support import free_port

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("raw", "expanded"),
    [
        ("http://$HOST:3100", "http://loki.internal:3100"),
        ("${HOST}/x", "loki.internal/x"),
        ("$${__value.raw}", "${__value.raw}"),
        ("$$HOST", "$HOST"),
        ("$__env{TOKEN}", "tok-123"),
        ("Bearer $__env{TOKEN}", "Bearer tok-123"),
        ("price: 5$", "price: 5$"),
        ("plain", "plain"),
    ],
    ids=[
        "dollar-name",
        "braces",
        "escaped-macro",
        "escaped-name",
        "env-expander",
        "env-in-text",
        "trailing-dollar",
        "plain",
    ],
)
def test_grafana_interpolation(raw: str, expanded: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Provisioned strings expand as Grafana's provisioning does ($$, $VAR, ${VAR}, $__env{})."""
    monkeypatch.setenv("HOST", "loki.internal")
    monkeypatch.setenv("TOKEN", "tok-123")
    assert expand(raw, "f.yaml: data source x.url") == expanded


def test_file_expander_reads_and_trims(tmp_path: Path) -> None:
    """$__file{path} is the file's content without surrounding whitespace."""
    secret = tmp_path / "password"
    secret.write_text("  hunter2\n")
    assert expand(f"$__file{{{secret}}}", "where") == "hunter2"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("$MISSING_VAR", "where: environment variable MISSING_VAR is not set"),
        ("$__env{MISSING_VAR}", "where: environment variable MISSING_VAR is not set"),
        ("$__file{/nonexistent/secret}", "where: cannot read secret file /nonexistent/secret"),
        ("$__vault{kv/x}", "where: the ${__vault} expander is not supported here"),
    ],
    ids=["unset-var", "unset-env-expander", "missing-file", "vault"],
)
def test_interpolation_errors_name_field_and_source(raw: str, message: str) -> None:
    """A reference that cannot be resolved is an error naming the field and the source."""
    with pytest.raises(DeployError) as raised:
        expand(raw, "where")
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("$__env{PASS}", "<secret from env PASS>"),
        ("$__file{/run/secrets/p}", "<secret from file /run/secrets/p>"),
        ("${PASS}", "<secret from env PASS>"),
        ("literal", "<secret (literal value)>"),
    ],
    ids=["env", "file", "plain-var", "literal"],
)
def test_secret_descriptions_never_hold_values(raw: str, safe: str) -> None:
    """A secure value is described by where it comes from."""
    assert describe_references(raw) == safe


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("90s", "1m30s"),
        ("120s", "2m"),
        ("1h", "1h"),
        ("24h", "1d"),
        ("0", "0s"),
        ("5m", "5m"),
        ("not-a-duration", "not-a-duration"),
    ],
)
def test_durations_print_as_prometheus_does(raw: str, canonical: str) -> None:
    """Durations compare in Prometheus' canonical form, as the rulers print them back."""
    assert canonical_duration(raw) == canonical


def test_dashboard_without_uid_is_named(tmp_path: Path) -> None:
    """A rendered dashboard without a uid fails naming its file."""
    folder = tmp_path / "grafana" / "dashboards"
    folder.mkdir(parents=True)
    (folder / "x.json").write_text(json.dumps({"title": "X"}))
    with pytest.raises(DeployError, match=r"x\.json: the dashboard has no `uid`"):
        dashboards(tmp_path)


def test_bad_rule_yaml_names_file_and_line(tmp_path: Path) -> None:
    """A rule file that is not YAML fails naming the file and line, before any plan."""
    folder = tmp_path / "prometheus" / "rules"
    folder.mkdir(parents=True)
    (folder / "bad.yml").write_text("groups:\n  - name: a\n    rules: [\n")
    section = RuleFiles(kind="files", directory=tmp_path / "out")
    with pytest.raises(DeployError, match=r"bad\.yml:\d+: not valid YAML"):
        RuleFilesTarget(section, rule_files(tmp_path, "prometheus"), folder, "prometheus")


def test_loki_rule_files_keep_tenant_folder_without_reload(tmp_path: Path) -> None:
    """Loki's rule files keep their tenant sub-folder; with no reload URL nothing is called
    and the next plan is empty."""
    out = tmp_path / "loki-rules"
    section = RuleFiles(kind="files", directory=out)
    files = rule_files(REPO, "loki")
    target = RuleFilesTarget(section, files, REPO / "loki" / "rules", "loki")
    assert apply_plan(target) == [f"create rule file {f} in {out}" for f in sorted(files)]
    assert (out / "fake" / "logs.yaml").read_text() == (
        REPO / "loki/rules/fake/logs.yaml"
    ).read_text()
    assert json.loads((out / MANIFEST).read_text())["files"] == sorted(files)
    assert target.plan() == []


def test_corrupt_manifest_stops_the_plan(tmp_path: Path) -> None:
    """An unreadable ownership manifest is an error naming it, not a guess at what to delete."""
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(DeployError, match=rf"{MANIFEST}"):
        OwnedDirectory(tmp_path, "t").plan({}, str)


def test_rollback_restores_written_and_deleted_files(tmp_path: Path) -> None:
    """Rollback puts back the previous content of a rewritten file and a deleted one."""
    folder = OwnedDirectory(tmp_path, "t")
    apply_changes = folder.plan({"a.yml": "a1\n", "b.yml": "b1\n"}, str)
    for change in apply_changes:
        change.apply()
    folder.commit()
    for change in folder.plan({"a.yml": "a2\n"}, str):
        change.apply()
    assert not (tmp_path / "b.yml").exists()
    folder.rollback()
    assert (tmp_path / "a.yml").read_text() == "a1\n"
    assert (tmp_path / "b.yml").read_text() == "b1\n"
    assert json.loads((tmp_path / MANIFEST).read_text())["files"] == ["a.yml", "b.yml"]


class _Environment:
    """Every target section, all API kinds (nothing is contacted until plan())."""

    grafana = GrafanaSection(url="http://127.0.0.1:9")
    prometheus_rules = RulerApi(url="http://127.0.0.1:9", kind="mimir")
    loki_rules = RulerApi(url="http://127.0.0.1:9", kind="loki")
    alertmanager = AlertmanagerApi(url="http://127.0.0.1:9", kind="mimir")


def test_build_targets_safe_order() -> None:
    """Targets come in apply order: Alertmanager, Prometheus rules, Loki rules, Grafana."""
    assert [t.name for t in build_targets(_Environment(), REPO)] == [
        "alertmanager (mimir API)",
        "prometheus rules (mimir ruler API)",
        "loki rules (loki ruler API)",
        "grafana",
    ]


def test_ruler_of_the_wrong_kind_is_refused() -> None:
    """A Loki ruler given for Prometheus rules is an error naming the section."""

    class Swapped(_Environment):
        prometheus_rules = RulerApi(url="http://127.0.0.1:9", kind="loki")

    with pytest.raises(DeployError, match="prometheus_rules: a ruler API of kind 'mimir'"):
        build_targets(Swapped(), REPO)


def test_unreachable_reader_puts_files_back_and_says_so(tmp_path: Path) -> None:
    """A reload URL nobody answers restores the folder and raises ReloadRefused saying the
    reader could not be reached (not that it refused the files)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yml").write_text("groups: []\n", encoding="utf-8")
    group = "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: vector(1)\n"
    url = f"http://127.0.0.1:{free_port()}/-/reload"
    section = RuleFiles(kind="files", directory=rules, reload_url=url)
    target = RuleFilesTarget(section, {"a.yml": group}, tmp_path, "prometheus")
    for change in target.plan():
        change.apply()
    with pytest.raises(ReloadRefused) as raised:
        target.finish()
    assert "could not be reached" in str(raised.value)
    assert "refused" not in str(raised.value)
    assert (rules / "a.yml").read_text(encoding="utf-8") == "groups: []\n"


def test_two_file_targets_in_one_folder_are_refused(tmp_path: Path) -> None:
    """Rule files and the Alertmanager file in one folder would share one ownership manifest,
    so each target's plan would delete the other's files: refused, naming both sections."""
    shared = tmp_path / "shared"

    class Shared:
        grafana = None
        prometheus_rules = RuleFiles(kind="files", directory=shared)
        loki_rules = None
        alertmanager = AlertmanagerFile(kind="file", path=shared / "alertmanager.yml")

    with pytest.raises(DeployError) as raised:
        build_targets(Shared(), REPO)
    assert "alertmanager.path and prometheus_rules.directory" in str(raised.value)
    assert str(shared) in str(raised.value)
