"""Readable conditions, in the spirit of gatus: ``[STATUS] == 200``, ``[BODY].items[0].id == 3``.

A condition is ``LEFT OPERATOR RIGHT`` with spaces around the operator. LEFT is a
placeholder, optionally followed by a JSON path (``[BODY].a[0]``) or a header name
(``[HEADERS].Content-Type``), or wrapped in ``len(...)`` or ``has(...)``. RIGHT is a number,
``true``/``false``/``null``, a quoted or bare string, ``pat(glob*)`` or ``any(a, b)``.
Operators: ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``=~`` (regex search), ``!~``.

Placeholders, and the step types that provide them:

========================  ==================  ==================================
placeholder               step types          value
========================  ==================  ==================================
``[STATUS]``              http                HTTP status code
``[RESPONSE_TIME]``       all                 milliseconds the step took
``[BODY]``                http, dns           response text / first DNS answer
``[BODY].path``           http                a value of the JSON body
``[HEADERS].Name``        http                a response header (any case)
``[CERT_DAYS_LEFT]``      http (https), tls   days until the peer certificate expires
``[CONNECTED]``           all                 whether a connection was made
``[DNS_RCODE]``           dns                 NOERROR, NXDOMAIN, SERVFAIL, ...
``[DNS_ANSWERS]``         dns                 number of answers
========================  ==================  ==================================

Everything is parsed and validated when the configuration loads (``parse_condition``), so a
typo fails ``synthetic-monitor check`` instead of a 3 a.m. run.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from synthetic_monitor.errors import ConditionError
from synthetic_monitor.jsonpath import MISSING, JsonPath, parse_path

__all__ = [
    "PLACEHOLDERS",
    "Condition",
    "ConditionResult",
    "Observation",
    "parse_condition",
]

StepKind = Literal["http", "tcp", "dns", "tls"]
Operator = Literal["==", "!=", "<", "<=", ">", ">=", "=~", "!~"]

#: Placeholder name -> the step types that provide it.
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "STATUS": frozenset({"http"}),
    "RESPONSE_TIME": frozenset({"http", "tcp", "dns", "tls"}),
    "BODY": frozenset({"http", "dns"}),
    "HEADERS": frozenset({"http"}),
    "CERT_DAYS_LEFT": frozenset({"http", "tls"}),
    "CONNECTED": frozenset({"http", "tcp", "dns", "tls"}),
    "DNS_RCODE": frozenset({"dns"}),
    "DNS_ANSWERS": frozenset({"dns"}),
}
_NUMERIC = frozenset({"STATUS", "RESPONSE_TIME", "CERT_DAYS_LEFT", "DNS_ANSWERS"})

_SPLIT = re.compile(r"^(?P<left>.+?)\s+(?P<op>==|!=|<=|>=|=~|!~|<|>)\s+(?P<right>.+)$")
_LEFT = re.compile(
    r"^(?:(?P<func>len|has)\((?P<inner>.+)\)|(?P<plain>.+))$",
)
_PLACEHOLDER = re.compile(r"^\[(?P<name>[A-Z_]+)\](?P<rest>.*)$")
_NUMBER = re.compile(r"^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


@dataclass
class Observation:
    """What a step saw, for conditions to look at."""

    kind: str
    response_time_ms: float
    connected: bool = False
    status: int | None = None
    body: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    cert_days_left: float | None = None
    dns_rcode: str | None = None
    dns_answers: list[str] = field(default_factory=list)
    _json: object = field(default=MISSING, repr=False)

    def json_body(self) -> object:
        """Return the body parsed as JSON (``MISSING`` when it is not JSON)."""
        if self._json is MISSING and self.body is not None:
            try:
                self._json = json.loads(self.body)
            except ValueError:
                self._json = MISSING
        return self._json


@dataclass(frozen=True)
class _Right:
    kind: Literal["number", "bool", "null", "string", "pattern", "any", "regex"]
    value: object
    text: str


@dataclass(frozen=True)
class ConditionResult:
    """One evaluated condition: whether it held, and a readable account of why."""

    condition: str
    success: bool
    detail: str


@dataclass(frozen=True)
class Condition:
    """A parsed condition; ``evaluate`` applies it to an ``Observation``."""

    text: str
    placeholder: str
    function: Literal["len", "has"] | None
    path: JsonPath | None
    header: str | None
    operator: Operator
    right: _Right

    def _resolve(self, seen: Observation) -> object:
        name = self.placeholder
        if name == "BODY" and self.path is not None:
            return self.path.get(seen.json_body())
        if name == "HEADERS":
            wanted = (self.header or "").lower()
            for key, text in seen.headers.items():
                if key.lower() == wanted:
                    return text
            return MISSING
        value: object = {
            "STATUS": seen.status,
            "RESPONSE_TIME": seen.response_time_ms,
            "BODY": seen.body,
            "CERT_DAYS_LEFT": seen.cert_days_left,
            "CONNECTED": seen.connected,
            "DNS_RCODE": seen.dns_rcode,
            "DNS_ANSWERS": len(seen.dns_answers),
        }[name]
        return MISSING if value is None else value

    def evaluate(self, seen: Observation) -> ConditionResult:
        """Return whether the condition holds for ``seen``, with the value it saw."""
        value = self._resolve(seen)
        if self.function == "has":
            value = value is not MISSING
        elif self.function == "len":
            value = len(value) if isinstance(value, str | list | dict) else MISSING
        ok = value is not MISSING and _compare(value, self.operator, self.right)
        shown = "missing" if value is MISSING else _show(value)
        left = self.text.split(f" {self.operator} ", 1)[0]
        return ConditionResult(
            condition=self.text,
            success=ok,
            detail=f"{left} ({shown}) {self.operator} {self.right.text}",
        )


def _show(value: object) -> str:
    text = (
        json.dumps(value) if isinstance(value, bool | dict | list) or value is None else str(value)
    )
    return text if len(text) <= 80 else text[:77] + "..."


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return None


def _as_text(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _equals(value: object, right: _Right) -> bool:
    if right.kind == "number":
        number = _as_number(value)
        return number is not None and math.isclose(number, float(right.value))  # type: ignore[arg-type]
    if right.kind == "bool":
        return value is right.value
    if right.kind == "null":
        return value is None
    if right.kind == "pattern":
        return fnmatch.fnmatchcase(_as_text(value), str(right.value))
    if right.kind == "any":
        return any(_equals(value, option) for option in right.value)  # type: ignore[attr-defined]
    return _as_text(value) == right.value


def _compare(value: object, operator: Operator, right: _Right) -> bool:
    if operator == "==":
        return _equals(value, right)
    if operator == "!=":
        return not _equals(value, right)
    if operator in {"=~", "!~"}:
        pattern: re.Pattern[str] = right.value  # type: ignore[assignment]
        found = pattern.search(_as_text(value)) is not None
        return found if operator == "=~" else not found
    number = _as_number(value)
    limit = float(right.value)  # type: ignore[arg-type]
    if number is None:
        return False
    return {
        "<": number < limit,
        "<=": number <= limit,
        ">": number > limit,
        ">=": number >= limit,
    }[operator]


def _parse_literal(text: str) -> _Right:
    text = text.strip()
    if _NUMBER.match(text):
        return _Right("number", float(text), text)
    if text in {"true", "false"}:
        return _Right("bool", text == "true", text)
    if text == "null":
        return _Right("null", None, text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in {'"', "'"}:
        return _Right("string", text[1:-1], text)
    return _Right("string", text, text)


def _parse_right(text: str, operator: Operator) -> _Right:
    text = text.strip()
    if operator in {"=~", "!~"}:
        pattern = text[1:-1] if len(text) >= 2 and text[0] == text[-1] in {'"', "'"} else text
        try:
            return _Right("regex", re.compile(pattern), text)
        except re.error as error:
            msg = f"invalid regular expression {pattern!r}: {error}"
            raise ConditionError(msg) from error
    if text.startswith("pat(") and text.endswith(")"):
        return _Right("pattern", text[4:-1], text)
    if text.startswith("any(") and text.endswith(")"):
        options = [_parse_literal(part) for part in text[4:-1].split(",") if part.strip()]
        if not options:
            msg = "any() needs at least one value, e.g. any(200, 204)"
            raise ConditionError(msg)
        return _Right("any", tuple(options), text)
    right = _parse_literal(text)
    if operator in {"<", "<=", ">", ">="} and right.kind != "number":
        msg = f"{operator} compares numbers, but {text!r} is not a number"
        raise ConditionError(msg)
    return right


def parse_condition(text: str, kind: str = "http") -> Condition:
    """Parse and validate ``text`` for a step of type ``kind``; raise ConditionError."""
    match = _SPLIT.match(text.strip())
    if match is None:
        msg = (
            f"cannot read condition {text!r}: write PLACEHOLDER OPERATOR VALUE with spaces "
            "around the operator, e.g. '[STATUS] == 200' (operators: == != < <= > >= =~ !~)"
        )
        raise ConditionError(msg)
    operator: Operator = match.group("op")  # type: ignore[assignment]
    left = _LEFT.match(match.group("left").strip())
    if left is None:  # the pattern matches any non-empty text; this is for the type checker
        raise ConditionError(f"cannot read the left side of {text!r}")
    function = left.group("func")
    target = (left.group("inner") or left.group("plain")).strip()
    placeholder = _PLACEHOLDER.match(target)
    if placeholder is None:
        msg = (
            f"the left side of {text!r} must be a placeholder such as [STATUS] or "
            f"[BODY].items[0].id, got {target!r}"
        )
        raise ConditionError(msg)
    name, rest = placeholder.group("name"), placeholder.group("rest").strip()
    if name not in PLACEHOLDERS:
        known = ", ".join(f"[{key}]" for key in PLACEHOLDERS)
        msg = f"unknown placeholder [{name}] in {text!r}; known: {known}"
        raise ConditionError(msg)
    if kind not in PLACEHOLDERS[name]:
        allowed = ", ".join(sorted(PLACEHOLDERS[name]))
        msg = f"[{name}] is not available in a {kind} step (only in: {allowed})"
        raise ConditionError(msg)
    path: JsonPath | None = None
    header: str | None = None
    if name == "HEADERS":
        if not rest.startswith(".") or len(rest) < 2:
            msg = f"[HEADERS] needs a header name, e.g. [HEADERS].Content-Type, in {text!r}"
            raise ConditionError(msg)
        header = rest[1:]
    elif rest:
        if name != "BODY" or kind != "http":
            msg = f"[{name}] takes no path, but {text!r} adds {rest!r}"
            raise ConditionError(msg)
        try:
            path = parse_path(rest)
        except ValueError as error:
            raise ConditionError(f"in {text!r}: {error}") from error
    right = _parse_right(match.group("right"), operator)
    if function == "has" and right.kind != "bool":
        msg = f"has(...) is true or false; compare it with true or false in {text!r}"
        raise ConditionError(msg)
    if (
        name in _NUMERIC
        and function is None
        and right.kind in {"string", "bool", "null"}
        and operator in {"==", "!="}
    ):
        msg = f"[{name}] is a number; compare it with a number in {text!r}"
        raise ConditionError(msg)
    return Condition(
        text=text.strip(),
        placeholder=name,
        function=function,  # type: ignore[arg-type]
        path=path,
        header=header,
        operator=operator,
        right=right,
    )
