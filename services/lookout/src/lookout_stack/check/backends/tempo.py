"""Tempo: TraceQL search, TraceQL metrics and trace by id, as Grafana's Tempo data source.

API: https://grafana.com/docs/tempo/v3.0.x/api_docs/. By ``queryType``:

* ``traceql`` (TraceQL editor): ``/api/search`` (``q``, ``start``/``end`` in seconds,
  ``limit``, ``spss``); a TraceQL metrics query (``| rate()``, ``count_over_time()``, ...)
  goes to ``/api/metrics/query_range``; a bare trace id to ``/api/v2/traces/<id>``.
* ``traceqlSearch`` (the Search builder): the TraceQL Grafana generates from ``filters``.
* ``traceId``: ``/api/v2/traces/<id>``.
* ``serviceMap``: Grafana draws it from the metrics-generator's service-graph series in
  Prometheus (the data source's ``serviceMap.datasourceUid``), so the check asks Prometheus
  for ``traces_service_graph_request_total`` with the target's ``serviceMapQuery``.

Empty = no trace (no series) found. Tempo answers a bad TraceQL query with HTTP 400 and a
plain-text message, which becomes the error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

from lookout_stack.check.context import QueryContext
from lookout_stack.check.errors import QueryError, VariableError
from lookout_stack.check.http import Http
from lookout_stack.check.model import TargetSpec
from lookout_stack.check.results import Status, TargetResult
from lookout_stack.check.timing import TimeRange, round_interval_ms
from lookout_stack.check.variables import interpolate

__all__ = ["TempoBackend", "filters_to_traceql"]

DEFAULT_LIMIT = 20  # Grafana's default "Limit" of the Tempo search
METRICS_FUNCTIONS = re.compile(
    r"\|\s*(rate|count_over_time|sum_over_time|min_over_time|max_over_time|avg_over_time|"
    r"quantile_over_time|histogram_over_time|compare)\s*\("
)
TRACE_ID = re.compile(r"^[0-9a-fA-F]{16,32}$")
SERVICE_GRAPH_METRIC = "traces_service_graph_request_total"


def filters_to_traceql(filters: Any) -> str:
    """Return the TraceQL the Search builder generates from its filters (Grafana's rule)."""
    parts = []
    for item in filters or []:
        if not isinstance(item, Mapping):
            continue
        tag, operator, value = item.get("tag"), item.get("operator"), item.get("value")
        if not tag or not operator or value in (None, "", []):
            continue
        scope = item.get("scope") or "span"
        prefix = "" if scope == "intrinsic" else ("." if scope == "unscoped" else f"{scope}.")
        if isinstance(value, list):
            text = value[0] if len(value) == 1 else "|".join(value)
            rendered = f'"{text}"' if item.get("valueType", "string") == "string" else text
        else:
            rendered = f'"{value}"' if item.get("valueType", "string") == "string" else str(value)
        parts.append(f"{prefix}{tag}{operator}{rendered}")
    return "{" + " && ".join(parts) + "}"


def _outcome(response: httpx.Response, what: str) -> tuple[Status, str]:
    if response.status_code != 200:
        return "error", f"HTTP {response.status_code}: {response.text.strip()[:300]}"
    try:
        body = response.json()
    except ValueError:
        return "error", f"not JSON: {response.text.strip()[:200]}"
    if what == "search":
        traces = body.get("traces") or []
        return ("data", f"{len(traces)} traces") if traces else ("empty", "no traces")
    if what == "metrics":
        series = body.get("series") or []
        return ("data", f"{len(series)} series") if series else ("empty", "no series")
    batches = (body.get("trace") or body).get("resourceSpans") or body.get("batches") or []
    return ("data", "trace found") if batches else ("empty", "trace has no spans")


class TempoBackend:
    """Run Tempo targets against one Tempo (and Prometheus, for the service map)."""

    kind = "tempo"

    def __init__(self, http: Http, base_url: str, prometheus: Any = None) -> None:
        self.http = http
        self.base = base_url.rstrip("/")
        self.prometheus = prometheus

    async def run(self, target: TargetSpec, ctx: QueryContext) -> TargetResult:
        """Run the target by its queryType; types only Grafana can draw are not checkable."""
        started = time.monotonic()
        raw = target.raw
        query_type = str(raw.get("queryType") or "traceql")
        query = str(raw.get("query") or "")
        if query_type == "traceqlSearch":
            query = filters_to_traceql(raw.get("filters"))
        query = interpolate(query, ctx.variables, "tempo", {})
        rng = ctx.time_range
        try:
            if query_type == "serviceMap":
                return await self._service_map(target, ctx, started)
            if query_type == "traceId" or (query_type == "traceql" and TRACE_ID.match(query)):
                url = f"{self.base}/api/v2/traces/{query}"
                status, detail = _outcome(await self.http.request("GET", url), "trace")
            elif query_type in {"traceql", "traceqlSearch"}:
                if not query.strip():
                    return TargetResult(
                        target.ref_id, self.kind, "empty", "the target has no query"
                    )
                start, end = rng.from_ms // 1000, -(-rng.to_ms // 1000)
                if METRICS_FUNCTIONS.search(query):
                    step = round_interval_ms(rng.span_ms / ctx.max_data_points) // 1000 or 1
                    params: dict[str, Any] = {
                        "q": query,
                        "start": start,
                        "end": end,
                        "step": f"{step}s",
                    }
                    response = await self.http.request(
                        "GET", f"{self.base}/api/metrics/query_range", params=params
                    )
                    status, detail = _outcome(response, "metrics")
                else:
                    params = {"q": query, "start": start, "end": end}
                    params["limit"] = raw.get("limit") or DEFAULT_LIMIT
                    if raw.get("spss"):
                        params["spss"] = raw["spss"]
                    response = await self.http.request(
                        "GET", f"{self.base}/api/search", params=params
                    )
                    status, detail = _outcome(response, "search")
            else:
                detail = f"Tempo queryType {query_type!r} is drawn by Grafana only"
                return TargetResult(target.ref_id, self.kind, "unchecked", detail, query)
        except QueryError as exc:
            status, detail = "error", str(exc)
        return TargetResult(
            target.ref_id, self.kind, status, detail, query, time.monotonic() - started
        )

    async def _service_map(
        self, target: TargetSpec, ctx: QueryContext, started: float
    ) -> TargetResult:
        if self.prometheus is None:
            detail = "the service map comes from Prometheus: give --prometheus to check it"
            return TargetResult(target.ref_id, self.kind, "unchecked", detail)
        selectors = target.raw.get("serviceMapQuery") or ""
        if isinstance(selectors, list):
            selectors = selectors[0] if selectors else ""
        selector = interpolate(str(selectors), ctx.variables, "prometheus", {})
        expr = f"sum by (client, server) ({SERVICE_GRAPH_METRIC}{selector})"
        status, detail = await self.prometheus.query(expr, ctx.time_range, 0, instant=True)
        return TargetResult(
            target.ref_id,
            self.kind,
            status,
            f"service map: {detail}",
            expr,
            time.monotonic() - started,
        )

    async def options(self, query: Any, time_range: TimeRange) -> list[str]:
        """Answer Tempo's variable queries: tag names (type 0) or a tag's values (type 1)."""
        spec = query if isinstance(query, Mapping) else {"type": 1, "label": str(query)}
        params = {"start": time_range.from_ms // 1000, "end": -(-time_range.to_ms // 1000)}
        try:
            if str(spec.get("type")) in {"0", "None"} or not spec.get("label"):
                response = await self.http.request(
                    "GET", f"{self.base}/api/v2/search/tags", params=params
                )
                scopes = response.json().get("scopes") or []
                return [str(t) for s in scopes for t in s.get("tags") or []]
            label = spec["label"]
            response = await self.http.request(
                "GET", f"{self.base}/api/v2/search/tag/{label}/values", params=params
            )
        except (QueryError, ValueError) as exc:
            raise VariableError(str(exc)) from None
        if response.status_code != 200:
            msg = f"tag values: HTTP {response.status_code}: {response.text.strip()[:300]}"
            raise VariableError(msg)
        return [str(v.get("value")) for v in response.json().get("tagValues") or []]
