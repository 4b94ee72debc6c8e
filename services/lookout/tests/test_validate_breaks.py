"""Each `lookout validate` check fails on a broken copy of the files it reads, naming the place.

One test per check kind: the files the check needs are copied into a fresh tree, one thing is
broken, and the check must fail with a finding that names the file (and the line or field
where the tool gives one). Checks that run a real program (promtool, amtool, Loki, Tempo,
hadolint) are in the `integration` tier.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from validate_support import copy_tree, edit, line_of, wheres

from lookout_stack.validate.checks import CHECKS
from stack_support import require_binary


@dataclass(frozen=True)
class Break:
    """How to break one check: what to copy, what to change, where the finding must point."""

    check: str
    copy: tuple[str, ...]
    breaks: Callable[[Path], None]
    #: The finding's ``where`` starts with this (a file, then its line when the tool gives one).
    where: Callable[[Path], str]
    #: A word the finding's message must contain.
    says: str
    binary: str | None = None


def _retype_panel(tree: Path) -> None:
    path = tree / "grafana/dashboards/lookout-alerts.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["panels"][0]["type"] = "graph"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")


COMPOSE = "docker-compose.yml"
COLLECTOR = "otel-collector/config.yaml"
DATASOURCES = "grafana/provisioning/datasources/datasources.yaml"
RELAY_RULES = "prometheus/rules/webhook-relay.yml"
RELAY_TESTS = "prometheus/tests/webhook-relay.test.yml"
LOKI_RULES = "loki/rules/fake/logs.yaml"
OVERRIDE = "deploy/scale-out/compose.yaml"
LOKI_VARIANT = "deploy/scale-out/loki.yaml"
SHOP_MANIFEST = "deploy/kubernetes/manifests/shop.yaml"
GRAFANA_VALUES = "deploy/kubernetes/helm/grafana/values.yaml"
#: What the kubernetes-manifests check cross-reads: compose, .env, Dockerfiles, settings readers.
KUBERNETES_SOURCES = (
    "deploy/kubernetes/manifests",
    COMPOSE,
    ".env",
    "demo-app/Dockerfile",
    "demo-app/src/lookout_demo/cli.py",
    "services/webhook-relay/Dockerfile",
    "services/webhook-relay/routing.compose.yml",
    "services/synthetic-monitor/Dockerfile",
    "services/synthetic-monitor/journeys/shop.yml",
)

BREAKS = [
    Break(
        "compose-schema",
        (COMPOSE,),
        lambda t: edit(
            t, COMPOSE, "    mem_limit: 384m\n", "    mem_limit: 384m\n    restrat: no\n"
        ),
        lambda t: f"{COMPOSE}:",
        "restrat",
    ),
    Break(
        "compose-rules",
        (COMPOSE,),
        lambda t: edit(t, COMPOSE, "    mem_limit: 384m\n", ""),
        lambda t: f"{COMPOSE}:",
        "memory limit",
    ),
    Break(
        "stack-wiring",
        (COMPOSE, "prometheus/prometheus.yml"),
        lambda t: edit(t, "prometheus/prometheus.yml", '"loki:3100"', '"loki:3101"'),
        lambda t: (
            f"prometheus/prometheus.yml:{line_of(t, 'prometheus/prometheus.yml', 'loki:3101')}"
        ),
        "loki:3101 but loki listens on",
    ),
    Break(
        "collector-keys",
        (COLLECTOR,),
        lambda t: edit(t, COLLECTOR, "    policies:", "    polices:"),
        lambda t: f"{COLLECTOR}:{line_of(t, COLLECTOR, 'polices:')}",
        "polices",
    ),
    Break(
        "grafana-keys",
        (DATASOURCES,),
        lambda t: edit(
            t, DATASOURCES, "exemplarTraceIdDestinations", "exemplarTraceIDDestinations"
        ),
        lambda t: f"{DATASOURCES}:{line_of(t, DATASOURCES, 'exemplarTraceIDDestinations')}",
        "exemplarTraceIDDestinations",
    ),
    Break(
        "dashboard-lint",
        ("grafana/dashboards", "grafana/provisioning/datasources"),
        _retype_panel,
        lambda t: "grafana/dashboards/lookout-alerts.json",
        "graph",
    ),
    Break(
        "alert-conventions",
        (RELAY_RULES, RELAY_TESTS, "docs/runbooks", "grafana/dashboards"),
        lambda t: edit(
            t, RELAY_RULES, "dashboard: /d/lookout-alerts", "dashboard: /d/lookout-alert"
        ),
        lambda t: f"{RELAY_RULES}:{line_of(t, RELAY_RULES, '- alert: RelayDeliveriesFailing')}",
        "lookout-alert'",
    ),
    Break(
        "alert-conventions",
        ("loki/rules", "docs/runbooks", "grafana/dashboards"),
        lambda t: edit(t, LOKI_RULES, "runbooks/LogLoginFailureBurst.md", "runbooks/LoginBurst.md"),
        lambda t: f"{LOKI_RULES}:{line_of(t, LOKI_RULES, '- alert: LogLoginFailureBurst')}",
        "runbook_url",
    ),
    Break(
        "dashboards-current",
        ("grafana/dashboards", "prometheus/rules", "loki/rules"),
        lambda t: edit(
            t, "grafana/dashboards/lookout-alerts.json", '"type": "timeseries"', '"type": "stat"'
        ),
        lambda t: "grafana/dashboards/lookout-alerts.json",
        "lookout dashboards build",
    ),
    Break(
        "slo-current",
        ("slo", "prometheus/rules/slo.yml", "prometheus/tests/slo.test.yml"),
        lambda t: edit(t, "prometheus/rules/slo.yml", "groups:", "groups:  "),
        lambda t: "prometheus/rules/slo.yml",
        "lookout slo build",
    ),
    Break(
        "yamllint",
        (".yamllint.yaml", ".gitignore", RELAY_RULES),
        lambda t: edit(t, RELAY_RULES, "groups:", "groups:   "),
        lambda t: f"{RELAY_RULES}:{line_of(t, RELAY_RULES, 'groups:')}:",
        "trailing-spaces",
    ),
    Break(
        "promtool-config",
        ("prometheus/prometheus.yml",),
        lambda t: edit(
            t, "prometheus/prometheus.yml", "scrape_interval: 15s", "scrape_interval: 15x"
        ),
        lambda t: "prometheus/prometheus.yml",
        "duration",
        "promtool",
    ),
    Break(
        "promtool-rules",
        (RELAY_RULES,),
        lambda t: edit(
            t, RELAY_RULES, 'relay_queue_depth{state="dead"}) > 0', "relay_queue_depth > 0"
        ),
        lambda t: f"{RELAY_RULES}:{line_of(t, RELAY_RULES, 'relay_queue_depth > 0')}",
        "parse",
        "promtool",
    ),
    Break(
        "promtool-tests",
        (RELAY_RULES, RELAY_TESTS),
        lambda t: edit(t, RELAY_TESTS, "severity: critical", "severity: info"),
        lambda t: RELAY_TESTS,
        "severity",
        "promtool",
    ),
    Break(
        "amtool-config",
        ("alertmanager/alertmanager.yml",),
        lambda t: edit(
            t, "alertmanager/alertmanager.yml", "  group_wait: 30s", "  group_wiat: 30s"
        ),
        lambda t: (
            "alertmanager/alertmanager.yml:"
            + str(line_of(t, "alertmanager/alertmanager.yml", "group_wiat"))
        ),
        "group_wiat",
        "amtool",
    ),
    Break(
        "amtool-routes",
        ("alertmanager/alertmanager.yml", "alertmanager/route-tests.yaml"),
        lambda t: edit(
            t, "alertmanager/route-tests.yaml", "receivers: [page, chat]", "receivers: [log]"
        ),
        lambda t: (
            "alertmanager/route-tests.yaml:"
            + str(line_of(t, "alertmanager/route-tests.yaml", "- name: critical pages"))
        ),
        "log",
        "amtool",
    ),
    Break(
        "alertmanager-coverage",
        ("alertmanager/alertmanager.yml", "alertmanager/route-tests.yaml"),
        lambda t: edit(t, "alertmanager/route-tests.yaml", "receivers: [log]", "receivers: [chat]"),
        lambda t: "alertmanager/route-tests.yaml",
        "the walk ends at",
    ),
    Break(
        "loki-config",
        ("loki/loki.yaml",),
        lambda t: edit(t, "loki/loki.yaml", "  path_prefix:", "  path_prefx:"),
        lambda t: f"loki/loki.yaml:{line_of(t, 'loki/loki.yaml', 'path_prefx')}",
        "path_prefx",
        "loki",
    ),
    Break(
        "tempo-config",
        ("tempo/tempo.yaml",),
        lambda t: edit(t, "tempo/tempo.yaml", "\nserver:", "\nserverx:"),
        lambda t: f"tempo/tempo.yaml:{line_of(t, 'tempo/tempo.yaml', 'serverx:')}",
        "serverx",
        "tempo",
    ),
    Break(
        "scale-out-compose",
        (
            "deploy/scale-out",
            COMPOSE,
            ".env",
            "alertmanager/alertmanager.yml",
            "prometheus/rules",
            "services/webhook-relay/routing.compose.yml",
        ),
        lambda t: edit(
            t, OVERRIDE, "- alertmanager-2-data:/alertmanager", "- am2-data:/alertmanager"
        ),
        lambda t: f"{OVERRIDE}:{line_of(t, OVERRIDE, 'am2-data:/alertmanager')}",
        "'am2-data' is not declared",
    ),
    Break(
        "scale-out-configs",
        (
            "deploy/scale-out",
            "prometheus/prometheus.yml",
            "loki/loki.yaml",
            "tempo/tempo.yaml",
            DATASOURCES,
        ),
        lambda t: edit(t, LOKI_VARIANT, "retention_period: 720h", "retention_period: 360h"),
        lambda t: f"{LOKI_VARIANT}:{line_of(t, LOKI_VARIANT, 'retention_period: 360h')}",
        "differs from loki/loki.yaml",
        "loki",
    ),
    Break(
        "kubernetes-manifests",
        KUBERNETES_SOURCES,
        lambda t: edit(t, SHOP_MANIFEST, "containerPort: 8000", 'containerPort: "8000"'),
        lambda t: f"{SHOP_MANIFEST}:{line_of(t, SHOP_MANIFEST, 'containerPort:')}",
        "is not of type 'integer'",
    ),
    Break(
        "helm-values",
        (
            "deploy/kubernetes/helmfile.yaml",
            "deploy/kubernetes/helm",
            ".env",
            "loki/loki.yaml",
            "tempo/tempo.yaml",
        ),
        lambda t: edit(t, GRAFANA_VALUES, "tag: 13.2.3", "tag: 13.2.4"),
        lambda t: f"{GRAFANA_VALUES}:{line_of(t, GRAFANA_VALUES, 'tag: 13.2.4')}",
        "GRAFANA_IMAGE",
        "loki",
    ),
    Break(
        "hadolint",
        (".hadolint.yaml", "demo-app/Dockerfile"),
        lambda t: (t / "demo-app/Dockerfile").write_text("FROM python\nRUN apt-get install curl\n"),
        lambda t: "demo-app/Dockerfile:1",
        "DL3006",
        "hadolint",
    ),
]


def _marks(case: Break) -> list[pytest.MarkDecorator]:
    return [pytest.mark.integration] if case.binary else []


def test_every_check_has_a_break() -> None:
    """Each registered check is proven to fail on a broken tree (a new check needs its case)."""
    assert {b.check for b in BREAKS} == set(CHECKS)


@pytest.mark.parametrize(
    "case", [pytest.param(b, marks=_marks(b), id=f"{b.check}:{b.copy[0]}") for b in BREAKS]
)
def test_check_fails_on_a_broken_copy_naming_the_place(case: Break, tmp_path: Path) -> None:
    """The check passes on the copied files, then fails once one thing is broken, naming where."""
    if case.binary:
        require_binary(case.binary)
    tree = copy_tree(tmp_path, *case.copy)
    check = CHECKS[case.check]
    before = check.run(tree)
    assert before.status == "passed", wheres(before)
    case.breaks(tree)
    after = check.run(tree)
    assert after.status == "failed", after
    expected = case.where(tree)
    matching = [f for f in after.findings if f.where.startswith(expected)]
    assert matching, f"no finding at {expected}: {wheres(after)}"
    assert any(case.says in f.message or case.says in f.where for f in matching), wheres(after)
