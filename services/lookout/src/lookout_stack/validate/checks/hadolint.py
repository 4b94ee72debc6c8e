"""hadolint over every Dockerfile of the tree, with the tree's .hadolint.yaml."""

from __future__ import annotations

import json
from pathlib import Path

from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tools import program, run
from lookout_stack.validate.tree import outcome, relative, skipped, walk

__all__ = ["CHECK", "Hadolint"]

CONFIG_FILE = ".hadolint.yaml"


class Hadolint:
    """Every hadolint finding, down to style (the failure threshold .hadolint.yaml sets)."""

    name = "hadolint"

    def run(self, root: Path) -> CheckResult:
        """Lint the Dockerfiles; a finding per rule broken, at its line, with its code."""
        dockerfiles = list(walk(root, _is_dockerfile))
        if not dockerfiles:
            return skipped(self.name, f"no Dockerfile in {root}")
        argv: list[str | Path] = [program("hadolint"), "--format", "json"]
        if (root / CONFIG_FILE).is_file():
            argv += ["--config", root / CONFIG_FILE]
        names = [relative(path, root) for path in dockerfiles]
        result = run([*argv, *names], cwd=root)
        try:
            reported = json.loads(result.stdout or "[]")
        except json.JSONDecodeError:
            reported = None
        if not isinstance(reported, list):
            tail = (result.stdout + result.stderr).strip()[-500:]
            finding = Finding(CONFIG_FILE, f"hadolint failed ({result.returncode}): {tail}")
            return outcome(self.name, "", [finding])
        findings = [
            Finding(f"{item['file']}:{item['line']}", f"{item['code']} {item['message']}")
            for item in reported
        ]
        if result.returncode != 0 and not findings:
            findings.append(Finding(names[0], result.stderr.strip()[-500:]))
        return outcome(self.name, f"{len(dockerfiles)} Dockerfiles", findings)


def _is_dockerfile(name: str) -> bool:
    """Tell whether a file name is a Dockerfile's: Dockerfile, Dockerfile.<x> or <x>.Dockerfile."""
    return name == "Dockerfile" or name.startswith("Dockerfile.") or name.endswith(".Dockerfile")


CHECK = Hadolint()
