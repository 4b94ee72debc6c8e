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

from pathlib import Path

import pytest

from lookout_stack.validate.checks import alert_conventions as conventions
from lookout_stack.validate.checks.promtool_rules import check_rule_file
from lookout_stack.validate.checks.promtool_tests import run_test_file
from stack_support import require_binary

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "prometheus" / "rules"
TESTS_DIR = ROOT / "prometheus" / "tests"
# The conventions live in `lookout validate`'s alert-conventions check (one implementation);
# the tests parametrise over what it reads, so a failure names the alert.
RULES = conventions.Rules.load(ROOT)
RULE_FILES = RULES.rule_files
TEST_FILES = RULES.test_files
ALERTS = RULES.alerts
RECORDS = RULES.records
ALERT_NAMES = RULES.alert_names()
ALERT_LEVELS = RULES.alert_levels()
QUIET_NAMES = [name for name in ALERT_NAMES if name not in conventions.ALWAYS_FIRING]


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
    problem = conventions.unloaded_problem(RULES, path)
    assert problem is None, f"{path.relative_to(ROOT)}: {problem}"


@pytest.mark.parametrize("record", RECORDS, ids=RECORDS)
def test_recording_rule_name_follows_level_metric_operations(record: str) -> None:
    """Each recording rule is named level:metric:operations."""
    assert conventions.record_name_problem(record) is None, conventions.record_name_problem(record)


@pytest.mark.parametrize("alert", ALERTS, ids=[f"{a.name}-{a.severity}" for a in ALERTS])
def test_alert_has_severity_summary_description_runbook_and_dashboard(
    alert: conventions.Alert,
) -> None:
    """Each alert has a known severity and the four annotations that people follow."""
    problems = conventions.alert_problems(alert, RULES.dashboard_uids())
    assert not problems, f"{alert.where}: {problems}"


@pytest.mark.parametrize("name", ALERT_NAMES, ids=ALERT_NAMES)
def test_alert_has_a_runbook(name: str) -> None:
    """docs/runbooks/<AlertName>.md exists, with symptom, first-checks and mitigation parts."""
    problems = conventions.runbook_problems(ROOT, name)
    assert not problems, problems


@pytest.mark.parametrize(
    ("name", "severity"), ALERT_LEVELS, ids=[f"{n}-{s}" for n, s in ALERT_LEVELS]
)
def test_alert_has_a_unit_test_case_where_it_fires(name: str, severity: str) -> None:
    """Some promtool case expects the alert firing at this severity (its exp_alerts)."""
    problem = conventions.firing_case_problem(RULES, name, severity)
    assert problem is None, problem


@pytest.mark.parametrize("name", QUIET_NAMES, ids=QUIET_NAMES)
def test_alert_has_a_unit_test_case_where_it_stays_quiet(name: str) -> None:
    """Some promtool case expects the alert not firing (exp_alerts empty), near its threshold."""
    problem = conventions.quiet_case_problem(RULES, name)
    assert problem is None, problem


def test_alert_names_and_severities_are_unique() -> None:
    """No two rules share an alert name and severity (each level is defined once)."""
    assert not conventions.duplicate_problems(RULES), conventions.duplicate_problems(RULES)


@pytest.mark.parametrize(
    "name", sorted(conventions.ALWAYS_FIRING), ids=sorted(conventions.ALWAYS_FIRING)
)
def test_always_firing_exemption_names_a_constant_alert(name: str) -> None:
    """An alert exempt from the quiet case exists and is constant (vector(1)): never quiet."""
    problem = conventions.always_firing_problem(RULES, name)
    assert problem is None, problem
