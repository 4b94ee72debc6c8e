"""Helpers for the stack CLI's tests: a real Prometheus fed by a local /metrics server, a
protocol-level double of Grafana's /api/ds/query, and the CLI run in-process.

Kept out of conftest.py so tests import them by a name no other package's tests use.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from lookout_stack.cli import main
from stack_support import require_binary
from stack_support.prometheus import run_prometheus

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass
class CliRun:
    """What one in-process ``lookout`` run returned and printed."""

    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> Any:
        """Return the JSON report (the run used --json)."""
        return json.loads(self.stdout)

    def panel(self, title: str) -> dict[str, Any]:
        """Return the JSON report's panel with this title (the first, in file order)."""
        for dashboard in self.report["dashboards"]:
            for panel in dashboard["panels"]:
                if panel["title"] == title:
                    found: dict[str, Any] = panel
                    return found
        msg = f"no panel titled {title!r} in the report"
        raise AssertionError(msg)


def run_cli(*args: str) -> CliRun:
    """Run ``lookout`` in this process, capturing stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse errors
            code = int(exc.code or 0)
    return CliRun(code, out.getvalue(), err.getvalue())


# --- a small /metrics server and the real Prometheus --------------------------------------------


class MetricsServer:
    """Serve a few counters and a histogram on /metrics, increasing on every scrape."""

    def __init__(self) -> None:
        self.scrapes = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.scrapes += 1
                n = server.scrapes
                body = (
                    "# TYPE check_requests_total counter\n"
                    f'check_requests_total{{route="/a",status_code="200"}} {n * 10}\n'
                    f'check_requests_total{{route="/b",status_code="500"}} {n}\n'
                    "# TYPE check_duration_seconds histogram\n"
                    f'check_duration_seconds_bucket{{le="0.1"}} {n * 8}\n'
                    f'check_duration_seconds_bucket{{le="1"}} {n * 10}\n'
                    f'check_duration_seconds_bucket{{le="+Inf"}} {n * 10}\n'
                    f"check_duration_seconds_sum {n * 0.5}\n"
                    f"check_duration_seconds_count {n * 10}\n"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> MetricsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def real_prometheus(workdir: Path, scrape_targets: dict[str, str]) -> Iterator[str]:
    """Run Debian's Prometheus on loopback (temp data dir, 1 s scrapes); yield its URL."""
    binary = require_binary("prometheus")  # skips here, fails under CI=true, when missing
    jobs = "".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
        for job, target in scrape_targets.items()
    )
    config = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n" + jobs
    with run_prometheus(workdir, config, binary=binary) as url:
        yield url


def wait_for_series(url: str, promql: str, timeout: float = 30.0) -> None:
    """Poll Prometheus until ``promql`` returns a series."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5).json()
        if body["data"]["result"]:
            return
        time.sleep(0.5)
    msg = f"no series for {promql} within {timeout:.0f} s"
    raise AssertionError(msg)


# --- a protocol-level double of Grafana ---------------------------------------------------------


@dataclass
class Seen:
    """One request the Grafana double received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any = None
    query: dict[str, list[str]] = field(default_factory=dict)


class GrafanaDouble:
    """A TEST DOUBLE of Grafana's HTTP API, at the protocol level: not Grafana.

    It answers ``POST /api/ds/query`` in Grafana 13's documented shape (``results`` per refId
    with ``frames`` or ``error``; HTTP 400 when a query failed) and the data source proxy's
    label-values call, so the tests can check OUR client: the request it sends, the auth
    header, and how answers map to data / empty / error. What Grafana itself does with a
    query (its interval rules, the backends) is not proven by it.

    A query's answer is chosen by its text: containing ``no_such_metric`` -> a frame with no
    rows; unbalanced brackets -> an error result (HTTP 400); otherwise a frame with three rows.
    """

    def __init__(self, token: str | None = None, respond: Callable[[Seen], Any] | None = None):
        self.token = token
        self.seen: list[Seen] = []
        self.respond = respond
        double = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if double.token is None:
                    return True
                if self.headers.get("Authorization") == f"Bearer {double.token}":
                    return True
                self._reply(401, {"message": "Unauthorized", "traceID": ""})
                return False

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                seen = Seen(
                    "GET", parts.path, dict(self.headers.items()), None, parse_qs(parts.query)
                )
                double.seen.append(seen)
                if not self._authorised():
                    return
                if parts.path.startswith("/api/datasources/proxy/uid/prometheus/api/v1/label/"):
                    self._reply(200, {"status": "success", "data": ["payments", "shop"]})
                    return
                self._reply(404, {"message": "Not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                seen = Seen("POST", urlsplit(self.path).path, dict(self.headers.items()), body)
                double.seen.append(seen)
                if not self._authorised():
                    return
                if seen.path != "/api/ds/query":
                    self._reply(404, {"message": "Not found"})
                    return
                if double.respond is not None:
                    code, answer = double.respond(seen)
                    self._reply(code, answer)
                    return
                self._reply(*answer_ds_query(body))

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def ds_queries(self) -> list[dict[str, Any]]:
        """Return every query object sent to /api/ds/query."""
        return [q for s in self.seen if s.path == "/api/ds/query" for q in s.body["queries"]]

    def __enter__(self) -> GrafanaDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


PARSE_ERROR = 'bad_data: invalid parameter "query": 1:8: parse error: unclosed left parenthesis'


def answer_ds_query(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Answer an /api/ds/query body as Grafana 13 does (see GrafanaDouble's docstring)."""
    results: dict[str, Any] = {}
    failed = False
    for query in body["queries"]:
        text = str(query.get("expr") or query.get("query") or "")
        ref = query["refId"]
        schema = {
            "refId": ref,
            "fields": [{"name": "Time", "type": "time"}, {"name": "Value", "type": "number"}],
        }
        if text.count("(") != text.count(")") or text.count("{") != text.count("}"):
            failed = True
            results[ref] = {
                "status": 400,
                "error": PARSE_ERROR,
                "errorSource": "downstream",
            }
        elif "no_such_metric" in text:
            results[ref] = {
                "status": 200,
                "frames": [{"schema": schema, "data": {"values": [[], []]}}],
            }
        else:
            values = [[1_700_000_000_000, 1_700_000_015_000, 1_700_000_030_000], [1, 2, 3]]
            results[ref] = {
                "status": 200,
                "frames": [{"schema": schema, "data": {"values": values}}],
            }
    return (400 if failed else 200), {"results": results}
