"""docker-compose.yml: the rules every service follows, cross-referenced within the file.

A long-running service has a healthcheck, a memory limit and ``restart: unless-stopped``; a
one-shot job (``restart: "no"``) a memory limit; every ``depends_on`` target exists and is
awaited until healthy (a one-shot job: until it completed successfully).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tree import absent, line_of, outcome, read_yaml, skipped

__all__ = [
    "CHECK",
    "ONE_SHOT_RULES",
    "RULES",
    "ComposeRules",
    "dependency_problems",
    "healthcheck",
    "memory_limit",
    "one_shot",
    "rule_problems",
]

COMPOSE_FILE = "docker-compose.yml"


def memory_limit(spec: dict[str, Any]) -> object:
    """Return the service's memory limit from either place compose accepts one."""
    deploy_limit = spec.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
    return spec.get("mem_limit") or deploy_limit


def healthcheck(spec: dict[str, Any]) -> object:
    """Return the service's healthcheck test, None when it has none or disables it."""
    check = spec.get("healthcheck") or {}
    test = check.get("test")
    if check.get("disable") or not test or test == ["NONE"]:
        return None
    return test


RULES: dict[str, Callable[[dict[str, Any]], object]] = {
    "has a healthcheck": healthcheck,
    "has a memory limit": memory_limit,
    "restarts unless stopped": lambda spec: spec.get("restart") == "unless-stopped",
}
# One-shot jobs (bugsink-provision): run to completion once per `up`, so they have no
# healthcheck and never restart; the services that need them wait for their success.
ONE_SHOT_RULES: dict[str, Callable[[dict[str, Any]], object]] = {
    "has a memory limit": memory_limit,
    "never restarts": lambda spec: spec.get("restart") == "no",
}


def one_shot(compose: dict[str, Any]) -> list[str]:
    """Return the one-shot jobs: the services with ``restart: "no"``."""
    return [s for s, spec in compose["services"].items() if spec.get("restart") == "no"]


def rule_problems(service: str, compose: dict[str, Any]) -> list[str]:
    """Return each rule (RULES, or ONE_SHOT_RULES for a one-shot job) the service breaks."""
    rules = ONE_SHOT_RULES if service in one_shot(compose) else RULES
    spec = compose["services"][service]
    return [f"{rule} is not true" for rule, holds in rules.items() if not holds(spec)]


def dependency_problems(service: str, compose: dict[str, Any]) -> list[str]:
    """Return each depends_on entry that is unknown or not awaited with the right condition."""
    depends_on = compose["services"][service].get("depends_on") or {}
    if not isinstance(depends_on, dict):
        return ["use depends_on's long form (condition)"]
    problems = []
    for target, options in depends_on.items():
        if target not in compose["services"]:
            problems.append(f"depends on unknown service {target!r}")
            continue
        condition = (options or {}).get("condition")
        if target in one_shot(compose):
            expected = "service_completed_successfully"
        elif not healthcheck(compose["services"][target]):
            problems.append(f"depends on {target}, which has no healthcheck")
            continue
        else:
            expected = "service_healthy"
        if condition != expected:
            problems.append(f"depends on {target} with condition {condition}, not {expected}")
    return problems


class ComposeRules:
    """Healthchecks, memory limits, restart policies and depends_on conditions."""

    name = "compose-rules"

    def run(self, root: Path) -> CheckResult:
        """Check every service; a finding per broken rule, at the service's line."""
        if reason := absent(root, COMPOSE_FILE):
            return skipped(self.name, reason)
        compose = read_yaml(root / COMPOSE_FILE)
        services = compose.get("services") or {}
        if not isinstance(services, dict) or not services:
            return outcome(self.name, "", [Finding(COMPOSE_FILE, "no services")])
        findings = []
        for service in services:
            problems = rule_problems(service, compose) + dependency_problems(service, compose)
            if not problems:
                continue
            line = line_of(root / COMPOSE_FILE, f"$.services.{service}")
            where = f"{COMPOSE_FILE}:{line}" if line else COMPOSE_FILE
            findings += [Finding(where, f"service {service}: {p}") for p in problems]
        return outcome(self.name, f"{len(services)} services", findings)


CHECK = ComposeRules()
