"""What every query of one panel shares: its range, variables and resolution."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lookout_stack.check.timing import TimeRange
from lookout_stack.check.variables import VariableValue

__all__ = ["QueryContext"]


@dataclass(frozen=True)
class QueryContext:
    """The panel's time range (after timeFrom/timeShift), variables and resolution."""

    time_range: TimeRange
    variables: Mapping[str, VariableValue]
    max_data_points: int
    min_interval: str | None  # the panel's "Min interval" (panel.interval)
    scrape_interval_ms: int  # the Prometheus data source's timeInterval
