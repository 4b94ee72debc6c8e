"""The ``--grafana`` mode: each panel's queries through Grafana's ``POST /api/ds/query``.

Request (https://grafana.com/docs/grafana/v13.2/developer-resources/api-reference/http-api/data_source/#query-a-data-source):
``{"from": "<epoch ms>", "to": "<epoch ms>", "queries": [<target>...]}``, each query the
panel's target as stored, plus ``datasource`` ({type, uid}), ``refId``, ``intervalMs`` and
``maxDataPoints``, with the dashboard's variables already substituted, as Grafana's frontend
sends them; Grafana's backend substitutes ``$__interval``, ``$__rate_interval`` and
``$__range`` itself. Server-side expressions (``__expr__``) go in the same request as the
queries they use.

Response: ``{"results": {"<refId>": {"status": 200, "frames": [...], "error": "..."}}}``;
HTTP 400 when one or more queries failed (the body still has every refId's result). A refId
has data when one of its frames has a row (``data.values[0]`` not empty).

Variables' options come through the data source proxy (``/api/datasources/proxy/uid/<uid>/``),
so the same Prometheus, Loki and Tempo code answers them.

Credentials: a service-account token (``Authorization: Bearer``) or basic auth, read from the
environment or a file by the command; they live only in the HTTP client's headers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from lookout_stack.check.backends.tempo import filters_to_traceql
from lookout_stack.check.context import QueryContext
from lookout_stack.check.errors import QueryError
from lookout_stack.check.http import Http
from lookout_stack.check.model import PanelSpec, TargetSpec, datasource_kind
from lookout_stack.check.results import Status, TargetResult
from lookout_stack.check.timing import intervals_for
from lookout_stack.check.variables import Flavor, interpolate

__all__ = ["GrafanaQuerier", "frames_outcome"]

#: Query fields Grafana's frontend substitutes variables in, per data source kind.
QUERY_FIELDS = {"prometheus": ("expr",), "loki": ("expr",), "tempo": ("query", "serviceMapQuery")}
#: Data source kinds /api/ds/query runs (the rest are drawn by Grafana's frontend only).
SUPPORTED = {"prometheus", "loki", "tempo", "expression"}


def frames_outcome(result: Mapping[str, Any]) -> tuple[Status, str]:
    """Return (status, detail) for one refId's entry in an /api/ds/query response."""
    if result.get("error"):
        source = result.get("errorSource")
        where = f" ({source})" if source else ""
        return "error", f"{result['error']}{where}"
    status = result.get("status")
    if isinstance(status, int) and status >= 400:
        return "error", f"status {status}"
    frames = result.get("frames") or []
    rows = 0
    for frame in frames:
        values = (frame.get("data") or {}).get("values") or []
        rows += len(values[0]) if values and isinstance(values[0], list) else 0
    if rows:
        return "data", f"{len(frames)} frames, {rows} rows"
    return "empty", "no rows" if frames else "no frames"


class GrafanaQuerier:
    """Send a panel's targets to /api/ds/query and map the answer to per-target results."""

    def __init__(self, http: Http, base_url: str, scrape_interval_ms: int) -> None:
        self.http = http
        self.base = base_url.rstrip("/")
        self.scrape_interval_ms = scrape_interval_ms

    def proxy_url(self, uid: str) -> str:
        """Return the data source proxy's base URL for a data source uid."""
        return f"{self.base}/api/datasources/proxy/uid/{uid}"

    def build_request(
        self, targets: list[TargetSpec], ctx: QueryContext
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Return the /api/ds/query body for the targets, and each refId's substituted query."""
        rng = ctx.time_range
        intervals = intervals_for(
            rng, ctx.max_data_points, ctx.scrape_interval_ms, min_interval=ctx.min_interval
        )
        queries, shown = [], {}
        for target in targets:
            kind = datasource_kind(target.datasource)
            query = dict(target.raw)
            flavor: Flavor = kind if kind in {"prometheus", "loki", "tempo"} else "raw"  # type: ignore[assignment]
            if kind == "tempo" and query.get("queryType") == "traceqlSearch":
                # The frontend turns the Search builder's filters into TraceQL before sending.
                query["query"] = filters_to_traceql(query.get("filters"))
                query["queryType"] = "traceql"
            for name in QUERY_FIELDS.get(kind, ()):
                if isinstance(query.get(name), str):
                    query[name] = interpolate(query[name], ctx.variables, flavor)
            if kind == "expression":
                query["datasource"] = {"type": "__expr__", "uid": "__expr__"}
                shown[target.ref_id] = str(query.get("expression") or query.get("type") or "")
            else:
                ref = target.datasource.as_json()
                # A data source variable (${datasource}) is replaced by the frontend too.
                ref["uid"] = interpolate(ref["uid"], ctx.variables, "raw")
                query["datasource"] = ref
                shown[target.ref_id] = str(query.get("expr") or query.get("query") or "")
            query["refId"] = target.ref_id
            query["intervalMs"] = intervals.interval_ms
            query["maxDataPoints"] = ctx.max_data_points
            queries.append(query)
        body = {"from": str(rng.from_ms), "to": str(rng.to_ms), "queries": queries}
        return body, shown

    async def run_panel(self, panel: PanelSpec, ctx: QueryContext) -> list[TargetResult]:
        """Run every target of the panel Grafana can run, in one request."""
        results: list[TargetResult] = []
        runnable = []
        for target in panel.targets:
            kind = datasource_kind(target.datasource)
            if kind in SUPPORTED:
                runnable.append(target)
            else:
                detail = f"data source {kind!r} is not queried through /api/ds/query"
                results.append(TargetResult(target.ref_id, kind, "unchecked", detail))
        if not runnable:
            return results
        body, shown = self.build_request(runnable, ctx)
        started = time.monotonic()
        try:
            response = await self.http.request("POST", f"{self.base}/api/ds/query", json=body)
        except QueryError as exc:
            failure = str(exc)
            return results + [
                TargetResult(
                    t.ref_id, datasource_kind(t.datasource), "error", failure, shown[t.ref_id]
                )
                for t in runnable
            ]
        elapsed = time.monotonic() - started
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        per_ref = answer.get("results") if isinstance(answer, dict) else None
        for target in runnable:
            kind = datasource_kind(target.datasource)
            status: Status
            if response.status_code in {401, 403}:
                status, detail = "error", _auth_message(response.status_code, answer)
            elif isinstance(per_ref, dict) and target.ref_id in per_ref:
                status, detail = frames_outcome(per_ref[target.ref_id])
            elif response.status_code != 200:
                message = answer.get("message") if isinstance(answer, dict) else None
                status = "error"
                detail = f"HTTP {response.status_code}: {message or response.text.strip()[:300]}"
            else:
                status, detail = "error", f"no result for refId {target.ref_id} in the answer"
            results.append(
                TargetResult(target.ref_id, kind, status, detail, shown[target.ref_id], elapsed)
            )
        return results


def _auth_message(code: int, answer: Any) -> str:
    message = answer.get("message") if isinstance(answer, dict) else ""
    hint = (
        "Grafana refused the credentials: set LOOKOUT_GRAFANA_TOKEN(_FILE) to a service-account "
        "token with the Viewer role, or LOOKOUT_GRAFANA_USER and LOOKOUT_GRAFANA_PASSWORD(_FILE)"
    )
    return f"HTTP {code} {message}: {hint}" if message else f"HTTP {code}: {hint}"
