"""Loki: /loki/api/v1/query_range and /loki/api/v1/query, as Grafana's Loki data source.

API: https://grafana.com/docs/loki/v3.7.x/reference/loki-http-api/. ``queryType`` ``instant``
runs at the end of the range, anything else over it; the step follows Grafana
(pkg/tsdb/loki/step.go) unless the target sets ``step``; ``maxLines`` defaults to 1000 (the
data source's ``maxLines`` in grafana/provisioning). Empty = no stream or series in
``data.result`` (or only streams without lines). Loki answers a bad query with HTTP 400 and a
plain-text message, which becomes the error.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from lookout_stack.check.context import QueryContext
from lookout_stack.check.errors import QueryError, VariableError
from lookout_stack.check.http import Http
from lookout_stack.check.model import TargetSpec
from lookout_stack.check.results import Status, TargetResult
from lookout_stack.check.timing import (
    TimeRange,
    format_interval,
    loki_step_ms,
    parse_duration_ms,
    round_interval_ms,
)
from lookout_stack.check.variables import interpolate, parse_variable_query

__all__ = ["LokiBackend", "loki_outcome"]

DEFAULT_MAX_LINES = 1000


def loki_outcome(response: httpx.Response) -> tuple[Status, str]:  # noqa: PLR0911 (one per shape)
    """Return (status, detail) from a Loki query API response."""
    try:
        body = response.json()
    except ValueError:
        return "error", f"HTTP {response.status_code}: {response.text.strip()[:300]}"
    if response.status_code != 200 or body.get("status") != "success":
        message = body.get("error") or body.get("message") or response.text[:300]
        return "error", f"HTTP {response.status_code}: {message}"
    data = body.get("data") or {}
    result = data.get("result") or []
    kind = data.get("resultType", "")
    if kind == "streams":
        lines = sum(len(stream.get("values") or []) for stream in result)
        if not lines:
            return "empty", "no log lines"
        return "data", f"{lines} lines in {len(result)} streams"
    if kind in {"scalar", "string"}:
        return "data", kind
    if not result:
        return "empty", "no series"
    return "data", f"{len(result)} series"


class LokiBackend:
    """Run LogQL targets against one Loki."""

    kind = "loki"

    def __init__(self, http: Http, base_url: str) -> None:
        self.http = http
        self.base = base_url.rstrip("/")

    def expand(self, target: TargetSpec, ctx: QueryContext) -> tuple[str, int, bool]:
        """Return the LogQL with variables substituted, the step in ms and whether instant."""
        raw = target.raw
        span = ctx.time_range.span_ms
        low = parse_duration_ms(ctx.min_interval) if ctx.min_interval else 1
        interval_ms = max(round_interval_ms(span / ctx.max_data_points), low)
        resolution = raw.get("resolution")
        factor = resolution if resolution in {1, 2, 3, 4, 5, 10} else 1
        if raw.get("step"):
            step_ms = parse_duration_ms(str(raw["step"])) * factor
        else:
            step_ms = loki_step_ms(interval_ms, ctx.time_range, factor)
        instant = raw.get("queryType") == "instant" or (
            raw.get("queryType") is None and bool(raw.get("instant"))
        )
        range_s = round(span / 1000)
        builtins = {
            "__interval": format_interval(interval_ms),
            "__interval_ms": str(interval_ms),
            "__range": f"{range_s}s",
            "__range_s": str(range_s),
            "__range_ms": str(span),
            "__auto": f"{range_s}s" if instant else format_interval(step_ms),
            "__from": str(ctx.time_range.from_ms),
            "__to": str(ctx.time_range.to_ms),
        }
        expr = interpolate(str(raw.get("expr") or ""), ctx.variables, "loki", builtins)
        return expr, step_ms, instant

    async def run(self, target: TargetSpec, ctx: QueryContext) -> TargetResult:
        """Run the target over the range, or at its end when it is an instant query."""
        started = time.monotonic()
        try:
            expr, step_ms, instant = self.expand(target, ctx)
        except ValueError as exc:
            return TargetResult(target.ref_id, self.kind, "error", str(exc))
        if not expr.strip():
            return TargetResult(target.ref_id, self.kind, "empty", "the target has no expr")
        limit = target.raw.get("maxLines") or DEFAULT_MAX_LINES
        rng = ctx.time_range
        if instant:
            path = "/loki/api/v1/query"
            params: dict[str, Any] = {"query": expr, "time": rng.to_ms * 1_000_000, "limit": limit}
        else:
            path = "/loki/api/v1/query_range"
            params = {
                "query": expr,
                "start": rng.from_ms * 1_000_000,
                "end": rng.to_ms * 1_000_000,
                "step": f"{step_ms / 1000:g}",  # seconds: Loki reads a float or a duration
                "limit": limit,
                "direction": target.raw.get("direction") or "backward",
            }
        try:
            response = await self.http.request("GET", f"{self.base}{path}", params=params)
            status, detail = loki_outcome(response)
        except QueryError as exc:
            status, detail = "error", str(exc)
        return TargetResult(
            target.ref_id, self.kind, status, detail, expr, time.monotonic() - started
        )

    async def options(self, query: Any, time_range: TimeRange) -> list[str]:
        """Answer label_names([stream]) and label_values([stream,] label) (Grafana's forms)."""
        function, args = parse_variable_query(query)
        params: dict[str, Any] = {
            "start": time_range.from_ms * 1_000_000,
            "end": time_range.to_ms * 1_000_000,
        }
        if function == "label_names":
            path = "/loki/api/v1/labels"
            if args:
                params["query"] = args[0]
        elif function == "label_values":
            path = f"/loki/api/v1/label/{args[-1]}/values"
            if len(args) > 1 and args[0]:
                params["query"] = args[0]
        else:
            msg = f"Loki variables take label_names() or label_values(), not {function}()"
            raise VariableError(msg)
        try:
            response = await self.http.request("GET", f"{self.base}{path}", params=params)
        except QueryError as exc:
            raise VariableError(str(exc)) from None
        if response.status_code != 200:
            msg = f"GET {path}: HTTP {response.status_code}: {response.text.strip()[:300]}"
            raise VariableError(msg)
        return [str(v) for v in response.json().get("data") or []]
