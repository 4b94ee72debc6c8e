"""Run the check: every panel of every dashboard, concurrently, each panel once per repeat."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from lookout_stack.check.backends import Backend
from lookout_stack.check.context import QueryContext
from lookout_stack.check.errors import VariableError
from lookout_stack.check.grafana import GrafanaQuerier
from lookout_stack.check.model import (
    STATIC_PANELS,
    Dashboard,
    PanelSpec,
    datasource_kind,
    parse_ref,
)
from lookout_stack.check.results import PanelResult, TargetResult
from lookout_stack.check.timing import (
    TimeRange,
    max_data_points_for,
    parse_duration_ms,
    parse_time,
)
from lookout_stack.check.variables import VariableSource, VariableValue, resolve_variables

__all__ = [
    "DashboardReport",
    "DirectMode",
    "GrafanaMode",
    "Mode",
    "RunSettings",
    "panel_repetitions",
    "run_check",
    "variable_datasource_kind",
]

#: Why a target of a kind no backend runs is not checkable, in direct mode.
GRAFANA_ONLY = {
    "expression": "a server-side expression (math/reduce/threshold) is evaluated by Grafana only",
    "dashboard": "reuses another panel's results in the browser (the -- Dashboard -- source)",
    "grafana": "Grafana's built-in -- Grafana -- data source (random walk, live, annotations)",
    "alertmanager": "the Alertmanager data source is read by Grafana's alerting UI only",
}


class Mode(Protocol):
    """How panels are run: straight against the backends, or through Grafana."""

    name: str
    sources: Mapping[str, VariableSource]

    async def run_panel(self, panel: PanelSpec, ctx: QueryContext) -> list[TargetResult]:
        """Return one result per target of the panel."""
        ...


class DirectMode:
    """Each target to its backend's own HTTP API (Prometheus, Loki, Tempo)."""

    name = "direct"

    def __init__(self, backends: Mapping[str, Backend], missing: Mapping[str, str]) -> None:
        self.backends = dict(backends)
        self.sources: Mapping[str, VariableSource] = self.backends
        self.missing = dict(missing)  # kind -> why it is not checkable (no URL given)

    async def run_panel(self, panel: PanelSpec, ctx: QueryContext) -> list[TargetResult]:
        """Run the panel's targets concurrently (the HTTP client bounds the concurrency)."""

        async def one(target: Any) -> TargetResult:
            kind = datasource_kind(target.datasource)
            backend = self.backends.get(kind)
            if backend is None:
                reason = self.missing.get(kind) or GRAFANA_ONLY.get(kind)
                reason = reason or f"data source type {kind!r} is not one the check can run"
                return TargetResult(target.ref_id, kind, "unchecked", reason)
            return await backend.run(target, ctx)

        return list(await asyncio.gather(*(one(t) for t in panel.targets)))


class GrafanaMode:
    """Each panel's targets through Grafana's /api/ds/query."""

    name = "grafana"

    def __init__(self, querier: GrafanaQuerier, sources: Mapping[str, VariableSource]) -> None:
        self.querier = querier
        self.sources = sources

    async def run_panel(self, panel: PanelSpec, ctx: QueryContext) -> list[TargetResult]:
        """Run the panel's targets in one request."""
        return await self.querier.run_panel(panel, ctx)


@dataclass(frozen=True)
class RunSettings:
    """What the command line decided for every dashboard."""

    now: datetime
    range_from: str | None = None
    range_to: str | None = None
    overrides: Mapping[str, list[str]] = field(default_factory=dict)
    scrape_interval_ms: int = 15_000


@dataclass
class DashboardReport:
    """One dashboard file's panels, with the range and variable values they were run with."""

    file: str
    uid: str
    title: str
    time_range: TimeRange | None = None
    variables: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    panels: list[PanelResult] = field(default_factory=list)


def _range(dashboard: Dashboard, settings: RunSettings) -> TimeRange:
    saved_from, saved_to = dashboard.time
    start = parse_time(settings.range_from or saved_from, settings.now)
    end = parse_time(settings.range_to or saved_to, settings.now, round_up=True)
    if start >= end:
        msg = f"the time range is empty or reversed: from {start} ms to {end} ms"
        raise ValueError(msg)
    return TimeRange(start, end)


def _panel_range(panel: PanelSpec, base: TimeRange, now: datetime) -> TimeRange:
    """Apply the panel's relative time (timeFrom) and time shift (timeShift), as Grafana does."""
    rng = base
    time_from = panel.raw.get("timeFrom")
    if isinstance(time_from, str) and time_from.strip():
        text = time_from.strip()
        start = text if text.startswith("now") else f"now-{text}"
        rng = TimeRange(parse_time(start, now), parse_time("now", now))
    shift = panel.raw.get("timeShift")
    if isinstance(shift, str) and shift.strip():
        rng = rng.shifted(parse_duration_ms(shift.strip().lstrip("-")))
    return rng


def variable_datasource_kind(raw: Any, resolved: Mapping[str, VariableValue]) -> str:
    """Return the data source kind of a variable's ``datasource`` (which may be a variable)."""
    ref = parse_ref(raw)
    if ref is None:
        return "prometheus"
    uid = ref.uid
    if uid.startswith("$"):
        name = uid.strip("${}")
        if name in resolved:
            uid = resolved[name].values[0]
    return datasource_kind(type(ref)(ref.type, uid))


def panel_repetitions(
    panel: PanelSpec, variables: Mapping[str, VariableValue]
) -> list[tuple[str | None, Mapping[str, VariableValue]]]:
    if not panel.repeat or panel.repeat not in variables:
        return [(None, variables)]
    value = variables[panel.repeat]
    if len(value.values) <= 1:
        return [(None, variables)]
    return [
        # One value per repetition; the variable stays multi-value, so Grafana still formats
        # it as a regex (escaped) in Prometheus and Loki queries.
        (
            f"{panel.repeat}={one}",
            {**variables, panel.repeat: VariableValue(value.name, (one,), value.multi)},
        )
        for one in value.values
    ]


async def _check_panel(  # noqa: PLR0917 (private; one call site)
    dashboard: Dashboard,
    panel: PanelSpec,
    repeat: str | None,
    variables: Mapping[str, VariableValue],
    base: TimeRange,
    settings: RunSettings,
    mode: Mode,
) -> PanelResult:
    result = PanelResult(
        file=str(dashboard.path),
        dashboard_uid=dashboard.uid,
        panel_id=panel.id,
        title=panel.title,
        type=panel.type,
        row=panel.row,
        repeat=repeat,
    )
    if panel.type in STATIC_PANELS:
        result.status, result.detail = "unchecked", STATIC_PANELS[panel.type]
        return result
    if panel.library:
        result.status = "unchecked"
        result.detail = "a library panel: its queries live in Grafana, not in this file"
        return result
    if not panel.targets:
        result.status, result.detail = "empty", "the panel has no queries"
        return result
    try:
        rng = _panel_range(panel, base, settings.now)
        interval = panel.raw.get("interval")
        ctx = QueryContext(
            time_range=rng,
            variables=variables,
            max_data_points=max_data_points_for(
                panel.raw.get("maxDataPoints"), (panel.raw.get("gridPos") or {}).get("w")
            ),
            min_interval=str(interval) if isinstance(interval, str) and interval else None,
            scrape_interval_ms=settings.scrape_interval_ms,
        )
    except ValueError as exc:
        result.status, result.detail = "error", f"panel time or interval: {exc}"
        return result
    result.targets = await mode.run_panel(panel, ctx)
    result.settle()
    return result


async def run_check(
    dashboards: list[Dashboard],
    mode: Mode,
    settings: RunSettings,
    on_panel: Callable[[PanelResult], None] = lambda _r: None,
    on_total: Callable[[int], None] = lambda _n: None,
) -> list[DashboardReport]:
    """Check every panel; call ``on_total`` once the panel count is known, ``on_panel`` each."""
    reports: list[DashboardReport] = []
    jobs: list[tuple[DashboardReport, Any]] = []
    for dashboard in dashboards:
        report = DashboardReport(str(dashboard.path), dashboard.uid, dashboard.title)
        reports.append(report)
        try:
            base = _range(dashboard, settings)
        except ValueError as exc:
            report.error = f"time range: {exc}"
            continue
        report.time_range = base
        try:
            variables = await resolve_variables(
                dashboard.templating,
                base,
                mode.sources,
                settings.overrides,
                variable_datasource_kind,
            )
        except (VariableError, ValueError) as exc:
            report.error = f"variables: {exc}"
            continue
        report.variables = {name: value.text for name, value in variables.items()}
        for panel in dashboard.panels():
            for repeat, scoped in panel_repetitions(panel, variables):
                coroutine = _check_panel(dashboard, panel, repeat, scoped, base, settings, mode)
                jobs.append((report, coroutine))
    on_total(len(jobs))

    async def tracked(coroutine: Any) -> PanelResult:
        panel_result: PanelResult = await coroutine
        on_panel(panel_result)
        return panel_result

    done = await asyncio.gather(*(tracked(c) for _, c in jobs))
    for (report, _), panel_result in zip(jobs, done, strict=True):
        report.panels.append(panel_result)
    return reports
