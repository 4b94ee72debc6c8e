"""The end-of-run report (stack_support.report): what each notification line says."""

from __future__ import annotations

import pytest

from stack_support import report
from stack_support.report import AlertSeen, PanelCounts, Scenario


@pytest.fixture(autouse=True)
def empty_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give each test a report of its own: nothing recorded here reaches the real one."""
    monkeypatch.setattr(report, "_panels", [])
    monkeypatch.setattr(report, "_scenarios", [])
    monkeypatch.setattr(report, "_locust", {})


def test_each_notification_line_names_what_its_seconds_count_from() -> None:
    """A line before the fault says so; a detection line names the fault it is timed from."""
    before = AlertSeen("HTTPErrorRateHigh", "firing", "warning", "chat", 13.9, "the error fault")
    down = AlertSeen("TargetDown", "firing", "critical", "page", 10.0, "the kill")
    report.record_scenario(Scenario("shop killed", True, [before, down]))
    lines = report.summary()
    assert lines[-2:] == [
        "      HTTPErrorRateHigh firing severity=warning receiver=chat after 13.9 s from the "
        "error fault",
        "      TargetDown firing severity=critical receiver=page after 10.0 s from the kill",
    ]


def test_not_checkable_panels_are_not_counted_with_data() -> None:
    """The panels line keeps not-checkable panels apart, each named, never among those with data."""
    report.record_panels(PanelCounts(3, 3, [], ["lookout-stack / Received: --absent"]))
    lines = report.summary()
    assert "  panels: 3 checked, 3 with data, 0 empty or failing, 1 not checkable here" in lines
    assert "    not checkable here: lookout-stack / Received: --absent" in lines


def test_nothing_recorded_prints_nothing() -> None:
    """Without e2e tests in the run the report is empty (conftest prints no section)."""
    assert report.summary() == []
