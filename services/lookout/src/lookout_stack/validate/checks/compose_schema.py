"""docker-compose.yml against the compose-spec JSON schema (check-jsonschema's vendored copy)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tools import run
from lookout_stack.validate.tree import absent, line_of, outcome, skipped

__all__ = ["CHECK", "ComposeSchema", "schema_findings"]

COMPOSE_FILE = "docker-compose.yml"


def schema_findings(root: Path, compose_file: str) -> list[Finding]:
    """Return a finding per compose-spec schema error of ``root/compose_file``, at its line."""
    # The CLI, not its internals: check-jsonschema documents only its command line.
    argv = [sys.executable, "-m", "check_jsonschema", "--builtin-schema"]
    result = run([*argv, "vendor.compose-spec", "-o", "json", compose_file], cwd=root)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        tail = (result.stdout + result.stderr).strip()[-500:]
        return [Finding(compose_file, f"check-jsonschema failed ({result.returncode}): {tail}")]
    findings = [
        Finding(_where(root, compose_file, error.get("path", "$")), str(error.get("message")))
        for error in report.get("errors", [])
    ]
    findings += [
        Finding(compose_file, f"does not parse: {error.get('message')}")
        for error in report.get("parse_errors", [])
    ]
    if result.returncode != 0 and not findings:
        findings.append(Finding(compose_file, result.stderr.strip()[-500:]))
    return findings


class ComposeSchema:
    """check-jsonschema --builtin-schema vendor.compose-spec; each error at its line and field."""

    name = "compose-schema"

    def run(self, root: Path) -> CheckResult:
        """Validate root/docker-compose.yml; a finding per schema error, with its JSON path."""
        if reason := absent(root, COMPOSE_FILE):
            return skipped(self.name, reason)
        findings = schema_findings(root, COMPOSE_FILE)
        return outcome(self.name, "compose-spec schema (check-jsonschema)", findings)


def _where(root: Path, compose_file: str, field: str) -> str:
    line = line_of(root / compose_file, field)
    return f"{compose_file}:{line}: {field}" if line else f"{compose_file}: {field}"


CHECK = ComposeSchema()
