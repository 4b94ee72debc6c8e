"""prometheus/tests/*.test.yml: the rules' unit tests, run by Debian's `promtool test rules`."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tools import program, run
from lookout_stack.validate.tree import outcome, skipped

__all__ = ["CHECK", "TESTS_DIR", "PromtoolTests", "run_test_file"]

TESTS_DIR = "prometheus/tests"
#: How much of promtool's report a finding keeps (a failed case prints got/exp in full).
MESSAGE_CHARS = 600


def run_test_file(root: Path, path: str) -> list[Finding]:
    """Run `promtool test rules` on one test file (relative to ``root``); [] when it passes."""
    result = run([program("promtool"), "test", "rules", path], cwd=root)
    if result.returncode == 0:
        return []
    # One finding per file: promtool prints a failed case over many indented lines.
    report = " ".join((result.stderr + result.stdout).replace("Unit Testing:", "").split())
    report = report.replace(path, "").strip()
    return [Finding(path, report[:MESSAGE_CHARS] or f"promtool exited {result.returncode}")]


class PromtoolTests:
    """Every alert_rule_test and promql_expr_test case passes."""

    name = "promtool-tests"

    def run(self, root: Path) -> CheckResult:
        """Run every test file; a finding per failing file with promtool's report."""
        folder = root / TESTS_DIR
        files = sorted(p.relative_to(root).as_posix() for p in folder.glob("*.test.yml"))
        if not files:
            return skipped(self.name, f"no {TESTS_DIR}/*.test.yml in {root}")
        # promtool evaluates each file's series in one thread; files run side by side, at
        # most one per core (the SLO tests' 30-day windows alone take most of the time).
        workers = min(len(files), os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            reports = list(pool.map(lambda path: run_test_file(root, path), files))
        findings = [finding for report in reports for finding in report]
        return outcome(self.name, f"{len(files)} test files", findings)


CHECK = PromtoolTests()
