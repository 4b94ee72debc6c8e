"""Lookout's Grafana dashboards as code (grafana-foundation-sdk), one module per dashboard.

``build_all(root)`` returns every dashboard's JSON text, keyed by uid, exactly as
``lookout dashboards build`` writes it to ``grafana/dashboards/<uid>.json``: keys sorted,
two-space indent, a trailing newline, panel ids numbered in order. Alert thresholds drawn on
panels are read from the rule files under ``root`` (see ``rules``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from lookout_stack.dashboards import (
    alerts,
    business,
    logs,
    overview,
    security,
    service,
    slo,
    stack,
    synthetic,
)
from lookout_stack.dashboards.rules import RuleError, Rules

__all__ = ["DASHBOARDS", "OUTPUT_DIR", "RuleError", "build_all", "render"]

#: uid -> builder, in the order the README lists them.
DASHBOARDS: dict[str, Callable[[Rules], Dashboard]] = {
    overview.UID: overview.build,
    service.UID: service.build,
    slo.UID: slo.build,
    business.UID: business.build,
    security.UID: security.build,
    synthetic.UID: synthetic.build,
    alerts.UID: alerts.build,
    stack.UID: stack.build,
    logs.UID: logs.build,
}
#: Where the JSON goes, relative to the repository root (the provider's folder).
OUTPUT_DIR = Path("grafana") / "dashboards"


def render(dashboard: Dashboard) -> str:
    """Return the dashboard as stable JSON text: sorted keys, numbered panels, final newline."""
    document: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(dashboard.build()))
    for number, panel in enumerate(document.get("panels", []), start=1):
        panel["id"] = number
    # The SDK leaves these empty objects; Grafana's schema expects lists inside.
    document["annotations"] = {"list": document.get("annotations", {}).get("list", [])}
    document["templating"] = {"list": document.get("templating", {}).get("list", [])}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_all(root: Path) -> dict[str, str]:
    """Return {uid: JSON text} for every dashboard, thresholds read from ``root``'s rules."""
    rules = Rules.load(root)
    return {uid: render(builder(rules)) for uid, builder in DASHBOARDS.items()}
