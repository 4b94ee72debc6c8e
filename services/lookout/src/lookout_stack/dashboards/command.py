"""``lookout dashboards build|verify``: write the dashboards' JSON, or check it is current.

``build`` writes ``grafana/dashboards/<uid>.json`` for every dashboard (and nothing else);
``verify`` rebuilds in memory and exits 1 naming each file that differs from a fresh build
(or is missing, or is a JSON file no dashboard produces), so CI catches a hand edit or a
forgotten rebuild. Both exit 2 when the repository root or a rule file is unusable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lookout_stack.dashboards import OUTPUT_DIR, RuleError, build_all

__all__ = ["register"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def register(commands: Any) -> None:
    """Add ``dashboards`` with its ``build`` and ``verify`` actions to ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "dashboards",
        help="build or verify the Grafana dashboards (grafana/dashboards/*.json)",
        description="Dashboards as code: build writes grafana/dashboards/<uid>.json; verify "
        "exits 1 naming each file that differs from a fresh build.",
    )
    parser.add_argument("action", choices=["build", "verify"])
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="repository root (default: the nearest folder upwards holding grafana/dashboards)",
    )
    parser.set_defaults(handler=run)


def _find_root(start: Path) -> Path | None:
    for folder in [start, *start.parents]:
        if (folder / OUTPUT_DIR).is_dir() and (folder / "prometheus" / "rules").is_dir():
            return folder
    return None


def run(args: argparse.Namespace) -> int:
    """Build or verify; return the exit code."""
    root = args.root if args.root is not None else _find_root(Path.cwd().resolve())
    if root is None or not (root / OUTPUT_DIR).is_dir():
        where = args.root or Path.cwd()
        print(
            f"lookout dashboards: no {OUTPUT_DIR}/ folder at or above {where}; run it in the "
            f"repository or pass --root",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        built = build_all(root)
    except RuleError as error:
        print(f"lookout dashboards: {error}", file=sys.stderr)
        return EXIT_USAGE
    folder = root / OUTPUT_DIR
    if args.action == "build":
        for uid, text in built.items():
            (folder / f"{uid}.json").write_text(text, encoding="utf-8")
        print(f"wrote {len(built)} dashboards to {folder}")
        return EXIT_OK
    return _verify(folder, built)


def _verify(folder: Path, built: dict[str, str]) -> int:
    stale: list[str] = []
    for uid, text in built.items():
        path = folder / f"{uid}.json"
        if not path.is_file():
            stale.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            stale.append(f"{path}: differs from a fresh build")
    expected = {f"{uid}.json" for uid in built}
    stale += [
        f"{path}: no dashboard module builds it"
        for path in sorted(folder.glob("*.json"))
        if path.name not in expected
    ]
    for line in stale:
        print(line, file=sys.stderr)
    if stale:
        print(
            f"lookout dashboards: {len(stale)} file(s) out of date; run `lookout dashboards "
            f"build` and commit the result",
            file=sys.stderr,
        )
        return EXIT_PROBLEM
    print(f"{len(built)} dashboards up to date in {folder}")
    return EXIT_OK
