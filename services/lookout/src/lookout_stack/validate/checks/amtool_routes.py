"""alertmanager/route-tests.yaml: each case's labels reach exactly its receivers (amtool)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tools import program, run
from lookout_stack.validate.tree import absent, line_of, outcome, read_yaml, skipped

__all__ = ["CASES_FILE", "CHECK", "AmtoolRoutes", "route_case_finding"]

CONFIG_FILE = "alertmanager/alertmanager.yml"
CASES_FILE = "alertmanager/route-tests.yaml"


def route_case_finding(root: Path, index: int, case: dict[str, Any]) -> Finding | None:
    """Run `amtool config routes test` for the ``index``-th case; None when it passes."""
    labels = [f"{key}={value}" for key, value in case["labels"].items()]
    expected = ",".join(case["receivers"])
    argv: list[str | Path] = [
        program("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG_FILE}",
    ]
    result = run([*argv, f"--verify.receivers={expected}", *labels], cwd=root)
    if result.returncode == 0:
        return None
    line = line_of(root / CASES_FILE, f"$.routes[{index}]")
    said = " ".join((result.stdout + result.stderr).split())
    return Finding(
        f"{CASES_FILE}:{line}" if line else CASES_FILE,
        f"case {case.get('name')!r}: labels {labels} should reach {expected}; amtool: {said}",
    )


class AmtoolRoutes:
    """Every route case of route-tests.yaml, through Alertmanager's own routing code."""

    name = "amtool-routes"

    def run(self, root: Path) -> CheckResult:
        """Test every case; a finding per case that reaches other receivers, at its line."""
        if reason := absent(root, CONFIG_FILE) or absent(root, CASES_FILE):
            return skipped(self.name, reason)
        cases = read_yaml(root / CASES_FILE).get("routes") or []
        if not cases:
            return outcome(self.name, "", [Finding(CASES_FILE, "no `routes:` cases")])
        findings = [f for i, case in enumerate(cases) if (f := route_case_finding(root, i, case))]
        return outcome(self.name, f"{len(cases)} route cases", findings)


CHECK = AmtoolRoutes()
