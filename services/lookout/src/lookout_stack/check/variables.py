"""Template variables: pick their values and substitute them the way Grafana does.

Syntax (https://grafana.com/docs/grafana/v13.2/dashboards/variables/variable-syntax/):
``$name``, ``${name}``, ``${name:format}``, ``[[name]]``, ``[[name:format]]``. Without a
format, each data source formats the value itself; for Prometheus and Loki (the data source's
``interpolateQueryExpr``): a variable that is neither multi-value nor has an "All" option is
inserted with only backslashes and quotes escaped; otherwise each value is regex-escaped and
several values become ``(a|b|c)``. "All" is every option's value, or the variable's "Custom all
value" inserted as it is, never escaped.
https://grafana.com/docs/grafana/v13.2/dashboards/variables/add-template-variables/#configure-variable-selection-options

Values: a ``--var name=value`` given on the command line (as Grafana's ``var-name=value`` URL
parameter), else the dashboard's saved ``current``; a saved value that is not among the options
falls back to the first option (which is "All" when the variable has one), as Grafana does on
load. Query variables are asked of the data source (see :class:`VariableSource`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote

from lookout_stack.check.errors import VariableError
from lookout_stack.check.timing import (
    TimeRange,
    format_interval,
    parse_duration_ms,
    round_interval_ms,
)

__all__ = [
    "ALL",
    "Flavor",
    "VariableSource",
    "VariableValue",
    "interpolate",
    "parse_variable_query",
    "resolve_variables",
]

ALL = "$__all"
Flavor = Literal["prometheus", "loki", "tempo", "raw"]

# Grafana's variableRegex (public/app/features/variables/utils.ts).
VARIABLE_PATTERN = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)
_PROM_REGEX_CHARS = re.compile(r"[$^*{}\[\]+?.()|]")


@dataclass(frozen=True)
class VariableValue:
    """The selected value(s) of one variable, and how Grafana formats it."""

    name: str
    values: tuple[str, ...]
    multi: bool = False  # multi-value or has an "All" option: regex formatting applies
    custom_all: str | None = None  # "All" selected with a custom all value: inserted raw
    all_selected: bool = False

    @property
    def text(self) -> str:
        """Return the value for a report: ``All (a, b)`` or the values joined by ``+``."""
        if self.all_selected:
            return f"All ({', '.join(self.values)})" if self.custom_all is None else "All"
        return " + ".join(self.values)


class VariableSource(Protocol):
    """Where a query variable's options come from: one data source's label/tag APIs."""

    async def options(self, query: Any, time_range: TimeRange) -> list[str]:
        """Return the variable's options (before its regex and sort) for a variable query."""
        ...


# --- formatting ---------------------------------------------------------------------------------


def _prom_regular_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


def _prom_regex_escape(value: str) -> str:
    return _PROM_REGEX_CHARS.sub(lambda m: "\\\\" + m[0], value.replace("\\", "\\\\\\\\"))


def _default_format(value: VariableValue, flavor: Flavor) -> str:
    if value.custom_all is not None:
        return value.custom_all
    if flavor in {"prometheus", "loki"}:
        if not value.multi:
            return ",".join(_prom_regular_escape(v) for v in value.values)
        escaped = [_prom_regex_escape(v) for v in value.values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if flavor == "tempo" and value.multi and len(value.values) > 1:
        return "(" + "|".join(value.values) + ")"
    return ",".join(value.values)


def _formatted(value: VariableValue, fmt: str) -> str:  # noqa: PLR0911 (one return per format)
    if value.custom_all is not None and fmt not in {"text"}:
        return value.custom_all
    values = list(value.values)
    if fmt == "raw":
        return ",".join(values)
    if fmt == "regex":
        escaped = [re.escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "pipe":
        return "|".join(values)
    if fmt in {"csv", "text"}:
        return value.text if fmt == "text" else ",".join(values)
    if fmt == "json":
        return json.dumps(values if len(values) != 1 else values[0])
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "glob":
        return values[0] if len(values) == 1 else "{" + ",".join(values) + "}"
    if fmt == "queryparam":
        return "&".join(f"var-{value.name}={quote(v, safe='')}" for v in values)
    if fmt == "percentencode":
        return quote(",".join(values), safe="")
    msg = f"unknown variable format {fmt!r} for ${{{value.name}:{fmt}}}"
    raise VariableError(msg)


def interpolate(
    text: str,
    variables: Mapping[str, VariableValue],
    flavor: Flavor,
    builtins: Mapping[str, str] | None = None,
) -> str:
    """Return ``text`` with every known variable replaced; unknown names stay as written.

    ``builtins`` are Grafana's global variables (``__interval``, ``__rate_interval``, ...);
    None leaves them for Grafana's backend to substitute (the ``--grafana`` mode).
    """

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[4]
        fmt = match[3] or match[6]
        if name in variables:
            value = variables[name]
            return _formatted(value, fmt) if fmt else _default_format(value, flavor)
        if builtins is not None and name in builtins:
            if fmt and name in {"__from", "__to"}:
                return _date_format(int(builtins[name]), fmt)
            return builtins[name]
        return match[0]

    return VARIABLE_PATTERN.sub(replace, text)


def _date_format(ms: int, fmt: str) -> str:
    if fmt in {"date:seconds"}:
        return str(ms // 1000)
    if fmt in {"date", "date:iso"}:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(ms)


# --- variable queries ---------------------------------------------------------------------------

_CLASSIC = re.compile(r"^\s*(label_names|label_values|metrics|query_result)\((.*)\)\s*$", re.S)


def parse_variable_query(query: Any) -> tuple[str, list[str]]:
    """Return (function, arguments) of a classic Prometheus/Loki variable query.

    ``query`` is what the dashboard stores: a string such as ``label_values(up, job)`` or an
    object with ``query`` (the variable editors of Grafana 10+ store ``{"query": ..., "qryType":
    ..., "refId": ...}``; Loki's store ``{"type": 1|2, "label": ..., "stream": ...}``).
    """
    if isinstance(query, Mapping):
        if isinstance(query.get("query"), str) and query["query"].strip():
            query = query["query"]
        elif "label" in query or "type" in query:
            # Loki's editor: type 1 = label names, 2 = label values (of `label` in `stream`).
            label, stream = str(query.get("label") or ""), str(query.get("stream") or "")
            if str(query.get("type")) in {"1", "labelNames"}:
                return "label_names", [stream] if stream else []
            return "label_values", [stream, label] if stream else [label]
        else:
            msg = f"variable query object without a query: {json.dumps(query)[:200]}"
            raise VariableError(msg)
    text = str(query)
    match = _CLASSIC.match(text)
    if not match:
        msg = (
            f"variable query {text!r} is not one of label_names(), label_values([metric,] label), "
            "metrics(regex), query_result(query)"
        )
        raise VariableError(msg)
    function, inner = match[1], match[2].strip()
    if function == "label_values":
        # The label is the last argument; the metric or selector before it may hold commas.
        head, _, label = inner.rpartition(",")
        return function, [head.strip(), label.strip()] if head else [label.strip()]
    return function, [inner] if inner else []


def _apply_regex(options: list[str], pattern: str | None) -> list[str]:
    if not pattern:
        return options
    body, flags = pattern, 0
    found = re.fullmatch(r"/(.*)/([gimsuy]*)", pattern, re.S)
    if found:
        body = found[1]
        flags = re.I if "i" in found[2] else 0
    try:
        regex = re.compile(body, flags)
    except re.error as exc:
        msg = f"variable regex {pattern!r} does not compile: {exc}"
        raise VariableError(msg) from None
    kept: list[str] = []
    for option in options:
        match = regex.search(option)
        if not match:
            continue
        named = match.groupdict()
        value = named.get("value") or named.get("text")
        if value is None:
            value = match[1] if regex.groups else option
        if value not in kept:
            kept.append(value)
    return kept


def _sort(options: list[str], order: object) -> list[str]:
    def number(text: str) -> float:
        found = re.search(r"-?\d+(?:\.\d+)?", text)
        return float(found[0]) if found else float("inf")

    mode = int(order) if isinstance(order, int | str) and str(order).isdigit() else 0
    if mode in {1, 2}:
        return sorted(options, reverse=mode == 2)
    if mode in {3, 4}:
        return sorted(options, key=number, reverse=mode == 4)
    if mode in {5, 6, 7, 8}:
        return sorted(options, key=str.lower, reverse=mode in {6, 8})
    return options


# --- resolution ---------------------------------------------------------------------------------


@dataclass
class _Definition:
    spec: Mapping[str, Any]
    name: str = field(init=False)
    kind: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = str(self.spec.get("name") or "")
        self.kind = str(self.spec.get("type") or "query")

    @property
    def include_all(self) -> bool:
        return bool(self.spec.get("includeAll"))

    @property
    def multi(self) -> bool:
        return bool(self.spec.get("multi")) or self.include_all

    def current(self) -> list[str]:
        current = self.spec.get("current") or {}
        value = current.get("value") if isinstance(current, Mapping) else None
        if value is None or value == "":
            return []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _static_options(definition: _Definition) -> list[str]:
    """Return the options of a custom or interval variable as stored in the dashboard."""
    stored = [
        str(o.get("value"))
        for o in definition.spec.get("options") or []
        if isinstance(o, Mapping) and o.get("value") not in {None, ALL}
    ]
    if stored:
        return stored
    query = str(definition.spec.get("query") or "")
    options = []
    # Custom variables: "a, b, c" or "text : value" pairs (Grafana splits on unescaped commas).
    for part in re.split(r"(?<!\\),", query):
        item = part.replace("\\,", ",").strip()
        if " : " in item:
            item = item.split(" : ", 1)[1].strip()
        if item:
            options.append(item)
    return options


def _select(
    definition: _Definition, options: list[str], override: list[str] | None
) -> VariableValue:
    wanted = override if override is not None else definition.current()
    name = definition.name
    if wanted in ([ALL], ["All"]) and definition.include_all:
        all_value = definition.spec.get("allValue")
        if all_value not in {None, ""}:
            return VariableValue(name, tuple(options), True, str(all_value), all_selected=True)
        return VariableValue(name, tuple(options), True, all_selected=True)
    chosen = [v for v in wanted if v in options] if options else wanted
    if override is not None and not chosen:
        msg = f"--var {name}={','.join(override)}: not among the options {options[:20]}"
        raise VariableError(msg)
    if not chosen:
        # Grafana on load: an unknown or missing value becomes the first option ("All" first
        # when the variable has one).
        if definition.include_all and options:
            return _select(definition, options, [ALL])
        chosen = options[:1]
    if not chosen:
        msg = f"variable ${name} has no value and no options"
        raise VariableError(msg)
    return VariableValue(name, tuple(chosen), definition.multi)


def _auto_interval(definition: _Definition, time_range: TimeRange) -> str:
    count = int(definition.spec.get("auto_count") or 30)
    minimum = str(definition.spec.get("auto_min") or "10s")
    interval = round_interval_ms(time_range.span_ms / max(count, 1))
    return format_interval(max(interval, parse_duration_ms(minimum)))


def _fixed_value(  # noqa: PLR0911 (one return per variable type)
    definition: _Definition, override: list[str] | None, time_range: TimeRange
) -> VariableValue | None:
    """Return the value of a variable that needs no data source (None: skip the variable)."""
    spec, name, kind = definition.spec, definition.name, definition.kind
    if kind in {"adhoc", "groupby"}:
        return None  # no filters selected: nothing to add to the queries
    if kind == "constant":
        return VariableValue(name, (str(spec.get("query") or ""),))
    if kind in {"textbox", "switch"}:
        given = override or definition.current() or [str(spec.get("query") or "")]
        return VariableValue(name, tuple(given[:1]))
    if kind == "datasource":
        plugin = str(spec.get("query") or "")
        given = override or definition.current() or [plugin]
        # Lookout's data sources have their type as uid; "default" is the type's default.
        return VariableValue(name, (plugin if given[0] in {"default", ""} else given[0],))
    if kind == "interval":
        options = _static_options(definition)
        selected = override or definition.current() or options[:1]
        value = selected[0] if selected else ""
        if value.startswith("$__auto") or value == "auto":
            value = _auto_interval(definition, time_range)
        return VariableValue(name, (value,))
    if kind == "custom":
        return _select(definition, _static_options(definition), override)
    given = override or definition.current()
    return VariableValue(name, tuple(given)) if given else None


async def _query_value(  # noqa: PLR0917 (private; one call site)
    definition: _Definition,
    override: list[str] | None,
    time_range: TimeRange,
    source: VariableSource,
    resolved: Mapping[str, VariableValue],
    flavor: Flavor,
) -> VariableValue:
    """Return the value of a query variable, its options asked of its data source."""
    spec = definition.spec
    query = spec.get("query") or spec.get("definition") or ""
    if isinstance(query, str):
        query = interpolate(query, resolved, flavor)
    elif isinstance(query, Mapping):
        query = {
            k: interpolate(v, resolved, flavor) if isinstance(v, str) else v
            for k, v in query.items()
        }
    try:
        options = await source.options(query, time_range)
    except VariableError as exc:
        msg = f"query variable ${definition.name}: {exc}"
        raise VariableError(msg) from None
    options = _sort(_apply_regex(options, spec.get("regex")), spec.get("sort"))
    return _select(definition, options, override)


async def resolve_variables(
    templating: Sequence[Mapping[str, Any]],
    time_range: TimeRange,
    sources: Mapping[str, VariableSource],
    overrides: Mapping[str, list[str]],
    datasource_kind: Callable[[Any, Mapping[str, VariableValue]], str],
) -> dict[str, VariableValue]:
    """Return the value of every variable of a dashboard, in the dashboard's order.

    ``sources`` maps a data source kind (``prometheus``, ``loki``, ``tempo``) to where its
    query variables are looked up; ``datasource_kind(ref, resolved)`` tells the kind of a
    variable's data source reference. A query variable may use the variables before it.
    """
    resolved: dict[str, VariableValue] = {}
    for spec in templating:
        definition = _Definition(spec)
        if not definition.name:
            continue
        override = overrides.get(definition.name)
        if definition.kind != "query":
            value = _fixed_value(definition, override, time_range)
            if value is not None:
                resolved[definition.name] = value
            continue
        source_kind = datasource_kind(spec.get("datasource"), resolved)
        source = sources.get(source_kind)
        if source is None:
            msg = (
                f"query variable ${definition.name}: no way to ask data source "
                f"{source_kind!r} for its values here"
            )
            raise VariableError(msg)
        flavor: Flavor = "loki" if source_kind == "loki" else "prometheus"
        resolved[definition.name] = await _query_value(
            definition, override, time_range, source, resolved, flavor
        )
    return resolved
