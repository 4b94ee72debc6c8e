"""The long-running monitor: reloads keep history, reject bad files, follow file changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry

from lookout_telemetry.logs import capture_json_logs
from monitor_support import target, write
from synthetic_monitor.metrics import MonitorMetrics
from synthetic_monitor.runner import JourneyRunner
from synthetic_monitor.service import Monitor
from synthetic_monitor.storage import MemoryStore, RunRecord


def monitor(directory: Path, registry: CollectorRegistry, poll: float = 0.0) -> Monitor:
    """Return a monitor over ``directory`` with an in-memory history."""
    metrics = MonitorMetrics(registry)
    return Monitor(
        directory,
        JourneyRunner(observer=metrics),
        MemoryStore(),
        metrics,
        reload_poll_seconds=poll,
    )


def test_a_bad_reload_keeps_the_old_journeys_and_logs_why(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    """An invalid file is rejected with file and line; the running journeys are unchanged."""
    write(tmp_path / "a.yml", "checks: [{name: one, url: 'http://127.0.0.1:9/'}]")
    service = monitor(tmp_path, registry)
    service.load_initial()
    write(tmp_path / "b.yml", "checks:\n  - {name: two, url: 'gopher://x'}\n")
    with capture_json_logs() as lines:
        assert service.reload() is False
    assert sorted(service.scheduler.journeys) == ["one"]
    (line,) = [x for x in lines if x["logger"] == "synthetic_monitor.service"]
    assert line["level"] == "error"
    assert any("b.yml:2: checks[0](two).url" in error for error in line["errors"])
    assert service.last_reload_error is not None
    assert registry.get_sample_value("synthetic_config_last_reload_successful") == 0
    write(tmp_path / "b.yml", "checks:\n  - {name: two, url: 'http://127.0.0.1:9/'}\n")
    assert service.reload() is True
    assert sorted(service.scheduler.journeys) == ["one", "two"]
    assert service.last_reload_error is None
    assert registry.get_sample_value("synthetic_config_reloads_total", {"result": "failure"}) == 1


def test_history_survives_a_reload(tmp_path: Path, registry: CollectorRegistry) -> None:
    """Runs recorded before a reload are still in the store after it."""
    with target() as server:
        write(tmp_path / "a.yml", f"checks: [{{name: one, url: '{server.url}/ok', interval: 0.1}}]")
        service = monitor(tmp_path, registry)
        service.load_initial()

        async def scenario() -> tuple[set[RunRecord], set[RunRecord]]:
            await service.start()
            await asyncio.sleep(0.4)
            before = set(await service.store.recent_runs("one", 100))
            write(
                tmp_path / "a.yml",
                f"checks: [{{name: one, url: '{server.url}/json', interval: 0.1}}]",
            )
            assert service.reload() is True
            await asyncio.sleep(0.3)
            after = set(await service.store.recent_runs("one", 100))
            await service.stop(1.0)
            return before, after

        before, after = asyncio.run(scenario())
        paths = {seen.path for seen in server.seen}
    assert len(before) >= 2
    assert before <= after, "runs recorded before the reload are gone after it"
    assert len(after) > len(before)
    assert paths == {"/ok", "/json"}


def test_a_changed_file_is_reloaded_when_polling_is_on(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    """With MONITOR_RELOAD_POLL_SECONDS set, editing a file reloads without a signal."""
    path = write(tmp_path / "a.yml", "checks: [{name: one, url: 'http://127.0.0.1:9/'}]")
    service = monitor(tmp_path, registry, poll=0.05)
    service.load_initial()

    async def scenario() -> list[str]:
        await service.start()
        await asyncio.sleep(0.1)
        path.write_text(
            "checks: [{name: one, url: 'http://127.0.0.1:9/'}, {name: two, url: 'http://x/'}]",
            encoding="utf-8",
        )
        for _ in range(60):  # up to 3 s: the watcher looks every 0.05 s
            if "two" in service.scheduler.journeys:
                break
            await asyncio.sleep(0.05)
        names = sorted(service.scheduler.journeys)
        await service.stop(0.5)
        return names

    assert asyncio.run(scenario()) == ["one", "two"]
