"""Synthetic monitor: single-step HTTP checks per CPU-second vs blackbox_exporter, and
scheduler lateness with 1,000 scheduled checks.

Part 1, efficiency. One local target (a minimal asyncio HTTP server in its own process)
is probed by, in alternating rounds:

- the monitor: a worker process running N single-step HTTP checks (``[STATUS] == 200``)
  through the real ``JourneyRunner`` with everything ``serve`` does per run: a trace (SDK
  tracer, no exporter), conditions, the Prometheus metrics observer, and two JSON log lines
  per check (written to /dev/null). Its CPU time is measured inside the worker around the
  check loop (``getrusage``), so interpreter start-up is not counted;
- Debian's ``prometheus-blackbox-exporter`` (``http_2xx``-style module, fresh connection
  per probe like the monitor), driven through ``/probe`` by this script at the same
  concurrency; its CPU time is read from the exporter process (psutil) before and after.

Both open a new TCP connection per check. The figure is checks per CPU-second of the
prober; the goal is monitor/blackbox >= 1.0.

Part 2, scheduling. A worker schedules 1,000 checks of the same target (interval 10 s,
jitter 10 s: about 100 runs/s) for ``--schedule-seconds`` and records how late each run
started against its jittered slot; the goal is p99 <= 50 ms.

Run: ``uv run python bench/monitor_checks.py [--checks 2000] [--rounds 3] [--concurrency 20]``.
Exit 0 when measured; 2 when blackbox_exporter is not installed (Debian package
prometheus-blackbox-exporter) or a process did not start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import httpx
import psutil
from prometheus_client import CollectorRegistry

from lookout_telemetry.logs import configure_logging
from synthetic_monitor.config.model import Journey
from synthetic_monitor.metrics import MonitorMetrics
from synthetic_monitor.otel import setup_tracing
from synthetic_monitor.runner import JourneyRunner
from synthetic_monitor.scheduler import Scheduler
from synthetic_monitor.service import tune_gc

HOST = "127.0.0.1"
PREFIX = "monitor_checks:"
READY_TIMEOUT_SECONDS = 20.0

TARGET_SOURCE = r"""
import asyncio, sys

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            writer.write(RESPONSE)
            await writer.drain()
            if b"connection: close" in head.lower():
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""

BLACKBOX_CONFIG = """
modules:
  http_200:
    prober: http
    timeout: 5s
    http:
      valid_status_codes: [200]
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""


def free_port() -> int:
    """Return a loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _fail(message: str) -> NoReturn:
    """Print ``message`` on stderr and exit 2 (a process did not start or failed)."""
    print(message, file=sys.stderr)
    sys.exit(2)


def wait_http(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    """Wait until ``url`` answers; exit 2 naming ``what`` if it does not."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _fail(f"{PREFIX} {what} exited with {process.returncode} before it was ready")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    _fail(f"{PREFIX} {what} did not answer {url} within {READY_TIMEOUT_SECONDS:.0f} s")


@contextmanager
def started(command: list[str], url: str, what: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command``, wait for ``url``, stop it (SIGTERM, then SIGKILL) afterwards."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(url, process, what)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# --- workers (run in their own processes) -----------------------------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _monitor_checks(url: str, count: int, concurrency: int) -> dict[str, float]:
    journey = Journey.model_validate(
        {
            "name": "bench",
            "kind": "check",
            "steps": [{"name": "check", "url": url, "conditions": ["[STATUS] == 200"]}],
        }
    )
    metrics = MonitorMetrics(CollectorRegistry())
    runner = JourneyRunner(setup_tracing("bench", "bench"), observer=metrics)
    await runner.run(journey)  # warm-up: imports, SSL context, first connection
    tune_gc()  # as `serve` does once started
    queue = iter(range(count))
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for _ in queue:
            result = await runner.run(journey)
            failures += not result.success

    cpu, wall = _cpu(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "checks": count,
        "failures": failures,
        "cpu": _cpu() - cpu,
        "wall": time.perf_counter() - wall,
    }


async def _schedule(url: str, checks: int, seconds: float) -> dict[str, float]:
    class Lateness:
        def __init__(self) -> None:
            self.values: list[float] = []

        def observe(self, value: float) -> None:
            self.values.append(value)

    metrics = MonitorMetrics(CollectorRegistry())
    lateness = Lateness()
    metrics.lateness = lateness  # type: ignore[assignment]
    runs = 0

    async def count(*_: object) -> None:
        nonlocal runs
        runs += 1

    scheduler = Scheduler(
        JourneyRunner(observer=metrics), metrics, on_result=count, rng=random.Random(7)
    )
    journeys = {
        f"check-{i:04d}": Journey.model_validate(
            {
                "name": f"check-{i:04d}",
                "kind": "check",
                "interval": 10,
                "jitter": 10,
                "steps": [{"name": "check", "url": url, "conditions": ["[STATUS] == 200"]}],
            }
        )
        for i in range(checks)
    }
    scheduler.update(journeys)
    await JourneyRunner().run(journeys["check-0000"])  # warm-up: lazy imports, first connection
    tune_gc()  # as `serve` does once started
    cpu, wall = _cpu(), time.perf_counter()
    scheduler.start()
    await asyncio.sleep(seconds)
    await scheduler.stop(5.0)
    values = sorted(lateness.values)
    quantile = statistics.quantiles(values, n=100) if len(values) >= 2 else [0.0] * 99
    return {
        "runs": runs,
        "p50": quantile[49],
        "p99": quantile[98],
        "max": values[-1] if values else 0.0,
        "cpu": _cpu() - cpu,
        "wall": time.perf_counter() - wall,
    }


def worker_main(args: argparse.Namespace) -> int:
    """Run a worker and print its figures as one JSON line."""
    if args.worker == "monitor":
        with Path(os.devnull).open("w") as sink:
            # As `serve` logs: INFO, two JSON lines per check (to /dev/null here).
            configure_logging("synthetic-monitor", "INFO", stream=sink)
            figures = asyncio.run(_monitor_checks(args.url, args.checks, args.concurrency))
    else:
        figures = asyncio.run(_schedule(args.url, args.scheduled, args.schedule_seconds))
    print(json.dumps(figures))
    return 0


def run_worker(argv: list[str]) -> dict[str, float]:
    """Run this script as a worker process; return its JSON line."""
    done = subprocess.run(
        [sys.executable, __file__, *argv], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        _fail(f"{PREFIX} worker failed ({done.returncode}): {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- the blackbox side ------------------------------------------------------------------------


async def _drive_blackbox(base: str, target: str, count: int, concurrency: int) -> int:
    failures = 0
    queue = iter(range(count))
    params = {"module": "http_200", "target": target}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:

        async def worker() -> None:
            nonlocal failures
            for _ in queue:
                response = await client.get("/probe", params=params)
                failures += "probe_success 1" not in response.text

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


def blackbox_round(
    process: subprocess.Popen[bytes], base: str, target: str, count: int, concurrency: int
) -> dict[str, float]:
    """Probe ``count`` times through blackbox_exporter; return its CPU and wall time."""
    exporter = psutil.Process(process.pid)
    asyncio.run(_drive_blackbox(base, target, 20, 4))  # warm-up
    before = exporter.cpu_times()
    wall = time.perf_counter()
    failures = asyncio.run(_drive_blackbox(base, target, count, concurrency))
    wall = time.perf_counter() - wall
    after = exporter.cpu_times()
    cpu = (after.user - before.user) + (after.system - before.system)
    return {"checks": count, "failures": failures, "cpu": cpu, "wall": wall}


def main() -> int:
    """Measure both parts and print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--checks", type=int, default=2000, help="checks per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--scheduled", type=int, default=1000, help="checks to schedule")
    parser.add_argument("--schedule-seconds", type=float, default=30.0)
    parser.add_argument("--worker", choices=["monitor", "schedule"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args)

    blackbox = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if blackbox is None:
        print(
            f"{PREFIX} prometheus-blackbox-exporter is not installed "
            "(apt-get install prometheus-blackbox-exporter)",
            file=sys.stderr,
        )
        return 2
    shown = subprocess.run([blackbox, "--version"], capture_output=True, text=True, check=False)
    version = (shown.stdout or shown.stderr).splitlines()[:1]
    target_port, blackbox_port = free_port(), free_port()
    target_url = f"http://{HOST}:{target_port}/"
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as scratch:
        config = Path(scratch) / "blackbox.yml"
        config.write_text(BLACKBOX_CONFIG, encoding="utf-8")
        with (
            started([sys.executable, "-c", TARGET_SOURCE, str(target_port)], target_url, "target"),
            started(
                [
                    blackbox,
                    f"--config.file={config}",
                    f"--web.listen-address={HOST}:{blackbox_port}",
                    "--log.level=error",
                ],
                f"http://{HOST}:{blackbox_port}/metrics",
                "blackbox_exporter",
            ) as exporter,
        ):
            base = f"http://{HOST}:{blackbox_port}"
            print(f"{PREFIX} blackbox_exporter: {' '.join(version) or blackbox}")
            print(
                f"{PREFIX} {args.rounds} rounds x {args.checks} checks per side, "
                f"concurrency {args.concurrency}, target {target_url}"
            )
            rates: dict[str, list[float]] = {"monitor": [], "blackbox": []}
            for round_number in range(1, args.rounds + 1):
                for side in ("monitor", "blackbox"):
                    if side == "monitor":
                        figures = run_worker(
                            [
                                "--worker=monitor",
                                f"--url={target_url}",
                                f"--checks={args.checks}",
                                f"--concurrency={args.concurrency}",
                            ]
                        )
                    else:
                        figures = blackbox_round(
                            exporter, base, target_url, args.checks, args.concurrency
                        )
                    rate = figures["checks"] / figures["cpu"] if figures["cpu"] else float("inf")
                    rates[side].append(rate)
                    print(
                        f"{PREFIX} round {round_number} {side:8}: {rate:7.0f} checks/CPU-s "
                        f"({figures['cpu']:.2f} CPU-s, {figures['checks'] / figures['wall']:.0f} "
                        f"checks/s wall, {int(figures['failures'])} failed)"
                    )
            monitor_rate = statistics.median(rates["monitor"])
            blackbox_rate = statistics.median(rates["blackbox"])
            print(
                f"{PREFIX} median checks per CPU-second: monitor {monitor_rate:.0f}, "
                f"blackbox_exporter {blackbox_rate:.0f}, ratio {monitor_rate / blackbox_rate:.2f} "
                "(goal >= 1.0)"
            )
            schedule = run_worker(
                [
                    "--worker=schedule",
                    f"--url={target_url}",
                    f"--scheduled={args.scheduled}",
                    f"--schedule-seconds={args.schedule_seconds}",
                ]
            )
            load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
            print(
                f"{PREFIX} machine load average (1, 5, 15 min) {load} on {os.cpu_count()} CPUs: "
                "lateness is only meaningful when the machine is not oversubscribed"
            )
            print(
                f"{PREFIX} scheduler, {args.scheduled} checks (10 s interval, 10 s jitter) for "
                f"{args.schedule_seconds:.0f} s: {int(schedule['runs'])} runs, lateness p50 "
                f"{schedule['p50'] * 1000:.1f} ms, p99 {schedule['p99'] * 1000:.1f} ms, max "
                f"{schedule['max'] * 1000:.1f} ms (goal p99 <= 50 ms); CPU "
                f"{schedule['cpu'] / schedule['wall'] * 100:.0f} % of one core"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
