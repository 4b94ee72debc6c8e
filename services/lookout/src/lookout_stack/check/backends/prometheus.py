"""Prometheus: /api/v1/query_range and /api/v1/query, as Grafana's Prometheus data source.

API: https://prometheus.io/docs/prometheus/latest/querying/api/. A range query is aligned to
its step as Grafana aligns it (start and end rounded down to a multiple of the step); a target
with ``instant: true`` runs as an instant query at the end of the range (with ``range: true``
as well, both run, as Grafana does). Empty = ``data.result`` is an empty list.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from lookout_stack.check.absent import Absent
from lookout_stack.check.context import QueryContext
from lookout_stack.check.errors import QueryError, VariableError
from lookout_stack.check.http import Http
from lookout_stack.check.model import TargetSpec
from lookout_stack.check.results import Status, TargetResult, worst
from lookout_stack.check.timing import TimeRange, intervals_for
from lookout_stack.check.variables import interpolate, parse_variable_query

__all__ = ["PrometheusBackend", "prometheus_outcome"]


def prometheus_outcome(response: httpx.Response) -> tuple[Status, str]:
    """Return (status, detail) from a Prometheus query API response."""
    try:
        body = response.json()
    except ValueError:
        return "error", f"HTTP {response.status_code}: {response.text.strip()[:300]}"
    if not isinstance(body, dict) or body.get("status") != "success":
        kind = body.get("errorType", "error") if isinstance(body, dict) else "error"
        error = body.get("error", response.text[:300]) if isinstance(body, dict) else body
        return "error", f"HTTP {response.status_code} {kind}: {error}"
    data = body.get("data") or {}
    result = data.get("result")
    warnings = "; ".join(body.get("warnings") or [])
    suffix = f" (warnings: {warnings})" if warnings else ""
    if data.get("resultType") in {"scalar", "string"}:
        return "data", f"{data['resultType']} {result[1] if result else ''}{suffix}"
    if not result:
        return "empty", f"no series{suffix}"
    samples = sum(len(series.get("values") or [1]) for series in result)
    return "data", f"{len(result)} series, {samples} samples{suffix}"


class PrometheusBackend:
    """Run PromQL targets against one Prometheus (or anything with its HTTP API)."""

    kind = "prometheus"

    def __init__(self, http: Http, base_url: str, absent: Absent | None = None) -> None:
        self.http = http
        self.base = base_url.rstrip("/")
        #: Components that do not run here (--absent): queries of only theirs are not checkable.
        self.absent = absent or Absent()

    def expand(self, target: TargetSpec, ctx: QueryContext) -> tuple[str, int]:
        """Return the target's PromQL with every variable substituted, and the step in ms."""
        raw = target.raw
        factor = raw.get("intervalFactor")
        intervals = intervals_for(
            ctx.time_range,
            ctx.max_data_points,
            ctx.scrape_interval_ms,
            min_interval=ctx.min_interval,
            min_step=str(raw["interval"]) if raw.get("interval") else None,
            interval_factor=int(factor) if isinstance(factor, int) else 1,
        )
        builtins = intervals.builtins(ctx.time_range)
        expr = interpolate(str(raw.get("expr") or ""), ctx.variables, "prometheus", builtins)
        return expr, intervals.step_ms

    async def query(
        self, expr: str, time_range: TimeRange, step_ms: int, *, instant: bool
    ) -> tuple[Status, str]:
        """Run one PromQL expression over a range (or at its end); return (status, detail)."""
        if instant:
            url, form = (
                f"{self.base}/api/v1/query",
                {"query": expr, "time": time_range.to_ms / 1000},
            )
        else:
            step = step_ms / 1000
            start = (time_range.from_ms // step_ms) * step_ms / 1000
            end = (time_range.to_ms // step_ms) * step_ms / 1000
            url = f"{self.base}/api/v1/query_range"
            form = {"query": expr, "start": start, "end": end, "step": step}
        response = await self.http.request("POST", url, data=form)
        return prometheus_outcome(response)

    async def run(self, target: TargetSpec, ctx: QueryContext) -> TargetResult:
        """Run the target as Grafana would: range, instant, or both."""
        started = time.monotonic()
        try:
            expr, step_ms = self.expand(target, ctx)
        except ValueError as exc:
            return TargetResult(target.ref_id, self.kind, "error", str(exc))
        if not expr.strip():
            return TargetResult(target.ref_id, self.kind, "empty", "the target has no expr")
        owner = self.absent.owner(expr) if self.absent else None
        if owner is not None:
            reason = self.absent.reason(owner)
            return TargetResult(target.ref_id, self.kind, "unchecked", reason, expr)
        instant = bool(target.raw.get("instant"))
        ranged = bool(target.raw.get("range")) or not instant
        outcomes: list[tuple[Status, str]] = []
        try:
            if ranged:
                outcomes.append(await self.query(expr, ctx.time_range, step_ms, instant=False))
            if instant:
                status, detail = await self.query(expr, ctx.time_range, step_ms, instant=True)
                outcomes.append((status, f"instant: {detail}"))
        except QueryError as exc:
            outcomes.append(("error", str(exc)))
        status = worst([s for s, _ in outcomes])
        detail = "; ".join(d for _, d in outcomes)
        return TargetResult(
            target.ref_id, self.kind, status, detail, expr, time.monotonic() - started
        )

    async def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            response = await self.http.request("GET", f"{self.base}{path}", params=params)
        except QueryError as exc:
            raise VariableError(str(exc)) from None
        status, detail = prometheus_outcome(response) if path.endswith("/query") else ("", "")
        if status == "error":
            raise VariableError(detail)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or body.get("status") != "success":
            msg = f"GET {path}: HTTP {response.status_code}: {response.text.strip()[:300]}"
            raise VariableError(msg)
        return body.get("data")

    async def options(self, query: Any, time_range: TimeRange) -> list[str]:
        """Answer label_names(), label_values(), metrics() and query_result() (Grafana's forms)."""
        function, args = parse_variable_query(query)
        span = {"start": time_range.from_ms / 1000, "end": time_range.to_ms / 1000}
        if function == "label_names":
            match = {"match[]": args[0]} if args else {}
            return [str(v) for v in await self._get("/api/v1/labels", span | match)]
        if function == "label_values":
            label = args[-1]
            match = {"match[]": args[0]} if len(args) > 1 and args[0] else {}
            return [str(v) for v in await self._get(f"/api/v1/label/{label}/values", span | match)]
        if function == "metrics":
            names = await self._get("/api/v1/label/__name__/values", span)
            try:
                pattern = re.compile(args[0]) if args else None
            except re.error as exc:
                msg = f"metrics({args[0]}): the regex does not compile: {exc}"
                raise VariableError(msg) from None
            return [str(n) for n in names if pattern is None or pattern.search(str(n))]
        data = await self._get("/api/v1/query", {"query": args[0], "time": span["end"]})
        rows = []
        for item in data.get("result") or []:
            metric = dict(item.get("metric") or {})
            name = metric.pop("__name__", "")
            labels = ",".join(f'{k}="{v}"' for k, v in metric.items())
            value = item.get("value") or [0, ""]
            rows.append(f"{name}{{{labels}}} {value[1]} {int(float(value[0]) * 1000)}")
        return rows
