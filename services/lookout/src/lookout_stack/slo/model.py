"""What slo/slos.yaml may say (pydantic v2), and the SLOs resolved from it.

The file has four sections: ``window`` (the compliance window), ``alerts`` (the burn-rate
policy: ``page`` and ``ticket`` pairs of windows with a burn rate), ``indicators`` (how each
SLI is measured, by name) and ``services`` (per service, its SLOs: an indicator, an
objective in percent and, for latency, a threshold). ``SloFile`` checks each field;
``resolve`` checks what spans sections (an indicator that exists, a threshold where the
indicator needs one and one of its bucket boundaries, an alert that can fire at all) and
returns one ``Slo`` per service and SLO name.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from lookout_stack.slo.promql import (
    Selector,
    duration_seconds,
    openmetrics_float,
    parse_selector,
)

__all__ = [
    "AlertPolicy",
    "BurnRateWindows",
    "Indicator",
    "ObjectiveSpec",
    "Problem",
    "Slo",
    "SloFile",
    "resolve",
    "threshold_problem",
]

#: Where a problem is: a path of keys and indexes into the file, and what is wrong.
Problem = tuple[tuple[str | int, ...], str]

_NAME_PATTERN = r"^[a-z][a-z0-9-]*$"
_SLO_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


def _duration(value: str) -> str:
    duration_seconds(value)
    return value


def _selector(value: str) -> str:
    selector = parse_selector(value)
    if "job" in selector.labels():
        msg = 'leave `job` out: the generator adds job="<service>" for each service'
        raise ValueError(msg)
    return value


def _threshold(value: str) -> str:
    if duration_seconds(value) <= 0:
        msg = "the threshold must be longer than 0"
        raise ValueError(msg)
    return value


def _boundaries(value: tuple[float, ...]) -> tuple[float, ...]:
    if any(later <= earlier for earlier, later in pairwise(value)):
        msg = f"list the bucket boundaries once each, in increasing order (got {list(value)})"
        raise ValueError(msg)
    return value


def _as_duration(seconds: float) -> str:
    """Write a bucket boundary as a threshold could say it (0.25 -> 250ms, 1.0 -> 1s)."""
    millis = round(seconds * 1000)
    if abs(millis - seconds * 1000) > 1e-6:
        return f"{seconds} s (not a whole number of ms)"
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


Duration = Annotated[str, AfterValidator(_duration)]
SelectorText = Annotated[str, AfterValidator(_selector)]
Percent = Annotated[Decimal, Field(gt=0, lt=100, max_digits=12)]
BurnRate = Annotated[Decimal, Field(gt=0, max_digits=12)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BurnRateWindows(_Strict):
    """One row of the workbook's table: alert when both windows burn above ``burn_rate``."""

    long_window: Duration
    short_window: Duration
    burn_rate: BurnRate

    @model_validator(mode="after")
    def _short_is_shorter(self) -> BurnRateWindows:
        if duration_seconds(self.short_window) >= duration_seconds(self.long_window):
            msg = (
                f"short_window {self.short_window} must be shorter than long_window "
                f"{self.long_window} (the workbook uses 1/12 of it)"
            )
            raise ValueError(msg)
        return self


class AlertPolicy(_Strict):
    """The multiwindow, multi-burn-rate policy: which windows page, which open a ticket."""

    page: list[BurnRateWindows] = Field(min_length=1)
    ticket: list[BurnRateWindows] = Field(min_length=1)


class Indicator(_Strict):
    """How an SLI is measured: a ratio of counters, or a latency histogram."""

    description: str = Field(min_length=1)
    errors: SelectorText | None = None
    total: SelectorText | None = None
    histogram: SelectorText | None = None
    #: The histogram's bucket boundaries in seconds (its ``le`` values but +Inf), exactly as
    #: the service declares them: a threshold must be one of them, else its SLI selects no
    #: series. A test compares them with the services' real buckets.
    buckets: (
        Annotated[
            # A tuple, not a list: an Indicator is frozen and hashed (each Slo holds one).
            tuple[Annotated[float, Field(gt=0, allow_inf_nan=False)], ...],
            Field(min_length=1),
            AfterValidator(_boundaries),
        ]
        | None
    ) = None

    @field_validator("histogram")
    @classmethod
    def _histogram_base_name(cls, value: str | None) -> str | None:
        metric = parse_selector(value).metric if value is not None else ""
        if metric.endswith(("_bucket", "_count", "_sum")):
            msg = (
                f"name the histogram without its suffix ({metric.rsplit('_', 1)[0]}); "
                "the generator reads its _bucket and _count series"
            )
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Indicator:
        ratio = self.errors is not None or self.total is not None
        if self.histogram is not None and ratio:
            msg = "give either errors and total (a ratio) or histogram (latency), not both"
            raise ValueError(msg)
        if self.histogram is None and (self.errors is None or self.total is None):
            msg = "give errors and total (a ratio of counters) or histogram (a latency histogram)"
            raise ValueError(msg)
        if self.histogram is not None and self.buckets is None:
            msg = (
                "a histogram indicator needs `buckets`: its bucket boundaries in seconds, as "
                "the service declares them (e.g. [0.1, 0.25, 0.5, 1.0])"
            )
            raise ValueError(msg)
        if self.histogram is None and self.buckets is not None:
            msg = "`buckets` applies only to a histogram indicator"
            raise ValueError(msg)
        return self

    @property
    def is_latency(self) -> bool:
        """Tell whether the indicator is a latency histogram (it needs a threshold)."""
        return self.histogram is not None


class ObjectiveSpec(_Strict):
    """One SLO of a service: which indicator, the objective in percent, a latency threshold."""

    indicator: str
    objective: Percent
    threshold: Annotated[str, AfterValidator(_threshold)] | None = None


class SloFile(_Strict):
    """The whole of slo/slos.yaml."""

    window: Duration
    alerts: AlertPolicy
    indicators: dict[Annotated[str, Field(pattern=_NAME_PATTERN)], Indicator] = Field(min_length=1)
    services: dict[
        Annotated[str, Field(pattern=_NAME_PATTERN)],
        Annotated[
            dict[Annotated[str, Field(pattern=_SLO_NAME_PATTERN)], ObjectiveSpec],
            Field(min_length=1),
        ],
    ] = Field(min_length=1)


@dataclass(frozen=True)
class Slo:
    """One SLO, resolved: the service (its scrape job), the SLO name and how it is measured."""

    service: str
    name: str
    indicator_name: str
    indicator: Indicator
    objective_percent: Decimal
    threshold: str | None

    @property
    def objective(self) -> Decimal:
        """Return the objective as a ratio (99.9 -> 0.999), exact."""
        return self.objective_percent / 100

    @property
    def error_budget(self) -> Decimal:
        """Return the share of events allowed to be bad (0.999 -> 0.001), exact."""
        return 1 - self.objective

    @property
    def threshold_seconds(self) -> float | None:
        """Return the latency threshold in seconds, or None for a ratio SLO."""
        return None if self.threshold is None else duration_seconds(self.threshold)

    @property
    def bucket(self) -> str:
        """Return the ``le`` label value of the threshold's bucket (``1s`` -> ``1.0``)."""
        seconds = self.threshold_seconds
        if seconds is None:
            msg = f"{self.service} {self.name}: a ratio SLO has no latency bucket"
            raise ValueError(msg)
        return openmetrics_float(seconds)

    def selectors(self) -> dict[str, Selector]:
        """Return the indicator's parsed selectors by role (errors, total or histogram)."""
        found: dict[str, Any] = {
            "errors": self.indicator.errors,
            "total": self.indicator.total,
            "histogram": self.indicator.histogram,
        }
        return {role: parse_selector(text) for role, text in found.items() if text is not None}


def resolve(document: SloFile) -> tuple[list[Slo], list[Problem]]:
    """Return every SLO of the file, and the problems that span sections."""
    problems: list[Problem] = []
    window = duration_seconds(document.window)
    for severity, rows in (("page", document.alerts.page), ("ticket", document.alerts.ticket)):
        for index, row in enumerate(rows):
            if duration_seconds(row.long_window) > window:
                problems.append(
                    (
                        ("alerts", severity, index, "long_window"),
                        f"{row.long_window} is longer than the window ({document.window})",
                    )
                )
    slos: list[Slo] = []
    for service, objectives in document.services.items():
        for name, spec in objectives.items():
            where: tuple[str | int, ...] = ("services", service, name)
            indicator = document.indicators.get(spec.indicator)
            if indicator is None:
                known = ", ".join(sorted(document.indicators))
                problems.append(
                    ((*where, "indicator"), f"unknown indicator {spec.indicator!r}; known: {known}")
                )
                continue
            if indicator.is_latency and spec.threshold is None:
                problems.append(
                    (
                        where,
                        f"indicator {spec.indicator!r} is a latency histogram: give a "
                        "threshold (e.g. threshold: 1s), one of its bucket boundaries",
                    )
                )
                continue
            wrong = threshold_problem(spec.indicator, indicator, spec.threshold)
            if wrong is not None:
                problems.append(((*where, "threshold"), wrong))
                continue
            slo = Slo(service, name, spec.indicator, indicator, spec.objective, spec.threshold)
            problems.extend(_unreachable_alerts(document.alerts, slo, where))
            slos.append(slo)
    return slos, problems


def threshold_problem(name: str, indicator: Indicator, threshold: str | None) -> str | None:
    """Say why ``threshold`` cannot measure ``indicator`` (None when it can, or is not given).

    A ratio indicator takes no threshold; a histogram's threshold must be one of its bucket
    boundaries, since the SLI selects the bucket ``le="<threshold>"`` and any other value
    selects no series: the SLO would read as empty, not as failing.
    """
    if threshold is None:
        return None
    if not indicator.is_latency:
        return (
            f"indicator {name!r} is a ratio of counters: a threshold applies only to a "
            "histogram indicator"
        )
    boundaries: tuple[float, ...] = indicator.buckets or ()
    wanted = openmetrics_float(duration_seconds(threshold))
    if wanted in {openmetrics_float(bound) for bound in boundaries}:
        return None
    valid = ", ".join(_as_duration(bound) for bound in boundaries)
    return (
        f"{threshold} is not a bucket boundary of indicator {name!r} (its histogram has no "
        f'bucket le="{wanted}", so the SLO would have no data); use one of: {valid}'
    )


def _unreachable_alerts(
    policy: AlertPolicy, slo: Slo, where: tuple[str | int, ...]
) -> list[Problem]:
    """Name burn rates this SLO cannot reach: even 100% bad events burn at 1/budget only."""
    ceiling = 1 / slo.error_budget
    problems: list[Problem] = []
    for severity, rows in (("page", policy.page), ("ticket", policy.ticket)):
        for row in rows:
            if row.burn_rate >= ceiling:
                problems.append(
                    (
                        (*where, "objective"),
                        f"with an objective of {slo.objective_percent}% the budget burns at "
                        f"most {ceiling.normalize():f}x (every event bad), so the {severity} "
                        f"alert at {row.burn_rate}x could never fire; raise the objective or "
                        "lower that burn rate",
                    )
                )
    return problems
