"""The end-to-end report: what the e2e tier checked, printed at the end of the pytest run.

Tests record into this module as they go (``record_panels``, ``record_scenario``,
``record_locust``); ``tests/conftest.py`` prints ``summary()`` in pytest's terminal summary
and writes ``test-artifacts/e2e-report.json``. Nothing is recorded when the e2e tests did not
run, and then nothing is printed.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AlertSeen",
    "PanelCounts",
    "Scenario",
    "record_locust",
    "record_panels",
    "record_scenario",
    "summary",
    "write_json",
]


@dataclass(frozen=True)
class AlertSeen:
    """A notification that reached the relay's target during a scenario."""

    alertname: str
    #: "firing" or "resolved".
    status: str
    severity: str
    #: The Alertmanager receiver it was routed to (page, chat, log, watchdog).
    receiver: str
    #: Seconds from ``since`` (the fault, or the fix for resolved) to its arrival at the target.
    detection_seconds: float
    #: What the seconds are counted from, as the report prints it ("the kill", "the heal"); a
    #: notification that is not the detection of the scenario's fault says so here.
    since: str = "the fault"


@dataclass(frozen=True)
class Scenario:
    """One chaos scenario and its outcome."""

    name: str
    passed: bool
    alerts: list[AlertSeen] = field(default_factory=list)
    #: Why it failed, or anything worth reading.
    detail: str = ""


@dataclass(frozen=True)
class PanelCounts:
    """One `lookout check` run over the dashboards."""

    checked: int
    with_data: int
    #: "dashboard uid / panel title: reason" of every empty or failing panel.
    problems: list[str] = field(default_factory=list)
    #: "dashboard uid / panel title: reason" of every panel not checkable here.
    not_checkable: list[str] = field(default_factory=list)


_lock = threading.Lock()
_panels: list[PanelCounts] = []
_scenarios: list[Scenario] = []
_locust: dict[str, Any] = {}


def record_panels(counts: PanelCounts) -> None:
    """Record a dashboards check."""
    with _lock:
        _panels.append(counts)


def record_scenario(scenario: Scenario) -> None:
    """Record a chaos scenario's outcome (passed or not)."""
    with _lock:
        _scenarios.append(scenario)


def record_locust(figures: dict[str, Any]) -> None:
    """Record the Locust run's headline figures (requests, failure ratio, percentiles)."""
    with _lock:
        _locust.update(figures)


def summary() -> list[str]:
    """Return the report's lines, or none when nothing was recorded."""
    with _lock:
        if not (_panels or _scenarios or _locust):
            return []
        lines = ["Lookout end-to-end report"]
        if _locust:
            lines.append("  load: " + ", ".join(f"{k} {v}" for k, v in _locust.items()))
        for counts in _panels:
            empty = len(counts.problems)
            lines.append(
                f"  panels: {counts.checked} checked, {counts.with_data} with data, {empty} empty "
                f"or failing, {len(counts.not_checkable)} not checkable here"
            )
            lines.extend(f"    not checkable here: {item}" for item in counts.not_checkable)
            lines.extend(f"    PROBLEM: {item}" for item in counts.problems)
        if _scenarios:
            passed = sum(s.passed for s in _scenarios)
            lines.append(f"  chaos scenarios: {passed} of {len(_scenarios)} passed")
            for scenario in _scenarios:
                mark = "passed" if scenario.passed else "FAILED"
                extra = f" ({scenario.detail})" if scenario.detail else ""
                lines.append(f"    {scenario.name}: {mark}{extra}")
                lines.extend(
                    f"      {a.alertname} {a.status} severity={a.severity} receiver={a.receiver} "
                    f"after {a.detection_seconds:.1f} s from {a.since}"
                    for a in scenario.alerts
                )
        return lines


def write_json(path: Path) -> None:
    """Write everything recorded as JSON (the CI artifact)."""
    with _lock:
        document = {
            "locust": dict(_locust),
            "panels": [asdict(p) for p in _panels],
            "scenarios": [asdict(s) for s in _scenarios],
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
