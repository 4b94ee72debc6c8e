"""Readable diffs of normalised YAML and JSON, and the normalisation both sides go through.

A target compares the rendered object with the live one after both are normalised (keys
sorted, durations in Prometheus' canonical form, empty optional fields dropped), so a diff
shows only what would really change, and an empty diff means "in sync".
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

__all__ = [
    "canonical_duration",
    "dump_json",
    "dump_yaml",
    "normalise_rule_group",
    "unified",
]

_UNITS_MS = {
    "y": 365 * 24 * 3600 * 1000,
    "w": 7 * 24 * 3600 * 1000,
    "d": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
    "ms": 1,
}
# Prometheus' duration grammar (common/model.ParseDuration): units largest first, each once.
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)


def canonical_duration(value: object) -> object:
    """Return a Prometheus duration as Prometheus prints it ("90s" -> "1m30s"); else unchanged.

    The rulers store rule groups parsed and print durations back in this form, so the
    rendered "120s" and the live "2m" are the same value and must not show as a change.
    """
    if not isinstance(value, str) or value in {"", "0"}:
        return "0s" if value == "0" else value
    match = _DURATION.match(value)
    if match is None or not any(match.groups()):
        return value
    total = sum(int(g) * ms for g, ms in zip(match.groups(), _UNITS_MS.values(), strict=True) if g)
    if total == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS_MS.items():
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


_RULE_DURATIONS = ("for", "keep_firing_for")
_GROUP_DURATIONS = ("interval", "query_offset", "evaluation_delay")


def _drop_empty(mapping: Mapping[str, Any]) -> dict[str, Any]:
    # An absent optional field and its zero value mean the same to Prometheus' rulefmt.
    return {k: v for k, v in mapping.items() if v not in (None, "", {}, [], 0, "0s")}


def normalise_rule_group(group: Mapping[str, Any]) -> dict[str, Any]:
    """Return a rule group as the rulers compare it: canonical durations, no empty fields."""
    rules = []
    for rule in group.get("rules") or []:
        entry = dict(rule)
        for key in _RULE_DURATIONS:
            if key in entry:
                entry[key] = canonical_duration(entry[key])
        for key in ("labels", "annotations"):
            if isinstance(entry.get(key), Mapping):
                entry[key] = {str(k): str(v) for k, v in entry[key].items()}
        rules.append(_drop_empty(entry))
    normalised = dict(group)
    for key in _GROUP_DURATIONS:
        if key in normalised:
            normalised[key] = canonical_duration(normalised[key])
    normalised["rules"] = rules
    return _drop_empty(normalised)


class _IndentedDumper(yaml.SafeDumper):
    """Indents list items under their key (``rules:\n  - expr: ...``), as people write YAML."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump_yaml(data: object) -> str:
    """Return ``data`` as block YAML with sorted keys (the form diffs are taken of)."""
    return yaml.dump(
        data,
        Dumper=_IndentedDumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


def dump_json(data: object) -> str:
    """Return ``data`` as indented JSON with sorted keys (the form diffs are taken of)."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def unified(live: str | None, desired: str | None, name: str) -> str:
    """Return the unified diff live -> desired of two texts ("" when equal).

    ``None`` stands for "absent": a create diffs from /dev/null, a delete to it.
    """
    before = [] if live is None else live.splitlines(keepends=True)
    after = [] if desired is None else desired.splitlines(keepends=True)
    lines = difflib.unified_diff(
        before,
        after,
        fromfile="/dev/null" if live is None else f"live/{name}",
        tofile="/dev/null" if desired is None else f"rendered/{name}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
