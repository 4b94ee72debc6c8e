"""Helpers for the relay's tests: payloads, settings, routing files, a recording HTTP receiver."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from webhook_relay.settings import Settings

TOKEN = "test-relay-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ON_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, what: str) -> None:
    """Skip (fail on CI) when something a test needs is missing."""
    if condition:
        return
    if ON_CI:
        pytest.fail(f"CI=true but {what} is missing")
    pytest.skip(f"{what} is missing")


def alert(
    name: str = "HighErrorRate",
    status: str = "firing",
    fingerprint: str = "f1",
    severity: str = "critical",
    **labels: str,
) -> dict[str, Any]:
    """Return one alert as Alertmanager sends it."""
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": f"{name} is {status}", "description": "error ratio above 5%"},
        "startsAt": "2026-11-25T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-25T10:05:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }


def payload(
    group: str = '{}:{alertname="HighErrorRate"}',
    status: str = "firing",
    receiver: str = "relay",
    alerts: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Return an Alertmanager webhook payload (version 4)."""
    alerts = alerts if alerts is not None else [alert(status=status)]
    return {
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": alerts[0].get("labels", {}).get("alertname", "x")},
        "commonLabels": dict(alerts[0].get("labels", {})),
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
        **extra,
    }


def settings(tmp_path: Path, routing_file: Path | None = None, **overrides: Any) -> Settings:
    """Return fast test settings on a SQLite file in ``tmp_path``."""
    values: dict[str, Any] = {
        "routing_file": routing_file or tmp_path / "routing.yml",
        "database_url": f"sqlite:///{tmp_path / 'relay.db'}",
        "token": TOKEN,
        "poll_interval_seconds": 0.05,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.2,
        "maintenance_interval_seconds": 0.2,
        "delivery_timeout_seconds": 3.0,
        "graceful_timeout_seconds": 2.0,
        "lease_seconds": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


def write_routing(tmp_path: Path, text: str) -> Path:
    """Write a routing file and return its path."""
    path = tmp_path / "routing.yml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        """Return the body parsed as JSON."""
        return json.loads(self.body)


Responder = Callable[[Received], tuple[int, dict[str, str], bytes]]


@dataclass
class Receiver:
    """A local HTTP server that records requests and answers what ``responder`` says."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    rejected: list[Received] = field(default_factory=list)
    responder: Responder = lambda _request: (200, {}, b"ok")
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """Return the base URL."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until at least ``count`` requests arrived; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        with self.lock:
            got = list(self.requests)
        raise AssertionError(f"expected {count} requests, got {len(got)}: {[r.path for r in got]}")


@contextmanager
def receiver() -> Iterator[Receiver]:
    """Run a recording HTTP receiver on 127.0.0.1 (ephemeral port)."""
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            if len(body) < length:
                # The sender died mid-request (the crash tests kill it): not a delivery, as
                # for any HTTP server; the relay sends it again after its restart.
                self.close_connection = True
                return
            request = Received(
                "POST",
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                body,
                time.time(),
            )
            recorder = holder["r"]
            status, headers, body = recorder.responder(request)
            if 200 <= status < 300:
                with recorder.lock:
                    recorder.requests.append(request)
            else:
                with recorder.lock:
                    recorder.rejected.append(request)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recorder = Receiver(server)
    holder["r"] = recorder
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(
    url: str, timeout: float = 15.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until ``url`` answers 200."""
    import httpx

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError as error:
            last = error
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer 200 within {timeout}s (last: {last})")


def start_relay(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m webhook_relay serve`` with ``env`` added to the environment."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "webhook_relay", "serve"],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def alertmanager_binary() -> str | None:
    """Return the Alertmanager binary on PATH (Debian calls it prometheus-alertmanager)."""
    return shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
