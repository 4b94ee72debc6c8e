"""deploy/scale-out/: the scale-out compose profile, checked as far as no running stack allows.

``scale-out-compose``: the override against the compose-spec schema, then laid over
docker-compose.yml with compose's merge rules and cross-referenced: every ${VAR} set in .env,
new images pinned there, every service, volume, bind source, secret and network it names
defined, no credential written literally, host ports on loopback only.

``scale-out-configs``: mimir.yaml against the Mimir key schema (no Mimir binary runs here), the
variant files kept in sync with their base files, the real Loki and Tempo verifying their
variants (environment expanded, dummy S3 credentials), promtool on the Prometheus variant.

The functions are shared with tests/test_scale_out.py: one implementation of each rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from copy import deepcopy
from pathlib import Path
from typing import Any

from lookout_stack.validate.checks.compose_schema import schema_findings
from lookout_stack.validate.checks.key_schemas import key_findings
from lookout_stack.validate.dotenv import ENV_FILE, interpolate, read_env_file, variables_in
from lookout_stack.validate.keyschema import SCHEMAS_DIR, KeySchema
from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tools import (
    backend_binary,
    checkouts,
    failure_findings,
    program,
    run,
)
from lookout_stack.validate.tree import absent, field_findings, outcome, read_yaml, skipped

__all__ = [
    "BACKEND_ENV",
    "COMPOSE",
    "CONFIGS",
    "CREDENTIAL_VARIABLE",
    "PINNED_TAG",
    "ScaleOutCompose",
    "ScaleOutConfigs",
    "backend_findings",
    "credential_literals",
    "differences",
    "grafana_variant_problems",
    "image_pin_problems",
    "loki_variant_problems",
    "merge_service",
    "merged_services",
    "prometheus_variant_problems",
    "promtool_findings",
    "reference_problems",
    "tempo_variant_problems",
    "unpublished_loopback",
    "without",
]

BASE_FILE = "docker-compose.yml"
SCALE_OUT = "deploy/scale-out"
OVERRIDE_FILE = f"{SCALE_OUT}/compose.yaml"
MIMIR_FILE = f"{SCALE_OUT}/mimir.yaml"
MIMIR_SCHEMA = "mimir-3.2.0.yaml"
GRAFANA_SCHEMA = "grafana-13.2.yaml"
#: variant -> the base file it follows.
VARIANTS = {
    f"{SCALE_OUT}/prometheus.yml": "prometheus/prometheus.yml",
    f"{SCALE_OUT}/loki.yaml": "loki/loki.yaml",
    f"{SCALE_OUT}/tempo.yaml": "tempo/tempo.yaml",
    f"{SCALE_OUT}/grafana/datasources.yaml": "grafana/provisioning/datasources/datasources.yaml",
}
# A pinned tag: a version of at least MAJOR.MINOR, or MinIO's RELEASE.<date> tags.
#: Base scrape targets the variant scrapes under another name: `webhook-relay` names both relay
#: replicas in the scale-out stack (webhook-relay-2's network alias), so the first replica is
#: scraped by its own alias, webhook-relay-1.
RENAMED_TARGETS = {"webhook-relay:8080": "webhook-relay-1:8080"}
PINNED_TAG = re.compile(r"^(v?\d+\.\d+|RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z)")
#: Environment variables that hold a credential (a *_FILE one names where it is mounted).
CREDENTIAL_VARIABLE = re.compile(r"PASSWORD|SECRET|KEY|TOKEN|DSN|MC_HOST|DATABASE_URL")
#: Dummy object-storage credentials for the real Loki and Tempo to expand (never contacted:
#: verifying a config dials nothing).
BACKEND_ENV = {"S3_ACCESS_KEY_ID": "validate-access-key", "S3_SECRET_ACCESS_KEY": "validate-secret"}


# --- compose's merge rules, for the keys these files use ----------------------------------------
# https://docs.docker.com/reference/compose-file/merge/: mappings merge key by key; `command`,
# `entrypoint` are replaced; `volumes` merge by container path; `ports`, `expose`, `secrets` are
# unions; `environment` and `depends_on` merge by key.


def _volume_target(entry: str | Mapping[str, Any]) -> str:
    """Return the container path of a short- or long-syntax volume entry."""
    if isinstance(entry, Mapping):
        return str(entry["target"])
    parts = entry.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def merge_service(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``over`` laid over ``base`` as compose merges two files' service entries."""
    merged = deepcopy(dict(base))
    for key, value in over.items():
        if key in {"command", "entrypoint"} or key not in merged:
            merged[key] = deepcopy(value)
        elif key == "volumes":
            by_target = {_volume_target(v): v for v in merged[key]}
            by_target.update({_volume_target(v): v for v in value})
            merged[key] = list(by_target.values())
        elif key in {"ports", "expose", "secrets"}:
            merged[key] = merged[key] + [v for v in value if v not in merged[key]]
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = {**merged[key], **deepcopy(value)}
        else:
            merged[key] = deepcopy(value)
    return merged


def merged_services(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return every service of ``base`` with the override's services laid over (or added)."""
    services: dict[str, Any] = deepcopy(dict(base.get("services") or {}))
    for name, spec in (override.get("services") or {}).items():
        services[name] = merge_service(services.get(name, {}), spec or {})
    return services


# --- the override's cross-references: (field, message) per problem ------------------------------

Problem = tuple[str, str]


def _services(override: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, spec in (override.get("services") or {}).items():
        yield name, spec or {}


def image_pin_problems(
    base: Mapping[str, Any], override: Mapping[str, Any], env: Mapping[str, str]
) -> list[Problem]:
    """Return each new service whose image is not from .env or not pinned to a version."""
    problems = []
    for name, spec in _services(override):
        if name in (base.get("services") or {}) or "image" not in spec:
            continue
        raw = str(spec["image"])
        field = f"services.{name}.image"
        if not variables_in(raw):
            problems.append((field, f"put the image tag in {ENV_FILE}, not {raw!r}"))
            continue
        image = interpolate(raw, env)
        tag = image.rpartition(":")[2] if ":" in image.split("/")[-1] else ""
        if not PINNED_TAG.match(tag):
            problems.append((field, f"{image!r} is not pinned to a version"))
    return problems


def reference_problems(
    root: Path, base: Mapping[str, Any], override: Mapping[str, Any]
) -> list[Problem]:
    """Return each depends_on, volume, bind source, secret, network the override leaves undefined.

    Bind sources (``./path``) are relative to the repository root, where compose runs with
    ``-f docker-compose.yml -f deploy/scale-out/compose.yaml``.
    """
    merged = merged_services(base, override)
    volumes = set(base.get("volumes") or {}) | set(override.get("volumes") or {})
    secrets = set(base.get("secrets") or {}) | set(override.get("secrets") or {})
    networks = {"default"} | set(base.get("networks") or {}) | set(override.get("networks") or {})
    problems: list[Problem] = []
    for name, spec in _services(override):
        at = f"services.{name}"
        problems += [
            (f"{at}.depends_on.{dep}", f"{name}: depends_on {dep!r} is no service")
            for dep in spec.get("depends_on") or {}
            if dep not in merged
        ]
        for index, entry in enumerate(spec.get("volumes") or []):
            source = entry.split(":")[0] if isinstance(entry, str) else entry.get("source", "")
            field = f"{at}.volumes[{index}]"
            if source.startswith("."):
                if not (root / source).exists():
                    problems.append((field, f"{name}: bind source {source} does not exist"))
            elif source not in volumes:
                problems.append((field, f"{name}: volume {source!r} is not declared"))
        problems += [
            (f"{at}.secrets", f"{name}: secret {s!r} is not declared")
            for s in spec.get("secrets") or []
            if (s if isinstance(s, str) else s.get("source")) not in secrets
        ]
        problems += [
            (f"{at}.networks.{n}", f"{name}: network {n!r} is not declared")
            for n in spec.get("networks") or {}
            if n not in networks
        ]
    return problems


def credential_literals(override: Mapping[str, Any]) -> list[Problem]:
    """Return each credential-looking environment variable given literally, not from .env."""
    return [
        (f"services.{name}.environment.{variable}", f"{name}: take {variable} from {ENV_FILE}")
        for name, spec in _services(override)
        for variable, value in (spec.get("environment") or {}).items()
        if CREDENTIAL_VARIABLE.search(variable)
        and not variable.endswith("_FILE")  # names where a secret is mounted
        and "${" not in str(value)
    ]


def unpublished_loopback(override: Mapping[str, Any]) -> list[Problem]:
    """Return each port the override publishes on an address other than 127.0.0.1."""
    return [
        (f"services.{name}.ports[{index}]", f"{name}: publish {port} on 127.0.0.1 only")
        for name, spec in _services(override)
        for index, port in enumerate(spec.get("ports") or [])
        if not str(port).startswith("127.0.0.1:")
    ]


# --- the variant files against their base files -------------------------------------------------


def _drop(node: Any, parts: list[str]) -> None:
    """Remove the dotted path ``parts`` under ``node`` in place (``[]`` maps over a list)."""
    head, rest = parts[0], parts[1:]
    if head == "[]":
        for item in node if isinstance(node, list) else []:
            _drop(item, rest)
    elif not isinstance(node, dict):
        return
    elif not rest:
        node.pop(head, None)
    elif head in node:
        _drop(node[head], rest)


def without(config: Any, *paths: str) -> Any:
    """Return a copy of ``config`` with each dotted path removed (``[]`` maps over a list)."""
    copy = deepcopy(config)
    for path in paths:
        _drop(copy, path.split("."))
    return copy


def differences(variant: Any, base: Any, path: str = "") -> list[str]:
    """Return the dotted paths where ``variant`` differs from ``base`` (``a.b[2].c``)."""
    if isinstance(variant, dict) and isinstance(base, dict):
        found = []
        for key in [*base, *(k for k in variant if k not in base)]:
            child = f"{path}.{key}" if path else str(key)
            if key not in variant or key not in base:
                found.append(child)
            else:
                found += differences(variant[key], base[key], child)
        return found
    if isinstance(variant, list) and isinstance(base, list) and len(variant) == len(base):
        return [
            p
            for i, (v, b) in enumerate(zip(variant, base, strict=True))
            for p in differences(v, b, f"{path}[{i}]")
        ]
    return [] if variant == base else [path or "(top level)"]


def _unsynced(variant: Any, base: Any, base_file: str) -> list[Problem]:
    return [
        (p, f"differs from {base_file} (change both, or neither)")
        for p in differences(variant, base)
    ]


def prometheus_variant_problems(
    variant: Mapping[str, Any], base: Mapping[str, Any]
) -> list[Problem]:
    """Every base scrape job is in the variant, unchanged but for added (or RENAMED_TARGETS)
    targets; global alike."""
    base_file = VARIANTS[f"{SCALE_OUT}/prometheus.yml"]
    problems = _unsynced(variant.get("global"), base.get("global"), base_file)
    problems = [(f"global.{p}".rstrip("."), m) for p, m in problems]
    if variant.get("storage") != base.get("storage"):
        problems.append(("storage", f"differs from {base_file}"))
    jobs = {job["job_name"]: (i, job) for i, job in enumerate(variant.get("scrape_configs") or [])}
    for job in base.get("scrape_configs") or []:
        name = job["job_name"]
        if name not in jobs:
            problems.append(("scrape_configs", f"job {name} of {base_file} is missing"))
            continue
        index, other = jobs[name]
        field = f"scrape_configs[{index}]"
        rest = {k: v for k, v in job.items() if k != "static_configs"}
        if rest != {k: v for k, v in other.items() if k != "static_configs"}:
            problems.append((field, f"job {name}: settings differ from {base_file}"))
        targets = {
            RENAMED_TARGETS.get(t, t)
            for c in job.get("static_configs") or []
            for t in c.get("targets") or []
        }
        kept = {t for c in other.get("static_configs") or [] for t in c.get("targets") or []}
        if lost := sorted(targets - kept):
            problems.append((field, f"job {name}: lost targets {lost} of {base_file}"))
    return problems


#: What the Loki variant may change: object storage and both Alertmanagers.
LOKI_CHANGES = (
    "common.storage",
    "schema_config.configs.[].object_store",
    "compactor.delete_request_store",
    "ruler.alertmanager_url",
)
#: What the Tempo variant may change: S3 storage (remote-write URLs are compared apart).
TEMPO_CHANGES = (
    "storage.trace.backend",
    "storage.trace.local",
    "storage.trace.s3",
    "metrics_generator.storage.remote_write",
)
#: What the Grafana variant may change: the URLs and which Prometheus flavour it reads.
GRAFANA_CHANGES = ("datasources.[].url", "datasources.[].jsonData.prometheusType")


def loki_variant_problems(variant: Any, base: Any) -> list[Problem]:
    """The Loki variant is loki/loki.yaml but for object storage and both Alertmanagers."""
    return _unsynced(
        without(variant, *LOKI_CHANGES), without(base, *LOKI_CHANGES), "loki/loki.yaml"
    )


def tempo_variant_problems(variant: Any, base: Any) -> list[Problem]:
    """The Tempo variant is tempo/tempo.yaml but for S3 and its remote-write URLs."""
    problems = _unsynced(
        without(variant, *TEMPO_CHANGES), without(base, *TEMPO_CHANGES), "tempo/tempo.yaml"
    )

    def writes(config: Any) -> list[Any]:
        found = config.get("metrics_generator", {}).get("storage", {}).get("remote_write") or []
        return [{**w, "url": ""} for w in found]

    if writes(variant) != writes(base):
        field = "metrics_generator.storage.remote_write"
        problems.append((field, "differs from tempo/tempo.yaml but for the URLs"))
    return problems


def grafana_variant_problems(variant: Any, base: Any) -> list[Problem]:
    """The data sources are the base ones but for their URLs and the Prometheus flavour."""
    base_file = VARIANTS[f"{SCALE_OUT}/grafana/datasources.yaml"]
    return _unsynced(without(variant, *GRAFANA_CHANGES), without(base, *GRAFANA_CHANGES), base_file)


# --- the checks ---------------------------------------------------------------------------------


class ScaleOutCompose:
    """deploy/scale-out/compose.yaml: compose-spec schema, then merged with docker-compose.yml."""

    name = "scale-out-compose"

    def run(self, root: Path) -> CheckResult:
        """Check the override's schema and every name it uses; findings at the override's lines."""
        if reason := absent(root, OVERRIDE_FILE, BASE_FILE, ENV_FILE):
            return skipped(self.name, reason)
        findings = schema_findings(root, OVERRIDE_FILE)
        text = (root / OVERRIDE_FILE).read_text(encoding="utf-8")
        override, base = read_yaml(root / OVERRIDE_FILE), read_yaml(root / BASE_FILE)
        env = read_env_file(root / ENV_FILE)
        unset = sorted(set(variables_in(text)) - set(env))
        findings += [Finding(OVERRIDE_FILE, f"${{{v}}} is not set in {ENV_FILE}") for v in unset]
        if not isinstance(override.get("services"), dict):
            return outcome(self.name, "", [*findings, Finding(OVERRIDE_FILE, "no services")])
        problems = (
            image_pin_problems(base, override, env)
            + reference_problems(root, base, override)
            + credential_literals(override)
            + unpublished_loopback(override)
        )
        findings += field_findings(root, OVERRIDE_FILE, problems)
        detail = f"{len(override['services'])} services over {BASE_FILE} (schema, names, pins)"
        return outcome(self.name, detail, findings)


class ScaleOutConfigs:
    """mimir.yaml's keys, the variants in sync with their base files, Loki, Tempo, promtool."""

    name = "scale-out-configs"

    def run(self, root: Path) -> CheckResult:
        """Check each config of the profile; a finding per problem at its file and line."""
        if reason := absent(root, MIMIR_FILE, *VARIANTS, *VARIANTS.values()):
            return skipped(self.name, reason)
        findings = key_findings(root, MIMIR_FILE, MIMIR_SCHEMA)
        checkers = (
            prometheus_variant_problems,
            loki_variant_problems,
            tempo_variant_problems,
            grafana_variant_problems,
        )
        for (variant, base), problems_of in zip(VARIANTS.items(), checkers, strict=True):
            problems = problems_of(read_yaml(root / variant), read_yaml(root / base))
            findings += field_findings(root, variant, problems)
        datasources = f"{SCALE_OUT}/grafana/datasources.yaml"
        findings += key_findings(root, datasources, GRAFANA_SCHEMA)
        findings += [f for b in VERIFY_FLAGS for f in backend_findings(root, b)]
        findings += promtool_findings(root)
        mimir = KeySchema.load(SCHEMAS_DIR / MIMIR_SCHEMA).version
        detail = f"Mimir {mimir} keys, {len(VARIANTS)} variants in sync, Loki, Tempo, promtool"
        return outcome(self.name, detail, findings)


#: backend -> the flag that makes it verify its config and exit.
VERIFY_FLAGS = {"loki": "-verify-config", "tempo": "-config.verify=true"}


def backend_findings(root: Path, backend: str) -> list[Finding]:
    """The real Loki or Tempo verifies its variant, environment expanded, dummy S3 credentials."""
    file = f"{SCALE_OUT}/{backend}.yaml"
    binary = backend_binary(backend, checkouts(root))
    argv: list[str | Path] = [
        binary,
        f"-config.file={file}",
        "-config.expand-env=true",
        VERIFY_FLAGS[backend],
    ]
    return failure_findings(run(argv, cwd=root, env=BACKEND_ENV), file)


def promtool_findings(root: Path) -> list[Finding]:
    """promtool checks the Prometheus variant (syntax only if its rule files are in a container)."""
    file = f"{SCALE_OUT}/prometheus.yml"
    rule_files = read_yaml(root / file).get("rule_files") or []
    # Rule files inside the container (/etc/prometheus/...) are not on this machine.
    syntax_only = ["--syntax-only"] if any(str(r).startswith("/") for r in rule_files) else []
    argv: list[str | Path] = [program("promtool"), "check", "config", *syntax_only, file]
    return failure_findings(run(argv, cwd=root), file)


COMPOSE = ScaleOutCompose()
CONFIGS = ScaleOutConfigs()
