"""Key schemas for configs whose programs cannot run here (the collector, Grafana provisioning).

A key schema (tests/schemas/*.yaml) lists, for one pinned version, every key a config may use,
each component with the link to its reference docs for that version. ``check`` walks a config
against it and returns one readable error per unknown, removed or mistyped key, naming the path
and the doc page to read. The node grammar is described at the top of each schema file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stack_support.compose import container_ports

__all__ = [
    "COMPOSE_SERVICE_PORTS",
    "ENV_REFERENCE",
    "KeySchema",
    "host_port",
    "load_yaml",
    "resolve_env_defaults",
]

ROOT = Path(__file__).resolve().parent.parent


# The compose services and the container ports each listens on (published `ports:` targets
# and `expose:` entries), read from docker-compose.yml.
def _compose_service_ports() -> dict[str, set[int]]:
    compose = load_yaml(ROOT / "docker-compose.yml")
    return {name: container_ports(spec) for name, spec in compose["services"].items()}


# The collector's env provider grammar: ${env:NAME} or ${env:NAME:-default}
# (confmap/provider/envprovider: names match ^[a-zA-Z_][a-zA-Z0-9_]*$, default after ":-").
ENV_REFERENCE = re.compile(r"\$\{env:(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
DURATION = re.compile(r"^-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
SCALARS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def load_yaml(path: Path) -> Any:
    """Parse one YAML file (a single document)."""
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def resolve_env_defaults(value: Any) -> Any:
    """Replace each ${env:NAME:-default} by its default, typed as the collector types it.

    A value that is exactly one reference becomes the default parsed as YAML (so "100" is an
    int), as confmap does; a reference inside a longer string is substituted as text.
    """
    if isinstance(value, dict):
        return {key: resolve_env_defaults(item) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_env_defaults(item) for item in value]
    if isinstance(value, str):
        whole = ENV_REFERENCE.fullmatch(value)
        if whole:
            return yaml.safe_load(whole.group("default") or "")
        return ENV_REFERENCE.sub(lambda m: m.group("default") or "", value)
    return value


def host_port(endpoint: str) -> tuple[str, int]:
    """Split ``host:port`` or ``scheme://host:port/path`` into host and port."""
    without_scheme = endpoint.split("://", 1)[-1]
    authority = without_scheme.split("/", 1)[0]
    host, _, port = authority.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"endpoint {endpoint!r} is not host:port (or scheme://host:port/...)")
    return host, int(port)


@dataclass(frozen=True)
class KeySchema:
    """A key schema file: named definitions, component tables and the root node."""

    path: Path
    data: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path) -> KeySchema:
        """Read a key schema file."""
        data = load_yaml(path)
        if not isinstance(data, dict) or "root" not in data:
            raise ValueError(f"{path}: a key schema needs a top-level `root` node")
        return cls(path=path, data=data)

    @property
    def version(self) -> str:
        """Return the pinned version the schema was written from."""
        return str(self.data["version"])

    def doc_url(self, doc: str) -> str:
        """Expand a `prefix:path` doc reference with the schema's `links` table."""
        prefix, _, rest = doc.partition(":")
        links = self.data.get("links") or {}
        return f"{links[prefix]}{rest}" if prefix in links else doc

    def components(self) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
        """Yield (section, component type, node) for every component table entry."""
        for section, table in (self.data.get("components") or {}).items():
            for name, node in table.items():
                yield section, name, node

    def check(self, config: Any, source: str) -> list[str]:
        """Return one error per key of ``config`` that the schema does not allow."""
        errors: list[str] = []
        self._walk(config, self.data["root"], source, "", "", errors)
        return errors

    # --- the walk -------------------------------------------------------------------------------
    def _resolve(self, node: Any) -> Any:
        """Follow `$ref` and merge `extends` fields from the named definitions."""
        defs = self.data.get("defs") or {}
        while isinstance(node, dict) and "$ref" in node:
            extra = {k: v for k, v in node.items() if k != "$ref"}
            node = {**defs[node["$ref"]], **extra}
        if isinstance(node, dict) and "extends" in node:
            fields: dict[str, Any] = {}
            for name in node["extends"]:
                fields.update(self._resolve(defs[name]).get("fields", {}))
            fields.update(node.get("fields", {}))
            node = {**{k: v for k, v in node.items() if k != "extends"}, "fields": fields}
        return node

    def _walk(
        self, value: Any, node: Any, source: str, path: str, doc: str, errors: list[str]
    ) -> None:
        node = self._resolve(node)
        if isinstance(node, str):
            node = {"type": node}
        doc = self.doc_url(node["doc"]) if "doc" in node else doc
        where = f"{source}: {path or '(top level)'}"
        if "deprecated" in node:
            errors.append(f"{where}: {node['deprecated']} (see {doc})")
            return
        if "switch" in node:
            self._walk_switch(value, node, source, path, doc, errors)
        elif "components" in node:
            self._walk_components(value, node["components"], source, path, errors)
        elif "fields" in node:
            self._walk_fields(value, node, source, path, doc, errors)
        elif "items" in node:
            if not isinstance(value, list):
                errors.append(f"{where}: expected a list, got {type(value).__name__} (see {doc})")
                return
            for index, item in enumerate(value):
                self._walk(item, node["items"], source, f"{path}[{index}]", doc, errors)
        elif "values" in node:
            self._walk_values(value, node, source, path, doc, errors)
        else:
            self._check_scalar(value, node, where, doc, errors)

    def _walk_fields(
        self,
        value: Any,
        node: Mapping[str, Any],
        source: str,
        path: str,
        doc: str,
        errors: list[str],
    ) -> None:
        if value is None:  # `key:` with nothing under it is an empty mapping to the collector
            return
        if not isinstance(value, dict):
            errors.append(f"{source}: {path}: expected a mapping (see {doc})")
            return
        fields = node["fields"]
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in fields:
                allowed = ", ".join(sorted(fields))
                errors.append(
                    f"{source}: {child}: unknown key {key!r} for this version "
                    f"(allowed here: {allowed}; see {doc})"
                )
                continue
            self._walk(item, fields[key], source, child, doc, errors)
        for key in node.get("required", []):
            if key not in value:
                errors.append(f"{source}: {path}: required key {key!r} is missing (see {doc})")

    def _walk_values(
        self,
        value: Any,
        node: Mapping[str, Any],
        source: str,
        path: str,
        doc: str,
        errors: list[str],
    ) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            errors.append(f"{source}: {path}: expected a mapping (see {doc})")
            return
        pattern = node.get("key_pattern")
        for key, item in value.items():
            child = f"{path}.{key}"
            if pattern and not re.fullmatch(pattern, str(key)):
                errors.append(f"{source}: {child}: key does not match {pattern} (see {doc})")
                continue
            self._walk(item, node["values"], source, child, doc, errors)

    def _walk_components(
        self, value: Any, section: str, source: str, path: str, errors: list[str]
    ) -> None:
        table = (self.data.get("components") or {}).get(section, {})
        if value is None:
            return
        for component_id, body in value.items():
            kind = str(component_id).split("/", 1)[0]
            child = f"{path}.{component_id}"
            if kind not in table:
                known = ", ".join(sorted(table))
                errors.append(
                    f"{source}: {child}: no {section[:-1]} type {kind!r} in the key schema for "
                    f"this version (known: {known}); check its README at the pinned tag, then add "
                    f"it to {self.path.name}"
                )
                continue
            self._walk(body, table[kind], source, child, "", errors)

    def _walk_switch(
        self,
        value: Any,
        node: Mapping[str, Any],
        source: str,
        path: str,
        doc: str,
        errors: list[str],
    ) -> None:
        key = node["switch"]
        selector = value.get(key) if isinstance(value, dict) else None
        cases = node["cases"]
        if selector not in cases:
            known = ", ".join(sorted(cases))
            errors.append(
                f"{source}: {path}.{key}: {selector!r} is not covered by the key schema "
                f"(known: {known}; see {doc})"
            )
            return
        self._walk(value, cases[selector], source, path, doc, errors)

    @staticmethod
    def _check_scalar(
        value: Any, node: Mapping[str, Any], where: str, doc: str, errors: list[str]
    ) -> None:
        kind = node.get("type", "any")
        if kind == "any":
            return
        if kind == "duration":
            if not (isinstance(value, str) and DURATION.match(value)):
                errors.append(f"{where}: {value!r} is not a duration such as 10s (see {doc})")
            return
        if kind == "list":
            if not isinstance(value, list):
                errors.append(f"{where}: expected a list (see {doc})")
            return
        if kind == "map":
            if not isinstance(value, dict):
                errors.append(f"{where}: expected a mapping (see {doc})")
            return
        expected = SCALARS[kind]
        # bool is an int in Python: a boolean is never accepted where a number is expected.
        if isinstance(value, bool) and bool not in expected:
            errors.append(f"{where}: expected {kind}, got a boolean (see {doc})")
            return
        if not isinstance(value, expected):
            errors.append(f"{where}: expected {kind}, got {value!r} (see {doc})")
            return
        if "enum" in node and value not in node["enum"]:
            errors.append(f"{where}: {value!r} is not one of {node['enum']} (see {doc})")


COMPOSE_SERVICE_PORTS: dict[str, set[int]] = _compose_service_ports()
