"""Every check `lookout validate` runs, in the order it runs them: one module per check.

To add a check: write a module here whose object has ``name`` and ``run(root) -> CheckResult``
(the :class:`~lookout_stack.validate.model.Check` protocol), then add one line to ``CHECKS``.
The fast checks that need only Python come first, the tools after them.
"""

from __future__ import annotations

from lookout_stack.validate.checks import (
    alert_conventions,
    alertmanager_coverage,
    amtool_config,
    amtool_routes,
    backend_configs,
    compose_rules,
    compose_schema,
    dashboard_lint,
    generated,
    hadolint,
    key_schemas,
    kubernetes,
    promtool_config,
    promtool_rules,
    promtool_tests,
    scale_out,
    stack_wiring,
    yamllint,
)
from lookout_stack.validate.model import Check

__all__ = ["CHECKS"]

CHECKS: dict[str, Check] = {
    check.name: check
    for check in (
        compose_schema.CHECK,
        compose_rules.CHECK,
        stack_wiring.CHECK,
        key_schemas.COLLECTOR,
        key_schemas.GRAFANA,
        dashboard_lint.CHECK,
        alert_conventions.CHECK,
        generated.DASHBOARDS,
        generated.SLO,
        yamllint.CHECK,
        promtool_config.CHECK,
        promtool_rules.CHECK,
        promtool_tests.CHECK,
        amtool_config.CHECK,
        amtool_routes.CHECK,
        alertmanager_coverage.CHECK,
        backend_configs.LOKI,
        backend_configs.TEMPO,
        scale_out.COMPOSE,
        scale_out.CONFIGS,
        kubernetes.MANIFESTS_CHECK,
        kubernetes.HELM_CHECK,
        hadolint.CHECK,
    )
}
