"""The shape of a validation check and of its result.

A check reads files under a tree ``root`` laid out like this repository (the repo itself, or a
folder `lookout render` wrote) and reports findings that name the file (and line or field where
known). A check whose files are absent from the tree says so as ``skipped`` with the reason; a
check whose tool is missing fails and names how to install it: nothing is silently passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

__all__ = ["Check", "CheckResult", "Finding", "Status"]

Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class Finding:
    """One problem: where (``file:line``, ``file: field``) and what, in a sentence."""

    where: str
    message: str


@dataclass
class CheckResult:
    """What one check found."""

    name: str
    status: Status
    #: What was checked, e.g. "7 rule files, 57 rules" or why it was skipped.
    detail: str = ""
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0


class Check(Protocol):
    """A check over a repo-shaped tree."""

    #: Short name in the summary, e.g. "promtool rules".
    name: str

    def run(self, root: Path) -> CheckResult:
        """Check the files under ``root``."""
        ...
