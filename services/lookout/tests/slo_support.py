"""Helpers for the SLO tests: the repository's SLO file, and a copy of the repo to break."""

from __future__ import annotations

import shutil
from pathlib import Path

from lookout_stack.slo.command import RULES_FILE, SLO_FILE, TESTS_FILE

__all__ = ["ROOT", "SLO_TEXT", "copy_repo", "line_of"]

ROOT = Path(__file__).resolve().parents[3]
SLO_TEXT = (ROOT / SLO_FILE).read_text(encoding="utf-8")


def copy_repo(tmp_path: Path, slo_text: str | None = None) -> Path:
    """Copy the SLO file and the generated files into ``tmp_path``; optionally replace the SLOs."""
    for relative in (SLO_FILE, RULES_FILE, TESTS_FILE):
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / relative, target)
    if slo_text is not None:
        (tmp_path / SLO_FILE).write_text(slo_text, encoding="utf-8")
    return tmp_path


def line_of(text: str, fragment: str, start: int = 0) -> int:
    """Return the 1-based line of the first ``fragment`` in ``text`` at or after ``start``."""
    index = text.index(fragment, start)
    return text.count("\n", 0, index) + 1
