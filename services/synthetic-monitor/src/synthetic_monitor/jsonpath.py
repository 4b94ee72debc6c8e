"""A small JSON path evaluator for ``[BODY]`` conditions and ``json:`` extractions.

Why not a JSONPath library: conditions use gatus' syntax (``[BODY].items[0].id``), which is
a plain chain of keys and indexes, and extractions take one value, never a set. A parser of
that chain is 60 lines, validates at load time with an error that points at the character,
and has no filters or wildcards whose semantics differ between JSONPath dialects. Accepted:
``$.a.b``, ``a.b``, ``.a[0].b``, ``["key with spaces"]``, ``[-1]`` (last element).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MISSING", "JsonPath", "parse_path"]


class _Missing:
    """The value of a path that does not exist in the document."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INDEX = re.compile(r"\[(-?\d+)\]")
_QUOTED = re.compile(r"""\[(?:"([^"]*)"|'([^']*)')\]""")


@dataclass(frozen=True)
class JsonPath:
    """A parsed path: a tuple of keys (str) and indexes (int)."""

    text: str
    parts: tuple[str | int, ...]

    def get(self, document: object) -> object:
        """Return the value at this path in ``document``, or ``MISSING``."""
        value = document
        for part in self.parts:
            if isinstance(part, int):
                if not isinstance(value, list) or not -len(value) <= part < len(value):
                    return MISSING
                value = value[part]
            elif isinstance(value, dict) and part in value:
                value = value[part]
            else:
                return MISSING
        return value


def parse_path(text: str) -> JsonPath:
    """Parse ``text`` (``$.a[0].b``, ``a.b``, ``.a``); raise ValueError naming the position."""
    rest = text.strip()
    if rest.startswith("$"):
        rest = rest[1:]
    parts: list[str | int] = []
    position = len(text) - len(rest)
    first = True
    while rest:
        if rest.startswith("."):
            rest, position = rest[1:], position + 1
            match = _NAME.match(rest)
            if match is None:
                msg = f"expected a key name after '.' at position {position} of {text!r}"
                raise ValueError(msg)
            parts.append(match.group(0))
        elif (match := _INDEX.match(rest)) is not None:
            parts.append(int(match.group(1)))
        elif (match := _QUOTED.match(rest)) is not None:
            parts.append(match.group(1) if match.group(1) is not None else match.group(2))
        elif first and (match := _NAME.match(rest)) is not None:
            parts.append(match.group(0))
        else:
            msg = (
                f"unexpected {rest[0]!r} at position {position} of {text!r}: write keys as "
                "'.name' or '[\"name\"]' and indexes as '[0]'"
            )
            raise ValueError(msg)
        rest, position = rest[match.end() :], position + match.end()
        first = False
    return JsonPath(text=text, parts=tuple(parts))
