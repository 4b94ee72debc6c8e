"""Real ``lookout-demo serve`` processes: graceful drain, workers, bad settings, OTLP export.

Each test starts the services as separate processes on free loopback ports (SQLite files
in the test's tmp_path), waits for their health endpoints with a deadline, and kills every
process it started (its whole process group, so uvicorn workers go too) when it ends.
"""

from __future__ import annotations

import calendar
import contextlib
import gzip
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families

from lookout_demo.shop.seed import DEMO_PASSWORD, PRODUCTS
from lookout_demo.storage.migrations import head_revision

pytestmark = pytest.mark.integration

#: Seconds a service gets to answer its health probe; two spawned uvicorn workers importing
#: the app on a loaded two-core machine take several seconds.
STARTUP_DEADLINE = 45.0
#: Seconds a stopped service gets to exit before its process group is killed.
STOP_DEADLINE = 10.0
CARD = "4242 4242 4242 4242"
FAULT_TOKEN = "process-test-fault-token"

T = TypeVar("T")


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll_until(check: Callable[[], T], description: str, timeout: float) -> T:
    """Call ``check`` until it returns a truthy value; fail with the last error after timeout."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except (AssertionError, httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        time.sleep(0.1)
    pytest.fail(f"{description}: not true within {timeout:g} s (last: {last!r})")


def json_lines(text: str) -> list[dict[str, Any]]:
    """Return the lines of a JSON-lines log that are JSON objects."""
    lines = []
    for line in text.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            lines.append(parsed)
    return lines


def base_env(tmp_path: Path, service: str, **values: str) -> dict[str, str]:
    """Return an environment for a service: the caller's minus app and OTel settings, plus ours."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DEMO_", "OTEL_", "PROMETHEUS_"))
        and key not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        {
            "DEMO_HOST": "127.0.0.1",
            "DATABASE_URL": f"sqlite:///{tmp_path / f'{service}.db'}",
            "DEMO_PASSWORD_HASH_ITERATIONS": "1000",
            "DEMO_SHUTDOWN_DELAY_SECONDS": "0",
            "DEMO_HEALTH_CACHE_TTL_SECONDS": "0",
            "DEMO_LATENCY_MS": "0",
            "DEMO_LATENCY_JITTER_MS": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(values)
    return env


@dataclass
class Service:
    """One ``lookout-demo serve`` process, its port and its captured output."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @property
    def url(self) -> str:
        """Return the base URL the service listens on."""
        return f"http://127.0.0.1:{self.port}"

    def stdout(self) -> str:
        """Return what the process wrote to stdout so far."""
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        """Return what the process wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def logs(self) -> list[dict[str, Any]]:
        """Return the JSON log lines written to stdout so far."""
        return json_lines(self.stdout())

    def assert_running(self) -> None:
        """Fail the test, showing the process's output, when it has exited."""
        if self.process.poll() is not None:
            pytest.fail(
                f"{self.name} exited with {self.process.returncode}\n"
                f"stdout:\n{self.stdout()[-3000:]}\nstderr:\n{self.stderr()[-3000:]}"
            )

    def wait_healthy(self, path: str = "/health/ready", timeout: float = STARTUP_DEADLINE) -> None:
        """Wait until ``path`` answers 200; fail early, with the output, if the process exits."""

        def healthy() -> bool:
            self.assert_running()
            response = httpx.get(self.url + path, timeout=2.0)
            assert response.status_code == 200, response.text
            return True

        poll_until(healthy, f"{self.name} {path} answers 200", timeout)

    def stop(self) -> int:
        """SIGTERM the process and wait for it; SIGKILL its process group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_DEADLINE)
        finally:
            self.kill_group()

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the process group (uvicorn workers included)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=STOP_DEADLINE)


Launch = Callable[..., Service]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start ``lookout-demo serve`` processes; stop them (SIGKILL on a hang) afterwards."""
    started: list[Service] = []

    def start(service: str, *args: str, **env: str) -> Service:
        port = free_port()
        index = len(started)
        stdout_path = tmp_path / f"{service}-{index}.stdout"
        stderr_path = tmp_path / f"{service}-{index}.stderr"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lookout_demo",
                    "serve",
                    service,
                    "--port",
                    str(port),
                    *args,
                ],
                env=base_env(tmp_path, service, **env),
                cwd=tmp_path,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: workers are killed with it
            )
        running = Service(service, port, process, stdout_path, stderr_path)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.send_signal(signal.SIGTERM)
    for running in started:
        with contextlib.suppress(subprocess.TimeoutExpired):
            running.process.wait(timeout=STOP_DEADLINE)
        running.kill_group()


def start_stack(
    launch: Launch, *, payments_env: dict[str, str], shop_env: dict[str, str]
) -> tuple[Service, Service]:
    """Start payments and the shop wired to it; return both once the shop is ready."""
    payments = launch("payments", **payments_env)
    shop = launch("shop", DEMO_PAYMENTS_URL=payments.url, **shop_env)
    payments.wait_healthy()
    shop.wait_healthy()
    return payments, shop


def login_headers(client: httpx.Client) -> dict[str, str]:
    """Log in as the demo user alice; return the Authorization header."""
    response = client.post(
        "/api/login", json={"email": "alice@example.com", "password": DEMO_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def checkout(client: httpx.Client, headers: dict[str, str], product_id: int = 2) -> httpx.Response:
    """Buy one of a product by card; return the checkout response."""
    cart = client.post("/api/carts")
    assert cart.status_code == 201, cart.text
    cart_id = cart.json()["id"]
    added = client.post(
        f"/api/carts/{cart_id}/items", json={"product_id": product_id, "quantity": 1}
    )
    assert added.status_code == 200, added.text
    return client.post(
        "/api/checkout",
        json={"cart_id": cart_id, "payment": {"method": "card", "card_number": CARD}},
        headers=headers,
    )


# --- a. SIGTERM drain -------------------------------------------------------------------


@dataclass
class Outcome:
    """One request the load sent: what, when, and how it ended."""

    what: str
    started: float
    finished: float
    status: int | None = None
    error: str | None = None
    body: str = ""

    @property
    def ok(self) -> bool:
        """Tell whether the request got the answer it expects (200 or 201)."""
        return self.status in {200, 201}


@dataclass
class DrainLoad:
    """Concurrent shop traffic that stops sending once readiness reads 503, as an LB would."""

    url: str
    headers: dict[str, str]
    workers: int = 8
    seconds: float = 4.0
    stop: threading.Event = field(default_factory=threading.Event)
    outcomes: list[Outcome] = field(default_factory=list)
    readiness: list[tuple[float, int]] = field(default_factory=list)
    drain_seen_at: float | None = None
    straggler: Outcome | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _send(self, client: httpx.Client, what: str, method: str, path: str, **kw: Any) -> Outcome:
        started = time.monotonic()
        try:
            response = client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            outcome = Outcome(what, started, time.monotonic(), error=f"{type(exc).__name__}: {exc}")
        else:
            outcome = Outcome(
                what, started, time.monotonic(), status=response.status_code, body=response.text
            )
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def _shopper(self, index: int) -> None:
        deadline = time.monotonic() + self.seconds
        with httpx.Client(base_url=self.url, timeout=20.0) as client:
            step = index
            while not self.stop.is_set() and time.monotonic() < deadline:
                step += 1
                if step % 3:
                    self._send(client, "read", "GET", f"/api/products/{1 + step % 12}")
                    continue
                cart = self._send(client, "cart", "POST", "/api/carts")
                if self.stop.is_set() or not cart.ok:
                    continue
                cart_id = json.loads(cart.body)["id"]
                item = self._send(
                    client,
                    "item",
                    "POST",
                    f"/api/carts/{cart_id}/items",
                    json={"product_id": 2, "quantity": 1},
                )
                if self.stop.is_set() or not item.ok:
                    continue
                self._send(
                    client,
                    "checkout",
                    "POST",
                    "/api/checkout",
                    json={"cart_id": cart_id, "payment": {"method": "card", "card_number": CARD}},
                    headers=self.headers,
                )

    def _watch_readiness(self) -> None:
        deadline = time.monotonic() + self.seconds + 5.0
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                response = client.get("/health/ready")
                self.readiness.append((time.monotonic(), response.status_code))
                if response.status_code == 503:
                    self.drain_seen_at = time.monotonic()
                    self.stop.set()  # the load balancer takes the instance out of rotation
                    # ...but one request it had already routed still arrives, and is served.
                    self.straggler = self._send(client, "straggler", "GET", "/api/products/1")
                    return
                time.sleep(0.05)

    def start(self) -> None:
        """Start the shoppers and the readiness watcher."""
        self._threads = [
            threading.Thread(target=self._shopper, args=(i,), daemon=True)
            for i in range(self.workers)
        ]
        self._threads.append(threading.Thread(target=self._watch_readiness, daemon=True))
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        """Wait for every thread to finish."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "the load did not finish in time"


def _wall_clock(timestamp: str) -> float:
    """Turn a log line's ``2026-01-02T03:04:05.678Z`` (UTC) timestamp into epoch seconds."""
    seconds, _, millis = timestamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(seconds, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000


def test_sigterm_drains_without_failing_a_request(launch: Launch) -> None:
    """On SIGTERM readiness reads 503, every request already sent succeeds, and it exits 0."""
    _, shop = start_stack(
        launch,
        payments_env={"DEMO_LATENCY_MS": "300", "DEMO_LATENCY_JITTER_MS": "30"},
        shop_env={
            "DEMO_SHUTDOWN_DELAY_SECONDS": "2",
            "DEMO_GRACEFUL_TIMEOUT_SECONDS": "15",
            "DEMO_FAULT_TOKEN": FAULT_TOKEN,
        },
    )
    with httpx.Client(base_url=shop.url, timeout=10.0) as client:
        headers = login_headers(client)
        order = checkout(client, headers)
        assert order.status_code == 201, order.text
        # One slow route (3 s) so a request is still in flight when the listener closes.
        rule = {"route": "/api/orders/{order_id}", "latency_ms": 3000}
        faults = client.put(
            "/admin/faults", json={"rules": [rule]}, headers={"X-Fault-Token": FAULT_TOKEN}
        )
        assert faults.status_code == 200, faults.text
    slow: dict[str, Any] = {}

    def slow_request() -> None:
        started = time.time()
        try:
            response = httpx.get(
                f"{shop.url}/api/orders/{order.json()['id']}", headers=headers, timeout=20.0
            )
            slow["status"] = response.status_code
        except httpx.HTTPError as exc:
            slow["error"] = f"{type(exc).__name__}: {exc}"
        slow["started"], slow["finished"] = started, time.time()

    load = DrainLoad(shop.url, headers)
    load.start()
    slow_thread = threading.Thread(target=slow_request, daemon=True)
    time.sleep(1.0)
    slow_thread.start()
    time.sleep(0.2)
    shop.process.send_signal(signal.SIGTERM)
    load.join(timeout=15.0)
    slow_thread.join(timeout=20.0)
    exit_code = shop.process.wait(timeout=20.0)

    failures = [o for o in load.outcomes if not o.ok]
    assert failures == [], f"{len(failures)} of {len(load.outcomes)} failed: {failures[:5]}"
    assert sum(o.what == "checkout" for o in load.outcomes) >= 3
    assert load.readiness[0][1] == 200
    assert load.drain_seen_at is not None, f"readiness never read 503: {load.readiness}"
    assert load.straggler is not None and load.straggler.ok, load.straggler
    served_while_draining = [o for o in load.outcomes if o.ok and o.finished > load.drain_seen_at]
    assert served_while_draining, "no request succeeded after readiness read 503"
    assert slow.get("status") == 200, slow

    logs = shop.logs()
    messages = [line["message"] for line in logs if line["logger"].startswith("lookout_demo")]
    assert "shutdown requested: draining" in messages
    assert "stopped" in messages
    assert messages.index("shutdown requested: draining") < messages.index("stopped")
    drain_line = next(line for line in logs if line["message"] == "shutdown requested: draining")
    assert (drain_line["signal"], drain_line["delay_seconds"]) == ("SIGTERM", 2.0)
    # The slow request was still in flight when uvicorn closed the listener, and finished.
    closed_at = _wall_clock(
        next(line for line in logs if line["message"] == "Shutting down")["timestamp"]
    )
    assert slow["started"] < closed_at < slow["finished"]
    assert [line for line in logs if line["level"] in {"error", "critical"}] == []
    # Last, so a wrong exit code does not hide the checks above: a drained stop is a success.
    assert exit_code == 0, f"exit code {exit_code}; stderr: {shop.stderr()[-2000:]}"


# --- b. several workers -----------------------------------------------------------------


def _requests_count(families_text: str, route: str) -> float | None:
    for family in text_string_to_metric_families(families_text):
        for sample in family.samples:
            if sample.name == "http_server_requests_total" and sample.labels == {
                "method": "GET",
                "route": route,
                "status_code": "200",
            }:
                return float(sample.value)
    return None


def _per_worker_requests(multiproc_dir: Path) -> dict[str, float]:
    """Return how many requests each worker served (any route), from its own counter file."""
    counts: dict[str, float] = {}
    for path in multiproc_dir.glob("counter_*.db"):
        pid = path.stem.removeprefix("counter_")
        counts[pid] = sum(
            sample.value
            for metric in multiprocess.MultiProcessCollector.merge([str(path)])
            for sample in metric.samples
            if sample.name == "http_server_requests_total"
        )
    return counts


def test_workers_aggregate_metrics(launch: Launch, tmp_path: Path) -> None:
    """With two workers, every /metrics scrape counts the requests both workers served."""
    # Create and seed the SQLite file with one process first: two workers creating the schema
    # of a fresh file at once is a separate bug (test_schema_creation_is_safe_across_processes).
    first = launch("shop")
    first.wait_healthy("/health/startup")
    first.stop()
    multiproc_dir = tmp_path / "metrics"
    multiproc_dir.mkdir()
    shop = launch("shop", "--workers", "2", PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir))

    def both_workers_started() -> bool:
        shop.assert_running()
        return sum(line["message"] == "started" for line in shop.logs()) == 2

    poll_until(both_workers_started, "both workers finished start-up", STARTUP_DEADLINE)
    shop.wait_healthy("/health/startup")

    def get_products(_: int) -> int:
        # A new connection per request, several at once, so both workers get some.
        response = httpx.get(f"{shop.url}/api/products", headers={"Connection": "close"})
        return response.status_code

    statuses = _in_threads(get_products, range(60), workers=6)
    assert statuses == [200] * 60

    scrapes = []
    for _ in range(6):
        response = httpx.get(f"{shop.url}/metrics", headers={"Connection": "close"})
        assert response.status_code == 200
        scrapes.append(_requests_count(response.text, "/api/products"))
    assert scrapes == [60.0] * 6
    per_worker = _per_worker_requests(multiproc_dir)
    assert len([pid for pid, n in per_worker.items() if n > 0]) == 2, per_worker


def _in_threads(call: Callable[[int], T], items: range, *, workers: int) -> list[T]:
    """Run ``call`` over items on a few threads; return the results in order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(call, items))


SCHEMA_STARTER = """
import asyncio, sys, time
from functools import partial
from pathlib import Path

from lookout_demo.shop import seed
from lookout_demo.storage.database import Database
from lookout_demo.storage.migrations import migrate

url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])


async def main() -> None:
    db = Database(url)
    try:
        ready.touch()
        while not go.exists():
            time.sleep(0.001)
        result = await migrate(db, "shop", seed=partial(seed.seed, password_iterations=1000))
        print("OUTCOME=" + result.outcome, flush=True)
    finally:
        await db.close()


asyncio.run(main())
"""


def _start_together(tmp_path: Path, url: str) -> list[str]:
    """Run two migrating starters that begin within a millisecond; return their outcomes."""
    go = tmp_path / "go"
    readies = [tmp_path / f"ready-{n}" for n in range(2)]
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", SCHEMA_STARTER, url, str(ready), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ready in readies
    ]
    try:
        poll_until(lambda: all(ready.exists() for ready in readies), "both starters ready", 30.0)
        go.touch()  # both call migrate() within a millisecond of each other
        results = [starter.communicate(timeout=30.0) for starter in starters]
    finally:
        for starter in starters:
            starter.kill()
            starter.wait()
    errors = [
        # The exception line of the traceback, e.g. "...OperationalError: table ... exists".
        [line for line in err.splitlines() if "Error: " in line and not line[:1].isspace()][-1:]
        for starter, (_, err) in zip(starters, results, strict=True)
        if starter.returncode != 0
    ]
    assert errors == []
    return sorted(
        line.split("=", 1)[1]
        for out, _ in results
        for line in out.splitlines()
        if line.startswith("OUTCOME=")
    )


def test_schema_migration_is_safe_across_processes(tmp_path: Path) -> None:
    """Two processes migrating one fresh SQLite file at once: one migrates, one finds it done."""
    database = tmp_path / "shared.db"
    outcomes = _start_together(tmp_path, f"sqlite+aiosqlite:///{database}")
    assert outcomes == ["applied", "up_to_date"]
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone() == (len(PRODUCTS),)
        assert conn.execute("SELECT version_num FROM alembic_version_shop").fetchall() == [
            (head_revision("shop"),)
        ]


@pytest.mark.integration
def test_schema_migration_is_safe_across_processes_on_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    """Two processes migrating one empty Postgres database at once never both migrate."""
    url = postgres_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    outcomes = _start_together(tmp_path, url)
    assert outcomes == ["applied", "up_to_date"]


# --- c. settings errors -----------------------------------------------------------------

SECRET = "s3cr3t-fault-token-value"
DB_PASSWORD = "hunter2-db-password"


@pytest.mark.parametrize(
    ("service", "env", "names", "secret"),
    [
        ("shop", {"DEMO_LOG_SUCCESS_SAMPLE_RATE": "2"}, "DEMO_LOG_SUCCESS_SAMPLE_RATE", None),
        ("shop", {"DATABASE_URL": "mysql://x"}, "DATABASE_URL", None),
        (
            "shop",
            {"DEMO_FAULT_TOKEN": SECRET, "DEMO_LOG_SUCCESS_SAMPLE_RATE": "2"},
            "DEMO_LOG_SUCCESS_SAMPLE_RATE",
            SECRET,
        ),
        (
            "shop",
            {"DATABASE_URL": f"mysql://shop:{DB_PASSWORD}@db:3306/shop"},
            "DATABASE_URL",
            DB_PASSWORD,
        ),
        ("payments", {"DEMO_LATENCY_MS": "-5"}, "DEMO_LATENCY_MS", None),
    ],
    ids=[
        "sample-rate-above-one",
        "mysql-database-url",
        "fault-token-not-echoed",
        "database-password-not-echoed",
        "payments-negative-latency",
    ],
)
def test_bad_setting_exits_2_naming_the_variable(
    tmp_path: Path, service: str, env: dict[str, str], names: str, secret: str | None
) -> None:
    """A bad setting stops start-up with exit code 2 and a message naming it, secrets unshown."""
    result = subprocess.run(
        [sys.executable, "-m", "lookout_demo", "serve", service, "--port", str(free_port())],
        env=base_env(tmp_path, service, **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("lookout-demo: invalid settings:"), result.stderr
    assert names in result.stderr
    assert result.stdout == ""
    if secret is not None:
        assert secret not in result.stderr


# --- d. no OTLP endpoint: quiet ---------------------------------------------------------

EXPORTER_NOISE = (
    "Failed to export",
    "Connection refused",
    "Transient error",
    "Exception while exporting",
    "ConnectionError",
    "MaxRetryError",
)


def test_without_otlp_endpoint_nothing_complains(launch: Launch) -> None:
    """With no OTLP endpoint configured, serving and shutting down log no exporter errors."""
    quick = {"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BLRP_SCHEDULE_DELAY": "200"}
    payments, shop = start_stack(launch, payments_env=quick, shop_env=quick)
    with httpx.Client(base_url=shop.url, timeout=10.0) as client:
        headers = login_headers(client)
        assert checkout(client, headers).status_code == 201
        assert client.get("/api/products").status_code == 200
    time.sleep(1.0)  # several schedule delays: an exporter would have tried by now
    shop.stop()  # the shutdown flushes the telemetry providers: a last chance to complain
    payments.stop()
    for service in (shop, payments):
        output = service.stdout() + service.stderr()
        noise = [line for line in output.splitlines() if any(n in line for n in EXPORTER_NOISE)]
        assert noise == [], f"{service.name}: {noise}"
        assert service.stderr() == "", f"{service.name} wrote to stderr"
        levels = {line["level"] for line in service.logs()}
        assert levels <= {"debug", "info"}, f"{service.name} logged {levels}"


def test_export_errors_show_when_the_endpoint_is_down(launch: Launch) -> None:
    """With an OTLP endpoint that refuses connections, export failures are logged as warnings."""
    shop = launch(
        "shop",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_BLRP_SCHEDULE_DELAY="200",
    )
    shop.wait_healthy("/health/startup")
    assert httpx.get(f"{shop.url}/api/products/1").status_code == 200

    def noise() -> list[dict[str, Any]]:
        return [
            line
            for line in shop.logs()
            if any(n in line["message"] for n in EXPORTER_NOISE) and line["level"] == "warning"
        ]

    # The check the quiet test relies on does see exporter trouble when there is some.
    assert poll_until(noise, "exporter warnings in the shop's log", 15.0)
    shop.kill_group()  # a graceful stop would retry the export for seconds


# --- e. OTLP export to a local sink -----------------------------------------------------


class OtlpSink:
    """A stdlib OTLP/HTTP receiver: answers 200 to /v1/traces and /v1/logs, keeps the bodies."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path in {"/v1/traces", "/v1/logs"}:
                    with lock:
                        received.append((self.path, body))
                    self.send_response(200)
                else:
                    self.send_response(404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                """Stay quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Return the endpoint to give OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[tuple[str, str, str]]:
        """Return (service.name, trace id, span name) of every span received."""
        found = []
        for path, body in list(self.received):
            if path != "/v1/traces":
                continue
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                service = _service_name(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    found.extend(
                        (service, span.trace_id.hex(), span.name) for span in scope_spans.spans
                    )
        return found

    def log_records(self) -> list[tuple[str, str, str]]:
        """Return (service.name, trace id, body) of every log record received."""
        found = []
        for path, body in list(self.received):
            if path != "/v1/logs":
                continue
            request = ExportLogsServiceRequest.FromString(body)
            for resource_logs in request.resource_logs:
                service = _service_name(resource_logs.resource.attributes)
                for scope_logs in resource_logs.scope_logs:
                    found.extend(
                        (service, record.trace_id.hex(), record.body.string_value)
                        for record in scope_logs.log_records
                    )
        return found


def _service_name(attributes: Any) -> str:
    return next((a.value.string_value for a in attributes if a.key == "service.name"), "")


@pytest.fixture
def otlp_sink() -> Iterator[OtlpSink]:
    """Run an OTLP/HTTP sink on a loopback port for the test."""
    sink = OtlpSink()
    sink.thread.start()
    yield sink
    sink.server.shutdown()
    sink.server.server_close()


def test_traces_and_logs_reach_the_otlp_endpoint(otlp_sink: OtlpSink, launch: Launch) -> None:
    """A checkout's spans from shop and payments share one trace id, and so do their logs."""
    # otlp_sink comes first so it outlives the services: their shutdown flush reaches it.
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_sink.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_BLRP_SCHEDULE_DELAY": "200",
    }
    _, shop = start_stack(launch, payments_env=otel, shop_env=otel)
    with httpx.Client(base_url=shop.url, timeout=10.0) as client:
        response = checkout(client, login_headers(client))
    assert response.status_code == 201, response.text

    def shared_trace() -> str | None:
        spans = otlp_sink.spans()
        for service, trace_id, name in spans:
            if service == "shop" and name == "POST /api/checkout":
                services = {s for s, t, _ in spans if t == trace_id}
                return trace_id if services == {"shop", "payments"} else None
        return None

    trace_id = poll_until(shared_trace, "checkout spans of shop and payments", 15.0)

    def logged_services() -> set[str]:
        return {service for service, t, _ in otlp_sink.log_records() if t == trace_id}

    poll_until(
        lambda: logged_services() == {"shop", "payments"},
        f"log records of both services with trace id {trace_id}",
        15.0,
    )
    bodies = {body for service, t, body in otlp_sink.log_records() if t == trace_id}
    assert "order paid" in bodies
    assert any(body.startswith("authorisation authorized") for body in bodies), bodies
    assert {service for service, _, _ in otlp_sink.spans()} == {"shop", "payments"}
