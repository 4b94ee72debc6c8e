"""Durable accepts of the webhook relay, side by side with the raw fsync'd SQLite commit rate.

One run, on this machine:

1. raw: single-row INSERT + COMMIT in a loop on a fresh SQLite file (WAL,
   ``synchronous=FULL``: an fsync per commit), for ``--seconds``: commits/s;
2. the relay as a real process (SQLite store in a temp folder, the same settings, delivery
   workers on, every notification routed to a local sink that answers 200), driven by a
   separate load-generator process over keep-alive HTTP/1.1 connections:
   a) fixed rate: 200 requests/s, open loop (latency measured from each request's
      scheduled time, so queueing counts): p50/p99 accept latency, with the workers
      delivering alongside;
   b) saturation: ``--concurrency`` connections in a closed loop: accepts/s (202s);
   c) the backlog that saturation leaves: deliveries/s once the load stops.
   ``--workers 0`` measures an accept-only relay.

It prints both figures and their ratio against the goals (>= 2,000 accepts/s, >= half the
raw commit rate, p99 <= 25 ms at 200/s). Every request carries a distinct groupKey, so
every accept is a real insert (notification, delivery row, idempotency key, audit record).

Run: ``uv run python bench/relay_accepts.py [--seconds 5] [--concurrency 64]``. Exit 0
when the measurement completed (a measurement, not a test), 2 when the relay did not start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TOKEN = "bench-token"  # noqa: S105 (a throwaway token for a loopback benchmark)


def raw_commit_rate(folder: Path, seconds: float) -> float:
    """Return fsync'd single-row commits per second on a fresh SQLite file."""
    connection = sqlite3.connect(folder / "raw.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    body = "x" * 600
    count = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        connection.execute("BEGIN")
        connection.execute("INSERT INTO t (body) VALUES (?)", (body,))
        connection.execute("COMMIT")
        count += 1
    elapsed = time.perf_counter() - started
    connection.close()
    return count / elapsed


def _body(index: int, run: str) -> bytes:
    alert = {
        "status": "firing",
        "labels": {"alertname": "BenchAlert", "severity": "warning", "instance": f"i{index}"},
        "annotations": {"summary": "benchmark alert"},
        "startsAt": "2026-11-25T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": f"{index:016x}",
    }
    payload = {
        "version": "4",
        "groupKey": f"{run}/{index}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "relay",
        "groupLabels": {"alertname": "BenchAlert"},
        "commonLabels": alert["labels"],
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert],
    }
    data = json.dumps(payload).encode()
    head = (
        f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode()
    return head + data


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def _saturate(port: int, seconds: float, concurrency: int, run: str) -> dict[str, Any]:
    counter = iter(range(10**9))
    accepted = 0
    other = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal accepted, other
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            status = await _request(reader, writer, _body(next(counter), run))
            if status == 202:
                accepted += 1
            else:
                other += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"accepts_per_second": accepted / elapsed, "non_202": other}


async def _fixed_rate(port: int, seconds: float, rate: float, run: str) -> dict[str, Any]:
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter() + 0.05
    total = int(seconds * rate)

    async def one(index: int) -> None:
        scheduled = start + index / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        connection = await pool.get()
        try:
            status = await _request(*connection, _body(index, run))
        finally:
            pool.put_nowait(connection)
        latencies.append(time.perf_counter() - scheduled)
        statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(one(index) for index in range(total)))
    latencies.sort()
    return {
        "requests": total,
        "statuses": statuses,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


def loadgen(arguments: argparse.Namespace) -> int:
    """The load-generator process: run both phases, print one JSON line."""
    try:
        import uvloop  # noqa: PLC0415

        uvloop.install()
    except ImportError:
        pass
    port = arguments.port
    # The fixed rate first, on a relay with an empty queue (its workers deliver alongside);
    # then saturation, which leaves a backlog behind.
    fixed = asyncio.run(_fixed_rate(port, arguments.seconds, 200.0, "fixed"))
    saturation = asyncio.run(_saturate(port, arguments.seconds, arguments.concurrency, "sat"))
    print(json.dumps({"saturation": saturation, "fixed": fixed}))
    return 0


class _Sink:
    """A keep-alive HTTP/1.1 sink on its own event loop thread that answers 200 to anything."""

    received = 0

    def __init__(self) -> None:
        self.port = 0
        self._ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        self._ready.wait(10)

    def _serve(self) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    await reader.readexactly(length)
                    _Sink.received += 1
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        async def main() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await server.serve_forever()

        asyncio.run(main())


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> bool:
    import urllib.request  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _goals(figures: dict[str, Any], ratio: float) -> str:
    """The goals line; no goal is met unless every response was a 202."""
    fixed = figures["fixed"]
    all_202 = figures["saturation"]["non_202"] == 0 and set(fixed["statuses"]) <= {"202"}
    return (
        "goals: >= 2,000 accepts/s: {}; >= half the raw rate: {}; p99 <= 25 ms at 200/s: {}".format(
            "met" if all_202 and figures["saturation"]["accepts_per_second"] >= 2000 else "NOT met",
            "met" if all_202 and ratio >= 0.5 else "NOT met",
            "met" if all_202 and fixed["p99_ms"] <= 25 else "NOT met",
        )
    )


def main() -> int:
    """Run the raw measurement, then the relay under load; print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=8, help="the relay's delivery workers")
    parser.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.loadgen:
        return loadgen(arguments)

    with tempfile.TemporaryDirectory(prefix="relay-bench-") as folder_name:
        folder = Path(folder_name)
        raw = raw_commit_rate(folder, arguments.seconds)
        print(f"raw SQLite (WAL, synchronous=FULL) single-row commits: {raw:,.0f}/s")

        sink = _Sink()
        routing = folder / "routing.yml"
        routing.write_text(
            f"targets:\n  sink: {{type: webhook, url: 'http://127.0.0.1:{sink.port}/in'}}\n"
            "fallback: [sink]\n"
        )
        port = _free_port()
        env = {
            **os.environ,
            "RELAY_ROUTING_FILE": str(routing),
            "RELAY_DATABASE_URL": f"sqlite:///{folder / 'relay.db'}",
            "RELAY_TOKEN": TOKEN,
            "RELAY_HOST": "127.0.0.1",
            "RELAY_PORT": str(port),
            "RELAY_WORKERS": str(arguments.workers),
            "RELAY_LOG_LEVEL": "WARNING",
            "OTEL_SDK_DISABLED": "true",
        }
        log = (folder / "relay.log").open("wb")
        relay = subprocess.Popen(
            [sys.executable, "-m", "webhook_relay", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            if not _wait_ready(port, relay):
                tail = (folder / "relay.log").read_text()[-3000:]
                print(f"the relay did not start; its log:\n{tail}")
                return 2
            try:
                result = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--loadgen",
                        f"--port={port}",
                        f"--seconds={arguments.seconds}",
                        f"--concurrency={arguments.concurrency}",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=arguments.seconds * 4 + 60,
                )
            except subprocess.CalledProcessError as error:
                print(f"the load generator failed (exit {error.returncode}):\n{error.stderr}")
                return 1
            # Then the backlog: how fast the workers deliver once the load stops.
            drain_started = time.perf_counter()
            drained_from = _Sink.received
            deadline = drain_started + arguments.seconds * 3
            last, still = _Sink.received, drain_started
            while time.perf_counter() < deadline and arguments.workers > 0:
                time.sleep(0.5)
                if _Sink.received == last and time.perf_counter() - still > 2:
                    break  # nothing more arrives: drained (or stuck)
                if _Sink.received != last:
                    last, still = _Sink.received, time.perf_counter()
            drain_rate = (_Sink.received - drained_from) / max(1e-9, still - drain_started)
        finally:
            relay.terminate()
            relay.wait(timeout=30)
            log.close()
        figures = json.loads(result.stdout.strip().splitlines()[-1])
    accepts = figures["saturation"]["accepts_per_second"]
    fixed = figures["fixed"]
    ratio = accepts / raw
    lines = [
        f"relay durable accepts (saturation, {arguments.concurrency} connections): {accepts:,.0f}/s"
        f" (non-202: {figures['saturation']['non_202']})",
        f"ratio accepts / raw commits: {ratio:.2f}",
        f"accept latency at 200/s for {arguments.seconds:.0f}s: p50 {fixed['p50_ms']:.1f} ms, "
        f"p99 {fixed['p99_ms']:.1f} ms, max {fixed['max_ms']:.1f} ms, statuses {fixed['statuses']}",
        f"deliveries: {_Sink.received} received by the sink in all; after the load stopped, "
        f"{drain_rate:,.0f}/s (workers: {arguments.workers})",
        _goals(figures, ratio),
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
