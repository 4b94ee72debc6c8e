"""Run checks over a tree, timing each; a missing tool becomes a failed check naming its install."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lookout_stack.validate.model import Check, CheckResult, Finding
from lookout_stack.validate.tools import BackendMissing, ToolMissing
from lookout_stack.validate.tree import BadFile, relative

__all__ = ["run_checks", "skipped_by_request"]

Progress = Callable[[str], None]


def skipped_by_request(name: str) -> CheckResult:
    """Return the result of a check the user skipped with --skip."""
    return CheckResult(name=name, status="skipped", detail="skipped by request (--skip)")


def _tool_missing(name: str, missing: ToolMissing) -> CheckResult:
    return CheckResult(
        name=name,
        status="failed",
        detail="a tool it needs is missing",
        findings=[Finding("(tool)", str(missing))],
    )


def _backend_skipped(name: str, missing: BackendMissing) -> CheckResult:
    return CheckResult(
        name=name,
        status="skipped",
        detail=f"the real Loki/Tempo are not on this machine ({missing}); with CI=true it fails",
    )


def run_one(check: Check, root: Path) -> CheckResult:
    """Run one check; its missing tool fails it, with the command that installs the tool."""
    started = time.monotonic()
    try:
        result = check.run(root)
    except BackendMissing as missing:
        in_ci = os.environ.get("CI") == "true"
        skip = _backend_skipped
        result = _tool_missing(check.name, missing) if in_ci else skip(check.name, missing)
    except ToolMissing as missing:
        result = _tool_missing(check.name, missing)
    except BadFile as bad:
        where = relative(bad.path, root) + (f":{bad.line}" if bad.line else "")
        result = CheckResult(
            name=check.name,
            status="failed",
            detail="a file it reads does not parse",
            findings=[Finding(where, bad.message)],
        )
    result.seconds = time.monotonic() - started
    return result


def run_checks(
    checks: Mapping[str, Check],
    root: Path,
    skip: Sequence[str] = (),
    progress: Progress = lambda _line: None,
) -> list[CheckResult]:
    """Run ``checks`` in order over ``root`` (those named in ``skip`` reported as skipped)."""
    results = []
    for name, check in checks.items():
        if name in skip:
            results.append(skipped_by_request(name))
            progress(f"{name}: skipped by request")
            continue
        progress(f"{name}: running")
        result = run_one(check, root)
        progress(f"{name}: {result.status} in {result.seconds:.1f} s")
        results.append(result)
    return results
