"""Run tests/load/locustfile.py headless, bounded in users, spawn rate and time, and read its stats.

The run is the one `make load-headless` makes: Locust from this workspace's venv, the budgets
file checked when Locust quits (exit 1 when one breaks), the statistics as Locust's own
``--json`` summary on stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BUDGETS", "LOCUSTFILE", "LocustRun", "run_locust"]

LOAD_DIR = Path(__file__).resolve().parents[1] / "load"
LOCUSTFILE = LOAD_DIR / "locustfile.py"
BUDGETS = LOAD_DIR / "budgets.toml"


@dataclass
class LocustRun:
    """One finished headless run."""

    returncode: int
    stderr: str
    #: Locust's --json summary: one entry per request name (num_requests, num_failures, ...).
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def requests(self) -> dict[str, int]:
        """Return the request count per request name."""
        return {e["name"]: int(e["num_requests"]) for e in self.entries}

    @property
    def failures(self) -> dict[str, int]:
        """Return the failure count of every request name that failed."""
        return {e["name"]: int(e["num_failures"]) for e in self.entries if e["num_failures"]}

    def headline(self, run: str) -> dict[str, Any]:
        """Return the figures the end-to-end report prints for ``run``: its outcome, requests,
        failure ratio and p95 (keys prefixed with ``run``, so two runs do not overwrite)."""
        total = sum(self.requests.values())
        failed = sum(self.failures.values())
        times: list[float] = []
        for entry in self.entries:
            for bucket, count in entry["response_times"].items():
                times.extend([float(bucket)] * int(count))
        times.sort()
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))] if times else 0.0
        return {
            run: "budgets kept" if self.returncode == 0 else "BUDGET BROKEN",
            f"{run} requests": total,
            f"{run} failure ratio": round(failed / total, 4) if total else 0.0,
            f"{run} p95 ms": round(p95),
        }


def run_locust(
    host: str,
    *,
    users: int,
    spawn_rate: float,
    seconds: int,
    budgets: Path = BUDGETS,
    timeout: float | None = None,
) -> LocustRun:
    """Run the locustfile headless against ``host``; bounded by users, rate and run time."""
    locust = Path(sys.executable).parent / "locust"
    command = [
        str(locust), "-f", str(LOCUSTFILE), "--headless", f"--users={users}",
        f"--spawn-rate={spawn_rate}", f"--run-time={seconds}s", "--stop-timeout=5",
        f"--host={host}", f"--budgets={budgets}", "--json", "--only-summary",
    ]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout or seconds + 60,
        check=False,
    )
    entries: list[dict[str, Any]] = []
    if done.stdout.strip():
        entries = json.loads(done.stdout)
    return LocustRun(done.returncode, done.stderr, entries)
