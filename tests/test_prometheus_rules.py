"""prometheus/rules/*.yml and their promtool unit tests in prometheus/tests/*.test.yml.

Every rule file, including those that later changes add, is checked by Debian's promtool
(`check rules`, `test rules`) and by the project's conventions: each alert has a severity,
a summary, a description, a runbook_url to an existing docs/runbooks/<AlertName>.md, a
Grafana dashboard link, and promtool test cases that show it firing (per severity) and
staying quiet. Adding an alert without its tests or runbook fails here.

promtool must be on PATH (Debian's `prometheus` package): with CI=true a missing promtool
fails the tests that need it, elsewhere they skip naming it.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from lookout_stack.validate.checks.promtool_rules import check_rule_file
from lookout_stack.validate.checks.promtool_tests import run_test_file
from stack_support import require_binary

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "prometheus" / "rules"
TESTS_DIR = ROOT / "prometheus" / "tests"
RUNBOOKS_DIR = ROOT / "docs" / "runbooks"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
TEST_FILES = sorted(TESTS_DIR.glob("*.test.yml"))
RUNBOOK_URL = "https://github.com/lookout-observability/lookout/blob/main/docs/runbooks/{}.md"
SEVERITIES = {"critical", "warning", "info"}
# The uids of the dashboards Grafana provisions: those built into grafana/dashboards/.
DASHBOARD_UIDS = {
    json.loads(path.read_text(encoding="utf-8"))["uid"]
    for path in (ROOT / "grafana" / "dashboards").glob("*.json")
}
DASHBOARD_PATH = re.compile(r"^/d/([a-z0-9-]+)(?:[/?].*)?$")
# Recording rule names: level:metric:operations (https://prometheus.io/docs/practices/rules/).
RECORD_NAME = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z0-9_]+$")
# Alerts that fire by design at all times, so they have no quiet case: the reason, by name.
ALWAYS_FIRING = {"Watchdog": "the alerting pipeline's heartbeat fires at every evaluation"}
# Sections every runbook has (matched in its headings, case-insensitively).
RUNBOOK_SECTIONS = ("symptom", "first checks", "mitigation")


@dataclass(frozen=True)
class Alert:
    """One alerting rule, where it is defined."""

    file: Path
    group: str
    rule: dict[str, Any]

    @property
    def name(self) -> str:
        """Return the alert's name."""
        name: str = self.rule["alert"]
        return name

    @property
    def severity(self) -> str:
        """Return the alert's severity label ('' when it has none)."""
        return str(self.rule.get("labels", {}).get("severity", ""))

    @property
    def where(self) -> str:
        """Return file and group, for messages."""
        return f"{self.file.relative_to(ROOT)} group {self.group!r} alert {self.name!r}"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules() -> list[tuple[Path, str, dict[str, Any]]]:
    found = []
    for path in RULE_FILES:
        for group in (_load(path) or {}).get("groups", []):
            for rule in group.get("rules", []):
                found.append((path, group["name"], rule))
    return found


RULES = _rules()
ALERTS = [Alert(path, group, rule) for path, group, rule in RULES if "alert" in rule]
RECORDS = sorted({rule["record"] for _, _, rule in RULES if "record" in rule})
ALERT_NAMES = sorted({alert.name for alert in ALERTS})
ALERT_LEVELS = sorted({(alert.name, alert.severity) for alert in ALERTS})
QUIET_NAMES = [name for name in ALERT_NAMES if name not in ALWAYS_FIRING]


def _test_cases() -> list[dict[str, Any]]:
    """Return every alert_rule_test case of every promtool test file, with its file."""
    cases = []
    for path in TEST_FILES:
        for test in (_load(path) or {}).get("tests", []):
            for case in test.get("alert_rule_test", []) or []:
                cases.append({"file": path, "test": test.get("name", "?"), **case})
    return cases


CASES = _test_cases()


def require_promtool() -> str:
    """Return promtool's path; fail under CI=true, else skip, when it is not on PATH."""
    return str(require_binary("promtool"))


def test_there_are_rule_files_and_unit_tests() -> None:
    """The globs find rule files and promtool test files (an empty glob would pass vacuously)."""
    assert RULE_FILES, f"no rule files in {RULES_DIR}"
    assert TEST_FILES, f"no promtool test files (*.test.yml) in {TESTS_DIR}"
    assert ALERTS, f"no alerting rules in {RULES_DIR}"


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.name for p in RULE_FILES])
def test_promtool_accepts_the_rule_file(path: Path) -> None:
    """promtool check rules accepts the rule file (lookout validate's promtool-rules check)."""
    require_promtool()
    rules, findings = check_rule_file(ROOT, path.relative_to(ROOT).as_posix())
    assert not findings, f"promtool check rules {path}: {findings}"
    assert rules > 0, f"promtool found no rules in {path}"


@pytest.mark.parametrize("path", TEST_FILES, ids=[p.name for p in TEST_FILES])
def test_promtool_unit_tests_pass(path: Path) -> None:
    """promtool test rules passes every case of the test file (lookout validate's check)."""
    require_promtool()
    findings = run_test_file(ROOT, path.relative_to(ROOT).as_posix())
    assert not findings, f"promtool test rules {path}: {findings}"


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.name for p in RULE_FILES])
def test_rule_file_is_loaded_by_a_unit_test_file(path: Path) -> None:
    """Some prometheus/tests/*.test.yml lists the rule file in its rule_files."""
    loaders = [
        test_file.name
        for test_file in TEST_FILES
        for listed in (_load(test_file) or {}).get("rule_files", [])
        if (test_file.parent / listed).resolve() == path.resolve()
    ]
    assert loaders, (
        f"{path.relative_to(ROOT)}: no promtool test file loads it; add "
        f"prometheus/tests/{path.stem}.test.yml with rule_files: [../rules/{path.name}]"
    )


@pytest.mark.parametrize("record", RECORDS, ids=RECORDS)
def test_recording_rule_name_follows_level_metric_operations(record: str) -> None:
    """Each recording rule is named level:metric:operations."""
    assert RECORD_NAME.match(record), (
        f"recording rule {record!r}: name it level:metric:operations, e.g. "
        "job:http_server_requests:rate5m"
    )


@pytest.mark.parametrize("alert", ALERTS, ids=[f"{a.name}-{a.severity}" for a in ALERTS])
def test_alert_has_severity_summary_description_runbook_and_dashboard(alert: Alert) -> None:
    """Each alert has a known severity and the four annotations that people follow."""
    assert alert.severity in SEVERITIES, (
        f"{alert.where}: labels.severity is {alert.severity!r}, "
        f"should be one of {sorted(SEVERITIES)}"
    )
    annotations = alert.rule.get("annotations", {})
    for key in ("summary", "description"):
        assert str(annotations.get(key, "")).strip(), f"{alert.where}: annotation {key} is missing"
    expected_url = RUNBOOK_URL.format(alert.name)
    assert annotations.get("runbook_url") == expected_url, (
        f"{alert.where}: runbook_url should be {expected_url}, "
        f"got {annotations.get('runbook_url')!r}"
    )
    dashboard = str(annotations.get("dashboard", ""))
    found = DASHBOARD_PATH.match(dashboard)
    assert found and found.group(1) in DASHBOARD_UIDS, (
        f"{alert.where}: dashboard should be a Grafana path /d/<uid> with uid one of "
        f"{sorted(DASHBOARD_UIDS)}, got {dashboard!r}"
    )


@pytest.mark.parametrize("name", ALERT_NAMES, ids=ALERT_NAMES)
def test_alert_has_a_runbook(name: str) -> None:
    """docs/runbooks/<AlertName>.md exists, with symptom, first-checks and mitigation parts."""
    path = RUNBOOKS_DIR / f"{name}.md"
    assert path.is_file(), f"alert {name}: write its runbook at {path.relative_to(ROOT)}"
    headings = [
        line.lstrip("#").strip().lower()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    ]
    missing = [s for s in RUNBOOK_SECTIONS if not any(s in h for h in headings)]
    assert not missing, f"{path.relative_to(ROOT)}: add section heading(s) for {missing}"


@pytest.mark.parametrize(
    ("name", "severity"), ALERT_LEVELS, ids=[f"{n}-{s}" for n, s in ALERT_LEVELS]
)
def test_alert_has_a_unit_test_case_where_it_fires(name: str, severity: str) -> None:
    """Some promtool case expects the alert firing at this severity (its exp_alerts)."""
    firing = [
        f"{case['file'].name}: {case['test']}"
        for case in CASES
        if case.get("alertname") == name
        for expected in case.get("exp_alerts") or []
        if str((expected.get("exp_labels") or {}).get("severity", "")) == severity
    ]
    assert firing, (
        f"alert {name} (severity {severity}): no promtool case in prometheus/tests/*.test.yml "
        "expects it firing; add an alert_rule_test with exp_alerts"
    )


@pytest.mark.parametrize("name", QUIET_NAMES, ids=QUIET_NAMES)
def test_alert_has_a_unit_test_case_where_it_stays_quiet(name: str) -> None:
    """Some promtool case expects the alert not firing (exp_alerts empty), near its threshold."""
    quiet = [case for case in CASES if case.get("alertname") == name and not case.get("exp_alerts")]
    assert quiet, (
        f"alert {name}: no promtool case in prometheus/tests/*.test.yml expects it quiet; "
        "add an alert_rule_test with `exp_alerts: []` just below its threshold or `for`"
    )


def test_alert_names_and_severities_are_unique() -> None:
    """No two rules share an alert name and severity (each level is defined once)."""
    seen: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    for alert in ALERTS:
        seen[(alert.name, alert.severity)].append(alert.where)
    twice = {key: where for key, where in seen.items() if len(where) > 1}
    assert not twice, f"alerts defined more than once: {twice}"


@pytest.mark.parametrize("name", sorted(ALWAYS_FIRING), ids=sorted(ALWAYS_FIRING))
def test_always_firing_exemption_names_a_constant_alert(name: str) -> None:
    """An alert exempt from the quiet case exists and is constant (vector(1)): never quiet."""
    rules = [alert.rule for alert in ALERTS if alert.name == name]
    assert rules, f"ALWAYS_FIRING names {name}, which no rule file defines: drop it from the list"
    assert all(str(rule["expr"]).strip() == "vector(1)" for rule in rules), (
        f"{name} is exempt from a quiet test case, but its expr is not vector(1)"
    )
