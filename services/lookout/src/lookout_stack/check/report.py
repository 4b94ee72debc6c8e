"""The report: a table for a person, or JSON for a machine (``--json``).

JSON schema (``"version": 1``)::

    {
      "version": 1,
      "mode": "direct" | "grafana",
      "ok": true | false,              # no panel empty or failing, no dashboard error
      "summary": {"dashboards": 9, "panels": 80, "data": 70, "empty": 6, "error": 1,
                  "unchecked": 3},
      "unchecked": ["<file> #<id> \\"<title>\\": <why>", ...],
      "dashboards": [{
        "file": "grafana/dashboards/lookout-service.json", "uid": "...", "title": "...",
        "range": {"from": "<ISO 8601>", "to": "<ISO 8601>"} | null,
        "variables": {"service": "shop"},     # the value each variable was run with
        "error": null | "<why the dashboard could not be checked>",
        "panels": [{
          "id": 3 | null, "title": "...", "type": "timeseries", "row": "..." | null,
          "repeat": "service=shop" | null,
          "status": "data" | "empty" | "error" | "unchecked",
          "detail": "...",                     # set when the panel has no targets run
          "targets": [{"refId": "A", "datasource": "prometheus",
                       "status": "data" | "empty" | "error" | "unchecked",
                       "detail": "3 series, 360 samples", "query": "<as sent>",
                       "seconds": 0.012}]
        }]
      }]
    }
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from lookout_stack.check.results import STATUSES, PanelResult
from lookout_stack.check.runner import DashboardReport

__all__ = ["is_ok", "summary", "to_json", "to_text"]

LABELS = {"data": "data", "empty": "EMPTY", "error": "ERROR", "unchecked": "not checkable"}


def summary(reports: list[DashboardReport]) -> dict[str, int]:
    """Return the counts: dashboards, panels and panels per status."""
    counts = Counter(p.status for r in reports for p in r.panels)
    return {
        "dashboards": len(reports),
        "panels": sum(counts.values()),
        **{status: counts.get(status, 0) for status in reversed(STATUSES)},
        "dashboard_errors": sum(1 for r in reports if r.error),
    }


def is_ok(reports: list[DashboardReport]) -> bool:
    """Return whether no panel is empty or failing and every dashboard could be checked."""
    counts = summary(reports)
    return counts["empty"] == 0 and counts["error"] == 0 and counts["dashboard_errors"] == 0


def _why(panel: PanelResult) -> str:
    if panel.detail:
        return panel.detail
    bad = [t for t in panel.targets if t.status != "data"] or panel.targets
    return "; ".join(f"{t.ref_id} ({t.datasource}): {t.detail}" for t in bad)


def unchecked(reports: list[DashboardReport]) -> list[str]:
    """Return one line per panel that is not checkable here, by name."""
    return [
        f"{p.file} {p.label}: {_why(p)}"
        for r in reports
        for p in r.panels
        if p.status == "unchecked"
    ]


def to_text(reports: list[DashboardReport], mode: str) -> str:
    """Return the report as a table, problems first named by file, panel and refId."""
    lines = []
    for report in reports:
        rng = report.time_range
        when = f"{rng.iso()[0]} .. {rng.iso()[1]}" if rng else "no range"
        variables = " ".join(f"{k}={v}" for k, v in report.variables.items())
        lines.append(
            f"{report.file}  ({report.uid}; {when}{'; ' + variables if variables else ''})"
        )
        if report.error:
            lines.append(f"  ERROR   {report.error}")
            continue
        width = max((len(p.label) for p in report.panels), default=10)
        width = min(width, 60)
        for panel in report.panels:
            status = LABELS[panel.status]
            label = panel.label if len(panel.label) <= width else panel.label[: width - 1] + "…"
            lines.append(f"  {status:<13} {label:<{width}}  {_why(panel)[:160]}")
    counts = summary(reports)
    lines.append("")
    problems = [
        f"{p.file}: panel {p.label} {t.ref_id}: {t.status}: {t.detail}"
        for r in reports
        for p in r.panels
        for t in p.targets
        if t.status in {"empty", "error"}
    ] + [
        f"{p.file}: panel {p.label}: {p.status}: {p.detail}"
        for r in reports
        for p in r.panels
        if not p.targets and p.status in {"empty", "error"}
    ]
    if problems:
        lines.append("Problems:")
        lines.extend(f"  {line}" for line in problems)
    names = unchecked(reports)
    if names:
        lines.append(f"Not checkable here ({mode} mode; not counted as passed):")
        lines.extend(f"  {line}" for line in names)
    lines.append(
        f"{counts['panels']} panels in {counts['dashboards']} dashboards ({mode}): "
        f"{counts['data']} data, {counts['empty']} empty, {counts['error']} error, "
        f"{counts['unchecked']} not checkable"
        + (
            f"; {counts['dashboard_errors']} dashboards could not be checked"
            if counts["dashboard_errors"]
            else ""
        )
    )
    return "\n".join(lines)


def to_json(reports: list[DashboardReport], mode: str) -> str:
    """Return the report as JSON (schema in this module's docstring)."""
    dashboards: list[dict[str, Any]] = []
    for report in reports:
        rng = report.time_range
        dashboards.append(
            {
                "file": report.file,
                "uid": report.uid,
                "title": report.title,
                "range": {"from": rng.iso()[0], "to": rng.iso()[1]} if rng else None,
                "variables": report.variables,
                "error": report.error,
                "panels": [
                    {
                        "id": p.panel_id,
                        "title": p.title,
                        "type": p.type,
                        "row": p.row,
                        "repeat": p.repeat,
                        "status": p.status,
                        "detail": p.detail,
                        "targets": [
                            {
                                "refId": t.ref_id,
                                "datasource": t.datasource,
                                "status": t.status,
                                "detail": t.detail,
                                "query": t.query,
                                "seconds": round(t.seconds, 4),
                            }
                            for t in p.targets
                        ],
                    }
                    for p in report.panels
                ],
            }
        )
    document = {
        "version": 1,
        "mode": mode,
        "ok": is_ok(reports),
        "summary": summary(reports),
        "unchecked": unchecked(reports),
        "dashboards": dashboards,
    }
    return json.dumps(document, indent=2)
