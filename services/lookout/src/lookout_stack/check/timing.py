"""Time ranges and intervals the way Grafana computes them for a panel's queries.

* Relative times (``now-6h``, ``now/d``, ``now-1d/d``), absolute ISO 8601 times and epoch
  milliseconds, as in a dashboard's ``time`` or Grafana's ``from``/``to`` URL parameters.
  https://grafana.com/docs/grafana/v13.2/dashboards/use-dashboards/#time-units-and-relative-ranges
* ``$__interval`` and the step: Grafana's Prometheus backend (pkg/promlib/models/query.go,
  ``calculatePrometheusInterval``) takes ``max(round((to - from) / maxDataPoints), min
  interval, round((to - from) / 11000))``, ``round`` being ``gtime.RoundInterval``.
* ``$__rate_interval`` = ``max($__interval + scrape interval, 4 * scrape interval)``, the scrape
  interval being the query's "Min step" if set, else the data source's ``timeInterval``.
  https://grafana.com/docs/grafana/v13.2/datasources/prometheus/template-variables/#use-__rate_interval
* ``$__range`` = ``to - from`` rounded to seconds (``$__range_s``, ``$__range_ms``).
  https://grafana.com/docs/grafana/v13.2/dashboards/variables/add-template-variables/#global-variables
* Loki's step (pkg/tsdb/loki/step.go): ``max(interval * resolution, range / 11000)``, rounded
  up to a millisecond.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "Intervals",
    "TimeRange",
    "format_go_duration",
    "format_interval",
    "intervals_for",
    "loki_step_ms",
    "parse_duration_ms",
    "parse_time",
    "round_interval_ms",
]

# The width, in pixels, Grafana would give a panel of gridPos.w columns (of 24) on a 1920-px
# screen: the frontend asks for at most one data point per pixel (maxDataPoints) unless the
# panel sets maxDataPoints itself. An estimate: a check runs headless.
SCREEN_WIDTH_PX = 1920
GRID_COLUMNS = 24
# Grafana's "safe" resolution: no query asks for more than 11,000 points.
SAFE_RESOLUTION = 11_000

_UNITS_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "M": 2_629_800_000,  # 365.25 / 12 days: gtime.ParseDuration's month
    "y": 31_557_600_000,  # 365.25 days
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|[smhdwMy])")
_RELATIVE = re.compile(r"^now(?P<ops>(?:[+-]\d+[smhdwMy])*)(?:/(?P<round>[smhdwMy]))?$")
_OFFSET = re.compile(r"([+-])(\d+)([smhdwMy])")


@dataclass(frozen=True)
class TimeRange:
    """An absolute time range, in epoch milliseconds."""

    from_ms: int
    to_ms: int

    @property
    def span_ms(self) -> int:
        """Return ``to - from`` in milliseconds."""
        return self.to_ms - self.from_ms

    def iso(self) -> tuple[str, str]:
        """Return both ends as ISO 8601 UTC strings."""
        return (_iso(self.from_ms), _iso(self.to_ms))

    def shifted(self, shift_ms: int) -> TimeRange:
        """Return the range moved ``shift_ms`` into the past (a panel's timeShift)."""
        return TimeRange(self.from_ms - shift_ms, self.to_ms - shift_ms)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def parse_duration_ms(text: str) -> int:
    """Return a Grafana/Prometheus duration (``15s``, ``1m30s``, ``2h``, ``7d``) in ms.

    A bare number is seconds (as gtime.ParseIntervalStringToTimeDuration reads it); a leading
    ``>`` or ``<`` (the "min interval" syntax of some data sources) is ignored.
    """
    value = text.strip().lstrip("<>")
    if re.fullmatch(r"\d+", value):
        return int(value) * 1000
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        msg = f"not a duration: {text!r} (expected e.g. 15s, 1m30s, 2h, 7d)"
        raise ValueError(msg)
    return int(sum(float(number) * _UNITS_MS[unit] for number, unit in parts))


def _floor_to(moment: datetime, unit: str) -> datetime:  # noqa: PLR0911 (one per unit)
    if unit == "s":
        return moment.replace(microsecond=0)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    if unit == "h":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return day
    if unit == "w":  # Grafana's default week starts on Monday (ISO)
        return day - timedelta(days=day.weekday())
    if unit == "M":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def _add(moment: datetime, amount: int, unit: str) -> datetime:
    if unit in {"M", "y"}:
        months = amount * (12 if unit == "y" else 1)
        index = moment.year * 12 + moment.month - 1 + months
        year, month = divmod(index, 12)
        last_day = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month]
        return moment.replace(year=year, month=month + 1, day=min(moment.day, last_day))
    return moment + timedelta(milliseconds=amount * _UNITS_MS[unit])


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def parse_time(text: str, now: datetime, *, round_up: bool = False) -> int:
    """Return a Grafana time (``now-1h``, ``now/d``, ISO 8601, epoch ms) in epoch milliseconds.

    ``round_up`` is for the end of a range: ``now/d`` then means the end of today, as in Grafana.
    """
    value = text.strip()
    if re.fullmatch(r"\d{10,}", value):
        return int(value)
    match = _RELATIVE.fullmatch(value)
    if match:
        moment = now
        for sign, amount, unit in _OFFSET.findall(match["ops"] or ""):
            moment = _add(moment, int(amount) * (-1 if sign == "-" else 1), unit)
        if match["round"]:
            unit = match["round"]
            moment = _floor_to(moment, unit)
            if round_up:
                moment = _add(moment, 1, unit) - timedelta(milliseconds=1)
        return int(moment.timestamp() * 1000)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        msg = (
            f"not a Grafana time: {text!r} (expected now, now-6h, now/d, now-1d/d, an ISO 8601 "
            "time or epoch milliseconds)"
        )
        raise ValueError(msg) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def round_interval_ms(interval_ms: float) -> int:
    """Return Grafana's rounded interval (gtime.RoundInterval) for an interval in ms."""
    steps = [
        (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500),
        (1500, 1000), (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000),
        (25000, 20000), (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000),
        (750000, 600000), (1050000, 900000), (1500000, 1200000), (2700000, 1800000),
        (5400000, 3600000), (9000000, 7200000), (16200000, 10800000), (32400000, 21600000),
        (86400000, 43200000), (172800000, 86400000), (604800000, 86400000),
        (1814400000, 604800000),
    ]  # fmt: skip
    for limit, rounded in steps:
        if interval_ms <= limit:
            return rounded
    return 2_592_000_000 if interval_ms < 3_628_800_000 else 31_536_000_000


def format_interval(ms: int) -> str:
    """Return an interval as Grafana writes ``$__interval`` (gtime.FormatInterval): 30s, 2m, 1d."""
    for unit, size in (("y", 31_536_000_000), ("d", 86_400_000), ("h", 3_600_000)):
        if ms >= size:
            return f"{ms // size}{unit}"
    if ms >= 60_000:
        return f"{ms // 60_000}m"
    if ms >= 1000:
        return f"{ms // 1000}s"
    return f"{max(ms, 1)}ms"


def format_go_duration(ms: int) -> str:
    """Return an interval as Go's time.Duration.String(): 1m0s, 1h30m0s, 500ms.

    Grafana writes ``$__rate_interval`` this way; PromQL accepts it.
    """
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = rest / 1000
    sec = f"{seconds:g}s" if seconds != int(seconds) else f"{int(seconds)}s"
    if hours:
        return f"{hours}h{minutes}m{sec}"
    if minutes:
        return f"{minutes}m{sec}"
    return sec


@dataclass(frozen=True)
class Intervals:
    """What Grafana would substitute and send for one query over one range."""

    interval_ms: int  # the frontend's intervalMs (sent to /api/ds/query)
    step_ms: int  # the step of a range query, and $__interval
    rate_interval_ms: int  # $__rate_interval
    max_data_points: int

    def builtins(self, time_range: TimeRange) -> dict[str, str]:
        """Return the global variables (name without ``$``) and their text for this query."""
        range_ms = time_range.span_ms
        range_s = round(range_ms / 1000)
        return {
            "__interval": format_interval(self.step_ms),
            "__interval_ms": str(self.step_ms),
            "__rate_interval": format_go_duration(self.rate_interval_ms),
            "__rate_interval_ms": str(self.rate_interval_ms),
            "__range": f"{range_s}s",
            "__range_s": str(range_s),
            "__range_ms": str(range_ms),
            "__from": str(time_range.from_ms),
            "__to": str(time_range.to_ms),
        }


def max_data_points_for(panel_max: object, grid_width: object) -> int:
    """Return the panel's maxDataPoints, else its estimated width in pixels."""
    if isinstance(panel_max, int | float) and panel_max > 0:
        return int(panel_max)
    columns = grid_width if isinstance(grid_width, int | float) and grid_width > 0 else 12
    return max(1, round(columns / GRID_COLUMNS * SCREEN_WIDTH_PX))


def intervals_for(
    time_range: TimeRange,
    max_data_points: int,
    scrape_interval_ms: int,
    *,
    min_interval: str | None = None,
    min_step: str | None = None,
    interval_factor: int = 1,
) -> Intervals:
    """Return the interval, step and rate interval Grafana would use for a Prometheus query.

    ``min_interval`` is the panel's "Min interval" (``panel.interval``), ``min_step`` the
    query's "Min step" (``target.interval``), ``scrape_interval_ms`` the data source's
    ``timeInterval`` (Lookout provisions 15s).
    """
    span = time_range.span_ms
    low_limit = parse_duration_ms(min_interval) if min_interval else scrape_interval_ms
    # The frontend: intervalMs = max(round(span / maxDataPoints), low limit).
    interval_ms = max(round_interval_ms(span / max_data_points), low_limit)
    step_text = None if (min_step or "").startswith("$") else min_step
    min_step_ms = parse_duration_ms(step_text) if step_text else interval_ms
    calculated = span / max_data_points
    step = min_step_ms if calculated < min_step_ms else round_interval_ms(calculated)
    step = max(step, round_interval_ms(span / SAFE_RESOLUTION))
    if min_step in {"$__rate_interval", "${__rate_interval}"}:
        rate = max(step + scrape_interval_ms, 4 * scrape_interval_ms)
        return Intervals(interval_ms, rate, rate, max_data_points)
    step *= max(1, interval_factor)
    scrape = parse_duration_ms(step_text) if step_text else scrape_interval_ms
    rate = max(interval_ms + scrape, 4 * scrape)
    return Intervals(interval_ms, step, rate, max_data_points)


def loki_step_ms(interval_ms: int, time_range: TimeRange, resolution: int = 1) -> int:
    """Return the step of a Loki range query (pkg/tsdb/loki/step.go)."""
    return math.ceil(max(interval_ms * resolution, time_range.span_ms / SAFE_RESOLUTION))
