"""`synthetic-monitor serve` as a process: readiness, SIGHUP reload, bad config kept out,
SIGTERM shutdown, and the status page in headless Chromium with a screenshot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from monitor_support import REPO, Target, free_port, require_binary, wait_for, write

pytestmark = pytest.mark.integration


@dataclass
class Served:
    """A running monitor process and where to reach it."""

    process: subprocess.Popen[str]
    url: str
    journeys: Path
    log: Path

    def names(self) -> list[str]:
        """Return the journeys the running monitor schedules."""
        response = httpx.get(f"{self.url}/api/v1/journeys", timeout=5)
        return sorted(j["name"] for j in response.json()["journeys"])

    def log_lines(self) -> list[dict[str, object]]:
        """Return the JSON lines the process has written so far."""
        lines = []
        for line in self.log.read_text(encoding="utf-8").splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


@pytest.fixture(scope="module")
def target_server() -> Iterator[Target]:
    """Serve the fixed routes for the monitored journeys."""
    with Target() as server:
        yield server


@contextmanager
def start_monitor(directory: Path, target_url: str) -> Iterator[Served]:
    """Start `synthetic-monitor serve` on a free port with a journeys directory."""
    journeys = directory / "journeys"
    write(
        journeys / "main.yml",
        f"""
checks:
  - {{name: home, url: "{target_url}/ok", interval: 0.5, description: "Home page"}}
  - {{name: broken, url: "{target_url}/status/503", interval: 0.5, retries: 1, retry_delay: 0s}}
journeys:
  - name: login-flow
    interval: 0.5
    steps:
      - {{name: data, url: "{target_url}/json", conditions: ["[BODY].count == 1"]}}
""",
    )
    port = free_port()
    log = directory / "monitor.log"
    env = {
        **os.environ,
        "MONITOR_CONFIG_PATH": str(journeys),
        "MONITOR_PORT": str(port),
        "MONITOR_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'history.db'}",
        "MONITOR_SHUTDOWN_GRACE_SECONDS": "2",
    }
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "synthetic_monitor", "serve"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: (
                process.poll() is None
                and httpx.get(f"{url}/health/ready", timeout=1).status_code == 200
            ),
            f"the monitor to be ready (log: {log})",
            timeout=30,
        )
        yield Served(process, url, journeys, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, target_server: Target) -> Iterator[Served]:
    """One monitor process shared by the reload and Chromium tests (start-up costs seconds)."""
    with start_monitor(tmp_path_factory.mktemp("served"), target_server.url) as monitor:
        yield monitor


def test_sighup_reloads_and_a_bad_config_keeps_the_old_one(
    served: Served, target_server: Target
) -> None:
    """A broken file is rejected (reason logged, page says so); a good one is applied."""
    assert served.names() == ["broken", "home", "login-flow"]
    write(served.journeys / "extra.yml", "checks:\n  - {name: new, url: 'ftp://nope'}\n")
    served.process.send_signal(signal.SIGHUP)
    wait_for(
        lambda: any(
            line["message"] == "configuration rejected; the previous one stays in force"
            for line in served.log_lines()
        ),
        "the rejection to be logged",
    )
    assert served.names() == ["broken", "home", "login-flow"]
    rejected = next(
        line for line in served.log_lines() if line["message"].startswith("configuration rejected")
    )
    assert "extra.yml:2: checks[0](new).url" in json.dumps(rejected["errors"])
    assert "previous configuration is still in force" in httpx.get(served.url + "/", timeout=5).text
    write(
        served.journeys / "extra.yml",
        f"checks:\n  - {{name: new, url: '{target_server.url}/ok', interval: 0.5}}\n",
    )
    served.process.send_signal(signal.SIGHUP)
    wait_for(lambda: served.names() == ["broken", "home", "login-flow", "new"], "the new journey")
    metrics = httpx.get(served.url + "/metrics", timeout=5).text
    assert 'synthetic_config_reloads_total{result="failure"} 1.0' in metrics
    assert "synthetic_config_last_reload_successful 1.0" in metrics


def test_sigterm_stops_the_monitor_gracefully(tmp_path: Path, target_server: Target) -> None:
    """SIGTERM: the process logs its shutdown and exits within the grace period."""
    with start_monitor(tmp_path, target_server.url) as served:
        stop_and_check(served)


def stop_and_check(served: Served) -> None:
    """Send SIGTERM once a failure is recorded; check the exit and the shutdown logs."""
    wait_for(
        lambda: httpx.get(served.url + "/api/v1/failures", timeout=2).json()["failures"],
        "a failure to be recorded",
    )
    started = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    served.process.wait(timeout=15)
    assert time.monotonic() - started < 10
    messages = [line["message"] for line in served.log_lines()]
    assert "monitor stopped" in messages
    runs = [line for line in served.log_lines() if line["message"] == "journey finished"]
    assert runs and all(len(str(line["trace_id"])) == 32 for line in runs)


def test_the_status_page_renders_in_headless_chromium(served: Served, tmp_path: Path) -> None:
    """Debian's Chromium renders the page (no JavaScript needed) and takes a screenshot."""
    chromium = require_binary("chromium", "chromium")
    wait_for(
        lambda: all(
            j["state"] != "unknown"
            for j in httpx.get(served.url + "/api/v1/journeys", timeout=2).json()["journeys"]
        ),
        "every journey to have run",
    )
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    screenshot = artifacts / "monitor-status-page.png"
    screenshot.unlink(missing_ok=True)
    common = [
        chromium,
        "--headless",
        "--no-sandbox",  # the tests run as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-javascript",  # proves the page needs none
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1280,900",
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", served.url + "/"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="journey-broken"' in dom.stdout
    assert "failure" in dom.stdout and "Recent failures" in dom.stdout
    shot = subprocess.run(
        [*common, f"--screenshot={screenshot}", served.url + "/"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000, "the screenshot looks blank"
