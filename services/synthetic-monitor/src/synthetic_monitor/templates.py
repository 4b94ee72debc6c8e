"""Run-time ``{{ name }}`` references: variables, extracted values and secrets.

``{{ token }}`` is a journey variable or a value extracted by an earlier step;
``{{ secrets.password }}`` is a secret. A string that is exactly one reference takes the
value's own type (so ``"{{ product_id }}"`` in a JSON body stays a number); references
inside longer text are replaced by their text. ``${ENV}`` is different: it is expanded once,
when the configuration loads (see ``config.yaml_loader``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from synthetic_monitor.errors import TemplateError

__all__ = ["render", "render_text", "template_names"]

_REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*\}\}")


def template_names(value: object) -> set[str]:
    """Return every name referenced in ``value`` (strings, lists and dicts, recursively)."""
    found: set[str] = set()
    if isinstance(value, str):
        found.update(match.group(1) for match in _REFERENCE.finditer(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= template_names(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= template_names(item)
    return found


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def render(value: object, context: Mapping[str, object]) -> object:
    """Return ``value`` with every reference replaced from ``context``; raise TemplateError."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value.strip())
        if whole is not None:
            return _lookup(whole.group(1), context)
        return _REFERENCE.sub(lambda match: _text(_lookup(match.group(1), context)), value)
    if isinstance(value, Mapping):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, context) for item in value]
    return value


def render_text(value: str, context: Mapping[str, object]) -> str:
    """Return ``value`` rendered as text (a lone reference to a number becomes its digits)."""
    return _text(render(value, context))


def _lookup(name: str, context: Mapping[str, object]) -> object:
    if name not in context:
        msg = f"{{{{ {name} }}}} has no value (an earlier step did not extract it)"
        raise TemplateError(msg)
    return context[name]
