"""Alert rules (Prometheus' and Loki's) cross-referenced with tests, runbooks and dashboards.

Each alert has a known severity, a summary, a description, a runbook_url to an existing
docs/runbooks/<AlertName>.md (with symptom, first-checks and mitigation sections) and a Grafana
dashboard link to a generated dashboard; promtool test cases show it firing (per severity) and
staying quiet; every rule file is loaded by a test file; recording rules are named
level:metric:operations; no alert name and severity is defined twice. Loki's alerts
(loki/rules/fake/*.yaml: the only tenant's folder when auth is off) follow the same annotation
and runbook rules.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tree import outcome, read_yaml, skipped

__all__ = [
    "ALWAYS_FIRING",
    "CHECK",
    "Alert",
    "AlertConventions",
    "Rules",
    "alert_problems",
    "always_firing_problem",
    "duplicate_problems",
    "firing_case_problem",
    "loki_alerts",
    "misplaced_loki_rule_files",
    "quiet_case_problem",
    "record_name_problem",
    "runbook_problems",
    "unloaded_problem",
]

RULES_DIR = "prometheus/rules"
LOKI_RULES_DIR = "loki/rules"
#: Loki's ruler reads <directory>/<tenant>/; with auth off the one tenant is `fake`.
LOKI_TENANT_DIR = "loki/rules/fake"
TESTS_DIR = "prometheus/tests"
RUNBOOKS_DIR = "docs/runbooks"
DASHBOARDS_DIR = "grafana/dashboards"
RUNBOOK_URL = "https://github.com/lookout-observability/lookout/blob/main/docs/runbooks/{}.md"
SEVERITIES = ("critical", "info", "warning")
DASHBOARD_PATH = re.compile(r"^/d/([a-z0-9-]+)(?:[/?].*)?$")
# Recording rule names: level:metric:operations (https://prometheus.io/docs/practices/rules/).
RECORD_NAME = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z0-9_]+$")
#: Alerts that fire by design at all times, so they have no quiet case: the reason, by name.
ALWAYS_FIRING = {"Watchdog": "the alerting pipeline's heartbeat fires at every evaluation"}
#: Sections every runbook has (matched in its headings, case-insensitively).
RUNBOOK_SECTIONS = ("symptom", "first checks", "mitigation")


@dataclass(frozen=True)
class Alert:
    """One alerting rule, where it is defined (``file`` relative to the root)."""

    file: str
    group: str
    rule: dict[str, Any]
    #: The rule's line in its file (0 when unknown).
    line: int = 0

    @property
    def name(self) -> str:
        """Return the alert's name."""
        return str(self.rule["alert"])

    @property
    def severity(self) -> str:
        """Return the alert's severity label ('' when it has none)."""
        return str((self.rule.get("labels") or {}).get("severity", ""))

    @property
    def where(self) -> str:
        """Return file, group and alert, for messages."""
        return f"{self.file} group {self.group!r} alert {self.name!r}"

    @property
    def place(self) -> str:
        """Return ``file:line`` (``file`` when the line is unknown), for findings."""
        return f"{self.file}:{self.line}" if self.line else self.file


#: libyaml's loader when PyYAML has it: the promtool test files are long.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load(path: Path) -> Any:
    return read_yaml(path)


def _rule_lines(path: Path) -> dict[tuple[int, int], int]:
    """Return {(group index, rule index): line} for a rule file (composed once)."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError:
        return {}
    lines: dict[tuple[int, int], int] = {}
    groups = _value(node, "groups")
    for g, group in enumerate(groups.value if isinstance(groups, yaml.SequenceNode) else []):
        rules = _value(group, "rules")
        for r, rule in enumerate(rules.value if isinstance(rules, yaml.SequenceNode) else []):
            lines[(g, r)] = rule.start_mark.line + 1
    return lines


def _value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if k.value == key), None)


@dataclass(frozen=True)
class Rules:
    """The rule files, their promtool test files and what they hold, read from a tree."""

    root: Path
    rule_files: list[Path]
    test_files: list[Path]
    alerts: list[Alert]
    records: list[str]
    #: Every alert_rule_test case, with "file" (its test file's name) and "test" added.
    cases: list[dict[str, Any]]
    #: The rule files each test file loads (resolved paths).
    loaded: dict[Path, list[Path]]

    @classmethod
    def load(cls, root: Path) -> Rules:
        """Read root/prometheus/rules/*.yml and root/prometheus/tests/*.test.yml."""
        rule_files = sorted((root / RULES_DIR).glob("*.yml"))
        test_files = sorted((root / TESTS_DIR).glob("*.test.yml"))
        alerts: list[Alert] = []
        records: set[str] = set()
        for path in rule_files:
            alerts += _alerts_in(root, path)
            for group in _load(path).get("groups") or []:
                records.update(str(r["record"]) for r in group.get("rules") or [] if "record" in r)
        tests = {path: _load(path) for path in test_files}
        cases = [
            {"file": path.name, "test": test.get("name", "?"), **case}
            for path, document in tests.items()
            for test in document.get("tests") or []
            for case in test.get("alert_rule_test") or []
        ]
        loaded = {
            path: [(path.parent / str(listed)).resolve() for listed in doc.get("rule_files") or []]
            for path, doc in tests.items()
        }
        return cls(root, rule_files, test_files, alerts, sorted(records), cases, loaded)

    def dashboard_uids(self) -> set[str]:
        """Return the uids of the generated dashboards (grafana/dashboards/*.json)."""
        return {
            str(json.loads(path.read_text(encoding="utf-8")).get("uid"))
            for path in (self.root / DASHBOARDS_DIR).glob("*.json")
        }

    def alert_names(self) -> list[str]:
        """Return each alert name once, sorted."""
        return sorted({alert.name for alert in self.alerts})

    def alert_levels(self) -> list[tuple[str, str]]:
        """Return each (alert name, severity) once, sorted."""
        return sorted({(alert.name, alert.severity) for alert in self.alerts})


def _alerts_in(root: Path, path: Path) -> list[Alert]:
    """Return the alerting rules of one rule file, each with its line."""
    lines = _rule_lines(path)
    file = path.relative_to(root).as_posix()
    return [
        Alert(file, group["name"], rule, lines.get((g, r), 0))
        for g, group in enumerate(_load(path).get("groups") or [])
        for r, rule in enumerate(group.get("rules") or [])
        if "alert" in rule
    ]


def loki_alerts(root: Path) -> list[Alert]:
    """Return the alerting rules of every Loki rule file under root/loki/rules."""
    return [a for p in sorted((root / LOKI_RULES_DIR).rglob("*.yaml")) for a in _alerts_in(root, p)]


def misplaced_loki_rule_files(root: Path) -> list[str]:
    """Return the Loki rule files outside loki/rules/fake/ (the ruler never loads them)."""
    return [
        path.relative_to(root).as_posix()
        for path in sorted((root / LOKI_RULES_DIR).rglob("*.yaml"))
        if path.parent != root / LOKI_TENANT_DIR
    ]


def unloaded_problem(rules: Rules, path: Path) -> str | None:
    """Return why no promtool test file loads the rule file ``path``, None when one does."""
    if any(path.resolve() in listed for listed in rules.loaded.values()):
        return None
    return (
        f"no promtool test file loads it; add {TESTS_DIR}/{path.stem}.test.yml with "
        f"rule_files: [../rules/{path.name}]"
    )


def record_name_problem(record: str) -> str | None:
    """Return why a recording rule's name is not level:metric:operations, None when it is."""
    if RECORD_NAME.match(record):
        return None
    return (
        f"recording rule {record!r}: name it level:metric:operations, e.g. "
        "job:http_server_requests:rate5m"
    )


def alert_problems(alert: Alert, dashboard_uids: set[str]) -> list[str]:
    """Return what the alert lacks: a known severity, summary, description, runbook, dashboard."""
    problems = []
    if alert.severity not in SEVERITIES:
        problems.append(
            f"labels.severity is {alert.severity!r}, should be one of {list(SEVERITIES)}"
        )
    annotations = alert.rule.get("annotations") or {}
    for key in ("summary", "description"):
        if not str(annotations.get(key, "")).strip():
            problems.append(f"annotation {key} is missing")
    expected_url = RUNBOOK_URL.format(alert.name)
    if annotations.get("runbook_url") != expected_url:
        problems.append(
            f"runbook_url should be {expected_url}, got {annotations.get('runbook_url')!r}"
        )
    dashboard = str(annotations.get("dashboard", ""))
    found = DASHBOARD_PATH.match(dashboard)
    if not (found and found.group(1) in dashboard_uids):
        problems.append(
            f"dashboard should be a Grafana path /d/<uid> with uid one of "
            f"{sorted(dashboard_uids)}, got {dashboard!r}"
        )
    return problems


def runbook_problems(root: Path, name: str) -> list[str]:
    """Return what docs/runbooks/<name>.md lacks: the file, or its section headings."""
    path = f"{RUNBOOKS_DIR}/{name}.md"
    if not (root / path).is_file():
        return [f"alert {name}: write its runbook at {path}"]
    headings = [
        line.lstrip("#").strip().lower()
        for line in (root / path).read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    ]
    missing = [s for s in RUNBOOK_SECTIONS if not any(s in h for h in headings)]
    return [f"{path}: add section heading(s) for {missing}"] if missing else []


def firing_case_problem(rules: Rules, name: str, severity: str) -> str | None:
    """Return why no promtool case expects the alert firing at ``severity``, None if one does."""
    for case in rules.cases:
        if case.get("alertname") != name:
            continue
        for expected in case.get("exp_alerts") or []:
            if str((expected.get("exp_labels") or {}).get("severity", "")) == severity:
                return None
    return (
        f"alert {name} (severity {severity}): no promtool case in {TESTS_DIR}/*.test.yml "
        "expects it firing; add an alert_rule_test with exp_alerts"
    )


def quiet_case_problem(rules: Rules, name: str) -> str | None:
    """Return why no promtool case expects the alert quiet, None when one does (or exempt)."""
    if name in ALWAYS_FIRING:
        return None
    if any(c.get("alertname") == name and not c.get("exp_alerts") for c in rules.cases):
        return None
    return (
        f"alert {name}: no promtool case in {TESTS_DIR}/*.test.yml expects it quiet; add an "
        "alert_rule_test with `exp_alerts: []` just below its threshold or `for`"
    )


def duplicate_problems(rules: Rules) -> list[str]:
    """Return one problem per alert name and severity defined more than once."""
    seen: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    for alert in rules.alerts:
        seen[(alert.name, alert.severity)].append(alert.where)
    return [
        f"alert {name} (severity {severity}) is defined more than once: {where}"
        for (name, severity), where in sorted(seen.items())
        if len(where) > 1
    ]


def always_firing_problem(rules: Rules, name: str) -> str | None:
    """Return why an alert exempt from the quiet case is not a constant vector(1), or None."""
    found = [alert.rule for alert in rules.alerts if alert.name == name]
    if not found:
        return f"ALWAYS_FIRING names {name}, which no rule file defines: drop it from the list"
    if any(str(rule.get("expr", "")).strip() != "vector(1)" for rule in found):
        return f"{name} is exempt from a quiet test case, but its expr is not vector(1)"
    return None


class AlertConventions:
    """The conventions every alert and recording rule follows (no tool: files only)."""

    name = "alert-conventions"

    def run(self, root: Path) -> CheckResult:
        """Cross-reference rules, tests, runbooks and dashboards; a finding per gap."""
        rules = Rules.load(root)
        loki = loki_alerts(root)
        if not rules.rule_files and not loki:
            return skipped(self.name, f"no {RULES_DIR}/*.yml or {LOKI_RULES_DIR} in {root}")
        uids = rules.dashboard_uids()
        findings = [
            Finding(f"{RULES_DIR}/{path.name}", problem)
            for path in rules.rule_files
            if (problem := unloaded_problem(rules, path))
        ]
        findings += [
            Finding(RULES_DIR, problem)
            for record in rules.records
            if (problem := record_name_problem(record))
        ]
        findings += [
            Finding(alert.place, f"alert {alert.name!r}: {problem}")
            for alert in rules.alerts
            for problem in alert_problems(alert, uids)
        ]
        by_name = {alert.name: alert.place for alert in rules.alerts}
        for name in rules.alert_names():
            findings += [Finding(by_name[name], p) for p in runbook_problems(root, name)]
            if problem := quiet_case_problem(rules, name):
                findings.append(Finding(TESTS_DIR, problem))
        for name, severity in rules.alert_levels():
            if problem := firing_case_problem(rules, name, severity):
                findings.append(Finding(TESTS_DIR, problem))
        findings += [Finding(RULES_DIR, problem) for problem in duplicate_problems(rules)]
        # Only the exempt alerts this tree defines: a rendered tree may hold a subset of rules.
        findings += [
            Finding(by_name[name], problem)
            for name in sorted(ALWAYS_FIRING.keys() & by_name.keys())
            if (problem := always_firing_problem(rules, name))
        ]
        findings += [
            Finding(path, f"outside {LOKI_TENANT_DIR}/: Loki's ruler never loads it")
            for path in misplaced_loki_rule_files(root)
        ]
        for alert in loki:
            findings += [
                Finding(alert.place, f"alert {alert.name!r}: {problem}")
                for problem in alert_problems(alert, uids) + runbook_problems(root, alert.name)
            ]
        detail = (
            f"{len(rules.alerts)} alerts, {len(rules.records)} recording rules, "
            f"{len(loki)} Loki alerts"
        )
        return outcome(self.name, detail, findings)


CHECK = AlertConventions()
