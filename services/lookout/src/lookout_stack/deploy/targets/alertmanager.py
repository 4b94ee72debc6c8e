"""Alertmanager's configuration: through Mimir's per-tenant API, or a file reloaded in place.

Mimir (one object, the tenant's configuration):
  GET  /api/v1/alerts  -> YAML {template_files: {name: text}, alertmanager_config: text};
                          404 when the tenant has none yet
  POST /api/v1/alerts  the same document (Content-Type: application/yaml) -> 201
  https://grafana.com/docs/mimir/latest/references/http-api/#set-alertmanager-configuration
  Template names must be plain file names (no path separators), as that page says.

Secrets: the rendered configuration holds references, ``$__env{VAR}`` / ``$__file{PATH}``
(the relay's bearer token with Mimir, which refuses ``credentials_file``). They are resolved
when the configuration is sent and compared, and every diff shows the reference again,
never the value.

File (the configuration file and ``templates/*.tmpl`` beside it): atomic writes (``files``),
then ``POST /-/reload`` and ``GET /api/v2/status`` to confirm the new configuration is the
one running. ``plan`` makes the same check when the files are already the rendered ones: an
apply killed between the write and the reload leaves Alertmanager on the old configuration,
so a reload change is planned (an Alertmanager that cannot be asked plans nothing more, as
before; templates are not compared, the status does not show them).

Alertmanager answers ``config.original`` re-marshalled (defaults filled in,
secrets shown as ``<secret>``), not byte for byte, so the check compares what identifies a
configuration: the root receiver, the receiver names and the number of inhibit rules.
https://prometheus.io/docs/alerting/latest/management_api/ (reload) and
https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml (``/status``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from lookout_stack.deploy.model import (
    AlertmanagerApi,
    AlertmanagerFile,
    Change,
    DeployError,
    SecretRef,
)
from lookout_stack.deploy.targets.files import OwnedDirectory
from lookout_stack.deploy.targets.httpapi import ApiClient
from lookout_stack.deploy.targets.reload import (
    RELOAD_TIMEOUT,
    api_base,
    post_reload,
    reload_or_restore,
)
from lookout_stack.deploy.targets.textdiff import dump_yaml, unified

__all__ = ["AlertmanagerApiTarget", "AlertmanagerFileTarget", "fingerprint", "resolve_references"]

_CONFIG_PATH = "/api/v1/alerts"


# A secret reference the render writes: $__env{VAR} or $__file{PATH} (Grafana's syntax).
_REFERENCE = re.compile(r"\$__(env|file)\{([^}]*)\}")


def resolve_references(text: str, where: str) -> tuple[str, dict[str, str]]:
    """Return ``text`` with each secret reference resolved, and {secret value: reference}."""
    secrets: dict[str, str] = {}

    def resolve(match: re.Match[str]) -> str:
        kind, argument = match.group(1), match.group(2)
        reference = SecretRef(env=argument) if kind == "env" else SecretRef(file=Path(argument))
        value = reference.resolve(where)
        secrets[value] = match.group(0)
        return value

    return _REFERENCE.sub(resolve, text), secrets


def _masked(text: str | None, secrets: dict[str, str]) -> str | None:
    """Put the references back in place of the secret values (for a diff)."""
    if text is None:
        return None
    for value, reference in sorted(secrets.items(), key=lambda item: -len(item[0])):
        text = text.replace(value, reference)
    return text


def fingerprint(config: Any) -> tuple[str, tuple[str, ...], int]:
    """Return what identifies a parsed configuration: root receiver, receivers, inhibit rules."""
    if not isinstance(config, dict):
        return ("", (), 0)
    route = config.get("route") or {}
    receivers = tuple(sorted(r.get("name", "") for r in config.get("receivers") or []))
    return (str(route.get("receiver", "")), receivers, len(config.get("inhibit_rules") or []))


class AlertmanagerApiTarget:
    """The rendered configuration and templates, stored for one tenant of Mimir's Alertmanager."""

    def __init__(self, section: AlertmanagerApi, config: str, templates: dict[str, str]) -> None:
        self.name = "alertmanager (mimir API)"
        for name in templates:
            if "/" in name or "\\" in name:
                raise DeployError(f"{self.name}: template name {name!r} must be a file name")
        self._section = section
        self._config = config
        self._templates = templates
        self._api = ApiClient(self.name, section, where="alertmanager")

    def _comparable(self, config: str, templates: dict[str, str]) -> str:
        try:
            parsed = yaml.safe_load(config)
        except yaml.YAMLError:
            parsed = config  # the live one is shown as stored when it does not parse
        return dump_yaml({"alertmanager_config": parsed, "template_files": templates})

    def plan(self) -> list[Change]:
        """Compare the tenant's stored configuration and templates with the rendered ones."""
        response = self._api.request("GET", _CONFIG_PATH, allow=(404,))
        before = None
        if response.status_code != 404:
            try:
                live = yaml.safe_load(response.text) or {}
            except yaml.YAMLError as error:
                msg = f"{self.name}: GET {_CONFIG_PATH} answered YAML that does not parse: {error}"
                raise DeployError(msg) from None
            before = self._comparable(
                str(live.get("alertmanager_config") or ""), dict(live.get("template_files") or {})
            )
        sent, secrets = resolve_references(self._config, f"{self.name}: alertmanager.yml")
        desired = self._comparable(sent, self._templates)
        if before == desired:
            return []
        tenant = self._section.tenant or "(no tenant header)"
        return [
            Change(
                target=self.name,
                kind="create" if before is None else "update",
                object=f"Alertmanager configuration of tenant {tenant}",
                diff=unified(
                    _masked(before, secrets), _masked(desired, secrets), "alertmanager.yml"
                ),
                apply=lambda: self._set(sent),
            )
        ]

    def _set(self, config: str) -> None:
        body = yaml.safe_dump(
            {"template_files": self._templates, "alertmanager_config": config},
            sort_keys=False,
            allow_unicode=True,
        )
        self._api.request("POST", _CONFIG_PATH, content=body, content_type="application/yaml")

    def finish(self) -> None:
        """Nothing to reload: Mimir's Alertmanager polls its stored configurations."""
        self._api.close()


class AlertmanagerFileTarget:
    """The rendered configuration file (and templates beside it), reloaded and confirmed."""

    def __init__(self, section: AlertmanagerFile, config: str, templates: dict[str, str]) -> None:
        self.name = f"alertmanager (file {section.path})"
        self._section = section
        self._config = config
        self._desired = {section.path.name: config}
        self._desired.update({f"templates/{n}": text for n, text in templates.items()})
        self._folder = OwnedDirectory(section.path.parent, self.name)

    def plan(self) -> list[Change]:
        """Return the writes (and template deletes), or a reload if only Alertmanager is behind."""
        changes = self._folder.plan(self._desired, self._describe)
        url = self._section.reload_url
        if changes or url is None:
            return changes
        try:
            running = self._running(api_base(str(url)))
        except DeployError:
            return []  # cannot be asked: the files alone are compared, as before
        expected = fingerprint(yaml.safe_load(self._config))
        if running == expected:
            return []
        return [
            Change(
                target=self.name,
                kind="update",
                object="reload alertmanager (running configuration differs from the file)",
                diff=unified(_described(running), _described(expected), "running-configuration"),
                apply=lambda: self._reload(str(url)),
            )
        ]

    def _reload(self, url: str) -> None:
        """Reload Alertmanager so it runs the file already in place, then confirm it does."""
        error = post_reload(url)
        if error is not None:
            msg = (
                f"{self.name}: {self._section.path} is the rendered configuration but"
                f" Alertmanager runs another, and reloading failed: {error}. Check the file"
                " with `amtool check-config` and that Alertmanager runs at reload_url."
            )
            raise DeployError(msg)
        self._confirm(api_base(url))

    def _describe(self, relative: str) -> str:
        if relative == self._section.path.name:
            return f"Alertmanager configuration file {self._section.path}"
        return f"Alertmanager template {relative} in {self._section.path.parent}"

    def finish(self) -> None:
        """Reload and confirm; a refused configuration is put back and raised."""
        url = self._section.reload_url
        if reload_or_restore(self._folder, url, self.name, "`amtool check-config`"):
            self._confirm(api_base(str(url)))

    def _running(self, base: str) -> tuple[str, tuple[str, ...], int]:
        """Return the fingerprint of the configuration Alertmanager runs (GET /api/v2/status)."""
        try:
            response = httpx.get(f"{base}/api/v2/status", timeout=RELOAD_TIMEOUT)
            response.raise_for_status()
            return fingerprint(yaml.safe_load(response.json()["config"]["original"]))
        except (httpx.HTTPError, ValueError, KeyError, TypeError, yaml.YAMLError) as error:
            raise DeployError(f"{self.name}: GET /api/v2/status failed: {error}") from None

    def _confirm(self, base: str) -> None:
        try:
            running = self._running(base)
        except DeployError as error:
            raise DeployError(f"{error} (after the reload)") from None
        expected = fingerprint(yaml.safe_load(self._config))
        if running != expected:
            msg = (
                f"{self.name}: the reload succeeded but /api/v2/status shows another configuration"
                f" (root receiver, receivers, inhibit rules: {running}, expected"
                f" {expected}): does Alertmanager read {self._section.path}?"
            )
            raise DeployError(msg)


def _described(print_: tuple[str, tuple[str, ...], int]) -> str:
    """Return a fingerprint as YAML lines for a diff."""
    root, receivers, inhibit = print_
    return dump_yaml(
        {"root_receiver": root, "receivers": list(receivers), "inhibit_rules": inhibit}
    )
