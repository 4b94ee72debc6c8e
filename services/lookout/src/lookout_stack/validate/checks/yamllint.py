"""yamllint --strict over every YAML file of the tree, with the tree's .yamllint.yaml."""

from __future__ import annotations

import contextlib
from pathlib import Path

from yamllint import linter  # type: ignore[import-untyped]
from yamllint.cli import find_files_recursively  # type: ignore[import-untyped]
from yamllint.config import YamlLintConfig, YamlLintConfigError  # type: ignore[import-untyped]

from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tree import IGNORED_DIRS, absent, outcome, skipped

__all__ = ["CHECK", "YamlLint"]

CONFIG_FILE = ".yamllint.yaml"


class YamlLint:
    """Every problem yamllint reports, warnings included (as `yamllint --strict`)."""

    name = "yamllint"

    def run(self, root: Path) -> CheckResult:
        """Lint root's YAML files; a finding per problem, at its line and column."""
        if reason := absent(root, CONFIG_FILE):
            return skipped(self.name, reason)
        # yamllint resolves `ignore-from-file: .gitignore` and its file walk against the
        # working directory, as its CLI run from the root does.
        with contextlib.chdir(root):
            try:
                config = YamlLintConfig(file=CONFIG_FILE)
            except YamlLintConfigError as error:
                return outcome(self.name, "", [Finding(CONFIG_FILE, str(error))])
            paths = sorted(
                Path(p)
                for p in find_files_recursively(["."], config)
                if not IGNORED_DIRS & set(Path(p).parts)
                and not config.is_file_ignored(p)
                and config.is_yaml_file(p)
            )
            findings = []
            for path in paths:
                text = path.read_text(encoding="utf-8")
                for problem in linter.run(text, config, str(path)):
                    findings.append(
                        Finding(
                            f"{path.as_posix()}:{problem.line}:{problem.column}",
                            f"[{problem.level}] {problem.desc} ({problem.rule})",
                        )
                    )
        return outcome(self.name, f"{len(paths)} YAML files", findings)


CHECK = YamlLint()
