"""The real Bugsink (PyPI, pinned in demo-app's dev group) on loopback, for error-tracking tests.

Bugsink is Sentry-compatible: a service's sentry-sdk, given one of ``Bugsink.dsns``, reports to
it as it would to Sentry, and the tests read the stored event back out of Bugsink's SQLite.
Shared by every package's tests (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from stack_support.backends import free_port

IN_CI = os.environ.get("CI", "").lower() == "true"

__all__ = [
    "BUGSINK_PROJECTS",
    "PROVISION_SCRIPT",
    "Bugsink",
    "bugsink_server",
    "provision_command",
    "require_bugsink",
]


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


#: Bugsink's management command, installed beside this Python by the dev dependency group.
BUGSINK_MANAGE = Path(sys.executable).with_name("bugsink-manage")
BUGSINK_CREATE_CONF = Path(sys.executable).with_name("bugsink-create-conf")
#: One project per Python service of ours; each gets its own DSN.
BUGSINK_PROJECTS = ("shop", "payments", "webhook-relay", "synthetic-monitor", "storefront")

#: The provisioning script compose runs (bugsink-provision): the tests provision with it too.
PROVISION_SCRIPT = Path(__file__).resolve().parents[2] / "bugsink" / "provision.py"


def provision_command(script: Path = PROVISION_SCRIPT) -> list[str]:
    """Return the ``bugsink-manage`` arguments that run the provisioning script."""
    code = f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')"
    return ["shell", "-c", code]


def require_bugsink() -> None:
    """Skip (locally) or fail (in CI) when Bugsink's commands are not installed."""
    if BUGSINK_MANAGE.exists() and BUGSINK_CREATE_CONF.exists():
        return
    message = (
        f"Bugsink is not installed ({BUGSINK_MANAGE} missing): run 'uv sync --all-packages' "
        "(demo-app's dev group pins bugsink)"
    )
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


class Bugsink:
    """The real Bugsink from PyPI on a loopback port, SQLite in a folder, a project per service."""

    def __init__(self, workdir: Path, projects: Sequence[str] = BUGSINK_PROJECTS) -> None:
        self.workdir = workdir
        self.projects = tuple(projects)
        self.port = free_port()
        self.db_path = workdir / "db.sqlite3"
        self.log_path = workdir / "bugsink.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bugsink_conf",
            "PYTHONPATH": str(workdir),
        }
        self.env.pop("SENTRY_DSN", None)
        self.dsns: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None

    def _run(self, *args: str, timeout: float = 60.0) -> str:
        done = subprocess.run(
            [str(BUGSINK_MANAGE), *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            msg = f"bugsink-manage {args[0]} failed ({done.returncode}): {done.stderr[-2000:]}"
            raise RuntimeError(msg)
        return done.stdout

    def start(self) -> None:
        """Write the config, migrate both databases, create the projects, start the server."""
        conf = self.workdir / "bugsink_conf.py"
        subprocess.run(
            [
                str(BUGSINK_CREATE_CONF),
                "--template=local",
                "--host=127.0.0.1",
                f"--port={self.port}",
                f"--output-file={conf}",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        with conf.open("a") as out:
            out.write(
                f'DATABASES["default"]["NAME"] = {str(self.db_path)!r}\n'
                f'DATABASES["snappea"]["NAME"] = {str(self.workdir / "snappea.sqlite3")!r}\n'
            )
        # The two databases migrate in parallel: together they are most of the start-up time.
        snappea = subprocess.Popen(
            [str(BUGSINK_MANAGE), "migrate", "--database=snappea", "-v0"],
            env=self.env,
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._run("migrate", "-v0")
        _, err = snappea.communicate(timeout=60)
        if snappea.returncode != 0:
            msg = f"bugsink-manage migrate --database=snappea failed: {err.decode()[-2000:]}"
            raise RuntimeError(msg)
        # Known keys, as compose gives them (bugsink/provision.py), one project per service.
        self.env["BUGSINK_PROJECTS"] = ",".join(
            f"{number}:{name}:{uuid.uuid4().hex}"
            for number, name in enumerate(self.projects, start=1)
        )
        out = self._run(*provision_command())
        provisioned = json.loads(out.strip().splitlines()[-1])["projects"]
        self.dsns = {
            name: f"http://{p['key']}@127.0.0.1:{self.port}/{p['id']}"
            for name, p in provisioned.items()
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(BUGSINK_MANAGE), "runserver", f"127.0.0.1:{self.port}", "--noreload"],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                msg = f"Bugsink exited ({self.process.returncode}); see {self.log_path}"
                raise RuntimeError(msg)
            if _reachable("127.0.0.1", self.port):
                return
            time.sleep(0.1)
        msg = f"Bugsink did not listen on 127.0.0.1:{self.port} within 30 s; see {self.log_path}"
        raise RuntimeError(msg)

    def stop(self) -> None:
        """Stop the server this object started."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def stored_events(self, project: str) -> list[dict[str, Any]]:
        """Return the events Bugsink stored for a project, each as its stored JSON."""
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=10)) as conn:
            rows = conn.execute(
                "SELECT e.data FROM events_event e JOIN projects_project p ON p.id = e.project_id"
                " WHERE p.name = ? ORDER BY e.ingested_at",
                (project,),
            ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def wait_for_event(
        self, project: str, match: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        """Poll the store until an event matches; fail naming what was stored."""
        deadline = time.monotonic() + timeout
        events: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            events = self.stored_events(project)
            for event in events:
                if match(event):
                    return event
            time.sleep(0.2)
        types = [[v.get("type") for v in e.get("exception", {}).get("values", [])] for e in events]
        msg = f"no matching event in Bugsink project {project!r} within {timeout}s: saw {types}"
        raise AssertionError(msg)


@contextlib.contextmanager
def bugsink_server(workdir: Path) -> Iterator[Bugsink]:
    """Start Bugsink for a test session (skip locally / fail in CI when it cannot), then stop it."""
    require_bugsink()
    server = Bugsink(workdir)
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        server.stop()
        message = f"Bugsink could not start: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield server
    finally:
        server.stop()
