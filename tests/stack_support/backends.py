"""Find the real programs the stack tests run: Loki and Tempo, Prometheus and Alertmanager.

Loki 3.7.6 and Tempo 3.0.3 come from ``LOOKOUT_BACKENDS_DIR`` when it is set (a folder that
holds the unpacked ``loki`` and ``tempo``), else from ``../shared/backends`` beside the
checkout, unpacked (and checksum-verified) into the ignored ``.cache/backends`` folder. The
Debian programs (prometheus, promtool, alertmanager, amtool) come from PATH; the test command
installs them when they are missing.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from lookout_stack.validate import tools

__all__ = [
    "IN_CI",
    "MissingPrerequisite",
    "backend_binary",
    "backends_dir",
    "free_port",
    "require_binary",
    "require_listening",
    "system_binary",
]

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ("loki", "tempo")


class MissingPrerequisite(RuntimeError):
    """A program a test needs is not on this machine; the message says how to get it."""


def backends_dir() -> Path:
    """Return the folder holding executable ``loki`` and ``tempo``, unpacking them if needed.

    The finder is `lookout validate`'s (lookout_stack.validate.tools): LOOKOUT_BACKENDS_DIR,
    else ../shared/backends beside this checkout or beside the checkout it was cloned from.
    """
    try:
        return tools.backends_dir(ROOT)
    except tools.ToolMissing as missing:
        raise MissingPrerequisite(str(missing)) from missing


def backend_binary(name: str) -> Path:
    """Return the path of the real ``loki`` or ``tempo`` binary."""
    if name not in BACKENDS:
        msg = f"unknown backend {name!r}: expected one of {', '.join(BACKENDS)}"
        raise ValueError(msg)
    return backends_dir() / name


#: Other names a program has in Debian's packages.
DEBIAN_NAMES = {"alertmanager": ["prometheus-alertmanager"]}


def system_binary(name: str) -> Path:
    """Return the path of a program from PATH (Debian's prometheus, amtool, ...)."""
    found = next((p for n in [name, *DEBIAN_NAMES.get(name, [])] if (p := shutil.which(n))), None)
    if found is None:
        msg = (
            f"{name} is not on PATH: run `make test` (it installs Debian's prometheus and "
            f"prometheus-alertmanager) or apt-get install the package that ships {name}"
        )
        raise MissingPrerequisite(msg)
    return Path(found)


def require_binary(name: str) -> Path:
    """Return a binary for a test: fail under CI=true when it is missing, else skip."""
    import pytest  # benchmarks import this module without pytest installed

    try:
        return backend_binary(name) if name in BACKENDS else system_binary(name)
    except MissingPrerequisite as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def free_port() -> int:
    """Return a loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_listening(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (under CI=true) when a server a test needs is not listening."""
    import pytest

    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        message = f"{name} is not listening on {host}:{port}; start it (see the README) and rerun"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)
