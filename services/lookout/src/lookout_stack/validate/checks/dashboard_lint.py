"""grafana/dashboards/*.json: lint that needs no running Grafana or backend.

No deprecated panel types; every panel and target names a provisioned data source by uid and
type, has targets, and each target a refId. (The PromQL, metric-name, LogQL and TraceQL lints
run the apps or the real backends: they stay in tests/test_dashboard_lint.py.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tree import outcome, read_yaml, skipped

__all__ = [
    "CHECK",
    "DASHBOARDS_DIR",
    "DATASOURCES_DIR",
    "DEPRECATED",
    "DashboardLint",
    "datasource_problems",
    "deprecated_panels",
    "iter_panels",
    "provisioned_datasources",
]

DASHBOARDS_DIR = "grafana/dashboards"
DATASOURCES_DIR = "grafana/provisioning/datasources"
#: Panel types Grafana removed or replaced.
DEPRECATED = frozenset(
    {"graph", "singlestat", "table-old", "grafana-piechart-panel", "grafana-worldmap-panel"}
)


def iter_panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every panel, those nested in collapsed rows included (rows themselves too)."""
    for panel in document.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def provisioned_datasources(folder: Path) -> dict[str, str]:
    """Return {uid: type} of every data source provisioned by the YAML files in ``folder``."""
    found: dict[str, str] = {}
    for path in sorted(folder.glob("*.y*ml")):
        document = read_yaml(path)
        for source in document.get("datasources") or []:
            found[str(source["uid"])] = str(source["type"])
    return found


def deprecated_panels(document: dict[str, Any]) -> list[str]:
    """Return 'title: type' for each panel of a type Grafana removed or replaced."""
    return [
        f"{panel.get('title')}: {panel['type']}"
        for panel in iter_panels(document)
        if panel.get("type") in DEPRECATED
    ]


def datasource_problems(document: dict[str, Any], provisioned: dict[str, str]) -> list[str]:
    """Return a problem per panel or target whose data source is not provisioned, or no target."""
    problems = []
    for panel in iter_panels(document):
        if panel.get("type") == "row":
            continue
        targets = panel.get("targets", [])
        refs = [panel.get("datasource") or {}] + [t.get("datasource") or {} for t in targets]
        for ref in refs:
            if provisioned.get(str(ref.get("uid"))) != ref.get("type"):
                problems.append(
                    f"{panel.get('title')}: datasource {ref} (provisioned: {provisioned})"
                )
        if not targets:
            problems.append(f"{panel.get('title')}: no targets")
        if any(not t.get("refId") for t in targets):
            problems.append(f"{panel.get('title')}: a target without refId")
    return problems


class DashboardLint:
    """Panels of current types, each on a provisioned data source."""

    name = "dashboard-lint"

    def run(self, root: Path) -> CheckResult:
        """Lint each dashboard; a finding per problem, naming the dashboard file and panel."""
        paths = sorted((root / DASHBOARDS_DIR).glob("*.json"))
        if not paths:
            return skipped(self.name, f"no {DASHBOARDS_DIR}/*.json in {root}")
        if not (root / DATASOURCES_DIR).is_dir():
            return skipped(self.name, f"no {DATASOURCES_DIR} in {root}")
        provisioned = provisioned_datasources(root / DATASOURCES_DIR)
        findings = []
        for path in paths:
            where = path.relative_to(root).as_posix()
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                findings.append(Finding(f"{where}:{error.lineno}", f"not JSON: {error.msg}"))
                continue
            findings += [
                Finding(where, f"deprecated panel type: {bad}")
                for bad in deprecated_panels(document)
            ]
            findings += [
                Finding(where, problem) for problem in datasource_problems(document, provisioned)
            ]
        return outcome(self.name, f"{len(paths)} dashboards", findings)


CHECK = DashboardLint()
