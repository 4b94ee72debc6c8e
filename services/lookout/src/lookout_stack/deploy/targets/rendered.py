"""Read a rendered folder (the repo's own layout) into the objects the targets deploy.

Layout, as in the repo root: ``grafana/dashboards/*.json``,
``grafana/provisioning/datasources/*.y(a)ml``, ``prometheus/rules/*.y(a)ml``,
``loki/rules/**/*.y(a)ml``, ``alertmanager/alertmanager.yml`` and
``alertmanager/templates/*.tmpl``. Every error names the file (and the group or field).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from lookout_stack.deploy.model import DeployError

__all__ = [
    "Dashboard",
    "RuleGroup",
    "alertmanager_config",
    "dashboards",
    "datasources",
    "rule_files",
    "rule_groups",
]

RulesKind = Literal["prometheus", "loki"]


def _yaml_files(folder: Path, *, recursive: bool) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    found = [*folder.glob(pattern + ".yml"), *folder.glob(pattern + ".yaml")]
    return sorted(p for p in found if p.is_file())


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise DeployError(f"cannot read {path}: {error.strerror}") from None


def _load_yaml(path: Path, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise DeployError(f"{where}: not valid YAML: {getattr(error, 'problem', error)}") from None


def rule_files(rendered: Path, kind: RulesKind) -> dict[str, str]:
    """Return the rendered rule files of ``kind`` as relative path -> text.

    Prometheus reads one flat folder; Loki's ruler reads one folder per tenant, so its
    files keep their sub-folder (``fake/logs.yaml``).
    """
    folder = rendered / kind / "rules"
    files = _yaml_files(folder, recursive=kind == "loki")
    return {path.relative_to(folder).as_posix(): _read(path) for path in files}


@dataclass(frozen=True)
class RuleGroup:
    """One rule group and the rendered file it came from."""

    file: str
    name: str
    body: dict[str, Any]


def rule_groups(files: dict[str, str], origin: Path) -> list[RuleGroup]:
    """Return every group of ``files`` (relative path -> text under ``origin``), in file order.

    A group name used twice (in one file or two) is an error: a ruler namespace holds each
    name once, so the second would silently replace the first.
    """
    groups: list[RuleGroup] = []
    seen: dict[str, str] = {}
    for relative, text in files.items():
        path = origin / relative
        data = _load_yaml(path, text)
        entries = data.get("groups") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise DeployError(f"{path}: expected a rule file with a `groups:` list")
        for index, group in enumerate(entries):
            name = group.get("name") if isinstance(group, dict) else None
            if not isinstance(name, str) or not name:
                raise DeployError(f"{path}: groups[{index}] has no `name`")
            if name in seen:
                msg = f"{path}: rule group {name!r} is also defined in {origin / seen[name]}"
                raise DeployError(msg)
            seen[name] = relative
            groups.append(RuleGroup(file=relative, name=name, body=group))
    return groups


@dataclass(frozen=True)
class Dashboard:
    """One dashboard JSON and the file it came from."""

    path: Path
    uid: str
    model: dict[str, Any]


def dashboards(rendered: Path) -> dict[str, Dashboard]:
    """Return the rendered dashboards by uid; a file without a uid, or a uid twice, is an error."""
    found: dict[str, Dashboard] = {}
    for path in sorted((rendered / "grafana" / "dashboards").glob("*.json")):
        try:
            model = json.loads(_read(path))
        except ValueError as error:
            raise DeployError(f"{path}: not valid JSON: {error}") from None
        uid = model.get("uid") if isinstance(model, dict) else None
        if not isinstance(uid, str) or not uid:
            raise DeployError(f"{path}: the dashboard has no `uid` (the deploy matches by uid)")
        if uid in found:
            raise DeployError(f"{path}: uid {uid!r} is also used by {found[uid].path}")
        found[uid] = Dashboard(path=path, uid=uid, model=model)
    return found


def datasources(rendered: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Return each data source entry of the provisioning files, with its file.

    Entries stay raw (``$VAR``, ``$__env{VAR}`` references unexpanded): the Grafana target
    expands them as provisioning would, and shows references, not values, in a diff.
    """
    entries: list[tuple[Path, dict[str, Any]]] = []
    uids: dict[str, Path] = {}
    folder = rendered / "grafana" / "provisioning" / "datasources"
    for path in _yaml_files(folder, recursive=False):
        data = _load_yaml(path, _read(path))
        listed = data.get("datasources", []) if isinstance(data, dict) else None
        if not isinstance(listed, list):
            raise DeployError(f"{path}: expected a provisioning file with a `datasources:` list")
        for index, entry in enumerate(listed):
            uid = entry.get("uid") if isinstance(entry, dict) else None
            if not isinstance(uid, str) or not uid or not entry.get("name"):
                msg = f"{path}: datasources[{index}] needs `name` and `uid` (matched by uid)"
                raise DeployError(msg)
            if uid in uids:
                raise DeployError(f"{path}: data source uid {uid!r} is also used in {uids[uid]}")
            uids[uid] = path
            entries.append((path, entry))
    return entries


def alertmanager_config(rendered: Path) -> tuple[str, dict[str, str]]:
    """Return the rendered Alertmanager configuration text and its templates (name -> text)."""
    folder = rendered / "alertmanager"
    config = folder / "alertmanager.yml"
    if not config.is_file():
        raise DeployError(f"{config}: missing (the render writes the Alertmanager config here)")
    text = _read(config)
    if not isinstance(_load_yaml(config, text), dict):
        raise DeployError(f"{config}: expected an Alertmanager configuration (a mapping)")
    templates = {p.name: _read(p) for p in sorted((folder / "templates").glob("*.tmpl"))}
    return text, templates
