"""alertmanager/alertmanager.yml through Debian's `amtool check-config`."""

from __future__ import annotations

from pathlib import Path

from lookout_stack.validate.model import CheckResult
from lookout_stack.validate.tools import failure_findings, program, run
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
        return outcome(self.name, CONFIG_FILE, failure_findings(result, CONFIG_FILE))


CHECK = AmtoolConfig()
