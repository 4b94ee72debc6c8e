"""Memory per active series of a real Prometheus (Debian's), for docs/scaling.md.

Serves N synthetic series on a loopback scrape target, lets Debian's Prometheus scrape it
until its head holds them all, then reads the process's own ``process_resident_memory_bytes``
and ``go_memstats_heap_inuse_bytes``. It steps N up within one Prometheus (default 0, 20k,
60k) and prints, per step, the head series and memory, and the marginal bytes per series
between steps (the fixed overhead of an empty Prometheus cancels out).

The series look like an app's: a metric name, four labels (job, instance, route of 50
values, pod of 100 values, a unique id) and a value that changes every scrape, so each head
series has an open chunk with samples in it.

Run: ``uv run python bench/prometheus_series.py [--series 20000,60000] [--scrapes 5]``.
Bounded: each step waits at most ``--step-timeout`` seconds (default 90). Exits 0 when the
measurement completed, 2 when Prometheus is missing or did not start, 1 when a step timed out.
"""

from __future__ import annotations

import argparse
import itertools
import re
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

# stack_support lives beside the tests (inserted on sys.path above).
from stack_support.backends import MissingPrerequisite, free_port, system_binary
from stack_support.prometheus import run_prometheus

SCRAPE_INTERVAL_S = 2
METRIC = "lookout_bench_requests_total"


class Target:
    """The series a scrape returns right now: ``count`` of them, values rising each scrape."""

    def __init__(self) -> None:
        self.count = 0
        self.scrapes = 0
        self.lock = threading.Lock()

    def body(self) -> bytes:
        """Render the exposition text for the current count (Prometheus text format 0.0.4)."""
        with self.lock:
            self.scrapes += 1
            count, tick = self.count, self.scrapes
        lines = [f"# TYPE {METRIC} counter"]
        lines.extend(
            f'{METRIC}{{route="/r{i % 50}",pod="pod-{i % 100}",id="{i}"}} {tick * (i % 7 + 1)}'
            for i in range(count)
        )
        return ("\n".join(lines) + "\n").encode()


def serve(target: Target, port: int) -> ThreadingHTTPServer:
    """Serve ``target`` on 127.0.0.1:port/metrics in a background thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = target.body()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def own_metric(url: str, name: str) -> float:
    """Read one unlabelled sample from Prometheus' own /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    if not match:
        msg = f"{name} not in {url}/metrics"
        raise RuntimeError(msg)
    return float(match.group(1))


def settle(url: str, target: Target, expected: int, scrapes: int, timeout: float) -> bool:
    """Wait until the head holds ``expected`` series and ``scrapes`` more scrapes happened."""
    deadline = time.monotonic() + timeout
    while own_metric(url, "prometheus_tsdb_head_series") < expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    start = target.scrapes
    while target.scrapes < start + scrapes:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def main() -> int:
    """Measure and print; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", default="20000,60000", help="comma-separated series counts")
    parser.add_argument("--scrapes", type=int, default=5, help="scrapes to wait at each step")
    parser.add_argument("--step-timeout", type=float, default=90.0, help="seconds per step")
    args = parser.parse_args()
    steps = [0, *sorted(int(n) for n in args.series.split(","))]
    try:
        binary = system_binary("prometheus")
    except MissingPrerequisite as exc:
        print(f"no Prometheus to measure: {exc}", file=sys.stderr)
        return 2
    version = prometheus_version(binary)
    target = Target()
    port = free_port()
    server = serve(target, port)
    config = (
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n"
        f"  scrape_timeout: {SCRAPE_INTERVAL_S}s\n"
        f"scrape_configs:\n  - job_name: bench\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{port}']\n"
    )
    rows: list[tuple[int, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="lookout-series-bench-") as workdir:
        try:
            with run_prometheus(Path(workdir), config, binary=binary) as url:
                # The scrape's own series (up, scrape_*), counted at the empty step 0.
                own = 0.0
                for count in steps:
                    target.count = count
                    expected = int(own) + count
                    if not settle(url, target, expected, args.scrapes, args.step_timeout):
                        print(f"step {count}: head not at {expected} in time", file=sys.stderr)
                        return 1
                    head = own_metric(url, "prometheus_tsdb_head_series")
                    own = own or head
                    rss = own_metric(url, "process_resident_memory_bytes")
                    heap = own_metric(url, "go_memstats_heap_inuse_bytes")
                    rows.append((count, head, rss, heap))
                    print(
                        f"  {count:>7} series served: head {head:>8.0f}  "
                        f"RSS {rss / 2**20:7.1f} MiB  heap in use {heap / 2**20:7.1f} MiB",
                        flush=True,
                    )
        except RuntimeError as exc:
            print(f"Prometheus did not start: {exc}", file=sys.stderr)
            return 2
        finally:
            server.shutdown()
    print(
        f"\nPrometheus {version}, scrape every {SCRAPE_INTERVAL_S} s, {args.scrapes} scrapes a step"
    )
    for (n0, h0, r0, p0), (n1, h1, r1, p1) in itertools.pairwise(rows):
        series = h1 - h0
        print(
            f"  {n0:>7} -> {n1:<7}: {(r1 - r0) / series / 1024:5.2f} KiB RSS per series, "
            f"{(p1 - p0) / series / 1024:5.2f} KiB heap per series"
        )
    first, last = rows[0], rows[-1]
    per_series = (last[2] - first[2]) / (last[1] - first[1])
    print(
        f"\nmarginal RSS per active series, {first[0]} -> {last[0]}: "
        f"{per_series / 1024:.2f} KiB ({per_series:.0f} bytes)"
    )
    return 0


def prometheus_version(binary: Path) -> str:
    """Return ``prometheus --version``'s version number (the first line's third word)."""
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    words = (out.stdout or out.stderr).split()
    return words[2] if len(words) > 2 else "unknown"


if __name__ == "__main__":
    sys.exit(main())
