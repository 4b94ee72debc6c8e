"""The repo's .env read as compose reads it, and compose's ``${VAR}`` references.

scripts/preflight.py has the full reader (it runs before `docker compose up` with only PyYAML,
so it cannot import this package); the checks need only the subset below: KEY=VALUE lines
(quotes, ``export``, trailing comments) and the plain and defaulted ``${VAR}`` forms.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from lookout_stack.validate.tree import BadFile

__all__ = ["ENV_FILE", "interpolate", "read_env_file", "variables_in"]

ENV_FILE = ".env"
# $$ (a literal $), ${VAR}, ${VAR<op>arg} with op one of :- - :? ? :+ +, and bare $VAR.
_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_LINE = re.compile(r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*)$")


def read_env_file(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines as compose does; raise BadFile naming a line that is neither."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise BadFile(path, number, "expected KEY=VALUE")
        value = match["value"].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].rstrip()
        values[match["key"]] = value
    return values


def variables_in(text: str) -> list[str]:
    """Name the variables that ``text`` references, in order."""
    return [m["braced"] or m["bare"] for m in _REFERENCE.finditer(text) if not m["escaped"]]


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute ``${VAR}`` and ``${VAR:-default}``; an unset variable becomes empty."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        value = env.get(match["braced"] or match["bare"])
        op, arg = match["op"], match["arg"] or ""
        if op in (":-", "-") and not (value if op == ":-" else value is not None):
            return arg
        if op in (":+", "+"):
            return arg if (value if op == ":+" else value is not None) else ""
        return value or ""

    return _REFERENCE.sub(substitute, text)
