"""Instrumentation overhead of the demo shop: throughput with telemetry fully on vs fully off.

One run starts two shop + payments pairs as real processes on loopback, each with its own
SQLite files:

- ON:  ``DEMO_TELEMETRY_ENABLED=true``, every successful access line written
  (``DEMO_LOG_SUCCESS_SAMPLE_RATE=1.0``, stdout to a log file), traces and logs exported
  over OTLP/HTTP (protobuf) to a small sink that this script runs in a thread, error
  tracking on (``SENTRY_DSN`` at the same sink), client-class and region metrics, and the
  business metrics (inventory gauges, flags, experiments, outbox, API versions);
- OFF: ``DEMO_TELEMETRY_ENABLED=false``, ``DEMO_LOG_LEVEL=WARNING``, no OTLP endpoint, no
  ``SENTRY_DSN``. (Both sides run the app's own work: migrations, audit log, outbox worker.)

After a warm-up of each pair, rounds alternate ON/OFF/ON/OFF... (the machine is small and
noisy, so drift hits both sides alike). Each round runs a load generator in a separate
process (httpx AsyncClient, fixed concurrency, a browsing shopper's mix: product list and
detail reads through the cache, carts written to the database, a few checkouts through the
payments service) for a fixed time, bounded by a request budget as well. The summary gives
the median throughput of each side, p50/p99 latency over all its rounds, the ratio on/off
(target >= 0.85), the shop's CPU time per request, and what the OTLP sink received.

Run: ``uv run python bench/demo_overhead.py [--seconds 8] [--rounds 3] [--concurrency 16]``.
It exits 0 whenever the measurement completed (it is a measurement, not a test), 2 when
the servers could not start, 1 when the load generator failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

HOST = "127.0.0.1"
PREFIX = "demo_overhead:"
TARGET_RATIO = 0.85
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
WARMUP_SECONDS = 3.0
#: Hard cap on requests per load-generator run, on top of its time limit.
MAX_REQUESTS_PER_SECOND = 5_000
#: A load generator that has not finished this long after its time limit is killed.
LOADGEN_GRACE_SECONDS = 60.0
#: Like a Prometheus scrape, but more often: the rounds are short.
SCRAPE_INTERVAL_SECONDS = 2.0

#: The seeded demo accounts (lookout_demo.shop.seed) and their documented demo password.
DEMO_PASSWORD = "lookout-demo"  # noqa: S105 - the demo's public credential
DEMO_USERS = (
    "alice@example.com",
    "bob@example.com",
    *(f"load{n:02d}@example.com" for n in range(1, 11)),
)
PRODUCT_IDS = tuple(range(1, 13))
#: Products seeded with 250-600 units: checkouts reserve stock, and these do not run out
#: within a run of this bench.
CHECKOUT_PRODUCT_IDS = (2, 7, 8, 11, 12)
CATEGORIES = ("optics", "outdoor", "navigation", "stationery")
CARD = "4242424242424242"

#: Cumulative weights of a shopper's actions (one action is 1 to 3 requests).
MIX: tuple[tuple[str, float], ...] = (
    ("list", 0.45),  # GET /api/products?limit=20 (now and then one category)
    ("detail", 0.85),  # GET /api/products/{id}
    ("cart", 0.97),  # POST /api/carts, POST /api/carts/{id}/items
    ("checkout", 1.00),  # a cart with one item, then POST /api/checkout (payments)
)

_OTEL_AND_DEMO_VARS = (
    "OTEL_",
    "DEMO_",
    "SENTRY_",
    "DATABASE_URL",
    "REDIS_URL",
    "PROMETHEUS_MULTIPROC_DIR",
)


class BenchError(Exception):
    """The bench could not measure (the message says why)."""


class ServerStartError(BenchError):
    """A server did not start or did not become ready."""


# --------------------------------------------------------------------------- load generator


@dataclass
class LoadStats:
    """What one load-generator run saw."""

    max_requests: int
    requests: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    scrapes: Counter[str] = field(default_factory=Counter)

    def exhausted(self) -> bool:
        """Whether the request budget is spent."""
        return self.requests >= self.max_requests


async def _timed(
    client: httpx.AsyncClient,
    stats: LoadStats,
    method: str,
    url: str,
    **kwargs: Any,
) -> httpx.Response | None:
    """Send one request and record its status and latency; None when it failed outright."""
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        stats.requests += 1
        stats.statuses[type(exc).__name__] += 1
        return None
    stats.latencies_ms.append((time.perf_counter() - started) * 1000)
    stats.requests += 1
    stats.statuses[str(response.status_code)] += 1
    return response


async def _new_cart(
    client: httpx.AsyncClient, stats: LoadStats, product_id: int
) -> tuple[str | None, bool]:
    """Create a cart and add one of a product; return (cart id, whether the request failed)."""
    created = await _timed(client, stats, "POST", "/api/carts")
    if created is None or created.status_code != 201:
        return None, created is None
    cart_id = str(created.json()["id"])
    added = await _timed(
        client,
        stats,
        "POST",
        f"/api/carts/{cart_id}/items",
        json={"product_id": product_id, "quantity": 1},
    )
    if added is None or added.status_code != 200:
        return None, added is None
    return cart_id, False


async def _shopper(
    client: httpx.AsyncClient,
    stats: LoadStats,
    rng: random.Random,
    token: str,
    deadline: float,
) -> None:
    """Browse, fill carts and check out until the deadline or the request budget."""
    auth = {"Authorization": f"Bearer {token}"}
    failures_in_a_row = 0
    while time.perf_counter() < deadline and not stats.exhausted():
        roll = rng.random()
        action = next(name for name, upto in MIX if roll < upto)
        stats.operations[action] += 1
        failed = False
        if action == "list":
            query = "?limit=20"
            if rng.random() < 0.25:
                query += f"&category={rng.choice(CATEGORIES)}"
            failed = await _timed(client, stats, "GET", f"/api/products{query}") is None
        elif action == "detail":
            url = f"/api/products/{rng.choice(PRODUCT_IDS)}"
            failed = await _timed(client, stats, "GET", url) is None
        elif action == "cart":
            _, failed = await _new_cart(client, stats, rng.choice(PRODUCT_IDS))
        else:
            cart_id, failed = await _new_cart(client, stats, rng.choice(CHECKOUT_PRODUCT_IDS))
            if cart_id is not None:
                body = {"cart_id": cart_id, "payment": {"method": "card", "card_number": CARD}}
                failed = (
                    await _timed(client, stats, "POST", "/api/checkout", json=body, headers=auth)
                    is None
                )
        failures_in_a_row = failures_in_a_row + 1 if failed else 0
        if failures_in_a_row >= 20:  # the server is gone: stop rather than spin
            return


async def _scraper(client: httpx.AsyncClient, stats: LoadStats, deadline: float) -> None:
    """Scrape /metrics now and then, as Prometheus would (not counted as shop traffic)."""
    while time.perf_counter() + SCRAPE_INTERVAL_SECONDS < deadline:
        await asyncio.sleep(SCRAPE_INTERVAL_SECONDS)
        try:
            response = await client.get("/metrics")
        except httpx.HTTPError as exc:
            stats.scrapes[type(exc).__name__] += 1
        else:
            stats.scrapes[str(response.status_code)] += 1


async def _login(client: httpx.AsyncClient, email: str) -> str:
    response = await client.post("/api/login", json={"email": email, "password": DEMO_PASSWORD})
    if response.status_code != 200:
        msg = f"login as {email} failed: {response.status_code} {response.text[:200]}"
        raise BenchError(msg)
    return str(response.json()["token"])


async def _generate_load(
    url: str, seconds: float, concurrency: int, seed: int
) -> dict[str, object]:
    limits = httpx.Limits(
        max_connections=concurrency + 1, max_keepalive_connections=concurrency + 1
    )
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0) as client:
        # Setup, not measured: each shopper logs in once.
        tokens = await asyncio.gather(
            *(_login(client, DEMO_USERS[n % len(DEMO_USERS)]) for n in range(concurrency))
        )
        stats = LoadStats(max_requests=int(seconds * MAX_REQUESTS_PER_SECOND) + 1_000)
        cpu_started = time.process_time()
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            _scraper(client, stats, deadline),
            *(
                _shopper(client, stats, random.Random(seed * 1_000 + n), token, deadline)
                for n, token in enumerate(tokens)
            ),
        )
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    return {
        "requests": stats.requests,
        "seconds": elapsed,
        "latencies_ms": [round(ms, 3) for ms in stats.latencies_ms],
        "statuses": dict(stats.statuses),
        "operations": dict(stats.operations),
        "scrapes": dict(stats.scrapes),
        "loadgen_cpu_share": cpu / elapsed if elapsed > 0 else 0.0,
    }


def loadgen_main(args: argparse.Namespace) -> int:
    """Entry point of the load-generator process: print one JSON object on stdout."""
    import uvloop  # noqa: PLC0415 - only the load generator needs it (a demo-app dependency)

    try:
        result = uvloop.run(
            _generate_load(args.loadgen, args.seconds, args.concurrency, args.loadgen_seed)
        )
    except (BenchError, httpx.HTTPError) as exc:
        print(f"{PREFIX} load generator: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- OTLP sink


class OtlpSink:
    """A tiny OTLP/HTTP receiver (and Sentry envelope sink): answers 200 to POSTs, counts them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.bytes = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                known = self.path in {"/v1/traces", "/v1/logs", "/v1/metrics"}
                sentry = self.path.startswith("/api/")  # sentry-sdk's envelope endpoint
                known = known or sentry
                with sink._lock:
                    sink.requests["sentry" if sentry else self.path if known else "other"] += 1
                    sink.bytes += len(body)
                self.send_response(200 if known else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet: one line per export would drown the progress lines."""

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL exporters are pointed at."""
        return f"http://{HOST}:{self.port}"

    def snapshot(self) -> tuple[Counter[str], int]:
        """Return (requests by path, bytes) received so far."""
        with self._lock:
            return Counter(self.requests), self.bytes

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    """A demo service process that this bench started."""

    name: str
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]
    log_file: IO[bytes]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _base_env() -> dict[str, str]:
    """This environment without any setting the demo app or the OTel SDK would read."""
    return {
        key: value for key, value in os.environ.items() if not key.startswith(_OTEL_AND_DEMO_VARS)
    }


def _server_env(
    *,
    telemetry: bool,
    db_path: Path,
    payments_url: str | None,
    sink_url: str,
    log_sample_rate: float = 1.0,
) -> dict[str, str]:
    env = _base_env()
    env.update(
        {
            "DEMO_HOST": HOST,
            "DATABASE_URL": f"sqlite:///{db_path}",
            "DEMO_SHUTDOWN_DELAY_SECONDS": "0",
            "DEMO_PASSWORD_HASH_ITERATIONS": "1000",
        }
    )
    if payments_url is not None:
        env["DEMO_PAYMENTS_URL"] = payments_url
    if telemetry:
        env.update(
            {
                "DEMO_TELEMETRY_ENABLED": "true",
                "DEMO_LOG_SUCCESS_SAMPLE_RATE": str(log_sample_rate),
                "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                # Error tracking on (events only on errors: the sink counts any as "sentry"),
                # and the trusted region header read for the client-class metrics.
                "SENTRY_DSN": sink_url.replace("://", "://public@", 1) + "/1",
                "DEMO_REGION_HEADER": "X-Region",
            }
        )
    else:
        env.update({"DEMO_TELEMETRY_ENABLED": "false", "DEMO_LOG_LEVEL": "WARNING"})
    return env


def _spawn(service: str, side: str, env: dict[str, str], workdir: Path) -> Server:
    port = _free_port()
    log_path = workdir / f"{service}-{side}.log"
    log_file = log_path.open("wb")
    command = [sys.executable, "-m", "lookout_demo", "serve", service, "--port", str(port)]
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C at the terminal reaches only the bench
    )
    return Server(f"{service}-{side}", f"http://{HOST}:{port}", log_path, process, log_file)


def _wait_ready(servers: Sequence[Server]) -> None:
    """Poll each server's /health/ready until 200, or raise naming its log file."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    pending = list(servers)
    with httpx.Client(timeout=2.0) as client:
        while pending:
            for server in list(pending):
                code = server.process.poll()
                if code is not None:
                    msg = f"{server.name} exited with code {code}; see {server.log_path}"
                    raise ServerStartError(msg)
                with suppress(httpx.HTTPError):
                    if client.get(f"{server.url}/health/ready").status_code == 200:
                        pending.remove(server)
            if not pending:
                return
            if time.monotonic() > deadline:
                names = ", ".join(f"{s.name} (log: {s.log_path})" for s in pending)
                msg = f"not ready within {READY_TIMEOUT_SECONDS:g} s: {names}"
                raise ServerStartError(msg)
            time.sleep(0.2)


def _stop(servers: Sequence[Server]) -> None:
    """SIGTERM every server, SIGKILL whichever is still there after 10 s."""
    for server in servers:
        if server.process.poll() is None:
            with suppress(ProcessLookupError):
                server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for server in servers:
        try:
            server.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{PREFIX} {server.name} ignored SIGTERM; killing it", file=sys.stderr)
            with suppress(ProcessLookupError):
                server.process.kill()
            server.process.wait()
        server.log_file.close()


@dataclass
class Pair:
    """The shop and the payments service of one side (ON or OFF)."""

    side: str
    shop: Server
    payments: Server


@contextmanager
def running_pairs(
    workdir: Path, sink_url: str, log_sample_rate: float = 1.0
) -> Iterator[tuple[Pair, Pair]]:
    """Start the ON and the OFF pair; stop all four processes on the way out, whatever happens."""
    started: list[Server] = []
    try:
        payments: dict[str, Server] = {}
        for side, telemetry in (("on", True), ("off", False)):
            env = _server_env(
                telemetry=telemetry,
                db_path=workdir / f"payments-{side}.db",
                payments_url=None,
                sink_url=sink_url,
                log_sample_rate=log_sample_rate,
            )
            payments[side] = _spawn("payments", side, env, workdir)
            started.append(payments[side])
        _wait_ready(list(payments.values()))
        shops: dict[str, Server] = {}
        for side, telemetry in (("on", True), ("off", False)):
            env = _server_env(
                telemetry=telemetry,
                db_path=workdir / f"shop-{side}.db",
                payments_url=payments[side].url,
                sink_url=sink_url,
                log_sample_rate=log_sample_rate,
            )
            shops[side] = _spawn("shop", side, env, workdir)
            started.append(shops[side])
        _wait_ready(list(shops.values()))
        yield (
            Pair("on", shops["on"], payments["on"]),
            Pair("off", shops["off"], payments["off"]),
        )
    finally:
        _stop(started)


# --------------------------------------------------------------------------- measurement


@dataclass
class Round:
    """One load-generator run against one side."""

    side: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[str, int]
    operations: dict[str, int]
    scrapes: dict[str, int]
    loadgen_cpu_share: float
    shop_cpu_seconds: float
    payments_cpu_seconds: float
    sink_requests: int

    @property
    def throughput(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def not_2xx(self) -> int:
        """Requests that failed or did not answer 2xx."""
        return sum(n for status, n in self.statuses.items() if not status.startswith("2"))


def _percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def _cpu_seconds(server: Server) -> float:
    try:
        times = psutil.Process(server.process.pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def _run_load(pair: Pair, *, seconds: float, concurrency: int, seed: int, sink: OtlpSink) -> Round:
    """Run one load-generator process against a pair's shop; measure it."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--loadgen",
        pair.shop.url,
        "--seconds",
        str(seconds),
        "--concurrency",
        str(concurrency),
        "--loadgen-seed",
        str(seed),
    ]
    shop_cpu, payments_cpu = _cpu_seconds(pair.shop), _cpu_seconds(pair.payments)
    sink_before = sum(sink.snapshot()[0].values())
    try:
        done = subprocess.run(  # noqa: PLW1510 - the return code is checked below
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=seconds + LOADGEN_GRACE_SECONDS,
        )
    except subprocess.TimeoutExpired as exc:
        msg = f"the load generator did not finish within {seconds + LOADGEN_GRACE_SECONDS:g} s"
        raise BenchError(msg) from exc
    if done.returncode != 0:
        msg = f"the load generator failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}"
        raise BenchError(msg)
    data = json.loads(done.stdout)
    return Round(
        side=pair.side,
        requests=int(data["requests"]),
        seconds=float(data["seconds"]),
        latencies_ms=[float(ms) for ms in data["latencies_ms"]],
        statuses=dict(data["statuses"]),
        operations=dict(data["operations"]),
        scrapes=dict(data["scrapes"]),
        loadgen_cpu_share=float(data["loadgen_cpu_share"]),
        shop_cpu_seconds=_cpu_seconds(pair.shop) - shop_cpu,
        payments_cpu_seconds=_cpu_seconds(pair.payments) - payments_cpu,
        sink_requests=sum(sink.snapshot()[0].values()) - sink_before,
    )


def _describe(round_: Round) -> str:
    lat = round_.latencies_ms
    cpu_per_request = round_.shop_cpu_seconds / round_.requests * 1000 if round_.requests else 0.0
    statuses = " ".join(f"{code}:{n}" for code, n in sorted(round_.statuses.items()))
    return (
        f"{round_.throughput:7.1f} req/s  p50 {_percentile(lat, 50):6.1f} ms  "
        f"p99 {_percentile(lat, 99):6.1f} ms  {round_.requests} req ({statuses})  "
        f"shop cpu {cpu_per_request:.2f} ms/req  loadgen cpu {round_.loadgen_cpu_share:.0%}  "
        f"sink +{round_.sink_requests}"
    )


@dataclass
class SideSummary:
    """Medians and pooled percentiles of one side's rounds."""

    throughput: float
    p50_ms: float
    p99_ms: float
    shop_cpu_ms_per_request: float
    not_2xx: int
    requests: int


def _summarise(rounds: Sequence[Round]) -> SideSummary:
    pooled = [ms for r in rounds for ms in r.latencies_ms]
    requests = sum(r.requests for r in rounds)
    return SideSummary(
        throughput=statistics.median(r.throughput for r in rounds),
        p50_ms=_percentile(pooled, 50),
        p99_ms=_percentile(pooled, 99),
        shop_cpu_ms_per_request=sum(r.shop_cpu_seconds for r in rounds) / requests * 1000
        if requests
        else 0.0,
        not_2xx=sum(r.not_2xx for r in rounds),
        requests=requests,
    )


def _measure(args: argparse.Namespace, workdir: Path) -> int:
    sink = OtlpSink()
    sink.start()
    try:
        print(f"{PREFIX} starting shop + payments, telemetry on and off (logs in {workdir})")
        with running_pairs(workdir, sink.url, args.log_sample_rate) as (on, off):
            print(
                f"{PREFIX} on: shop {on.shop.url}, payments {on.payments.url}, OTLP sink {sink.url}"
            )
            print(f"{PREFIX} off: shop {off.shop.url}, payments {off.payments.url}")
            for pair in (on, off):
                warm = _run_load(
                    pair, seconds=WARMUP_SECONDS, concurrency=args.concurrency, seed=0, sink=sink
                )
                print(f"{PREFIX} warm-up {pair.side:<3} {_describe(warm)}")
            sink_before, bytes_before = sink.snapshot()
            rounds: dict[str, list[Round]] = {"on": [], "off": []}
            for n in range(1, args.rounds + 1):
                for pair in (on, off):
                    result = _run_load(
                        pair,
                        seconds=args.seconds,
                        concurrency=args.concurrency,
                        seed=n,
                        sink=sink,
                    )
                    rounds[pair.side].append(result)
                    print(f"{PREFIX} round {n}/{args.rounds} {pair.side:<3} {_describe(result)}")
            sink_after, bytes_after = sink.snapshot()
            exported = sink_after - sink_before
            on_summary, off_summary = _summarise(rounds["on"]), _summarise(rounds["off"])
    finally:
        sink.stop()

    ratio = on_summary.throughput / off_summary.throughput if off_summary.throughput else 0.0
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print()
    for side, summary in (("on ", on_summary), ("off", off_summary)):
        print(
            f"{PREFIX} throughput {side} = {summary.throughput:.1f} req/s "
            f"(median of {args.rounds}), p50 {summary.p50_ms:.1f} ms, p99 {summary.p99_ms:.1f} ms"
        )
    print(
        f"{PREFIX} ratio on/off = {ratio:.2f} (target >= {TARGET_RATIO}, {verdict})  "
        f"OTLP sink received {exported.total()} export requests "
        f"(traces {exported['/v1/traces']}, logs {exported['/v1/logs']}, "
        f"{(bytes_after - bytes_before) / 1e6:.1f} MB)"
    )
    cpu_ratio = (
        off_summary.shop_cpu_ms_per_request / on_summary.shop_cpu_ms_per_request
        if on_summary.shop_cpu_ms_per_request
        else 0.0
    )
    print(
        f"{PREFIX} shop CPU per request on = {on_summary.shop_cpu_ms_per_request:.2f} ms, "
        f"off = {off_summary.shop_cpu_ms_per_request:.2f} ms (off/on {cpu_ratio:.2f}); "
        f"non-2xx on {on_summary.not_2xx}/{on_summary.requests}, "
        f"off {off_summary.not_2xx}/{off_summary.requests}"
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="demo_overhead.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="length of a round (8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side (3)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (16)")
    parser.add_argument(
        "--log-sample-rate",
        type=float,
        default=1.0,
        help="DEMO_LOG_SUCCESS_SAMPLE_RATE of the on side (1.0: every access line)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the logs and databases after a completed run"
    )
    # The load-generator process: this same script, started by the bench.
    parser.add_argument("--loadgen", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--loadgen-seed", type=int, default=0, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench (or, with the hidden --loadgen, one load-generator process)."""
    args = _parser().parse_args(argv)
    if not 0 <= args.log_sample_rate <= 1:
        print(f"{PREFIX} --log-sample-rate must be between 0 and 1, not {args.log_sample_rate}")
        return 2
    if not 0 < args.seconds <= 60 or not 1 <= args.rounds <= 10 or args.concurrency < 1:
        print(f"{PREFIX} need 0 < --seconds <= 60, 1 <= --rounds <= 10, --concurrency >= 1")
        return 2
    if args.loadgen:
        return loadgen_main(args)
    workdir = Path(tempfile.mkdtemp(prefix="lookout-bench-"))
    completed = False
    try:
        code = _measure(args, workdir)
        completed = True
        return code
    except ServerStartError as exc:
        print(f"{PREFIX} the servers could not start: {exc}", file=sys.stderr)
        return 2
    except BenchError as exc:
        print(f"{PREFIX} {exc}", file=sys.stderr)
        return 1
    finally:
        if completed and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"{PREFIX} logs and databases kept in {workdir}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
