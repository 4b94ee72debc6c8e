"""Dashboards as Grafana stores them (the JSON model), reduced to what a check needs.

Reference: https://grafana.com/docs/grafana/v13.2/dashboards/build-dashboards/view-dashboard-json-model/
and https://grafana.com/docs/grafana/v13.2/panels-visualizations/query-transform-data/.

* ``panels`` may hold rows (``type: row``): a collapsed row keeps its panels in its own
  ``panels``; an expanded row is followed by its panels at the top level.
* A panel's ``datasource`` (``{type, uid}``; a bare string in old dashboards) applies to its
  ``targets``; with the ``-- Mixed --`` data source each target names its own.
* ``repeat`` (on a panel or a row) repeats it once per selected value of a variable.
* ``timeFrom``/``timeShift`` override the dashboard's range for one panel; ``interval`` is its
  "Min interval", ``maxDataPoints`` its resolution.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lookout_stack.check.errors import CheckInputError

__all__ = [
    "Dashboard",
    "DatasourceRef",
    "PanelSpec",
    "TargetSpec",
    "datasource_kind",
    "find_dashboards",
    "load_dashboard",
]

# Panel types that show no query results (or only Grafana's own data): nothing to check here.
STATIC_PANELS = {
    "text": "a text panel has no queries",
    "news": "a news panel reads an RSS feed in the browser",
    "dashlist": "a dashboard list reads Grafana's own search API",
    "welcome": "a welcome panel has no queries",
    "gettingstarted": "a getting-started panel has no queries",
    "alertlist": "an alert list reads Grafana's alerting API (Grafana only)",
    "annolist": "an annotation list reads Grafana's annotations API (Grafana only)",
}
MIXED = "-- Mixed --"
DASHBOARD_DS = "-- Dashboard --"
GRAFANA_DS = "-- Grafana --"
#: Data source kinds the check can run; anything else is "not checkable".
KINDS = ("prometheus", "loki", "tempo")


@dataclass(frozen=True)
class DatasourceRef:
    """A data source reference: its type (plugin id) and uid, as the JSON model has them."""

    type: str
    uid: str

    def as_json(self) -> dict[str, str]:
        """Return the reference as /api/ds/query wants it."""
        return {"type": self.type, "uid": self.uid}


def datasource_kind(ref: DatasourceRef) -> str:
    """Return ``prometheus``, ``loki``, ``tempo``, ``expression`` or the reference's type."""
    if ref.uid == "__expr__" or ref.type in {"__expr__", "expr"}:
        return "expression"
    if ref.uid in {DASHBOARD_DS} or (ref.type == "datasource" and ref.uid == DASHBOARD_DS):
        return "dashboard"
    if ref.uid in {"grafana", GRAFANA_DS} or ref.type == "grafana":
        return "grafana"
    for kind in KINDS:
        if ref.type == kind or (not ref.type and ref.uid == kind):
            return kind
    return ref.type or ref.uid or "unknown"


def parse_ref(raw: Any, default: DatasourceRef | None = None) -> DatasourceRef | None:
    """Return a data source reference from a panel or target's ``datasource`` field."""
    if raw is None:
        return default
    if isinstance(raw, str):
        # Old dashboards name the data source; Lookout's names and uids match their types.
        lowered = raw.lower()
        kind = next((k for k in KINDS if lowered == k), "")
        return DatasourceRef(kind, raw)
    if isinstance(raw, Mapping):
        return DatasourceRef(str(raw.get("type") or ""), str(raw.get("uid") or ""))
    return default


@dataclass(frozen=True)
class TargetSpec:
    """One query of a panel: its refId, data source and the target's JSON as stored."""

    ref_id: str
    datasource: DatasourceRef
    raw: Mapping[str, Any]

    @property
    def hidden(self) -> bool:
        """Return whether the query is hidden (Grafana still runs it; the panel drops it)."""
        return bool(self.raw.get("hide"))


@dataclass(frozen=True)
class PanelSpec:
    """One panel to check (a repeated panel once per value of its repeat variable)."""

    id: int | None
    title: str
    type: str
    raw: Mapping[str, Any]
    targets: tuple[TargetSpec, ...]
    row: str | None = None
    repeat: str | None = None  # the variable the panel (or its row) repeats over
    library: bool = False

    @property
    def label(self) -> str:
        """Return how a person finds the panel: ``#3 "Request rate"``."""
        ident = f"#{self.id} " if self.id is not None else ""
        return f'{ident}"{self.title}"'


@dataclass
class Dashboard:
    """One dashboard file."""

    path: Path
    raw: Mapping[str, Any]
    uid: str = field(init=False)
    title: str = field(init=False)

    def __post_init__(self) -> None:
        self.uid = str(self.raw.get("uid") or self.path.stem)
        self.title = str(self.raw.get("title") or self.uid)

    @property
    def time(self) -> tuple[str, str]:
        """Return the dashboard's saved range (Grafana's default when none: now-6h to now)."""
        time = self.raw.get("time") or {}
        return str(time.get("from") or "now-6h"), str(time.get("to") or "now")

    @property
    def templating(self) -> list[Mapping[str, Any]]:
        """Return the variable definitions, in order."""
        templating = self.raw.get("templating") or {}
        return [v for v in templating.get("list") or [] if isinstance(v, Mapping)]

    def panels(self) -> Iterator[PanelSpec]:
        """Yield every panel, rows walked (collapsed or not), in the dashboard's order."""
        row: Mapping[str, Any] | None = None
        for raw in self.raw.get("panels") or []:
            if not isinstance(raw, Mapping):
                continue
            if raw.get("type") == "row":
                row = raw
                for child in raw.get("panels") or []:
                    if isinstance(child, Mapping):
                        yield self._panel(child, row)
                continue
            yield self._panel(raw, row)
        # Dashboards older than schema 16 keep panels in `rows`.
        for old_row in self.raw.get("rows") or []:
            for child in old_row.get("panels") or []:
                if isinstance(child, Mapping):
                    yield self._panel(child, old_row)

    def _panel(self, raw: Mapping[str, Any], row: Mapping[str, Any] | None) -> PanelSpec:
        default = DatasourceRef("prometheus", "prometheus")  # Lookout's default data source
        panel_ds = parse_ref(raw.get("datasource"), default) or default
        targets = []
        for index, target in enumerate(raw.get("targets") or []):
            if not isinstance(target, Mapping):
                continue
            ref_id = str(target.get("refId") or chr(ord("A") + index % 26))
            own = parse_ref(target.get("datasource"))
            if own is None or (own.uid == MIXED):
                own = panel_ds
            if panel_ds.uid != MIXED and own.uid in {"", MIXED}:
                own = panel_ds
            targets.append(TargetSpec(ref_id, own, target))
        panel_id = raw.get("id")
        repeat = raw.get("repeat") or (row or {}).get("repeat")
        return PanelSpec(
            id=panel_id if isinstance(panel_id, int) else None,
            title=str(raw.get("title") or "(untitled)"),
            type=str(raw.get("type") or "timeseries"),
            raw=raw,
            targets=tuple(targets),
            row=str(row.get("title")) if row else None,
            repeat=str(repeat) if repeat else None,
            library="libraryPanel" in raw and not raw.get("targets"),
        )


def load_dashboard(path: Path) -> Dashboard:
    """Read one dashboard file (the JSON model, or an API export with ``dashboard`` inside)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"{path}: cannot read: {exc.strerror}"
        raise CheckInputError(msg) from None
    except json.JSONDecodeError as exc:
        msg = f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}"
        raise CheckInputError(msg) from None
    if isinstance(data, Mapping) and isinstance(data.get("dashboard"), Mapping):
        data = data["dashboard"]
    if not isinstance(data, Mapping):
        msg = f"{path}: not a dashboard (expected a JSON object)"
        raise CheckInputError(msg)
    if "spec" in data and "elements" in (data.get("spec") or {}):
        msg = (
            f"{path}: a v2 (schema v2, `spec.elements`) dashboard; `lookout check` reads the "
            "classic JSON model (`panels`, `templating`): export it as classic JSON"
        )
        raise CheckInputError(msg)
    if "panels" not in data and "rows" not in data:
        msg = f"{path}: no `panels` field: not a Grafana dashboard JSON model"
        raise CheckInputError(msg)
    _check_shapes(path, data)
    return Dashboard(path, data)


def _check_shapes(path: Path, data: Mapping[str, Any]) -> None:
    """Refuse fields of the wrong JSON type, naming the field (instead of a traceback later)."""
    expected: list[tuple[str, Any, type, str]] = [
        ("panels", data.get("panels"), list, "a list"),
        ("rows", data.get("rows"), list, "a list"),
        ("time", data.get("time"), Mapping, 'an object {"from": ..., "to": ...}'),
        ("templating", data.get("templating"), Mapping, 'an object {"list": [...]}'),
    ]
    templating = data.get("templating")
    if isinstance(templating, Mapping):
        expected.append(("templating.list", templating.get("list"), list, "a list"))
    for index, row in enumerate(data.get("rows") or []):
        expected.append((f"rows[{index}]", row, Mapping, "an object"))
    for index, panel in enumerate(data.get("panels") or []):
        if not isinstance(panel, Mapping):
            continue
        expected.append((f"panels[{index}].gridPos", panel.get("gridPos"), Mapping, "an object"))
        children = panel.get("panels") if panel.get("type") == "row" else None
        for inner, child in enumerate(children if isinstance(children, list) else []):
            if isinstance(child, Mapping):
                where = f"panels[{index}].panels[{inner}].gridPos"
                expected.append((where, child.get("gridPos"), Mapping, "an object"))
    for name, value, kind, wanted in expected:
        if value is not None and not isinstance(value, kind):
            msg = f"{path}: `{name}` is {type(value).__name__}, expected {wanted}"
            raise CheckInputError(msg)


def find_dashboards(paths: list[Path]) -> list[Path]:
    """Return the dashboard files named, folders expanded to their *.json, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.glob("*.json")))
        elif path.is_file():
            found.append(path)
        else:
            msg = f"{path}: no such file or folder"
            raise CheckInputError(msg)
    if not found:
        msg = f"no dashboard files (*.json) in {', '.join(str(p) for p in paths)}"
        raise CheckInputError(msg)
    return found
