"""alertmanager/alertmanager.yml through Debian's `amtool check-config`."""

from __future__ import annotations

from pathlib import Path

from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tools import findings_from, program, run
from lookout_stack.validate.tree import absent, outcome, skipped

__all__ = ["CHECK", "CONFIG_FILE", "AmtoolConfig"]

CONFIG_FILE = "alertmanager/alertmanager.yml"


class AmtoolConfig:
    """The config parses as Alertmanager reads it (routes, receivers, inhibit rules).

    amtool 0.25 does not open ``credentials_file``, so the compose secret path needs no copy.
    """

    name = "amtool-config"

    def run(self, root: Path) -> CheckResult:
        """Check the config; a finding per error, at its line where amtool gives one."""
        if reason := absent(root, CONFIG_FILE):
            return skipped(self.name, reason)
        result = run([program("amtool"), "check-config", CONFIG_FILE], cwd=root)
        findings: list[Finding] = []
        if result.returncode != 0:
            findings = findings_from(result.stdout + result.stderr, CONFIG_FILE) or [
                Finding(CONFIG_FILE, f"amtool check-config exited {result.returncode}")
            ]
        return outcome(self.name, CONFIG_FILE, findings)


CHECK = AmtoolConfig()
