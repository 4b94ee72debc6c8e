"""prometheus/rules/*.yml through Debian's `promtool check rules`."""

from __future__ import annotations

import re
from pathlib import Path

from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tools import failure_findings, program, run
from lookout_stack.validate.tree import outcome, skipped

__all__ = ["CHECK", "RULES_DIR", "PromtoolRules", "check_rule_file"]

RULES_DIR = "prometheus/rules"
_FOUND = re.compile(r"SUCCESS: (\d+) rules found")


def check_rule_file(root: Path, path: str) -> tuple[int, list[Finding]]:
    """Run `promtool check rules` on one file (relative to ``root``): (rules, findings)."""
    result = run([program("promtool"), "check", "rules", path], cwd=root)
    found = _FOUND.search(result.stdout) if result.returncode == 0 else None
    return (int(found.group(1)) if found else 0), failure_findings(result, path)


class PromtoolRules:
    """Each rule file parses and every expression is valid PromQL (promtool's own parser)."""

    name = "promtool-rules"

    def run(self, root: Path) -> CheckResult:
        """Check every rule file; a finding per promtool error, at its line."""
        files = sorted(p.relative_to(root).as_posix() for p in (root / RULES_DIR).glob("*.yml"))
        if not files:
            return skipped(self.name, f"no {RULES_DIR}/*.yml in {root}")
        rules, findings = 0, []
        for path in files:
            count, problems = check_rule_file(root, path)
            rules += count
            findings += problems
        return outcome(self.name, f"{len(files)} rule files, {rules} rules", findings)


CHECK = PromtoolRules()
