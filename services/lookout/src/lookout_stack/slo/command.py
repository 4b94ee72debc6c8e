"""``lookout slo build|verify``: generate the SLO rules and their tests, or check they are current.

``build`` reads slo/slos.yaml and writes prometheus/rules/slo.yml and
prometheus/tests/slo.test.yml; ``verify`` regenerates both in memory and exits 1 naming each
file that differs (a stale commit), 2 when slos.yaml is invalid (every error with file, line
and field), 0 otherwise. Paths are relative to the repository root, found from the current
directory (the folder holding slo/slos.yaml), or given with ``--root``.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookout_stack.slo.errors import SloError
from lookout_stack.slo.loader import load_slos
from lookout_stack.slo.promtool_tests import render_tests
from lookout_stack.slo.rules import render_rules

__all__ = ["SLO_FILE", "Generated", "generate", "register"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
SLO_FILE = Path("slo/slos.yaml")
RULES_FILE = Path("prometheus/rules/slo.yml")
TESTS_FILE = Path("prometheus/tests/slo.test.yml")


@dataclass(frozen=True)
class Generated:
    """One generated file: where it goes (relative to the root) and its text."""

    path: Path
    text: str


def generate(root: Path) -> list[Generated]:
    """Read ``root``/slo/slos.yaml and return the files it generates; raise SloError if bad."""
    loaded = load_slos(root / SLO_FILE, str(SLO_FILE))
    return [
        Generated(RULES_FILE, render_rules(loaded)),
        Generated(TESTS_FILE, render_tests(loaded)),
    ]


def find_root(start: Path) -> Path | None:
    """Return the nearest folder at or above ``start`` that holds slo/slos.yaml."""
    for folder in (start, *start.parents):
        if (folder / SLO_FILE).is_file():
            return folder
    return None


def register(commands: Any) -> None:
    """Add ``slo build`` and ``slo verify`` to the ``lookout`` command."""
    parser = commands.add_parser(
        "slo",
        help="generate the SLO recording rules, alerts and their tests from slo/slos.yaml",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the repository root (default: the nearest folder above holding slo/slos.yaml)",
    )
    actions = parser.add_subparsers(dest="slo_action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="write prometheus/rules/slo.yml and its tests")
    build.set_defaults(handler=_build)
    verify = actions.add_parser(
        "verify", help="exit 1 if regenerating would change the committed files"
    )
    verify.add_argument("--diff", action="store_true", help="print a unified diff of each change")
    verify.set_defaults(handler=_verify)


def _root(args: argparse.Namespace) -> Path | None:
    root: Path | None = args.root or find_root(Path.cwd())
    if root is None or not (root / SLO_FILE).is_file():
        where = root or Path.cwd()
        print(
            f"lookout slo: no {SLO_FILE} at or above {where}; run it from the repository or "
            "pass --root",
            file=sys.stderr,
        )
        return None
    return root


def _generate(args: argparse.Namespace) -> tuple[Path, list[Generated]] | int:
    root = _root(args)
    if root is None:
        return EXIT_USAGE
    try:
        return root, generate(root)
    except SloError as error:
        print(f"lookout slo: {error}", file=sys.stderr)
        return EXIT_USAGE


def _build(args: argparse.Namespace) -> int:
    result = _generate(args)
    if isinstance(result, int):
        return result
    root, files = result
    for generated in files:
        target = root / generated.path
        before = target.read_text(encoding="utf-8") if target.is_file() else None
        if before == generated.text:
            print(f"{generated.path}: unchanged")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(generated.text, encoding="utf-8")
        print(f"{generated.path}: written")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    result = _generate(args)
    if isinstance(result, int):
        return result
    root, files = result
    stale = []
    for generated in files:
        target = root / generated.path
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if current == generated.text:
            print(f"{generated.path}: up to date")
            continue
        stale.append(generated.path)
        print(
            f"{generated.path}: stale (does not match {SLO_FILE}); run `lookout slo build` "
            "and commit the result",
            file=sys.stderr,
        )
        if args.diff:
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    generated.text.splitlines(keepends=True),
                    f"{generated.path} (committed)",
                    f"{generated.path} (from {SLO_FILE})",
                )
            )
    return EXIT_PROBLEM if stale else EXIT_OK
