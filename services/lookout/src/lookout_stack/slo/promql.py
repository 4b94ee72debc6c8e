"""The small part of PromQL the SLO file uses: series selectors and durations.

A selector is a metric name with optional matchers, ``name{label op "value", ...}``, op one
of ``=``, ``!=``, ``=~``, ``!~`` and values in double quotes (PromQL's single quotes and
backticks are not accepted here, to keep one spelling). Durations are one number and one
unit (``5m``, ``30d``, ``250ms``), the form every window in the file takes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Matcher",
    "Selector",
    "duration_name",
    "duration_seconds",
    "openmetrics_float",
    "parse_selector",
]

_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')
_DURATION = re.compile(r"^([1-9][0-9]*)(ms|s|m|h|d|w)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
# Units a window is named with, largest first (30d stays 30d; Prometheus would say 4w2d).
_NAME_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


@dataclass(frozen=True)
class Matcher:
    """One label matcher, its value kept as written (escapes included)."""

    label: str
    op: str
    value: str

    def render(self) -> str:
        """Return the matcher as PromQL."""
        return f'{self.label}{self.op}"{self.value}"'

    def matches(self, value: str) -> bool:
        """Tell whether a label value satisfies the matcher (regexes anchored, as in PromQL)."""
        wanted = self.value.replace('\\"', '"').replace("\\\\", "\\")
        if self.op == "=":
            return value == wanted
        if self.op == "!=":
            return value != wanted
        found = re.fullmatch(wanted, value) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Selector:
    """A series selector: a metric name and its matchers."""

    metric: str
    matchers: tuple[Matcher, ...] = ()

    def render(self, *, metric: str | None = None, extra: tuple[Matcher, ...] = ()) -> str:
        """Return the selector as PromQL, ``extra`` matchers first, ``metric`` if renamed."""
        matchers = ", ".join(m.render() for m in (*extra, *self.matchers))
        return f"{metric or self.metric}{{{matchers}}}" if matchers else (metric or self.metric)

    def labels(self) -> set[str]:
        """Return the label names the matchers constrain."""
        return {m.label for m in self.matchers}


def parse_selector(text: str) -> Selector:
    """Parse ``name{label op "value", ...}``; raise ValueError saying what is wrong."""
    source = text.strip()
    metric = _METRIC.match(source)
    if metric is None:
        msg = (
            f"{text!r} is not a series selector: start with a metric name, e.g. "
            'http_server_requests_total{status_code=~"5.."}'
        )
        raise ValueError(msg)
    rest = source[metric.end() :].strip()
    if not rest:
        return Selector(metric.group(0))
    if not (rest.startswith("{") and rest.endswith("}")):
        msg = f"{text!r}: after the metric name only {{label matchers}} may follow"
        raise ValueError(msg)
    body, matchers = rest[1:-1], []
    position = 0
    while body[position:].strip():
        found = _MATCHER.match(body, position)
        if found is None:
            msg = (
                f"{text!r}: cannot read the matcher at {body[position:].strip()!r}; write "
                'label="value" (or !=, =~, !~), values in double quotes, separated by commas'
            )
            raise ValueError(msg)
        label, op, value = found.groups()
        if op in {"=~", "!~"}:
            try:
                re.compile(value)
            except re.error as error:
                msg = f"{text!r}: {label}{op}{value!r} is not a valid regular expression: {error}"
                raise ValueError(msg) from None
        matchers.append(Matcher(label, op, value))
        position = found.end()
        if position < len(body):
            if body[position] != ",":
                msg = f"{text!r}: separate matchers with commas"
                raise ValueError(msg)
            position += 1
    return Selector(metric.group(0), tuple(matchers))


def duration_seconds(text: str) -> float:
    """Return the seconds in a duration such as ``5m`` or ``30d``; raise ValueError if bad."""
    found = _DURATION.match(text)
    if found is None:
        msg = f"{text!r} is not a duration: write one number and one unit, e.g. 5m, 1h, 30d, 250ms"
        raise ValueError(msg)
    return float(int(found.group(1)) * _UNIT_SECONDS[found.group(2)])


def duration_name(seconds: float) -> str:
    """Name a window in series names: the largest unit that divides it (86400 -> ``1d``)."""
    for unit, size in _NAME_UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    msg = f"a window of {seconds} s is not a whole number of seconds"
    raise ValueError(msg)


def openmetrics_float(value: float) -> str:
    """Format a bucket boundary as the ``le`` label holds it (``1`` -> ``1.0``).

    prometheus-client writes ``le="1.0"``, and Prometheus 3 normalises every ``le`` value to
    this OpenMetrics form when it scrapes (``formatOpenMetricsFloat``: Go's shortest ``%g``,
    ``.0`` added to integers), so the selector matches whatever client exposed the bucket.
    """
    text = repr(float(value))
    return text if any(c in text for c in ".eEn") else f"{text}.0"
