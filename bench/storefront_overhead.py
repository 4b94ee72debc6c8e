"""Browser telemetry's cost on the storefront: page load time with it on vs off, in one run.

Starts payments and two shops as real processes on loopback (own SQLite files each), the same
but for the storefront's browser telemetry:

- ON:  the pages inline the telemetry's bootstrap, which loads the telemetry bundle
  (OpenTelemetry JS with the document-load, fetch and user-interaction instrumentations,
  web-vitals) and the Sentry browser SDK after the load event, spans exported
  over OTLP/HTTP to a sink this script runs (with CORS, as the collector answers), the Sentry
  DSN at the same sink;
- OFF: ``DEMO_STOREFRONT_TELEMETRY_ENABLED=false``: the same pages and page script, no bundle.

Server-side telemetry is off on both, so only the browser's share differs. Headless Debian
Chromium (Selenium, tests/stack_support/browser.py) loads the catalog, a product, the cart and
the login page, alternating ON/OFF page by page (via about:blank, so one side's unload never
lands in the other's timing), in three modes: the HTTP cache on (repeat views: the bundle is
cached), off (first views: the bundle is downloaded and parsed every time), and off on an
emulated mobile 4G link (first views as a phone sees them; loopback makes any script's cost
look larger than any real network does).
A load's time is the Navigation Timing ``loadEventEnd`` (ms from navigation start). The
telemetry is loaded after the load event (web/src/boot.js), so the ON side also waits for
its ``lookout-telemetry-ready`` mark each time: printed too, it says when clicks are traced.

Run: ``uv run python bench/storefront_overhead.py [--rounds 15]``. Prints the median and p90
per side and mode, and the ratio of the medians (goal: below 1.10, i.e. < 10% more, in
every mode). Exits 0
when the measurement completed, 2 when a server or the browser could not start.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from stack_support.browser import browser, require_bundle  # noqa: E402 - after the path

HOST = "127.0.0.1"
GOAL_RATIO = 1.10
#: Marked by web/src/telemetry.js once its instrumentations are in (after the load event).
READY_MARK = "lookout-telemetry-ready"
PAGES = ("/", "/products/1", "/cart", "/login")
READY_TIMEOUT_SECONDS = 30.0
#: Chromium's network as it is on loopback, and a mobile 4G link (Chrome DevTools' "Fast 4G":
#: 60 ms round trip, 9 Mbit/s down, 1.5 Mbit/s up) where pages load as users see them.
LOOPBACK = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
FAST_4G = {"latency": 60, "downloadThroughput": 9_000_000 / 8, "uploadThroughput": 1_500_000 / 8}
#: (name, HTTP cache disabled, network): repeat views, first views, first views on 4G.
MODES: tuple[tuple[str, bool, dict[str, object]], ...] = (
    ("cached", False, {}),
    ("uncached", True, {}),
    ("4g-first", True, FAST_4G),
)
_DROP = ("OTEL_", "DEMO_", "SENTRY_", "DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")


class StartError(RuntimeError):
    """A server or the browser did not start (the message says which, and where to look)."""


class _Sink(BaseHTTPRequestHandler):
    """Accept OTLP/HTTP and Sentry envelopes from a page, with the CORS answers they need."""

    received = 0

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin", "*"))
        self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Access-Control-Allow-Credentials", "true")

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        self._cors()
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received += 1
        self.send_response(200)
        self._cors()
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: object) -> None:
        return


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def _servers(workdir: Path, sink: str) -> Iterator[dict[str, str]]:
    """Start payments, shop-on and shop-off; yield their URLs; stop them all."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_DROP)}
    base.update(
        {
            "DEMO_HOST": HOST,
            "DEMO_TELEMETRY_ENABLED": "false",
            "DEMO_LOG_LEVEL": "WARNING",
            "DEMO_SHUTDOWN_DELAY_SECONDS": "0",
        }
    )
    ports = {name: _free_port() for name in ("payments", "on", "off")}
    urls = {name: f"http://{HOST}:{port}" for name, port in ports.items()}
    sides = {
        "payments": {},
        "on": {
            "DEMO_STOREFRONT_OTLP_TRACES_URL": f"{sink}/v1/traces",
            "DEMO_STOREFRONT_SENTRY_DSN": sink.replace("://", "://public@", 1) + "/1",
        },
        "off": {"DEMO_STOREFRONT_TELEMETRY_ENABLED": "false"},
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, extra in sides.items():
            env = {**base, **extra, "DATABASE_URL": f"sqlite:///{workdir / name}.db"}
            if name != "payments":
                env["DEMO_PAYMENTS_URL"] = urls["payments"]
            service = "payments" if name == "payments" else "shop"
            log = (workdir / f"{name}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "lookout_demo", "serve", service],
                    env={**env, "DEMO_PORT": str(ports[name])},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        for name, url in urls.items():
            while True:
                with suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    msg = (
                        f"{name} not ready in {READY_TIMEOUT_SECONDS:g} s; see {workdir}/{name}.log"
                    )
                    raise SystemExit(msg)
                time.sleep(0.2)
        yield urls
    finally:
        for process in processes:
            with suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _load_ms(driver: object, url: str) -> float:
    """Load a page after about:blank; return its Navigation Timing loadEventEnd in ms."""
    driver.get("about:blank")  # type: ignore[attr-defined]
    driver.get(url)  # type: ignore[attr-defined]
    return _poll_ms(
        driver,
        "const n = performance.getEntriesByType('navigation')[0];"
        "return n && n.loadEventEnd > 0 ? n.loadEventEnd : null;",
        f"{url} never finished loading",
    )


def _ready_ms(driver: object, url: str) -> float:
    """Return when the page's telemetry was ready (its performance mark), in ms."""
    return _poll_ms(
        driver,
        f"const m = performance.getEntriesByName({READY_MARK!r})[0];return m ? m.startTime : null;",
        f"{url}: the telemetry never became ready",
    )


def _poll_ms(driver: object, script: str, failure: str) -> float:
    for _ in range(500):
        value = driver.execute_script(script)  # type: ignore[attr-defined]
        if value:
            return float(value)
        time.sleep(0.02)
    raise RuntimeError(failure)


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def main() -> int:
    """Measure, print, return the exit code."""
    try:
        return _measure()
    except StartError as exc:
        print(f"storefront_overhead: {exc}", file=sys.stderr)
        return 2


def _measure() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="loads of each page per side/mode")
    args = parser.parse_args()
    require_bundle()
    sink = ThreadingHTTPServer((HOST, 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://{HOST}:{sink.server_address[1]}"
    with (
        tempfile.TemporaryDirectory(prefix="storefront-bench-") as tmp,
        _servers(Path(tmp), sink_url) as urls,
        browser(1280, 900) as driver,
    ):
        driver.execute_cdp_cmd("Network.enable", {})
        results: dict[tuple[str, str], list[float]] = {}
        ready: dict[str, list[float]] = {}
        for mode, disabled, network in MODES:
            driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": disabled})
            driver.execute_cdp_cmd("Network.emulateNetworkConditions", {**LOOPBACK, **network})
            for side in ("on", "off"):  # warm-up: templates, cache, the browser itself
                for page in PAGES:
                    _load_ms(driver, urls[side] + page)
            for _ in range(args.rounds):
                for page in PAGES:
                    for side in ("on", "off"):
                        results.setdefault((mode, side), []).append(
                            _load_ms(driver, urls[side] + page)
                        )
                        if side == "on":
                            ready.setdefault(mode, []).append(_ready_ms(driver, urls[side] + page))
    sink.shutdown()
    print(f"storefront page load (loadEventEnd), {args.rounds} x {len(PAGES)} pages per side:")
    worst = 0.0
    for mode, _, _ in MODES:
        on, off = results[(mode, "on")], results[(mode, "off")]
        ratio = statistics.median(on) / statistics.median(off)
        worst = max(worst, ratio)
        print(
            f"  {mode:9} on: median {statistics.median(on):6.1f} ms  p90 {_p90(on):6.1f} ms"
            f" | off: median {statistics.median(off):6.1f} ms  p90 {_p90(off):6.1f} ms"
            f" | ratio on/off {ratio:.3f} ({(ratio - 1) * 100:+.1f}%)"
        )
        print(
            f"  {'':9} on: telemetry ready (after the load event) median"
            f" {statistics.median(ready[mode]):6.1f} ms  p90 {_p90(ready[mode]):6.1f} ms"
        )
    print(f"  OTLP and Sentry posts the sink received: {_Sink.received}")
    verdict = "met" if worst < GOAL_RATIO else "NOT met"
    print(f"goal: on/off below {GOAL_RATIO} in every mode: {verdict} (worst {worst:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
