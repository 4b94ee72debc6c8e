"""Helpers for the `lookout validate` tests: copy parts of the repo into a tree, then break one."""

from __future__ import annotations

import shutil
from pathlib import Path

from lookout_stack.validate.model import CheckResult

ROOT = Path(__file__).resolve().parents[3]


def copy_tree(tree: Path, *paths: str) -> Path:
    """Copy files or folders (relative to the repo root) into ``tree`` at the same paths."""
    for path in paths:
        source, target = ROOT / path, tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    return tree


def edit(tree: Path, path: str, old: str, new: str) -> None:
    """Replace the first ``old`` in ``tree/path`` by ``new`` (it must be there: no silent no-op)."""
    target = tree / path
    text = target.read_text(encoding="utf-8")
    assert old in text, f"{path}: {old!r} is not in the file any more; update the test"
    target.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(tree: Path, path: str, needle: str) -> int:
    """Return the 1-based line of the first line of ``tree/path`` containing ``needle``."""
    lines = (tree / path).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def wheres(result: CheckResult) -> list[str]:
    """Return where each finding of ``result`` is, for assertions and failure messages."""
    return [f"{f.where}: {f.message}" for f in result.findings]
