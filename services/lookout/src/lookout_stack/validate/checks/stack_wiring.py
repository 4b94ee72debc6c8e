"""How the stack's services find each other, cross-referenced with docker-compose.yml.

Each Prometheus scrape target is ``service:port`` of a compose service listening there, its job
named after the service; every long-running service that serves metrics is scraped; apps send
OTLP to the collector and wait for it; every ``service:port`` a backend config names is a
compose service listening on that port.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tree import absent, outcome, read_yaml, skipped

__all__ = [
    "CHECK",
    "CONFIG_DIRS",
    "NOT_SCRAPED",
    "StackWiring",
    "address_problems",
    "container_ports",
    "otlp_endpoint_problem",
    "otlp_variables",
    "scrape_target_problem",
    "scrape_targets",
    "service_reference",
    "unscraped",
]

COMPOSE_FILE = "docker-compose.yml"
PROMETHEUS_CONFIG = "prometheus/prometheus.yml"
#: The config folders whose files name other services as `service:port`.
CONFIG_DIRS = ("prometheus", "alertmanager", "loki", "tempo", "otel-collector", "grafana")
#: Long-running services with no Prometheus metrics: the data stores, Locust, and Bugsink
#: (its healthcheck is its liveness).
NOT_SCRAPED = frozenset({"postgres", "redis", "locust", "bugsink"})


def container_ports(spec: Mapping[str, Any]) -> set[int]:
    """Return the ports a compose service listens on: its published targets and `expose:`."""
    published = {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in spec.get("ports") or []}
    return published | {int(str(p).split("/")[0]) for p in spec.get("expose") or []}


def scrape_targets(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return (job, target) for every static target of a Prometheus config."""
    return [
        (job["job_name"], target)
        for job in config.get("scrape_configs") or []
        for static in job.get("static_configs") or []
        for target in static.get("targets") or []
    ]


def scrape_target_problem(services: Mapping[str, Any], job: str, target: str) -> str | None:
    """Return what is wrong with one scrape target, None when it is a service's port."""
    host, _, port = target.rpartition(":")
    if host not in services:
        return f"job {job}: {host!r} is not a compose service"
    if not port.isdigit() or int(port) not in container_ports(services[host]):
        return f"job {job}: {host} does not listen on {port} (add it to its ports: or expose:)"
    if job != host:
        return f"job {job!r} scrapes {host}: name the job after the service"
    return None


def unscraped(services: Mapping[str, Any], targets: list[tuple[str, str]]) -> list[str]:
    """Return the long-running services that serve metrics but have no scrape job."""
    scraped = {target.rpartition(":")[0] for _job, target in targets}
    one_shot = {name for name, spec in services.items() if spec.get("restart") == "no"}
    return sorted(set(services) - scraped - one_shot - NOT_SCRAPED)


def otlp_variables(services: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Return (service, variable, value) for every OTEL_EXPORTER_OTLP_*ENDPOINT in compose."""
    return [
        (service, variable, str(value))
        for service, spec in services.items()
        for variable, value in (spec.get("environment") or {}).items()
        if variable.startswith("OTEL_EXPORTER_OTLP") and variable.endswith("ENDPOINT")
    ]


def otlp_endpoint_problem(
    services: Mapping[str, Any], service: str, variable: str, value: str
) -> str | None:
    """Return why an app's OTLP endpoint is not the collector it waits for, or None."""
    url = urlsplit(value)
    if url.hostname != "otel-collector":
        return f"{service}: {variable}={value}: send OTLP to the collector, not straight on"
    if url.port not in container_ports(services["otel-collector"]):
        return f"{service}: {variable}={value}: the collector does not listen on {url.port}"
    if "otel-collector" not in (services[service].get("depends_on") or {}):
        return f"{service}: add otel-collector to depends_on"
    return None


def service_reference(services: Mapping[str, Any]) -> re.Pattern[str]:
    """Return the pattern of a `service:port` reference to one of ``services``."""
    names = "|".join(map(re.escape, sorted(services, key=len, reverse=True)))
    return re.compile(rf"(?<![\w.-])({names}):(\d+)\b")


def address_problems(services: Mapping[str, Any], text: str) -> list[tuple[int, str]]:
    """Return (line, problem) for each `service:port` in ``text`` the service does not serve."""
    reference = service_reference(services)
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in reference.finditer(line):
            service, port = match[1], int(match[2])
            ports = container_ports(services[service])
            if port not in ports:
                problems.append(
                    (number, f"{service}:{port} but {service} listens on {sorted(ports)}")
                )
    return problems


class StackWiring:
    """Scrape targets, OTLP endpoints and config addresses agree with docker-compose.yml."""

    name = "stack-wiring"

    def run(self, root: Path) -> CheckResult:
        """Cross-reference the configs present with compose; a finding per broken reference."""
        if reason := absent(root, COMPOSE_FILE):
            return skipped(self.name, reason)
        compose = read_yaml(root / COMPOSE_FILE)
        services: dict[str, Any] = compose.get("services") or {}
        findings = [
            Finding(COMPOSE_FILE, problem)
            for service, variable, value in otlp_variables(services)
            if (problem := otlp_endpoint_problem(services, service, variable, value))
        ]
        if (root / PROMETHEUS_CONFIG).is_file():
            targets = scrape_targets(read_yaml(root / PROMETHEUS_CONFIG))
            findings += [
                Finding(PROMETHEUS_CONFIG, problem)
                for job, target in targets
                if (problem := scrape_target_problem(services, job, target))
            ]
            findings += [
                Finding(PROMETHEUS_CONFIG, f"no scrape job for {service}")
                for service in unscraped(services, targets)
            ]
        files = sorted(
            path
            for folder in CONFIG_DIRS
            for path in (root / folder).rglob("*")
            if path.suffix in {".yml", ".yaml"} and path.is_file()
        )
        for path in files:
            where = path.relative_to(root).as_posix()
            for line, problem in address_problems(services, path.read_text(encoding="utf-8")):
                findings.append(Finding(f"{where}:{line}", problem))
        return outcome(self.name, f"{len(services)} services, {len(files)} config files", findings)


CHECK = StackWiring()
