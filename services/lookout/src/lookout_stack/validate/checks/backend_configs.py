"""loki/loki.yaml and tempo/tempo.yaml verified by the real Loki and Tempo of the pinned version."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lookout_stack.validate.model import CheckResult
from lookout_stack.validate.tools import backend_binary, checkouts, failure_findings, run
from lookout_stack.validate.tree import absent, outcome, skipped

__all__ = ["LOKI", "TEMPO", "BackendConfig"]


# Not frozen: the Check protocol declares `name` as a plain (settable) attribute.
@dataclass
class BackendConfig:
    """`<backend> -config.file=F <verify flags>`: the program parses F as it would at start."""

    name: str
    backend: str
    config_file: str
    verify: tuple[str, ...]

    def run(self, root: Path) -> CheckResult:
        """Verify the config; a finding per error line, at its line where the backend says."""
        if reason := absent(root, self.config_file):
            return skipped(self.name, reason)
        binary = backend_binary(self.backend, checkouts(root))
        result = run([binary, f"-config.file={self.config_file}", *self.verify], cwd=root)
        findings = failure_findings(result, self.config_file)
        return outcome(self.name, f"{self.config_file} ({binary})", findings)


LOKI = BackendConfig("loki-config", "loki", "loki/loki.yaml", ("-verify-config",))
# -config.expand-env=true as compose runs it: tempo.yaml takes STOREFRONT_ORIGIN from the env.
TEMPO = BackendConfig(
    "tempo-config", "tempo", "tempo/tempo.yaml", ("-config.expand-env=true", "-config.verify=true")
)
