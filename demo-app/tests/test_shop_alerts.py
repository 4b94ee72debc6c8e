"""The shop's long-tail alerts (prometheus/rules/demo-shop-extras.yml) under Debian's promtool.

The stack's rule tests check every rule file's conventions once merged; this one keeps the
demo app's own alerts honest on their own: the rules load, their promtool unit tests pass,
and each alert has its runbook.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from demo_support import IN_CI

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "prometheus" / "rules" / "demo-shop-extras.yml"
TESTS = ROOT / "prometheus" / "tests" / "demo-shop-extras.test.yml"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not on PATH: install Debian's prometheus package"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.mark.parametrize(
    "args", [("check", "rules", str(RULES)), ("test", "rules", str(TESTS))], ids=["check", "test"]
)
def test_promtool_accepts_the_rules_and_their_tests(args: tuple[str, ...]) -> None:
    """promtool loads the rule file and its unit tests (firing and quiet cases) pass."""
    done = subprocess.run(
        [_promtool(), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_alert_has_its_runbook() -> None:
    """Every alert in the file links a runbook that exists, with the sections people look for."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    alerts = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    assert {a["alert"] for a in alerts} == {
        "ShopLowStock",
        "DeprecatedApiVersionTraffic",
        "OutboxBacklog",
    }
    for alert in alerts:
        runbook = ROOT / "docs" / "runbooks" / f"{alert['alert']}.md"
        assert alert["annotations"]["runbook_url"].endswith(f"/docs/runbooks/{runbook.name}")
        text = runbook.read_text(encoding="utf-8").lower()
        for section in ("## symptom", "## first checks", "## mitigation"):
            assert section in text, f"{runbook} has no '{section}' section"
