"""Error tracking in the monitor, against the real Bugsink (PyPI, SQLite, loopback).

A bug inside a journey run and an error in the housekeeping task each land in the
``synthetic-monitor`` project with the release (and, for the run, its trace id) and no secret
anywhere in the stored JSON; the log line names the event.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from lookout_telemetry.errortracking import release_name
from lookout_telemetry.logs import capture_json_logs
from lookout_telemetry.testing import error_tracking
from monitor_support import target, write
from stack_support.bugsink import Bugsink, bugsink_server
from synthetic_monitor import __version__
from synthetic_monitor.config import load_config
from synthetic_monitor.metrics import MonitorMetrics
from synthetic_monitor.runner import JourneyRunner
from synthetic_monitor.scheduler import Scheduler
from synthetic_monitor.service import Monitor
from synthetic_monitor.storage import MemoryStore

pytestmark = pytest.mark.integration

SECRET = "Hunter2-monitor-secret"
BEARER = "mon-bearer-0a9f8e7d6c"
SECRETS = (SECRET, BEARER)
RELEASE = release_name("lookout-synthetic-monitor", __version__, "beef456")


@pytest.fixture(scope="module")
def bugsink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bugsink]:
    """Run the real Bugsink once for this module (skipped locally, failed in CI, if it cannot)."""
    with bugsink_server(tmp_path_factory.mktemp("bugsink")) as server:
        yield server


def _assert_no_secret(event: dict[str, Any]) -> None:
    stored = json.dumps(event)
    leaked = [secret for secret in SECRETS if secret in stored]
    assert not leaked, f"secrets in the stored event: {leaked}"


async def _boom(*_args: object, **_kwargs: object) -> Any:
    """Fail like a bug would, with a secret in the message and a bearer header in a local."""
    headers = {"Authorization": f"Bearer {BEARER}"}
    msg = f"bug: the target echoed {SECRET} ({len(headers)} headers)"
    raise RuntimeError(msg)


def test_journey_bug_is_stored_with_its_trace_and_no_secret(
    bugsink: Bugsink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug during a run is reported with the run's trace id; the secret it read is scrubbed."""
    monkeypatch.setattr(JourneyRunner, "_attempt", _boom)
    with target() as server:
        text = f"""
journeys:
  - name: crashy
    interval: 1h
    jitter: 0s
    secrets: {{password: {{env: PW}}}}
    steps:
      - name: login
        method: POST
        url: "{server.url}/login"
        json: {{password: "{{{{ secrets.password }}}}"}}
"""
        journey = load_config(write(tmp_path / "j.yml", text), {}).journeys["crashy"]
        scheduler = Scheduler(JourneyRunner(environ={"PW": SECRET}))

        async def main() -> dict[str, Any]:
            scheduler.update({"crashy": journey})
            scheduler.start()
            try:
                return await asyncio.to_thread(
                    bugsink.wait_for_event,
                    "synthetic-monitor",
                    lambda e: e.get("tags", {}).get("journey") == "crashy",
                )
            finally:
                await scheduler.stop(grace=1.0)

        tracking = error_tracking(bugsink.dsns["synthetic-monitor"], release=RELEASE)
        with tracking, capture_json_logs() as lines:
            event = asyncio.run(main())
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["release"] == RELEASE
    trace_id = event["tags"]["trace_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    _assert_no_secret(event)
    (line,) = [ln for ln in lines if ln["message"] == "run crashed"]
    assert line["trace_id"] == trace_id
    assert line["sentry_event_id"].replace("-", "") == event["event_id"].replace("-", "")
    assert not any(secret in json.dumps(line) for secret in SECRETS)


class _BrokenStore(MemoryStore):
    """A history store whose pruning fails with a secret in its message."""

    async def prune(self, before: float) -> int:
        """Fail."""
        msg = f"prune failed: postgresql://monitor:{SECRET}@db/history ({before:.0f})"
        raise RuntimeError(msg)


def test_housekeeping_error_is_stored(bugsink: Bugsink, tmp_path: Path) -> None:
    """An error in the background housekeeping task lands in Bugsink, tagged and scrubbed."""
    write(
        tmp_path / "j.yml",
        "journeys:\n  - name: idle\n    interval: 1h\n    steps:\n"
        "      - {name: home, url: 'http://127.0.0.1:9/'}\n",
    )
    metrics = MonitorMetrics(CollectorRegistry())
    monitor = Monitor(tmp_path, JourneyRunner(observer=metrics), _BrokenStore(), metrics)
    monitor.load_initial()

    async def main() -> dict[str, Any]:
        await monitor.start()
        try:
            return await asyncio.to_thread(
                bugsink.wait_for_event,
                "synthetic-monitor",
                lambda e: e.get("tags", {}).get("task") == "housekeeping",
            )
        finally:
            await monitor.stop(1.0)

    with error_tracking(bugsink.dsns["synthetic-monitor"], release=RELEASE):
        event = asyncio.run(main())
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["release"] == RELEASE
    _assert_no_secret(event)
