"""Rule groups through a ruler's configuration API: Mimir's (PromQL) or Loki's (LogQL).

One rule group is one object. The deploy owns one namespace: groups there that the render no
longer has are deleted; other namespaces are never read or touched.

Endpoints (the same shape in both; YAML bodies; ``X-Scope-OrgID`` names the tenant):
  GET    <prefix>/{namespace}              -> {namespace: [group, ...]} (200 with ``{}`` or
                                              404 "no rule groups found" when empty)
  POST   <prefix>/{namespace}              one group, Content-Type: application/yaml -> 202
  DELETE <prefix>/{namespace}/{groupName}  -> 202
Mimir: prefix ``/prometheus/config/v1/rules`` (the default ``-http.prometheus-http-prefix``),
https://grafana.com/docs/mimir/latest/references/http-api/#ruler (checked against Mimir's
pkg/ruler/api.go: ListRules answers 200 ``{}`` for an empty namespace).
Loki 3.7: prefix ``/loki/api/v1/rules``,
https://grafana.com/docs/loki/v3.7.x/reference/loki-http-api/#ruler (needs
``ruler.enable_api: true`` and a ruler storage that can be written, not ``local``).
Path segments are percent-encoded, as both references ask.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from lookout_stack.deploy.model import Change, DeployError, RulerApi
from lookout_stack.deploy.targets.httpapi import ApiClient
from lookout_stack.deploy.targets.rendered import RuleGroup, rule_groups
from lookout_stack.deploy.targets.textdiff import dump_yaml, normalise_rule_group, unified

__all__ = ["PREFIXES", "RulerApiTarget"]

#: The configuration API's path prefix per ruler.
PREFIXES = {"mimir": "/prometheus/config/v1/rules", "loki": "/loki/api/v1/rules"}


class RulerApiTarget:
    """Rule groups of the rendered rule files, in one namespace of a Mimir or Loki ruler."""

    def __init__(self, section: RulerApi, files: dict[str, str], origin: Path) -> None:
        language = "prometheus" if section.kind == "mimir" else "loki"
        self.name = f"{language} rules ({section.kind} ruler API)"
        self._section = section
        self._groups = rule_groups(files, origin)
        self._api = ApiClient(self.name, section, where=f"{language}_rules")
        self._namespace_path = f"{PREFIXES[section.kind]}/{quote(section.namespace, safe='')}"

    def _describe(self, group: str, file: str | None) -> str:
        source = f" ({file})" if file else ""
        return f"rule group {group}{source} in namespace {self._section.namespace}"

    def live_groups(self) -> dict[str, dict[str, Any]]:
        """Return the namespace's groups by name, as the ruler holds them."""
        response = self._api.request("GET", self._namespace_path, allow=(404,))
        if response.status_code == 404:
            return {}
        try:
            data = yaml.safe_load(response.text) or {}
        except yaml.YAMLError as error:
            msg = f"{self.name}: GET {self._namespace_path} answered YAML that does not parse"
            raise DeployError(f"{msg}: {error}") from None
        if not isinstance(data, dict):
            msg = f"{self.name}: GET {self._namespace_path}: expected {{namespace: [groups]}}"
            raise DeployError(msg)
        listed = data.get(self._section.namespace) or []
        return {g["name"]: g for g in listed if isinstance(g, dict) and "name" in g}

    def plan(self) -> list[Change]:
        """Compare each rendered group with the ruler's; delete groups the render dropped."""
        live = self.live_groups()
        changes: list[Change] = []
        for group in self._groups:
            desired = dump_yaml(normalise_rule_group(group.body))
            current = live.get(group.name)
            before = None if current is None else dump_yaml(normalise_rule_group(current))
            if before == desired:
                continue
            changes.append(
                Change(
                    target=self.name,
                    kind="create" if current is None else "update",
                    object=self._describe(group.name, group.file),
                    diff=unified(before, desired, f"{self._section.namespace}/{group.name}"),
                    apply=partial(self._set, group),
                )
            )
        rendered = {g.name for g in self._groups}
        for name in sorted(set(live) - rendered):
            changes.append(
                Change(
                    target=self.name,
                    kind="delete",
                    object=self._describe(name, None),
                    diff=unified(dump_yaml(normalise_rule_group(live[name])), None, name),
                    apply=partial(self._delete, name),
                )
            )
        return changes

    def _set(self, group: RuleGroup) -> None:
        body = yaml.safe_dump(group.body, sort_keys=False, allow_unicode=True)
        self._api.request(
            "POST", self._namespace_path, content=body, content_type="application/yaml"
        )

    def _delete(self, name: str) -> None:
        self._api.request("DELETE", f"{self._namespace_path}/{quote(name, safe='')}")

    def finish(self) -> None:
        """Nothing to reload: the ruler picks up stored groups itself."""
        self._api.close()
