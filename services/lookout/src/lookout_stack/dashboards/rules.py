"""Read alert thresholds out of the rule files, so panels draw the values the alerts use.

A panel never repeats an alert's number: it names the alert, its severity and the text just
left of the comparison (usually the series), and the value is parsed from the rule's ``expr``
in ``prometheus/rules/*.yml`` (or ``loki/rules/**/*.yaml``). Change the rule and the next
``lookout dashboards build`` moves the line on the panel; reshape the rule so that the
comparison is no longer found and the build stops with a message naming the alert.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["AlertRule", "RuleError", "Rules"]

# A comparison with a number (or a product of numbers, as in `> (14.4 * 0.01)`) on its right.
_NUMBER = r"[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
_COMPARISON = re.compile(
    rf"(?P<op>>=|<=|==|!=|>|<)\s*\(?\s*(?P<value>{_NUMBER}(?:\s*\*\s*{_NUMBER})*)\s*\)?"
)


class RuleError(ValueError):
    """A rule file is unreadable, or an alert a panel relies on is missing or reshaped."""


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule: where it is, its name, severity and expression (whitespace folded)."""

    path: Path
    name: str
    severity: str
    expr: str


@dataclass(frozen=True)
class Rules:
    """Every alerting rule and recording-rule name of the Prometheus and Loki rule files."""

    alerts: tuple[AlertRule, ...]
    records: frozenset[str]

    @classmethod
    def load(cls, root: Path) -> Rules:
        """Read ``prometheus/rules/*.yml`` and ``loki/rules/**/*.yaml`` under ``root``."""
        files = sorted((root / "prometheus" / "rules").glob("*.yml"))
        files += sorted((root / "loki" / "rules").rglob("*.yaml"))
        alerts: list[AlertRule] = []
        records: set[str] = set()
        for path in files:
            for rule in _rules_of(path):
                if "record" in rule:
                    records.add(str(rule["record"]))
                elif "alert" in rule:
                    severity = str((rule.get("labels") or {}).get("severity", ""))
                    expr = " ".join(str(rule.get("expr", "")).split())
                    alerts.append(AlertRule(path, str(rule["alert"]), severity, expr))
        return cls(tuple(alerts), frozenset(records))

    def threshold(self, alert: str, severity: str, left: str) -> float:
        """Return the number ``alert`` (of ``severity``) compares ``left`` with.

        ``left`` is the text just before the comparison, whitespace-insensitive: a series
        name (label matchers and closing parentheses after it are skipped) or an expression's
        tail such as ``/ 86400``.
        """
        rules = [r for r in self.alerts if r.name == alert and r.severity == severity]
        if not rules:
            known = sorted({f"{r.name}/{r.severity}" for r in self.alerts if r.name == alert})
            msg = (
                f"alert {alert} with severity {severity!r} is in no rule file under "
                f"prometheus/rules or loki/rules (found: {', '.join(known) or 'none'}); "
                f"a dashboard panel draws its threshold"
            )
            raise RuleError(msg)
        rule = rules[0]
        value = _compared_value(rule.expr, left)
        if value is None:
            msg = (
                f"{rule.path}: alert {alert} ({severity}) has no comparison of {left!r} with a "
                f"number in its expr {rule.expr!r}; update the dashboard panel that draws it"
            )
            raise RuleError(msg)
        return value

    def warning_and_critical(self, alert: str, left: str) -> tuple[float, float]:
        """Return the warning and the critical threshold of ``alert`` (see ``threshold``)."""
        return self.threshold(alert, "warning", left), self.threshold(alert, "critical", left)

    def thresholds_if_present(self, series: str) -> list[tuple[str, float]]:
        """Return (severity, value) of every alert comparing ``series`` with a number.

        For rule files another part of the stack generates (the SLO rules): absent rules
        draw no line instead of failing the build.
        """
        found: set[tuple[str, float]] = set()
        for rule in self.alerts:
            value = _compared_value(rule.expr, series)
            if value is not None:
                found.add((rule.severity, value))
        return sorted(found, key=lambda item: item[1])


def _rules_of(path: Path) -> list[dict[str, Any]]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        msg = f"{path}: cannot read the rule file: {error}"
        raise RuleError(msg) from error
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(document, dict) or not isinstance(groups, list | None):
        msg = f"{path}: expected a mapping with `groups:` (a list of rule groups)"
        raise RuleError(msg)
    rules: list[dict[str, Any]] = []
    for index, group in enumerate(groups or []):
        found = group.get("rules") if isinstance(group, dict) else None
        if not isinstance(group, dict) or not isinstance(found, list | None):
            msg = f"{path}: groups[{index}]: expected a mapping with `rules:` (a list of rules)"
            raise RuleError(msg)
        for number, rule in enumerate(found or []):
            if not isinstance(rule, dict):
                msg = f"{path}: groups[{index}].rules[{number}]: expected a mapping"
                raise RuleError(msg)
            rules.append(rule)
    return rules


def _compared_value(expr: str, left: str) -> float | None:
    """Return the number compared right after ``left`` in ``expr``, or None."""
    pattern = r"\s*".join(re.escape(part) for part in left.split())
    if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", left):
        # A series: not a prefix of a longer name; its matchers, range and closing parentheses
        # skipped.
        name = rf"(?<![A-Za-z0-9_:]){pattern}(?![A-Za-z0-9_:])"
        pattern = rf"{name}(?:\{{[^}}]*\}})?(?:\[[^\]]*\])?(?:\s*\))*"
    for match in re.finditer(pattern, expr):
        comparison = _COMPARISON.match(expr, match.end() + _spaces(expr, match.end()))
        if comparison:
            value = 1.0
            for factor in comparison.group("value").split("*"):
                value *= float(factor)
            return round(value, 10)
    return None


def _spaces(text: str, start: int) -> int:
    return len(text[start:]) - len(text[start:].lstrip())
