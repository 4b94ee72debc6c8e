"""YAML loading that remembers where each value came from, and expands ``${ENV}``.

``load_yaml`` returns plain dicts and lists, subclassed (``YamlMap``, ``YamlList``) to carry
the file name and the line of every key and item, so a validation error deep in a journey
can be reported as ``journeys/shop.yml:42``. Duplicate keys are an error (PyYAML would keep
the last one silently).

``${NAME}`` in a string is replaced by the environment variable ``NAME`` when the file is
loaded; ``${NAME:-default}`` gives a default; ``$${`` writes a literal ``${``. An unset
variable without a default is an error that names the variable, file and line. Secrets are
NOT written this way (their value would then sit in the parsed config): see ``secrets:``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from synthetic_monitor.errors import ConfigError

__all__ = ["YamlList", "YamlMap", "expand_env", "load_yaml", "locate"]

_ENV = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class YamlMap(dict[str, Any]):
    """A mapping from YAML, with its file, its line, and the line of each key."""

    file: str = ""
    line: int = 0
    key_lines: dict[str, int]


class YamlList(list[Any]):
    """A sequence from YAML, with its file, its line, and the line of each item."""

    file: str = ""
    line: int = 0
    item_lines: list[int]


def expand_env(text: str, environ: Mapping[str, str], *, file: str, line: int) -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in ``text``; raise ConfigError if unset."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        msg = (
            f"environment variable {name} is not set; set it, or write ${{{name}:-default}} "
            "to give a default"
        )
        raise ConfigError(msg, file=file, line=line)

    return _ENV.sub(replace, text)


class _Loader(yaml.SafeLoader):
    """SafeLoader that builds YamlMap / YamlList and expands ``${ENV}`` in strings."""

    environ: Mapping[str, str] = os.environ


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[YamlMap]:
    loader.flatten_mapping(node)
    data = YamlMap()
    data.file, data.line, data.key_lines = str(loader.name), node.start_mark.line + 1, {}
    yield data
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise ConfigError(f"keys must be strings, got {key!r}", file=data.file, line=line)
        if key in data:
            msg = f"duplicate key {key!r} (first at line {data.key_lines[key]})"
            raise ConfigError(msg, file=data.file, line=line)
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = line


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Iterator[YamlList]:
    data = YamlList()
    data.file, data.line, data.item_lines = str(loader.name), node.start_mark.line + 1, []
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=True))
        data.item_lines.append(item.start_mark.line + 1)


def _construct_str(loader: _Loader, node: yaml.ScalarNode) -> str:
    value = str(loader.construct_scalar(node))
    return expand_env(value, loader.environ, file=str(loader.name), line=node.start_mark.line + 1)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def load_yaml(text: str, file: str, environ: Mapping[str, str] | None = None) -> object:
    """Parse one YAML document from ``text``; raise ConfigError with the file and line."""
    loader = _Loader(text)
    loader.name = file
    loader.environ = os.environ if environ is None else environ
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = error.problem or error.context or "invalid YAML"
        raise ConfigError(f"not valid YAML: {problem}", file=file, line=line) from error
    except yaml.YAMLError as error:
        raise ConfigError(f"not valid YAML: {error}", file=file) from error
    finally:
        loader.dispose()


def locate(root: object, loc: tuple[str | int, ...]) -> tuple[str | None, int | None, str]:
    """Follow a pydantic error location through YamlMap/YamlList; return file, line, field."""
    file = getattr(root, "file", None) or None
    line = getattr(root, "line", None) or None
    node: object = root
    names: list[str] = []
    for part in loc:
        if isinstance(node, YamlMap) and isinstance(part, str) and part in node:
            line = node.key_lines.get(part, line)
            names.append(("." if names else "") + part)
            node = node[part]
        elif isinstance(node, YamlList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            item = node[part]
            label = item.get("name") if isinstance(item, dict) else None
            names.append(f"[{part}]" + (f"({label})" if isinstance(label, str) else ""))
            node = item
        elif isinstance(part, str) and isinstance(node, dict):
            # A union tag or a missing key: name it, the line stays that of the parent.
            if part not in {"http", "tcp", "dns", "tls", "function-after", "function-before"}:
                names.append(("." if names else "") + part)
        else:
            names.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return file, line, "".join(names)
