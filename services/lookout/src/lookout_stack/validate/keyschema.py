"""Key schemas for configs whose programs cannot run here (the collector, Grafana provisioning).

A key schema (``schemas/*.yaml`` beside this module) lists, for one pinned version, every key a
config may use, each component with the link to its reference docs for that version.
:meth:`KeySchema.findings` walks a config against it and returns one finding per unknown,
removed or mistyped key, naming the path and the doc page to read. The node grammar is
described at the top of each schema file. Hand-written because no JSON Schema of these configs
exists for the pinned versions; the schema files are written from their docs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lookout_stack.validate.model import Finding

__all__ = [
    "ENV_REFERENCE",
    "SCHEMAS_DIR",
    "KeySchema",
    "host_port",
    "load_yaml",
    "resolve_env_defaults",
]

#: The key schemas of the pinned versions, shipped with the package.
SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"


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
        return [f"{found.where}: {found.message}" for found in self.findings(config, source)]

    def findings(self, config: Any, source: str) -> list[Finding]:
        """Return one finding per key of ``config`` that the schema does not allow."""
        errors: list[Finding] = []
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

    def _walk(  # noqa: PLR0917 (the walk threads its state positionally)
        self, value: Any, node: Any, source: str, path: str, doc: str, errors: list[Finding]
    ) -> None:
        node = self._resolve(node)
        if isinstance(node, str):
            node = {"type": node}
        doc = self.doc_url(node["doc"]) if "doc" in node else doc
        where = f"{source}: {path or '(top level)'}"
        if "deprecated" in node:
            errors.append(Finding(where, f"{node['deprecated']} (see {doc})"))
            return
        if "switch" in node:
            self._walk_switch(value, node, source, path, doc, errors)
        elif "components" in node:
            self._walk_components(value, node["components"], source, path, errors)
        elif "fields" in node:
            self._walk_fields(value, node, source, path, doc, errors)
        elif "items" in node:
            if not isinstance(value, list):
                errors.append(
                    Finding(where, f"expected a list, got {type(value).__name__} (see {doc})")
                )
                return
            for index, item in enumerate(value):
                self._walk(item, node["items"], source, f"{path}[{index}]", doc, errors)
        elif "values" in node:
            self._walk_values(value, node, source, path, doc, errors)
        else:
            self._check_scalar(value, node, where, doc, errors)

    def _walk_fields(  # noqa: PLR0917 (the walk threads its state positionally)
        self,
        value: Any,
        node: Mapping[str, Any],
        source: str,
        path: str,
        doc: str,
        errors: list[Finding],
    ) -> None:
        if value is None:  # `key:` with nothing under it is an empty mapping to the collector
            return
        if not isinstance(value, dict):
            errors.append(Finding(f"{source}: {path}", f"expected a mapping (see {doc})"))
            return
        fields = node["fields"]
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in fields:
                allowed = ", ".join(sorted(fields))
                errors.append(
                    Finding(
                        f"{source}: {child}",
                        f"unknown key {key!r} for this version (allowed here: {allowed}; "
                        f"see {doc})",
                    )
                )
                continue
            self._walk(item, fields[key], source, child, doc, errors)
        for key in node.get("required", []):
            if key not in value:
                errors.append(
                    Finding(f"{source}: {path}", f"required key {key!r} is missing (see {doc})")
                )

    def _walk_values(  # noqa: PLR0917 (the walk threads its state positionally)
        self,
        value: Any,
        node: Mapping[str, Any],
        source: str,
        path: str,
        doc: str,
        errors: list[Finding],
    ) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            errors.append(Finding(f"{source}: {path}", f"expected a mapping (see {doc})"))
            return
        pattern = node.get("key_pattern")
        for key, item in value.items():
            child = f"{path}.{key}"
            if pattern and not re.fullmatch(pattern, str(key)):
                errors.append(
                    Finding(f"{source}: {child}", f"key does not match {pattern} (see {doc})")
                )
                continue
            self._walk(item, node["values"], source, child, doc, errors)

    def _walk_components(
        self, value: Any, section: str, source: str, path: str, errors: list[Finding]
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
                    Finding(
                        f"{source}: {child}",
                        f"no {section[:-1]} type {kind!r} in the key schema for this version "
                        f"(known: {known}); check its README at the pinned tag, then add it to "
                        f"{self.path.name}",
                    )
                )
                continue
            self._walk(body, table[kind], source, child, "", errors)

    def _walk_switch(  # noqa: PLR0917 (the walk threads its state positionally)
        self,
        value: Any,
        node: Mapping[str, Any],
        source: str,
        path: str,
        doc: str,
        errors: list[Finding],
    ) -> None:
        key = node["switch"]
        selector = value.get(key) if isinstance(value, dict) else None
        cases = node["cases"]
        if selector not in cases:
            known = ", ".join(sorted(cases))
            errors.append(
                Finding(
                    f"{source}: {path}.{key}",
                    f"{selector!r} is not covered by the key schema (known: {known}; see {doc})",
                )
            )
            return
        self._walk(value, cases[selector], source, path, doc, errors)

    @staticmethod
    def _check_scalar(
        value: Any, node: Mapping[str, Any], where: str, doc: str, errors: list[Finding]
    ) -> None:
        kind = node.get("type", "any")
        if kind == "any":
            return
        if kind == "duration":
            if not (isinstance(value, str) and DURATION.match(value)):
                errors.append(
                    Finding(where, f"{value!r} is not a duration such as 10s (see {doc})")
                )
            return
        if kind == "list":
            if not isinstance(value, list):
                errors.append(Finding(where, f"expected a list (see {doc})"))
            return
        if kind == "map":
            if not isinstance(value, dict):
                errors.append(Finding(where, f"expected a mapping (see {doc})"))
            return
        expected = SCALARS[kind]
        # bool is an int in Python: a boolean is never accepted where a number is expected.
        if isinstance(value, bool) and bool not in expected:
            errors.append(Finding(where, f"expected {kind}, got a boolean (see {doc})"))
            return
        if not isinstance(value, expected):
            errors.append(Finding(where, f"expected {kind}, got {value!r} (see {doc})"))
            return
        if "enum" in node and value not in node["enum"]:
            errors.append(Finding(where, f"{value!r} is not one of {node['enum']} (see {doc})"))
