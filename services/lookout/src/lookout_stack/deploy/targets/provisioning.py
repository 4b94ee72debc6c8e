"""Grafana provisioning's value interpolation, and the masks that keep secrets out of diffs.

Grafana expands every string of a provisioned data source (pkg/services/provisioning/values,
``interpolateValue``): the value is split at ``$$`` (a literal ``$``); in each part the
settings expanders ``$__env{VAR}`` and ``$__file{path}`` (file content, whitespace trimmed)
run first, then Go's ``os.ExpandEnv`` (``$VAR`` and ``${VAR}``); the parts are joined with
``$``. https://grafana.com/docs/grafana/v13.2/administration/provisioning/#use-environment-variables
This module does the same, with one deliberate difference: a variable or file that is not
there is an error naming it (Grafana would send an empty value), because a deploy that sends
an empty URL or password is worse than one that stops.

Values are never printed: ``display`` replaces every string that references ``$__env{}``,
``$__file{}`` or anything under ``secureJsonData`` with ``<secret from env VAR>``-style text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lookout_stack.deploy.model import DeployError

__all__ = ["describe_references", "expand", "expand_all", "is_secret_reference"]

# Grafana's setting.ExpandVar pattern: $__<expander>{<argument>}.
_EXPANDER = re.compile(r"\$__(\w+)\{(.*?)\}")
_SPECIAL = set("*#$@!?-0123456789")


def _is_name_char(char: str) -> bool:
    return char == "_" or (char.isascii() and char.isalnum())


def _shell_name(s: str) -> tuple[str, int]:
    """Port of Go's os.getShellName: the variable name after ``$`` and the characters used."""
    if s[0] == "{":
        if len(s) > 2 and s[1] in _SPECIAL and s[2] == "}":
            return s[1:2], 3
        for index in range(1, len(s)):
            if s[index] == "}":
                return ("", 2) if index == 1 else (s[1:index], index + 1)
        return "", 1
    if s[0] in _SPECIAL:
        return s[0:1], 1
    index = 0
    while index < len(s) and _is_name_char(s[index]):
        index += 1
    return s[:index], index


def _go_expand(s: str, mapping: Callable[[str], str]) -> str:
    """Port of Go's os.Expand."""
    out: list[str] = []
    start = 0
    index = 0
    while index < len(s):
        if s[index] == "$" and index + 1 < len(s):
            out.append(s[start:index])
            name, width = _shell_name(s[index + 1 :])
            if name == "" and width > 0:
                pass  # invalid syntax: Go drops the characters
            elif name == "":
                out.append(s[index])  # "$" not followed by a name stays
            else:
                out.append(mapping(name))
            index += width
            start = index + 1
        index += 1
    return "".join(out) + s[start:]


def expand(value: str, where: str) -> str:
    """Expand one provisioned string as Grafana does; ``where`` names the field in errors."""

    def env(name: str) -> str:
        found = os.environ.get(name)
        if found is None:
            msg = f"{where}: environment variable {name} is not set (export it, run again)"
            raise DeployError(msg)
        return found

    def expander(match: re.Match[str]) -> str:
        kind, argument = match.group(1), match.group(2)
        if kind == "env":
            return env(argument)
        if kind == "file":
            try:
                return Path(argument).read_text(encoding="utf-8").strip()
            except OSError as error:
                msg = f"{where}: cannot read secret file {argument}: {error.strerror}"
                raise DeployError(msg) from None
        msg = f"{where}: the ${{__{kind}}} expander is not supported here (use $__env or $__file)"
        raise DeployError(msg)

    parts = [_go_expand(_EXPANDER.sub(expander, part), env) for part in value.split("$$")]
    return "$".join(parts)


def expand_all(value: Any, where: str) -> Any:
    """Expand every string inside ``value`` (dicts and lists walked), naming each field."""
    if isinstance(value, str):
        return expand(value, where)
    if isinstance(value, dict):
        return {k: expand_all(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [expand_all(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def is_secret_reference(value: object) -> bool:
    """Say whether a provisioned string reads a secret ($__env{} or $__file{})."""
    return isinstance(value, str) and any(
        m.group(1) in {"env", "file"} for m in _EXPANDER.finditer(value)
    )


def describe_references(value: str) -> str:
    """Return safe text for a secret-bearing string: where it comes from, never the value."""
    sources = [
        f"{'env' if m.group(1) == 'env' else 'file'} {m.group(2)}"
        for m in _EXPANDER.finditer(value)
        if m.group(1) in {"env", "file"}
    ]
    if not sources:
        plain = sorted({n for n in re.findall(r"\$\{?(\w+)", value) if n})
        sources = [f"env {n}" for n in plain]
    return f"<secret from {', '.join(sources)}>" if sources else "<secret (literal value)>"
