"""Performance budgets for the Locust load: read from one TOML file, checked against the stats.

The file (tests/load/budgets.toml) has a ``[total]`` table for the whole run and a
``[requests."<name>"]`` table per Locust request name that needs its own; each holds any of
``max_failure_ratio`` (0..1), ``p50_ms``, ``p95_ms``, ``p99_ms`` (milliseconds, > 0) and
``min_requests`` (so a run that hardly sent anything cannot pass).

TOML rather than YAML: the Locust image (compose's `load` profile) has Python's tomllib and
not PyYAML. tomllib gives no line numbers for values, so an error's line is found by reading
the file's lines back (each header and ``key = value`` line parsed on its own).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FIELDS",
    "Budget",
    "BudgetError",
    "Budgets",
    "check_budgets",
    "load_budgets",
]

#: Every field a budget may set, and what it must be.
FIELDS = {
    "max_failure_ratio": "a number from 0 to 1",
    "p50_ms": "a positive number of milliseconds",
    "p95_ms": "a positive number of milliseconds",
    "p99_ms": "a positive number of milliseconds",
    "min_requests": "a positive whole number",
}
PERCENTILES = {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}


class BudgetError(ValueError):
    """The budget file cannot be used (the message names file:line and the field)."""


@dataclass(frozen=True)
class Budget:
    """The limits for the whole run or for one request name."""

    name: str  # "total", or the request's Locust name
    limits: Mapping[str, float]


@dataclass(frozen=True)
class Budgets:
    """Every budget of one file."""

    path: Path
    total: Budget
    requests: list[Budget] = field(default_factory=list)


def _locate(text: str, table: tuple[str, ...], key: str | None) -> int:
    """Return the 1-based line of ``key`` in ``table`` (or of the table's header), else 1."""
    current: tuple[str, ...] = ()
    header_line = 1
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            parsed = tomllib.loads(stripped)
        except tomllib.TOMLDecodeError:
            continue
        if stripped.startswith("["):
            path: list[str] = []
            node: Any = parsed
            while isinstance(node, dict) and len(node) == 1:
                name = next(iter(node))
                path.append(name)
                node = node[name]
            current = tuple(path)
            if current == table:
                header_line = number
        elif current == table and key is not None and key in parsed:
            return number
    return header_line


def _limits(raw: Any, table: tuple[str, ...], where: str, text: str) -> dict[str, float]:
    if not isinstance(raw, dict):
        line = _locate(text, table, None)
        msg = f"{where}:{line}: {'.'.join(table)}: expected a table of limits"
        raise BudgetError(msg)
    limits: dict[str, float] = {}
    for key, value in raw.items():
        line = _locate(text, table, key)
        spot = f"{where}:{line}: {'.'.join((*table, key))}"
        if key not in FIELDS:
            msg = f"{spot}: unknown field (expected one of {', '.join(FIELDS)})"
            raise BudgetError(msg)
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        valid = number is not None and math.isfinite(number) and number > 0
        if key == "max_failure_ratio":
            valid = number is not None and 0 <= number <= 1
        if key == "min_requests":
            valid = isinstance(number, int) and number > 0
        if not valid:
            msg = f"{spot}: {value!r} is not {FIELDS[key]}"
            raise BudgetError(msg)
        limits[key] = float(value)
    if not limits:
        line = _locate(text, table, None)
        msg = f"{where}:{line}: {'.'.join(table)}: no limits (set one of {', '.join(FIELDS)})"
        raise BudgetError(msg)
    return limits


def load_budgets(path: Path) -> Budgets:
    """Read and validate a budget file; BudgetError names file:line and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"{path}: cannot read the budget file: {exc.strerror}"
        raise BudgetError(msg) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)".
        msg = f"{path}: not TOML: {exc}"
        raise BudgetError(msg) from None
    unknown = sorted(set(data) - {"total", "requests"})
    if unknown:
        line = _locate(text, (unknown[0],), None)
        wanted = '[total] and [requests."NAME"]'
        msg = f"{path}:{line}: {unknown[0]}: unknown table (expected {wanted})"
        raise BudgetError(msg)
    if "total" not in data:
        msg = f"{path}:1: total: missing (the [total] table holds the whole run's budget)"
        raise BudgetError(msg)
    total = Budget("total", _limits(data["total"], ("total",), str(path), text))
    requests = data.get("requests", {})
    if not isinstance(requests, dict):
        line = _locate(text, (), "requests")
        msg = f'{path}:{line}: requests: expected tables [requests."NAME"]'
        raise BudgetError(msg)
    per_request = [
        Budget(name, _limits(raw, ("requests", name), str(path), text))
        for name, raw in requests.items()
    ]
    return Budgets(path, total, per_request)


def _figures(entry: Any) -> dict[str, float]:
    """Return a Locust StatsEntry's figures under the budget field names."""
    figures = {
        "max_failure_ratio": float(entry.fail_ratio),
        "min_requests": float(entry.num_requests),
    }
    for key, percent in PERCENTILES.items():
        figures[key] = float(entry.get_response_time_percentile(percent) or 0)
    return figures


def _compare(budget: Budget, figures: Mapping[str, float]) -> Iterable[str]:
    for key, limit in budget.limits.items():
        value = figures[key]
        if key == "min_requests":
            if value < limit:
                yield f"{budget.name}: {value:.0f} requests, fewer than min_requests {limit:.0f}"
        elif key == "max_failure_ratio":
            if value > limit:
                yield (
                    f"{budget.name}: failure ratio {value:.4f} > max_failure_ratio {limit:g} "
                    f"(over by {value - limit:.4f})"
                )
        elif value > limit:
            yield (
                f"{budget.name}: {key.removesuffix('_ms')} {value:.0f} ms > {key} {limit:g} "
                f"(over by {value - limit:.0f} ms)"
            )


def check_budgets(budgets: Budgets, stats: Any) -> list[str]:
    """Return one line per broken budget (empty: every budget holds) for Locust's stats."""
    broken = list(_compare(budgets.total, _figures(stats.total)))
    for budget in budgets.requests:
        entries = [e for e in stats.entries.values() if e.name == budget.name]
        if not entries or not sum(e.num_requests for e in entries):
            broken.append(
                f"{budget.name}: no request of that name ran, so its budget cannot hold "
                f"({budgets.path} names it)"
            )
            continue
        for entry in entries:
            broken.extend(_compare(budget, _figures(entry)))
    return broken
