"""The collector config and Grafana's provisioning files against the pinned versions' key schemas.

No collector or Grafana runs here (DESIGN.md, "What runs where"): each config is walked against
a key schema written from the pinned version's docs (lookout_stack/validate/schemas/), so a
misspelled, removed or mistyped key fails with the doc page to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lookout_stack.validate.keyschema import (
    SCHEMAS_DIR,
    KeySchema,
    resolve_env_defaults,
)
from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tree import line_of, outcome, read_yaml, skipped

__all__ = ["COLLECTOR", "GRAFANA", "KeySchemaCheck", "key_findings"]


def key_findings(root: Path, config_file: str, schema_file: str) -> list[Finding]:
    """Walk ``root/config_file`` (${env:NAME:-default} resolved) against a packaged key schema."""
    schema = KeySchema.load(SCHEMAS_DIR / schema_file)
    config = resolve_env_defaults(read_yaml(root / config_file))
    findings = []
    for found in schema.findings(config, config_file):
        field = found.where.removeprefix(f"{config_file}: ")
        line = line_of(root / config_file, f"$.{field}") if field != "(top level)" else None
        where = f"{config_file}:{line}: {field}" if line else found.where
        findings.append(Finding(where, found.message))
    return findings


# Not frozen: the Check protocol declares `name` as a plain (settable) attribute.
@dataclass
class KeySchemaCheck:
    """Every key of the files is one the pinned version documents, with the right type."""

    name: str
    schema_file: str
    config_files: tuple[str, ...]

    def run(self, root: Path) -> CheckResult:
        """Check each present file; skipped when none of them is in the tree."""
        present = [path for path in self.config_files if (root / path).is_file()]
        if not present:
            return skipped(self.name, f"no {' or '.join(self.config_files)} in {root}")
        findings = [f for path in present for f in key_findings(root, path, self.schema_file)]
        version = KeySchema.load(SCHEMAS_DIR / self.schema_file).version
        detail = f"{len(present)} file(s) against the key schema of {version}"
        return outcome(self.name, detail, findings)


COLLECTOR = KeySchemaCheck(
    "collector-keys", "otelcol-contrib-0.159.0.yaml", ("otel-collector/config.yaml",)
)
GRAFANA = KeySchemaCheck(
    "grafana-keys",
    "grafana-13.2.yaml",
    (
        "grafana/provisioning/datasources/datasources.yaml",
        "grafana/provisioning/dashboards/dashboards.yaml",
    ),
)
