"""Helpers for the demo app's tests: test servers, settings, spans, logins and carts.

Kept out of conftest.py so tests can import them by a name no other package's tests use.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
import sentry_sdk.envelope
import sentry_sdk.transport
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lookout_demo import __version__
from lookout_demo.settings import PaymentsSettings, ShopSettings
from lookout_demo.shop.seed import DEMO_PASSWORD
from lookout_demo.telemetry.errortracking import setup_error_tracking
from lookout_demo.telemetry.otel import Telemetry

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
IN_CI = os.environ.get("CI", "").lower() == "true"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (in CI) when a service the test needs is not listening."""
    if _reachable(host, port):
        return
    message = f"{name} is not listening on {host}:{port}; start it (see the README) and rerun"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


class Spans:
    """A telemetry set-up whose spans land in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.telemetry = Telemetry(tracer_provider=provider)

    def finished(self) -> list[Any]:
        """Return the spans ended so far."""
        return list(self.exporter.get_finished_spans())


class ThreadedServer:
    """A real uvicorn server on a loopback port, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                break
            threading.Event().wait(0.05)
        else:
            msg = "the test server did not start within 10 s"
            raise RuntimeError(msg)
        return self

    @property
    def url(self) -> str:
        """Return the server's base URL."""
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def payments_settings(tmp_path: Path, **overrides: Any) -> PaymentsSettings:
    """Return payments settings for a test: SQLite in tmp_path, no simulated latency."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'payments.db'}",
        "latency_ms": 0.0,
        "latency_jitter_ms": 0.0,
        "shutdown_delay_seconds": 0.0,
    }
    values.update(overrides)
    return PaymentsSettings(**values)


def shop_settings(tmp_path: Path, **overrides: Any) -> ShopSettings:
    """Return shop settings for a test: SQLite in tmp_path, cheap password hashing."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}",
        "password_hash_iterations": 1000,
        "health_cache_ttl_seconds": 0.0,
        "fault_token": "test-fault-token",
    }
    values.update(overrides)
    return ShopSettings(**values)


ShopFactory = Callable[..., TestClient]


def login(client: TestClient, email: str = "alice@example.com") -> dict[str, str]:
    """Log in as a demo user; return the Authorization header."""
    response = client.post("/api/login", json={"email": email, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def new_cart(client: TestClient, *lines: tuple[int, int]) -> str:
    """Create a cart holding (product_id, quantity) lines; return its id."""
    cart_id = str(client.post("/api/carts").json()["id"])
    for product_id, quantity in lines:
        response = client.post(
            f"/api/carts/{cart_id}/items", json={"product_id": product_id, "quantity": quantity}
        )
        assert response.status_code == 200, response.text
    return cart_id


# --------------------------------------------------------------------------- Bugsink

#: Bugsink's management command, installed beside this Python by the dev dependency group.
BUGSINK_MANAGE = Path(sys.executable).with_name("bugsink-manage")
BUGSINK_CREATE_CONF = Path(sys.executable).with_name("bugsink-create-conf")
BUGSINK_PROJECTS = ("shop", "payments")

_PROVISION = """
import json
from teams.models import Team
from projects.models import Project
team = Team.objects.create(name="lookout")
print("DSNS=" + json.dumps({name: Project.objects.create(name=name, team=team).dsn
                            for name in %r}))
"""


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


def free_loopback_port() -> int:
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Bugsink:
    """The real Bugsink from PyPI on a loopback port, SQLite in a folder, a project per service."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_loopback_port()
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
        out = self._run("shell", "-c", _PROVISION % (BUGSINK_PROJECTS,))
        line = next(ln for ln in out.splitlines() if ln.startswith("DSNS="))
        self.dsns = json.loads(line[len("DSNS=") :])
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


class MemoryTransport(sentry_sdk.transport.Transport):
    """A sentry-sdk transport that keeps each event it is given, as the JSON it would send."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: sentry_sdk.envelope.Envelope) -> None:
        """Keep the envelope's event, round-tripped through JSON as it would go on the wire."""
        for item in envelope.items:
            if item.type in {"event", "transaction"}:
                payload = item.payload.json
                self.events.append(json.loads(json.dumps(payload, default=str)))


@contextlib.contextmanager
def error_tracking(
    dsn: str = "http://public@127.0.0.1:9/1", transport: Any = None, revision: str = "abc1234"
) -> Iterator[None]:
    """Turn sentry-sdk on for the block (as the entrypoint does), then off again."""
    assert setup_error_tracking(
        dsn,
        service="shop",
        version=__version__,
        revision=revision,
        environment="test",
        transport=transport,
    )
    try:
        yield
    finally:
        sentry_sdk.flush(timeout=5)
        sentry_sdk.get_client().close(timeout=5)
        sentry_sdk.get_global_scope().set_client(None)
