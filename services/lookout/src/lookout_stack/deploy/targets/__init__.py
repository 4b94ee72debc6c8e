"""Deploy targets: where a rendered environment goes, one module per kind of target.

``build_targets(environment, rendered)`` returns the targets of an environment in the order
they are applied, which is the safe order:

1. Alertmanager configuration (``alertmanager``): receivers and routes exist before any rule
   that could fire into them changes.
2. Prometheus rules (``ruler`` for Mimir's API, ``rulefiles`` for a folder + ``/-/reload``).
3. Loki rules (the same two kinds, Loki's ruler).
4. Grafana (``grafana``): data sources, then its folder, then dashboards, then deletes of
   dashboards the render dropped; dashboards and alert views come last, once what they show
   is in place.

Every target reads the live state in ``plan()`` and returns the changes (empty: in sync);
``Change.apply`` performs one change; ``finish()`` runs after a target's changes (reloads a
file reader and checks that it took the files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from lookout_stack.deploy.model import (
    AlertmanagerApi,
    AlertmanagerFile,
    DeployError,
    GrafanaSection,
    RuleFiles,
    RulerApi,
    Target,
)
from lookout_stack.deploy.targets import rendered as rendered_folder
from lookout_stack.deploy.targets.alertmanager import AlertmanagerApiTarget, AlertmanagerFileTarget
from lookout_stack.deploy.targets.grafana import GrafanaTarget
from lookout_stack.deploy.targets.rulefiles import RuleFilesTarget
from lookout_stack.deploy.targets.ruler import RulerApiTarget

__all__ = ["EnvironmentTargets", "build_targets"]


class EnvironmentTargets(Protocol):
    """The target sections of an environment (each absent when the environment has none)."""

    @property
    def grafana(self) -> GrafanaSection | None: ...

    @property
    def prometheus_rules(self) -> RulerApi | RuleFiles | None: ...

    @property
    def loki_rules(self) -> RulerApi | RuleFiles | None: ...

    @property
    def alertmanager(self) -> AlertmanagerApi | AlertmanagerFile | None: ...


def _rules(
    section: RulerApi | RuleFiles, rendered: Path, kind: rendered_folder.RulesKind
) -> Target:
    files = rendered_folder.rule_files(rendered, kind)
    origin = rendered / kind / "rules"
    if isinstance(section, RuleFiles):
        return RuleFilesTarget(section, files, origin, reader=kind)
    expected = "mimir" if kind == "prometheus" else "loki"
    if section.kind != expected:
        msg = f"{kind}_rules: a ruler API of kind {expected!r} is expected, not {section.kind!r}"
        raise DeployError(msg)
    return RulerApiTarget(section, files, origin)


def _distinct_folders(environment: EnvironmentTargets) -> None:
    """Refuse two file targets in one folder: they would share one ownership manifest.

    Each target deletes the files its folder's manifest lists and the render no longer has,
    so a shared folder would have the rule files' plan delete alertmanager.yml and back.
    """
    folders: dict[Path, str] = {}
    sections = (
        ("alertmanager.path", environment.alertmanager),
        ("prometheus_rules.directory", environment.prometheus_rules),
        ("loki_rules.directory", environment.loki_rules),
    )
    for field, section in sections:
        if isinstance(section, AlertmanagerFile):
            folder = section.path.parent
        elif isinstance(section, RuleFiles):
            folder = section.directory
        else:
            continue
        key = folder.resolve()
        if key in folders:
            msg = (
                f"{folders[key]} and {field} share the folder {folder}: each file target needs"
                " a folder of its own (the deploy owns, and deletes, files per folder)"
            )
            raise DeployError(msg)
        folders[key] = field


def build_targets(environment: EnvironmentTargets, rendered: Path) -> list[Target]:
    """Return the environment's targets in apply order (see the module docstring).

    Reading the rendered folder happens here, so a bad file fails before anything is
    planned, with a DeployError naming the file.
    """
    _distinct_folders(environment)
    targets: list[Target] = []
    if environment.alertmanager is not None:
        config, templates = rendered_folder.alertmanager_config(rendered)
        section = environment.alertmanager
        if isinstance(section, AlertmanagerFile):
            targets.append(AlertmanagerFileTarget(section, config, templates))
        else:
            targets.append(AlertmanagerApiTarget(section, config, templates))
    if environment.prometheus_rules is not None:
        targets.append(_rules(environment.prometheus_rules, rendered, "prometheus"))
    if environment.loki_rules is not None:
        targets.append(_rules(environment.loki_rules, rendered, "loki"))
    if environment.grafana is not None:
        targets.append(GrafanaTarget(environment.grafana, rendered))
    return targets
