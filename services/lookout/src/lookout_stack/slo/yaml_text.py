"""Write the generated YAML by hand, so it keeps comments and reads like the rule files
people wrote: plain scalars where YAML allows them, quotes where it does not, folded blocks
for long expressions and descriptions.
"""

from __future__ import annotations

import json
import re
import textwrap

import yaml

__all__ = ["MAX_LINE", "block", "comment", "key_value", "scalar"]

#: yamllint's line-length limit (.yamllint.yaml).
MAX_LINE = 120

# Kept on one line when text is wrapped: a short Go template action ({{ $labels.job }}) or
# `code`.
_ACTION = re.compile(r"\{\{[^}]{0,40}\}\}|`[^`]{0,40}`")
_NBSP = "\x00"


def scalar(value: str) -> str:
    """Return ``value`` as a YAML scalar: plain when that reads back the same, else quoted."""
    if value and value == value.strip() and "\n" not in value:
        try:
            if yaml.safe_load(f"k: {value}") == {"k": value}:
                return value
        except yaml.YAMLError:
            pass
    if "'" not in value and "\n" not in value:
        return f"'{value}'"
    return json.dumps(value)


def block(key: str, lines: list[str], indent: int, *, width: int = 0) -> list[str]:
    """Return ``key: >-`` and ``lines`` below it (rewrapped to ``width`` when it is not 0)."""
    pad = " " * indent
    body = _wrap(" ".join(lines), width - indent - 2) if width else lines
    return [f"{pad}{key}: >-", *(f"{pad}  {line}" for line in body)]


def key_value(key: str, value: str, indent: int, *, item: bool = False) -> list[str]:
    """Return ``key: value`` (``- key: value`` for a list item), folded when too long."""
    pad, dash = " " * indent, "- " if item else ""
    line = f"{pad}{dash}{key}: {scalar(value)}"
    if len(line) <= MAX_LINE:
        return [line]
    return [f"{pad}{dash}{key}: >-", f"{pad}{'  ' if item else ''}  {value}"]


def comment(text: str, indent: int, width: int) -> list[str]:
    """Return ``text`` as ``#`` comment lines wrapped to ``width``."""
    pad = " " * indent
    return [f"{pad}# {line}" for line in _wrap(text, width - indent - 2)]


def _wrap(text: str, width: int) -> list[str]:
    protected = _ACTION.sub(lambda found: found.group(0).replace(" ", _NBSP), text)
    lines = textwrap.wrap(protected, width, break_long_words=False, break_on_hyphens=False)
    return [line.replace(_NBSP, " ") for line in lines]
