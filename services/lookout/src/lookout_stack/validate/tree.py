"""The repo-shaped tree a check reads: which files it has, and results built from findings."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from lookout_stack.validate.model import CheckResult, Finding, Status

__all__ = [
    "IGNORED_DIRS",
    "BadFile",
    "absent",
    "field_findings",
    "line_of",
    "node_line",
    "outcome",
    "read_yaml",
    "relative",
    "skipped",
    "walk",
]

#: Folders that are not the project's files (virtualenvs, caches, npm's packages, git).
IGNORED_DIRS = frozenset({".git", ".venv", ".cache", "node_modules", "test-artifacts"})


class BadFile(ValueError):
    """A file a check reads does not parse; the runner reports it as the check's finding."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        """Keep where (file, line if known) beside what."""
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path, self.line, self.message = path, line, message


#: libyaml's loader when PyYAML has it (several times faster on long files).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file ({} when empty); raise BadFile naming the line when it does not parse."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BadFile(path, None, f"cannot read it: {error}") from error
    try:
        return yaml.load(text, Loader=_LOADER) or {}  # noqa: S506 (a safe loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise BadFile(path, line, f"not valid YAML: {error.problem}") from error
    except yaml.YAMLError as error:
        raise BadFile(path, None, f"not valid YAML: {error}") from error


def absent(root: Path, *paths: str) -> str | None:
    """Return the skip reason naming the first of ``paths`` missing under ``root``, else None."""
    for path in paths:
        if not (root / path).exists():
            return f"no {path} in {root}"
    return None


def relative(path: Path | str, root: Path) -> str:
    """Return ``path`` relative to ``root`` when it is below it (as findings name files)."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def walk(root: Path, wanted: Callable[[str], bool]) -> Iterator[Path]:
    """Yield the files under ``root`` whose name is ``wanted`` (ignored folders skipped)."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in IGNORED_DIRS]  # prune: never enter .venv
        found += [Path(folder) / f for f in files if wanted(f)]
    yield from sorted(found)


def skipped(name: str, reason: str) -> CheckResult:
    """Return a skipped result with its reason."""
    return CheckResult(name=name, status="skipped", detail=reason)


def outcome(name: str, detail: str, findings: list[Finding]) -> CheckResult:
    """Return passed when there are no findings, else failed with them."""
    status: Status = "failed" if findings else "passed"
    return CheckResult(name=name, status=status, detail=detail, findings=findings)


_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def line_of(path: Path, field: str) -> int | None:
    """Return the 1-based line of ``field`` (``$.services.shop.ports[0]``) in a YAML file.

    The nearest existing ancestor's line is returned when the field itself is absent (a
    missing key is reported where it should be); None when the file does not parse.
    """
    try:
        node: yaml.Node | None = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return node_line(node, field)


def node_line(node: yaml.Node | None, field: str) -> int | None:
    """Return the 1-based line of ``field`` under a composed YAML node (as :func:`line_of`)."""
    line = node.start_mark.line + 1 if node is not None else None
    for key, index in _STEP.findall(field):
        if isinstance(node, yaml.MappingNode) and key:
            match = next((pair for pair in node.value if pair[0].value == key), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and index and int(index) < len(node.value):
            node = node.value[int(index)]
            line = node.start_mark.line + 1
        else:
            break
    return line


def field_findings(root: Path, file: str, problems: list[tuple[str, str]]) -> list[Finding]:
    """Turn (dotted field, message) problems about ``file`` into findings at the field's line."""
    found = []
    for field, message in problems:
        line = line_of(root / file, f"$.{field}") if field != "(top level)" else None
        found.append(Finding(f"{file}:{line}: {field}" if line else f"{file}: {field}", message))
    return found
