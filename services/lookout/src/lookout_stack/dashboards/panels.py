"""Shared building blocks: data sources, queries, panels with units, thresholds and links.

Every dashboard module builds its panels through these functions, so all dashboards agree on
data source uids (the fixed ones in grafana/provisioning/datasources), query shape (every
target has a refId and its data source), threshold style (alert thresholds drawn as dashed
lines) and drill-down links (carrying the service and the time range).
Reference: https://grafana.com/docs/grafana/v13.2/panels-visualizations/ (panel options) and
https://grafana.com/docs/grafana/v13.2/dashboards/build-dashboards/manage-dashboard-links/.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import (
    bargauge,
    logs,
    piechart,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import loki as loki_builder
from grafana_foundation_sdk.builders import prometheus as prometheus_builder
from grafana_foundation_sdk.builders import tempo as tempo_builder
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    StackingConfig,
    VizLegendOptions,
)
from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery,
    Dashboard,
    DashboardLink,
    QueryVariable,
    TextBoxVariable,
    ThresholdsConfig,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import piechart as piechart_model
from grafana_foundation_sdk.models import prometheus as prometheus_model
from grafana_foundation_sdk.models import tempo as tempo_model

__all__ = [
    "LOKI",
    "PROMETHEUS",
    "TEMPO",
    "Steps",
    "all_values_variable",
    "bar_gauge",
    "drill_link",
    "logs_panel",
    "loki",
    "loki_service_variable",
    "new_dashboard",
    "or_zero",
    "pie",
    "prom",
    "route_variable",
    "search_variable",
    "service_variable",
    "stat_panel",
    "state_timeline",
    "table_panel",
    "timeseries_panel",
    "traceql",
    "traces_panel",
]

# The provisioned data sources, by their fixed uids.
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid="prometheus")
LOKI = model.DataSourceRef(type_val="loki", uid="loki")
TEMPO = model.DataSourceRef(type_val="tempo", uid="tempo")

# Grafana's palette names (resolved by the theme, light and dark alike).
GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"

Query = cogbuilder.Builder[cogvariants.Dataquery]


# --------------------------------------------------------------------------- queries


def prom(
    expr: str,
    legend: str = "",
    *,
    exemplar: bool = False,
    instant: bool = False,
    table: bool = False,
) -> prometheus_builder.Dataquery:
    """Return a PromQL target (range unless ``instant``; ``table`` formats it as a table)."""
    query = prometheus_builder.Dataquery().datasource(PROMETHEUS).expr(expr)
    query = query.editor_mode(prometheus_model.QueryEditorMode.CODE)
    if legend:
        query = query.legend_format(legend)
    if exemplar:
        query = query.exemplar(True)
    query = query.instant() if instant else query.range()
    if table:
        query = query.format(prometheus_model.PromQueryFormat.TABLE)
    return query


def loki(expr: str, legend: str = "", *, max_lines: int | None = None) -> loki_builder.Dataquery:
    """Return a LogQL target: a log query (``max_lines``) or a metric query (``legend``)."""
    query = loki_builder.Dataquery().datasource(LOKI).expr(expr).query_type("range")
    if legend:
        query = query.legend_format(legend)
    if max_lines is not None:
        query = query.max_lines(max_lines)
    return query


def traceql(query: str, *, limit: int = 20) -> tempo_builder.TempoQuery:
    """Return a TraceQL search target (Tempo's ``traceql`` query type)."""
    return (
        tempo_builder.TempoQuery()
        .datasource(TEMPO)
        .query_type("traceql")
        .query(query)
        .limit(limit)
        .table_type(tempo_model.SearchTableType.TRACES)
    )


def or_zero(expr: str, *labels: str) -> str:
    """Return ``expr``, or one 0 series while it has none.

    A labelled counter has no series until its first event (no error yet, no discard yet):
    without this the panel says "No data" on a healthy system, and the panel check cannot
    tell that from a broken query. The 0 series carries ``labels`` set to "none" so the
    legend still reads.
    """
    zero = "vector(0)"
    for label in labels:
        zero = f'label_replace({zero}, "{label}", "none", "", "")'
    return f"({expr}) or on () {zero}"


# --------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Steps:
    """Threshold steps: the base colour, then (value, colour) pairs in rising order.

    ``alert`` marks steps that come from alert rules: a time series draws them as dashed
    lines; other steps only colour a value.
    """

    base: str = GREEN
    steps: tuple[tuple[float, str], ...] = ()
    alert: bool = False

    @classmethod
    def above(cls, warning: float | None = None, critical: float | None = None) -> Steps:
        """Alert thresholds where higher is worse: green, orange from warning, red from critical."""
        steps = [(v, c) for v, c in ((warning, ORANGE), (critical, RED)) if v is not None]
        return cls(GREEN, tuple(sorted(steps)), alert=True)

    @classmethod
    def below(cls, warning: float) -> Steps:
        """An alert threshold where lower is worse: red below ``warning``, green from it."""
        return cls(RED, ((warning, GREEN),), alert=True)

    def build(self) -> ThresholdsConfig:
        """Return the SDK's absolute thresholds."""
        return (
            ThresholdsConfig()
            .mode(model.ThresholdsMode.ABSOLUTE)
            .steps(
                [model.Threshold(None, self.base)]
                + [model.Threshold(value, color) for value, color in self.steps]
            )
        )


PLAIN = Steps()


# --------------------------------------------------------------------------- links


def drill_link(
    title: str, uid: str, *, field: str | None = "job", var: str | None = "service"
) -> DashboardLink:
    """Return a data link to dashboard ``uid``, passing the series' ``field`` label as ``var``.

    The link keeps the time range (``${__url_time_range}``). With ``field=None`` it carries the
    current dashboard's ``${service}`` instead of a label of the clicked series; with
    ``var=None`` it passes no variable (the target dashboard has none).
    """
    url = f"/d/{uid}?${{__url_time_range}}"
    if var is not None:
        value = f"${{__field.labels.{field}}}" if field else f"${{{var}}}"
        url = f"/d/{uid}?var-{var}={value}&${{__url_time_range}}"
    return DashboardLink(title).type(model.DashboardLinkType.LINK).url(url)


# --------------------------------------------------------------------------- panels


class _Panel(Protocol):
    """What every SDK panel builder has in common (the methods used here)."""

    def title(self, title: str) -> Self: ...
    def description(self, description: str) -> Self: ...
    def datasource(self, datasource: model.DataSourceRef) -> Self: ...
    def with_target(self, target: Query) -> Self: ...
    def span(self, w: int) -> Self: ...
    def height(self, h: int) -> Self: ...
    def unit(self, unit: str) -> Self: ...
    def thresholds(self, thresholds: cogbuilder.Builder[model.ThresholdsConfig]) -> Self: ...
    def data_links(self, links: list[cogbuilder.Builder[model.DashboardLink]]) -> Self: ...
    def links(self, links: list[cogbuilder.Builder[model.DashboardLink]]) -> Self: ...
    def no_value(self, no_value: str) -> Self: ...


P = TypeVar("P", bound=_Panel)


def _common(
    panel: P,
    title: str,
    description: str,
    targets: Sequence[Query],
    *,
    datasource: model.DataSourceRef,
    unit: str,
    steps: Steps,
    links: Sequence[DashboardLink],
    span: int,
    height: int,
) -> P:
    panel = panel.title(title).description(description).datasource(datasource)
    for index, target in enumerate(targets):
        ref = chr(ord("A") + index)
        target.ref_id(ref)  # type: ignore[attr-defined]  # every SDK query builder has it
        panel = panel.with_target(target)
    panel = panel.unit(unit).thresholds(steps.build()).span(span).height(height)
    if links:
        panel = panel.data_links(list(links))
    return panel


def timeseries_panel(
    title: str,
    description: str,
    *targets: Query,
    unit: str,
    steps: Steps = PLAIN,
    links: Sequence[DashboardLink] = (),
    span: int = 12,
    height: int = 8,
    stack: bool = False,
    minimum: float | None = 0,
    maximum: float | None = None,
    datasource: model.DataSourceRef = PROMETHEUS,
) -> timeseries.Panel:
    """Return a time series; alert thresholds (``steps.alert``) are drawn as dashed lines."""
    panel = _common(
        timeseries.Panel(),
        title,
        description,
        targets,
        datasource=datasource,
        unit=unit,
        steps=steps,
        links=links,
        span=span,
        height=height,
    )
    panel = (
        panel.line_width(1)
        .fill_opacity(10 if not stack else 40)
        .show_points(common.VisibilityMode.NEVER)
    )
    panel = panel.legend(
        VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
    )
    mode = (
        common.GraphThresholdsStyleMode.DASHED
        if steps.alert
        else common.GraphThresholdsStyleMode.OFF
    )
    panel = panel.thresholds_style(GraphThresholdsStyleConfig().mode(mode))
    if stack:
        panel = panel.stacking(StackingConfig().mode(common.StackingMode.NORMAL))
    if minimum is not None:
        panel = panel.min(minimum)
    if maximum is not None:
        panel = panel.max(maximum)
    return panel


def stat_panel(
    title: str,
    description: str,
    *targets: Query,
    unit: str,
    steps: Steps = PLAIN,
    links: Sequence[DashboardLink] = (),
    span: int = 6,
    height: int = 4,
    calc: str = "lastNotNull",
    mappings: Sequence[model.ValueMap] = (),
    graph: bool = True,
    no_value: str | None = None,
) -> stat.Panel:
    """Return a single value (``calc`` of each series), coloured by ``steps``."""
    panel = _common(
        stat.Panel(),
        title,
        description,
        targets,
        datasource=PROMETHEUS,
        unit=unit,
        steps=steps,
        links=links,
        span=span,
        height=height,
    )
    panel = panel.reduce_options(ReduceDataOptions().calcs([calc]).values(False))
    panel = panel.color_mode(
        common.BigValueColorMode.BACKGROUND
        if steps.steps or mappings
        else common.BigValueColorMode.VALUE
    )
    panel = panel.graph_mode(
        common.BigValueGraphMode.AREA if graph else common.BigValueGraphMode.NONE
    )
    if no_value is not None:
        # For counts, where no series means none (no alert firing), not missing data.
        panel = panel.no_value(no_value)
    if mappings:
        panel = panel.mappings(list(mappings))
    return panel


def bar_gauge(
    title: str,
    description: str,
    *targets: Query,
    unit: str,
    steps: Steps = PLAIN,
    links: Sequence[DashboardLink] = (),
    span: int = 8,
    height: int = 8,
    maximum: float | None = None,
) -> bargauge.Panel:
    """Return horizontal bars, one per series (last value)."""
    panel = _common(
        bargauge.Panel(),
        title,
        description,
        targets,
        datasource=PROMETHEUS,
        unit=unit,
        steps=steps,
        links=links,
        span=span,
        height=height,
    )
    panel = panel.orientation(common.VizOrientation.HORIZONTAL).display_mode(
        common.BarGaugeDisplayMode.GRADIENT
    )
    panel = panel.reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    panel = panel.min(0)
    if maximum is not None:
        panel = panel.max(maximum)
    return panel


def pie(
    title: str,
    description: str,
    *targets: Query,
    unit: str,
    span: int = 8,
    height: int = 8,
) -> piechart.Panel:
    """Return a donut of each series' share (sum over the range)."""
    panel = _common(
        piechart.Panel(),
        title,
        description,
        targets,
        datasource=PROMETHEUS,
        unit=unit,
        steps=PLAIN,
        links=(),
        span=span,
        height=height,
    )
    panel = panel.pie_type(piechart_model.PieChartType.DONUT)
    return panel.reduce_options(ReduceDataOptions().calcs(["sum"]).values(False))


def state_timeline(
    title: str,
    description: str,
    *targets: Query,
    mappings: Sequence[model.ValueMap],
    steps: Steps,
    span: int = 24,
    height: int = 6,
) -> statetimeline.Panel:
    """Return one lane per series, coloured by value (pass/fail, up/down)."""
    panel = _common(
        statetimeline.Panel(),
        title,
        description,
        targets,
        datasource=PROMETHEUS,
        unit="none",
        steps=steps,
        links=(),
        span=span,
        height=height,
    )
    return panel.mappings(list(mappings)).show_value(common.VisibilityMode.NEVER)


def table_panel(
    title: str,
    description: str,
    *targets: Query,
    unit: str = "none",
    links: Sequence[DashboardLink] = (),
    span: int = 12,
    height: int = 8,
    datasource: model.DataSourceRef = PROMETHEUS,
) -> table.Panel:
    """Return a table (instant PromQL targets formatted as tables, or TraceQL results)."""
    return _common(
        table.Panel(),
        title,
        description,
        targets,
        datasource=datasource,
        unit=unit,
        steps=PLAIN,
        links=links,
        span=span,
        height=height,
    )


def logs_panel(
    title: str, description: str, expr: str, *, span: int = 24, height: int = 10
) -> logs.Panel:
    """Return a Loki logs panel: newest first, with details (trace_id links to Tempo)."""
    panel = _common(
        logs.Panel(),
        title,
        description,
        [loki(expr, max_lines=200)],
        datasource=LOKI,
        unit="none",
        steps=PLAIN,
        links=(),
        span=span,
        height=height,
    )
    return (
        panel.show_time(True)
        .wrap_log_message(True)
        .enable_log_details(True)
        .sort_order(common.LogsSortOrder.DESCENDING)
        .dedup_strategy(common.LogsDedupStrategy.NONE)
        .show_labels(False)
        .show_common_labels(False)
        .prettify_log_message(False)
    )


def traces_panel(
    title: str, description: str, query: str, *, span: int = 24, height: int = 9
) -> table.Panel:
    """Return the TraceQL search results as a table; a trace id opens the trace in Tempo."""
    return table_panel(
        title, description, traceql(query), span=span, height=height, datasource=TEMPO
    )


# --------------------------------------------------------------------------- dashboards


def new_dashboard(
    uid: str,
    title: str,
    description: str,
    *,
    tags: Sequence[str],
    time_from: str = "now-1h",
    refresh: str = "30s",
    alerts_of: str | None = None,
) -> Dashboard:
    """Return a dashboard with Lookout's defaults and a menu of the other Lookout dashboards.

    The menu keeps the time range and passes the variables (``includeVars``), so moving from
    one dashboard to another keeps ``${service}``. ``alerts_of`` (a label matcher such as
    ``job=~"$service"``) marks on every time series when those jobs' alerts fired.
    """
    dashboard = (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["lookout", *tags])
        .time(time_from, "now")
        .refresh(refresh)
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .link(
            DashboardLink("Lookout")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(["lookout"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    if alerts_of is not None:
        dashboard = dashboard.annotation(
            AnnotationQuery()
            .name("Alerts firing")
            .datasource(PROMETHEUS)
            .enable(True)
            .icon_color(RED)
            .expr(f'ALERTS{{alertstate="firing", alertname!="Watchdog", {alerts_of}}}')
        )
    return dashboard


def service_variable(
    metric: str = "up", *, label: str = "job", multi: bool = False, default_all: bool = False
) -> QueryVariable:
    """Return ``$service``: the values of ``label`` on ``metric`` (the job is the service)."""
    variable = (
        QueryVariable("service")
        .label("Service")
        .datasource(PROMETHEUS)
        .query(f"label_values({metric}, {label})")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    if multi:
        # All = a regex over every value (queries use job=~"$service").
        variable = variable.all_value(".+")
    if default_all:
        variable = variable.current(model.VariableOption(selected=True, text="All", value="$__all"))
    return variable


def all_values_variable(
    name: str, label: str, query: str, datasource: model.DataSourceRef = PROMETHEUS
) -> QueryVariable:
    """Return a multi-value query variable that starts at All (a regex over every value)."""
    return (
        QueryVariable(name)
        .label(label)
        .datasource(datasource)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".+")
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def route_variable(metric: str) -> QueryVariable:
    """Return ``$route``: the route templates ``$service`` serves (All by default)."""
    return all_values_variable("route", "Route", f'label_values({metric}{{job="$service"}}, route)')


def loki_service_variable() -> QueryVariable:
    """Return ``$service`` from Loki's ``service_name`` label (OTLP service.name = job)."""
    return all_values_variable("service", "Service", "label_values(service_name)", LOKI)


def search_variable() -> TextBoxVariable:
    """Return ``$search``: free text the log panels filter on (empty matches every line)."""
    return TextBoxVariable("search").label("Search logs").default_value("")


def value_map(options: dict[str, tuple[str, str]]) -> model.ValueMap:
    """Return a value mapping {value: (text, colour)}."""
    return model.ValueMap(
        {
            value: model.ValueMappingResult(text=text, color=color, index=index)
            for index, (value, (text, color)) in enumerate(options.items())
        }
    )
