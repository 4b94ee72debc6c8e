"""The routing file: targets, and rules that send a notification to some of them.

Example (see ``routing.example.yml``)::

    targets:
      ops-slack: {type: slack, webhook_url: "${SLACK_WEBHOOK_URL}"}
      pager: {type: pagerduty, routing_key: "${file:/run/secrets/pagerduty_key}"}
    rules:
      - name: critical
        match: {receiver: relay, severity: [critical], labels: {team: ops}}
        targets: [pager, ops-slack]
    fallback: [ops-slack]

A rule matches when every condition it states holds: ``receiver`` (one name or a list),
``severity`` (a list, compared with the group's severity label), ``labels`` (exact values)
and ``labels_regex`` (fully anchored regular expressions), all against the group's common
labels. Rules are tried in order; the first match wins unless it says ``continue: true``.
``fallback`` targets take what no rule matched.

String values may refer to ``${VAR}`` (an environment variable) or ``${file:/path}`` (a
secret file's content). Any error stops start-up with the file, the line and the field.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from jinja2 import TemplateSyntaxError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from webhook_relay.errors import ConfigError
from webhook_relay.payload import Notification
from webhook_relay.targets import TARGET_KINDS, Target, build_target
from webhook_relay.templating import Templates, compile_template

__all__ = ["Route", "Routing", "Rule", "load_routing", "parse_routing"]

_REFERENCE = re.compile(r"\$\{([^}]+)\}")
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Match(BaseModel):
    """The conditions of one rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    receiver: list[str] | None = None
    severity: list[str] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    labels_regex: dict[str, str] = Field(default_factory=dict)

    @field_validator("receiver", "severity", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        """Accept one string as a list of one."""
        return [value] if isinstance(value, str) else value

    @field_validator("labels_regex")
    @classmethod
    def _valid_regex(cls, value: dict[str, str]) -> dict[str, str]:
        """Compile each expression now, so a typo fails start-up."""
        for name, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as error:
                msg = f"label {name!r}: invalid regular expression {pattern!r} ({error})"
                raise ValueError(msg) from None
        return value


class TemplateOverrides(BaseModel):
    """Per-rule template overrides for its targets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str | None = None
    alert: str | None = None

    @field_validator("title", "alert")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        """Compile the template now, so a syntax error fails start-up."""
        if value is not None:
            try:
                compile_template(value)
            except TemplateSyntaxError as error:
                msg = f"template syntax error on its line {error.lineno}: {error.message}"
                raise ValueError(msg) from None
        return value


class Rule(BaseModel):
    """One routing rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=_NAME)]
    match: Match = Field(default_factory=Match)
    targets: Annotated[list[str], Field(min_length=1)]
    continue_: bool = Field(default=False, alias="continue")
    templates: TemplateOverrides = Field(default_factory=TemplateOverrides)

    def matches(self, notification: Notification) -> bool:
        """Return whether the notification meets every condition of the rule."""
        labels = {**notification.groupLabels, **notification.commonLabels}
        condition = self.match
        if condition.receiver is not None and notification.receiver not in condition.receiver:
            return False
        if condition.severity is not None and notification.severity() not in condition.severity:
            return False
        if any(labels.get(name) != value for name, value in condition.labels.items()):
            return False
        return all(
            re.fullmatch(pattern, labels.get(name, "")) is not None
            for name, pattern in condition.labels_regex.items()
        )


class RoutingFile(BaseModel):
    """The routing file's top level (targets validated by their own models)."""

    model_config = ConfigDict(extra="forbid")

    targets: dict[Annotated[str, Field(pattern=_NAME)], dict[str, Any]]
    rules: list[Rule] = Field(default_factory=list)
    fallback: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Route:
    """One delivery a notification needs: a target and the rule that chose it."""

    target: str
    rule: str


@dataclass
class Routing:
    """The loaded routing file: built targets and ordered rules."""

    targets: dict[str, Target]
    rules: list[Rule]
    fallback: list[str]
    source: str = "<routing>"
    templates: dict[tuple[str, str], Templates] = field(default_factory=dict)

    def routes(self, notification: Notification) -> list[Route]:
        """Return the deliveries for a notification: each target once, first rule wins."""
        chosen: dict[str, Route] = {}
        matched = False
        for rule in self.rules:
            if rule.matches(notification):
                matched = True
                for target in rule.targets:
                    chosen.setdefault(target, Route(target=target, rule=rule.name))
                if not rule.continue_:
                    break
        if not matched:
            for target in self.fallback:
                chosen.setdefault(target, Route(target=target, rule="fallback"))
        return list(chosen.values())

    def templates_for(self, target: str, rule: str) -> Templates:
        """Return the templates a rule sets for a target (defaults where it sets none)."""
        return self.templates.get((rule, target), Templates())


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping key and sequence item."""

    lines: dict[tuple[str | int, ...], int]


def _index_lines(node: yaml.Node, path: tuple[str | int, ...], lines: dict[Any, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _index_lines(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), lines)


def _line_of(lines: dict[Any, int], loc: tuple[Any, ...]) -> int:
    """Return the line of the deepest known prefix of ``loc``."""
    for end in range(len(loc), -1, -1):
        key = tuple("continue" if part == "continue_" else part for part in loc[:end])
        if key in lines:
            return lines[key]
    return 1


def _loc_text(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _expand(value: Any, path: tuple[Any, ...], fail: Any) -> Any:
    """Replace ${VAR} and ${file:/path} in every string of the document."""
    if isinstance(value, dict):
        return {key: _expand(item, (*path, key), fail) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, (*path, index), fail) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(found: re.Match[str]) -> str:
        reference = found.group(1)
        if reference.startswith("file:"):
            secret_path = Path(reference[len("file:") :])
            try:
                secret = secret_path.read_text(encoding="utf-8").strip()
            except OSError as error:
                fail(path, f"cannot read {secret_path} ({error.strerror})")
            if not secret:
                fail(path, f"{secret_path} is empty; it must hold the secret")
            return secret
        if reference not in os.environ:
            fail(path, f"environment variable {reference} is not set")
        return os.environ[reference]

    return _REFERENCE.sub(substitute, value)


def parse_routing(text: str, source: str = "<routing>") -> Routing:  # noqa: PLR0912 (one check per section)
    """Parse and validate a routing document; errors name the source, line and field."""
    try:
        root = yaml.compose(text, Loader=_LineLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        msg = f"{source}:{line}: not valid YAML ({getattr(error, 'problem', error)})"
        raise ConfigError(msg) from None
    lines: dict[Any, int] = {}
    if root is not None:
        _index_lines(root, (), lines)

    def fail(loc: tuple[Any, ...], message: str) -> Any:
        raise ConfigError(f"{source}:{_line_of(lines, loc)}: {_loc_text(loc)}: {message}")

    raw = yaml.load(text, Loader=yaml.SafeLoader)
    if not isinstance(raw, dict):
        fail((), "the routing file must be a mapping with 'targets' and 'rules'")
    data = _expand(raw, (), fail)
    try:
        document = RoutingFile.model_validate(data)
    except ValidationError as error:
        item = error.errors()[0]
        fail(tuple(item["loc"]), item["msg"])
        raise  # unreachable: fail() raises
    targets: dict[str, Target] = {}
    for name, spec in document.targets.items():
        kind = spec.get("type")
        if kind not in TARGET_KINDS:
            fail(
                ("targets", name, "type"),
                f"unknown type {kind!r}; use one of {sorted(TARGET_KINDS)}",
            )
        try:
            targets[name] = build_target(name, spec)
        except ValidationError as error:
            item = error.errors()[0]
            fail(("targets", name, *item["loc"]), item["msg"])
    templates: dict[tuple[str, str], Templates] = {}
    for index, rule in enumerate(document.rules):
        for position, target in enumerate(rule.targets):
            if target not in targets:
                fail(
                    ("rules", index, "targets", position),
                    f"unknown target {target!r}; defined: {sorted(targets)}",
                )
            overrides = rule.templates
            if overrides.title is not None or overrides.alert is not None:
                defaults = Templates()
                templates[(rule.name, target)] = Templates(
                    title=overrides.title or defaults.title,
                    alert=overrides.alert or defaults.alert,
                )
    names = [rule.name for rule in document.rules]
    for index, name in enumerate(names):
        if names.index(name) != index:
            fail(("rules", index, "name"), f"duplicate rule name {name!r}")
    for position, target in enumerate(document.fallback):
        if target not in targets:
            fail(("fallback", position), f"unknown target {target!r}; defined: {sorted(targets)}")
    return Routing(
        targets=targets,
        rules=list(document.rules),
        fallback=list(document.fallback),
        source=source,
        templates=templates,
    )


def load_routing(path: Path) -> Routing:
    """Read and validate the routing file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        msg = f"{path}: cannot read the routing file ({error.strerror}); set RELAY_ROUTING_FILE"
        raise ConfigError(msg) from None
    return parse_routing(text, source=str(path))
