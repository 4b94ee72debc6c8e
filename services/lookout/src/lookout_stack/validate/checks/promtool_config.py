"""prometheus/prometheus.yml through Debian's `promtool check config --syntax-only`."""

from __future__ import annotations

from pathlib import Path

from lookout_stack.validate.model import CheckResult
from lookout_stack.validate.tools import failure_findings, program, run
from lookout_stack.validate.tree import absent, outcome, skipped

__all__ = ["CHECK", "CONFIG_FILE", "PromtoolConfig"]

CONFIG_FILE = "prometheus/prometheus.yml"


class PromtoolConfig:
    """The config's syntax and fields, as the Prometheus that promtool ships reads them.

    --syntax-only: rule_files point into the container (/etc/prometheus/rules), which is not
    this machine; the rule files themselves are the `promtool-rules` check.
    """

    name = "promtool-config"

    def run(self, root: Path) -> CheckResult:
        """Check the config; a finding per error, at its line where promtool gives one."""
        if reason := absent(root, CONFIG_FILE):
            return skipped(self.name, reason)
        argv: list[str | Path] = [
            program("promtool"),
            "check",
            "config",
            "--syntax-only",
            CONFIG_FILE,
        ]
        result = run(argv, cwd=root)
        return outcome(self.name, CONFIG_FILE, failure_findings(result, CONFIG_FILE))


CHECK = PromtoolConfig()
