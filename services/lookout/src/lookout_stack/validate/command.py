"""``lookout validate``: every check of the test suite that needs no running stack, one summary.

Runs the checks of :data:`lookout_stack.validate.checks.CHECKS` in order over a tree laid out
like this repository: the repository itself (found from the current directory: the nearest
folder holding docker-compose.yml and pyproject.toml) or ``--root DIR`` (for example a folder
`lookout render` wrote). A check whose files are absent from the tree is skipped with the
reason; a check whose tool is missing fails naming how to install it; ``--skip NAME`` skips a
check on request, ``--only NAME`` runs just the named ones (both repeatable).

Progress goes to stderr (a line as each check starts and ends); the summary to stdout: a table
(check, status, seconds, detail), then the problems, each ``file:line: message (check)`` with
the file relative to the root.

Exit codes: 0 every check passed or was skipped; 1 a check failed; 2 bad input (an unknown
check name, a --root that is not a folder, no repository found from the current directory).

``--json`` prints, instead of the table, one JSON object::

    {
      "root": "/abs/path/of/the/tree",
      "status": "passed" | "failed",          # failed when any check failed
      "seconds": 12.3,                         # all checks together
      "checks": [
        {
          "name": "promtool-rules",
          "status": "passed" | "failed" | "skipped",
          "detail": "7 rule files, 57 rules",  # or why it was skipped
          "seconds": 0.4,
          "findings": [{"where": "prometheus/rules/x.yml:12", "message": "..."}]
        }
      ]
    }
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lookout_stack.validate.checks import CHECKS
from lookout_stack.validate.model import CheckResult
from lookout_stack.validate.runner import run_checks
from lookout_stack.validate.tools import find_root

__all__ = ["register", "report", "summary"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def register(commands: Any) -> None:
    """Add ``validate`` to the ``lookout`` command."""
    parser = commands.add_parser(
        "validate",
        help="run every check that needs no running stack (schemas, promtool, amtool, lint)",
        description="Validate the stack's configs without starting it: compose schema and "
        "rules, key schemas, dashboard lint, generated files, yamllint, promtool, amtool, "
        "the real Loki and Tempo, hadolint. Exit 0 all passed or skipped, 1 a check failed, "
        "2 bad input.",
    )
    parser.add_argument(
        "--root",
        type=Path,
        help="the tree to check (default: the repository found from the current directory)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only this check (repeatable); the checks, in order: {', '.join(CHECKS)}",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="NAME",
        help="skip this check, reported as skipped by request (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report instead")
    parser.set_defaults(handler=run)


def _root(given: Path | None) -> Path | None:
    if given is not None:
        if not given.is_dir():
            print(f"lookout validate: --root {given} is not a folder", file=sys.stderr)
            return None
        return given.resolve()
    found = find_root(Path.cwd().resolve())
    if found is None:
        print(
            f"lookout validate: no docker-compose.yml with a pyproject.toml beside it at or "
            f"above {Path.cwd()}; run it in the repository or pass --root DIR",
            file=sys.stderr,
        )
    return found


def run(args: argparse.Namespace) -> int:
    """Run the selected checks; return the exit code."""
    unknown = sorted(set(args.only + args.skip) - set(CHECKS))
    if unknown:
        print(
            f"lookout validate: unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    root = _root(args.root)
    if root is None:
        return EXIT_USAGE
    selected = {n: c for n, c in CHECKS.items() if not args.only or n in args.only}
    results = run_checks(
        selected,
        root,
        skip=args.skip,
        progress=lambda line: print(f"validate: {line}", file=sys.stderr, flush=True),
    )
    if args.json:
        print(json.dumps(report(root, results), indent=2))
    else:
        print("\n".join(summary(results)))
    return EXIT_PROBLEM if any(r.status == "failed" for r in results) else EXIT_OK


def report(root: Path, results: list[CheckResult]) -> dict[str, Any]:
    """Return the JSON report (its shape is in the module docstring)."""
    failed = any(r.status == "failed" for r in results)
    return {
        "root": str(root),
        "status": "failed" if failed else "passed",
        "seconds": round(sum(r.seconds for r in results), 2),
        "checks": [{**asdict(r), "seconds": round(r.seconds, 2)} for r in results],
    }


def summary(results: list[CheckResult]) -> list[str]:
    """Return the summary table and the problems list, as lines."""
    width = max([len("check"), *(len(r.name) for r in results)])
    lines = [f"{'check':<{width}}  {'status':<7}  {'seconds':>7}  detail"]
    lines += [f"{r.name:<{width}}  {r.status:<7}  {r.seconds:>7.1f}  {r.detail}" for r in results]
    counts = {s: sum(r.status == s for r in results) for s in ("passed", "failed", "skipped")}
    total = sum(r.seconds for r in results)
    lines.append(
        f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped "
        f"in {total:.1f} s"
    )
    problems = [(r.name, f) for r in results for f in r.findings]
    if problems:
        lines += ["", "Problems:"]
        lines += [f"  {f.where}: {f.message} ({name})" for name, f in problems]
    return lines
