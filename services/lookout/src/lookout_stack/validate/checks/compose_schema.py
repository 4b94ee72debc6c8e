"""docker-compose.yml against the compose-spec JSON schema (check-jsonschema's vendored copy)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tools import run
from lookout_stack.validate.tree import absent, line_of, outcome, skipped

__all__ = ["CHECK", "ComposeSchema"]

COMPOSE_FILE = "docker-compose.yml"


class ComposeSchema:
    """check-jsonschema --builtin-schema vendor.compose-spec; each error at its line and field."""

    name = "compose-schema"

    def run(self, root: Path) -> CheckResult:
        """Validate root/docker-compose.yml; a finding per schema error, with its JSON path."""
        if reason := absent(root, COMPOSE_FILE):
            return skipped(self.name, reason)
        # The CLI, not its internals: check-jsonschema documents only its command line.
        argv = [sys.executable, "-m", "check_jsonschema", "--builtin-schema"]
        result = run([*argv, "vendor.compose-spec", "-o", "json", COMPOSE_FILE], cwd=root)
        try:
            report = json.loads(result.stdout)
        except json.JSONDecodeError:
            tail = (result.stdout + result.stderr).strip()[-500:]
            finding = Finding(
                COMPOSE_FILE, f"check-jsonschema failed ({result.returncode}): {tail}"
            )
            return outcome(self.name, "compose-spec schema", [finding])
        findings = [
            Finding(_where(root, error.get("path", "$")), str(error.get("message")))
            for error in report.get("errors", [])
        ]
        findings += [
            Finding(COMPOSE_FILE, f"does not parse: {error.get('message')}")
            for error in report.get("parse_errors", [])
        ]
        if result.returncode != 0 and not findings:
            findings.append(Finding(COMPOSE_FILE, result.stderr.strip()[-500:]))
        return outcome(self.name, "compose-spec schema (check-jsonschema)", findings)


def _where(root: Path, field: str) -> str:
    line = line_of(root / COMPOSE_FILE, field)
    return f"{COMPOSE_FILE}:{line}: {field}" if line else f"{COMPOSE_FILE}: {field}"


CHECK = ComposeSchema()
