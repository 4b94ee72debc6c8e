"""``lookout render|diff|apply --env NAME``: deploy the repository's configs to an environment.

``render`` writes the files an environment gets (base configs plus its overlay,
deploy/environments/NAME.yaml) into a folder, in the repository's layout. ``diff`` renders
into a temporary folder, asks each target what would change and prints a readable diff per
object: exit 1 when anything would change, 0 when in sync. ``apply`` applies those changes in
a safe order, with progress on stderr, and stops at the first failure saying what was
applied, what failed and what was not; ``apply --dry-run`` is ``diff``.

The safe order, by target: Alertmanager's configuration first (the receivers the rules'
alerts go to must exist before the rules), then the Prometheus (Mimir) rules (the recording
rules the dashboards query), then Loki's rules, then Grafana (one target: its datasources,
its folder, then the dashboards). Within a target, creates and updates come before deletes, so
a renamed object is never missing in between. After each target's changes its ``finish()``
runs (a file-reading Prometheus or Alertmanager is reloaded through ``/-/reload``).

Exit codes: 0 in sync (or applied); 1 a diff, or a target that failed; 2 a bad environment
file, an overlay that does not fit, a missing credential. No secret is ever printed: every
line goes through a filter that hides the values the environment's references resolve to.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel

from lookout_stack.deploy.environment import Environment, load_environment
from lookout_stack.deploy.model import Change, DeployError, SecretRef, Target
from lookout_stack.deploy.render import MANIFEST, render_environment
from lookout_stack.slo.command import find_root

__all__ = ["order_targets", "register"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
HIDDEN = "<hidden>"

# Target name keywords, in the order targets are applied (the first keyword found decides):
# the names lookout_stack.deploy.targets gives its targets.
_ORDER = ("alertmanager", "datasource", "prometheus", "mimir", "loki", "dashboard", "grafana")


def register(commands: Any) -> None:
    """Add ``render``, ``diff`` and ``apply`` to the ``lookout`` command."""
    summary = (__doc__ or "").split("\n\n", 1)[1].split("\n\n", 1)[0]
    render = commands.add_parser(
        "render",
        help="write the files an environment gets (base configs + its overlay) into a folder",
        description=summary,
    )
    _common(render)
    render.add_argument("--out", type=Path, required=True, help="the folder to write into")
    render.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty folder (a previous render there is replaced)",
    )
    render.set_defaults(handler=_render)
    diff = commands.add_parser(
        "diff", help="show what apply would change on an environment (exit 1 if anything)"
    )
    _common(diff)
    diff.set_defaults(handler=_diff)
    apply = commands.add_parser(
        "apply", help="apply the diff to an environment, in a safe order, stopping at a failure"
    )
    _common(apply)
    apply.add_argument("--dry-run", action="store_true", help="print the diff, change nothing")
    apply.set_defaults(handler=_apply)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        required=True,
        metavar="NAME",
        help="an environment of deploy/environments (staging) or the path of its file",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the repository root (default: the nearest folder above holding slo/slos.yaml)",
    )


# --- secrets ---------------------------------------------------------------------------------


def _references(value: object, where: str = "") -> Iterator[tuple[str, SecretRef]]:
    """Yield every secret reference under ``value`` with its field path (grafana.auth.token)."""
    if isinstance(value, SecretRef):
        yield where, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _references(getattr(value, name), f"{where}.{name}" if where else name)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _references(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _references(item, f"{where}[{index}]")


def _secret_values(environment: Environment) -> list[str]:
    """Return what the environment's secret references resolve to now (those that do)."""
    values: set[str] = set()
    for where, reference in _references(environment):
        try:
            value = reference.resolve(where)
        except DeployError:
            continue
        if value:
            values.add(value)
    return sorted(values, key=len, reverse=True)


def _missing_credentials(environment: Environment) -> list[str]:
    """Name every reference that does not resolve (unset variable, unreadable file)."""
    missing = []
    for where, reference in _references(environment):
        try:
            reference.resolve(where)
        except DeployError as error:
            missing.append(str(error))
    return missing


class _Output:
    """Print to stdout or stderr, with every resolved secret replaced by ``<hidden>``."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets

    def __call__(self, text: str, stream: TextIO | None = None) -> None:
        for secret in self.secrets:
            text = text.replace(secret, HIDDEN)
        print(text, file=stream or sys.stdout, flush=True)

    def err(self, text: str) -> None:
        self(text, sys.stderr)


# --- shared steps ----------------------------------------------------------------------------


def _environment(args: argparse.Namespace) -> tuple[Path, Environment] | int:
    root: Path | None = args.root or find_root(Path.cwd())
    if root is None:
        print(
            f"lookout {args.command}: no slo/slos.yaml at or above {Path.cwd()}; run it in the "
            "repository or pass --root",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        return root, load_environment(args.env, root)
    except DeployError as error:
        print(f"lookout {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE


def _notes(out: _Output, folder: Path) -> None:
    """Print the overlay values no rendered file holds, and where to set them."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    for setting in manifest["settings"]:
        out.err(
            f"note: {setting['field']} {setting['value']} is in no file: set {setting['where']}"
        )


def order_targets(targets: list[Target]) -> list[Target]:
    """Return the targets in the safe order (module docstring); unknown names go last.

    Only the name's head counts (before `` (``): the part in parentheses may hold a path or
    URL (``prometheus rules (files in /etc/alertmanager/...)``) that must not decide.
    """

    def rank(target: Target) -> int:
        name = target.name.lower().split(" (", 1)[0]
        return next((i for i, word in enumerate(_ORDER) if word in name), len(_ORDER))

    return sorted(targets, key=rank)


def _ordered_changes(changes: list[Change]) -> list[Change]:
    """Creates and updates first, deletes last; datasources before dashboards in a target."""
    return sorted(
        changes,
        key=lambda c: (c.kind == "delete", "datasource" not in c.object.lower()),
    )


Plans = list[tuple[Target, list[Change]]]


def _with_plans(
    args: argparse.Namespace, action: Callable[[_Output, Environment, Plans], int]
) -> int:
    """Render into a temporary folder, build and plan the targets, run ``action`` on them.

    The folder lives until ``action`` returns: a target may read the rendered files when a
    change is applied.
    """
    found = _environment(args)
    if isinstance(found, int):
        return found
    root, environment = found
    out = _Output(_secret_values(environment))
    missing = _missing_credentials(environment)
    if missing:
        source = environment.source
        for line in missing:
            out.err(f"lookout {args.command}: {source}: {line}")
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix=f"lookout-{environment.name}-") as scratch:
        folder = Path(scratch)
        try:
            render_environment(environment, root, folder)
            _notes(out, folder)
            # Imported here: the targets (HTTP clients) load only for diff and apply.
            targets_module = importlib.import_module("lookout_stack.deploy.targets")
            built = targets_module.build_targets(environment, folder)
            targets = order_targets(list(built))
        except DeployError as error:
            out.err(f"lookout {args.command}: {error}")
            return EXIT_USAGE
        if not targets:
            out.err(f"lookout {args.command}: {environment.name} names no target (see its file)")
        plans: Plans = []
        for target in targets:
            try:
                plans.append((target, _ordered_changes(list(target.plan()))))
            except Exception as error:  # any failure reading a target is reported
                # A target's DeployError already starts with its name: say it once.
                reason = str(error).removeprefix(f"{target.name}: ")
                out.err(
                    f"lookout {args.command}: {target.name}: cannot read the live state: {reason}"
                )
                return EXIT_PROBLEM
        return action(out, environment, plans)


# --- render ----------------------------------------------------------------------------------


def _render(args: argparse.Namespace) -> int:
    found = _environment(args)
    if isinstance(found, int):
        return found
    root, environment = found
    out = _Output(_secret_values(environment))
    folder: Path = args.out
    if folder.exists() and not folder.is_dir():
        out.err(f"lookout render: --out {folder} is a file, not a folder")
        return EXIT_USAGE
    if folder.is_dir() and any(folder.iterdir()) and not args.force:
        out.err(
            f"lookout render: --out {folder} is not empty; pick an empty folder or pass "
            "--force to write into it"
        )
        return EXIT_USAGE
    previous = (folder / MANIFEST).is_file()
    # A previous render is replaced whole (no file of an older render lingers), and only by a
    # render that succeeded: the new one is written beside it first, then swapped in.
    into = folder
    if previous:
        into = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        written = render_environment(environment, root, into)
    except BaseException as error:
        if previous:
            shutil.rmtree(into, ignore_errors=True)
        if not isinstance(error, DeployError):
            raise
        out.err(f"lookout render: {error}")
        return EXIT_USAGE
    if previous:
        shutil.rmtree(folder)
        into.rename(folder)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        changed = f"  ({'; '.join(entry['changes'])})" if entry["changes"] else ""
        out(f"{folder / entry['path']}{changed}")
    out(f"{folder / MANIFEST}")
    _notes(out, folder)
    out.err(f"lookout render: wrote {len(written)} files for {environment.name} to {folder}")
    return EXIT_OK


# --- diff and apply --------------------------------------------------------------------------


def _print_diff(out: _Output, plans: Plans) -> int:
    total = 0
    for target, changes in plans:
        out(f"=== {target.name}")
        if not changes:
            out("  in sync")
        for change in changes:
            sign = {"create": "+", "update": "~", "delete": "-"}[change.kind]
            out(f"{sign} {change.kind} {change.object}")
            if change.diff:
                out(change.diff.rstrip("\n"))
        total += len(changes)
    if total:
        touched = sum(1 for _, changes in plans if changes)
        out(f"{total} change(s) on {touched} target(s); `lookout apply` applies them")
        return EXIT_PROBLEM
    out("in sync: nothing to change")
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    return _with_plans(args, lambda out, _environment, plans: _print_diff(out, plans))


def _apply(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _diff(args)
    return _with_plans(args, _apply_plans)


def _apply_plans(out: _Output, environment: Environment, plans: Plans) -> int:
    steps = [(target, change) for target, changes in plans for change in changes]
    if not steps:
        out("in sync: nothing to apply")
        return EXIT_OK
    done: list[str] = []
    total = len(steps)
    number = 0
    for target, changes in plans:
        for change in changes:
            number += 1
            line = f"[{number}/{total}] {target.name}: {change.kind} {change.object}"
            try:
                change.apply()
            except Exception as error:  # the report below says what failed
                rest = [f"{t.name}: {c.kind} {c.object}" for t, c in steps[number:]]
                _failure(out, environment, done, f"{line}: {error}", rest)
                return EXIT_PROBLEM
            out.err(f"{line} ... ok")
            done.append(f"{target.name}: {change.kind} {change.object}")
        if changes:
            try:
                target.finish()
            except Exception as error:  # as above
                rest = [f"{t.name}: {c.kind} {c.object}" for t, c in steps[number:]]
                failed = f"{target.name}: finishing (reload) after its changes: {error}"
                if getattr(error, "restored", False):
                    # The target put its files back: its changes are undone, not applied.
                    undone = [f"{target.name}: {c.kind} {c.object}" for c in changes]
                    done = done[: len(done) - len(undone)]
                    rest = [f"{line} (rolled back)" for line in undone] + rest
                _failure(out, environment, done, failed, rest)
                return EXIT_PROBLEM
            out.err(f"{target.name}: finished")
    out(f"applied {total} change(s) to {environment.name}; `lookout diff` now shows it in sync")
    return EXIT_OK


def _failure(
    out: _Output, environment: Environment, done: list[str], failed: str, rest: list[str]
) -> None:
    out.err(f"lookout apply: stopped at the first failure on {environment.name}")
    out.err(f"applied ({len(done)}):")
    for line in done or ["(nothing)"]:
        out.err(f"  {line}")
    out.err(f"failed: {failed}")
    out.err(f"not applied ({len(rest)}):")
    for line in rest or ["(nothing)"]:
        out.err(f"  {line}")
    out.err(
        f"next: fix the cause above, then `lookout diff --env {environment.name}` shows what is "
        f"left and `lookout apply --env {environment.name}` applies it (applying twice is safe)"
    )
