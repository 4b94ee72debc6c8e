"""Alert rules: promtool accepts them and their unit tests pass; every alert has a runbook."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from monitor_support import REPO, require_binary

RULES = REPO / "prometheus" / "rules" / "synthetic-monitor.yml"
TESTS = REPO / "prometheus" / "tests" / "synthetic-monitor.test.yml"


def alerts() -> list[dict[str, object]]:
    """Return every alerting rule of the monitor's rule file."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@pytest.mark.integration
def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    """`promtool check rules` and `promtool test rules` (Debian's 2.42) both pass."""
    promtool = require_binary("promtool", "prometheus")
    for command in (["check", "rules", str(RULES)], ["test", "rules", str(TESTS)]):
        done = subprocess.run(
            [promtool, *command], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_severity_annotations_and_a_runbook_file() -> None:
    """Each alert: severity, summary, description, dashboard, and a runbook that exists."""
    names = set()
    for rule in alerts():
        labels, notes = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict) and isinstance(notes, dict)
        assert labels["severity"] in {"critical", "warning", "info"}
        assert {"summary", "description", "runbook_url", "dashboard"} <= set(notes)
        name = str(rule["alert"])
        names.add(name)
        assert str(notes["runbook_url"]).endswith(f"/docs/runbooks/{name}.md")
        assert (REPO / "docs" / "runbooks" / f"{name}.md").is_file()
    assert names == {
        "SyntheticJourneyFailing",
        "SyntheticJourneyFlaky",
        "SyntheticJourneySLOBurnRateHigh",
        "SyntheticCertificateExpiringSoon",
        "SyntheticMonitorConfigRejected",
    }


def test_every_alert_is_exercised_by_the_unit_tests() -> None:
    """The promtool test file names each alert at least once, firing and quiet."""
    text = TESTS.read_text(encoding="utf-8")
    for rule in alerts():
        assert f"alertname: {rule['alert']}" in text
