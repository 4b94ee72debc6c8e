"""The journey model (pydantic v2): what a configuration file may say, validated at load.

A file holds ``defaults`` (applied to that file's journeys and checks), ``journeys`` (named,
ordered steps with conditions, extractions, secrets and cleanup) and ``checks`` (one-step
journeys: ``http``, ``tcp``, ``dns`` or ``tls``). Every check becomes a ``Journey`` with a
single step, so scheduling, metrics, history and the status page treat both alike.

Durations are numbers of seconds or strings such as ``250ms``, ``30s``, ``5m``, ``1h``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from synthetic_monitor.conditions import Condition, parse_condition
from synthetic_monitor.errors import ConditionError
from synthetic_monitor.jsonpath import parse_path
from synthetic_monitor.templates import render_text, template_names

__all__ = [
    "CheckFile",
    "Defaults",
    "DnsStep",
    "Extraction",
    "HttpStep",
    "Journey",
    "MonitorConfig",
    "SecretRef",
    "Step",
    "TcpStep",
    "TlsOptions",
    "TlsStep",
    "parse_duration",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_TEMPLATE = re.compile(r"\{\{[^}]*\}\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABELS = frozenset({"journey", "step", "job", "instance", "result", "kind"})

#: Conditions a step gets when it names none.
DEFAULT_CONDITIONS: dict[str, tuple[str, ...]] = {
    "http": ("[STATUS] < 400",),
    "tcp": ("[CONNECTED] == true",),
    "dns": ("[DNS_RCODE] == NOERROR",),
    "tls": ("[CONNECTED] == true",),
}


def parse_duration(value: object) -> float:
    """Return seconds from a number or a string like ``250ms``, ``30s``, ``5m``, ``1h``."""
    if isinstance(value, bool):
        msg = f"expected a duration such as 30s, got {value!r}"
        raise ValueError(msg)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return float(match.group(1)) * _UNITS[match.group(2)]
    msg = f"expected a duration such as 250ms, 30s, 5m or 1h, got {value!r}"
    raise ValueError(msg)


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0.0)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0.0)]


def _name(value: str) -> str:
    if not _NAME.match(value):
        msg = (
            f"{value!r} is not a valid name: use letters, digits, '_', '.' or '-' (starting "
            "with a letter or digit, at most 100 characters); it becomes a metric label"
        )
        raise ValueError(msg)
    return value


Name = Annotated[str, AfterValidator(_name)]


def _condition_for(kind: str) -> AfterValidator:
    def check(text: str) -> str:
        try:
            # A {{ name }} on the right is filled in at run time; validate the shape now.
            parse_condition(_TEMPLATE.sub("0", text), kind)
        except ConditionError as error:
            raise ValueError(str(error)) from error
        return text

    return AfterValidator(check)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TlsOptions(_Strict):
    """How a step verifies (or presents) TLS certificates."""

    verify: bool = True
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str | None = None


class Extraction(_Strict):
    """Take one value from a response for later steps: a JSON path, a header or a regex.

    A regex takes its group named ``value``, else its first group, else the whole match.
    """

    json_path: str | None = Field(default=None, alias="json")
    header: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Extraction:
        given = [name for name in ("json_path", "header", "regex") if getattr(self, name)]
        if len(given) != 1:
            msg = "an extraction takes exactly one of json, header or regex"
            raise ValueError(msg)
        if self.json_path is not None:
            parse_path(self.json_path.removeprefix("[BODY]"))
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as error:
                msg = f"invalid regular expression {self.regex!r}: {error}"
                raise ValueError(msg) from error
        return self


class SecretRef(_Strict):
    """Where a secret's value is read at run time: an environment variable or a file."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            msg = "a secret takes exactly one of env (a variable name) or file (a path)"
            raise ValueError(msg)
        return self


class _StepBase(_Strict):
    name: Name
    #: Bounds this step; the journey's timeout bounds the whole attempt.
    timeout: PositiveDuration | None = None
    extract: dict[str, Extraction] = Field(default_factory=dict)

    @field_validator("extract")
    @classmethod
    def _extract_names(cls, value: dict[str, Extraction]) -> dict[str, Extraction]:
        for key in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key) or key == "secrets":
                msg = f"cannot extract into {key!r}: use a name like token or cart_id"
                raise ValueError(msg)
        return value

    @property
    def kind(self) -> str:
        """Return the step type (http, tcp, dns or tls)."""
        return str(getattr(self, "type", "http"))

    @property
    def condition_texts(self) -> list[str]:
        """Return the conditions as written (the defaults for the type when none are)."""
        return list(getattr(self, "conditions", ())) or list(DEFAULT_CONDITIONS[self.kind])

    @cached_property
    def parsed_conditions(self) -> tuple[Condition | None, ...]:
        """Return the conditions parsed at load time (None for one with a ``{{ name }}``)."""
        return tuple(
            None if "{{" in text else parse_condition(text, self.kind)
            for text in self.condition_texts
        )

    def conditions_with(self, values: Mapping[str, object]) -> list[Condition]:
        """Return the conditions, those with ``{{ name }}`` filled in from ``values``."""
        return [
            parsed if parsed is not None else parse_condition(render_text(text, values), self.kind)
            for text, parsed in zip(self.condition_texts, self.parsed_conditions, strict=True)
        ]

    def templated(self) -> dict[str, Any]:
        """Return the fields that may hold ``{{ name }}`` references."""
        return {}

    def references(self) -> set[str]:
        """Return every ``{{ name }}`` the step uses (its fields and its conditions)."""
        return template_names(self.templated()) | template_names(self.condition_texts)


class HttpStep(_StepBase):
    """One HTTP request with its conditions and extractions."""

    type: Literal["http"] = "http"
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    form: dict[str, str] | None = None
    body: str | None = None
    follow_redirects: bool = False
    tls: TlsOptions = Field(default_factory=TlsOptions)
    conditions: list[Annotated[str, _condition_for("http")]] = Field(default_factory=list)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^(https?://|\{\{)", value):
            msg = f"{value!r} is not an http:// or https:// URL"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _one_body(self) -> HttpStep:
        bodies = [n for n in ("json_body", "form", "body") if getattr(self, n) is not None]
        if len(bodies) > 1:
            msg = "a request has at most one of json, form or body"
            raise ValueError(msg)
        return self

    def templated(self) -> dict[str, Any]:
        """Return the fields that may hold ``{{ name }}`` references."""
        return {
            "url": self.url,
            "headers": self.headers,
            "query": self.query,
            "json": self.json_body,
            "form": self.form,
            "body": self.body,
        }


class TcpStep(_StepBase):
    """Open a TCP connection (and close it)."""

    type: Literal["tcp"]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)]
    conditions: list[Annotated[str, _condition_for("tcp")]] = Field(default_factory=list)

    def templated(self) -> dict[str, Any]:
        """Return the fields that may hold ``{{ name }}`` references."""
        return {"host": self.host}


class DnsStep(_StepBase):
    """Resolve a name (a record type, optionally at a chosen nameserver)."""

    type: Literal["dns"]
    query: str
    record: Literal["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SRV", "SOA", "PTR", "CAA"] = "A"
    nameserver: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 53
    conditions: list[Annotated[str, _condition_for("dns")]] = Field(default_factory=list)

    def templated(self) -> dict[str, Any]:
        """Return the fields that may hold ``{{ name }}`` references."""
        return {"query": self.query}


class TlsStep(_StepBase):
    """Complete a TLS handshake and read the peer certificate's expiry."""

    type: Literal["tls"]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 443
    tls: TlsOptions = Field(default_factory=TlsOptions)
    conditions: list[Annotated[str, _condition_for("tls")]] = Field(default_factory=list)

    def templated(self) -> dict[str, Any]:
        """Return the fields that may hold ``{{ name }}`` references."""
        return {"host": self.host}


def _step_type(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "http"))
    return str(getattr(value, "type", "http"))


Step = Annotated[
    Annotated[HttpStep, Tag("http")]
    | Annotated[TcpStep, Tag("tcp")]
    | Annotated[DnsStep, Tag("dns")]
    | Annotated[TlsStep, Tag("tls")],
    Discriminator(_step_type),
]


class Defaults(_Strict):
    """Scheduling values for every journey and check of the same file."""

    interval: PositiveDuration = 60.0
    timeout: PositiveDuration = 10.0
    #: Each run starts up to this much later than its slot, at random (no thundering herd);
    #: unset means a tenth of the interval.
    jitter: Duration | None = None
    retries: Annotated[int, Field(ge=0, le=5)] = 0
    retry_delay: Duration = 1.0
    labels: dict[str, str] = Field(default_factory=dict)


class Journey(_Strict):
    """Named, ordered steps run together on a schedule (or once, from ``run``)."""

    name: Name
    description: str = ""
    interval: PositiveDuration = 60.0
    timeout: PositiveDuration = 10.0
    jitter: Duration | None = None
    retries: Annotated[int, Field(ge=0, le=5)] = 0
    retry_delay: Duration = 1.0
    labels: dict[str, str] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    steps: Annotated[list[Step], Field(min_length=1)]
    cleanup: list[Step] = Field(default_factory=list)
    #: "journey" or "check" (a one-step journey written under ``checks:``).
    kind: Literal["journey", "check"] = "journey"
    #: Where it was defined (``file:line``), for messages; not part of its identity.
    source: str = Field(default="", exclude=True)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _LABEL.match(key) or key in _RESERVED_LABELS or key.startswith("__"):
                msg = (
                    f"label name {key!r} is not usable: use [a-zA-Z_][a-zA-Z0-9_]*, not one of "
                    f"{', '.join(sorted(_RESERVED_LABELS))}"
                )
                raise ValueError(msg)
        return value

    @property
    def effective_jitter(self) -> float:
        """Return the jitter in seconds (a tenth of the interval when unset)."""
        return self.interval / 10 if self.jitter is None else min(self.jitter, self.interval)

    @model_validator(mode="after")
    def _consistent(self) -> Journey:
        seen: set[str] = set()
        for step in [*self.steps, *self.cleanup]:
            if step.name in seen:
                msg = f"step name {step.name!r} is used twice; step names label metrics"
                raise ValueError(msg)
            seen.add(step.name)
        known = set(self.variables) | {f"secrets.{name}" for name in self.secrets}
        for step in self.steps:
            self._check_references(step, known)
            known |= set(step.extract)
        for step in self.cleanup:
            # Cleanup may use anything a step extracts; if that step never ran, the cleanup
            # step is skipped at run time with the reason.
            self._check_references(step, known)
        return self

    def _check_references(self, step: _StepBase, known: set[str]) -> None:
        for name in sorted(step.references()):
            if name not in known:
                hint = (
                    "declare it under secrets: with env: or file:"
                    if name.startswith("secrets.")
                    else "define it under variables:, or extract it in an earlier step"
                )
                msg = f"step {step.name!r} uses {{{{ {name} }}}}, which is not defined: {hint}"
                raise ValueError(msg)


class _CheckBase(_Strict):
    name: Name
    description: str = ""
    interval: PositiveDuration | None = None
    timeout: PositiveDuration | None = None
    jitter: Duration | None = None
    retries: Annotated[int, Field(ge=0, le=5)] | None = None
    retry_delay: Duration | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class CheckFile(_Strict):
    """One configuration file as written: defaults, journeys and checks."""

    defaults: Defaults = Field(default_factory=Defaults)
    journeys: list[dict[str, Any]] = Field(default_factory=list)
    checks: list[dict[str, Any]] = Field(default_factory=list)


class MonitorConfig(BaseModel):
    """Every journey (checks included) from every file, by name."""

    model_config = ConfigDict(frozen=True)

    journeys: dict[str, Journey] = Field(default_factory=dict)
    files: tuple[str, ...] = ()
